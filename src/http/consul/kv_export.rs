//! Nacos configs in Consul's KV export format (the seed guide's `/v1/kv/export` and
//! `/v1/kv/import`): `[{"Key": "<namespace>/<group>/<dataId>", "Flags": 0, "Value": "<base64>"}]`.
//!
//! These paths are also legal KV keys (`export`, `import`). They mean the config export/import
//! only for that exact key, with GET (export) or PUT (import), and only when every query
//! parameter is one the export/import documents (`namespaceId`, `prefix` / `namespaceId`,
//! `policy`); anything else (`?raw`, `?index`, `?flags`, `?cas`...) is a plain KV request.
//!
//! Import goes through the one Nacos import (`ConfigService::import_items`), so policies, checks
//! and the `{successCount, skipCount, failCount, failData}` reply are the same: the entries of
//! each target namespace are handed to it as the ZIP layout it reads.
//!
//! ACLs: these are Nacos configs, so they are guarded as the Nacos export and import are. A
//! Nacos access token needs the Nacos config permission (read to export, write to import) on
//! each namespace; configs of namespaces it may not read are left out of an export, an import
//! into one it may not write is refused. A Consul token needs management. `?token=` is the
//! token, not a KV parameter.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::response::Response;
use axum::Json;
use base64::Engine;
use serde::Deserialize;
use serde_json::json;
use serde_json::Value;

use super::caller::Acl;
use super::ConsulQuery;
use crate::domain::config::normalize_namespace;
use crate::domain::config_admin::ConfigFilter;
use crate::domain::config_admin::ImportFailure;
use crate::domain::config_admin::ImportPolicy;
use crate::domain::config_admin::ImportResult;
use crate::domain::config_zip::ZipConfig;
use crate::domain::DomainError;
use crate::domain::ReadConsistency;
use crate::http::nacos_v2::v2_error;
use crate::http::AppState;

/// Largest import body (a whole config set, far over one KV value).
const MAX_IMPORT_BYTES: usize = 64 * 1024 * 1024;
const PAGE: usize = 500;

/// Parameters that make a request to `export`/`import` a KV request. The KV API's are listed;
/// the export's and import's own are not.
const KV_PARAMS: &[&str] = &[
    "recurse",
    "keys",
    "raw",
    "separator",
    "seperator",
    "index",
    "wait",
    "stale",
    "consistent",
    "flags",
    "cas",
    "acquire",
    "release",
    "dc",
    "ns",
    "partition",
    "cached",
    "pretty",
];

fn only(q: &ConsulQuery, own: &[&str]) -> bool {
    KV_PARAMS.iter().all(|p| own.contains(p) || !q.flag(p))
}

pub(super) fn is_export(key: &str, q: &ConsulQuery) -> bool {
    key == "export" && only(q, &["namespaceId", "prefix"])
}

pub(super) fn is_import(key: &str, q: &ConsulQuery) -> bool {
    key == "import" && only(q, &["namespaceId", "policy"])
}

/// `GET /v1/kv/export[?namespaceId=][&prefix=]`: every matching config, in key order.
pub(super) async fn export(st: &AppState, acl: &Acl, q: &ConsulQuery) -> Response {
    if let Err(r) = acl.config_gate() {
        return r;
    }
    let filter =
        ConfigFilter { namespace: q.get("namespaceId").map(|n| normalize_namespace(Some(n))), ..Default::default() };
    // An export of one namespace the caller may not read is refused outright, as the Nacos
    // export is; a multi-namespace export leaves those namespaces out.
    if let Some(ns) = &filter.namespace {
        if !acl.config_allowed(ns, false) {
            return v2_error(DomainError::Forbidden(format!("no permission to read the configs of namespace {ns}")));
        }
    }
    let prefix = q.get("prefix").unwrap_or("");
    let mut out = Vec::new();
    let mut denied = false;
    let mut page_no = 1;
    loop {
        let page = match st.config.search(&filter, page_no, PAGE, ReadConsistency::Local).await {
            Ok(p) => p,
            Err(e) => return v2_error(e),
        };
        let last = page_no >= page.pages_available();
        for (k, item) in page.items {
            if !acl.config_allowed(&k.namespace, false) {
                denied = true;
                continue;
            }
            let key = format!("{}/{}/{}", k.namespace, k.group, k.data_id);
            if key.starts_with(prefix) {
                let value = base64::engine::general_purpose::STANDARD.encode(item.content.as_bytes());
                out.push(json!({"Key": key, "Flags": 0, "Value": value}));
            }
        }
        if last {
            break;
        }
        page_no += 1;
    }
    let mut r = Json(out).into_response();
    acl.mark_filtered(&mut r, denied);
    r
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Entry {
    key: String,
    value: Option<String>,
}

fn failure(data_id: &str, group: &str, reason: String) -> ImportFailure {
    ImportFailure { data_id: data_id.to_string(), group: group.to_string(), reason }
}

/// `PUT /v1/kv/import[?namespaceId=][&policy=]`: the export's JSON array back into configs;
/// `namespaceId` replaces the namespace of every key.
pub(super) async fn import(st: &AppState, acl: &Acl, q: &ConsulQuery, headers: &HeaderMap, body: Body) -> Response {
    if let Err(r) = acl.config_gate() {
        return r;
    }
    let run = async {
        let policy = ImportPolicy::parse(q.get("policy"))?;
        let body = super::kv::read_body(headers, body, MAX_IMPORT_BYTES)
            .await
            .map_err(|_| DomainError::Invalid(format!("import body over {MAX_IMPORT_BYTES} bytes")))?;
        let entries: Vec<Entry> = serde_json::from_slice::<Value>(&body)
            .and_then(|v| serde_json::from_value(super::normalize_keys(v, &[])))
            .map_err(|e| DomainError::Invalid(format!("expected a JSON array of {{Key, Flags, Value}}: {e}")))?;
        let mut res = ImportResult::default();
        let mut by_ns: BTreeMap<String, Vec<ZipConfig>> = BTreeMap::new();
        for e in entries {
            let mut parts = e.key.splitn(3, '/');
            let (Some(ns), Some(group), Some(data_id)) = (parts.next(), parts.next(), parts.next()) else {
                res.fail_data.push(failure(&e.key, "", "Key must be <namespace>/<group>/<dataId>".into()));
                continue;
            };
            let raw = e.value.as_deref().unwrap_or("");
            let content = match base64::engine::general_purpose::STANDARD.decode(raw).map(String::from_utf8) {
                Ok(Ok(c)) => c,
                _ => {
                    res.fail_data.push(failure(data_id, group, "Value must be base64 of UTF-8 text".into()));
                    continue;
                }
            };
            let ns = normalize_namespace(Some(q.get("namespaceId").unwrap_or(ns)));
            let list = by_ns.entry(ns.clone()).or_default();
            if list.iter().any(|c| c.group == group && c.data_id == data_id) {
                res.fail_data.push(failure(data_id, group, "duplicate key in the import".into()));
                continue;
            }
            let item = ZipConfig {
                data_id: data_id.into(),
                group: group.into(),
                namespace_id: ns,
                content,
                ..Default::default()
            };
            list.push(item);
        }
        if let Some(ns) = by_ns.keys().find(|ns| !acl.config_allowed(ns, true)) {
            return Err(DomainError::Forbidden(format!("no permission to write the configs of namespace {ns}")));
        }
        // ABORT imports nothing if any config exists, across every namespace of the request.
        if policy == ImportPolicy::Abort && by_ns.len() > 1 {
            let mut existing = Vec::new();
            for (ns, list) in &by_ns {
                for c in list {
                    if let Ok(k) = crate::domain::config::make_key(Some(ns), Some(&c.group), Some(&c.data_id)) {
                        if st.node.sm.config_md5(&k).is_some() {
                            existing.push(failure(&c.data_id, &c.group, "config exists (policy ABORT)".into()));
                        }
                    }
                }
            }
            if !existing.is_empty() {
                res.fail_data.extend(existing);
                res.fail_count = res.fail_data.len();
                return Ok(res);
            }
        }
        for (ns, list) in by_ns {
            let r = st.config.import_items(Some(&ns), list, ImportResult::default(), policy, "", "").await?;
            res.success_count += r.success_count;
            res.skip_count += r.skip_count;
            res.fail_data.extend(r.fail_data);
        }
        res.fail_count = res.fail_data.len();
        Ok::<ImportResult, DomainError>(res)
    };
    match run.await {
        Ok(res) => Json(json!({"code": 0, "message": "success", "data": res})).into_response(),
        Err(e) => v2_error(e),
    }
}
