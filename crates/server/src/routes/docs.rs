//! Swagger UI at `/exotel/docs`, as the incumbent had, over `/openapi.json`.
//!
//! The UI is vendored (`crates/server/assets/swagger/`, see its README) and
//! embedded in the binary: nothing is fetched at build or run time. The
//! pages are public (`auth::access_for`): they describe the API, and every
//! call made from them still needs its credentials.

use std::sync::OnceLock;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use crate::state::AppState;

/// The page's policy: scripts and styles from this origin only, no inline
/// script (the initializer is a file), no framing. Swagger UI sets inline
/// style attributes and draws icons as `data:` images.
const PAGE_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// HTML is revalidated on every load; the scripts and stylesheet are cached
/// for a day and revalidated by their ETag (a hash of their bytes), so a new
/// binary's assets replace the old ones within a day at most.
const HTML_CACHE: &str = "no-cache";
const ASSET_CACHE: &str = "public, max-age=86400";

/// One embedded file.
struct Asset {
    path: &'static str,
    bytes: &'static [u8],
    content_type: &'static str,
    cache_control: &'static str,
}

const INDEX: usize = 0;

/// Every file served under `/exotel/docs`; the index is first.
const ASSETS: &[Asset] = &[
    Asset {
        path: "/exotel/docs",
        bytes: include_bytes!("../../assets/swagger/index.html"),
        content_type: "text/html; charset=utf-8",
        cache_control: HTML_CACHE,
    },
    Asset {
        path: "/exotel/docs/swagger-ui.css",
        bytes: include_bytes!("../../assets/swagger/swagger-ui.css"),
        content_type: "text/css; charset=utf-8",
        cache_control: ASSET_CACHE,
    },
    Asset {
        path: "/exotel/docs/swagger-ui-bundle.js",
        bytes: include_bytes!("../../assets/swagger/swagger-ui-bundle.js"),
        content_type: "text/javascript; charset=utf-8",
        cache_control: ASSET_CACHE,
    },
    Asset {
        path: "/exotel/docs/swagger-initializer.js",
        bytes: include_bytes!("../../assets/swagger/swagger-initializer.js"),
        content_type: "text/javascript; charset=utf-8",
        cache_control: ASSET_CACHE,
    },
];

pub fn router() -> axum::Router<AppState> {
    let mut router =
        axum::Router::new().route("/exotel/docs/", get(|headers: HeaderMap| async move { serve(INDEX, &headers) }));
    for (index, asset) in ASSETS.iter().enumerate() {
        router = router.route(asset.path, get(move |headers: HeaderMap| async move { serve(index, &headers) }));
    }
    router
}

/// The asset's ETag: a strong validator over its bytes, computed once.
fn etag(index: usize) -> &'static HeaderValue {
    static TAGS: OnceLock<Vec<HeaderValue>> = OnceLock::new();
    let tags = TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|asset| {
                let digest = hex::encode(Sha256::digest(asset.bytes));
                HeaderValue::from_str(&format!("\"{}\"", &digest[..32]))
                    .expect("a quoted hex string is a valid header value")
            })
            .collect()
    });
    &tags[index]
}

/// Whether `If-None-Match` names the current version (or is `*`).
fn not_modified(headers: &HeaderMap, tag: &HeaderValue) -> bool {
    let Some(value) = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) else { return false };
    let tag = tag.to_str().unwrap_or_default();
    value.split(',').map(|t| t.trim().trim_start_matches("W/")).any(|t| t == "*" || t == tag)
}

fn serve(index: usize, request: &HeaderMap) -> Response {
    let asset = &ASSETS[index];
    let tag = etag(index);
    let mut headers = HeaderMap::new();
    headers.insert(header::ETAG, tag.clone());
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(asset.cache_control));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if index == INDEX {
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_POLICY));
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    }
    if not_modified(request, tag) {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    (headers, asset.bytes).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_embedded_files_and_the_service_s_document() {
        let page = std::str::from_utf8(ASSETS[INDEX].bytes).unwrap();
        for asset in &ASSETS[1..] {
            assert!(page.contains(asset.path), "{} is not linked from the page", asset.path);
        }
        assert!(!page.contains("http://") && !page.contains("https://"), "the page links outside the service");
        assert!(!page.contains("<script>"), "an inline script would break the page's CSP");
        let init = std::str::from_utf8(ASSETS[3].bytes).unwrap();
        assert!(init.contains("url: \"/openapi.json\"") && init.contains("validatorUrl: null"));
    }

    #[test]
    fn etags_differ_by_asset_and_match_if_none_match() {
        assert_ne!(etag(1), etag(2));
        let mut headers = HeaderMap::new();
        assert!(!not_modified(&headers, etag(1)));
        headers.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(&format!("\"x\", W/{}", etag(1).to_str().unwrap())).unwrap(),
        );
        assert!(not_modified(&headers, etag(1)));
        assert!(!not_modified(&headers, etag(2)));
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(not_modified(&headers, etag(2)));
    }
}
