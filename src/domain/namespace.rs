//! Namespaces: `public` always exists and cannot be changed; custom ones are replicated records.

use std::sync::Arc;

use super::DomainError;
use crate::domain::config::DEFAULT_NAMESPACE;
use crate::raft::RaftNode;
use crate::state_machine::command::Applied;
use crate::state_machine::command::Command;
use crate::state_machine::command::NamespaceCmd;
use crate::state_machine::config_store;
use crate::state_machine::namespace_store;

/// Nacos' default quota per namespace (reported, not enforced yet).
pub const DEFAULT_QUOTA: u32 = 200;
const MAX_ID: usize = 128;
const MAX_NAME: usize = 128;

/// A namespace as the console and open API show it.
#[derive(Debug, Clone, PartialEq)]
pub struct NamespaceView {
    pub id: String,
    pub name: String,
    pub desc: String,
    pub quota: u32,
    pub config_count: usize,
    /// 0 for the default namespace, 1 for custom ones (the Nacos 3.x convention).
    pub kind: u8,
}

#[derive(Clone)]
pub struct NamespaceService {
    node: Arc<RaftNode>,
}

fn check_id(id: &str) -> Result<(), DomainError> {
    if id.is_empty() || id.len() > MAX_ID || !id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_')) {
        return Err(DomainError::Invalid(format!(
            "illegal namespace id {id:?}: 1-{MAX_ID} letters, digits, '-' or '_'"
        )));
    }
    if id == DEFAULT_NAMESPACE {
        return Err(DomainError::Invalid("the public namespace is built in".into()));
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), DomainError> {
    if name.trim().is_empty() || name.chars().count() > MAX_NAME {
        return Err(DomainError::Invalid(format!("namespaceName is required (at most {MAX_NAME} characters)")));
    }
    if name.chars().any(|c| matches!(c, '@' | '#' | '$' | '%' | '^' | '&' | '*')) {
        return Err(DomainError::Invalid(format!("illegal namespace name {name:?}")));
    }
    Ok(())
}

impl NamespaceService {
    pub fn new(node: Arc<RaftNode>) -> NamespaceService {
        NamespaceService { node }
    }

    /// A fresh id when the client gives none (Nacos uses a UUID).
    fn new_id(&self) -> String {
        let x = crate::now_nanos() ^ (self.node.next_request_id() << 17);
        let h = format!("{:032x}", x);
        format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
    }

    pub async fn create(&self, id: Option<&str>, name: &str, desc: &str) -> Result<String, DomainError> {
        let id = match id.map(str::trim).filter(|s| !s.is_empty()) {
            Some(id) => id.to_string(),
            None => self.new_id(),
        };
        check_id(&id)?;
        check_name(name)?;
        let cmd = NamespaceCmd::Create { id: id.clone(), name: name.to_string(), desc: desc.to_string() };
        match self.node.write(Command::Namespace(cmd)).await? {
            Applied::Ok { .. } => Ok(id),
            Applied::AlreadyExists => Err(DomainError::Conflict(format!("namespace {id} already exists"))),
            other => Err(DomainError::Invalid(format!("unexpected apply result {other:?}"))),
        }
    }

    pub async fn update(&self, id: &str, name: &str, desc: &str) -> Result<(), DomainError> {
        check_id(id)?;
        check_name(name)?;
        let cmd = NamespaceCmd::Update { id: id.to_string(), name: name.to_string(), desc: desc.to_string() };
        match self.node.write(Command::Namespace(cmd)).await? {
            Applied::Ok { .. } => Ok(()),
            Applied::NotFound => Err(DomainError::NotFound(format!("namespace {id} does not exist"))),
            other => Err(DomainError::Invalid(format!("unexpected apply result {other:?}"))),
        }
    }

    pub async fn delete(&self, id: &str) -> Result<(), DomainError> {
        check_id(id)?;
        match self.node.write(Command::Namespace(NamespaceCmd::Delete { id: id.to_string() })).await? {
            Applied::Ok { .. } => Ok(()),
            Applied::NotFound => Err(DomainError::NotFound(format!("namespace {id} does not exist"))),
            other => Err(DomainError::Invalid(format!("unexpected apply result {other:?}"))),
        }
    }

    pub fn exists(&self, id: &str) -> Result<bool, DomainError> {
        Ok(id == DEFAULT_NAMESPACE || namespace_store::get(&self.node.sm.db(), id)?.is_some())
    }

    /// `public` first, then the custom namespaces by id.
    pub fn list(&self) -> Result<Vec<NamespaceView>, DomainError> {
        let db = self.node.sm.db();
        let count = |ns: &str| config_store::list(&db, Some(ns)).map(|v| v.len());
        let mut out = vec![NamespaceView {
            id: DEFAULT_NAMESPACE.into(),
            name: DEFAULT_NAMESPACE.into(),
            desc: "Default Namespace".into(),
            quota: DEFAULT_QUOTA,
            config_count: count(DEFAULT_NAMESPACE)?,
            kind: 0,
        }];
        for (id, item) in namespace_store::list(&db)? {
            let config_count = count(&id)?;
            out.push(NamespaceView {
                id,
                name: item.name,
                desc: item.desc,
                quota: DEFAULT_QUOTA,
                config_count,
                kind: 1,
            });
        }
        Ok(out)
    }

    pub fn get(&self, id: &str) -> Result<NamespaceView, DomainError> {
        let id = if id.is_empty() { DEFAULT_NAMESPACE } else { id };
        self.list()?
            .into_iter()
            .find(|n| n.id == id)
            .ok_or_else(|| DomainError::NotFound(format!("namespace {id} does not exist")))
    }
}
