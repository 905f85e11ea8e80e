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

use mangwale_server::{Config, PrepareOptions};
use tokio::net::TcpListener;

mod support;

use support::{
    API_KEY, Served, Upload, body_length, campaign_status, create_campaign, env_u64, memory_mib, upload_recipients,
};

fn main() {
    support::block_on(run());
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
    let served = Served::start(&state, listener);

    let http = reqwest::Client::new();
    let id = create_campaign(
        &http,
        addr,
        &serde_json::json!({"name": "bench", "type": "area_launch", "channel": "both", "language": "hi"}),
    )
    .await;
    let length = body_length(n);
    let (rss_before, peak_before) = memory_mib();
    println!("recipients: {n} ({:.1} MiB of CSV), channel both, SQLite, 2 worker threads", length as f64 / 1048576.0);
    println!("memory before: rss {rss_before:.1} MiB, peak {peak_before:.1} MiB");

    let Upload { status, body, sent, elapsed } = upload_recipients(addr, &id, n, length).await;
    let (rss_after, peak_after) = memory_mib();
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
    let counts = campaign_status(&http, addr, &id).await;
    println!("queued: sms {} voice {}", counts["counts"]["sms"]["queued"], counts["counts"]["voice"]["queued"]);
    assert_eq!(body["accepted"].as_u64(), Some(n), "every row accepted: {body}");
    served.stop().await;
}
