//! Nacos config rules: names, namespace defaults, md5, and the publish/get/remove operations.

use std::sync::Arc;

use super::DomainError;
use super::ReadConsistency;
use crate::raft::RaftNode;
use crate::state_machine::command::Applied;
use crate::state_machine::command::Command;
use crate::state_machine::command::ConfigCmd;
use crate::state_machine::command::ConfigItem;
use crate::state_machine::command::ConfigKey;
use crate::state_machine::command::ConfigPublish;
use crate::state_machine::config_store;

pub const DEFAULT_NAMESPACE: &str = "public";
pub const DEFAULT_GROUP: &str = "DEFAULT_GROUP";
const MAX_NAME: usize = 256;

/// `""`, absent and `public` are the same namespace.
pub fn normalize_namespace(ns: Option<&str>) -> String {
    match ns.map(str::trim) {
        None | Some("") => DEFAULT_NAMESPACE.to_string(),
        Some(s) => s.to_string(),
    }
}

/// Nacos allows letters, digits and `-_.:` in dataId and group.
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}

pub fn make_key(namespace: Option<&str>, group: Option<&str>, data_id: Option<&str>) -> Result<ConfigKey, DomainError> {
    let data_id = data_id.map(str::trim).unwrap_or("");
    if data_id.is_empty() {
        return Err(DomainError::Invalid("dataId is required".into()));
    }
    if !valid_name(data_id) {
        return Err(DomainError::Invalid(format!("invalid dataId: {data_id}")));
    }
    let group = match group.map(str::trim) {
        None | Some("") => DEFAULT_GROUP,
        Some(g) => g,
    };
    if !valid_name(group) {
        return Err(DomainError::Invalid(format!("invalid group: {group}")));
    }
    let namespace = normalize_namespace(namespace);
    if namespace.len() > 128 || !namespace.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_')) {
        return Err(DomainError::Invalid(format!("invalid namespace: {namespace}")));
    }
    Ok(ConfigKey { namespace, group: group.to_string(), data_id: data_id.to_string() })
}

pub fn md5_hex(content: &str) -> String {
    format!("{:x}", md5::compute(content.as_bytes()))
}

/// Everything a publish carries besides the key and content.
#[derive(Debug, Default, Clone)]
pub struct PublishOptions {
    pub meta: crate::state_machine::command::ConfigMeta,
    pub cas_md5: Option<String>,
    /// Write only if the config does not exist (checked at apply time: a CAS against the md5
    /// of nothing, which no stored config has).
    pub create_only: bool,
}

#[derive(Clone)]
pub struct ConfigService {
    node: Arc<RaftNode>,
    max_content: usize,
}

impl ConfigService {
    pub fn new(node: Arc<RaftNode>, max_content: usize) -> ConfigService {
        ConfigService { node, max_content }
    }

    pub(crate) fn node(&self) -> &RaftNode {
        &self.node
    }

    pub(super) fn max_content(&self) -> usize {
        self.max_content
    }

    /// Validates a publish and builds its command payload (md5, default type); shared by the
    /// normal, beta and tagged publishes.
    pub(super) fn prepare(
        &self,
        key: ConfigKey,
        content: String,
        opts: PublishOptions,
    ) -> Result<Box<ConfigPublish>, DomainError> {
        self.check_content(&content)?;
        let mut meta = opts.meta;
        if meta.config_type.is_empty() {
            meta.config_type = "text".into();
        }
        let md5 = md5_hex(&content);
        let cas_md5 = if opts.create_only { Some(String::new()) } else { opts.cas_md5.filter(|m| !m.is_empty()) };
        Ok(Box::new(ConfigPublish { key, content, md5, meta, cas_md5 }))
    }

    fn check_content(&self, content: &str) -> Result<(), DomainError> {
        if content.is_empty() {
            return Err(DomainError::Invalid("content is required".into()));
        }
        if content.len() > self.max_content {
            return Err(DomainError::Invalid(format!(
                "content is {} bytes, over the limit of {} bytes",
                content.len(),
                self.max_content
            )));
        }
        Ok(())
    }

    pub async fn publish(&self, key: ConfigKey, content: String, opts: PublishOptions) -> Result<u64, DomainError> {
        let cmd = Command::Config(ConfigCmd::Publish(self.prepare(key, content, opts)?));
        match self.node.write(cmd).await? {
            Applied::Ok { index } => Ok(index),
            Applied::CasMismatch => Err(DomainError::Conflict("config md5 does not match casMd5".into())),
            other => Err(DomainError::Invalid(format!("unexpected apply result {other:?}"))),
        }
    }

    /// Removes a config; removing a missing one succeeds, as in Nacos.
    pub async fn remove(&self, key: ConfigKey, src_user: String, src_ip: String) -> Result<bool, DomainError> {
        match self.node.write(Command::Config(ConfigCmd::Remove { key, src_user, src_ip })).await? {
            Applied::Ok { .. } => Ok(true),
            Applied::NotFound => Ok(false),
            other => Err(DomainError::Invalid(format!("unexpected apply result {other:?}"))),
        }
    }

    pub async fn get(&self, key: &ConfigKey, consistency: ReadConsistency) -> Result<Option<ConfigItem>, DomainError> {
        if consistency == ReadConsistency::Linearizable {
            self.node.linearizable_barrier().await?;
        }
        Ok(config_store::get(&self.node.sm.db(), key)?)
    }
}

/// One key a long-poll listener watches, with the md5 the client holds.
#[derive(Debug, Clone)]
pub struct ListenKey {
    pub key: ConfigKey,
    /// md5 of the client's copy; empty when the client has none.
    pub md5: String,
}

impl ConfigService {
    /// Indexes of `keys` whose stored md5 differs from the client's (a missing config has md5 "").
    /// Served from the in-memory md5 index: no storage read.
    /// `client_ip` picks the beta version where one serves that IP.
    pub fn changed_now(&self, keys: &[ListenKey], client_ip: &str) -> Result<Vec<usize>, DomainError> {
        let sm = &self.node.sm;
        Ok(keys
            .iter()
            .enumerate()
            .filter(|(_, k)| sm.config_md5_for(&k.key, client_ip).as_deref().unwrap_or("") != k.md5)
            .map(|(i, _)| i)
            .collect())
    }

    /// Long polling: answers at once when a key already differs, else when one of the keys
    /// changes (a change committed through any node reaches every node's change hub), else
    /// with nothing after `hold`.
    pub async fn wait_changed(
        &self,
        keys: &[ListenKey],
        client_ip: &str,
        hold: std::time::Duration,
    ) -> Result<Vec<usize>, DomainError> {
        use tokio::sync::broadcast::error::RecvError;
        // Subscribe before the first comparison so no change can slip between the two.
        let mut rx = self.node.sm.hub().subscribe();
        let now = self.changed_now(keys, client_ip)?;
        if !now.is_empty() {
            return Ok(now);
        }
        let watched: std::collections::HashSet<&ConfigKey> = keys.iter().map(|k| &k.key).collect();
        let deadline = tokio::time::Instant::now() + hold;
        loop {
            let recheck = match tokio::time::timeout_at(deadline, rx.recv()).await {
                Err(_) => return Ok(Vec::new()),
                Ok(Err(RecvError::Closed)) => return Ok(Vec::new()),
                Ok(Err(RecvError::Lagged(_))) => true,
                Ok(Ok(ev)) => {
                    ev.changes.iter().any(|c| c.is_reset() || c.config_key().is_some_and(|k| watched.contains(k)))
                }
            };
            if recheck {
                let changed = self.changed_now(keys, client_ip)?;
                if !changed.is_empty() {
                    return Ok(changed);
                }
            }
        }
    }
}

/// A page of rows, Nacos style (`pageNo` from 1).
#[derive(Debug)]
pub struct Page<T> {
    pub total: usize,
    pub page_no: usize,
    pub page_size: usize,
    pub items: Vec<T>,
}

impl<T> Page<T> {
    pub fn pages_available(&self) -> usize {
        self.total.div_ceil(self.page_size.max(1))
    }
}

/// Nacos' page size ceiling.
pub(super) const MAX_PAGE_SIZE: usize = 500;

impl ConfigService {
    pub async fn history(
        &self,
        key: &ConfigKey,
        page_no: usize,
        page_size: usize,
        consistency: ReadConsistency,
    ) -> Result<Page<crate::state_machine::command::HistoryItem>, DomainError> {
        if consistency == ReadConsistency::Linearizable {
            self.node.linearizable_barrier().await?;
        }
        let page_no = page_no.max(1);
        let page_size = page_size.clamp(1, MAX_PAGE_SIZE);
        let (total, items) = config_store::history_page(&self.node.sm.db(), key, (page_no - 1) * page_size, page_size)?;
        Ok(Page { total, page_no, page_size, items })
    }

    /// One history row by id; `key`, when given, must match (Nacos checks dataId/group/tenant).
    pub fn history_detail(
        &self,
        id: u64,
        key: Option<&ConfigKey>,
    ) -> Result<(ConfigKey, crate::state_machine::command::HistoryItem), DomainError> {
        match config_store::history_by_id(&self.node.sm.db(), id)? {
            Some((k, row)) if key.is_none_or(|want| want == &k) => Ok((k, row)),
            _ => Err(DomainError::NotFound(format!("history {id} not found"))),
        }
    }

    pub fn history_previous(
        &self,
        key: &ConfigKey,
        id: u64,
    ) -> Result<crate::state_machine::command::HistoryItem, DomainError> {
        config_store::history_previous(&self.node.sm.db(), key, id)?
            .ok_or_else(|| DomainError::NotFound(format!("no history before {id}")))
    }
}

/// Leader duty: once an hour, propose dropping config history older than `retention`. Only the
/// transition goes through Raft; followers never run this. The first round waits a minute
/// rather than running at start-up, where its scan of the history would compete with the
/// node's own start (a restart with a million configs measured it).
pub async fn history_retention(node: Arc<RaftNode>, retention: std::time::Duration) {
    use crate::state_machine::command::SysCmd;
    let period = std::time::Duration::from_secs(3600);
    let first = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut tick = tokio::time::interval_at(first, period);
    loop {
        tick.tick().await;
        if !node.raft.is_leader() {
            continue;
        }
        let before_ms = crate::now_ms().saturating_sub(retention.as_millis() as u64);
        if let Err(e) = node.write(Command::Sys(SysCmd::PurgeHistory { before_ms })).await {
            tracing::warn!(error = %e, "config history purge not committed; retrying next hour");
        }
    }
}
