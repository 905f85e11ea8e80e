//! Campaign recipients intake at volume: one CSV upload of BENCH_RECIPIENTS
//! rows (default 1,000,000) to `POST /campaigns/{id}/recipients` of the
//! real application on SQLite, over HTTP, streamed by the client in 64 KiB
//! chunks. Prints the acceptance time, the rate and the process's memory
//! (resident now and peak) before and after. A benchmark, not a test: it
//! asserts only that every row was accepted.
//!
//!     cargo bench -p mangwale-server --bench campaign_intake
//!
//! Every row is `phone,name,language,city`; the campaign uses both
//! channels, so each row also becomes two queued messages.
//!
//! Target (issue 13): 1,000,000 recipients accepted in at most 20 s, with
//! memory bounded (the peak does not grow with the upload).

use std::sync::Arc;
use std::time::Instant;

use mangwale_server::{Config, PrepareOptions, ServeOptions};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const API_KEY: &str = "bench-api-key-0123456789";

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// VmRSS and VmHWM (peak) of this process, MiB.
fn memory_mib() -> (f64, f64) {
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

const HEADER: &[u8] = b"phone,name,language,city\n";
const CHUNK: usize = 64 * 1024;

fn body_length(n: u64) -> usize {
    let mut total = HEADER.len();
    let (mut i, mut buf) = (0, Vec::with_capacity(CHUNK + 128));
    while i < n {
        buf.clear();
        i = rows(i, n, &mut buf, CHUNK);
        total += buf.len();
    }
    total
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(run());
}

async fn run() {
    let n = env_u64("BENCH_RECIPIENTS", 1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let vars = vec![
        ("DATABASE_URL".to_string(), format!("sqlite:{}", dir.path().join("bench.db").display())),
        ("API_KEYS".to_string(), API_KEY.to_string()),
        ("EXOTEL_WEBHOOK_TOKEN".to_string(), "bench-webhook-token-0123456789".to_string()),
        ("LOG_FORMAT".to_string(), "text".to_string()),
    ];
    let config = Config::from_vars(vars).unwrap();
    let state = mangwale_server::prepare_with(config, Arc::new(mangwale_store::SystemClock), PrepareOptions::default())
        .await
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let served = tokio::spawn({
        let (state, shutdown) = (state.clone(), shutdown.clone());
        async move { mangwale_server::serve_with(state, listener, shutdown, ServeOptions { workers: false }).await.unwrap() }
    });

    let http = reqwest::Client::new();
    let created: Value = http
        .post(format!("http://{addr}/campaigns/create"))
        .header("X-API-Key", API_KEY)
        .json(&serde_json::json!({"name": "bench", "type": "area_launch", "channel": "both", "language": "hi"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["campaignId"].as_str().unwrap().to_string();
    let length = body_length(n);
    let (rss_before, peak_before) = memory_mib();
    println!("recipients: {n} ({:.1} MiB of CSV), channel both, SQLite, 2 worker threads", length as f64 / 1048576.0);
    println!("memory before: rss {rss_before:.1} MiB, peak {peak_before:.1} MiB");

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
    let (rss_after, peak_after) = memory_mib();

    let text = String::from_utf8_lossy(&response);
    let status = text.split_whitespace().nth(1).unwrap_or("?").to_string();
    let body: Value =
        text.split_once("\r\n\r\n").and_then(|(_, b)| serde_json::from_str(b).ok()).unwrap_or(Value::Null);
    println!(
        "answer: {status} accepted {} duplicates {} invalid {}",
        body["accepted"], body["duplicates"], body["invalid"]
    );
    println!(
        "accepted in {:.2} s ({:.0} rows/s; the client finished sending at {:.2} s)",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        sent.as_secs_f64()
    );
    println!(
        "memory after: rss {rss_after:.1} MiB, peak {peak_after:.1} MiB (peak grew {:.1} MiB during the upload)",
        peak_after - peak_before
    );
    let counts: Value = http
        .get(format!("http://{addr}/campaigns/{id}"))
        .header("X-API-Key", API_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    println!("queued: sms {} voice {}", counts["counts"]["sms"]["queued"], counts["counts"]["voice"]["queued"]);
    assert_eq!(body["accepted"].as_u64(), Some(n), "every row accepted: {body}");
    shutdown.cancel();
    served.await.unwrap();
}
