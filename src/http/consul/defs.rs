//! Service and check definitions as clients send them (agent and catalog registrations), read
//! with Consul's leniency (normalized keys, durations as strings or nanoseconds, the catalog's
//! `Definition` block) into the domain's specs.

// Helpers return axum's `Response` as their error (the reply to send).
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;

use super::error;
use crate::domain::consul_defs::CheckSpec;
use crate::domain::consul_defs::ServiceSpec;

fn duration(v: &Option<Value>, field: &str) -> Result<Option<Duration>, Response> {
    match v {
        None => Ok(None),
        Some(v) => super::body_duration(v).map(Some).ok_or_else(|| {
            error(StatusCode::BAD_REQUEST, format!("Request decode failed: {field}: time: invalid duration {v}"))
        }),
    }
}

/// A check definition as clients send it (normalized keys, see `decode_body`).
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(default)]
pub(super) struct RawCheck {
    id: Option<String>,
    checkid: Option<String>,
    name: Option<String>,
    notes: Option<String>,
    status: Option<String>,
    output: Option<String>,
    serviceid: Option<String>,
    ttl: Option<Value>,
    interval: Option<Value>,
    timeout: Option<Value>,
    deregistercriticalserviceafter: Option<Value>,
    http: Option<String>,
    method: Option<String>,
    header: Option<BTreeMap<String, Vec<String>>>,
    body: Option<String>,
    tlsskipverify: Option<bool>,
    tcp: Option<String>,
    udp: Option<String>,
    grpc: Option<String>,
    h2ping: Option<String>,
    args: Option<Vec<String>>,
    scriptargs: Option<Vec<String>>,
    aliasnode: Option<String>,
    aliasservice: Option<String>,
    dockercontainerid: Option<String>,
    /// Catalog checks carry HTTP/TCP/Interval... here.
    definition: Option<Box<RawCheck>>,
}

impl RawCheck {
    pub(super) fn spec(self) -> Result<CheckSpec, Response> {
        let d = self.definition.clone().map(|d| *d).unwrap_or_default();
        let s = |a: Option<String>, b: Option<String>| a.or(b).unwrap_or_default();
        let present = |v: &Option<String>| v.as_ref().is_some_and(|x| !x.is_empty());
        let other = if self.args.as_ref().or(self.scriptargs.as_ref()).is_some_and(|a| !a.is_empty()) {
            Some(if present(&self.dockercontainerid) { "docker" } else { "script" })
        } else if present(&self.grpc) {
            Some("grpc")
        } else if present(&self.udp) {
            Some("udp")
        } else if present(&self.h2ping) {
            Some("h2ping")
        } else if present(&self.aliasnode) || present(&self.aliasservice) {
            Some("alias")
        } else {
            None
        };
        Ok(CheckSpec {
            id: s(self.checkid, self.id),
            name: self.name.unwrap_or_default(),
            notes: self.notes.unwrap_or_default(),
            status: self.status.unwrap_or_default(),
            output: self.output.unwrap_or_default(),
            service_id: self.serviceid.unwrap_or_default(),
            ttl: duration(&self.ttl, "TTL")?,
            interval: duration(&self.interval.or(d.interval), "Interval")?,
            timeout: duration(&self.timeout.or(d.timeout), "Timeout")?,
            deregister_after: duration(
                &self.deregistercriticalserviceafter.or(d.deregistercriticalserviceafter),
                "DeregisterCriticalServiceAfter",
            )?,
            http: s(self.http, d.http),
            method: s(self.method, d.method),
            header: self.header.or(d.header).unwrap_or_default(),
            body: s(self.body, d.body),
            tls_skip_verify: self.tlsskipverify.or(d.tlsskipverify).unwrap_or(false),
            tcp: s(self.tcp, d.tcp),
            other,
        })
    }
}

#[derive(Debug, Deserialize, Default, Clone, Copy)]
#[serde(default)]
pub(super) struct RawWeights {
    passing: Option<i64>,
    warning: Option<i64>,
}

/// A service definition (agent: `Name`; catalog: `Service`).
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub(super) struct RawService {
    id: Option<String>,
    name: Option<String>,
    service: Option<String>,
    tags: Option<Vec<String>>,
    address: Option<String>,
    taggedaddresses: Option<BTreeMap<String, Value>>,
    meta: Option<BTreeMap<String, String>>,
    port: Option<i64>,
    kind: Option<String>,
    enabletagoverride: Option<bool>,
    weights: Option<RawWeights>,
    check: Option<RawCheck>,
    checks: Option<Vec<RawCheck>>,
}

impl RawService {
    pub(super) fn spec(self, catalog: bool) -> Result<ServiceSpec, Response> {
        let mut checks = Vec::new();
        for c in self.check.into_iter().chain(self.checks.unwrap_or_default()) {
            checks.push(c.spec()?);
        }
        let name = if catalog { self.service.or(self.name) } else { self.name };
        Ok(ServiceSpec {
            id: self.id.unwrap_or_default(),
            name: name.unwrap_or_default(),
            tags: self.tags.unwrap_or_default(),
            address: self.address.unwrap_or_default(),
            tagged_addresses: self.taggedaddresses.unwrap_or_default(),
            meta: self.meta.unwrap_or_default(),
            port: self.port.unwrap_or(0),
            kind: self.kind.unwrap_or_default(),
            enable_tag_override: self.enabletagoverride.unwrap_or(false),
            weights: self.weights.map(|w| (w.passing.unwrap_or(1), w.warning.unwrap_or(1))),
            checks,
        })
    }
}
