//! The registry in memory: every service with its instances, kept in step with apply. Queries,
//! subscriber pushes and the leader's liveness scans read it without touching RocksDB.
//!
//! Updated from each applied entry's changes (right after its batch is written, before the
//! change is published) and rebuilt from RocksDB on open and when the data is replaced.

use std::collections::BTreeMap;
use std::collections::HashMap;

use super::command::Change;
use super::naming::InstanceItem;
use super::naming::ServiceItem;
use super::naming::ServiceKey;

/// One service as stored: its record and its instances by id.
#[derive(Debug, Clone)]
pub struct ServiceView {
    pub item: ServiceItem,
    pub instances: BTreeMap<String, InstanceItem>,
}

#[derive(Default)]
pub struct NamingIndex {
    services: HashMap<ServiceKey, ServiceView>,
}

impl NamingIndex {
    pub fn build(all: BTreeMap<ServiceKey, (ServiceItem, Vec<InstanceItem>)>) -> NamingIndex {
        let services = all
            .into_iter()
            .map(|(k, (item, list))| {
                let instances = list.into_iter().map(|i| (i.id.clone(), i)).collect();
                (k, ServiceView { item, instances })
            })
            .collect();
        NamingIndex { services }
    }

    /// Applies one registry change (others are ignored).
    pub fn apply(&mut self, change: &Change) {
        match change {
            Change::NamingService { key, item: Some(item) } => match self.services.get_mut(key) {
                Some(v) => v.item = item.clone(),
                None => {
                    self.services.insert(key.clone(), ServiceView { item: item.clone(), instances: BTreeMap::new() });
                }
            },
            Change::NamingService { key, item: None } => {
                self.services.remove(key);
            }
            Change::NamingInstances { service, put, removed } => {
                if let Some(v) = self.services.get_mut(service) {
                    for id in removed {
                        v.instances.remove(id);
                    }
                    for i in put {
                        v.instances.insert(i.id.clone(), i.clone());
                    }
                }
            }
            _ => {}
        }
    }

    pub fn service(&self, key: &ServiceKey) -> Option<&ServiceView> {
        self.services.get(key)
    }

    pub fn services(&self) -> impl Iterator<Item = (&ServiceKey, &ServiceView)> {
        self.services.iter()
    }

    pub fn instance_count(&self) -> usize {
        self.services.values().map(|v| v.instances.len()).sum()
    }
}
