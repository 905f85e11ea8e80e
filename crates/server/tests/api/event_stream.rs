//! `GET /comms/events/stream`: the live feed as Server-Sent Events, resumed
//! exactly once across reconnects, on SQLite and across PostgreSQL replicas.

use std::time::Duration;

use mangwale_server::PrepareOptions;
use mangwale_store::test_support::TestDb;
use mangwale_store::{NewEvent, Store};
use serde_json::Value;
use sqlx::Connection;

use crate::common::{API_KEY, Setup, TestApp};

/// One parsed SSE message: its id and data, or a comment (heartbeat).
#[derive(Debug)]
enum Message {
    Event { id: String, event: String, data: Value },
    Comment(String),
}

/// A client connection, read message by message.
struct Client {
    response: reqwest::Response,
    buffer: String,
}

impl Client {
    async fn open(app: &TestApp, last_event_id: Option<&str>, query: &str) -> Client {
        let mut req = app.http.get(format!("{}/comms/events/stream{query}", app.base)).header("X-API-Key", API_KEY);
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id);
        }
        let response = req.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Client { response, buffer: String::new() }
    }

    async fn message(&mut self) -> Message {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (String::new(), String::new(), String::new());
                for line in block.lines() {
                    if let Some(comment) = line.strip_prefix(':') {
                        return Message::Comment(comment.trim().to_string());
                    }
                    let (field, value) = line.split_once(':').unwrap_or((line, ""));
                    let value = value.strip_prefix(' ').unwrap_or(value);
                    match field {
                        "id" => id = value.to_string(),
                        "event" => event = value.to_string(),
                        "data" => data.push_str(value),
                        _ => {}
                    }
                }
                return Message::Event { id, event, data: serde_json::from_str(&data).unwrap() };
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.response.chunk())
                .await
                .expect("the stream sent nothing for 10 s")
                .unwrap()
                .expect("the stream ended");
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The next event, skipping heartbeats: (SSE id, event kind).
    async fn event(&mut self) -> (String, String) {
        let next = async {
            loop {
                if let Message::Event { id, event, data } = self.message().await {
                    assert_eq!(event, "timeline");
                    assert!(data["id"].as_i64().unwrap() <= leading_id(&id), "{id} {data}");
                    return (id, data["kind"].as_str().unwrap().to_string());
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(20), next).await.expect("no event within 20 s, only heartbeats")
    }
}

fn leading_id(sse_id: &str) -> i64 {
    sse_id.split(';').next().unwrap().parse().unwrap()
}

async fn record(store: &dyn Store, kind: &str) -> i64 {
    store.record_event(NewEvent::new(kind, chrono::Utc::now()).order("MW-SSE")).await.unwrap()
}

async fn start(db: Option<TestDb>) -> TestApp {
    TestApp::start_setup(Setup {
        db,
        prepare: PrepareOptions { event_heartbeat: Some(Duration::from_millis(300)), ..PrepareOptions::default() },
        ..Setup::default()
    })
    .await
}

/// Waits until the service holds no open stream (the client went away).
async fn until_no_streams(app: &TestApp) {
    for _ in 0..200 {
        if app.state.events.open_streams() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("a closed client's stream is still open");
}

#[tokio::test]
async fn the_stream_pushes_new_events_and_resumes_exactly_once() {
    let app = start(None).await;
    let store = app.state.store.clone();
    record(store.as_ref(), "before_connecting").await;

    let mut client = Client::open(&app, None, "").await;
    // A fresh connection starts from now: the earlier event is not replayed.
    record(store.as_ref(), "first").await;
    record(store.as_ref(), "second").await;
    let (_, kind) = client.event().await;
    assert_eq!(kind, "first");
    let (resume_at, kind) = client.event().await;
    assert_eq!(kind, "second");
    // A quiet stream sends its heartbeat.
    loop {
        if let Message::Comment(text) = client.message().await {
            assert_eq!(text, "heartbeat");
            break;
        }
    }
    // The client goes away; the service lets go of the stream.
    drop(client);
    until_no_streams(&app).await;

    // Events recorded while away arrive on reconnect, once each.
    record(store.as_ref(), "third").await;
    let mut client = Client::open(&app, Some(&resume_at), "").await;
    record(store.as_ref(), "fourth").await;
    assert_eq!(client.event().await.1, "third");
    assert_eq!(client.event().await.1, "fourth");

    // `?after=` starts from a given id, as `/comms/events` does.
    let mut from_start = Client::open(&app, None, "?after=0").await;
    for expected in ["before_connecting", "first", "second", "third", "fourth"] {
        assert_eq!(from_start.event().await.1, expected);
    }
    // `?tail=` starts that many events back from the newest.
    let mut tail = Client::open(&app, None, "?tail=2").await;
    assert_eq!(tail.event().await.1, "third");
    assert_eq!(tail.event().await.1, "fourth");
    drop(client);
    drop(from_start);
    drop(tail);
    until_no_streams(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn a_bad_resume_position_is_a_400_naming_the_header() {
    let app = start(None).await;
    for bad in ["abc", "-4", "5;9@1"] {
        let res = app
            .http
            .get(format!("{}/comms/events/stream", app.base))
            .header("X-API-Key", API_KEY)
            .header("Last-Event-ID", bad)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{bad}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["field"], "Last-Event-ID");
    }
    let (status, body) = app.get("/comms/events/stream?after=x", Some(API_KEY)).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "after");
    let (status, body) = app.get("/comms/events/stream?tail=5000", Some(API_KEY)).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "tail");
    let (status, _) = app.get("/comms/events/stream", None).await;
    assert_eq!(status, 401);
    app.stop().await;
}

/// Two replicas on PostgreSQL: a client of replica A sees what replica B
/// records (LISTEN/NOTIFY), and an event whose id was taken before, but
/// committed after, a later one is delivered once, also across a reconnect.
#[tokio::test]
async fn replicas_on_postgres_push_each_others_events_whatever_the_commit_order() {
    let Some(db) = TestDb::postgres().await.unwrap() else { return };
    let url = db.url.clone();
    let app = start(Some(db)).await;
    // Replica B: its own pool and listener on the same database.
    let replica_b = mangwale_store::connect(&url, &mangwale_store::ConnectOptions::default()).await.unwrap();

    let mut client = Client::open(&app, None, "").await;
    record(replica_b.as_ref(), "from_b").await;
    let (_, kind) = client.event().await;
    assert_eq!(kind, "from_b");

    // A slow transaction takes the next id and holds it uncommitted.
    let mut slow = sqlx::PgConnection::connect(&url).await.unwrap();
    let mut tx = slow.begin().await.unwrap();
    let late_id: i64 = sqlx::query_scalar(
        "INSERT INTO timeline_events (order_id, kind, detail, at) VALUES ('MW-SSE', 'late', '{}', 0) RETURNING id",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    let early_id = record(replica_b.as_ref(), "overtakes").await;
    assert!(early_id > late_id);
    let (with_gap, kind) = client.event().await;
    assert_eq!(kind, "overtakes");
    assert!(with_gap.contains(&format!(";{late_id}@")), "{with_gap}");

    // The client reconnects before the slow transaction commits.
    drop(client);
    let mut client = Client::open(&app, Some(&with_gap), "").await;
    tx.commit().await.unwrap();
    assert_eq!(client.event().await.1, "late");
    record(replica_b.as_ref(), "after").await;
    assert_eq!(client.event().await.1, "after", "nothing twice, nothing skipped");

    drop(client);
    until_no_streams(&app).await;
    replica_b.close().await;
    app.stop().await;
}
