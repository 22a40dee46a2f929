//! Consul service and check definitions as clients send them, validated with Consul's rules
//! and texts, and turned into catalog records: service ID defaulting to the name, the registry
//! instance of a service (tags and meta in its metadata, see `state_machine::catalog`), agent
//! checks with a kind the leader runs (`ttl`, `http`, `tcp`) and catalog checks only recorded.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use super::config::DEFAULT_GROUP;
use super::config::DEFAULT_NAMESPACE;
use super::naming::DEFAULT_CLUSTER;
use super::naming::MAX_METADATA_BYTES;
use super::naming::MAX_WEIGHT;
use super::DomainError;
use crate::state_machine::catalog::*;
use crate::state_machine::naming::InstanceItem;
use crate::state_machine::naming::Owner;
use crate::state_machine::naming::ServiceKey;

/// Outputs are cut to this many bytes (Consul's default `OutputMaxSize`).
pub const MAX_OUTPUT: usize = 4096;
const MIN_INTERVAL: Duration = Duration::from_secs(1);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
pub const SERVICE_MAINT_PREFIX: &str = "_service_maintenance:";
pub const NODE_MAINT: &str = "_node_maintenance";

/// A check as a client defines it (durations already parsed).
#[derive(Debug, Clone, Default)]
pub struct CheckSpec {
    pub id: String,
    pub name: String,
    pub notes: String,
    pub status: String,
    pub output: String,
    pub service_id: String,
    pub ttl: Option<Duration>,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub deregister_after: Option<Duration>,
    pub http: String,
    pub method: String,
    pub header: BTreeMap<String, Vec<String>>,
    pub body: String,
    pub tls_skip_verify: bool,
    pub tcp: String,
    /// Kinds recorded but not run here: `grpc`, `udp`, `h2ping`, `alias`, `docker`, `script`.
    pub other: Option<&'static str>,
}

/// A service as a client defines it.
#[derive(Debug, Clone, Default)]
pub struct ServiceSpec {
    pub id: String,
    pub name: String,
    pub tags: Vec<String>,
    pub address: String,
    pub tagged_addresses: BTreeMap<String, Value>,
    pub meta: BTreeMap<String, String>,
    pub port: i64,
    pub kind: String,
    pub enable_tag_override: bool,
    /// `(Passing, Warning)` when given.
    pub weights: Option<(i64, i64)>,
    pub checks: Vec<CheckSpec>,
}

/// Where Consul services live in the registry.
pub fn service_key(name: &str) -> ServiceKey {
    ServiceKey { namespace: DEFAULT_NAMESPACE.into(), group: DEFAULT_GROUP.into(), name: name.into() }
}

pub(super) fn invalid<T>(m: impl Into<String>) -> Result<T, DomainError> {
    Err(DomainError::Invalid(m.into()))
}

pub(super) fn clean(s: &str, what: &str) -> Result<(), DomainError> {
    if s.contains('\0') || s.len() > 512 {
        return invalid(format!("Invalid {what}"));
    }
    Ok(())
}

pub fn validate_meta(meta: &BTreeMap<String, String>) -> Result<(), DomainError> {
    let bad = |m: &str| invalid(format!("Invalid Service Meta: {m}"));
    if meta.len() > 64 {
        return bad("Node metadata cannot contain more than 64 key/value pairs");
    }
    for (k, v) in meta {
        if k.is_empty() {
            return bad("Key cannot be blank");
        }
        if !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return bad(&format!("Key contains invalid characters: {k:?}"));
        }
        if k.len() > 128 {
            return bad(&format!("Key is too long (limit: 128 characters): {k:?}"));
        }
        if k.starts_with("consul-") {
            return bad(&format!("Key prefix 'consul-' is reserved for internal use: {k:?}"));
        }
        if v.len() > 512 {
            return bad(&format!("Value is too long (limit: 512 characters): {k:?}"));
        }
    }
    Ok(())
}

fn ms(d: Option<Duration>) -> u64 {
    d.map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// An agent check: its kind decides how the leader runs it.
pub fn agent_check(s: &CheckSpec, node: &str) -> Result<CheckItem, DomainError> {
    let status = if s.status.is_empty() { CRITICAL.to_string() } else { s.status.clone() };
    if !valid_status(&status) {
        return invalid("Status for checks must 'passing', 'warning', 'critical'");
    }
    clean(&s.id, "check ID")?;
    let ttl = s.ttl.filter(|d| !d.is_zero());
    let interval = s.interval.filter(|d| !d.is_zero());
    let kind = match (&s.other, s.http.is_empty(), s.tcp.is_empty()) {
        (Some("script"), _, _) => {
            return invalid(
                "Scripts are disabled on this agent; to enable, configure 'enable_script_checks' or \
                 'enable_local_script_checks' to true",
            )
        }
        (Some(k), _, _) => *k,
        (None, false, _) => "http",
        (None, true, false) => "tcp",
        (None, true, true) => "ttl",
    };
    if kind == "ttl" && ttl.is_none() {
        return invalid("Invalid check: TTL must be > 0 for TTL checks");
    }
    if kind != "ttl" && kind != "alias" && interval.is_none() {
        return invalid("Invalid check: Interval must be > 0 for Script, HTTP, H2PING, TCP or UDP checks");
    }
    if kind == "http" && !(s.http.starts_with("http://") || s.http.starts_with("https://")) {
        return invalid(format!("Invalid check: invalid HTTP check URL {:?}", s.http));
    }
    let runs = kind != "ttl" && kind != "alias";
    let output = truncate(&s.output);
    Ok(CheckItem {
        node: node.to_string(),
        id: s.id.clone(),
        name: s.name.clone(),
        status,
        notes: s.notes.clone(),
        output,
        service_id: s.service_id.clone(),
        service_name: String::new(),
        check_type: kind.to_string(),
        def: CheckDef {
            ttl_ms: ms(ttl),
            http: s.http.clone(),
            method: s.method.clone(),
            header: s.header.clone(),
            body: s.body.clone(),
            tls_skip_verify: s.tls_skip_verify,
            tcp: s.tcp.clone(),
            interval_ms: ms(interval.map(|d| d.max(MIN_INTERVAL))),
            timeout_ms: if runs { ms(Some(s.timeout.filter(|d| !d.is_zero()).unwrap_or(DEFAULT_TIMEOUT))) } else { 0 },
            deregister_critical_after_ms: ms(s.deregister_after),
        },
        create_index: 0,
        modify_index: 0,
    })
}

/// A catalog check: only recorded (Consul does not run catalog-registered checks).
pub fn catalog_check(s: &CheckSpec, node: &str) -> Result<CheckItem, DomainError> {
    let status = if s.status.is_empty() { CRITICAL.to_string() } else { s.status.clone() };
    if !valid_status(&status) {
        return invalid("Status for checks must 'passing', 'warning', 'critical'");
    }
    let id = if s.id.is_empty() { s.name.clone() } else { s.id.clone() };
    if id.is_empty() {
        return invalid("Missing check name");
    }
    clean(&id, "check ID")?;
    Ok(CheckItem {
        node: node.to_string(),
        id,
        name: s.name.clone(),
        status,
        notes: s.notes.clone(),
        output: truncate(&s.output),
        service_id: s.service_id.clone(),
        service_name: String::new(),
        check_type: String::new(),
        def: CheckDef {
            http: s.http.clone(),
            tcp: s.tcp.clone(),
            interval_ms: ms(s.interval),
            timeout_ms: ms(s.timeout),
            deregister_critical_after_ms: ms(s.deregister_after),
            ..Default::default()
        },
        create_index: 0,
        modify_index: 0,
    })
}

pub fn truncate(s: &str) -> String {
    if s.len() <= MAX_OUTPUT {
        return s.to_string();
    }
    let mut end = MAX_OUTPUT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// The registry instance of a Consul service. `strict`: agent rules (bad weights refused);
/// the catalog replaces them with 1/1, as Consul does.
pub fn service_reg(s: &ServiceSpec, node: &NodeItem, strict: bool) -> Result<ServiceReg, DomainError> {
    if s.name.is_empty() {
        return invalid("Missing service name");
    }
    clean(&s.name, "service name")?;
    let id = if s.id.is_empty() { s.name.clone() } else { s.id.clone() };
    clean(&id, "service ID")?;
    if matches!(s.address.as_str(), "0.0.0.0" | "::" | "[::]") {
        return invalid("Invalid service address");
    }
    let ip = if s.address.is_empty() { node.address.clone() } else { s.address.clone() };
    // Consul takes any address string (Docker names with `_` included), only not blank ones.
    if ip.is_empty() || ip.len() > 255 || ip.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return invalid(format!("Invalid service address {ip:?}"));
    }
    if !(0..=65535).contains(&s.port) {
        return invalid(format!("Invalid service port {}", s.port));
    }
    validate_meta(&s.meta)?;
    let (passing, warning) = match s.weights {
        None => (1, 1),
        Some((p, w)) if (1..=65535).contains(&p) && (0..=65535).contains(&w) => (p, w),
        Some(_) if !strict => (1, 1),
        Some((p, _)) if p < 1 => return invalid("Invalid Weights: Passing must be greater than 0"),
        Some(_) => return invalid("Invalid Weights: weights must not be greater than 65535 nor Warning below 0"),
    };
    let mut metadata: BTreeMap<String, String> = s.meta.clone();
    metadata.insert(META_TAGS.into(), serde_json::to_string(&s.tags).unwrap_or_else(|_| "[]".into()));
    if !s.tagged_addresses.is_empty() {
        metadata.insert(META_TAGGED.into(), serde_json::to_string(&s.tagged_addresses).unwrap_or_default());
    }
    if s.enable_tag_override {
        metadata.insert(META_TAG_OVERRIDE.into(), "true".into());
    }
    if warning != 1 {
        metadata.insert(META_WEIGHT_WARNING.into(), warning.to_string());
    }
    if !s.kind.is_empty() {
        metadata.insert(META_KIND.into(), s.kind.clone());
    }
    let bytes: usize = metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
    if bytes > MAX_METADATA_BYTES {
        return invalid(format!("service tags and meta are {bytes} bytes, over the limit of {MAX_METADATA_BYTES}"));
    }
    Ok(ServiceReg {
        key: service_key(&s.name),
        service_id: id.clone(),
        instance: InstanceItem {
            id,
            ip,
            port: s.port as u32,
            weight: (passing as f64).min(MAX_WEIGHT),
            healthy: false,
            enabled: true,
            ephemeral: true,
            cluster: DEFAULT_CLUSTER.into(),
            metadata,
            owner: Owner::Consul { node: node.name.to_lowercase() },
            register_time_ms: 0,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> NodeItem {
        NodeItem { name: "Agent-1".into(), address: "10.0.0.9".into(), ..Default::default() }
    }

    #[test]
    fn a_service_maps_onto_a_registry_instance() {
        let s = ServiceSpec {
            name: "web".into(),
            tags: vec!["v1".into()],
            meta: BTreeMap::from([("env".into(), "prod".into())]),
            port: 8080,
            weights: Some((5, 2)),
            ..Default::default()
        };
        let r = service_reg(&s, &node(), true).unwrap();
        assert_eq!((r.service_id.as_str(), r.key.name.as_str(), r.key.group.as_str()), ("web", "web", "DEFAULT_GROUP"));
        let i = &r.instance;
        assert_eq!((i.ip.as_str(), i.port, i.weight, i.ephemeral), ("10.0.0.9", 8080, 5.0, true));
        assert_eq!(i.owner, Owner::Consul { node: "agent-1".into() });
        assert_eq!(i.metadata.get(META_TAGS).map(String::as_str), Some("[\"v1\"]"));
        assert_eq!(i.metadata.get("env").map(String::as_str), Some("prod"));
        assert_eq!(i.metadata.get(META_WEIGHT_WARNING).map(String::as_str), Some("2"));
        let docker = ServiceSpec { name: "d".into(), address: "my_app_1".into(), ..Default::default() };
        assert_eq!(service_reg(&docker, &node(), true).unwrap().instance.ip, "my_app_1");
        // The catalog replaces bad weights; the agent refuses them.
        let zero = ServiceSpec { name: "z".into(), weights: Some((0, 0)), ..Default::default() };
        assert_eq!(service_reg(&zero, &node(), false).unwrap().instance.weight, 1.0);
        assert!(service_reg(&zero, &node(), true).is_err());
    }

    #[test]
    fn check_kinds_and_defaults() {
        let ttl = CheckSpec { id: "t".into(), ttl: Some(Duration::from_secs(5)), ..Default::default() };
        let c = agent_check(&ttl, "n").unwrap();
        assert_eq!(
            (c.check_type.as_str(), c.status.as_str(), c.def.ttl_ms, c.def.timeout_ms),
            ("ttl", CRITICAL, 5000, 0)
        );
        let http = CheckSpec {
            http: "http://x/health".into(),
            interval: Some(Duration::from_millis(200)),
            status: PASSING.into(),
            ..Default::default()
        };
        let c = agent_check(&http, "n").unwrap();
        assert_eq!((c.check_type.as_str(), c.status.as_str()), ("http", PASSING));
        assert_eq!((c.def.interval_ms, c.def.timeout_ms), (1000, 10_000), "interval floor 1 s, timeout 10 s");
        let tcp = CheckSpec { tcp: "h:1".into(), interval: Some(Duration::from_secs(2)), ..Default::default() };
        assert_eq!(agent_check(&tcp, "n").unwrap().check_type, "tcp");
        for bad in [
            CheckSpec::default(),
            CheckSpec { http: "http://x".into(), ..Default::default() },
            CheckSpec { http: "ftp://x".into(), interval: Some(Duration::from_secs(1)), ..Default::default() },
            CheckSpec { ttl: Some(Duration::from_secs(1)), status: "ok".into(), ..Default::default() },
            CheckSpec { other: Some("script"), interval: Some(Duration::from_secs(1)), ..Default::default() },
        ] {
            assert!(agent_check(&bad, "n").is_err(), "{bad:?}");
        }
        let cat = catalog_check(&CheckSpec { name: "ping".into(), ..Default::default() }, "n").unwrap();
        assert_eq!((cat.id.as_str(), cat.status.as_str(), cat.check_type.as_str()), ("ping", CRITICAL, ""));
        assert_eq!(truncate(&"é".repeat(3000)).len(), 4096);
    }
}
