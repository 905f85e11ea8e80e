//! The HTTP server: plain hyper, so that a fault can close a connection
//! without answering.

use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::Inner;
use super::control;
use super::faults::{Fault, take_fault};
use super::form::{ApiError, Form};
use super::log::{LoggedResponse, ReceivedRequest};
use super::rest::{self, ApiRequest, Reply};
use crate::clock::lock;

const MAX_BODY: usize = 1 << 20;

pub(crate) use crate::http::DropConnection;

type HttpResponse = Response<Full<Bytes>>;

pub(crate) async fn serve(inner: Arc<Inner>, listener: TcpListener, shutdown: watch::Receiver<bool>) {
    crate::http::serve("exotel sim", listener, shutdown, move |req| handle(inner.clone(), req)).await
}

pub(crate) fn json_response(status: u16, body: String) -> HttpResponse {
    response(status, "application/json", body)
}

fn response(status: u16, content_type: &str, body: String) -> HttpResponse {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = http::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(CONTENT_TYPE, v);
    }
    r
}

async fn handle(inner: Arc<Inner>, req: Request<Incoming>) -> Result<HttpResponse, DropConnection> {
    let (parts, body) = req.into_parts();
    let bytes = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Ok(json_response(413, r#"{"error":"request body too large"}"#.to_string())),
    };
    let path = parts.uri.path().to_string();
    let query: Vec<(String, String)> =
        parts.uri.query().map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
    if let Some(rest) = path.strip_prefix(super::record::RECORDINGS_PATH) {
        return match super::record::serve(&inner, &parts.method, &parts.headers, rest) {
            super::record::Served::Answer(answer) => Ok(answer),
            super::record::Served::Slow(delay, answer) => {
                tokio::time::sleep(delay).await;
                Ok(answer)
            }
            super::record::Served::Drop => Err(DropConnection),
        };
    }
    if let Some(sid) = path.strip_prefix("/_sim/recordings/").and_then(|p| p.strip_suffix(".wav")) {
        return Ok(recording(&inner, &parts.method, sid));
    }
    if path == "/_sim" || path.starts_with("/_sim/") {
        return Ok(control::handle(&inner, &parts.method, &path, &bytes).await);
    }

    let route = rest::route(&path);
    let form = parse_body(&parts.headers, bytes).await;
    let auth = basic_auth(&parts.headers);
    let (seq, fault) = {
        let mut st = lock(&inner.state);
        let fault = if route.account.is_some() { take_fault(&mut st.faults, route.endpoint) } else { None };
        let seq = st.push_received(ReceivedRequest {
            seq: 0,
            at: inner.clock.now(),
            method: parts.method.to_string(),
            path: path.clone(),
            query: query.clone(),
            form: form.as_ref().map(|f| f.0.clone()).unwrap_or_default(),
            auth_user: auth.as_ref().map(|(user, _)| user.clone()),
            endpoint: route.endpoint,
            fault,
            response: None,
            dropped: false,
        });
        (seq, fault)
    };

    let mut drop_after = false;
    let mut slow_by = None;
    match fault {
        Some(Fault::Status { status }) => {
            let reason = http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Error");
            return Ok(finish(&inner, seq, &Reply::error(&ApiError::new(status, reason)), route.json));
        }
        Some(Fault::Delay { secs }) => slow_by = Some(secs),
        Some(Fault::Drop) => {
            mark_dropped(&inner, seq);
            return Err(DropConnection);
        }
        Some(Fault::DropAfterProcessing) => drop_after = true,
        None => {}
    }

    let request = ApiRequest { method: &parts.method, route: &route, auth: auth.as_ref(), form: &form, query: &query };
    let reply = rest::dispatch(&inner, &request, inner.clock.now());
    inner.wake.notify_one();
    let answer = finish(&inner, seq, &reply, route.json);
    if let Some(slow_by) = slow_by {
        // The effect is already done: a client that hangs up meanwhile
        // cancels only the answer.
        tokio::time::sleep(slow_by).await;
    }
    if drop_after {
        mark_dropped(&inner, seq);
        return Err(DropConnection);
    }
    Ok(answer)
}

/// `GET /_sim/recordings/{stream_sid}.wav`: the caller's side of a Voicebot stream.
fn recording(inner: &Inner, method: &http::Method, sid: &str) -> HttpResponse {
    if *method != http::Method::GET && *method != http::Method::HEAD {
        return json_response(405, r#"{"error":"GET only"}"#.to_string());
    }
    let Some(wav) = lock(&inner.flow_records).recording(sid) else {
        return json_response(404, r#"{"error":"no such recording"}"#.to_string());
    };
    let mut r = Response::new(Full::new(Bytes::from(wav.as_ref().clone())));
    r.headers_mut().insert(CONTENT_TYPE, http::HeaderValue::from_static("audio/wav"));
    r
}

fn mark_dropped(inner: &Inner, seq: u64) {
    if let Some(entry) = lock(&inner.state).received_mut(seq) {
        entry.dropped = true;
    }
}

/// Renders the reply and records it in the log.
fn finish(inner: &Inner, seq: u64, reply: &Reply, json: bool) -> HttpResponse {
    let (content_type, body) = reply.render(json);
    if let Some(entry) = lock(&inner.state).received_mut(seq) {
        entry.response =
            Some(LoggedResponse { status: reply.status, content_type: content_type.to_string(), body: body.clone() });
    }
    response(reply.status, content_type, body)
}

fn basic_auth(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

/// Form fields of a urlencoded (or untyped) or multipart body.
async fn parse_body(headers: &HeaderMap, bytes: Bytes) -> Result<Form, String> {
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !content_type.to_ascii_lowercase().starts_with("multipart/form-data") {
        return Ok(Form(form_urlencoded::parse(&bytes).into_owned().collect()));
    }
    let invalid = |e: multer::Error| format!("invalid multipart body: {e}");
    let boundary = multer::parse_boundary(content_type).map_err(invalid)?;
    let stream = futures::stream::once(async move { Ok::<Bytes, std::io::Error>(bytes) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut pairs = Vec::new();
    while let Some(field) = multipart.next_field().await.map_err(invalid)? {
        let name = field.name().unwrap_or_default().to_string();
        let value = field.text().await.map_err(invalid)?;
        pairs.push((name, value));
    }
    Ok(Form(pairs))
}
