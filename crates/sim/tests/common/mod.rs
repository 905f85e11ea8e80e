//! Shared helpers: a simulator on a manual clock, an HTTP client, and a
//! small axum server that captures callbacks.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use mangwale_sim::exotel::{ExotelSim, SimConfig};
use mangwale_sim::{SimClock, clock::parse_ist};

pub const AGENT: &str = "+919800000001";
pub const CUSTOMER: &str = "+919800000002";
pub const EXOPHONE: &str = "+918047112233";
pub const START: &str = "2025-01-15 10:00:00";

pub fn config_at(ist: &str) -> SimConfig {
    SimConfig { clock: SimClock::manual(parse_ist(ist).unwrap()), ..SimConfig::default() }
}

pub async fn sim() -> ExotelSim {
    ExotelSim::start(config_at(START)).await.unwrap()
}

pub async fn sim_with(config: SimConfig) -> ExotelSim {
    ExotelSim::start(config).await.unwrap()
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// POSTs a urlencoded form to `<account_url><path>` with the sim's credentials.
pub async fn post(sim: &ExotelSim, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
    client()
        .post(format!("{}{}", sim.account_url(), path))
        .basic_auth(sim.api_key(), Some(sim.api_token()))
        .form(form)
        .send()
        .await
        .unwrap()
}

/// POSTs a raw urlencoded body (to control how brackets are encoded).
pub async fn post_raw(sim: &ExotelSim, path: &str, body: &str) -> reqwest::Response {
    client()
        .post(format!("{}{}", sim.account_url(), path))
        .basic_auth(sim.api_key(), Some(sim.api_token()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

/// GETs the documented "List all ExoPhones" endpoint with the sim's credentials.
#[allow(dead_code)]
pub async fn get_exophones(sim: &ExotelSim) -> reqwest::Response {
    client()
        .get(format!("{}/v2_beta/Accounts/{}/IncomingPhoneNumbers", sim.base_url(), sim.account_sid()))
        .basic_auth(sim.api_key(), Some(sim.api_token()))
        .send()
        .await
        .unwrap()
}

pub async fn get(sim: &ExotelSim, path: &str) -> reqwest::Response {
    client()
        .get(format!("{}{}", sim.account_url(), path))
        .basic_auth(sim.api_key(), Some(sim.api_token()))
        .send()
        .await
        .unwrap()
}

pub async fn json(response: reqwest::Response) -> (u16, serde_json::Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")))
}

/// Places a bridge call and returns its sid.
pub async fn bridge(sim: &ExotelSim, extra: &[(&str, &str)]) -> String {
    let mut form = vec![("From", AGENT), ("To", CUSTOMER), ("CallerId", EXOPHONE)];
    form.extend_from_slice(extra);
    let (status, body) = json(post(sim, "/Calls/connect.json", &form).await).await;
    assert_eq!(status, 200, "{body}");
    body["Call"]["Sid"].as_str().unwrap().to_string()
}

/// One callback as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Captured {
    pub path: String,
    pub content_type: String,
    pub body: Bytes,
}

impl Captured {
    /// The body's fields, whatever the encoding (JSON flattened PHP-style).
    pub async fn fields(&self) -> Vec<(String, String)> {
        if self.content_type.starts_with("multipart/form-data") {
            let boundary = multer::parse_boundary(&self.content_type).unwrap();
            let body = self.body.clone();
            let stream = futures::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
            let mut multipart = multer::Multipart::new(stream, boundary);
            let mut out = Vec::new();
            while let Some(field) = multipart.next_field().await.unwrap() {
                let name = field.name().unwrap().to_string();
                out.push((name, field.text().await.unwrap()));
            }
            out
        } else if self.content_type.starts_with("application/json") {
            let mut out = Vec::new();
            flatten("", &self.json(), &mut out);
            out
        } else {
            form_urlencoded::parse(&self.body).into_owned().collect()
        }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

fn flatten(prefix: &str, value: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}[{k}]") };
                flatten(&key, v, out);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), v, out);
            }
        }
        serde_json::Value::String(s) => out.push((prefix.to_string(), s.clone())),
        serde_json::Value::Null => out.push((prefix.to_string(), String::new())),
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

pub fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// An HTTP server on 127.0.0.1:0 recording every request.
pub struct Receiver {
    pub url: String,
    captured: Arc<Mutex<Vec<Captured>>>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let captured: Arc<Mutex<Vec<Captured>>> = Arc::default();
        let app = Router::new().fallback(capture).with_state(captured.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { url, captured }
    }

    /// A callback URL on this receiver.
    pub fn at(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    pub fn captured(&self) -> Vec<Captured> {
        self.captured.lock().unwrap().clone()
    }
}

async fn capture(
    State(captured): State<Arc<Mutex<Vec<Captured>>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    captured.lock().unwrap().push(Captured { path: uri.to_string(), content_type, body });
    StatusCode::OK
}
