//! The store's side of the webhook write path, without HTTP: how many inbound
//! events per second SQLite records (deduplication key, timeline event,
//! follow-up job), called with whole batches and through the group-commit
//! [`InboundWriter`] by many concurrent callers. Prints the WAL bytes written
//! per event too, the figure that random index pages inflate.
//!
//!     cargo bench -p mangwale-store --bench inbound_write
//!
//! Knob: BENCH_EVENTS (default 100000). It asserts nothing.

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use mangwale_store::test_support::TestDb;
use mangwale_store::{InboundEvent, InboundWriter, NewEvent, NewJob, Store};
use serde_json::json;

/// A terminal status callback as the call-status route records it.
fn event(i: u64) -> InboundEvent {
    let sid = format!("bench{:03}x{i:08}", i % 64);
    InboundEvent {
        dedup_key: format!("exotel:call:{sid}:terminal"),
        source: "exotel.call_status".into(),
        event: NewEvent::new("exotel.call_status", Utc::now()).call(&sid).channel("call").detail(json!({
            "call_sid": sid, "status": "completed", "event": "terminal", "from": "+9198XXXXX210",
            "legs": [{"status": "completed", "on_call_duration": 44}, {"status": "completed", "on_call_duration": 42}],
            "custom_field": "c:bench", "conversation_duration": 42,
        })),
        jobs: vec![
            NewJob::follow_up(
                "exotel.call_status",
                json!({"call_sid": sid, "status": "completed", "custom_field": "c:bench"}),
                Utc::now(),
            )
            .max_attempts(20),
        ],
    }
}

fn wal_bytes(db: &TestDb) -> u64 {
    let path = db.url.trim_start_matches("sqlite:");
    std::fs::metadata(format!("{path}-wal")).map(|m| m.len()).unwrap_or(0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: u64 = std::env::var("BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    println!("{n} events per row; WAL bytes are the file's size at the end (it is reused, not truncated)");
    println!("{:<36} {:>10} {:>10} {:>14}", "caller", "events/s", "us/event", "WAL bytes/event");
    for batch in [64u64, 256] {
        let db = TestDb::sqlite().await.unwrap();
        let started = Instant::now();
        for first in (0..n).step_by(batch as usize) {
            let events: Vec<_> = (first..(first + batch).min(n)).map(event).collect();
            db.store.record_inbound(&events, Utc::now()).await.unwrap();
        }
        report(&format!("record_inbound, batches of {batch}"), n, started, wal_bytes(&db));
        db.cleanup().await;
    }
    for callers in [64u64, 256] {
        let db = TestDb::sqlite().await.unwrap();
        let store: Arc<dyn Store> = db.store.clone();
        let writer = InboundWriter::spawn(store, 1, 256);
        let started = Instant::now();
        let tasks: Vec<_> = (0..callers)
            .map(|caller| {
                let writer = writer.clone();
                tokio::spawn(async move {
                    for i in (caller..n).step_by(callers as usize) {
                        writer.record(event(i)).await.unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        report(&format!("InboundWriter, {callers} callers"), n, started, wal_bytes(&db));
        db.cleanup().await;
    }
}

fn report(caller: &str, n: u64, started: Instant, wal: u64) {
    let seconds = started.elapsed().as_secs_f64();
    println!("{caller:<36} {:>10.0} {:>10.1} {:>14}", n as f64 / seconds, seconds * 1e6 / n as f64, wal / n);
}
