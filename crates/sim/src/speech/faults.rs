//! Faults the simulated speech servers inject, so tests can prove the
//! service's fallbacks: a server that is down, failing, slow, or answering
//! garbage. Set from Rust ([`super::AsrSim::set_fault`]) or over HTTP:
//!
//! | method | path | body |
//! |---|---|---|
//! | POST | `/_sim/fault` | `{"kind": "down"}`, `{"kind": "status", "status": 503}`, `{"kind": "slow", "ms": 8000}`, `{"kind": "garbage"}` |
//! | DELETE | `/_sim/fault` | clears it |
//!
//! A fault applies to every request but the control ones (the health probe
//! included) until cleared.

use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method, Response};
use http_body_util::Full;
use serde::{Deserialize, Serialize};

use crate::clock::lock;
use crate::http::DropConnection;

/// What a faulty speech server does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SpeechFault {
    /// Closes every connection unanswered (a crashed or unreachable server).
    Down,
    /// Answers this status with the server's error body.
    Status { status: u16 },
    /// Waits this long before answering normally.
    Slow { ms: u64 },
    /// Answers 200 with a body that is not JSON.
    Garbage,
}

/// The current fault of one simulator.
#[derive(Debug, Default)]
pub(crate) struct FaultSlot(Mutex<Option<SpeechFault>>);

/// What the request handler must do about the current fault.
pub(crate) enum Injected {
    /// Nothing: answer normally (after a `Slow` wait, already served).
    None,
    /// Answer 200 with garbage instead of the normal answer.
    Garbage,
    /// Answer this status (with the server's own error body).
    Status(u16),
}

pub(crate) type HttpResponse = Response<Full<Bytes>>;

impl FaultSlot {
    pub(crate) fn set(&self, fault: Option<SpeechFault>) {
        *lock(&self.0) = fault;
    }

    pub(crate) fn get(&self) -> Option<SpeechFault> {
        lock(&self.0).clone()
    }

    /// Applies the fault before a request is handled: drops the connection,
    /// waits, or tells the handler how to answer.
    pub(crate) async fn inject(&self) -> Result<Injected, DropConnection> {
        match self.get() {
            None => Ok(Injected::None),
            Some(SpeechFault::Down) => Err(DropConnection),
            Some(SpeechFault::Status { status }) => Ok(Injected::Status(status)),
            Some(SpeechFault::Slow { ms }) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok(Injected::None)
            }
            Some(SpeechFault::Garbage) => Ok(Injected::Garbage),
        }
    }

    /// The answer to a `/_sim/fault` request; `None` for other paths.
    pub(crate) fn control(&self, method: &Method, path: &str, body: &[u8]) -> Option<HttpResponse> {
        if path.trim_end_matches('/') != "/_sim/fault" {
            return None;
        }
        Some(match *method {
            Method::POST => match serde_json::from_slice::<SpeechFault>(body) {
                Ok(fault) => {
                    self.set(Some(fault.clone()));
                    json_response(200, &serde_json::json!({"fault": fault}))
                }
                Err(e) => json_response(400, &serde_json::json!({"error": format!("not a fault: {e}")})),
            },
            Method::DELETE => {
                self.set(None);
                json_response(200, &serde_json::json!({"fault": null}))
            }
            Method::GET => json_response(200, &serde_json::json!({"fault": self.get()})),
            _ => json_response(405, &serde_json::json!({"error": "use GET, POST or DELETE"})),
        })
    }
}

pub(crate) fn json_response(status: u16, body: &serde_json::Value) -> HttpResponse {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// A 200 whose body is not JSON: what a misconfigured proxy answers.
pub(crate) fn garbage() -> HttpResponse {
    let mut r = Response::new(Full::new(Bytes::from_static(b"<html><body>502 Bad Gateway</body></html>")));
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/html"));
    r
}
