//! The HTTP server: plain hyper, so that a fault can close a connection
//! without answering. Every request to the Graph API is logged first; then
//! an injected fault may answer it; then authentication, the checks of
//! [`super::api`] and the recipient's script decide.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, Method, Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::api::{GraphError, error_title, validate};
use super::log::{LoggedResponse, ReceivedRequest};
use super::script::Fault;
use super::{Inner, control, hmac_hex};
use crate::clock::lock;

const MAX_BODY: usize = 1 << 20;

type HttpResponse = Response<Full<Bytes>>;

pub(crate) use crate::http::DropConnection;

pub(crate) async fn serve(inner: Arc<Inner>, listener: TcpListener, shutdown: watch::Receiver<bool>) {
    crate::http::serve("whatsapp sim", listener, shutdown, move |req| handle(inner.clone(), req)).await
}

pub(crate) fn response(status: u16, content_type: &str, body: String) -> HttpResponse {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = http::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(CONTENT_TYPE, v);
    }
    r
}

pub(crate) fn json_response(status: u16, body: &Value) -> HttpResponse {
    response(status, "application/json; charset=UTF-8", body.to_string())
}

/// An answer to a Graph API request.
struct Reply {
    status: u16,
    content_type: &'static str,
    body: String,
    message_id: Option<String>,
}

impl Reply {
    fn json(status: u16, body: &Value) -> Self {
        Reply { status, content_type: "application/json; charset=UTF-8", body: body.to_string(), message_id: None }
    }
}

/// Which Graph API path was asked for.
enum Route {
    /// `/{version}/{phone_number_id}/messages`.
    Messages { phone_number_id: String },
    /// `/{version}/{waba_id}/message_templates`.
    Templates { waba_id: String },
    /// Anything else under a version.
    Unknown,
}

fn route(path: &str) -> Route {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        [version, id, "messages"] if is_version(version) => Route::Messages { phone_number_id: id.to_string() },
        [version, id, "message_templates"] if is_version(version) => Route::Templates { waba_id: id.to_string() },
        _ => Route::Unknown,
    }
}

fn is_version(segment: &str) -> bool {
    segment.strip_prefix('v').is_some_and(|rest| {
        let mut parts = rest.split('.');
        let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        parts.next().is_some_and(digits) && parts.next().is_none_or(digits) && parts.next().is_none()
    })
}

async fn handle(inner: Arc<Inner>, req: Request<Incoming>) -> Result<HttpResponse, DropConnection> {
    let (parts, body) = req.into_parts();
    let bytes = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Ok(json_response(413, &json!({"error": "request body too large"}))),
    };
    let path = parts.uri.path().to_string();
    if path == "/_sim" || path.starts_with("/_sim/") {
        let (status, body) = control::handle(&inner, &parts.method, &path, &bytes).await;
        return Ok(json_response(status, &body));
    }
    let query: Vec<(String, String)> =
        parts.uri.query().map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
    let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let token = bearer(&parts.headers).or_else(|| param("access_token"));
    let param = &param;
    let authorized = token.as_deref() == Some(inner.config.access_token.as_str());
    let route = route(&path);
    let (seq, fault) = {
        let mut st = lock(&inner.state);
        let fault = if matches!(route, Route::Messages { .. }) { st.take_fault() } else { None };
        let seq = st.push_received(ReceivedRequest {
            seq: 0,
            at: inner.clock.now(),
            method: parts.method.to_string(),
            path: path.clone(),
            query: query.iter().filter(|(k, _)| k != "access_token").cloned().collect(),
            authorized,
            appsecret_proof: param("appsecret_proof"),
            body: serde_json::from_slice(&bytes).ok(),
            raw_body: String::from_utf8_lossy(&bytes).into_owned(),
            fault,
            response: None,
            message_id: None,
            dropped: false,
        });
        (seq, fault)
    };

    let mut late_by = None;
    let mut drop_after = false;
    let mut gateway_timeout = false;
    match fault {
        Some(Fault::ServerError { status }) => {
            let code = if status == 503 { 2 } else { 131_000 };
            let error = GraphError::new(status, code, format!("(#{code}) {}", error_title(code)))
                .details("Injected server error: the message was not sent.");
            return Ok(finish(&inner, seq, graph_reply(&inner, &error)));
        }
        Some(Fault::RateLimited) => {
            let error = GraphError::new(429, 130_429, "(#130429) Rate limit hit").details(
                "Message failed to send because there were too many messages sent from this phone number in a short period of time",
            );
            return Ok(finish(&inner, seq, graph_reply(&inner, &error)));
        }
        Some(Fault::Drop) => {
            mark_dropped(&inner, seq);
            return Err(DropConnection);
        }
        Some(Fault::DropAfterProcessing) => drop_after = true,
        Some(Fault::Delay { secs }) => late_by = Some(secs),
        Some(Fault::GatewayTimeout) => gateway_timeout = true,
        None => {}
    }

    let reply = match route {
        Route::Messages { phone_number_id } => {
            messages(&inner, &parts.method, &phone_number_id, token.as_deref(), param("appsecret_proof"), &bytes)
        }
        Route::Templates { waba_id } => templates(&inner, &parts.method, &waba_id, token.as_deref(), &param),
        Route::Unknown => {
            let error = GraphError::new(400, 2500, format!("Unknown path components: {path}"));
            graph_reply(&inner, &error)
        }
    };
    inner.wake.notify_one();
    let reply = if gateway_timeout {
        let page = "<html><head><title>504 Gateway Time-out</title></head><body><center><h1>504 Gateway Time-out</h1></center></body></html>";
        Reply { status: 504, content_type: "text/html", body: page.to_string(), message_id: reply.message_id }
    } else {
        reply
    };
    let answer = finish(&inner, seq, reply);
    if let Some(late_by) = late_by {
        // The message is already accepted: a client that gives up meanwhile
        // cancels only the answer.
        tokio::time::sleep(late_by).await;
    }
    if drop_after {
        mark_dropped(&inner, seq);
        return Err(DropConnection);
    }
    Ok(answer)
}

/// `POST /{version}/{phone_number_id}/messages`.
fn messages(
    inner: &Inner,
    method: &Method,
    phone_number_id: &str,
    token: Option<&str>,
    proof: Option<String>,
    body: &[u8],
) -> Reply {
    let config = &inner.config;
    let error = |e: GraphError| graph_reply(inner, &e);
    match token {
        None => {
            return error(GraphError::new(
                401,
                190,
                "An active access token must be used to query information about the current user.",
            ));
        }
        Some(t) if t != config.access_token => {
            return error(GraphError::new(401, 190, "Invalid OAuth access token - Cannot parse access token"));
        }
        Some(_) => {}
    }
    if phone_number_id != config.phone_number_id {
        let mut e = GraphError::new(
            400,
            100,
            format!(
                "Unsupported {} request. Object with ID '{phone_number_id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation.",
                method.as_str().to_lowercase()
            ),
        );
        e.kind = "GraphMethodException";
        e.subcode = Some(33);
        return error(e);
    }
    if method != Method::POST {
        return error(GraphError::new(400, 100, format!("Unsupported {} request.", method.as_str().to_lowercase())));
    }
    let secret = lock(&inner.state).app_secret.clone();
    match proof {
        Some(proof)
            if !secret.is_empty()
                && !proof.eq_ignore_ascii_case(&hmac_hex(&secret, config.access_token.as_bytes())) =>
        {
            return error(GraphError::new(400, 100, "Invalid appsecret_proof provided in the API argument"));
        }
        None if config.require_appsecret_proof => {
            return error(GraphError::new(400, 100, "API calls from the server require an appsecret_proof argument"));
        }
        _ => {}
    }
    let send = match validate(body, &config.templates) {
        Ok(send) => send,
        Err(e) => return error(e),
    };
    let now = inner.clock.now();
    let mut st = lock(&inner.state);
    let script = st.take_script(&send.to);
    if let Some(code) = script.fails_synchronously() {
        let title = error_title(code);
        let e = GraphError::new(400, code, format!("(#{code}) {title}")).details(format!("{title}."));
        let trace = st.next_trace_id();
        return Reply::json(e.status, &e.body(&trace));
    }
    let (to_input, wa_id) = (send.to_input.clone(), send.wa_id.clone());
    let id = st.accept(config, send, script, now);
    let body = json!({
        "messaging_product": "whatsapp",
        "contacts": [{"input": to_input, "wa_id": wa_id}],
        "messages": [{"id": id, "message_status": "accepted"}],
    });
    Reply { message_id: Some(id), ..Reply::json(200, &body) }
}

/// Templates listed per page when `limit` is not given (Meta's default).
const DEFAULT_TEMPLATE_PAGE: usize = 25;

/// `GET /{version}/{waba_id}/message_templates[?fields=&limit=&after=]`:
/// one entry per template and language, `{"data": [{"name", "language",
/// "status", "category", "id"}], "paging": {"cursors": {"before", "after"},
/// "next"}}` (`next` only when another page follows).
fn templates(
    inner: &Inner,
    method: &Method,
    waba_id: &str,
    token: Option<&str>,
    param: &dyn Fn(&str) -> Option<String>,
) -> Reply {
    let config = &inner.config;
    let error = |e: GraphError| graph_reply(inner, &e);
    match token {
        None => return error(GraphError::new(401, 190, "An active access token must be used.")),
        Some(t) if t != config.access_token => {
            return error(GraphError::new(401, 190, "Invalid OAuth access token - Cannot parse access token"));
        }
        Some(_) => {}
    }
    if waba_id != config.business_account_id {
        let mut e = GraphError::new(
            400,
            100,
            format!(
                "Unsupported get request. Object with ID '{waba_id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation."
            ),
        );
        e.kind = "GraphMethodException";
        e.subcode = Some(33);
        return error(e);
    }
    if method != Method::GET {
        return error(GraphError::new(400, 100, format!("Unsupported {} request.", method.as_str().to_lowercase())));
    }
    let all: Vec<Value> = config
        .templates
        .iter()
        .enumerate()
        .flat_map(|(i, t)| {
            t.languages.iter().enumerate().map(move |(j, language)| {
                json!({
                    "name": t.name,
                    "language": language,
                    "status": t.status,
                    "category": t.category.to_uppercase(),
                    "id": format!("{}", 1_000_000 + i * 100 + j),
                })
            })
        })
        .collect();
    let limit =
        param("limit").and_then(|l| l.parse::<usize>().ok()).filter(|l| *l > 0).unwrap_or(DEFAULT_TEMPLATE_PAGE);
    let start =
        param("after").and_then(|c| c.strip_prefix("cursor-").and_then(|n| n.parse::<usize>().ok())).unwrap_or(0);
    let page: Vec<Value> = all.iter().skip(start).take(limit).cloned().collect();
    let end = start + page.len();
    let mut paging = json!({"cursors": {"before": format!("cursor-{start}"), "after": format!("cursor-{end}")}});
    if end < all.len() {
        paging["next"] = json!(format!(
            "{}/{}/{waba_id}/message_templates?limit={limit}&after=cursor-{end}",
            inner.base_url,
            super::DEFAULT_API_VERSION
        ));
    }
    Reply::json(200, &json!({"data": page, "paging": paging}))
}

fn graph_reply(inner: &Inner, error: &GraphError) -> Reply {
    let trace = lock(&inner.state).next_trace_id();
    Reply::json(error.status, &error.body(&trace))
}

fn mark_dropped(inner: &Inner, seq: u64) {
    if let Some(entry) = lock(&inner.state).received_mut(seq) {
        entry.dropped = true;
    }
}

/// Records the reply in the log and renders it.
fn finish(inner: &Inner, seq: u64, reply: Reply) -> HttpResponse {
    if let Some(entry) = lock(&inner.state).received_mut(seq) {
        entry.response = Some(LoggedResponse { status: reply.status, body: reply.body.clone() });
        entry.message_id = reply.message_id.clone();
    }
    let mut r = response(reply.status, reply.content_type, reply.body);
    if reply.status == 401 {
        r.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("OAuth \"Facebook Platform\" \"invalid_token\""),
        );
    }
    r
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_string())
}
