//! The Nacos SDK wire format: a protobuf `Payload` whose `metadata.type` names the message and
//! whose body is the message as Jackson-style JSON. Every response carries `resultCode`,
//! `errorCode` and `success` consistently, because Java and Rust judge success by the first,
//! Python by the second and Go by the third.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Map;
use serde_json::Value;

use super::pb;

/// Nacos error codes used on this port (see the protocol notes, section 4).
pub mod code {
    pub const SERVER_STARTING: i64 = 300;
    pub const UNREGISTERED: i64 = 301;
    pub const NO_HANDLER: i64 = 302;
    pub const INVALID_PARAM: i64 = 400;
    /// Authentication or authorization failed (Java clients log in again on seeing it).
    pub const NO_RIGHT: i64 = 403;
    pub const NOT_FOUND: i64 = 404;
    pub const CONFLICT: i64 = 409;
    pub const SERVER_ERROR: i64 = 500;
    pub const BAD_GATEWAY: i64 = 502;
    pub const CONFIG_NOT_FOUND: i64 = 300;
}

/// A decoded incoming message.
pub struct Incoming {
    pub kind: String,
    pub client_ip: String,
    pub headers: HashMap<String, String>,
    pub body: Value,
}

impl Incoming {
    pub fn parse(p: pb::Payload) -> Result<Incoming, String> {
        let meta = p.metadata.unwrap_or_default();
        let bytes = p.body.map(|b| b.value).unwrap_or_default();
        let body = if bytes.is_empty() {
            Value::Object(Map::new())
        } else {
            serde_json::from_slice(&bytes).map_err(|e| format!("payload of {} is not JSON: {e}", meta.r#type))?
        };
        Ok(Incoming { kind: meta.r#type, client_ip: meta.client_ip, headers: meta.headers, body })
    }

    /// The body as a typed request; unknown fields are ignored and missing ones defaulted.
    pub fn decode<T: for<'de> Deserialize<'de>>(&self) -> Result<T, String> {
        T::deserialize(&self.body).map_err(|e| format!("bad {}: {e}", self.kind))
    }

    pub fn request_id(&self) -> Option<&str> {
        self.body.get("requestId").and_then(Value::as_str)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// Builds a payload of `kind` with a JSON object body.
pub fn payload(kind: &str, body: &Value) -> pb::Payload {
    pb::Payload {
        metadata: Some(pb::Metadata { r#type: kind.to_string(), client_ip: String::new(), headers: HashMap::new() }),
        body: Some(pb::Any { type_url: String::new(), value: serde_json::to_vec(body).unwrap_or_default() }),
    }
}

/// A successful response of `kind`; `fields` are merged into the envelope.
pub fn ok(kind: &str, fields: Value) -> pb::Payload {
    let mut obj = match fields {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    obj.insert("resultCode".into(), Value::from(200));
    obj.insert("errorCode".into(), Value::from(0));
    obj.insert("success".into(), Value::Bool(true));
    payload(kind, &Value::Object(obj))
}

/// A typed business failure: `resultCode` 500 with a non-zero `errorCode` (Python reads only
/// the latter) and the message.
pub fn fail(kind: &str, error_code: i64, message: &str, fields: Value) -> pb::Payload {
    let mut obj = match fields {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    obj.insert("resultCode".into(), Value::from(500));
    obj.insert("errorCode".into(), Value::from(error_code));
    obj.insert("message".into(), Value::from(message));
    obj.insert("success".into(), Value::Bool(false));
    payload(kind, &Value::Object(obj))
}

/// A transport-level `ErrorResponse` (clients turn it into an exception, retry or reconnect).
pub fn error_response(error_code: i64, message: &str) -> pb::Payload {
    let body = serde_json::json!({
        "resultCode": error_code,
        "errorCode": error_code,
        "message": message,
        "success": false,
    });
    payload("ErrorResponse", &body)
}

/// Reads a string that clients may send as absent, null or blank; blank means absent.
pub fn non_blank(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(p: &pb::Payload) -> Value {
        serde_json::from_slice(&p.body.as_ref().unwrap().value).unwrap()
    }

    #[test]
    fn envelopes_agree_on_success_three_ways() {
        let okp = ok("ConfigPublishResponse", Value::Null);
        let b = body(&okp);
        assert_eq!(
            (b["resultCode"].as_i64(), b["errorCode"].as_i64(), b["success"].as_bool()),
            (Some(200), Some(0), Some(true))
        );
        assert_eq!(okp.metadata.unwrap().r#type, "ConfigPublishResponse");
        let f = body(&fail("ConfigQueryResponse", code::CONFIG_NOT_FOUND, "config data not exist", Value::Null));
        assert_eq!(
            (f["resultCode"].as_i64(), f["errorCode"].as_i64(), f["success"].as_bool()),
            (Some(500), Some(300), Some(false))
        );
    }

    #[test]
    fn parses_lenient_bodies() {
        let p = payload("ConfigQueryRequest", &serde_json::json!({"dataId":"a","unknown":1,"requestId":"7"}));
        let inc = Incoming::parse(p).unwrap();
        assert_eq!(inc.request_id(), Some("7"));
        let empty = Incoming::parse(pb::Payload { metadata: None, body: None }).unwrap();
        assert!(empty.body.is_object());
        let bad = pb::Payload { metadata: None, body: Some(pb::Any { type_url: String::new(), value: b"{".to_vec() }) };
        assert!(Incoming::parse(bad).is_err());
        assert_eq!(non_blank(&Some("  ".into())), None);
        assert_eq!(non_blank(&Some("x".into())), Some("x"));
    }
}
