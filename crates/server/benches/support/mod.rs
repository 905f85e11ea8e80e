//! What the campaign benches share: the real application served on
//! 127.0.0.1, a campaign created and its recipients uploaded as one CSV
//! streamed over HTTP, the process's memory, and its allocator and runtime.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mangwale_server::{AppState, ServeOptions};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

#[path = "../../tests/common/http.rs"]
pub mod http;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub const API_KEY: &str = "bench-api-key-0123456789";

/// Runs the bench on a runtime of 2 worker threads (the machine's cores).
pub fn block_on(bench: impl Future<Output = ()>) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(bench);
}

pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// VmRSS and VmHWM (peak) of this process, MiB.
pub fn memory_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}

pub const HEADER: &[u8] = b"phone,name,language,city\n";
pub const CHUNK: usize = 64 * 1024;

/// The rows from `from`, as much as fits in about `size` bytes.
fn rows(from: u64, to: u64, out: &mut Vec<u8>, size: usize) -> u64 {
    let mut i = from;
    while i < to && out.len() < size {
        let lang = ["hi", "en", "mr"][(i % 3) as usize];
        out.extend_from_slice(format!("+9197{i:08},Customer {i},{lang},Nashik\n").as_bytes());
        i += 1;
    }
    i
}

/// The length of the CSV of `n` rows (`phone,name,language,city`).
pub fn body_length(n: u64) -> usize {
    let mut total = HEADER.len();
    let (mut i, mut buf) = (0, Vec::with_capacity(CHUNK + 128));
    while i < n {
        buf.clear();
        i = rows(i, n, &mut buf, CHUNK);
        total += buf.len();
    }
    total
}

/// The application serving on `listener` (no workers) until `shutdown`.
pub struct Served {
    pub shutdown: CancellationToken,
    pub served: tokio::task::JoinHandle<()>,
}

impl Served {
    pub fn start(state: &AppState, listener: TcpListener) -> Served {
        let shutdown = CancellationToken::new();
        let served = tokio::spawn({
            let (state, shutdown) = (state.clone(), shutdown.clone());
            async move {
                mangwale_server::serve_with(state, listener, shutdown, ServeOptions { workers: false }).await.unwrap()
            }
        });
        Served { shutdown, served }
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.served.await.unwrap();
    }
}

/// `POST /campaigns/create` with `body`; the new campaign's id.
pub async fn create_campaign(http: &reqwest::Client, addr: SocketAddr, body: &Value) -> String {
    let created = http::post_json(http, format!("http://{addr}/campaigns/create"), API_KEY, body).await;
    created["campaignId"].as_str().unwrap().to_string()
}

/// `GET /campaigns/{id}`.
pub async fn campaign_status(http: &reqwest::Client, addr: SocketAddr, id: &str) -> Value {
    http::get_json(http, format!("http://{addr}/campaigns/{id}"), API_KEY).await
}

/// What an upload of recipients answered, and when.
pub struct Upload {
    /// The HTTP status code, as text.
    pub status: String,
    /// The answer's JSON (null when it was none).
    pub body: Value,
    /// When the client had sent the whole CSV, from the start.
    pub sent: Duration,
    /// When the answer had come, from the start.
    pub elapsed: Duration,
}

/// `POST /campaigns/{id}/recipients` with the CSV of `n` rows (`length`
/// bytes: [`body_length`]), streamed in `CHUNK`-sized writes on one
/// connection.
pub async fn upload_recipients(addr: SocketAddr, id: &str, n: u64, length: usize) -> Upload {
    let started = Instant::now();
    let mut conn = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /campaigns/{id}/recipients HTTP/1.1\r\nHost: {addr}\r\nX-API-Key: {API_KEY}\r\n\
         Content-Type: text/csv\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(HEADER).await.unwrap();
    let (mut i, mut buf) = (0, Vec::with_capacity(CHUNK + 128));
    while i < n {
        buf.clear();
        i = rows(i, n, &mut buf, CHUNK);
        conn.write_all(&buf).await.unwrap();
    }
    let sent = started.elapsed();
    let mut response = Vec::new();
    conn.read_to_end(&mut response).await.unwrap();
    let elapsed = started.elapsed();
    let text = String::from_utf8_lossy(&response);
    let status = text.split_whitespace().nth(1).unwrap_or("?").to_string();
    let body = text.split_once("\r\n\r\n").and_then(|(_, b)| serde_json::from_str(b).ok()).unwrap_or(Value::Null);
    Upload { status, body, sent, elapsed }
}
