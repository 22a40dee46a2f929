//! The caller as Consul handlers see it: the [`Acl`] the gate (`authz`) resolved and put in the
//! request's extensions, with Consul's 403 wording, and [`Visible`], the per-request read filter
//! of list endpoints.

use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use axum::http::header::HeaderValue;
use axum::http::StatusCode;
use axum::response::Response;

use super::error;
use crate::domain::consul_acl::authorizer::Perm;
use crate::domain::consul_acl::rules::Kind;
use crate::domain::consul_acl::ConsulAcl;
use crate::domain::consul_acl::Identity;

/// The resolved caller, as handlers see it.
#[derive(Clone)]
pub struct Acl {
    who: Arc<Identity>,
    svc: Option<ConsulAcl>,
}

impl Acl {
    /// `svc` is `None` with ACLs off.
    pub(super) fn new(who: Identity, svc: Option<ConsulAcl>) -> Acl {
        Acl { who: Arc::new(who), svc }
    }

    pub(super) fn accessor(&self) -> &str {
        &self.who.accessor_id
    }

    pub fn allows(&self, kind: Kind, name: &str, perm: Perm) -> bool {
        self.who.authz.allows(kind, name, perm)
    }

    /// Consul's 403 when the caller lacks `perm` on `name`.
    pub fn check(&self, kind: Kind, name: &str, perm: Perm) -> Result<(), Response> {
        if self.allows(kind, name, perm) {
            Ok(())
        } else {
            Err(self.denied(kind, name, perm))
        }
    }

    pub fn denied(&self, kind: Kind, name: &str, perm: Perm) -> Response {
        error(StatusCode::FORBIDDEN, denied_text(&self.who.accessor_id, kind, name, perm))
    }

    pub fn key_write_prefix(&self, prefix: &str) -> bool {
        self.who.authz.key_write_prefix(prefix)
    }

    pub fn is_management(&self) -> bool {
        self.who.authz.is_management()
    }

    pub fn identity(&self) -> &Identity {
        &self.who
    }

    /// The ACL service (absent only in the allow-all `Acl` of a request with ACLs off).
    pub fn service(&self) -> Option<&ConsulAcl> {
        self.svc.as_ref()
    }

    /// Consul's `X-Consul-Results-Filtered-By-ACLs: true`: items were left out and the
    /// request carried a token.
    pub fn mark_filtered(&self, r: &mut Response, removed: bool) {
        if removed && self.who.presented {
            r.headers_mut().insert("X-Consul-Results-Filtered-By-ACLs", HeaderValue::from_static("true"));
        }
    }

    /// The Nacos configs are reached with a Consul token only with management (Consul's 403
    /// otherwise); a Nacos token is checked per namespace with [`Acl::config_allowed`].
    pub fn config_gate(&self) -> Result<(), Response> {
        if self.svc.is_none() || self.who.authz.principal().is_some() {
            return Ok(());
        }
        self.check(Kind::Acl, "", Perm::Write)
    }

    /// Whether the caller may export (`write`: import) the Nacos configs of `namespace`.
    pub fn config_allowed(&self, namespace: &str, write: bool) -> bool {
        match &self.svc {
            Some(s) => s.config_allowed(&self.who, namespace, write),
            None => true,
        }
    }
}

/// Read filtering of one request's items (catalog, health, agent lists), remembering whether
/// anything was left out for [`Acl::mark_filtered`] (an atomic: held across a blocking wait).
pub struct Visible<'a> {
    acl: &'a Acl,
    removed: AtomicBool,
}

impl<'a> Visible<'a> {
    pub fn new(acl: &'a Acl) -> Visible<'a> {
        Visible { acl, removed: AtomicBool::new(false) }
    }

    fn read(&self, kind: Kind, name: &str) -> bool {
        let ok = self.acl.allows(kind, name, Perm::Read);
        if !ok {
            self.removed.store(true, Relaxed);
        }
        ok
    }

    pub fn service(&self, name: &str) -> bool {
        self.read(Kind::Service, name)
    }

    pub fn node(&self, name: &str) -> bool {
        self.read(Kind::Node, name)
    }

    /// A service check needs service read, a node check node read.
    pub fn check(&self, c: &crate::domain::consul_view::CheckView) -> bool {
        if c.item.service_id.is_empty() {
            self.node(&c.item.node)
        } else {
            self.service(&c.item.service_name)
        }
    }

    /// Starts a new round (a blocking query runs its read again).
    pub fn reset(&self) {
        self.removed.store(false, Relaxed);
    }

    pub fn finish(&self, r: &mut Response) {
        self.acl.mark_filtered(r, self.removed.load(Relaxed));
    }
}

/// Consul's wording: `Permission denied: token with AccessorID '…' lacks permission 'key:read'
/// on "app/x"` (no `on` for single-level resources).
pub fn denied_text(accessor: &str, kind: Kind, name: &str, perm: Perm) -> String {
    let what = format!(
        "Permission denied: token with AccessorID '{accessor}' lacks permission '{}:{}'",
        kind.as_str(),
        perm.as_str()
    );
    if kind.named() {
        format!("{what} on {name:?}")
    } else {
        what
    }
}
