//! Load on the webhook write path: the call-status route driven over HTTP
//! from a second process, next to a bare axum handler measured in the same
//! run. Prints requests per second and p50/p99 latency for each, and the
//! ratio. A benchmark, not a test: it asserts nothing.
//!
//!     cargo bench -p mangwale-server --bench webhook_load
//!
//! Each run sweeps the load generator's concurrency (keep-alive connections;
//! the service commits whatever concurrent requests are waiting together, so
//! its throughput and latency both depend on it) and says which setting, if
//! any, meets the target.
//!
//! Knobs: BENCH_SECONDS (default 10), BENCH_CONNECTIONS (default 16,32,64),
//! BENCH_WORKERS=1 to run the job workers during the load as production does.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mangwale_server::{Config, ServeOptions};
use mangwale_store::SystemClock;
use mangwale_store::test_support::TestDb;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The allocator of the production binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TOKEN: &str = "bench-webhook-token-0123456789";
const LOADGEN_ENV: &str = "MANGWALE_BENCH_LOADGEN";

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    if let Ok(target) = std::env::var(LOADGEN_ENV) {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        runtime.block_on(load_generator(target));
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(coordinate());
}

#[derive(Debug, Clone, Copy)]
struct Figures {
    requests: u64,
    errors: u64,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

async fn coordinate() {
    let seconds = env_u64("BENCH_SECONDS", 10);
    let sweep: Vec<u64> = std::env::var("BENCH_CONNECTIONS")
        .unwrap_or_else(|_| "16,32,64".into())
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .collect();
    let workers = std::env::var("BENCH_WORKERS").is_ok_and(|v| v == "1");

    // The bare handler: what axum and the load generator cost on their own.
    let bare = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bare_url = format!("http://{}/exotel/webhooks/call-status?token={TOKEN}", bare.local_addr().unwrap());
    let stop_bare = CancellationToken::new();
    tokio::spawn({
        let stop = stop_bare.clone();
        async move {
            let app = axum::Router::new().route(
                "/exotel/webhooks/call-status",
                axum::routing::post(|_body: axum::body::Bytes| async { axum::Json(serde_json::json!({"ok": true})) }),
            );
            axum::serve(bare, app).with_graceful_shutdown(stop.cancelled_owned()).await.unwrap();
        }
    });

    // The service on a fresh SQLite file.
    let db = TestDb::sqlite().await.unwrap();
    let config = Config::from_vars(vec![
        ("DATABASE_URL".to_string(), db.url.clone()),
        ("API_KEYS".to_string(), "bench-api-key-0123456789".to_string()),
        ("EXOTEL_WEBHOOK_TOKEN".to_string(), TOKEN.to_string()),
    ])
    .unwrap();
    let state = mangwale_server::prepare(config, Arc::new(SystemClock)).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let service_url = format!("http://{}/exotel/webhooks/call-status?token={TOKEN}", listener.local_addr().unwrap());
    let stop_service = CancellationToken::new();
    let served = tokio::spawn({
        let (state, stop) = (state.clone(), stop_service.clone());
        async move { mangwale_server::serve_with(state, listener, stop, ServeOptions { workers }).await.unwrap() }
    });

    println!("webhook write path: {seconds} s per target, connections {sweep:?}, workers during load: {workers}");
    let mut rows = Vec::new();
    for &connections in &sweep {
        let bare_figures = run_loadgen(&bare_url, seconds, connections).await;
        let service_figures = run_loadgen(&service_url, seconds, connections).await;
        rows.push((connections, bare_figures, service_figures));
    }

    let stats = state.store.queue_stats(chrono::Utc::now()).await.unwrap();
    stop_service.cancel();
    stop_bare.cancel();
    served.await.unwrap();
    db.cleanup().await;

    println!();
    println!(
        "{:>5} {:<28} {:>10} {:>8} {:>10} {:>8} {:>8} {:>7}",
        "conns", "target", "requests", "errors", "req/s", "p50 ms", "p99 ms", "ratio"
    );
    let mut best: Option<(u64, Figures, f64)> = None;
    for (connections, bare, service) in &rows {
        let ratio = service.rps / bare.rps.max(1.0);
        for (name, f, r) in [("bare axum handler", bare, None), ("POST call-status (SQLite)", service, Some(ratio))] {
            println!(
                "{:>5} {:<28} {:>10} {:>8} {:>10.0} {:>8.2} {:>8.2} {:>7}",
                connections,
                name,
                f.requests,
                f.errors,
                f.rps,
                f.p50_ms,
                f.p99_ms,
                r.map(|r| format!("{r:.3}")).unwrap_or_default()
            );
        }
        let meets_latency = service.p99_ms <= 10.0 && service.errors == 0;
        if meets_latency && best.is_none_or(|(_, b, _)| service.rps > b.rps) {
            best = Some((*connections, *service, ratio));
        }
    }
    println!();
    match best {
        Some((connections, f, ratio)) => println!(
            "best with p99 <= 10 ms: {connections} connections, {:.0} req/s, p99 {:.2} ms, ratio to bare {ratio:.3} \
             (targets: ratio >= 0.15 {}; 20,000 req/s {})",
            f.rps,
            f.p99_ms,
            if ratio >= 0.15 { "PASS" } else { "MISS" },
            if f.rps >= 20_000.0 { "PASS" } else { "MISS" }
        ),
        None => println!("no concurrency kept p99 <= 10 ms: MISS"),
    }
    println!("follow-up jobs enqueued and still pending: {}", stats.pending + stats.running);
}

/// Runs the load generator as a child process against `url`.
async fn run_loadgen(url: &str, seconds: u64, connections: u64) -> Figures {
    let exe = std::env::current_exe().unwrap();
    let mut child = tokio::process::Command::new(exe)
        .env(LOADGEN_ENV, url)
        .env("BENCH_SECONDS", seconds.to_string())
        .env("BENCH_CONNECTIONS", connections.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the load generator");
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).await.unwrap();
    child.wait().await.unwrap();
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("load generator output");
    Figures {
        requests: v["requests"].as_u64().unwrap_or(0),
        errors: v["errors"].as_u64().unwrap_or(0),
        rps: v["rps"].as_f64().unwrap_or(0.0),
        p50_ms: v["p50_ms"].as_f64().unwrap_or(0.0),
        p99_ms: v["p99_ms"].as_f64().unwrap_or(0.0),
    }
}

/// The child process: `connections` keep-alive connections posting distinct
/// terminal status callbacks (form-encoded, as Exotel sends them) for the
/// given time. Prints one JSON line with the figures.
async fn load_generator(url: String) {
    let seconds = env_u64("BENCH_SECONDS", 10);
    let connections = env_u64("BENCH_CONNECTIONS", 64);
    let warmup = Duration::from_secs(1);
    let started = Instant::now();
    let measure_from = started + warmup;
    let deadline = measure_from + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for conn in 0..connections {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder().pool_max_idle_per_host(1).build().unwrap();
            let mut latencies = Vec::with_capacity(100_000);
            let mut errors = 0u64;
            let mut i = 0u64;
            loop {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                i += 1;
                let body = format!(
                    "CallSid=bench{conn:03}x{i:08}&EventType=terminal&Status=completed&DateUpdated=2026-11-23+10%3A30%3A04\
                     &From=09876543210&To=08047112233&ConversationDuration=42&Direction=outbound-api&CustomField=c%3Abench\
                     &Legs%5B0%5D%5BStatus%5D=completed&Legs%5B0%5D%5BOnCallDuration%5D=44\
                     &Legs%5B1%5D%5BStatus%5D=completed&Legs%5B1%5D%5BOnCallDuration%5D=42"
                );
                let sent = Instant::now();
                let ok = match client
                    .post(&url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body)
                    .send()
                    .await
                {
                    Ok(res) => {
                        let ok = res.status().is_success();
                        let _ = res.bytes().await;
                        ok
                    }
                    Err(_) => false,
                };
                if sent >= measure_from {
                    latencies.push(sent.elapsed());
                    if !ok {
                        errors += 1;
                    }
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (l, e) = task.await.unwrap();
        latencies.extend(l);
        errors += e;
    }
    latencies.sort();
    let pick =
        |q: f64| latencies.get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1))).copied();
    let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0);
    let result = serde_json::json!({
        "requests": latencies.len(),
        "errors": errors,
        "rps": latencies.len() as f64 / seconds as f64,
        "p50_ms": ms(pick(0.50)),
        "p99_ms": ms(pick(0.99)),
    });
    println!("{result}");
}
