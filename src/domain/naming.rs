//! Registry rules shared by every adapter: service names (`group@@name`), instance validation,
//! defaults and generated instance ids, as Nacos applies them.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::config::normalize_namespace;
use super::config::DEFAULT_GROUP;
use super::DomainError;
use crate::state_machine::naming::InstanceItem;
use crate::state_machine::naming::Owner;
use crate::state_machine::naming::ServiceKey;

pub const DEFAULT_CLUSTER: &str = "DEFAULT";
pub const GROUP_SEP: &str = "@@";

/// Metadata keys Nacos reads per instance (milliseconds).
pub const META_BEAT_INTERVAL: &str = "preserved.heart.beat.interval";
pub const META_BEAT_TIMEOUT: &str = "preserved.heart.beat.timeout";
pub const META_DELETE_TIMEOUT: &str = "preserved.ip.delete.timeout";
pub const META_ID_GENERATOR: &str = "preserved.instance.id.generator";
pub const DEFAULT_BEAT_INTERVAL_MS: u64 = 5_000;
pub const DEFAULT_BEAT_TIMEOUT_MS: u64 = 15_000;
pub const DEFAULT_DELETE_TIMEOUT_MS: u64 = 30_000;

pub const MAX_WEIGHT: f64 = 10_000.0;
/// Total bytes of an instance's metadata keys and values.
pub const MAX_METADATA_BYTES: usize = 64 * 1024;
const MAX_NAME: usize = 512;

fn printable(s: &str) -> bool {
    !s.chars().any(char::is_control)
}

/// The service a request names: `serviceName` may be grouped (`group@@name`), in which case its
/// group wins over `groupName`, and both parts must be non-empty.
pub fn service_key(
    namespace: Option<&str>,
    group: Option<&str>,
    service: Option<&str>,
) -> Result<ServiceKey, DomainError> {
    let raw = service.map(str::trim).unwrap_or("");
    if raw.is_empty() {
        return Err(DomainError::Invalid("serviceName is required".into()));
    }
    let (group, name) = match raw.split_once(GROUP_SEP) {
        Some((g, n)) => {
            if g.is_empty() || n.is_empty() || n.contains(GROUP_SEP) {
                return Err(DomainError::Invalid(format!(
                    "Param 'serviceName' is illegal, it should be format as 'groupName@@serviceName': {raw}"
                )));
            }
            (g.to_string(), n.to_string())
        }
        None => {
            let g = group.map(str::trim).filter(|g| !g.is_empty()).unwrap_or(DEFAULT_GROUP);
            (g.to_string(), raw.to_string())
        }
    };
    if name.len() > MAX_NAME || !printable(&name) {
        return Err(DomainError::Invalid(format!("invalid serviceName: {name}")));
    }
    if group.len() > 128 || !printable(&group) || group.contains(GROUP_SEP) {
        return Err(DomainError::Invalid(format!("invalid groupName: {group}")));
    }
    let namespace = normalize_namespace(namespace);
    if namespace.len() > 128 || !namespace.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_')) {
        return Err(DomainError::Invalid(format!("invalid namespaceId: {namespace}")));
    }
    Ok(ServiceKey { namespace, group, name })
}

/// An instance as a client describes it, before validation.
#[derive(Debug, Clone)]
pub struct InstanceSpec {
    pub instance_id: String,
    pub ip: String,
    pub port: i64,
    pub weight: f64,
    pub healthy: bool,
    pub enabled: bool,
    pub ephemeral: bool,
    pub cluster: String,
    pub metadata: BTreeMap<String, String>,
}

impl Default for InstanceSpec {
    fn default() -> InstanceSpec {
        InstanceSpec {
            instance_id: String::new(),
            ip: String::new(),
            port: 0,
            weight: 1.0,
            healthy: true,
            enabled: true,
            ephemeral: true,
            cluster: String::new(),
            metadata: BTreeMap::new(),
        }
    }
}

/// An IP address or a host name (letters, digits, `-`, dots). Dotted digits must be an IPv4
/// address, so `1.2.3.999` is refused rather than taken for a host name.
pub fn valid_host(ip: &str) -> bool {
    if ip.parse::<IpAddr>().is_ok() {
        return true;
    }
    if ip.is_empty() || ip.len() > 253 || ip.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return false;
    }
    ip.split('.').all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    })
}

/// Nacos' cluster name rule.
pub fn valid_cluster(c: &str) -> bool {
    !c.is_empty() && c.len() <= 64 && c.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// A `preserved.*` timeout from metadata, or its default.
pub fn meta_ms(metadata: &BTreeMap<String, String>, key: &str, default: u64) -> u64 {
    metadata.get(key).and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(default)
}

/// Parses metadata as Nacos accepts it: a JSON object, or legacy `k=v,k2=v2`.
pub fn parse_metadata(s: &str) -> Result<BTreeMap<String, String>, DomainError> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(BTreeMap::new());
    }
    if s.starts_with('{') {
        let v: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(s).map_err(|e| DomainError::Invalid(format!("metadata is not a JSON object: {e}")))?;
        return Ok(v
            .into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect());
    }
    let mut out = BTreeMap::new();
    for pair in s.split(',').filter(|p| !p.trim().is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| DomainError::Invalid(format!("metadata must be JSON or k=v pairs, got: {pair}")))?;
        out.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(out)
}

impl InstanceSpec {
    /// Validates and completes the instance (default cluster, generated id) for `service`.
    pub fn into_item(self, service: &ServiceKey, owner: Owner) -> Result<InstanceItem, DomainError> {
        let invalid = |m: String| Err(DomainError::Invalid(m));
        let ip = self.ip.trim().to_string();
        if !valid_host(&ip) {
            return invalid(format!("instance format invalid: bad ip '{ip}'"));
        }
        if !(0..=65535).contains(&self.port) {
            return invalid(format!("instance format invalid: port {} is out of range 0-65535", self.port));
        }
        if !self.weight.is_finite() || !(0.0..=MAX_WEIGHT).contains(&self.weight) {
            return invalid("instance format invalid: The weights range from 0.0 to 10000.0".into());
        }
        let cluster =
            if self.cluster.trim().is_empty() { DEFAULT_CLUSTER.to_string() } else { self.cluster.trim().to_string() };
        if !valid_cluster(&cluster) {
            return invalid(format!("cluster name can only have these characters: 0-9a-zA-Z-, current: {cluster}"));
        }
        let meta_bytes: usize = self.metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
        if meta_bytes > MAX_METADATA_BYTES {
            return invalid(format!("instance metadata is {meta_bytes} bytes, over the limit of {MAX_METADATA_BYTES}"));
        }
        let interval = meta_ms(&self.metadata, META_BEAT_INTERVAL, DEFAULT_BEAT_INTERVAL_MS);
        let timeout = meta_ms(&self.metadata, META_BEAT_TIMEOUT, DEFAULT_BEAT_TIMEOUT_MS);
        let delete = meta_ms(&self.metadata, META_DELETE_TIMEOUT, DEFAULT_DELETE_TIMEOUT_MS);
        if interval > timeout || interval > delete {
            return invalid(
                "Instance 'heart beat interval' must less than 'heart beat timeout' and 'ip delete timeout'.".into(),
            );
        }
        let id = match self.instance_id.trim() {
            "" => format!("{ip}#{}#{cluster}#{}", self.port, service.grouped()),
            given if given.len() > MAX_NAME || !printable(given) => {
                return invalid(format!("invalid instanceId: {given}"))
            }
            given => given.to_string(),
        };
        Ok(InstanceItem {
            id,
            ip,
            port: self.port as u32,
            weight: self.weight,
            healthy: self.healthy,
            enabled: self.enabled,
            ephemeral: self.ephemeral,
            cluster,
            metadata: self.metadata,
            owner,
            register_time_ms: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouped_names_split_and_validate() {
        let k = service_key(None, Some("G"), Some("A@@svc")).unwrap();
        assert_eq!((k.namespace.as_str(), k.group.as_str(), k.name.as_str()), ("public", "A", "svc"));
        let k = service_key(Some(""), None, Some("svc")).unwrap();
        assert_eq!(k.group, DEFAULT_GROUP);
        assert!(service_key(None, None, Some("@@svc")).is_err());
        assert!(service_key(None, None, Some("g@@")).is_err());
        assert!(service_key(None, None, Some("")).is_err());
    }

    #[test]
    fn instance_validation() {
        let svc = service_key(None, None, Some("s")).unwrap();
        let ok = InstanceSpec { ip: "10.0.0.1".into(), port: 8080, ..Default::default() };
        let item = ok.clone().into_item(&svc, Owner::Beat).unwrap();
        assert_eq!(item.id, "10.0.0.1#8080#DEFAULT#DEFAULT_GROUP@@s");
        for bad in [
            InstanceSpec { port: 70000, ..ok.clone() },
            InstanceSpec { port: -1, ..ok.clone() },
            InstanceSpec { ip: "1.2.3.999".into(), ..ok.clone() },
            InstanceSpec { ip: "not an ip".into(), ..ok.clone() },
            InstanceSpec { weight: -1.0, ..ok.clone() },
            InstanceSpec { cluster: "a_b".into(), ..ok.clone() },
            InstanceSpec { metadata: BTreeMap::from([("k".into(), "v".repeat(70_000))]), ..ok.clone() },
            InstanceSpec { metadata: BTreeMap::from([(META_BEAT_INTERVAL.into(), "20000".into())]), ..ok.clone() },
        ] {
            assert!(bad.into_item(&svc, Owner::Beat).is_err());
        }
        assert!(valid_host("my-host.example.com") && valid_host("::1"));
    }

    #[test]
    fn metadata_forms() {
        assert_eq!(parse_metadata(r#"{"a":"1","b":2}"#).unwrap().get("b").unwrap(), "2");
        assert_eq!(parse_metadata("a=1,b=2").unwrap().get("a").unwrap(), "1");
        assert!(parse_metadata("{bad").is_err());
    }
}
