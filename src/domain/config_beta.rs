//! Gray config versions beside the normal one, as Nacos keeps them:
//! - **beta**: served only to the listed client IPs until the beta is stopped (`betaIps`);
//!   listeners compare against the version their IP is served.
//! - **tag**: versions read by clients that ask for a tag (`tag` on query, publish and remove).

use super::config::ConfigService;
use super::config::PublishOptions;
use super::DomainError;
use super::ReadConsistency;
use crate::state_machine::command::Applied;
use crate::state_machine::command::BetaItem;
use crate::state_machine::command::Command;
use crate::state_machine::command::ConfigCmd;
use crate::state_machine::command::ConfigItem;
use crate::state_machine::command::ConfigKey;
use crate::state_machine::config_store;

impl ConfigService {
    pub async fn publish_beta(
        &self,
        key: ConfigKey,
        content: String,
        beta_ips: &str,
        opts: PublishOptions,
    ) -> Result<u64, DomainError> {
        let ips: Vec<&str> = beta_ips.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
        if ips.is_empty() {
            return Err(DomainError::Invalid("betaIps is empty".into()));
        }
        if let Some(bad) = ips.iter().find(|ip| ip.parse::<std::net::IpAddr>().is_err()) {
            return Err(DomainError::Invalid(format!("betaIps: {bad} is not an IP address")));
        }
        let publish = self.prepare(key, content, PublishOptions { cas_md5: None, create_only: false, ..opts })?;
        let cmd = Command::Config(ConfigCmd::PublishBeta { publish, beta_ips: ips.join(",") });
        match self.node().write(cmd).await? {
            Applied::Ok { index } => Ok(index),
            other => Err(DomainError::Invalid(format!("unexpected apply result {other:?}"))),
        }
    }

    /// Stops a beta; false when there was none.
    pub async fn remove_beta(&self, key: ConfigKey) -> Result<bool, DomainError> {
        match self.node().write(Command::Config(ConfigCmd::RemoveBeta { key })).await? {
            Applied::Ok { .. } => Ok(true),
            Applied::NotFound => Ok(false),
            other => Err(DomainError::Invalid(format!("unexpected apply result {other:?}"))),
        }
    }

    pub async fn get_beta(
        &self,
        key: &ConfigKey,
        consistency: ReadConsistency,
    ) -> Result<Option<BetaItem>, DomainError> {
        if consistency == ReadConsistency::Linearizable {
            self.node().linearizable_barrier().await?;
        }
        Ok(config_store::get_beta(&self.node().sm.db(), key)?)
    }

    pub async fn publish_tag(
        &self,
        key: ConfigKey,
        content: String,
        tag: &str,
        opts: PublishOptions,
    ) -> Result<u64, DomainError> {
        check_tag(tag)?;
        let publish = self.prepare(key, content, PublishOptions { cas_md5: None, create_only: false, ..opts })?;
        match self.node().write(Command::Config(ConfigCmd::PublishTag { publish, tag: tag.to_string() })).await? {
            Applied::Ok { index } => Ok(index),
            other => Err(DomainError::Invalid(format!("unexpected apply result {other:?}"))),
        }
    }

    /// Removes a tagged version; false when there was none.
    pub async fn remove_tag(&self, key: ConfigKey, tag: &str) -> Result<bool, DomainError> {
        check_tag(tag)?;
        match self.node().write(Command::Config(ConfigCmd::RemoveTag { key, tag: tag.to_string() })).await? {
            Applied::Ok { .. } => Ok(true),
            Applied::NotFound => Ok(false),
            other => Err(DomainError::Invalid(format!("unexpected apply result {other:?}"))),
        }
    }

    pub async fn get_tag(
        &self,
        key: &ConfigKey,
        tag: &str,
        consistency: ReadConsistency,
    ) -> Result<Option<ConfigItem>, DomainError> {
        check_tag(tag)?;
        if consistency == ReadConsistency::Linearizable {
            self.node().linearizable_barrier().await?;
        }
        Ok(config_store::get_tag(&self.node().sm.db(), key, tag)?)
    }

    /// The version a client at `client_ip` is served, and whether it is the beta.
    pub async fn get_for(
        &self,
        key: &ConfigKey,
        client_ip: &str,
        consistency: ReadConsistency,
    ) -> Result<Option<(ConfigItem, bool)>, DomainError> {
        if consistency == ReadConsistency::Linearizable {
            self.node().linearizable_barrier().await?;
        }
        let db = self.node().sm.db();
        if let Some(b) = config_store::get_beta(&db, key)?.filter(|b| b.serves(client_ip)) {
            return Ok(Some((b.item, true)));
        }
        Ok(config_store::get(&db, key)?.map(|c| (c, false)))
    }
}

/// Nacos' rule for tags: the name characters of dataId and group, at most 16 of them.
fn check_tag(tag: &str) -> Result<(), DomainError> {
    let ok = !tag.is_empty()
        && tag.len() <= 16
        && tag.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
    if ok {
        Ok(())
    } else {
        Err(DomainError::Invalid(format!("invalid tag: {tag:?} (letters, digits, -_.: and at most 16)")))
    }
}
