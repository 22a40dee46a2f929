//! Nacos config records: apply-side mutations and read-side queries over the `config` family.

use rocksdb::WriteBatch;
use rocksdb::DB;

use super::command::Applied;
use super::command::BetaItem;
use super::command::Change;
use super::command::ConfigCmd;
use super::command::ConfigItem;
use super::command::ConfigKey;
use super::command::ConfigPublish;
use super::command::HistoryItem;
use super::schema;
use super::ApplyCtx;
use super::StoreResult;

fn key_bytes(k: &ConfigKey) -> Vec<u8> {
    schema::config_key(&k.namespace, &k.group, &k.data_id)
}

/// The inverse of [`key_bytes`].
fn parse_key(k: &[u8]) -> Option<ConfigKey> {
    let mut parts = k.split(|b| *b == schema::SEP);
    let (Some(ns), Some(g), Some(d)) = (parts.next(), parts.next(), parts.next()) else {
        return None;
    };
    Some(ConfigKey {
        namespace: String::from_utf8_lossy(ns).into_owned(),
        group: String::from_utf8_lossy(g).into_owned(),
        data_id: String::from_utf8_lossy(d).into_owned(),
    })
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
        let Some(key) = parse_key(&k) else { continue };
        out.push((key, schema::decode(&v)?));
    }
    Ok(out)
}

/// The leading fields of a stored [`ConfigItem`], borrowed: the content is skipped, not copied.
#[derive(serde::Deserialize)]
struct Md5Head<'a> {
    #[serde(borrow)]
    _content: &'a [u8],
    md5: &'a str,
}

/// Calls `f` with the key and md5 of every stored config, decoding nothing else: at start-up
/// this builds the md5 index, and decoding whole configs (content, metadata) made the restart
/// with a million configs allocator-bound.
pub fn for_each_md5(db: &DB, mut f: impl FnMut(ConfigKey, &str)) -> StoreResult<()> {
    let cf = super::cf(db, schema::CF_CONFIG)?;
    for item in db.iterator_cf(cf, rocksdb::IteratorMode::Start) {
        let (k, v) = item.map_err(super::io_err)?;
        let Some(key) = parse_key(&k) else { continue };
        let head: Md5Head = schema::decode_head(&v)?;
        f(key, head.md5);
    }
    Ok(())
}

/// RocksDB's estimate of the number of stored configs (exact after a flush; a sizing hint).
pub fn estimate_count(db: &DB) -> StoreResult<usize> {
    let cf = super::cf(db, schema::CF_CONFIG)?;
    let n = db.property_int_value_cf(cf, "rocksdb.estimate-num-keys").map_err(super::io_err)?;
    Ok(n.unwrap_or(0) as usize)
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
            let item = stamped(p, ctx, existing.as_ref());
            b.put_cf(cf, key_bytes(&p.key), schema::encode(&item));
            match existing {
                // Like Nacos, an update's row keeps the content it replaced, and names who
                // replaced it (the audit trail).
                Some(mut old) => {
                    old.meta.src_user = item.meta.src_user.clone();
                    old.meta.src_ip = item.meta.src_ip.clone();
                    put_history(db, b, ctx, &p.key, 'U', old)?
                }
                None => put_history(db, b, ctx, &p.key, 'I', item)?,
            }
            let change = Change::ConfigUpdated { key: p.key.clone(), md5: p.md5.clone() };
            Ok((Applied::Ok { index: ctx.index }, vec![change]))
        }
        ConfigCmd::Remove { key, src_user, src_ip } => {
            let Some(mut old) = get(db, key)? else {
                return Ok((Applied::NotFound, vec![]));
            };
            b.delete_cf(cf, key_bytes(key));
            old.meta.src_user = src_user.clone();
            old.meta.src_ip = src_ip.clone();
            put_history(db, b, ctx, key, 'D', old)?;
            Ok((Applied::Ok { index: ctx.index }, vec![Change::ConfigRemoved { key: key.clone() }]))
        }
        ConfigCmd::PublishBeta { publish: p, beta_ips } => {
            let bcf = super::cf(db, schema::CF_CONFIG_BETA)?;
            let existing = get_beta(db, &p.key)?;
            let item = stamped(p, ctx, existing.as_ref().map(|b| &b.item));
            b.put_cf(bcf, key_bytes(&p.key), schema::encode(&BetaItem { item, beta_ips: beta_ips.clone() }));
            let change = Change::BetaUpdated { key: p.key.clone(), md5: p.md5.clone(), beta_ips: beta_ips.clone() };
            Ok((Applied::Ok { index: ctx.index }, vec![change]))
        }
        ConfigCmd::PublishTag { publish: p, tag } => {
            let tcf = super::cf(db, schema::CF_CONFIG_TAG)?;
            let existing = get_tag(db, &p.key, tag)?;
            let item = stamped(p, ctx, existing.as_ref());
            b.put_cf(tcf, tag_key_bytes(&p.key, tag), schema::encode(&item));
            let change = Change::TagUpdated { key: p.key.clone(), tag: tag.clone(), md5: p.md5.clone() };
            Ok((Applied::Ok { index: ctx.index }, vec![change]))
        }
        ConfigCmd::RemoveTag { key, tag } => {
            if get_tag(db, key, tag)?.is_none() {
                return Ok((Applied::NotFound, vec![]));
            }
            b.delete_cf(super::cf(db, schema::CF_CONFIG_TAG)?, tag_key_bytes(key, tag));
            Ok((Applied::Ok { index: ctx.index }, vec![Change::TagRemoved { key: key.clone(), tag: tag.clone() }]))
        }
        ConfigCmd::RemoveBeta { key } => {
            if get_beta(db, key)?.is_none() {
                return Ok((Applied::NotFound, vec![]));
            }
            b.delete_cf(super::cf(db, schema::CF_CONFIG_BETA)?, key_bytes(key));
            Ok((Applied::Ok { index: ctx.index }, vec![Change::BetaRemoved { key: key.clone() }]))
        }
    }
}

/// The stored form of a publish: created now unless `prior` (the version it replaces) was.
fn stamped(p: &ConfigPublish, ctx: &ApplyCtx, prior: Option<&ConfigItem>) -> ConfigItem {
    let (create_time_ms, create_index) =
        prior.map(|c| (c.create_time_ms, c.create_index)).unwrap_or((ctx.time_ms, ctx.index));
    ConfigItem {
        content: p.content.clone(),
        md5: p.md5.clone(),
        meta: p.meta.clone(),
        create_time_ms,
        modify_time_ms: ctx.time_ms,
        create_index,
        modify_index: ctx.index,
    }
}

fn tag_key_bytes(k: &ConfigKey, tag: &str) -> Vec<u8> {
    schema::config_tag_key(&k.namespace, &k.group, &k.data_id, tag)
}

pub fn get_tag(db: &DB, key: &ConfigKey, tag: &str) -> StoreResult<Option<ConfigItem>> {
    let cf = super::cf(db, schema::CF_CONFIG_TAG)?;
    match db.get_pinned_cf(cf, tag_key_bytes(key, tag)).map_err(super::io_err)? {
        Some(v) => Ok(Some(schema::decode(&v)?)),
        None => Ok(None),
    }
}

pub fn get_beta(db: &DB, key: &ConfigKey) -> StoreResult<Option<BetaItem>> {
    let cf = super::cf(db, schema::CF_CONFIG_BETA)?;
    match db.get_pinned_cf(cf, key_bytes(key)).map_err(super::io_err)? {
        Some(v) => Ok(Some(schema::decode(&v)?)),
        None => Ok(None),
    }
}

/// Every beta version (few: betas are short-lived), for the in-memory index.
pub fn list_betas(db: &DB) -> StoreResult<Vec<(ConfigKey, BetaItem)>> {
    let cf = super::cf(db, schema::CF_CONFIG_BETA)?;
    let mut out = Vec::new();
    for item in db.iterator_cf(cf, rocksdb::IteratorMode::Start) {
        let (k, v) = item.map_err(super::io_err)?;
        let Some(key) = parse_key(&k) else { continue };
        out.push((key, schema::decode(&v)?));
    }
    Ok(out)
}

fn put_history(
    db: &DB,
    b: &mut WriteBatch,
    ctx: &ApplyCtx,
    key: &ConfigKey,
    op: char,
    item: ConfigItem,
) -> StoreResult<()> {
    let hk = schema::history_key(&key.namespace, &key.group, &key.data_id, ctx.index);
    let row = HistoryItem { op, index: ctx.index, time_ms: ctx.time_ms, item };
    b.put_cf(super::cf(db, schema::CF_HISTORY)?, &hk, schema::encode(&row));
    b.put_cf(super::cf(db, schema::CF_HISTORY_ID)?, schema::index_key(ctx.index), hk);
    Ok(())
}

/// Deletes history rows older than `before_ms`; a full scan, run rarely (retention).
pub fn purge_history(db: &DB, b: &mut WriteBatch, before_ms: u64) -> StoreResult<usize> {
    let h = super::cf(db, schema::CF_HISTORY)?;
    let ids = super::cf(db, schema::CF_HISTORY_ID)?;
    let mut n = 0;
    for item in db.iterator_cf(h, rocksdb::IteratorMode::Start) {
        let (k, v) = item.map_err(super::io_err)?;
        let row: HistoryItem = schema::decode(&v)?;
        if row.time_ms < before_ms {
            b.delete_cf(h, &k);
            b.delete_cf(ids, schema::index_key(row.index));
            n += 1;
        }
    }
    Ok(n)
}

/// History rows of one config, newest first, and their total count.
pub fn history_page(db: &DB, key: &ConfigKey, offset: usize, limit: usize) -> StoreResult<(usize, Vec<HistoryItem>)> {
    let h = super::cf(db, schema::CF_HISTORY)?;
    let prefix = schema::history_prefix(&key.namespace, &key.group, &key.data_id);
    let mut rows = Vec::new();
    for item in db.prefix_iterator_cf(h, &prefix) {
        let (k, v) = item.map_err(super::io_err)?;
        if !k.starts_with(&prefix) || k.len() != prefix.len() + 8 {
            if !k.starts_with(&prefix) {
                break;
            }
            continue;
        }
        rows.push(v);
    }
    let total = rows.len();
    let page = rows.iter().rev().skip(offset).take(limit).map(|v| schema::decode(v)).collect::<Result<Vec<_>, _>>()?;
    Ok((total, page))
}

/// One history row by id, with the config it belongs to.
pub fn history_by_id(db: &DB, id: u64) -> StoreResult<Option<(ConfigKey, HistoryItem)>> {
    let Some(hk) = db.get_cf(super::cf(db, schema::CF_HISTORY_ID)?, schema::index_key(id)).map_err(super::io_err)?
    else {
        return Ok(None);
    };
    let Some(v) = db.get_cf(super::cf(db, schema::CF_HISTORY)?, &hk).map_err(super::io_err)? else {
        return Ok(None);
    };
    let mut parts = hk[..hk.len().saturating_sub(9)].split(|b| *b == schema::SEP);
    let (Some(ns), Some(g), Some(d)) = (parts.next(), parts.next(), parts.next()) else { return Ok(None) };
    let key = ConfigKey {
        namespace: String::from_utf8_lossy(ns).into_owned(),
        group: String::from_utf8_lossy(g).into_owned(),
        data_id: String::from_utf8_lossy(d).into_owned(),
    };
    Ok(Some((key, schema::decode(&v)?)))
}

/// The history row of `key` just before id `id`.
pub fn history_previous(db: &DB, key: &ConfigKey, id: u64) -> StoreResult<Option<HistoryItem>> {
    let h = super::cf(db, schema::CF_HISTORY)?;
    let prefix = schema::history_prefix(&key.namespace, &key.group, &key.data_id);
    let upper = schema::history_key(&key.namespace, &key.group, &key.data_id, id);
    let mut it = db.iterator_cf(h, rocksdb::IteratorMode::From(&upper, rocksdb::Direction::Reverse));
    while let Some(item) = it.next().transpose().map_err(super::io_err)? {
        let (k, v) = item;
        if !k.starts_with(&prefix) {
            return Ok(None);
        }
        if k.len() == prefix.len() + 8 && k[..] < upper[..] {
            return Ok(Some(schema::decode(&v)?));
        }
    }
    Ok(None)
}
