//! Node configuration: `conf/application.yml` + `BATATA_*` environment overrides,
//! and the `cluster.conf` member list.
//!
//! Resolution order for every key (later wins): built-in default, config file,
//! generic env var (`a.b-c` -> `BATATA_A_B_C`), named env alias (`BATATA_SERVER_PORT`).
//! The file is read as an untyped YAML tree and every leaf is normalised to its full
//! dotted path, so nested YAML and flat Spring-style keys (`nacos.server.main.port: 1`)
//! mix freely. Values are then converted key by key, which lets every error name the
//! file, line and key instead of serde's anonymous "invalid type" messages.

use serde_yaml_ng::Value;

mod cluster_conf;
mod loader;
#[cfg(test)]
mod tests;

pub use cluster_conf::parse_cluster_conf;
pub use cluster_conf::Member;
use cluster_conf::*;
use loader::*;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

/// Config file used by [`load`] when no path is given and it exists.
pub const DEFAULT_CONFIG_PATH: &str = "conf/application.yml";
/// Label used in errors when no config file was read.
const NO_FILE: &str = "<defaults>";

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{path}: cannot read file: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}{}: YAML syntax error: {message}", at(.line))]
    Syntax { file: String, line: Option<usize>, message: String },
    #[error("{file}{}: {key}: {message}", at(.line))]
    Invalid { file: String, line: Option<usize>, key: String, message: String },
    #[error("environment variable {var}: {key}: {message}")]
    Env { var: String, key: String, message: String },
    #[error("{file}{}: {message}", at(.line))]
    ClusterConf { file: String, line: Option<usize>, message: String },
}

fn at(line: &Option<usize>) -> String {
    line.map(|l| format!(":{l}")).unwrap_or_default()
}

macro_rules! str_enum {
    ($(#[$m:meta])* $name:ident { $($var:ident = $s:literal),+ } $extra:expr) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $name { $($var),+ }
        impl $name {
            pub fn as_str(self) -> &'static str { match self { $(Self::$var => $s),+ } }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(self.as_str()) }
        }
        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                let t = s.trim().to_ascii_lowercase();
                $(if t == $s { return Ok(Self::$var); })+
                let extra: fn(&str) -> Option<String> = $extra;
                Err(extra(&t).unwrap_or_else(|| {
                    format!("expected one of {}, got {s:?}", [$(concat!("\"", $s, "\"")),+].join(", "))
                }))
            }
        }
    };
}

str_enum!(/// Which HTTP surfaces this process serves (`deployment.type`).
    DeploymentType { All = "all", Server = "server", Console = "console" } |_| None);
str_enum!(/// How cluster members are discovered (`cluster.member.lookup.type`).
    LookupType { Standalone = "standalone", File = "file" }
    |t| (t == "address-server").then(|| "lookup type \"address-server\" is not supported; use \"standalone\" or \"file\"".to_string()));
str_enum!(/// Consul ACL default policy for requests no rule covers (`consul.acl.default-policy`).
    AclDefault { Allow = "allow", Deny = "deny" } |_| None);
str_enum!(/// Raft membership kind of this node (`datacenter.role`).
    NodeRole { Voter = "voter", Learner = "learner" } |_| None);

/// Secret keys published in Nacos' code and documentation: anyone can forge tokens signed
/// with them (the default key shipped up to Nacos 2.2.0, and the documentation's example).
pub const KNOWN_NACOS_KEYS: &[&str] = &[
    "SecretKey012345678901234567890123456789012345678901234567890123456789",
    "VGhpc0lzTXlDdXN0b21TZWNyZXRLZXkwMTIzNDU2Nzg=",
];

/// A token key as Nacos takes it: Base64 of at least 32 bytes, and not a published one.
pub fn check_secret_key(key: &str) -> Result<Vec<u8>, String> {
    use base64::Engine as _;
    if KNOWN_NACOS_KEYS.contains(&key.trim()) {
        return Err("is a secret key published by Nacos: anyone could forge tokens with it; choose your own".into());
    }
    let bytes =
        base64::engine::general_purpose::STANDARD.decode(key.trim()).map_err(|e| format!("must be Base64 ({e})"))?;
    if bytes.len() < 32 {
        return Err(format!("must decode to at least 32 bytes, got {}", bytes.len()));
    }
    Ok(bytes)
}

/// Locality settings (`datacenter.*`).
#[derive(Clone, Debug)]
pub struct Datacenter {
    pub local: String,
    pub region: String,
    pub zone: String,
    pub locality_weight: f64,
    pub cross_dc_replication: bool,
    pub cross_dc_sync_delay_secs: u64,
    pub replication_factor: u32,
    pub role: NodeRole,
}

/// OpenTelemetry export settings (`otel.*`).
#[derive(Clone, Debug)]
pub struct Otel {
    pub enabled: bool,
    pub endpoint: String,
    pub service_name: String,
    pub sampling_ratio: f64,
    pub export_timeout_secs: u64,
}

/// Raft timing and log compaction settings (`raft.*`).
#[derive(Clone, Debug)]
pub struct RaftSettings {
    pub heartbeat_interval_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    pub snapshot_logs_since_last: u64,
    pub max_in_snapshot_log_to_keep: u64,
    pub install_snapshot_timeout_ms: u64,
    /// How long the leader waits for more client writes before proposing a partial batch.
    pub api_batch_linger_ms: u64,
}

#[derive(Clone, Debug)]
pub struct Settings {
    /// The file the settings were read from (None = defaults + env only).
    pub config_file: Option<PathBuf>,
    pub server_port: u16,
    pub context_path: String,
    pub bind_address: IpAddr,
    pub advertise_host: String,
    pub console_port: u16,
    pub console_context_path: String,
    pub sdk_port: u16,
    pub cluster_port: u16,
    pub cluster_bind_address: IpAddr,
    pub cluster_secret: Option<String>,
    /// `addr=>via` pairs: dial `via` to reach the peer at `addr` (a tunnel, a NAT, or the
    /// fault-injecting proxy of tests/jepsen-lite). Empty: dial peers directly.
    pub cluster_peer_routes: String,
    /// Test-only seeded bug: linearizable reads skip the read-index (tests/jepsen-lite proves its
    /// checker catches this). Never set it in production.
    pub debug_skip_read_index: bool,
    /// 0 = do not serve the dedicated Consul port.
    pub consul_port: u16,
    pub auth_enabled: bool,
    pub auth_token_expire_seconds: u64,
    pub auth_secret_key: Option<String>,
    /// Password of the first administrator (`nacos`), created at start when no admin exists.
    pub auth_admin_password: Option<String>,
    /// Failed logins from one address for one user before further attempts are refused.
    pub auth_login_max_failures: u32,
    /// How long a throttled address/user pair is refused.
    pub auth_login_lock_seconds: u64,
    /// Consul ACL default policy when auth is on: `deny` (default) or `allow`.
    pub consul_acl_default_policy: AclDefault,
    pub db_url: Option<String>,
    pub deployment_type: DeploymentType,
    pub lookup_type: LookupType,
    pub cluster_members: Vec<String>,
    pub cluster_conf_path: PathBuf,
    pub data_dir: PathBuf,
    pub datacenter: Datacenter,
    pub otel: Otel,
    pub raft: RaftSettings,
    pub max_body_bytes: usize,
    /// SDK connections this node holds at most; more are refused (the client tries another node).
    pub sdk_max_connections: usize,
    pub config_max_content_bytes: usize,
    /// Days config history rows are kept (`nacos.config.retention.days`, as in Nacos).
    pub config_history_retention_days: u64,
    pub shutdown_grace_ms: u64,
    /// How long the leader waits before expiring the instances of an SDK connection it no longer
    /// hears of (its node died, or the close was not committed).
    pub naming_connection_grace_ms: u64,
    /// How long a service created by a registration may stay empty before the leader drops it.
    pub naming_empty_service_clean_ms: u64,
    /// Interval of the leader's health checks of persistent instances.
    pub naming_health_check_interval_ms: u64,
    /// Non-fatal findings (unknown or repeated keys), each naming file:line and key.
    pub warnings: Vec<String>,
}

impl Default for Datacenter {
    fn default() -> Self {
        Self {
            local: "dc1".into(),
            region: String::new(),
            zone: String::new(),
            locality_weight: 1.0,
            cross_dc_replication: false,
            cross_dc_sync_delay_secs: 1,
            replication_factor: 1,
            role: NodeRole::Voter,
        }
    }
}

impl Default for Otel {
    fn default() -> Self {
        Self {
            enabled: false,
            endpoint: "http://localhost:4317".into(),
            service_name: "batata".into(),
            sampling_ratio: 1.0,
            export_timeout_secs: 30,
        }
    }
}

impl Default for RaftSettings {
    fn default() -> Self {
        Self {
            heartbeat_interval_ms: 100,
            election_timeout_min_ms: 500,
            election_timeout_max_ms: 1000,
            snapshot_logs_since_last: 10_000,
            max_in_snapshot_log_to_keep: 1000,
            install_snapshot_timeout_ms: 10_000,
            api_batch_linger_ms: 0,
        }
    }
}

/// The defaults describe a working standalone node; they are the single source of truth.
impl Default for Settings {
    fn default() -> Self {
        let any = IpAddr::from([0, 0, 0, 0]);
        Self {
            config_file: None,
            server_port: 8848,
            context_path: "/nacos".into(),
            bind_address: any,
            advertise_host: "127.0.0.1".into(),
            console_port: 8081,
            console_context_path: "/nacos".into(),
            sdk_port: 9848,
            cluster_port: 9849,
            cluster_bind_address: any,
            cluster_secret: None,
            cluster_peer_routes: String::new(),
            debug_skip_read_index: false,
            consul_port: 8500,
            auth_enabled: true,
            auth_token_expire_seconds: 18_000,
            auth_secret_key: None,
            auth_admin_password: None,
            auth_login_max_failures: 5,
            auth_login_lock_seconds: 300,
            consul_acl_default_policy: AclDefault::Deny,
            db_url: None,
            deployment_type: DeploymentType::All,
            lookup_type: LookupType::Standalone,
            cluster_members: Vec::new(),
            cluster_conf_path: PathBuf::from("conf/cluster.conf"),
            data_dir: PathBuf::from("data"),
            datacenter: Datacenter::default(),
            otel: Otel::default(),
            raft: RaftSettings::default(),
            max_body_bytes: 10 * 1024 * 1024,
            sdk_max_connections: 20_000,
            config_max_content_bytes: 1024 * 1024,
            config_history_retention_days: 30,
            shutdown_grace_ms: 10_000,
            naming_connection_grace_ms: 15_000,
            naming_health_check_interval_ms: 2_000,
            naming_empty_service_clean_ms: 60_000,
            warnings: Vec::new(),
        }
    }
}

impl Settings {
    pub fn http_bind_addr(&self) -> SocketAddr {
        SocketAddr::new(self.bind_address, self.server_port)
    }
    pub fn console_bind_addr(&self) -> SocketAddr {
        SocketAddr::new(self.bind_address, self.console_port)
    }
    pub fn sdk_bind_addr(&self) -> SocketAddr {
        SocketAddr::new(self.bind_address, self.sdk_port)
    }
    pub fn cluster_bind_addr(&self) -> SocketAddr {
        SocketAddr::new(self.cluster_bind_address, self.cluster_port)
    }
    /// None when the dedicated Consul port is disabled (`consul.port: 0`).
    pub fn consul_bind_addr(&self) -> Option<SocketAddr> {
        (self.consul_port != 0).then(|| SocketAddr::new(self.bind_address, self.consul_port))
    }

    /// Cluster members for this node's lookup type. Standalone has none; `file` reads
    /// `cluster_conf_path` when it exists and falls back to `cluster.members`.
    pub fn members(&self) -> Result<Vec<Member>, SettingsError> {
        if self.lookup_type == LookupType::Standalone {
            return Ok(Vec::new());
        }
        let path = &self.cluster_conf_path;
        let label = path.display().to_string();
        if path.exists() {
            let text =
                std::fs::read_to_string(path).map_err(|source| SettingsError::Read { path: label.clone(), source })?;
            let found = conf_members(&text, &label, self.server_port)?;
            if !found.is_empty() || self.cluster_members.is_empty() {
                return non_empty(found, &label);
            }
        }
        let found = parse_list(&self.cluster_members, self.server_port).map_err(|message| SettingsError::Invalid {
            file: self.config_file.as_ref().map_or(NO_FILE.into(), |p| p.display().to_string()),
            line: None,
            key: "cluster.members".into(),
            message,
        })?;
        non_empty(found, &format!("{label} and cluster.members"))
    }
}

/// Loads settings using the process environment. See [`load_with_env`].
pub fn load(path: Option<&Path>) -> Result<Settings, SettingsError> {
    // vars_os: std::env::vars panics on a non-UTF-8 variable; such variables are not ours.
    let env = std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
    load_with_env(path, &env.collect())
}

/// Loads `path`, or [`DEFAULT_CONFIG_PATH`] if it exists, or pure defaults; then applies `env`.
/// An explicitly given path must exist.
pub fn load_with_env(path: Option<&Path>, env: &HashMap<String, String>) -> Result<Settings, SettingsError> {
    let chosen = match path {
        Some(p) => Some(p.to_path_buf()),
        None => Some(PathBuf::from(DEFAULT_CONFIG_PATH)).filter(|p| p.is_file()),
    };
    let Some(file) = chosen else {
        tracing::debug!("no config file; using defaults and environment");
        return parse_text("", NO_FILE, env);
    };
    let label = file.display().to_string();
    let text = std::fs::read_to_string(&file).map_err(|source| SettingsError::Read { path: label.clone(), source })?;
    tracing::debug!(file = %label, "loading settings");
    let mut settings = parse_text(&text, &label, env)?;
    settings.config_file = Some(file);
    Ok(settings)
}

/// Builds settings from YAML text; `file` is only used in messages.
pub(crate) fn parse_text(text: &str, file: &str, env: &HashMap<String, String>) -> Result<Settings, SettingsError> {
    let root: Value = serde_yaml_ng::from_str(text).map_err(|e| SettingsError::Syntax {
        file: file.into(),
        line: e.location().map(|l| l.line()),
        message: e.to_string(),
    })?;
    let mut l = Loader {
        file,
        env,
        lines: key_lines(text),
        values: BTreeMap::new(),
        used: HashSet::new(),
        origins: HashMap::new(),
        warnings: Vec::new(),
    };
    match &root {
        Value::Null => {}
        Value::Mapping(_) => l.flatten("", &root),
        _ => return Err(l.err("(root)", "the top level must be a mapping of keys".into())),
    }
    build(&mut l)
}

// One line per key reads as a table; rustfmt would explode it to ~6 lines per key.
#[rustfmt::skip]
fn build(l: &mut Loader) -> Result<Settings, SettingsError> {
    let mut s = Settings::default();
    // The alias argument is only given where it differs from the generic BATATA_* name.
    l.set(&mut s.server_port, "nacos.server.main.port", "BATATA_SERVER_PORT", to_port)?;
    l.set(&mut s.context_path, "nacos.server.context-path", "BATATA_CONTEXT_PATH", to_string)?;
    l.set(&mut s.bind_address, "nacos.server.bind-address", "BATATA_BIND_ADDRESS", to_ip)?;
    l.set(&mut s.advertise_host, "nacos.server.ip", "BATATA_SERVER_IP", to_string)?;
    l.set(&mut s.console_port, "nacos.console.port", "BATATA_CONSOLE_PORT", to_port)?;
    l.set(&mut s.console_context_path, "nacos.console.context-path", "", to_string)?;
    // Clients derive the gRPC port from the main port (+1000), so both follow it unless set.
    s.sdk_port = s.server_port.saturating_add(1000);
    s.cluster_port = s.server_port.saturating_add(1001);
    l.set(&mut s.sdk_port, "nacos.sdk.port", "BATATA_SDK_PORT", to_port)?;
    l.set(&mut s.cluster_port, "nacos.cluster.port", "BATATA_CLUSTER_PORT", to_port)?;
    l.set(&mut s.cluster_bind_address, "nacos.cluster.bind-address", "BATATA_CLUSTER_BIND_ADDRESS", to_ip)?;
    l.set(&mut s.cluster_secret, "nacos.cluster.secret", "BATATA_CLUSTER_SECRET", to_opt_string)?;
    l.set(&mut s.cluster_peer_routes, "nacos.cluster.peer-routes", "", to_string)?;
    l.set(&mut s.debug_skip_read_index, "debug.fault.skip-read-index", "", to_bool)?;
    l.set(&mut s.consul_port, "consul.port", "BATATA_CONSUL_PORT", to_port_or_zero)?;
    l.set(&mut s.auth_enabled, "nacos.core.auth.enabled", "BATATA_AUTH_ENABLED", to_bool)?;
    // The legacy key is applied first so the plugin key wins when both are present.
    l.set(&mut s.auth_token_expire_seconds, "nacos.core.auth.token.expire.seconds", "", to_u64)?;
    l.set(&mut s.auth_token_expire_seconds, "nacos.core.auth.plugin.nacos.token.expire.seconds", "BATATA_AUTH_TOKEN_EXPIRE_SECONDS", to_u64)?;
    l.set(&mut s.auth_secret_key, "nacos.core.auth.plugin.nacos.token.secret.key", "BATATA_AUTH_SECRET_KEY", to_opt_string)?;
    l.set(&mut s.auth_admin_password, "nacos.core.auth.admin.password", "BATATA_ADMIN_PASSWORD", to_opt_string)?;
    l.set(&mut s.auth_login_max_failures, "nacos.core.auth.login.max-failures", "", to_u32)?;
    l.set(&mut s.auth_login_lock_seconds, "nacos.core.auth.login.lock-seconds", "", to_u64)?;
    l.set(&mut s.consul_acl_default_policy, "consul.acl.default-policy", "BATATA_CONSUL_ACL_DEFAULT_POLICY", to_parsed)?;
    l.set(&mut s.db_url, "db.url", "BATATA_DB_URL", to_opt_string)?;
    l.set(&mut s.deployment_type, "deployment.type", "BATATA_DEPLOYMENT_TYPE", to_parsed)?;
    l.set(&mut s.lookup_type, "cluster.member.lookup.type", "BATATA_CLUSTER_LOOKUP_TYPE", to_parsed)?;
    l.set(&mut s.cluster_members, "cluster.members", "", to_list)?;
    l.set(&mut s.cluster_conf_path, "cluster.conf.path", "BATATA_CLUSTER_CONF", to_path)?;
    l.set(&mut s.data_dir, "data-dir", "", to_path)?;
    let dc = &mut s.datacenter;
    l.set(&mut dc.local, "datacenter.local", "BATATA_DATACENTER", to_string)?;
    l.set(&mut dc.region, "datacenter.region", "BATATA_REGION", to_string)?;
    l.set(&mut dc.zone, "datacenter.zone", "BATATA_ZONE", to_string)?;
    l.set(&mut dc.locality_weight, "datacenter.locality-weight", "BATATA_LOCALITY_WEIGHT", to_f64)?;
    l.set(&mut dc.cross_dc_replication, "datacenter.cross-dc-replication", "", to_bool)?;
    l.set(&mut dc.cross_dc_sync_delay_secs, "datacenter.cross-dc-sync-delay", "", to_u64)?;
    l.set(&mut dc.replication_factor, "datacenter.replication-factor", "", to_u32)?;
    l.set(&mut dc.role, "datacenter.role", "BATATA_NODE_ROLE", to_parsed)?;
    let o = &mut s.otel;
    l.set(&mut o.enabled, "otel.enabled", "", to_bool)?;
    l.set(&mut o.endpoint, "otel.endpoint", "", to_string)?;
    l.set(&mut o.service_name, "otel.service-name", "", to_string)?;
    l.set(&mut o.sampling_ratio, "otel.sampling-ratio", "", to_f64)?;
    l.set(&mut o.export_timeout_secs, "otel.export-timeout-secs", "", to_u64)?;
    let r = &mut s.raft;
    l.set(&mut r.heartbeat_interval_ms, "raft.heartbeat-interval-ms", "", to_u64)?;
    l.set(&mut r.election_timeout_min_ms, "raft.election-timeout-min-ms", "", to_u64)?;
    l.set(&mut r.election_timeout_max_ms, "raft.election-timeout-max-ms", "", to_u64)?;
    l.set(&mut r.snapshot_logs_since_last, "raft.snapshot-logs-since-last", "", to_u64)?;
    l.set(&mut r.max_in_snapshot_log_to_keep, "raft.max-in-snapshot-log-to-keep", "", to_u64)?;
    l.set(&mut r.install_snapshot_timeout_ms, "raft.install-snapshot-timeout-ms", "", to_u64)?;
    l.set(&mut r.api_batch_linger_ms, "raft.api-batch-linger-ms", "", to_u64)?;
    l.set(&mut s.max_body_bytes, "server.max-body-bytes", "BATATA_MAX_BODY_BYTES", to_usize)?;
    l.set(&mut s.sdk_max_connections, "nacos.sdk.max-connections", "BATATA_SDK_MAX_CONNECTIONS", to_usize)?;
    l.set(&mut s.config_max_content_bytes, "nacos.config.max-content-bytes", "BATATA_CONFIG_MAX_CONTENT_BYTES", to_usize)?;
    l.set(&mut s.config_history_retention_days, "nacos.config.retention.days", "BATATA_CONFIG_RETENTION_DAYS", to_u64)?;
    l.set(&mut s.shutdown_grace_ms, "server.shutdown-grace-ms", "", to_u64)?;
    l.set(&mut s.naming_connection_grace_ms, "nacos.naming.connection-grace-ms", "", to_u64)?;
    l.set(&mut s.naming_empty_service_clean_ms, "nacos.naming.clean.empty-service.expired-time", "", to_u64)?;
    l.set(&mut s.naming_health_check_interval_ms, "nacos.naming.health-check-interval-ms", "", to_u64)?;
    validate(l, &s)?;
    s.warnings = std::mem::take(&mut l.warnings);
    for key in l.values.keys().filter(|k| !l.used.contains(*k)) {
        s.warnings.push(format!("{}{}: unknown key `{key}` ignored", l.file, at(&l.line_of(key))));
    }
    Ok(s)
}

/// Cross-field and range checks; each failure blames the key whose value is wrong.
#[rustfmt::skip]
fn validate(l: &Loader, s: &Settings) -> Result<(), SettingsError> {
    let check = |ok: bool, key: &str, msg: String| if ok { Ok(()) } else { Err(l.err(key, msg)) };
    // For a broken pair, blame the key the user actually set rather than a default.
    let pick = |a: &'static str, b: &'static str| if l.origins.contains_key(a) || !l.origins.contains_key(b) { a } else { b };
    let at_least_1 = || "must be at least 1".to_string();
    for (key, p) in [("nacos.server.context-path", &s.context_path), ("nacos.console.context-path", &s.console_context_path)] {
        let ok = p == "/" || (p.starts_with('/') && !p.ends_with('/'));
        check(ok, key, format!("must start with \"/\" and not end with \"/\" (unless exactly \"/\"), got {p:?}"))?;
    }
    let h = &s.advertise_host;
    check(!h.is_empty() && !h.contains(|c: char| c.is_whitespace() || c == '/'), "nacos.server.ip", format!("{h:?} is not a host name or address"))?;
    if let Some(sec) = &s.cluster_secret {
        check(sec.len() >= 16, "nacos.cluster.secret", format!("must be at least 16 bytes, got {}", sec.len()))?;
    }
    if s.auth_enabled {
        let key = "nacos.core.auth.plugin.nacos.token.secret.key";
        let how = "(env BATATA_AUTH_SECRET_KEY; generate one with `openssl rand -base64 32`), or set nacos.core.auth.enabled: false";
        match &s.auth_secret_key {
            None => return Err(l.err(key, format!("is required when nacos.core.auth.enabled is true {how}"))),
            Some(k) => drop(check_secret_key(k).map_err(|m| l.err(key, format!("{m} {how}")))?),
        }
    }
    check(s.auth_login_max_failures >= 1, "nacos.core.auth.login.max-failures", at_least_1())?;
    if let Some(url) = &s.db_url {
        check(url.starts_with("mysql://"), "db.url", "must start with \"mysql://\"".into())?;
    }
    let w = s.datacenter.locality_weight;
    check(w.is_finite() && w >= 0.0, "datacenter.locality-weight", format!("must be a non-negative number, got {w}"))?;
    check(s.datacenter.replication_factor >= 1, "datacenter.replication-factor", at_least_1())?;
    let r = s.otel.sampling_ratio;
    check((0.0..=1.0).contains(&r), "otel.sampling-ratio", format!("must be within 0..=1, got {r}"))?;
    check(s.otel.export_timeout_secs >= 1, "otel.export-timeout-secs", at_least_1())?;
    let (hb, min, max) = (s.raft.heartbeat_interval_ms, s.raft.election_timeout_min_ms, s.raft.election_timeout_max_ms);
    check(hb >= 1, "raft.heartbeat-interval-ms", at_least_1())?;
    check(min > hb, pick("raft.election-timeout-min-ms", "raft.heartbeat-interval-ms"),
        format!("raft.election-timeout-min-ms ({min}) must be greater than raft.heartbeat-interval-ms ({hb})"))?;
    check(max > min, pick("raft.election-timeout-max-ms", "raft.election-timeout-min-ms"),
        format!("raft.election-timeout-max-ms ({max}) must be greater than raft.election-timeout-min-ms ({min})"))?;
    check(s.raft.snapshot_logs_since_last >= 1, "raft.snapshot-logs-since-last", at_least_1())?;
    check(s.max_body_bytes >= 1, "server.max-body-bytes", at_least_1())?;
    check(s.sdk_max_connections >= 1, "nacos.sdk.max-connections", at_least_1())?;
    check(s.config_max_content_bytes >= 1, "nacos.config.max-content-bytes", at_least_1())?;
    check(s.naming_health_check_interval_ms >= 100, "nacos.naming.health-check-interval-ms", "must be at least 100".into())?;
    check(s.config_history_retention_days >= 1, "nacos.config.retention.days", at_least_1())?;
    parse_list(&s.cluster_members, s.server_port).map_err(|m| l.err("cluster.members", m))?;
    // Two listeners on one port would fail at bind time with a far less helpful message.
    let mut seen: Vec<(&str, u16)> = Vec::new();
    for (key, p, on) in [
        ("nacos.server.main.port", s.server_port, true),
        ("nacos.sdk.port", s.sdk_port, true),
        ("nacos.cluster.port", s.cluster_port, true),
        ("consul.port", s.consul_port, s.consul_port != 0),
        ("nacos.console.port", s.console_port, s.deployment_type == DeploymentType::All),
    ] {
        if !on {
            continue;
        }
        if let Some((other, _)) = seen.iter().find(|(_, q)| *q == p) {
            return Err(l.err(key, format!("port {p} is already used by {other}")));
        }
        seen.push((key, p));
    }
    Ok(())
}
