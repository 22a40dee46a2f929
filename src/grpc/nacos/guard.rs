//! Who may send which request on the SDK port: one table from request type to what it needs,
//! applied in `dispatch` before any handler runs. A type missing from the table needs an
//! administrator, so a handler added later cannot be reached by accident.

use serde_json::Value;

use super::wire::Incoming;
use crate::domain::auth::Action;
use crate::domain::auth::Credentials;
use crate::domain::auth::Need;
use crate::domain::auth::Resource;

/// Header the guard sets to the authenticated user, for the config history's `srcUser`.
/// A client-sent header of that name is removed first.
pub const PRINCIPAL_HEADER: &str = "x-batata-principal";

/// The resources a request touches and the action it needs on each.
pub enum Needs<'a> {
    One(Need<'a>),
    /// Every listened config must be readable.
    Many(Vec<Need<'a>>),
}

fn text<'a>(v: &'a Value, field: &str) -> &'a str {
    v.get(field).and_then(Value::as_str).unwrap_or("")
}

fn config(v: &Value, action: Action) -> Need<'_> {
    let res =
        Resource { namespace: text(v, "tenant"), group: text(v, "group"), kind: "config", name: text(v, "dataId") };
    Need::Resource(res, action)
}

fn naming(v: &Value, action: Action) -> Need<'_> {
    let res = Resource {
        namespace: text(v, "namespace"),
        group: text(v, "groupName"),
        kind: "naming",
        name: text(v, "serviceName"),
    };
    Need::Resource(res, action)
}

/// What `inc` needs, by its type.
pub fn needs(inc: &Incoming) -> Needs<'_> {
    let b = &inc.body;
    Needs::One(match inc.kind.as_str() {
        "ServerCheckRequest" | "HealthCheckRequest" | "ConnectionSetupRequest" => Need::Open,
        "ConfigQueryRequest" => config(b, Action::Read),
        "ConfigPublishRequest" | "ConfigRemoveRequest" => config(b, Action::Write),
        "ConfigBatchListenRequest" => {
            let ctxs = b.get("configListenContexts").and_then(Value::as_array);
            return Needs::Many(ctxs.into_iter().flatten().map(|c| config(c, Action::Read)).collect());
        }
        "InstanceRequest" | "BatchInstanceRequest" | "PersistentInstanceRequest" => naming(b, Action::Write),
        "ServiceQueryRequest" | "SubscribeServiceRequest" | "ServiceListRequest" => naming(b, Action::Read),
        _ => Need::Admin,
    })
}

/// The identity a request carries in its headers: an `accessToken` (or `Authorization: Bearer`),
/// else `username` and `password`, as the Nacos SDKs send them.
pub fn credentials(inc: &Incoming) -> Credentials {
    let h = |k: &str| inc.header(k).map(str::trim).filter(|v| !v.is_empty());
    if let Some(t) = h("accessToken") {
        return Credentials::Token(t.to_string());
    }
    if let Some(t) = h("Authorization").and_then(|v| v.strip_prefix("Bearer ")) {
        return Credentials::Token(t.trim().to_string());
    }
    match (h("username"), h("password")) {
        (Some(u), Some(p)) => Credentials::Password { username: u.to_string(), password: p.to_string() },
        _ => Credentials::None,
    }
}
