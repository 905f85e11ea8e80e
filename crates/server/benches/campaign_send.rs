//! The campaign sender at volume: BENCH_RECIPIENTS recipients (default
//! 1,000,000) accepted through `POST /campaigns/{id}/recipients` of the
//! real application on SQLite, then sent at BENCH_SMS_PER_SECOND (500) by
//! the sender to the Exotel simulator over HTTP, on a controlled clock that
//! starts BENCH_INSIDE_SECONDS (60) before 21:00 IST and runs on for
//! BENCH_AFTER_SECONDS (30) after it, in steps of 100 ms.
//!
//!     cargo bench -p mangwale-server --bench campaign_send
//!
//! Prints the acceptance time, memory (resident and peak), the pacing error
//! (SMS the simulator received per controlled second against the target:
//! over the whole span, and after the first second, whose one-second head
//! start the limiter allows), and the share of sends outside the
//! promotional window (target 0). Only a span of the million is sent: the
//! Exotel client's own real-time budget (`EXOTEL_SMS_PER_MINUTE`, at most
//! 10,000 a minute) bounds how fast the controlled clock can be driven.
//!
//! Targets (issue 13): pacing error at most 1 %, no send outside the window.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use mangwale_core::campaign::{PromoWindow, ist};
use mangwale_server::campaigns::sender::CampaignSender;
use mangwale_server::{Config, PrepareOptions};
use mangwale_sim::exotel::SimConfig;
use mangwale_store::{Clock, ManualClock};
use serde_json::json;
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
    let rate = env_u64("BENCH_SMS_PER_SECOND", 500);
    let inside = env_u64("BENCH_INSIDE_SECONDS", 60);
    let after = env_u64("BENCH_AFTER_SECONDS", 30);
    let nine_pm = ist().with_ymd_and_hms(2026, 12, 6, 21, 0, 0).unwrap().with_timezone(&Utc);
    let start = nine_pm - chrono::Duration::seconds(inside as i64);
    let clock = Arc::new(ManualClock::new(start));

    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let vars = vec![
        ("DATABASE_URL".to_string(), format!("sqlite:{}", dir.path().join("bench.db").display())),
        ("PUBLIC_BASE_URL".to_string(), format!("http://{addr}")),
        ("API_KEYS".to_string(), API_KEY.to_string()),
        ("EXOTEL_WEBHOOK_TOKEN".to_string(), "bench-webhook-token-0123456789".to_string()),
        ("EXOTEL_SMS_PER_MINUTE".to_string(), "10000".to_string()),
        ("ORDER_DESK_PHONE".to_string(), "+919800000101".to_string()),
        ("OPT_OUT_NUMBER".to_string(), "+918047112266".to_string()),
        ("LOG_FORMAT".to_string(), "text".to_string()),
    ];
    let config = Config::from_vars(vars).unwrap();
    // Delivery reports after the run: the sender's work, not the callbacks'.
    let mut sim = SimConfig::manual(start);
    sim.sms_delivery_delay = Duration::from_secs(86_400);
    sim.max_log_entries = 1000;
    let options = PrepareOptions { exotel_sim: Some(sim), ..PrepareOptions::default() };
    let state = mangwale_server::prepare_with(config, clock.clone(), options).await.unwrap();
    let exotel = state.exotel.sim.clone().unwrap();
    let served = Served::start(&state, listener);

    let http = reqwest::Client::new();
    let body = json!({"name": "bench", "type": "area_launch", "channel": "sms", "language": "hi",
                      "pacing": {"smsPerSecond": rate}});
    let id = create_campaign(&http, addr, &body).await;
    let length = body_length(n);
    let (rss_before, peak_before) = memory_mib();
    println!("recipients: {n} ({:.1} MiB of CSV), channel sms, SQLite, 2 worker threads", length as f64 / 1048576.0);
    println!("memory before: rss {rss_before:.1} MiB, peak {peak_before:.1} MiB");

    let Upload { body, elapsed: accepted_in, .. } = upload_recipients(addr, &id, n, length).await;
    assert_eq!(body["accepted"].as_u64(), Some(n), "every row accepted: {body}");
    let (rss, peak) = memory_mib();
    println!(
        "accepted {n} in {:.2} s ({:.0} rows/s); memory: rss {rss:.1} MiB, peak {peak:.1} MiB",
        accepted_in.as_secs_f64(),
        n as f64 / accepted_in.as_secs_f64()
    );

    let res = http.post(format!("http://{addr}/campaigns/{id}/start")).header("X-API-Key", API_KEY).send().await;
    assert_eq!(res.unwrap().status().as_u16(), 200);
    let sender = CampaignSender::new(&state);
    let step = Duration::from_millis(100);
    let steps = (inside + after) * 10;
    let sending = Instant::now();
    for _ in 0..steps {
        clock.advance(step);
        exotel.advance(step).await;
        sender.run_until_idle().await.unwrap();
    }
    let real = sending.elapsed();
    let (rss, peak) = memory_mib();

    let sms = exotel.sms_messages();
    let window = PromoWindow::default();
    let outside = sms.iter().filter(|m| !window.is_open(m.created_at)).count();
    let inside_sent = sms.len() - outside;
    let target = rate as f64 * inside as f64;
    let error = (inside_sent as f64 - target) / target;
    // After the first second: the steady pace.
    let steady_from = start + chrono::Duration::seconds(1);
    let steady = sms.iter().filter(|m| m.created_at >= steady_from && window.is_open(m.created_at)).count();
    let steady_target = rate as f64 * (inside as f64 - 1.0);
    let steady_error = (steady as f64 - steady_target) / steady_target;
    println!(
        "sent over {inside} s before 21:00 IST at {rate}/s (controlled clock, 100 ms steps): {inside_sent} SMS, \
         target {target:.0}: pacing error {:+.2} % ({:+.2} % after the first second: {steady} for {steady_target:.0})",
        error * 100.0,
        steady_error * 100.0
    );
    println!(
        "outside the window ({after} s after 21:00): {outside} of {} sends ({:.3} %)",
        sms.len(),
        outside as f64 * 100.0 / sms.len().max(1) as f64
    );
    println!(
        "real time {:.1} s ({:.0} sends/s real); memory: rss {rss:.1} MiB, peak {peak:.1} MiB; clock now {}",
        real.as_secs_f64(),
        sms.len() as f64 / real.as_secs_f64(),
        clock.now().with_timezone(&ist()).format("%H:%M:%S IST")
    );
    let status = campaign_status(&http, addr, &id).await;
    println!(
        "campaign: {} progress {} expectedFinishAt {}",
        status["state"], status["progress"], status["expectedFinishAt"]
    );
    served.stop().await;
}
