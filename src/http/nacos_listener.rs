//! Nacos v1 long polling: `POST /v1/cs/configs/listener` with the `Listening-Configs` wire format.
//!
//! Request records are `dataId \x02 group \x02 md5 [\x02 tenant] \x01`; the reply lists the
//! changed keys the same way (tenant omitted when the client sent none), URL-encoded.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::RawQuery;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::response::Response;
use axum::routing::post;
use axum::Router;

use super::nacos_error;
use super::params;
use super::AppState;
use crate::domain::config::make_key;
use crate::domain::config::ListenKey;
use crate::domain::DomainError;

const WORD_SEP: char = '\u{2}';
const LINE_SEP: char = '\u{1}';
/// Nacos refuses more keys than this in one listener request.
const MAX_KEYS: usize = 10_000;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/cs/configs/listener", post(listen))
}

/// A parsed record: the key plus the fields exactly as the client sent them.
struct Record {
    listen: ListenKey,
    data_id: String,
    group: String,
    tenant: String,
}

fn parse(text: &str) -> Result<Vec<Record>, DomainError> {
    let mut out = Vec::new();
    for line in text.split(LINE_SEP).filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split(WORD_SEP).collect();
        if f.len() < 3 || f.len() > 4 {
            return Err(DomainError::Invalid(format!("invalid Listening-Configs record: {line:?}")));
        }
        let tenant = f.get(3).copied().unwrap_or("");
        let key = make_key(Some(tenant), Some(f[1]), Some(f[0]))?;
        out.push(Record {
            listen: ListenKey { key, md5: f[2].to_string() },
            data_id: f[0].to_string(),
            group: f[1].to_string(),
            tenant: tenant.to_string(),
        });
        if out.len() > MAX_KEYS {
            return Err(DomainError::Invalid(format!("too many listening keys (more than {MAX_KEYS})")));
        }
    }
    Ok(out)
}

fn render(records: &[Record], changed: &[usize]) -> String {
    let mut s = String::new();
    for &i in changed {
        let r = &records[i];
        s.push_str(&r.data_id);
        s.push(WORD_SEP);
        s.push_str(&r.group);
        if !r.tenant.is_empty() {
            s.push(WORD_SEP);
            s.push_str(&r.tenant);
        }
        s.push(LINE_SEP);
    }
    let mut out: String = form_urlencoded::byte_serialize(s.as_bytes()).collect();
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

async fn listen(
    State(st): State<AppState>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ip = peer.ip().to_string();
    let p = params(q.as_deref(), &headers, &body);
    let Some(raw) = p.get("Listening-Configs") else {
        return nacos_error(DomainError::Invalid("Listening-Configs is required".into()));
    };
    let records = match parse(raw) {
        Ok(r) => r,
        Err(e) => return nacos_error(e),
    };
    let keys: Vec<ListenKey> = records.iter().map(|r| r.listen.clone()).collect();
    let header = |k: &str| headers.get(k).and_then(|v| v.to_str().ok());
    let timeout_ms = header("Long-Pulling-Timeout").and_then(|v| v.parse::<u64>().ok());
    let no_hangup = header("Long-Pulling-Timeout-No-Hangup") == Some("true");
    let result = match timeout_ms {
        Some(t) if !no_hangup => {
            // Nacos holds for the client's timeout minus a margin, but at least 10 s.
            let hold = Duration::from_millis(t.saturating_sub(500).max(10_000));
            st.config.wait_changed(&keys, &ip, hold).await
        }
        _ => st.config.changed_now(&keys, &ip),
    };
    match result {
        Ok(changed) => (
            StatusCode::OK,
            [("Pragma", "no-cache"), ("Expires", "0"), ("Cache-Control", "no-cache,no-store")],
            render(&records, &changed),
        )
            .into_response(),
        Err(e) => nacos_error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_three_and_four_field_records_and_renders_url_encoded() {
        let text = "a\u{2}G\u{2}\u{2}\u{1}b\u{2}G\u{2}abc\u{2}dev\u{1}";
        let recs = parse(text).unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].listen.key.namespace, "public");
        assert_eq!(recs[1].listen.key.namespace, "dev");
        assert_eq!(recs[1].listen.md5, "abc");
        assert_eq!(render(&recs, &[0, 1]), "a%02G%01b%02G%02dev%01\n");
        assert_eq!(render(&recs, &[]), "");
        assert!(parse("only\u{2}two\u{1}").is_err());
    }
}
