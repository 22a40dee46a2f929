//! What clients read from the registry: Nacos' `Instance` and `ServiceInfo` shapes, with its
//! selection rules (cluster filter, enabled-only, healthy-only, protection threshold).

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;

use serde::Serialize;

use super::naming::meta_ms;
use super::naming::DEFAULT_BEAT_INTERVAL_MS;
use super::naming::DEFAULT_BEAT_TIMEOUT_MS;
use super::naming::DEFAULT_DELETE_TIMEOUT_MS;
use super::naming::META_BEAT_INTERVAL;
use super::naming::META_BEAT_TIMEOUT;
use super::naming::META_DELETE_TIMEOUT;
use super::naming::META_ID_GENERATOR;
use crate::state_machine::naming::InstanceItem;
use crate::state_machine::naming::ServiceKey;
use crate::state_machine::naming_index::ServiceView;

/// Nacos' `defaultPushCacheMillis`.
pub const CACHE_MILLIS: u64 = 10_000;

/// An instance as every Nacos client reads it (the optional-looking fields are required by the
/// Rust and Python clients, so they are always present).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceView {
    pub instance_id: String,
    pub ip: String,
    pub port: u32,
    pub weight: f64,
    pub healthy: bool,
    pub enabled: bool,
    pub ephemeral: bool,
    pub cluster_name: String,
    /// Grouped: `group@@service`.
    pub service_name: String,
    pub metadata: BTreeMap<String, String>,
    pub instance_heart_beat_interval: u64,
    pub instance_heart_beat_time_out: u64,
    pub ip_delete_timeout: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_id_generator: Option<String>,
}

impl InstanceView {
    pub fn of(service: &ServiceKey, i: &InstanceItem) -> InstanceView {
        let generator = match i.metadata.get(META_ID_GENERATOR) {
            Some(g) => Some(g.clone()),
            None if i.metadata.is_empty() => Some("simple".to_string()),
            None => None,
        };
        InstanceView {
            instance_id: i.id.clone(),
            ip: i.ip.clone(),
            port: i.port,
            weight: i.weight,
            healthy: i.healthy,
            enabled: i.enabled,
            ephemeral: i.ephemeral,
            cluster_name: i.cluster.clone(),
            service_name: service.grouped(),
            metadata: i.metadata.clone(),
            instance_heart_beat_interval: meta_ms(&i.metadata, META_BEAT_INTERVAL, DEFAULT_BEAT_INTERVAL_MS),
            instance_heart_beat_time_out: meta_ms(&i.metadata, META_BEAT_TIMEOUT, DEFAULT_BEAT_TIMEOUT_MS),
            ip_delete_timeout: meta_ms(&i.metadata, META_DELETE_TIMEOUT, DEFAULT_DELETE_TIMEOUT_MS),
            instance_id_generator: generator,
        }
    }
}

/// Nacos' `ServiceInfo`. Both spellings of `allIPs` are sent: 2.x clients read one, 3.x the other.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceInfo {
    pub name: String,
    pub group_name: String,
    /// The cluster filter the caller asked for, echoed (a string, never null).
    pub clusters: String,
    pub cache_millis: u64,
    pub hosts: Vec<InstanceView>,
    pub last_ref_time: u64,
    pub checksum: String,
    #[serde(rename = "allIPs")]
    pub all_ips_v2: bool,
    #[serde(rename = "allIps")]
    pub all_ips_v3: bool,
    pub reach_protection_threshold: bool,
    pub valid: bool,
}

/// What a query selects.
#[derive(Debug, Clone, Default)]
pub struct Selection<'a> {
    /// Comma-separated cluster names; empty means all.
    pub clusters: &'a str,
    pub healthy_only: bool,
    /// `name` grouped (`group@@svc`, HTTP v1 list) rather than plain (gRPC).
    pub grouped_name: bool,
}

static LAST_REF: AtomicU64 = AtomicU64::new(0);

/// A `lastRefTime` that never goes back on this node, even if the clock does: Java clients
/// ignore data older than what they hold.
pub fn last_ref_time() -> u64 {
    let now = crate::now_ms();
    let prev = LAST_REF.fetch_max(now, Ordering::Relaxed);
    if prev >= now {
        LAST_REF.fetch_add(1, Ordering::Relaxed) + 1
    } else {
        now
    }
}

/// Builds the `ServiceInfo` of `view` (absent: an empty service) for a selection.
pub fn service_info(key: &ServiceKey, view: Option<&ServiceView>, sel: &Selection<'_>) -> ServiceInfo {
    let wanted: Vec<&str> = sel.clusters.split(',').map(str::trim).filter(|c| !c.is_empty()).collect();
    let mut hosts: Vec<InstanceView> = view
        .map(|v| {
            v.instances
                .values()
                .filter(|i| i.enabled && (wanted.is_empty() || wanted.contains(&i.cluster.as_str())))
                .map(|i| InstanceView::of(key, i))
                .collect()
        })
        .unwrap_or_default();
    let threshold = view.map(|v| v.item.spec.protect_threshold).unwrap_or(0.0).max(0.0);
    let healthy = hosts.iter().filter(|h| h.healthy).count();
    let mut protected = false;
    if !hosts.is_empty() && (healthy as f64 / hosts.len() as f64) <= threshold {
        // Too few healthy instances: hand out all of them rather than overload the few.
        protected = true;
        for h in &mut hosts {
            h.healthy = true;
        }
    } else if sel.healthy_only {
        hosts.retain(|h| h.healthy);
    }
    ServiceInfo {
        name: if sel.grouped_name { key.grouped() } else { key.name.clone() },
        group_name: key.group.clone(),
        clusters: sel.clusters.to_string(),
        cache_millis: CACHE_MILLIS,
        hosts,
        last_ref_time: last_ref_time(),
        checksum: String::new(),
        all_ips_v2: false,
        all_ips_v3: false,
        reach_protection_threshold: protected,
        valid: true,
    }
}
