//! Consul agent and catalog writes on the shared registry: defaults (generated check ids
//! `service:<id>` / `service:<id>:<n>`, initial `critical`, re-registration keeping statuses),
//! maintenance checks, and the `Command::Catalog` entries. Liveness of TTL checks is a lease
//! (`consul_checks`); only status changes go through Raft.

use std::sync::Arc;

use super::consul_checks::ttl_lease;
use super::consul_defs::*;
use super::consul_view;
use super::DomainError;
use crate::raft::RaftNode;
use crate::state_machine::catalog::*;
use crate::state_machine::catalog_store;
use crate::state_machine::command::Applied;
use crate::state_machine::command::Command;

/// Consul's agent and catalog writes.
#[derive(Clone)]
pub struct ConsulCatalog {
    node: Arc<RaftNode>,
}

impl ConsulCatalog {
    pub fn new(node: Arc<RaftNode>) -> ConsulCatalog {
        ConsulCatalog { node }
    }

    /// This server's node (the agent's).
    pub fn local(&self) -> NodeItem {
        consul_view::local_node(&self.node)
    }

    async fn write(&self, cmd: CatalogCmd) -> Result<(), DomainError> {
        match self.node.write(Command::Catalog(cmd)).await? {
            Applied::Rejected { reason } => Err(DomainError::Invalid(reason)),
            _ => Ok(()),
        }
    }

    fn keep_alive(&self, node: &str, check: &str) {
        self.node.leases.keep_alive(self.node.id, self.node.raft.is_leader(), ttl_lease(node, check));
    }

    /// `PUT /v1/agent/service/register`.
    pub async fn agent_register(&self, s: ServiceSpec, replace_checks: bool) -> Result<(), DomainError> {
        let node = self.local();
        let reg = service_reg(&s, &node, true)?;
        let n = s.checks.len();
        let mut checks = Vec::with_capacity(n);
        for (i, c) in s.checks.iter().enumerate() {
            let mut c = c.clone();
            if c.id.is_empty() {
                c.id = if n == 1 {
                    format!("service:{}", reg.service_id)
                } else {
                    format!("service:{}:{}", reg.service_id, i + 1)
                };
            }
            if c.name.is_empty() {
                c.name = format!("Service '{}' check", s.name);
            }
            c.service_id = reg.service_id.clone();
            checks.push(agent_check(&c, &node.name)?);
        }
        let ttl: Vec<String> = checks.iter().filter(|c| c.check_type == "ttl").map(|c| c.id.clone()).collect();
        let r = Registration {
            node: node.clone(),
            skip_node_update: false,
            service: Some(reg),
            checks,
            keep_status: true,
            replace_checks,
        };
        self.write(CatalogCmd::Register(Box::new(r))).await?;
        for id in ttl {
            self.keep_alive(&node.name, &id);
        }
        Ok(())
    }

    pub async fn agent_deregister(&self, service_id: &str) -> Result<(), DomainError> {
        let node = self.local().name;
        let cmd = CatalogCmd::Deregister { node, service_id: Some(service_id.to_string()), check_id: None };
        self.write(cmd).await
    }

    /// Whether this agent has the service.
    pub fn has_service(&self, service_id: &str) -> Result<bool, DomainError> {
        let local = self.local().name;
        let db = self.node.sm.db();
        Ok(catalog_store::node_instances(&db, &local)?
            .iter()
            .any(|(_, i)| catalog_store::service_id_of(i) == service_id))
    }

    /// `PUT /v1/agent/check/register`.
    pub async fn agent_check_register(&self, mut c: CheckSpec) -> Result<(), DomainError> {
        if c.name.is_empty() {
            return invalid("Missing check name");
        }
        if c.id.is_empty() {
            c.id = c.name.clone();
        }
        if !c.service_id.is_empty() && !self.has_service(&c.service_id)? {
            return Err(DomainError::NotFound(format!("ServiceID {:?} does not exist", c.service_id)));
        }
        let node = self.local();
        let item = agent_check(&c, &node.name)?;
        let ttl = item.check_type == "ttl";
        let r = Registration {
            node: node.clone(),
            skip_node_update: false,
            service: None,
            checks: vec![item],
            keep_status: true,
            replace_checks: false,
        };
        self.write(CatalogCmd::Register(Box::new(r))).await?;
        if ttl {
            self.keep_alive(&node.name, &c.id);
        }
        Ok(())
    }

    pub async fn agent_check_deregister(&self, id: &str) -> Result<(), DomainError> {
        let node = self.local().name;
        self.write(CatalogCmd::Deregister { node, service_id: None, check_id: Some(id.to_string()) }).await
    }

    /// A TTL check's update: always a keep-alive; a change of status or output goes through
    /// Raft. `NotFound` for an unknown or non-TTL check.
    pub async fn ttl_update(&self, id: &str, status: &str, output: &str) -> Result<(), DomainError> {
        let node = self.local().name;
        let db = self.node.sm.db();
        let c = catalog_store::get_check(&db, &node, id)?.filter(|c| c.check_type == "ttl");
        let Some(c) = c else {
            return Err(DomainError::NotFound(format!("CheckID {id:?} does not have associated TTL")));
        };
        self.keep_alive(&node, id);
        let output = truncate(output);
        if c.status == status && c.output == output {
            return Ok(());
        }
        let u = StatusUpdate { node, check_id: id.to_string(), status: status.to_string(), output };
        self.write(CatalogCmd::SetStatus { items: vec![u] }).await
    }

    /// Service maintenance: a critical `_service_maintenance:<id>` check while enabled.
    pub async fn service_maintenance(&self, service_id: &str, enable: bool, reason: &str) -> Result<(), DomainError> {
        if !self.has_service(service_id)? {
            return Err(DomainError::NotFound(format!("Unknown service ID {service_id:?}")));
        }
        let id = format!("{SERVICE_MAINT_PREFIX}{service_id}");
        let default =
            "Maintenance mode is enabled for this service, but no reason was provided. This is a default message.";
        self.maintenance(id, service_id, "Service Maintenance Mode", enable, reason, default).await
    }

    /// Node maintenance: a critical `_node_maintenance` check while enabled.
    pub async fn node_maintenance(&self, enable: bool, reason: &str) -> Result<(), DomainError> {
        let default =
            "Maintenance mode is enabled for this node, but no reason was provided. This is a default message.";
        self.maintenance(NODE_MAINT.into(), "", "Node Maintenance Mode", enable, reason, default).await
    }

    async fn maintenance(
        &self,
        id: String,
        service_id: &str,
        name: &str,
        enable: bool,
        reason: &str,
        default: &str,
    ) -> Result<(), DomainError> {
        let node = self.local();
        if !enable {
            let cmd = CatalogCmd::Deregister { node: node.name, service_id: None, check_id: Some(id) };
            return self.write(cmd).await;
        }
        let check = CheckItem {
            node: node.name.clone(),
            id,
            name: name.into(),
            status: CRITICAL.into(),
            notes: if reason.is_empty() { default.into() } else { reason.into() },
            service_id: service_id.into(),
            check_type: "maintenance".into(),
            ..Default::default()
        };
        let r = Registration {
            node,
            skip_node_update: false,
            service: None,
            checks: vec![check],
            keep_status: false,
            replace_checks: false,
        };
        self.write(CatalogCmd::Register(Box::new(r))).await
    }

    /// `PUT /v1/catalog/register`.
    pub async fn catalog_register(
        &self,
        node: NodeItem,
        skip_node_update: bool,
        service: Option<ServiceSpec>,
        checks: Vec<CheckSpec>,
    ) -> Result<(), DomainError> {
        if node.name.is_empty() {
            return invalid("Must provide node");
        }
        clean(&node.name, "node name")?;
        let stored = catalog_store::get_node(&self.node.sm.db(), &node.name)?;
        if node.address.is_empty() && !(skip_node_update && stored.is_some()) {
            return invalid("Must provide address if SkipNodeUpdate is not set");
        }
        let addr_node = match (&stored, skip_node_update) {
            (Some(n), true) => n.clone(),
            _ => node.clone(),
        };
        let service = match service {
            Some(s) => Some(service_reg(&s, &addr_node, false)?),
            None => None,
        };
        let mut items = Vec::with_capacity(checks.len());
        for c in &checks {
            // A check without a ServiceID is a node check, as in Consul.
            items.push(catalog_check(c, &node.name)?);
        }
        let r =
            Registration { node, skip_node_update, service, checks: items, keep_status: false, replace_checks: false };
        self.write(CatalogCmd::Register(Box::new(r))).await
    }

    /// `PUT /v1/catalog/deregister`.
    pub async fn catalog_deregister(
        &self,
        node: &str,
        service_id: Option<String>,
        check_id: Option<String>,
    ) -> Result<(), DomainError> {
        if node.is_empty() {
            return invalid("Must provide node");
        }
        self.write(CatalogCmd::Deregister { node: node.to_string(), service_id, check_id }).await
    }
}
