//! Registry records: apply-side mutations over `naming_service`, `naming_instance` and
//! `naming_owner`, and the full read used to rebuild the in-memory index.
//!
//! One command may touch many instances of many services (an expired node's connections), so
//! apply accumulates a [`Tx`]: it reads through its own pending writes, writes the batch, and
//! emits one `NamingInstances` change per touched service. A service created by a registration
//! outlives its last instance until the leader's cleanup removes it, as in Nacos; one created
//! through the service API stays until deleted.

use std::collections::BTreeMap;
use std::collections::BTreeSet;

use rocksdb::WriteBatch;
use rocksdb::DB;

use super::command::Applied;
use super::command::Change;
use super::naming::InstanceItem;
use super::naming::NamingCmd;
use super::naming::Owner;
use super::naming::ServiceItem;
use super::naming::ServiceKey;
use super::naming::UpsertMode;
use super::schema;
use super::ApplyCtx;
use super::StoreResult;

fn skey(k: &ServiceKey) -> Vec<u8> {
    schema::service_key(&k.namespace, &k.group, &k.name)
}

/// `ns \0 group \0 name [\0 id]` back into parts.
fn parse_service(bytes: &[u8]) -> Option<(ServiceKey, Option<String>)> {
    let mut parts = bytes.splitn(4, |b| *b == schema::SEP);
    let s = |p: &[u8]| String::from_utf8_lossy(p).into_owned();
    let key = ServiceKey { namespace: s(parts.next()?), group: s(parts.next()?), name: s(parts.next()?) };
    Some((key, parts.next().map(s)))
}

pub fn get_service(db: &DB, key: &ServiceKey) -> StoreResult<Option<ServiceItem>> {
    let cf = super::cf(db, schema::CF_NAMING_SERVICE)?;
    match db.get_pinned_cf(cf, skey(key)).map_err(super::io_err)? {
        Some(v) => Ok(Some(schema::decode(&v)?)),
        None => Ok(None),
    }
}

/// Every service with its instances, for rebuilding the in-memory index.
pub fn load_all(db: &DB) -> StoreResult<BTreeMap<ServiceKey, (ServiceItem, Vec<InstanceItem>)>> {
    let mut out: BTreeMap<ServiceKey, (ServiceItem, Vec<InstanceItem>)> = BTreeMap::new();
    for item in db.iterator_cf(super::cf(db, schema::CF_NAMING_SERVICE)?, rocksdb::IteratorMode::Start) {
        let (k, v) = item.map_err(super::io_err)?;
        if let Some((key, None)) = parse_service(&k) {
            out.insert(key, (schema::decode(&v)?, Vec::new()));
        }
    }
    for item in db.iterator_cf(super::cf(db, schema::CF_NAMING_INSTANCE)?, rocksdb::IteratorMode::Start) {
        let (k, v) = item.map_err(super::io_err)?;
        if let Some((key, Some(_))) = parse_service(&k) {
            if let Some((_, list)) = out.get_mut(&key) {
                list.push(schema::decode(&v)?);
            }
        }
    }
    Ok(out)
}

/// Pending effects of one command on one service.
#[derive(Default)]
struct Delta {
    put: BTreeMap<String, InstanceItem>,
    removed: BTreeSet<String>,
    /// `Some(None)`: the service record is deleted; `Some(Some(_))`: written.
    service: Option<Option<ServiceItem>>,
}

/// One command's reads and writes: reads see the command's own pending writes.
struct Tx<'a> {
    db: &'a DB,
    b: &'a mut WriteBatch,
    ctx: &'a ApplyCtx,
    touched: BTreeMap<ServiceKey, Delta>,
}

impl<'a> Tx<'a> {
    fn new(db: &'a DB, b: &'a mut WriteBatch, ctx: &'a ApplyCtx) -> Tx<'a> {
        Tx { db, b, ctx, touched: BTreeMap::new() }
    }

    fn service(&self, key: &ServiceKey) -> StoreResult<Option<ServiceItem>> {
        match self.touched.get(key).and_then(|d| d.service.clone()) {
            Some(s) => Ok(s),
            None => get_service(self.db, key),
        }
    }

    fn write_service(&mut self, key: &ServiceKey, item: Option<ServiceItem>) -> StoreResult<()> {
        let cf = super::cf(self.db, schema::CF_NAMING_SERVICE)?;
        match &item {
            Some(s) => self.b.put_cf(cf, skey(key), schema::encode(s)),
            None => self.b.delete_cf(cf, skey(key)),
        }
        self.touched.entry(key.clone()).or_default().service = Some(item);
        Ok(())
    }

    fn instance(&self, key: &ServiceKey, id: &str) -> StoreResult<Option<InstanceItem>> {
        if let Some(d) = self.touched.get(key) {
            if let Some(i) = d.put.get(id) {
                return Ok(Some(i.clone()));
            }
            if d.removed.contains(id) {
                return Ok(None);
            }
        }
        let cf = super::cf(self.db, schema::CF_NAMING_INSTANCE)?;
        match self.db.get_pinned_cf(cf, schema::instance_key(&skey(key), id)).map_err(super::io_err)? {
            Some(v) => Ok(Some(schema::decode(&v)?)),
            None => Ok(None),
        }
    }

    fn put_instance(&mut self, key: &ServiceKey, inst: InstanceItem) -> StoreResult<()> {
        let sk = skey(key);
        let owners = super::cf(self.db, schema::CF_NAMING_OWNER)?;
        if let Some(old) = self.instance(key, &inst.id)? {
            if old.owner != inst.owner {
                self.b.delete_cf(owners, schema::owner_key(&old.owner, &sk, &old.id));
            }
        }
        self.b.put_cf(owners, schema::owner_key(&inst.owner, &sk, &inst.id), []);
        let cf = super::cf(self.db, schema::CF_NAMING_INSTANCE)?;
        self.b.put_cf(cf, schema::instance_key(&sk, &inst.id), schema::encode(&inst));
        let d = self.touched.entry(key.clone()).or_default();
        d.removed.remove(&inst.id);
        d.put.insert(inst.id.clone(), inst);
        Ok(())
    }

    fn remove_instance(&mut self, key: &ServiceKey, id: &str) -> StoreResult<bool> {
        let Some(old) = self.instance(key, id)? else { return Ok(false) };
        let sk = skey(key);
        self.b.delete_cf(super::cf(self.db, schema::CF_NAMING_OWNER)?, schema::owner_key(&old.owner, &sk, id));
        self.b.delete_cf(super::cf(self.db, schema::CF_NAMING_INSTANCE)?, schema::instance_key(&sk, id));
        let d = self.touched.entry(key.clone()).or_default();
        d.put.remove(id);
        d.removed.insert(id.to_string());
        Ok(true)
    }

    /// `(service, id)` of everything `owner` registered, in `service` only when given.
    fn owned(&self, owner: &Owner, service: Option<&ServiceKey>) -> StoreResult<Vec<(ServiceKey, String)>> {
        let mut prefix = schema::owner_prefix(owner);
        let owner_len = prefix.len();
        if let Some(s) = service {
            prefix.extend_from_slice(&skey(s));
            prefix.push(schema::SEP);
        }
        let cf = super::cf(self.db, schema::CF_NAMING_OWNER)?;
        let mut out = Vec::new();
        for item in self.db.prefix_iterator_cf(cf, &prefix) {
            let (k, _) = item.map_err(super::io_err)?;
            if !k.starts_with(&prefix) {
                break;
            }
            if let Some((key, Some(id))) = parse_service(&k[owner_len..]) {
                out.push((key, id));
            }
        }
        // Pending registrations of this command by the same owner.
        for (key, d) in &self.touched {
            if service.is_some_and(|s| s != key) {
                continue;
            }
            for (id, i) in &d.put {
                if &i.owner == owner && !out.iter().any(|(k, x)| k == key && x == id) {
                    out.push((key.clone(), id.clone()));
                }
            }
        }
        Ok(out)
    }

    /// Whether any instance of `key` remains once this command's writes land.
    fn has_instances(&self, key: &ServiceKey) -> StoreResult<bool> {
        let d = self.touched.get(key);
        if d.is_some_and(|d| !d.put.is_empty()) {
            return Ok(true);
        }
        let mut prefix = skey(key);
        prefix.push(schema::SEP);
        let cf = super::cf(self.db, schema::CF_NAMING_INSTANCE)?;
        for item in self.db.prefix_iterator_cf(cf, &prefix) {
            let (k, _) = item.map_err(super::io_err)?;
            if !k.starts_with(&prefix) {
                break;
            }
            let id = String::from_utf8_lossy(&k[prefix.len()..]);
            if !d.is_some_and(|d| d.removed.contains(id.as_ref())) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Creates the services that received their first instance and reports one change per
    /// touched service.
    fn finish(mut self) -> StoreResult<Vec<Change>> {
        let keys: Vec<ServiceKey> = self.touched.keys().cloned().collect();
        for key in &keys {
            let ephemeral = self.touched[key].put.values().next().map(|i| i.ephemeral);
            let svc = self.service(key)?;
            match (svc, ephemeral) {
                (None, Some(ephemeral)) => {
                    let item = ServiceItem {
                        spec: Default::default(),
                        ephemeral,
                        explicit: false,
                        clusters: BTreeMap::new(),
                        create_time_ms: self.ctx.time_ms,
                        modify_time_ms: self.ctx.time_ms,
                    };
                    self.write_service(key, Some(item))?;
                }
                (Some(mut s), Some(ephemeral)) if s.ephemeral != ephemeral => {
                    s.ephemeral = ephemeral;
                    self.write_service(key, Some(s))?;
                }
                _ => {}
            }
        }
        if !self.touched.is_empty() {
            // Nacos and Consul share one registry: every registry change moves the catalog.
            super::tables::bump(self.db, self.b, super::tables::Table::Catalog, self.ctx.index)?;
        }
        let mut changes = Vec::new();
        for (key, d) in self.touched {
            if let Some(item) = d.service {
                changes.push(Change::NamingService { key: key.clone(), item });
            }
            if !d.put.is_empty() || !d.removed.is_empty() {
                changes.push(Change::NamingInstances {
                    service: key,
                    put: d.put.into_values().collect(),
                    removed: d.removed.into_iter().collect(),
                });
            }
        }
        Ok(changes)
    }
}

fn kind_name(ephemeral: bool) -> &'static str {
    if ephemeral {
        "ephemeral"
    } else {
        "persistent"
    }
}

pub fn apply(db: &DB, b: &mut WriteBatch, ctx: &ApplyCtx, cmd: &NamingCmd) -> StoreResult<(Applied, Vec<Change>)> {
    let ok = Applied::Ok { index: ctx.index };
    let mut tx = Tx::new(db, b, ctx);
    let applied = match cmd {
        NamingCmd::Register { service, owner, instances, replace_owned } => {
            if let (Some(first), Some(svc)) = (instances.first(), tx.service(service)?) {
                if svc.ephemeral != first.ephemeral && tx.has_instances(service)? {
                    let reason = format!(
                        "Current service {} is {} service, can't register {} instance.",
                        service.grouped(),
                        kind_name(svc.ephemeral),
                        kind_name(first.ephemeral)
                    );
                    return Ok((Applied::Rejected { reason }, vec![]));
                }
            }
            if *replace_owned {
                for (_, id) in tx.owned(owner, Some(service))? {
                    if !instances.iter().any(|i| i.id == id) {
                        tx.remove_instance(service, &id)?;
                    }
                }
            }
            for inst in instances {
                let mut inst = inst.clone();
                inst.owner = owner.clone();
                inst.register_time_ms = match tx.instance(service, &inst.id)? {
                    Some(old) => old.register_time_ms,
                    None => ctx.time_ms,
                };
                tx.put_instance(service, inst)?;
            }
            ok
        }
        NamingCmd::DeregisterOwned { service, owner } => {
            for (_, id) in tx.owned(owner, Some(service))? {
                tx.remove_instance(service, &id)?;
            }
            ok
        }
        NamingCmd::Remove { items } => {
            for (service, id) in items {
                tx.remove_instance(service, id)?;
            }
            ok
        }
        NamingCmd::ExpireOwners { owners } => {
            for owner in owners {
                for (service, id) in tx.owned(owner, None)? {
                    tx.remove_instance(&service, &id)?;
                }
            }
            ok
        }
        NamingCmd::SetHealth { items } => {
            for (service, id, healthy) in items {
                if let Some(mut i) = tx.instance(service, id)? {
                    if i.healthy != *healthy {
                        i.healthy = *healthy;
                        tx.put_instance(service, i)?;
                    }
                }
            }
            ok
        }
        NamingCmd::UpdateInstance { service, instance } => match tx.instance(service, &instance.id)? {
            None => Applied::NotFound,
            Some(old) => {
                let mut i = instance.clone();
                i.owner = old.owner;
                i.register_time_ms = old.register_time_ms;
                tx.put_instance(service, i)?;
                ok
            }
        },
        NamingCmd::UpsertService { key, spec, mode } => match (tx.service(key)?, mode) {
            (Some(_), UpsertMode::Create) => Applied::AlreadyExists,
            (None, UpsertMode::Update) => Applied::NotFound,
            (existing, _) => {
                let item = match existing {
                    Some(mut s) => {
                        s.spec = spec.clone();
                        s.explicit = true;
                        s.modify_time_ms = ctx.time_ms;
                        s
                    }
                    None => ServiceItem {
                        spec: spec.clone(),
                        ephemeral: true,
                        explicit: true,
                        clusters: BTreeMap::new(),
                        create_time_ms: ctx.time_ms,
                        modify_time_ms: ctx.time_ms,
                    },
                };
                tx.write_service(key, Some(item))?;
                ok
            }
        },
        NamingCmd::RemoveService { key } => match tx.service(key)? {
            None => Applied::NotFound,
            Some(_) if tx.has_instances(key)? => Applied::Rejected {
                reason: format!(
                    "Service {} is not empty, can't be delete. Please unregister instance first",
                    key.grouped()
                ),
            },
            Some(_) => {
                tx.write_service(key, None)?;
                ok
            }
        },
        NamingCmd::UpdateCluster { key, name, cluster } => match tx.service(key)? {
            None => Applied::NotFound,
            Some(mut s) => {
                s.clusters.insert(name.clone(), cluster.clone());
                s.modify_time_ms = ctx.time_ms;
                tx.write_service(key, Some(s))?;
                ok
            }
        },
        NamingCmd::RemoveEmptyServices { keys } => {
            for key in keys {
                if let Some(s) = tx.service(key)? {
                    if !s.explicit && !tx.has_instances(key)? {
                        tx.write_service(key, None)?;
                    }
                }
            }
            ok
        }
    };
    let changes = tx.finish()?;
    Ok((applied, changes))
}
