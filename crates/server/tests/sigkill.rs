//! The real binary, killed with SIGKILL in the middle of a ladder and
//! started again on the same SQLite file: the ladder carries on at its
//! schedule and no step is sent twice. The ladder's timings come from a
//! LADDERS_FILE measured in seconds, so the test takes a few seconds of
//! real time.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const KEY: &str = "sigkill-api-key-0123456789";

struct Service {
    child: Child,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn spawn(dir: &std::path::Path, port: u16) -> Service {
    let child = Command::new(env!("CARGO_BIN_EXE_mangwale-exotel"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PORT", port.to_string())
        .env("HOST", "127.0.0.1")
        .env("DATABASE_URL", format!("sqlite:{}", dir.join("kill.db").display()))
        .env("PUBLIC_BASE_URL", format!("http://127.0.0.1:{port}"))
        .env("API_KEYS", KEY)
        .env("EXOTEL_WEBHOOK_TOKEN", "sigkill-webhook-token-0123456789")
        .env("LADDERS_FILE", dir.join("ladders.toml"))
        .env("RUST_LOG", "warn")
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the service binary starts");
    Service { child }
}

async fn wait_healthy(http: &reqwest::Client, base: &str) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if let Ok(res) = http.get(format!("{base}/health")).send().await
            && res.status().as_u16() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the service did not come up at {base}");
}

async fn escalation(http: &reqwest::Client, base: &str, id: &str) -> Value {
    http.get(format!("{base}/comms/escalations/{id}"))
        .header("X-API-Key", KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn sent_steps(ladder: &Value) -> Vec<(String, u64)> {
    ladder["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["state"] == "sent")
        .map(|s| (s["channel"].as_str().unwrap().to_string(), s["attempts"].as_u64().unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ladder_survives_sigkill_and_sends_each_step_once() {
    let dir = tempfile::tempdir().unwrap();
    // The vendor ladder in seconds: push now, WhatsApp at 3 s, push at 6 s.
    let ladders = mangwale_core::ladder::DEFAULT_LADDERS_TOML.replace(
        "steps = [\n  { channel = \"app_push\", after = 0 },\n  { channel = \"whatsapp\", after = 60 },\n  { channel = \"ring\", after = 120 },\n  { channel = \"ivr\", after = 180 },\n  { channel = \"admin\", after = 300 },\n]",
        "steps = [\n  { channel = \"app_push\", after = 0 },\n  { channel = \"whatsapp\", after = 3 },\n  { channel = \"app_push\", after = 6 },\n]",
    );
    assert!(ladders.contains("after = 6"), "the short vendor ladder is defined");
    std::fs::write(dir.path().join("ladders.toml"), ladders).unwrap();
    let http = reqwest::Client::new();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");

    let mut service = spawn(dir.path(), port);
    wait_healthy(&http, &base).await;
    let body = json!({"order_id": "KILL-1", "vendor_id": "V-1", "vendor_phone": "+919876543210", "amount": 100, "items": "Poha x1"});
    let res = http
        .post(format!("{base}/comms/notify/vendor/order"))
        .header("X-API-Key", KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let id = res.json::<Value>().await.unwrap()["escalationId"].as_str().unwrap().to_string();
    let started = Instant::now();
    // Wait for the first step, then SIGKILL (Child::kill sends SIGKILL).
    while sent_steps(&escalation(&http, &base, &id).await).is_empty() {
        assert!(started.elapsed() < Duration::from_secs(10), "the first step never went out");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    service.child.kill().unwrap();
    service.child.wait().unwrap();
    drop(service);

    // Down through the WhatsApp step's due time.
    tokio::time::sleep(Duration::from_millis(3500).saturating_sub(started.elapsed())).await;
    let _service = spawn(dir.path(), port);
    wait_healthy(&http, &base).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let ladder = loop {
        let ladder = escalation(&http, &base, &id).await;
        if ladder["state"] != "active" || Instant::now() > deadline {
            break ladder;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(ladder["state"], "exhausted", "{ladder}");
    assert_eq!(
        sent_steps(&ladder),
        [("app_push".to_string(), 1), ("whatsapp".to_string(), 1), ("app_push".to_string(), 1)],
        "each step sent once: {ladder}"
    );
    let timeline: Value = http
        .get(format!("{base}/comms/timeline/KILL-1"))
        .header("X-API-Key", KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sent = timeline["events"].as_array().unwrap().iter().filter(|e| e["kind"] == "ladder.step_sent").count();
    assert_eq!(sent, 3, "one timeline entry per step");
    // The last step kept its schedule: due 6 s after the start.
    let last = &ladder["steps"][2];
    let due = chrono::DateTime::parse_from_rfc3339(last["dueAt"].as_str().unwrap()).unwrap();
    let first_due = chrono::DateTime::parse_from_rfc3339(ladder["steps"][0]["dueAt"].as_str().unwrap()).unwrap();
    assert_eq!((due - first_due).num_seconds(), 6);
}
