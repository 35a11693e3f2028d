//! The admin API's answers: JSON bodies, and errors as `{"error": code, "message": why}`
//! with stable codes that the OpenAPI description lists.

use http::{Response, StatusCode};
use serde::Serialize;

pub type Answer = Response<Vec<u8>>;

pub fn respond(status: StatusCode, content_type: &str, body: Vec<u8>) -> Answer {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, content_type)
        .header(http::header::CONTENT_LENGTH, body.len())
        .header(http::header::CACHE_CONTROL, "no-store")
        .body(body)
        .unwrap_or_default()
}

pub fn json<T: Serialize>(status: StatusCode, v: &T) -> Answer {
    match serde_json::to_vec(v) {
        Ok(body) => respond(status, "application/json", body),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            &e.to_string(),
        ),
    }
}

pub fn ok<T: Serialize>(v: &T) -> Answer {
    json(StatusCode::OK, v)
}

pub fn error(status: StatusCode, code: &str, message: &str) -> Answer {
    let body = serde_json::json!({ "error": code, "message": message });
    respond(status, "application/json", body.to_string().into_bytes())
}

pub fn not_found() -> Answer {
    error(StatusCode::NOT_FOUND, "not_found", "no such route")
}

pub fn unknown_webhook() -> Answer {
    error(
        StatusCode::NOT_FOUND,
        "unknown_webhook",
        "no running webhook has that id",
    )
}

pub fn bad_request(message: &str) -> Answer {
    error(StatusCode::BAD_REQUEST, "bad_request", message)
}

/// 405, with `Allow`; a route that takes GET takes HEAD too (`serve.rs`).
pub fn method_not_allowed(allow: &str) -> Answer {
    let allow = if allow.split(", ").any(|m| m == "GET") {
        format!("{allow}, HEAD")
    } else {
        allow.to_string()
    };
    let allow = allow.as_str();
    let mut a = error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        &format!("this route takes {allow}"),
    );
    if let Ok(v) = http::HeaderValue::from_str(allow) {
        a.headers_mut().insert(http::header::ALLOW, v);
    }
    a
}

/// A queue error: 503 while the storage is out of service, 500 otherwise.
pub fn queue_error(e: &crate::queue::QueueError) -> Answer {
    match e {
        crate::queue::QueueError::Unavailable(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            &e.to_string(),
        ),
        _ => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "queue_error",
            &e.to_string(),
        ),
    }
}

/// Compares without stopping at the first difference, so the time taken does not
/// tell how much of a guess was right.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
