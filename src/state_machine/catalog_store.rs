//! Apply and reads of Consul nodes and checks (`consul_check`), and the registry instances
//! they concern.
//!
//! Registry instances are changed through `naming_store::apply`, so the Nacos side (memory
//! index, subscriber pushes, the owner index) sees a Consul registration exactly as its own.
//! One catalog command issues each naming command at most once, on disjoint instances, since a
//! naming command reads only what is stored and its own pending writes.

use std::collections::BTreeMap;
use std::collections::BTreeSet;

use rocksdb::WriteBatch;
use rocksdb::DB;

use super::catalog::*;
use super::command::Applied;
use super::command::Change;
use super::naming::InstanceItem;
use super::naming::NamingCmd;
use super::naming::Owner;
use super::naming::ServiceKey;
use super::schema;
use super::tables;
use super::ApplyCtx;
use super::StoreResult;

pub fn owner(node: &str) -> Owner {
    Owner::Consul { node: node.to_lowercase() }
}

/// The Consul service ID of an instance owned by a Consul node.
pub fn service_id_of(i: &InstanceItem) -> &str {
    i.metadata.get(META_ID).map(String::as_str).unwrap_or(&i.id)
}

pub fn get_node(db: &DB, name: &str) -> StoreResult<Option<NodeItem>> {
    let cf = super::cf(db, schema::CF_CONSUL_CHECK)?;
    match db.get_pinned_cf(cf, schema::consul_node_key(name)).map_err(super::io_err)? {
        Some(v) => Ok(Some(schema::decode(&v)?)),
        None => Ok(None),
    }
}

fn scan<T: serde::de::DeserializeOwned>(db: &DB, prefix: &[u8]) -> StoreResult<Vec<T>> {
    let cf = super::cf(db, schema::CF_CONSUL_CHECK)?;
    let mut out = Vec::new();
    for item in db.prefix_iterator_cf(cf, prefix) {
        let (k, v) = item.map_err(super::io_err)?;
        if !k.starts_with(prefix) {
            break;
        }
        out.push(schema::decode(&v)?);
    }
    Ok(out)
}

pub fn nodes(db: &DB) -> StoreResult<Vec<NodeItem>> {
    scan(db, b"n")
}

/// The checks of one node, or of every node.
pub fn checks(db: &DB, node: Option<&str>) -> StoreResult<Vec<CheckItem>> {
    scan(db, &schema::consul_check_prefix(node))
}

pub fn get_check(db: &DB, node: &str, id: &str) -> StoreResult<Option<CheckItem>> {
    let cf = super::cf(db, schema::CF_CONSUL_CHECK)?;
    match db.get_pinned_cf(cf, schema::consul_check_key(node, id)).map_err(super::io_err)? {
        Some(v) => Ok(Some(schema::decode(&v)?)),
        None => Ok(None),
    }
}

/// Every registry instance a Consul node owns, as stored.
pub fn node_instances(db: &DB, node: &str) -> StoreResult<Vec<(ServiceKey, InstanceItem)>> {
    let prefix = schema::owner_prefix(&owner(node));
    let owners = super::cf(db, schema::CF_NAMING_OWNER)?;
    let instances = super::cf(db, schema::CF_NAMING_INSTANCE)?;
    let mut out = Vec::new();
    for item in db.prefix_iterator_cf(owners, &prefix) {
        let (k, _) = item.map_err(super::io_err)?;
        if !k.starts_with(&prefix) {
            break;
        }
        let rest = &k[prefix.len()..];
        let mut parts = rest.splitn(4, |b| *b == schema::SEP);
        let s = |p: &[u8]| String::from_utf8_lossy(p).into_owned();
        let (Some(ns), Some(g), Some(n), Some(_)) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if let Some(v) = db.get_pinned_cf(instances, rest).map_err(super::io_err)? {
            out.push((ServiceKey { namespace: s(ns), group: s(g), name: s(n) }, schema::decode(&v)?));
        }
    }
    Ok(out)
}

fn get_instance(db: &DB, key: &ServiceKey, id: &str) -> StoreResult<Option<InstanceItem>> {
    let sk = schema::service_key(&key.namespace, &key.group, &key.name);
    let cf = super::cf(db, schema::CF_NAMING_INSTANCE)?;
    match db.get_pinned_cf(cf, schema::instance_key(&sk, id)).map_err(super::io_err)? {
        Some(v) => Ok(Some(schema::decode(&v)?)),
        None => Ok(None),
    }
}

/// Healthy unless one of `checks` (the instance's and its node's) is critical.
pub fn healthy(checks: &[&CheckItem]) -> bool {
    !checks.iter().any(|c| c.status == CRITICAL)
}

/// One command's view of a node: its checks and instances with this command's edits.
struct NodeTx {
    node: String,
    checks: BTreeMap<String, CheckItem>,
    check_edits: BTreeMap<String, Option<CheckItem>>,
    instances: Vec<(ServiceKey, InstanceItem)>,
}

impl NodeTx {
    fn load(db: &DB, node: &str) -> StoreResult<NodeTx> {
        let checks = checks(db, Some(node))?.into_iter().map(|c| (c.id.clone(), c)).collect();
        Ok(NodeTx {
            node: node.to_string(),
            checks,
            check_edits: BTreeMap::new(),
            instances: node_instances(db, node)?,
        })
    }

    fn find(&self, sid: &str) -> Option<&(ServiceKey, InstanceItem)> {
        self.instances.iter().find(|(_, i)| service_id_of(i) == sid)
    }

    fn put_check(&mut self, c: CheckItem) {
        self.checks.insert(c.id.clone(), c.clone());
        self.check_edits.insert(c.id.clone(), Some(c));
    }

    fn remove_check(&mut self, id: &str) {
        if self.checks.remove(id).is_some() {
            self.check_edits.insert(id.to_string(), None);
        }
    }

    fn healthy_of(&self, sid: &str) -> bool {
        let cs: Vec<&CheckItem> =
            self.checks.values().filter(|c| c.service_id.is_empty() || c.service_id == sid).collect();
        healthy(&cs)
    }

    /// Health transitions of the node's instances (but `skip`, registered separately).
    fn health_changes(&self, skip: Option<&str>) -> Vec<(ServiceKey, String, bool)> {
        let mut out = Vec::new();
        for (key, i) in &self.instances {
            let sid = service_id_of(i);
            if Some(sid) == skip {
                continue;
            }
            let h = self.healthy_of(sid);
            if h != i.healthy {
                out.push((key.clone(), i.id.clone(), h));
            }
        }
        out
    }

    fn write(&self, db: &DB, b: &mut WriteBatch) -> StoreResult<bool> {
        let cf = super::cf(db, schema::CF_CONSUL_CHECK)?;
        for (id, c) in &self.check_edits {
            let k = schema::consul_check_key(&self.node, id);
            match c {
                Some(c) => b.put_cf(cf, k, schema::encode(c)),
                None => b.delete_cf(cf, k),
            }
        }
        Ok(!self.check_edits.is_empty())
    }
}

fn naming(db: &DB, b: &mut WriteBatch, ctx: &ApplyCtx, cmd: NamingCmd, out: &mut Vec<Change>) -> StoreResult<Applied> {
    let (applied, changes) = super::naming_store::apply(db, b, ctx, &cmd)?;
    out.extend(changes);
    Ok(applied)
}

pub fn apply(db: &DB, b: &mut WriteBatch, ctx: &ApplyCtx, cmd: &CatalogCmd) -> StoreResult<(Applied, Vec<Change>)> {
    let mut changes = Vec::new();
    let applied = match cmd {
        CatalogCmd::Register(r) => register(db, b, ctx, r, &mut changes)?,
        CatalogCmd::Deregister { node, service_id, check_id } => {
            deregister(db, b, ctx, node, service_id.as_deref(), check_id.as_deref(), &mut changes)?
        }
        CatalogCmd::SetStatus { items } => set_status(db, b, ctx, items, &mut changes)?,
    };
    if matches!(applied, Applied::Ok { .. }) {
        tables::bump(db, b, tables::Table::Catalog, ctx.index)?;
        changes.push(Change::ConsulTable { table: tables::Table::Catalog });
    }
    Ok((applied, changes))
}

fn rejected(reason: String) -> StoreResult<Applied> {
    Ok(Applied::Rejected { reason })
}

fn register(
    db: &DB,
    b: &mut WriteBatch,
    ctx: &ApplyCtx,
    r: &Registration,
    out: &mut Vec<Change>,
) -> StoreResult<Applied> {
    let mut tx = NodeTx::load(db, &r.node.name)?;
    // Which instance the service becomes: its own again, else the ID if free, else scoped.
    let mut reg: Option<(ServiceKey, InstanceItem)> = None;
    let mut moved: Option<(ServiceKey, String)> = None;
    if let Some(s) = &r.service {
        let existing = tx.find(&s.service_id).cloned();
        let id = match &existing {
            Some((k, i)) if *k == s.key => i.id.clone(),
            _ => {
                let scoped = format!("{}@{}", s.service_id, r.node.name.to_lowercase());
                let taken = |id: &str| -> StoreResult<bool> {
                    Ok(get_instance(db, &s.key, id)?.is_some_and(|i| i.owner != owner(&r.node.name)))
                };
                if !taken(&s.service_id)? {
                    s.service_id.clone()
                } else if !taken(&scoped)? {
                    scoped
                } else {
                    return rejected(format!("service ID {:?} is taken in service {}", s.service_id, s.key.name));
                }
            }
        };
        if let Some((k, i)) = existing.filter(|(k, _)| *k != s.key) {
            moved = Some((k, i.id));
        }
        let mut inst = s.instance.clone();
        inst.id = id.clone();
        inst.metadata.remove(META_ID);
        if id != s.service_id {
            inst.metadata.insert(META_ID.to_string(), s.service_id.clone());
        }
        inst.owner = owner(&r.node.name);
        tx.instances.retain(|(_, i)| service_id_of(i) != s.service_id);
        tx.instances.push((s.key.clone(), inst.clone()));
        reg = Some((s.key.clone(), inst));
    }
    let sid = r.service.as_ref().map(|s| s.service_id.as_str());
    let new_ids: BTreeSet<&str> = r.checks.iter().map(|c| c.id.as_str()).collect();
    for c in &r.checks {
        if !c.service_id.is_empty() && tx.find(&c.service_id).is_none() {
            return rejected(format!("ServiceID {:?} does not exist", c.service_id));
        }
        let mut c = c.clone();
        c.node = r.node.name.clone();
        if let Some(old) = tx.checks.get(&c.id) {
            c.create_index = old.create_index;
            if r.keep_status {
                c.status = old.status.clone();
                c.output = old.output.clone();
            }
        } else {
            c.create_index = ctx.index;
        }
        c.modify_index = ctx.index;
        if let Some((k, _)) = tx.find(&c.service_id) {
            c.service_name = k.name.clone();
        }
        tx.put_check(c);
    }
    if let (Some(sid), true) = (sid, r.replace_checks) {
        let stale: Vec<String> = tx
            .checks
            .values()
            .filter(|c| c.service_id == sid && !new_ids.contains(c.id.as_str()))
            .map(|c| c.id.clone())
            .collect();
        for id in stale {
            tx.remove_check(&id);
        }
    }
    // Service checks keep the service name they were registered with.
    if let Some(s) = &r.service {
        let ids: Vec<String> =
            tx.checks.values().filter(|c| c.service_id == s.service_id).map(|c| c.id.clone()).collect();
        for id in ids {
            if let Some(c) = tx.checks.get(&id).filter(|c| c.service_name != s.key.name).cloned() {
                tx.put_check(CheckItem { service_name: s.key.name.clone(), modify_index: ctx.index, ..c });
            }
        }
    }
    // The registry first: it may refuse the instance, and then nothing is written.
    if let Some((key, mut inst)) = reg.clone() {
        inst.healthy = tx.healthy_of(sid.unwrap_or_default());
        let cmd = NamingCmd::Register {
            service: key,
            owner: inst.owner.clone(),
            instances: vec![inst],
            replace_owned: false,
        };
        if let Applied::Rejected { reason } = naming(db, b, ctx, cmd, out)? {
            return rejected(reason);
        }
    }
    if let Some(m) = moved {
        naming(db, b, ctx, NamingCmd::Remove { items: vec![m] }, out)?;
    }
    let health = tx.health_changes(sid);
    if !health.is_empty() {
        naming(db, b, ctx, NamingCmd::SetHealth { items: health }, out)?;
    }
    let old = get_node(db, &r.node.name)?;
    let node = match old {
        Some(n) if r.skip_node_update => n,
        Some(n) if n == NodeItem { create_index: n.create_index, modify_index: n.modify_index, ..r.node.clone() } => n,
        other => NodeItem {
            create_index: other.map(|n| n.create_index).unwrap_or(ctx.index),
            modify_index: ctx.index,
            ..r.node.clone()
        },
    };
    b.put_cf(super::cf(db, schema::CF_CONSUL_CHECK)?, schema::consul_node_key(&r.node.name), schema::encode(&node));
    tx.write(db, b)?;
    Ok(Applied::Ok { index: ctx.index })
}

fn deregister(
    db: &DB,
    b: &mut WriteBatch,
    ctx: &ApplyCtx,
    node: &str,
    service_id: Option<&str>,
    check_id: Option<&str>,
    out: &mut Vec<Change>,
) -> StoreResult<Applied> {
    let mut tx = NodeTx::load(db, node)?;
    let mut changed = false;
    match (service_id, check_id) {
        (None, None) => {
            changed = get_node(db, node)?.is_some();
            let ids: Vec<String> = tx.checks.keys().cloned().collect();
            for id in ids {
                tx.remove_check(&id);
            }
            if !tx.instances.is_empty() {
                naming(db, b, ctx, NamingCmd::ExpireOwners { owners: vec![owner(node)] }, out)?;
                changed = true;
            }
            b.delete_cf(super::cf(db, schema::CF_CONSUL_CHECK)?, schema::consul_node_key(node));
        }
        (Some(sid), _) => {
            let ids: Vec<String> = tx.checks.values().filter(|c| c.service_id == sid).map(|c| c.id.clone()).collect();
            for id in ids {
                tx.remove_check(&id);
            }
            if let Some((key, i)) = tx.find(sid).cloned() {
                naming(db, b, ctx, NamingCmd::Remove { items: vec![(key, i.id)] }, out)?;
                changed = true;
            }
        }
        (None, Some(cid)) => {
            tx.remove_check(cid);
            let health = tx.health_changes(None);
            if !health.is_empty() {
                naming(db, b, ctx, NamingCmd::SetHealth { items: health }, out)?;
            }
        }
    }
    changed |= tx.write(db, b)?;
    Ok(if changed { Applied::Ok { index: ctx.index } } else { Applied::None })
}

fn set_status(
    db: &DB,
    b: &mut WriteBatch,
    ctx: &ApplyCtx,
    items: &[StatusUpdate],
    out: &mut Vec<Change>,
) -> StoreResult<Applied> {
    let mut by_node: BTreeMap<String, Vec<&StatusUpdate>> = BTreeMap::new();
    for u in items {
        by_node.entry(u.node.to_lowercase()).or_default().push(u);
    }
    let mut health = Vec::new();
    let mut txs = Vec::new();
    for (node, updates) in by_node {
        let mut tx = NodeTx::load(db, &node)?;
        for u in updates {
            if let Some(c) = tx.checks.get(&u.check_id).cloned() {
                if c.status != u.status || c.output != u.output {
                    let c =
                        CheckItem { status: u.status.clone(), output: u.output.clone(), modify_index: ctx.index, ..c };
                    tx.put_check(c);
                }
            }
        }
        health.extend(tx.health_changes(None));
        txs.push(tx);
    }
    if !health.is_empty() {
        naming(db, b, ctx, NamingCmd::SetHealth { items: health }, out)?;
    }
    let mut wrote = false;
    for tx in &txs {
        wrote |= tx.write(db, b)?;
    }
    Ok(if wrote { Applied::Ok { index: ctx.index } } else { Applied::None })
}
