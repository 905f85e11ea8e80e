//! The WhatsApp Cloud API simulator over real HTTP, without our client:
//! the checks Meta makes, signed webhooks verified independently, scripts,
//! the control endpoints and the system clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};
use mangwale_core::E164;
use mangwale_sim::SimClock;
use mangwale_sim::whatsapp::{
    ApprovedTemplate, RecipientScript, WebhookKind, WhatsAppSim, WhatsAppSimConfig, signature_header,
};
use serde_json::{Value, json};

const TO: &str = "919876543210";

fn start() -> DateTime<Utc> {
    DateTime::from_timestamp(1_736_925_000, 0).unwrap()
}

async fn sim() -> WhatsAppSim {
    WhatsAppSim::start(WhatsAppSimConfig::manual(start())).await.unwrap()
}

fn number() -> E164 {
    E164::parse(&format!("+{TO}")).unwrap()
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn post(sim: &WhatsAppSim, body: &Value) -> (u16, Value) {
    let res = http().post(sim.messages_url()).bearer_auth(sim.access_token()).json(body).send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

fn template(name: &str, components: Value) -> Value {
    json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": TO, "type": "template",
           "template": {"name": name, "language": {"code": "en"}, "components": components}})
}

fn rider_assignment(payloads: &[&str]) -> Value {
    let mut components = vec![json!({"type": "body", "parameters": [
        {"type": "text", "text": "MW-1"}, {"type": "text", "text": "Sharma Sweets, Panchavati"}, {"type": "text", "text": "College Road"}, {"type": "text", "text": "₹325"}]})];
    for (i, payload) in payloads.iter().enumerate() {
        components.push(json!({"type": "button", "sub_type": "quick_reply", "index": i.to_string(),
            "parameters": [{"type": "payload", "payload": payload}]}));
    }
    template("rider_assignment", Value::Array(components))
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<(HeaderMap, Bytes)>>>);

async fn receiver(status: StatusCode) -> (String, Captured) {
    let captured = Captured::default();
    async fn keep(
        State((captured, status)): State<(Captured, StatusCode)>,
        headers: HeaderMap,
        body: Bytes,
    ) -> StatusCode {
        captured.0.lock().unwrap().push((headers, body));
        status
    }
    let app = Router::new().fallback(keep).with_state((captured.clone(), status));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), captured)
}

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Named so that `cargo test -p mangwale-sim whatsapp` runs these too.
mod whatsapp {
    use super::*;

    #[tokio::test]
    async fn answers_like_the_cloud_api() {
        let sim = sim().await;
        let (status, body) = post(&sim, &rider_assignment(&["accept:MW-1", "reject:MW-1"])).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["messaging_product"], "whatsapp");
        assert_eq!(body["contacts"], json!([{"input": TO, "wa_id": TO}]));
        assert_eq!(body["messages"][0]["message_status"], "accepted");
        let id = body["messages"][0]["id"].as_str().unwrap();
        assert!(id.starts_with("wamid."));
        assert_eq!(sim.message(id).unwrap().payloads.get(&1).map(String::as_str), Some("reject:MW-1"));

        let error_of = |(status, body): (u16, Value)| (status, body["error"]["code"].as_i64().unwrap_or(-1));
        let no_auth = http().post(sim.messages_url()).json(&rider_assignment(&[])).send().await.unwrap();
        assert_eq!(no_auth.status(), 401);
        assert!(no_auth.headers().contains_key("www-authenticate"));
        let query_token = http()
            .post(sim.messages_url())
            .query(&[("access_token", sim.access_token())])
            .json(&rider_assignment(&[]))
            .send()
            .await
            .unwrap();
        assert_eq!(query_token.status(), 200, "the token may come as a parameter");
        let header =
            template("rider_assignment", json!([{"type": "header", "parameters": [{"type": "text", "text": "x"}]}]));
        assert_eq!(error_of(post(&sim, &header).await), (400, 132_000));
        let twice = json!([
        {"type": "body", "parameters": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}, {"type": "text", "text": "c"}]},
        {"type": "button", "sub_type": "quick_reply", "index": "0", "parameters": [{"type": "payload", "payload": "x"}]},
        {"type": "button", "sub_type": "quick_reply", "index": 0, "parameters": [{"type": "payload", "payload": "y"}]}]);
        assert_eq!(error_of(post(&sim, &template("rider_assignment", twice)).await), (400, 100));
        let spaces = template(
            "customer_status",
            json!([{"type": "body", "parameters": [
        {"type": "text", "text": "MW-1"}, {"type": "text", "text": "on     the way"}]}]),
        );
        assert_eq!(error_of(post(&sim, &spaces).await), (400, 100));
        let mut text = rider_assignment(&[]);
        text["type"] = json!("text");
        assert_eq!(error_of(post(&sim, &text).await), (400, 131_051));

        let other_path = http().get(format!("{}/v21.0/me", sim.base_url())).send().await.unwrap();
        assert_eq!(other_path.status(), 400);
        assert_eq!(other_path.json::<Value>().await.unwrap()["error"]["code"], 2500);
        let get = http().get(sim.messages_url()).bearer_auth(sim.access_token()).send().await.unwrap();
        assert_eq!(get.status(), 400);
        assert_eq!(sim.received().len(), 9, "every request is logged, refused ones too");
        let logged = serde_json::to_string(&sim.received()).unwrap();
        assert!(!logged.contains(sim.access_token()), "the token is never logged");
    }

    #[tokio::test]
    async fn appsecret_proof_can_be_required() {
        let config = WhatsAppSimConfig { require_appsecret_proof: true, ..WhatsAppSimConfig::manual(start()) };
        let sim = WhatsAppSim::start(config).await.unwrap();
        let (status, body) = post(&sim, &rider_assignment(&[])).await;
        assert_eq!((status, body["error"]["code"].as_i64()), (400, Some(100)), "{body}");
        let proof = hmac_hex(&sim.app_secret(), sim.access_token().as_bytes());
        let res = http()
            .post(sim.messages_url())
            .query(&[("appsecret_proof", proof.as_str())])
            .bearer_auth(sim.access_token())
            .json(&rider_assignment(&[]))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }

    #[tokio::test]
    async fn webhooks_are_signed_over_the_exact_bytes() {
        let sim = sim().await;
        let (url, captured) = receiver(StatusCode::OK).await;
        sim.set_webhook_url(Some(url));
        sim.set_app_secret("rotated-secret");
        sim.script(&number(), RecipientScript::replies_button(1, Duration::from_secs(4)));
        let (_, body) = post(&sim, &rider_assignment(&["accept:MW-1", "reject:MW-1"])).await;
        let id = body["messages"][0]["id"].as_str().unwrap().to_string();
        assert_eq!(sim.pending_events(), 4);
        assert_eq!(sim.next_event_at(), Some(start() + chrono::Duration::seconds(1)));
        sim.advance(Duration::from_secs(10)).await;
        assert_eq!(sim.now(), start() + chrono::Duration::seconds(10));

        let captured = captured.0.lock().unwrap().clone();
        assert_eq!(captured.len(), 4);
        for (headers, body) in &captured {
            let signature = headers["x-hub-signature-256"].to_str().unwrap();
            assert_eq!(signature, format!("sha256={}", hmac_hex("rotated-secret", body)));
            assert_eq!(headers["content-type"], "application/json");
        }
        let reply: Value = serde_json::from_slice(&captured[3].1).unwrap();
        assert_eq!(reply["object"], "whatsapp_business_account");
        let change = &reply["entry"][0]["changes"][0];
        assert_eq!(change["field"], "messages");
        let message = &change["value"]["messages"][0];
        assert_eq!(message["type"], "button");
        assert_eq!(message["button"], json!({"payload": "reject:MW-1", "text": "Reject"}));
        assert_eq!(message["context"]["id"], id.as_str());
        assert_eq!(message["from"], TO);
        assert_eq!(message["timestamp"], (start().timestamp() + 4).to_string());
        assert_eq!(change["value"]["contacts"][0]["wa_id"], TO);
        let sent: Value = serde_json::from_slice(&captured[0].1).unwrap();
        let status = &sent["entry"][0]["changes"][0]["value"]["statuses"][0];
        assert_eq!((status["status"].as_str(), status["recipient_id"].as_str()), (Some("sent"), Some(TO)));
        assert_eq!(status["pricing"]["category"], "utility");
        assert!(status["conversation"]["expiration_timestamp"].is_string());
        let kinds: Vec<WebhookKind> = sim.webhooks_sent().into_iter().map(|w| w.kind).collect();
        assert_eq!(kinds[3], WebhookKind::ButtonReply);
        assert_eq!(signature_header("rotated-secret", &captured[0].1), sim.webhooks_sent()[0].signature);
    }

    #[tokio::test]
    async fn quick_replies_without_payload_and_missing_buttons() {
        let sim = sim().await;
        sim.script_sequence(
            &number(),
            vec![
                RecipientScript::replies_button(0, Duration::from_secs(3)),
                RecipientScript::replies_button(5, Duration::from_secs(3)),
            ],
        );
        post(&sim, &rider_assignment(&[])).await;
        post(&sim, &rider_assignment(&[])).await;
        sim.advance(Duration::from_secs(5)).await;
        let replies: Vec<Value> =
            sim.webhooks_sent().into_iter().filter(|w| w.kind == WebhookKind::ButtonReply).map(|w| w.json).collect();
        assert_eq!(replies.len(), 1, "the second script taps a button rider_assignment lacks");
        let button = &replies[0]["entry"][0]["changes"][0]["value"]["messages"][0]["button"];
        assert_eq!(button, &json!({"payload": "Accept", "text": "Accept"}), "no payload given: the label comes back");
        assert!(sim.webhooks_sent().iter().all(|w| w.error.as_deref() == Some("no webhook URL configured")));
    }

    #[tokio::test]
    async fn refused_sends_do_not_use_up_a_script() {
        let sim = sim().await;
        sim.script_sequence(&number(), vec![RecipientScript::fails(131_056), RecipientScript::NeverAnswers]);
        let unknown = template("nope", json!([]));
        assert_eq!(post(&sim, &unknown).await.0, 404);
        let capitals = template("Rider_Assignment", json!([]));
        let (status, body) = post(&sim, &capitals).await;
        assert_eq!((status, body["error"]["code"].as_i64()), (404, Some(132_001)), "names are ^[a-z0-9_]+$");
        let (status, body) = post(&sim, &rider_assignment(&[])).await;
        assert_eq!((status, body["error"]["code"].as_i64()), (400, Some(131_056)), "{body}");
        assert_eq!(body["error"]["message"], "(#131056) (Business Account, Consumer Account) pair rate limit hit");
        assert_eq!(post(&sim, &rider_assignment(&[])).await.0, 200);
        sim.advance(Duration::from_secs(60)).await;
        assert_eq!(sim.messages()[0].statuses, ["sent", "delivered"]);
    }

    #[tokio::test]
    async fn custom_templates_and_languages() {
        let templates = vec![ApprovedTemplate::new("order_otp", 1, &[]).in_languages(&["en_US"])];
        let sim =
            WhatsAppSim::start(WhatsAppSimConfig { templates, ..WhatsAppSimConfig::manual(start()) }).await.unwrap();
        let mut otp =
            template("order_otp", json!([{"type": "body", "parameters": [{"type": "text", "text": "4821"}]}]));
        assert_eq!(post(&sim, &otp).await.0, 404, "approved in en_US only");
        otp["template"]["language"]["code"] = json!("en_US");
        assert_eq!(post(&sim, &otp).await.0, 200);
    }

    #[tokio::test]
    async fn the_control_endpoints_drive_it() {
        let sim = sim().await;
        let (url, captured) = receiver(StatusCode::INTERNAL_SERVER_ERROR).await;
        let control = |path: &str| format!("{}/_sim{path}", sim.base_url());
        let ok = |res: reqwest::Response| async move {
            let status = res.status().as_u16();
            let body: Value = res.json().await.unwrap();
            assert_eq!(status, 200, "{body}");
            body
        };
        ok(http().post(control("/webhook")).json(&json!({"url": url, "app_secret": "s2"})).send().await.unwrap()).await;
        ok(http()
            .post(control("/script"))
            .json(&json!({"number": "+919876543210", "script": {"kind": "reply_text", "text": "haan", "after": 3}}))
            .send()
            .await
            .unwrap())
        .await;
        ok(http()
            .post(control("/faults"))
            .json(&json!({"fault": {"kind": "server_error", "status": 503}, "times": 1}))
            .send()
            .await
            .unwrap())
        .await;
        assert_eq!(post(&sim, &rider_assignment(&[])).await.0, 503);
        assert_eq!(post(&sim, &rider_assignment(&[])).await.0, 200);
        let inbound = ok(http()
            .post(control("/inbound"))
            .json(&json!({"from": "+919812345678", "text": "hello"}))
            .send()
            .await
            .unwrap())
        .await;
        assert!(inbound["message_id"].as_str().unwrap().starts_with("wamid."));
        let advanced = ok(http().post(control("/advance")).json(&json!({"seconds": 5})).send().await.unwrap()).await;
        assert_eq!(advanced["now"], json!(start() + chrono::Duration::seconds(5)));
        assert_eq!(captured.0.lock().unwrap().len(), 5, "inbound, sent, delivered, read, text");
        let log = ok(http().get(control("/log")).send().await.unwrap()).await;
        assert_eq!(log["received"].as_array().unwrap().len(), 2);
        assert_eq!(log["webhooks"].as_array().unwrap().len(), 5);
        assert!(log["webhooks"].as_array().unwrap().iter().all(|w| w["response_status"] == 500), "answers are logged");
        let messages = ok(http().get(control("/messages")).send().await.unwrap()).await;
        assert_eq!(messages[0]["statuses"], json!(["sent", "delivered", "read"]));
        let info = ok(http().get(control("")).send().await.unwrap()).await;
        assert_eq!(info["pending_events"], 0);
        assert_eq!(info["templates"].as_array().unwrap().len(), 8);
        let missing = http().get(control("/messages/wamid.nope")).send().await.unwrap();
        assert_eq!(missing.status(), 404);
    }

    #[tokio::test]
    async fn on_the_system_clock_webhooks_flow_by_themselves() {
        let config = WhatsAppSimConfig {
            clock: SimClock::system(),
            sent_after: Duration::from_millis(10),
            delivered_after: Duration::from_millis(20),
            ..WhatsAppSimConfig::default()
        };
        let sim = WhatsAppSim::start(config).await.unwrap();
        let (url, captured) = receiver(StatusCode::OK).await;
        sim.set_webhook_url(Some(url));
        sim.set_default_script(RecipientScript::reads_after(Duration::from_millis(30)));
        assert_eq!(post(&sim, &rider_assignment(&[])).await.0, 200);
        for _ in 0..200 {
            if captured.0.lock().unwrap().len() == 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(captured.0.lock().unwrap().len(), 3, "sent, delivered, read");
        let control = http().post(format!("{}/_sim/advance", sim.base_url())).json(&json!({"seconds": 1})).send().await;
        assert_eq!(control.unwrap().status(), 409, "no advancing the system clock");
        sim.shutdown().await;
    }
}
