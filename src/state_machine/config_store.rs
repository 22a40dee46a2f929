//! Nacos config records: apply-side mutations and read-side queries over the `config` family.

use rocksdb::WriteBatch;
use rocksdb::DB;

use super::command::Applied;
use super::command::Change;
use super::command::ConfigCmd;
use super::command::ConfigItem;
use super::command::ConfigKey;
use super::schema;
use super::ApplyCtx;
use super::StoreResult;

fn key_bytes(k: &ConfigKey) -> Vec<u8> {
    schema::config_key(&k.namespace, &k.group, &k.data_id)
}

pub fn get(db: &DB, key: &ConfigKey) -> StoreResult<Option<ConfigItem>> {
    let cf = super::cf(db, schema::CF_CONFIG)?;
    match db.get_pinned_cf(cf, key_bytes(key)).map_err(super::io_err)? {
        Some(v) => Ok(Some(schema::decode(&v)?)),
        None => Ok(None),
    }
}

/// Every config of a namespace (`None`: all namespaces), in key order.
pub fn list(db: &DB, namespace: Option<&str>) -> StoreResult<Vec<(ConfigKey, ConfigItem)>> {
    let cf = super::cf(db, schema::CF_CONFIG)?;
    let prefix = namespace.map(schema::config_ns_prefix).unwrap_or_default();
    let mut out = Vec::new();
    for item in db.prefix_iterator_cf(cf, &prefix) {
        let (k, v) = item.map_err(super::io_err)?;
        if !k.starts_with(&prefix) {
            break;
        }
        let mut parts = k.split(|b| *b == schema::SEP);
        let (Some(ns), Some(g), Some(d)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let key = ConfigKey {
            namespace: String::from_utf8_lossy(ns).into_owned(),
            group: String::from_utf8_lossy(g).into_owned(),
            data_id: String::from_utf8_lossy(d).into_owned(),
        };
        out.push((key, schema::decode(&v)?));
    }
    Ok(out)
}

pub fn apply(db: &DB, b: &mut WriteBatch, ctx: &ApplyCtx, cmd: &ConfigCmd) -> StoreResult<(Applied, Vec<Change>)> {
    let cf = super::cf(db, schema::CF_CONFIG)?;
    match cmd {
        ConfigCmd::Publish(p) => {
            let existing = get(db, &p.key)?;
            if let (Some(cas), Some(cur)) = (&p.cas_md5, &existing) {
                // Nacos semantics: the CAS guard applies to an existing config; a missing one is
                // simply created.
                if cas != &cur.md5 {
                    return Ok((Applied::CasMismatch, vec![]));
                }
            }
            let (create_time_ms, create_index) =
                existing.as_ref().map(|c| (c.create_time_ms, c.create_index)).unwrap_or((ctx.time_ms, ctx.index));
            let item = ConfigItem {
                content: p.content.clone(),
                md5: p.md5.clone(),
                config_type: p.config_type.clone(),
                app_name: p.app_name.clone(),
                desc: p.desc.clone(),
                tags: p.tags.clone(),
                encrypted_data_key: p.encrypted_data_key.clone(),
                src_user: p.src_user.clone(),
                src_ip: p.src_ip.clone(),
                create_time_ms,
                modify_time_ms: ctx.time_ms,
                create_index,
                modify_index: ctx.index,
            };
            b.put_cf(cf, key_bytes(&p.key), schema::encode(&item));
            let change = Change::ConfigUpdated { key: p.key.clone(), md5: p.md5.clone() };
            Ok((Applied::Ok { index: ctx.index }, vec![change]))
        }
        ConfigCmd::Remove { key, .. } => {
            if get(db, key)?.is_none() {
                return Ok((Applied::NotFound, vec![]));
            }
            b.delete_cf(cf, key_bytes(key));
            Ok((Applied::Ok { index: ctx.index }, vec![Change::ConfigRemoved { key: key.clone() }]))
        }
    }
}
