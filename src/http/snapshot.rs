//! `GET /v1/snapshot` and `PUT /v1/snapshot`, with Consul's semantics: GET returns a
//! point-in-time snapshot of the whole state (after a read-index barrier unless `?stale`),
//! PUT replaces the cluster's state with a snapshot's data through one Raft entry.

use std::collections::HashMap;

use axum::body::Body;
use axum::body::Bytes;
use axum::extract::Query;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use super::AppState;
use crate::domain::snapshot as dsnap;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/snapshot", get(save).put(restore))
}

async fn save(State(st): State<AppState>, Query(p): Query<HashMap<String, String>>) -> Response {
    if p.contains_key("stale") && p.contains_key("consistent") {
        return (StatusCode::BAD_REQUEST, "Cannot specify ?stale with ?consistent, conflicting semantics.")
            .into_response();
    }
    if !p.contains_key("stale") {
        if let Err(e) = st.node.linearizable_barrier().await {
            return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response();
        }
    }
    match dsnap::export(&st.node).await {
        Ok((file, index)) => match tokio::fs::File::open(&file).await {
            Ok(f) => {
                // The open handle keeps the data readable after the temp file is unlinked.
                drop(file);
                let body = Body::from_stream(tokio_util_stream(f));
                Response::builder()
                    .status(StatusCode::OK)
                    .header("Content-Type", "application/octet-stream")
                    .header("X-Consul-Index", index.max(1).to_string())
                    .body(body)
                    .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
            }
            Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        },
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

fn tokio_util_stream(f: tokio::fs::File) -> impl futures::Stream<Item = std::io::Result<Bytes>> {
    futures::stream::unfold(f, |mut f| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 256 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    })
}

async fn restore(State(st): State<AppState>, body: Bytes) -> Response {
    match dsnap::restore_bytes(&st.node, &body).await {
        Ok(_) => StatusCode::OK.into_response(),
        Err(e) => crate::http::nacos_error(e),
    }
}
