//! Custom namespaces: apply-side mutations and reads over the `namespace` family.

use rocksdb::WriteBatch;
use rocksdb::DB;

use super::command::Applied;
use super::command::Change;
use super::command::NamespaceCmd;
use super::command::NamespaceItem;
use super::schema;
use super::ApplyCtx;
use super::StoreResult;

pub fn get(db: &DB, id: &str) -> StoreResult<Option<NamespaceItem>> {
    match db.get_pinned_cf(super::cf(db, schema::CF_NAMESPACE)?, id.as_bytes()).map_err(super::io_err)? {
        Some(v) => Ok(Some(schema::decode(&v)?)),
        None => Ok(None),
    }
}

/// Every custom namespace, by id.
pub fn list(db: &DB) -> StoreResult<Vec<(String, NamespaceItem)>> {
    let mut out = Vec::new();
    for item in db.iterator_cf(super::cf(db, schema::CF_NAMESPACE)?, rocksdb::IteratorMode::Start) {
        let (k, v) = item.map_err(super::io_err)?;
        out.push((String::from_utf8_lossy(&k).into_owned(), schema::decode(&v)?));
    }
    Ok(out)
}

pub fn apply(db: &DB, b: &mut WriteBatch, ctx: &ApplyCtx, cmd: &NamespaceCmd) -> StoreResult<(Applied, Vec<Change>)> {
    let cf = super::cf(db, schema::CF_NAMESPACE)?;
    let ok = Applied::Ok { index: ctx.index };
    match cmd {
        NamespaceCmd::Create { id, name, desc } => {
            if get(db, id)?.is_some() {
                return Ok((Applied::AlreadyExists, vec![]));
            }
            let item = NamespaceItem {
                name: name.clone(),
                desc: desc.clone(),
                create_time_ms: ctx.time_ms,
                modify_time_ms: ctx.time_ms,
            };
            b.put_cf(cf, id.as_bytes(), schema::encode(&item));
            Ok((ok, vec![]))
        }
        NamespaceCmd::Update { id, name, desc } => {
            let Some(mut item) = get(db, id)? else { return Ok((Applied::NotFound, vec![])) };
            item.name = name.clone();
            item.desc = desc.clone();
            item.modify_time_ms = ctx.time_ms;
            b.put_cf(cf, id.as_bytes(), schema::encode(&item));
            Ok((ok, vec![]))
        }
        NamespaceCmd::Delete { id } => {
            if get(db, id)?.is_none() {
                return Ok((Applied::NotFound, vec![]));
            }
            b.delete_cf(cf, id.as_bytes());
            Ok((ok, vec![]))
        }
    }
}
