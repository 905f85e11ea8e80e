//! The console's embedded pages (vanilla JS and CSS, no build step): the
//! operations console, a single-page app at `/console`, with its login, and
//! the sandbox's virtual phones at `/console/phones`. The pages call the
//! internal API with the session cookie that `POST /console/login` sets and
//! its CSRF header (see `auth`); the phones page also takes an API key typed
//! into it.
//!
//! Every asset is a row of [`ASSETS`]; adding one is one line.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use crate::auth::{self, SESSION_COOKIE, SESSION_SECONDS};
use crate::error::{AppError, AppResult};
use crate::extract::ApiJson;
use crate::state::AppState;

/// One embedded file of the console.
pub struct Asset {
    /// The name under `/console/`.
    pub path: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

macro_rules! asset {
    ($path:literal, $content_type:expr) => {
        Asset {
            path: $path,
            content_type: $content_type,
            bytes: include_bytes!(concat!("../../assets/console/", $path)),
        }
    };
}

/// The console's files, served under `/console/<path>`.
pub const ASSETS: &[Asset] = &[
    asset!("index.html", HTML),
    asset!("app.css", CSS),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("ui.js", JS),
    asset!("charts.js", JS),
    asset!("board.js", JS),
    asset!("order.js", JS),
    asset!("analytics.js", JS),
    asset!("campaigns.js", JS),
    asset!("ops.js", JS),
    asset!("favicon.svg", SVG),
    asset!("phones.html", HTML),
    asset!("phones.css", CSS),
    asset!("phones.js", JS),
];

/// The console's Content-Security-Policy: nothing but its own files, no
/// inline script.
pub const CSP: &str = "default-src 'self'; img-src 'self' data:; media-src 'self' blob: data:; connect-src 'self'; frame-ancestors 'none'";

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/console", get(index))
        .route("/console/", get(index))
        .route("/console/login", post(login))
        .route("/console/logout", post(logout))
        .route("/console/session", get(session))
        .route("/console/phones", get(phones))
        .route("/console/{file}", get(file))
}

/// The asset named `path`.
pub fn asset(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// The headers every console answer carries.
fn guard(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    response
}

fn serve(asset: &Asset) -> Response {
    // Names are not fingerprinted: the browser revalidates each time, so a
    // new build's files are never mixed with an old one's.
    let response = ([(header::CONTENT_TYPE, asset.content_type), (header::CACHE_CONTROL, "no-cache")], asset.bytes)
        .into_response();
    guard(response)
}

async fn index() -> Response {
    match asset("index.html") {
        Some(index) => serve(index),
        None => guard(AppError::NotFound("no console page".into()).into_response()),
    }
}

/// `GET /console/phones`: the virtual phones of the sandbox.
async fn phones() -> Response {
    match asset("phones.html") {
        Some(page) => serve(page),
        None => guard(AppError::NotFound("no phones page".into()).into_response()),
    }
}

async fn file(Path(file): Path<String>) -> Response {
    match asset(&file) {
        Some(asset) => serve(asset),
        None => guard(AppError::NotFound(format!("no console file {file}")).into_response()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LoginBody {
    api_key: Option<String>,
}

fn cookie(state: &AppState, value: &str, max_age: i64) -> HeaderValue {
    let secure = if state.config.public_base_url.scheme() == "https" { "; Secure" } else { "" };
    let cookie = format!("{SESSION_COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}");
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static("mw_console=; Max-Age=0"))
}

/// `POST /console/login` `{"apiKey"}`: the session cookie and its CSRF
/// token; 401 (and no cookie) for a key that is not accepted.
async fn login(State(state): State<AppState>, ApiJson(body): ApiJson<LoginBody>) -> Response {
    let answer = async {
        let key = body.api_key.as_deref().map(str::trim).filter(|k| !k.is_empty());
        let key = key.ok_or_else(|| AppError::invalid("apiKey", "apiKey is required"))?;
        let Some(token) = auth::open_session(&state.credentials, key, state.clock.now()) else {
            metrics::counter!("mangwale_console_logins_total", "outcome" => "refused").increment(1);
            tracing::warn!("console login refused: the API key is not accepted");
            return Err(AppError::Unauthorized);
        };
        metrics::counter!("mangwale_console_logins_total", "outcome" => "accepted").increment(1);
        tracing::info!("console session opened");
        let csrf = auth::csrf_token(&state.credentials, &token);
        let mut response = Json(json!({"csrfToken": csrf, "expiresIn": SESSION_SECONDS})).into_response();
        response.headers_mut().insert(header::SET_COOKIE, cookie(&state, &token, SESSION_SECONDS));
        Ok::<_, AppError>(response)
    }
    .await;
    guard(answer.unwrap_or_else(IntoResponse::into_response))
}

/// `POST /console/logout`: clears the cookie.
async fn logout(State(state): State<AppState>) -> Response {
    let mut response = (StatusCode::OK, Json(json!({"loggedOut": true}))).into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie(&state, "", 0));
    guard(response)
}

/// `GET /console/session`: 200 `{"csrfToken"}` while the cookie holds a
/// valid session, else 401.
async fn session(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let answer: AppResult<Response> = match auth::session_cookie(&headers) {
        Some(token) if auth::session_valid(&state.credentials, token, state.clock.now()) => {
            Ok(Json(json!({"csrfToken": auth::csrf_token(&state.credentials, token)})).into_response())
        }
        _ => Err(AppError::Unauthorized),
    };
    guard(answer.unwrap_or_else(IntoResponse::into_response))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_embedded_once_with_a_type() {
        let mut paths: Vec<&str> = ASSETS.iter().map(|a| a.path).collect();
        paths.sort_unstable();
        paths.dedup();
        assert_eq!(paths.len(), ASSETS.len(), "no path twice");
        for a in ASSETS {
            assert!(!a.bytes.is_empty(), "{} is empty", a.path);
            assert!(!a.content_type.is_empty());
        }
        assert!(asset("index.html").is_some());
        assert!(asset("../Cargo.toml").is_none());
    }

    #[test]
    fn the_page_loads_no_inline_script() {
        let html = std::str::from_utf8(asset("index.html").unwrap().bytes).unwrap();
        for tag in html.split("<script").skip(1) {
            let open = &tag[..tag.find('>').unwrap()];
            assert!(open.contains("src="), "an inline script: <script{open}>");
        }
        assert!(!html.contains(" onclick="), "no inline handlers");
    }
}
