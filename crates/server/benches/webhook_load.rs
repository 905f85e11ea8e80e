//! Load on the webhook write path: the call-status route driven over HTTP
//! from a second process, next to a bare axum handler measured in the same
//! run, with the job workers running as in production. Prints requests per
//! second and p50/p99/max latency for each, their ratio, and how far the
//! follow-up jobs the callbacks enqueue fall behind. A benchmark, not a
//! test: it asserts nothing.
//!
//!     cargo bench -p mangwale-server --bench webhook_load
//!
//! The load generator is open-loop: it sends at a fixed rate whatever the
//! answers do (see `load_generator`), so a slow server shows as latency and
//! shed requests instead of as a politely slower generator. Each run sweeps
//! the offered rate and says which rates meet the target.
//!
//! Knobs: BENCH_SECONDS (default 10), BENCH_RATES (default 10000,20000,25000
//! requests/s), BENCH_INFLIGHT (most requests in flight, default 1024),
//! BENCH_WORKERS=0 to measure the route without the job workers.
//! `benches/webhook_wrk.sh` measures the release binary with `wrk` instead.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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
/// The job each status callback leaves for the workers.
const FOLLOW_UP: &str = mangwale_server::calls::CALL_STATUS_JOB;

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

#[derive(Debug, Clone, Copy, serde::Deserialize)]
struct Figures {
    requests: u64,
    errors: u64,
    shed: u64,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

/// How the follow-up jobs kept up during one run against the service.
#[derive(Debug, Clone, Copy, Default)]
struct Backlog {
    max_lag_ms: u64,
    max_jobs: u64,
    drained_after: Duration,
}

async fn coordinate() {
    let seconds = env_u64("BENCH_SECONDS", 10);
    let rates: Vec<u64> = std::env::var("BENCH_RATES")
        .unwrap_or_else(|_| "10000,20000,25000".into())
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .collect();
    let workers = std::env::var("BENCH_WORKERS").map_or(true, |v| v != "0");

    // The bare handler: what axum, form parsing and the load generator cost
    // on their own.
    let bare = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bare_url = format!("http://{}/exotel/webhooks/call-status?token={TOKEN}", bare.local_addr().unwrap());
    let stop_bare = CancellationToken::new();
    tokio::spawn({
        let stop = stop_bare.clone();
        async move {
            let app = axum::Router::new().route(
                "/exotel/webhooks/call-status",
                axum::routing::post(|axum::Form(form): axum::Form<Vec<(String, String)>>| async move {
                    std::hint::black_box(form);
                    axum::Json(serde_json::json!({"ok": true}))
                }),
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

    println!(
        "webhook write path: {seconds} s per target, offered rates {rates:?} req/s, job workers running: {workers}"
    );
    let mut rows = Vec::new();
    for &rate in &rates {
        let bare_figures = run_loadgen(&bare_url, seconds, rate).await;
        // Samples the follow-up jobs' lag while the service is loaded.
        let sampling = CancellationToken::new();
        let sampler = tokio::spawn({
            let (store, stop) = (state.store.clone(), sampling.clone());
            async move {
                let mut backlog = Backlog::default();
                while !stop.is_cancelled() {
                    if let Ok(q) = store.queue_stats(chrono::Utc::now()).await {
                        backlog.max_lag_ms = backlog.max_lag_ms.max(q.lag_ms);
                        backlog.max_jobs = backlog.max_jobs.max(q.pending + q.running);
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                backlog
            }
        });
        let service_figures = run_loadgen(&service_url, seconds, rate).await;
        sampling.cancel();
        let mut backlog = sampler.await.unwrap();
        let stopped = Instant::now();
        while workers && stopped.elapsed() < Duration::from_secs(120) {
            let kinds = state.store.queue_by_kind(chrono::Utc::now()).await.unwrap();
            if kinds.iter().filter(|k| k.kind == FOLLOW_UP).all(|k| k.pending + k.running == 0) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        backlog.drained_after = stopped.elapsed();
        rows.push((rate, bare_figures, service_figures, backlog));
    }

    stop_service.cancel();
    stop_bare.cancel();
    served.await.unwrap();
    db.cleanup().await;

    println!();
    println!(
        "{:>7} {:<26} {:>9} {:>6} {:>6} {:>9} {:>7} {:>7} {:>8} {:>6} {:>22}",
        "offered",
        "target",
        "requests",
        "errors",
        "shed",
        "req/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "ratio",
        "follow-ups: lag / drain"
    );
    for (rate, bare, service, backlog) in &rows {
        let ratio = service.rps / bare.rps.max(1.0);
        for (name, f, is_service) in
            [("bare axum form handler", bare, false), ("POST call-status (SQLite)", service, true)]
        {
            println!(
                "{:>7} {:<26} {:>9} {:>6} {:>6} {:>9.0} {:>7.2} {:>7.2} {:>8.1} {:>6} {:>22}",
                rate,
                name,
                f.requests,
                f.errors,
                f.shed,
                f.rps,
                f.p50_ms,
                f.p99_ms,
                f.max_ms,
                if is_service { format!("{ratio:.3}") } else { String::new() },
                if is_service && workers {
                    format!("{} ms / {:.1} s", backlog.max_lag_ms, backlog.drained_after.as_secs_f64())
                } else {
                    String::new()
                },
            );
        }
        let met = service.rps >= 20_000.0
            && service.p99_ms <= 10.0
            && service.errors + service.shed == 0
            && (!workers || backlog.max_lag_ms <= 1_000);
        println!(
            "{:>7} target (>= 20,000 req/s, p99 <= 10 ms, follow-ups within 1 s): {}",
            "",
            if met { "MET" } else { "missed" }
        );
    }
}

/// Runs the load generator as a child process against `url`.
async fn run_loadgen(url: &str, seconds: u64, rate: u64) -> Figures {
    let exe = std::env::current_exe().unwrap();
    let mut child = tokio::process::Command::new(exe)
        .env(LOADGEN_ENV, url)
        .env("BENCH_SECONDS", seconds.to_string())
        .env("BENCH_RATE", rate.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the load generator");
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).await.unwrap();
    child.wait().await.unwrap();
    serde_json::from_str(out.trim()).expect("load generator output")
}

/// The child process: an open-loop generator. Requests are scheduled at
/// `BENCH_RATE` per second, evenly spaced, and each is sent at its time
/// whether or not earlier ones have been answered (keep-alive connections
/// from a pool that grows as needed, at most `BENCH_INFLIGHT` requests in
/// flight). A request's latency runs from the time it was scheduled, so a
/// stall on the server counts against every request it delays instead of
/// slowing the generator down (no coordinated omission). Each posts a
/// distinct terminal status callback (form-encoded, as Exotel sends them).
/// Prints one JSON line with the figures.
async fn load_generator(url: String) {
    let seconds = env_u64("BENCH_SECONDS", 10);
    let rate = env_u64("BENCH_RATE", 20_000).max(1);
    let max_in_flight = env_u64("BENCH_INFLIGHT", 1024) as usize;
    let warmup = Duration::from_secs(1);
    let period = Duration::from_secs_f64(1.0 / rate as f64);
    let client = reqwest::Client::builder().pool_max_idle_per_host(max_in_flight).build().unwrap();
    let latencies = Arc::new(std::sync::Mutex::new(Vec::with_capacity((rate * seconds) as usize)));
    let errors = Arc::new(AtomicU64::new(0));
    let in_flight = Arc::new(AtomicU64::new(0));
    let mut shed = 0u64;

    let started = Instant::now();
    let measure_from = started + warmup;
    let deadline = measure_from + Duration::from_secs(seconds);
    let mut next = started;
    let mut i = 0u64;
    let mut sent = tokio::task::JoinSet::new();
    while next < deadline {
        let now = Instant::now();
        while next <= now && next < deadline {
            let due = next;
            next += period;
            i += 1;
            if in_flight.load(Ordering::Relaxed) as usize >= max_in_flight {
                if due >= measure_from {
                    shed += 1;
                }
                continue;
            }
            in_flight.fetch_add(1, Ordering::Relaxed);
            let body = format!(
                "CallSid=bench{rate}x{i:09}&EventType=terminal&Status=completed&DateUpdated=2026-11-23+10%3A30%3A04\
                 &From=09876543210&To=08047112233&ConversationDuration=42&Direction=outbound-api&CustomField=c%3Abench\
                 &Legs%5B0%5D%5BStatus%5D=completed&Legs%5B0%5D%5BOnCallDuration%5D=44\
                 &Legs%5B1%5D%5BStatus%5D=completed&Legs%5B1%5D%5BOnCallDuration%5D=42"
            );
            let request = client.post(&url).header("content-type", "application/x-www-form-urlencoded").body(body);
            let (latencies, errors, in_flight) = (latencies.clone(), errors.clone(), in_flight.clone());
            sent.spawn(async move {
                let ok = match request.send().await {
                    Ok(res) => {
                        let ok = res.status().is_success();
                        ok && res.bytes().await.is_ok()
                    }
                    Err(_) => false,
                };
                in_flight.fetch_sub(1, Ordering::Relaxed);
                if due >= measure_from {
                    latencies.lock().unwrap().push(due.elapsed());
                    if !ok {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        // Reap finished tasks without waiting for any.
        while sent.try_join_next().is_some() {}
        tokio::time::sleep_until(next.into()).await;
    }
    while sent.join_next().await.is_some() {}

    let mut latencies = std::mem::take(&mut *latencies.lock().unwrap());
    latencies.sort();
    let pick =
        |q: f64| latencies.get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1))).copied();
    let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0);
    let result = serde_json::json!({
        "requests": latencies.len(),
        "errors": errors.load(Ordering::Relaxed),
        "shed": shed,
        "rps": latencies.len() as f64 / seconds as f64,
        "p50_ms": ms(pick(0.50)),
        "p99_ms": ms(pick(0.99)),
        "max_ms": ms(latencies.last().copied()),
    });
    println!("{result}");
}
