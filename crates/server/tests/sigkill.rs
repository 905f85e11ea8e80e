//! The real binary, killed with SIGKILL in the middle of a ladder and
//! started again on the same SQLite file: the ladder carries on at its
//! schedule and no step is sent twice. The ladder's timings come from a
//! LADDERS_FILE measured in seconds, so the test takes a few seconds of
//! real time.
//!
//! The second test kills the binary while a step is being sent (the WhatsApp
//! simulator, in this test process, holds its answer), and checks from the
//! simulator's own request log when each step actually went out.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[path = "common/http.rs"]
mod http;
use http::get_json;

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
    spawn_with(dir, port, &[])
}

fn spawn_with(dir: &std::path::Path, port: u16, vars: &[(&str, String)]) -> Service {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mangwale-exotel"));
    command
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
        .env("JUPITER_WEBHOOK_SECRET", "sigkill-jupiter-secret-0123456789")
        .env("RUST_LOG", "warn")
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (name, value) in vars {
        command.env(name, value);
    }
    let child = command.spawn().expect("the service binary starts");
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
    get_json(http, format!("{base}/comms/escalations/{id}"), KEY).await
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
    let timeline = get_json(&http, format!("{base}/comms/timeline/KILL-1"), KEY).await;
    let sent = timeline["events"].as_array().unwrap().iter().filter(|e| e["kind"] == "ladder.step_sent").count();
    assert_eq!(sent, 3, "one timeline entry per step");
    // The last step kept its schedule: due 6 s after the start.
    let last = &ladder["steps"][2];
    let due = chrono::DateTime::parse_from_rfc3339(last["dueAt"].as_str().unwrap()).unwrap();
    let first_due = chrono::DateTime::parse_from_rfc3339(ladder["steps"][0]["dueAt"].as_str().unwrap()).unwrap();
    assert_eq!((due - first_due).num_seconds(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_a_step_is_being_sent_that_step_is_never_sent_again_and_the_rest_fire_on_time() {
    use mangwale_sim::whatsapp::{Fault, WhatsAppSim, WhatsAppSimConfig};

    let dir = tempfile::tempdir().unwrap();
    // The vendor ladder in seconds, on WhatsApp only: at 0, 3 and 6 s.
    let ladders = mangwale_core::ladder::DEFAULT_LADDERS_TOML.replace(
        "steps = [\n  { channel = \"app_push\", after = 0 },\n  { channel = \"whatsapp\", after = 60 },\n  { channel = \"ring\", after = 120 },\n  { channel = \"ivr\", after = 180 },\n  { channel = \"admin\", after = 300 },\n]",
        "steps = [\n  { channel = \"whatsapp\", after = 0 },\n  { channel = \"whatsapp\", after = 3 },\n  { channel = \"whatsapp\", after = 6 },\n]",
    );
    assert!(ladders.contains("{ channel = \"whatsapp\", after = 6 }"), "the short vendor ladder is defined");
    std::fs::write(dir.path().join("ladders.toml"), ladders).unwrap();
    // The simulator outlives both runs of the binary, and so does its log.
    let whatsapp = WhatsAppSim::start(WhatsAppSimConfig::default()).await.unwrap();
    let vars = [
        ("WHATSAPP_PHONE_NUMBER_ID", whatsapp.phone_number_id().to_string()),
        ("WHATSAPP_ACCESS_TOKEN", whatsapp.access_token().to_string()),
        ("WHATSAPP_APP_SECRET", whatsapp.app_secret()),
        ("WHATSAPP_API_URL", whatsapp.base_url().to_string()),
    ];
    // The first message is taken in at once and answered 3 s later: the
    // binary is killed in between, while it waits for the answer.
    whatsapp.inject_fault(Fault::Delay { secs: Duration::from_secs(3) }, 1);
    let sends = || -> Vec<chrono::DateTime<chrono::Utc>> {
        whatsapp
            .received()
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/messages"))
            .map(|r| r.at)
            .collect()
    };

    let http = reqwest::Client::new();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut service = spawn_with(dir.path(), port, &vars);
    wait_healthy(&http, &base).await;
    let body = json!({"order_id": "KILL-2", "vendor_id": "V-2", "vendor_phone": "+919876543211", "amount": 100, "items": "Poha x1"});
    let res = http
        .post(format!("{base}/comms/notify/vendor/order"))
        .header("X-API-Key", KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let id = res.json::<Value>().await.unwrap()["escalationId"].as_str().unwrap().to_string();
    let ladder = escalation(&http, &base, &id).await;
    let due: Vec<chrono::DateTime<chrono::Utc>> = ladder["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| chrono::DateTime::parse_from_rfc3339(s["dueAt"].as_str().unwrap()).unwrap().to_utc())
        .collect();
    assert_eq!(due.len(), 3, "{ladder}");

    // SIGKILL as soon as the first step's request reached WhatsApp, before
    // its answer came back.
    let started = Instant::now();
    while sends().is_empty() {
        if started.elapsed() > Duration::from_secs(10) {
            let ladder = escalation(&http, &base, &id).await;
            let log: Vec<_> = whatsapp.received().iter().map(|r| format!("{} {}", r.method, r.path)).collect();
            panic!("the first step never went out: {ladder} {log:?}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    service.child.kill().unwrap();
    service.child.wait().unwrap();
    let killed_at = chrono::Utc::now();
    drop(service);
    let state = escalation_from_db(dir.path(), &id).await;
    assert_eq!(state[0], "sending", "killed in the middle of sending the first step: {state:?}");

    // Down through the second step's due time.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let restarted_at = chrono::Utc::now();
    let _service = spawn_with(dir.path(), port, &vars);
    wait_healthy(&http, &base).await;
    // The job of the step cut off is still leased to the dead process: it
    // is settled when that lease (60 s) expires; the other steps go on.
    let deadline = Instant::now() + Duration::from_secs(90);
    let ladder = loop {
        let ladder = escalation(&http, &base, &id).await;
        if ladder["state"] != "active" || Instant::now() > deadline {
            break ladder;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(ladder["state"], "exhausted", "{ladder}");
    let states: Vec<&str> = ladder["steps"].as_array().unwrap().iter().map(|s| s["state"].as_str().unwrap()).collect();
    // The step cut off mid-send may have gone out: unknown, never resent.
    assert_eq!(states, ["unknown", "sent", "sent"], "{ladder}");

    // What WhatsApp received, and when: one request per step.
    let sent = sends();
    assert_eq!(sent.len(), 3, "each step reached WhatsApp once: {sent:?}");
    let slack = chrono::Duration::milliseconds(2500);
    assert!(sent[0] >= due[0] && sent[0] <= killed_at, "the first step went out before the kill: {sent:?} {due:?}");
    // Due while the service was down: sent as soon as it was back.
    assert!(sent[1] >= restarted_at && sent[1] >= due[1], "{sent:?} {due:?}");
    assert!(sent[1] <= restarted_at + chrono::Duration::seconds(10), "{sent:?} restarted at {restarted_at}");
    // Due after the restart: sent at its time, not early, not much later.
    assert!(sent[2] >= due[2] && sent[2] <= due[2] + slack, "the last step fired at its time: {sent:?} {due:?}");

    let timeline = get_json(&http, format!("{base}/comms/timeline/KILL-2"), KEY).await;
    let mut kinds: Vec<&str> = timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .filter(|k| k.starts_with("ladder.step"))
        .collect();
    // The first two are recorded together at the restart, in either order.
    kinds.sort();
    assert_eq!(kinds, ["ladder.step_sent", "ladder.step_sent", "ladder.step_unknown"], "{timeline}");
    whatsapp.shutdown().await;
}

/// The step states straight from the database file, with the binary down.
async fn escalation_from_db(dir: &std::path::Path, id: &str) -> Vec<String> {
    let url = format!("sqlite:{}", dir.join("kill.db").display());
    let store = mangwale_store::connect(&url, &mangwale_store::ConnectOptions::default()).await.unwrap();
    let ladder = store.ladder(id).await.unwrap().expect("the ladder");
    let states = ladder.steps.iter().map(|s| format!("{:?}", s.state).to_lowercase()).collect();
    store.close().await;
    states
}

/// The real binary in live mode against an Exotel simulator of this test
/// (it outlives both runs, and so does its log of what it received), with
/// a 200-recipient SMS campaign paced at 50 a second. The binary is
/// SIGKILLed a third of the way through while one SMS is in flight (the
/// simulator took it and holds its answer), then started again on the same
/// SQLite file: it carries on, and nobody gets a message twice. The SMS cut
/// off mid-send reached Exotel but its answer never came back: after the
/// dead claim's lease it is settled from its idempotency key as failed with
/// an unknown outcome, never sent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_campaign_the_binary_carries_on_and_nobody_gets_a_second_sms() {
    use std::collections::HashMap;

    use mangwale_sim::exotel::{DEFAULT_EXOPHONE, Endpoint, ExotelSim, Fault, SimConfig};

    const RECIPIENTS: usize = 200;
    const ENTITY: &str = "1101160000000000001";
    const DLT_TEMPLATE: &str = "1107160000000000077";
    const SMS: &str = "Mangwale now delivers in your area. Order on the app or call us any time.";
    const LEASE_SECONDS: u64 = 5;

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ladders.toml"), mangwale_core::ladder::DEFAULT_LADDERS_TOML).unwrap();
    // The account's DLT entity and the template registered on DLT: the
    // simulator scrubs every SMS against them.
    let sim_config =
        SimConfig { dlt_entity_id: Some(ENTITY.to_string()), ..SimConfig::default() }.with_template(DLT_TEMPLATE, SMS);
    let exotel = ExotelSim::start(sim_config).await.unwrap();
    let started_at = Instant::now();
    // Live mode refuses a loopback PUBLIC_BASE_URL ("an address Exotel can
    // reach"): the service listens on 127.0.0.2, which the simulator reaches
    // with its delivery reports.
    let port = free_port();
    let base = format!("http://127.0.0.2:{port}");
    let vars = [
        ("HOST", "127.0.0.2".to_string()),
        ("PUBLIC_BASE_URL", base.clone()),
        ("EXOTEL_SID", exotel.account_sid().to_string()),
        ("EXOTEL_API_KEY", exotel.api_key().to_string()),
        ("EXOTEL_API_TOKEN", exotel.api_token().to_string()),
        ("EXOTEL_API_URL", exotel.base_url().to_string()),
        ("EXOTEL_CALLER_ID", DEFAULT_EXOPHONE.to_string()),
        ("EXOTEL_SMS_SENDER", "MNGWLE".to_string()),
        ("EXOTEL_DLT_ENTITY_ID", ENTITY.to_string()),
        // Our client-side SMS budget above the campaign's pace.
        ("EXOTEL_SMS_PER_MINUTE", "6000".to_string()),
        ("JUPITER_URL", "http://127.0.0.1:9".to_string()),
        ("CAMPAIGN_CLAIM_LEASE_SECONDS", LEASE_SECONDS.to_string()),
    ];
    let sms_sends = || -> Vec<mangwale_sim::exotel::ReceivedRequest> {
        exotel.received().into_iter().filter(|r| r.endpoint == Some(Endpoint::SmsSend)).collect()
    };

    let http = reqwest::Client::new();
    let mut service = spawn_with(dir.path(), port, &vars);
    wait_healthy(&http, &base).await;
    let post = |path: &str, body: Value| {
        let req = http.post(format!("{base}{path}")).header("X-API-Key", KEY).json(&body);
        async move {
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    // A service-implicit template (sent around the clock: the binary runs
    // on the real clock) with its DLT template id.
    let template = json!({
        "key": "area_live_notice", "category": "service_implicit", "description": "the area is live",
        "variables": [], "texts": {"en": {"sms": SMS, "voice": "Mangwale now delivers in your area.",
                                          "dlt_template_id": DLT_TEMPLATE}}
    });
    let (status, saved) = post("/campaigns/templates", template).await;
    assert_eq!(status, 201, "{saved}");
    let phones: Vec<String> = (0..RECIPIENTS).map(|i| format!("+919876{i:06}")).collect();
    let (status, created) = post(
        "/campaigns/create",
        json!({"name": "Kill test", "type": "area_live_notice", "channel": "sms", "language": "en",
               "phone_numbers": phones, "pacing": {"smsPerSecond": 50}}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["campaignId"].as_str().unwrap().to_string();
    let (status, started) = post(&format!("/campaigns/{id}/start"), json!({})).await;
    assert_eq!(status, 200, "{started}");

    // A third of the way through, the next SMS is taken in at once and
    // answered only 10 s later; SIGKILL while the binary waits for it.
    let deadline = Instant::now() + Duration::from_secs(20);
    while exotel.sms_messages().len() < RECIPIENTS / 3 {
        assert!(Instant::now() < deadline, "the campaign did not get going: {} SMS", exotel.sms_messages().len());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    exotel.inject_fault(Endpoint::SmsSend, Fault::delay(Duration::from_secs(10)), 1);
    let held = loop {
        if let Some(held) = sms_sends().into_iter().find(|r| r.fault.is_some()) {
            break held;
        }
        assert!(Instant::now() < deadline, "no SMS met the held answer");
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    // The rest of that batch finishes; the sender waits on the held answer.
    tokio::time::sleep(Duration::from_millis(300)).await;
    service.child.kill().unwrap();
    service.child.wait().unwrap();
    drop(service);
    let held_to = mangwale_core::E164::parse(held.field("To").unwrap()).unwrap();
    let before_restart = exotel.sms_messages().len();
    assert!((RECIPIENTS / 3..RECIPIENTS).contains(&before_restart), "killed mid-campaign: {before_restart} SMS");

    // With the binary down: the held SMS is the one message still claimed.
    let cid = mangwale_core::campaign::CampaignId::parse(&id).unwrap();
    let outcomes = campaign_from_db(dir.path(), &cid).await;
    let sending: Vec<&str> = outcomes
        .iter()
        .filter(|(_, state, _)| *state == mangwale_core::campaign::MessageState::Sending)
        .map(|(phone, _, _)| phone.as_str())
        .collect();
    assert_eq!(sending, [held_to.as_str()], "killed while exactly the held SMS was being sent");

    let service = spawn_with(dir.path(), port, &vars);
    wait_healthy(&http, &base).await;
    let deadline = Instant::now() + Duration::from_secs(25);
    let status = loop {
        let status = get_json(&http, format!("{base}/campaigns/{id}"), KEY).await;
        if status["state"] == "completed" || Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status["state"], "completed", "{status}");

    // Every recipient got exactly one SMS at Exotel, the held one included.
    let messages = exotel.sms_messages();
    let mut per_phone: HashMap<String, usize> = HashMap::new();
    for m in &messages {
        *per_phone.entry(m.to.as_str().to_string()).or_default() += 1;
    }
    let twice: Vec<_> = per_phone.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "nobody gets a message twice: {twice:?}");
    assert_eq!(per_phone.len(), RECIPIENTS, "everyone got theirs");
    assert!(phones.iter().all(|p| per_phone.contains_key(p)));
    assert_eq!(sms_sends().len(), RECIPIENTS, "one send request per recipient");
    assert!(
        messages.iter().all(|m| m.dlt_template_id.as_deref() == Some(DLT_TEMPLATE)),
        "every SMS carries its DLT id"
    );

    // The counts are final: everything sent but, perhaps, the held one. The
    // restarted sender fails it as unknown once its claim's lease runs out
    // (it may have gone out: it did), and Exotel's delivery report, found
    // by the SMS's CustomField, makes it `delivered` whenever it comes.
    let stats = &status["stats"];
    assert_eq!(stats["total"], RECIPIENTS, "{status}");
    let failed = stats["failed"].as_u64().unwrap();
    assert!(failed <= 1, "{status}");
    assert_eq!(stats["sent"].as_u64().unwrap() + failed, RECIPIENTS as u64, "{status}");
    for state in ["queued", "sending"] {
        assert_eq!(status["counts"]["sms"][state], 0, "{state}: {status}");
    }
    assert_eq!(status["progress"]["final"], RECIPIENTS, "{status}");
    drop(service);
    let sids: std::collections::HashSet<&str> = messages.iter().map(|m| m.sid.as_str()).collect();
    for (phone, state, outcome) in campaign_from_db(dir.path(), &cid).await {
        if phone == held_to.as_str() && state == mangwale_core::campaign::MessageState::Failed {
            assert_eq!(failed, 1);
            assert!(outcome.as_deref().unwrap_or("").contains("unknown"), "{outcome:?}");
        } else {
            // Sent or delivered, with the sid Exotel gave it.
            let sid = outcome.unwrap_or_default();
            assert!(sids.contains(sid.as_str()), "{phone}: {state:?} {sid}");
        }
    }
    eprintln!(
        "sigkill campaign: killed after {before_restart} of {RECIPIENTS} SMS, completed in {:.1} s",
        started_at.elapsed().as_secs_f64()
    );
    exotel.shutdown().await;
}

/// Each recipient's SMS, straight from the database file: phone, state,
/// and the provider sid (or the last error when it has none).
async fn campaign_from_db(
    dir: &std::path::Path,
    id: &mangwale_core::campaign::CampaignId,
) -> Vec<(String, mangwale_core::campaign::MessageState, Option<String>)> {
    let url = format!("sqlite:{}", dir.join("kill.db").display());
    let store = mangwale_store::connect(&url, &mangwale_store::ConnectOptions::default()).await.unwrap();
    let rows = store.recipients_page(id, 0, 10_000).await.unwrap();
    store.close().await;
    rows.into_iter()
        .map(|r| {
            let m = &r.messages[0];
            (r.phone.as_str().to_string(), m.state, m.provider_sid.clone().or_else(|| m.last_error.clone()))
        })
        .collect()
}
