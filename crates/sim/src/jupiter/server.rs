//! The two HTTP listeners: plain hyper, so that a fault can close a
//! connection without answering. Every request is logged first; then an
//! outage or an injected fault may answer it; then Jupiter's or the PHP
//! backend's handlers do.

use std::sync::Arc;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, Method, Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::{Inner, JupiterFault, ReceivedRequest, Target, api, php};
use crate::clock::lock;

const MAX_BODY: usize = 1 << 20;

type HttpResponse = Response<Full<Bytes>>;

/// Returned by the service to make hyper close the connection unanswered.
use crate::http::DropConnection;

/// A request as the handlers see it.
pub(crate) struct ApiRequest<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub query: &'a [(String, String)],
    pub headers: &'a HeaderMap,
    /// `None` for an empty body; `Err` for one that is not JSON.
    pub body: &'a Result<Option<Value>, String>,
}

impl ApiRequest<'_> {
    /// The first value of a query parameter, trimmed; `None` when absent or blank.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim()).filter(|v| !v.is_empty())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        header(self.headers, name)
    }

    /// The path split on `/`, without empty segments.
    pub fn segments(&self) -> Vec<&str> {
        self.path.split('/').filter(|s| !s.is_empty()).collect()
    }
}

/// An answer.
pub(crate) struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Reply {
    pub fn json(status: u16, body: &Value) -> Reply {
        Reply { status, content_type: "application/json", body: body.to_string() }
    }

    pub fn ok(body: &Value) -> Reply {
        Reply::json(200, body)
    }

    pub fn html(status: u16, body: &str) -> Reply {
        Reply { status, content_type: "text/html; charset=UTF-8", body: body.to_string() }
    }

    fn into_response(self) -> HttpResponse {
        let mut r = Response::new(Full::new(Bytes::from(self.body)));
        *r.status_mut() = http::StatusCode::from_u16(self.status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        r.headers_mut().insert(CONTENT_TYPE, http::HeaderValue::from_static(self.content_type));
        r
    }
}

pub(crate) async fn serve(inner: Arc<Inner>, target: Target, listener: TcpListener, shutdown: watch::Receiver<bool>) {
    crate::http::serve(target.name(), listener, shutdown, move |req| handle(inner.clone(), target, req)).await
}

async fn handle(inner: Arc<Inner>, target: Target, req: Request<Incoming>) -> Result<HttpResponse, DropConnection> {
    let (parts, body) = req.into_parts();
    let bytes = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Ok(Reply::json(413, &json!({"error": "request body too large"})).into_response()),
    };
    let path = parts.uri.path().to_string();
    let query: Vec<(String, String)> =
        parts.uri.query().map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
    let body = if bytes.iter().all(u8::is_ascii_whitespace) {
        Ok(None)
    } else {
        serde_json::from_slice::<Value>(&bytes).map(Some).map_err(|e| e.to_string())
    };

    let (seq, down, fault) = {
        let mut st = lock(&inner.state);
        let seq = st.record(ReceivedRequest {
            target,
            method: parts.method.to_string(),
            path: path.clone(),
            query: query.clone(),
            api_key: header(&parts.headers, "x-api-key").map(str::to_string),
            service: header(&parts.headers, "x-service").map(str::to_string),
            localization: header(&parts.headers, "x-localization").map(str::to_string),
            body: body.clone().ok().flatten(),
            status: None,
        });
        let down = st.is_down(target);
        // An outage answers everything; faults wait for it to end.
        let fault = if down { None } else { st.take_fault(target, &path) };
        (seq, down, fault)
    };
    let answer = |reply: Reply| {
        lock(&inner.state).set_answer(seq, reply.status);
        reply.into_response()
    };

    if down {
        let error = format!("{} is down (simulated outage)", target.name());
        return Ok(answer(Reply::json(503, &json!({"error": error}))));
    }
    let mut slow_by = None;
    match fault {
        Some(JupiterFault::Status(status)) => {
            let reason = http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("error");
            return Ok(answer(Reply::json(status, &json!({"error": format!("{reason} (injected fault)")}))));
        }
        Some(JupiterFault::Drop) => return Err(DropConnection),
        Some(JupiterFault::Delay(by)) => slow_by = Some(by),
        None => {}
    }

    let request =
        ApiRequest { method: &parts.method, path: &path, query: &query, headers: &parts.headers, body: &body };
    let reply = match target {
        Target::Jupiter => api::handle(&inner, &request),
        Target::Php => php::handle(&inner, &request),
    };
    let response = answer(reply);
    if let Some(by) = slow_by {
        // The request has taken effect; only the answer is late, and a
        // client that gives up meanwhile cannot know what happened.
        tokio::time::sleep(by).await;
    }
    Ok(response)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}
