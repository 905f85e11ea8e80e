//! JSON over HTTP with an API key, for the tests and benches that drive the
//! service as its clients do (included by `#[path]` where `common` is not).
#![allow(dead_code)]

use serde_json::Value;

/// GET `url` with `X-API-Key: key`; the answer's JSON.
pub async fn get_json(http: &reqwest::Client, url: impl reqwest::IntoUrl, key: &str) -> Value {
    http.get(url).header("X-API-Key", key).send().await.unwrap().json().await.unwrap()
}

/// POST `body` as JSON to `url` with `X-API-Key: key`; the answer's JSON.
pub async fn post_json(http: &reqwest::Client, url: impl reqwest::IntoUrl, key: &str, body: &Value) -> Value {
    http.post(url).header("X-API-Key", key).json(body).send().await.unwrap().json().await.unwrap()
}
