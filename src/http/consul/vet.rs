//! ACL vetting of the catalog and agent writes whose resource is named by their body or found
//! through their target (a service or check id), as Consul vets them. The gate's table marks
//! these routes `Items`; their handlers call in here before proposing anything.

use axum::response::Response;

use super::caller::Acl;
use super::catalog::domain_error;
use super::catalog::read;
use crate::domain::consul_acl::authorizer::Perm;
use crate::domain::consul_acl::rules::Kind;
use crate::domain::consul_defs::CheckSpec;
use crate::domain::consul_defs::ServiceSpec;
use crate::domain::consul_view::CheckView;
use crate::http::AppState;
use crate::state_machine::catalog::NodeItem;

/// The name of service `id` on `node`, if registered there.
fn service_name(st: &AppState, node: &str, id: &str) -> Result<Option<String>, Response> {
    let found = read(st)?.node_services(node).map_err(domain_error)?;
    Ok(found.and_then(|(_, svcs)| svcs.into_iter().find(|s| s.id == id).map(|s| s.name)))
}

fn check_of(st: &AppState, node: &str, id: &str) -> Result<Option<CheckView>, Response> {
    Ok(read(st)?.node_checks(node).map_err(domain_error)?.into_iter().find(|c| c.item.id == id))
}

/// `PUT /v1/catalog/register`: service write on the service; node write when the node is new
/// or would change (unless `SkipNodeUpdate`), or for node checks; a check of another service
/// of the node needs write on that service.
pub fn register(
    st: &AppState,
    acl: &Acl,
    node: &NodeItem,
    skip_node_update: bool,
    service: Option<&ServiceSpec>,
    checks: &[CheckSpec],
) -> Result<(), Response> {
    if let Some(s) = service {
        acl.check(Kind::Service, &s.name, Perm::Write)?;
    }
    let changes_node = match read(st)?.node(&node.name) {
        None => true,
        Some(n) => {
            !skip_node_update
                && (n.address != node.address
                    || (!node.id.is_empty() && n.id != node.id)
                    || n.tagged_addresses != node.tagged_addresses
                    || n.meta != node.meta)
        }
    };
    let node_checks = checks.iter().any(|c| c.service_id.is_empty());
    if changes_node || node_checks || (service.is_none() && checks.is_empty()) {
        acl.check(Kind::Node, &node.name, Perm::Write)?;
    }
    let own = service.map(|s| if s.id.is_empty() { s.name.as_str() } else { s.id.as_str() });
    for c in checks.iter().filter(|c| !c.service_id.is_empty() && Some(c.service_id.as_str()) != own) {
        match service_name(st, &node.name, &c.service_id)? {
            Some(name) => acl.check(Kind::Service, &name, Perm::Write)?,
            None => acl.check(Kind::Node, &node.name, Perm::Write)?,
        }
    }
    Ok(())
}

/// `PUT /v1/catalog/deregister`: node write suffices; otherwise service write on the service
/// removed (or on the service of the check removed).
pub fn deregister(
    st: &AppState,
    acl: &Acl,
    node: &str,
    service_id: Option<&str>,
    check_id: Option<&str>,
) -> Result<(), Response> {
    if acl.allows(Kind::Node, node, Perm::Write) {
        return Ok(());
    }
    let service = match (service_id, check_id) {
        (Some(id), _) => service_name(st, node, id)?,
        (None, Some(id)) => {
            check_of(st, node, id)?.filter(|c| !c.item.service_id.is_empty()).map(|c| c.item.service_name)
        }
        (None, None) => None,
    };
    match service {
        Some(name) => acl.check(Kind::Service, &name, Perm::Write),
        None => Err(acl.denied(Kind::Node, node, Perm::Write)),
    }
}

/// An agent write on local service `id`: service write on its name (on the id when unknown).
pub fn agent_service(st: &AppState, acl: &Acl, agent: &str, id: &str) -> Result<(), Response> {
    let name = service_name(st, agent, id)?.unwrap_or_else(|| id.to_string());
    acl.check(Kind::Service, &name, Perm::Write)
}

/// `PUT /v1/agent/service/register`: service write on the name, and on the name of a service
/// the registration replaces under the same id.
pub fn agent_register(st: &AppState, acl: &Acl, agent: &str, s: &ServiceSpec) -> Result<(), Response> {
    acl.check(Kind::Service, &s.name, Perm::Write)?;
    let id = if s.id.is_empty() { &s.name } else { &s.id };
    match service_name(st, agent, id)? {
        Some(old) if old != s.name => acl.check(Kind::Service, &old, Perm::Write),
        _ => Ok(()),
    }
}

/// An agent check registration: service write on its service, node write for a node check.
pub fn agent_check_register(st: &AppState, acl: &Acl, agent: &str, c: &CheckSpec) -> Result<(), Response> {
    if c.service_id.is_empty() {
        return acl.check(Kind::Node, agent, Perm::Write);
    }
    agent_service(st, acl, agent, &c.service_id)
}

/// A write on agent check `id` (deregister, TTL update): service write for a service check,
/// node write for a node check or an unknown one.
pub fn agent_check(st: &AppState, acl: &Acl, agent: &str, id: &str) -> Result<(), Response> {
    match check_of(st, agent, id)? {
        Some(c) if !c.item.service_id.is_empty() => acl.check(Kind::Service, &c.item.service_name, Perm::Write),
        _ => acl.check(Kind::Node, agent, Perm::Write),
    }
}

/// A read of agent service `id`: service read on its name (on the id when unknown).
pub fn agent_service_read(st: &AppState, acl: &Acl, agent: &str, id: &str) -> Result<(), Response> {
    let name = service_name(st, agent, id)?.unwrap_or_else(|| id.to_string());
    acl.check(Kind::Service, &name, Perm::Read)
}
