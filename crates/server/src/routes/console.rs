//! The console's embedded pages (vanilla JS and CSS, no build step): here
//! the sandbox's virtual phones at `/console/phones`. The pages call the
//! API with the console session (cookie and CSRF header) or, without one,
//! an API key typed into the page.
//!
//! Every asset is a row of [`ASSETS`]; adding one is one line.

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::error::AppError;
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
pub const ASSETS: &[Asset] = &[asset!("phones.html", HTML), asset!("phones.css", CSS), asset!("phones.js", JS)];

/// The console's Content-Security-Policy: nothing but its own files, no
/// inline script.
pub const CSP: &str = "default-src 'self'; img-src 'self' data:; media-src 'self' blob: data:; connect-src 'self'; frame-ancestors 'none'";

pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route("/console/phones", get(phones)).route("/console/{file}", get(file))
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
    let response = ([(header::CONTENT_TYPE, asset.content_type), (header::CACHE_CONTROL, "no-cache")], asset.bytes)
        .into_response();
    guard(response)
}

fn named(path: &str) -> Response {
    match asset(path) {
        Some(asset) => serve(asset),
        None => guard(AppError::NotFound(format!("no console file {path}")).into_response()),
    }
}

/// `GET /console/phones`: the virtual phones of the sandbox.
async fn phones() -> Response {
    named("phones.html")
}

async fn file(Path(file): Path<String>) -> Response {
    named(&file)
}
