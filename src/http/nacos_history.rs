//! Nacos v1 config history: `GET /v1/cs/history` (list with `search=accurate`, or one row by
//! `nid`) and `GET /v1/cs/history/previous`.

use axum::extract::RawQuery;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::response::Response;
use axum::routing::get;
use axum::Json;
use axum::Router;
use serde_json::json;
use serde_json::Value;

use super::consistency;
use super::nacos_error;
use super::params;
use super::AppState;
use crate::domain::config::make_key;
use crate::domain::DomainError;
use crate::state_machine::command::ConfigKey;
use crate::state_machine::command::HistoryItem;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/cs/history", get(history)).route("/v1/cs/history/previous", get(previous))
}

/// Days since 1970-01-01 to a civil date (proleptic Gregorian), for UTC timestamps.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `2020-12-05T01:48:03.380+0000`, the timestamp format of Nacos history JSON.
pub fn iso_millis(ms: u64) -> String {
    let secs = (ms / 1000) as i64;
    let (y, mo, d) = civil(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}+0000", s / 3600, s % 3600 / 60, s % 60, ms % 1000)
}

fn row_json(key: &ConfigKey, row: &HistoryItem, with_content: bool) -> Value {
    let mut v = json!({
        "id": row.index.to_string(),
        "lastId": -1,
        "dataId": key.data_id,
        "group": key.group,
        "tenant": key.namespace,
        "appName": row.item.meta.app_name,
        "md5": row.item.md5,
        "srcIp": row.item.meta.src_ip,
        "srcUser": row.item.meta.src_user,
        "opType": row.op.to_string(),
        "createdTime": iso_millis(row.time_ms),
        "lastModifiedTime": iso_millis(row.time_ms),
        "encryptedDataKey": row.item.meta.encrypted_data_key,
    });
    if with_content {
        v["content"] = json!(row.item.content);
    }
    v
}

fn key_of(p: &std::collections::HashMap<String, String>) -> Result<ConfigKey, DomainError> {
    make_key(
        p.get("tenant").or(p.get("namespaceId")).map(String::as_str),
        p.get("group").or(p.get("groupName")).map(String::as_str),
        p.get("dataId").map(String::as_str),
    )
}

fn num(p: &std::collections::HashMap<String, String>, k: &str, default: u64) -> Result<u64, DomainError> {
    match p.get(k) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| DomainError::Invalid(format!("{k} must be a number"))),
    }
}

async fn history(State(st): State<AppState>, RawQuery(q): RawQuery, headers: HeaderMap) -> Response {
    let p = params(q.as_deref(), &headers, &[]);
    match history_query(&st, &p).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => nacos_error(e),
    }
}

/// A history page, or one row by `nid`; shared by the v1 and the enveloped v2/v3 handlers.
pub(super) async fn history_query(
    st: &AppState,
    p: &std::collections::HashMap<String, String>,
) -> Result<Value, DomainError> {
    {
        if let Some(nid) = p.get("nid") {
            let id = nid.trim().parse().map_err(|_| DomainError::Invalid("nid must be a number".into()))?;
            let want = if p.contains_key("dataId") { Some(key_of(p)?) } else { None };
            let (key, row) = st.config.history_detail(id, want.as_ref())?;
            return Ok(row_json(&key, &row, true));
        }
        let key = key_of(p)?;
        let page = st
            .config
            .history(&key, num(p, "pageNo", 1)? as usize, num(p, "pageSize", 100)? as usize, consistency(p))
            .await?;
        Ok(json!({
            "totalCount": page.total,
            "pageNumber": page.page_no,
            "pagesAvailable": page.pages_available(),
            "pageItems": page.items.iter().map(|r| row_json(&key, r, false)).collect::<Vec<_>>(),
        }))
    }
}

async fn previous(State(st): State<AppState>, RawQuery(q): RawQuery, headers: HeaderMap) -> Response {
    let p = params(q.as_deref(), &headers, &[]);
    match previous_query(&st, &p) {
        Ok(v) => Json(v).into_response(),
        Err(e) => nacos_error(e),
    }
}

/// The history row before `id`.
pub(super) fn previous_query(
    st: &AppState,
    p: &std::collections::HashMap<String, String>,
) -> Result<Value, DomainError> {
    let key = key_of(p)?;
    let id = num(p, "id", 0)?;
    let row = st.config.history_previous(&key, id)?;
    Ok(row_json(&key, &row, true))
}

#[cfg(test)]
mod tests {
    use super::iso_millis;

    #[test]
    fn timestamps_render_like_nacos() {
        assert_eq!(iso_millis(0), "1970-01-01T00:00:00.000+0000");
        assert_eq!(iso_millis(1_607_132_883_380), "2020-12-05T01:48:03.380+0000");
        assert_eq!(iso_millis(951_782_400_000), "2000-02-29T00:00:00.000+0000");
    }
}
