//! The production WhatsApp Cloud API client against the WhatsApp simulator
//! over real HTTP: every success and error class, retries, the ambiguous
//! outcomes that must not be retried, and the whole loop from a template to
//! the signed button-reply webhook it provokes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use chrono::{DateTime, Utc};
use mangwale_core::E164;
use mangwale_providers::whatsapp::{
    DeliveryStatus, InboundEvent, SIGNATURE_HEADER, TemplateMessage, WhatsAppClient, WhatsAppClientConfig,
    WhatsAppErrorKind, check_templates, parse_webhook, verify_signature, verify_subscription,
};
use mangwale_sim::whatsapp::{ApprovedTemplate, Fault, RecipientScript, WebhookKind, WhatsAppSim, WhatsAppSimConfig};
use serde_json::json;
use url::Url;

const VENDOR: &str = "+919876543210";
const RIDER: &str = "+919812345678";
const APP_SECRET: &str = "test-app-secret-7f3a";
const VERIFY_TOKEN: &str = "test-verify-token";

fn start_time() -> DateTime<Utc> {
    DateTime::from_timestamp(1_736_925_000, 0).unwrap()
}

fn number(n: &str) -> E164 {
    E164::parse(n).unwrap()
}

async fn sim() -> WhatsAppSim {
    let config = WhatsAppSimConfig { app_secret: APP_SECRET.to_string(), ..WhatsAppSimConfig::manual(start_time()) };
    WhatsAppSim::start(config).await.unwrap()
}

fn config(sim: &WhatsAppSim) -> WhatsAppClientConfig {
    let mut config = WhatsAppClientConfig::new(sim.phone_number_id(), sim.access_token())
        .with_base_url(Url::parse(sim.base_url()).unwrap())
        .with_app_secret(APP_SECRET);
    config.retry_base = Duration::from_millis(5);
    config.timeout = Duration::from_secs(5);
    config
}

fn client(sim: &WhatsAppSim) -> WhatsAppClient {
    WhatsAppClient::new(config(sim)).unwrap()
}

fn new_order(to: &str) -> TemplateMessage {
    TemplateMessage::new(number(to), "vendor_new_order", "hi")
        .body(["MW-2025-001234", "₹325", "2 x Paneer Tikka,\n1 x Butter Naan"])
        .quick_replies(["accept:MW-2025-001234", "reject:MW-2025-001234"])
}

/// A webhook as our receiver saw it.
#[derive(Debug, Clone)]
struct Delivery {
    signature: Option<String>,
    body: Bytes,
}

#[derive(Clone, Default)]
struct Receiver {
    deliveries: Arc<Mutex<Vec<Delivery>>>,
}

impl Receiver {
    /// A small axum app on 127.0.0.1:0 that keeps every webhook and answers
    /// the subscription handshake; returns its webhook URL.
    async fn start(&self) -> String {
        async fn capture(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
            let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).map(str::to_string);
            receiver.deliveries.lock().unwrap().push(Delivery { signature, body });
            StatusCode::OK
        }
        async fn handshake(Query(query): Query<HashMap<String, String>>) -> (StatusCode, String) {
            let get = |k: &str| query.get(k).map(String::as_str);
            match verify_subscription(get("hub.mode"), get("hub.verify_token"), get("hub.challenge"), VERIFY_TOKEN) {
                Some(challenge) => (StatusCode::OK, challenge),
                None => (StatusCode::FORBIDDEN, String::new()),
            }
        }
        let app = Router::new().route("/webhooks/whatsapp", post(capture).get(handshake)).with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}/webhooks/whatsapp")
    }

    fn deliveries(&self) -> Vec<Delivery> {
        self.deliveries.lock().unwrap().clone()
    }

    /// Every event of every delivery, each checked for its signature first.
    fn events(&self) -> Vec<InboundEvent> {
        self.deliveries()
            .iter()
            .flat_map(|d| {
                assert!(verify_signature(APP_SECRET, &d.body, d.signature.as_deref()), "unsigned: {d:?}");
                parse_webhook(&d.body).unwrap()
            })
            .collect()
    }
}

async fn sim_with_receiver() -> (WhatsAppSim, Receiver) {
    let sim = sim().await;
    let receiver = Receiver::default();
    sim.set_webhook_url(Some(receiver.start().await));
    (sim, receiver)
}

#[tokio::test]
async fn a_template_goes_out_with_the_documented_body() {
    let sim = sim().await;
    let sent = client(&sim).send_template(&new_order(VENDOR)).await.unwrap();
    assert!(sent.message_id.starts_with("wamid."), "{}", sent.message_id);
    assert_eq!(sent.wa_id, Some(number(VENDOR)));
    assert_eq!(sent.status.as_deref(), Some("accepted"));

    let received = sim.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/v21.0/106540352242922/messages"));
    assert!(request.authorized, "Bearer token");
    assert!(request.appsecret_proof.is_some(), "the simulator checked the proof");
    assert_eq!(
        request.body.as_ref().unwrap(),
        &json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "919876543210",
            "type": "template",
            "template": {
                "name": "vendor_new_order",
                "language": {"code": "hi"},
                "components": [
                    {"type": "body", "parameters": [
                        {"type": "text", "text": "MW-2025-001234"},
                        {"type": "text", "text": "₹325"},
                        {"type": "text", "text": "2 x Paneer Tikka, 1 x Butter Naan"}
                    ]},
                    {"type": "button", "sub_type": "quick_reply", "index": "0",
                     "parameters": [{"type": "payload", "payload": "accept:MW-2025-001234"}]},
                    {"type": "button", "sub_type": "quick_reply", "index": "1",
                     "parameters": [{"type": "payload", "payload": "reject:MW-2025-001234"}]}
                ]
            }
        })
    );
    let message = sim.message(&sent.message_id).unwrap();
    assert_eq!((message.template.as_str(), message.language.as_str()), ("vendor_new_order", "hi"));
    assert_eq!(message.to, number(VENDOR));

    // A template without buttons or with another language needs no components beyond its body.
    let status = TemplateMessage::new(number(RIDER), "customer_status", "mr").body(["MW-7", "on the way", "12"]);
    client(&sim).send_template(&status).await.unwrap();
}

#[tokio::test]
async fn a_wrong_token_is_a_permanent_auth_error_and_not_retried() {
    let sim = sim().await;
    let client =
        WhatsAppClient::new(WhatsAppClientConfig { access_token: "EAAG-wrong".into(), ..config(&sim) }).unwrap();
    let error = client.send_template(&new_order(VENDOR)).await.unwrap_err();
    assert_eq!(error.kind, WhatsAppErrorKind::Permanent, "{error}");
    assert_eq!((error.status, error.code), (Some(401), Some(190)));
    assert!(error.is_auth() && !error.is_transient());
    assert!(error.fbtrace_id().is_some());
    assert!(!error.message().contains("EAAG-wrong"), "{}", error.message());
    assert_eq!(sim.received().len(), 1);
    assert!(!sim.received()[0].authorized);
    assert!(sim.messages().is_empty());
}

#[tokio::test]
async fn refusals_of_the_request_name_what_is_wrong() {
    let sim = sim().await;
    let permanent = |error: &mangwale_providers::whatsapp::WhatsAppError, code: i64| {
        assert_eq!(error.kind, WhatsAppErrorKind::Permanent, "{error}");
        assert_eq!(error.code, Some(code), "{error}");
    };

    let other_number =
        WhatsAppClient::new(WhatsAppClientConfig { phone_number_id: "999999999999999".into(), ..config(&sim) })
            .unwrap();
    let error = other_number.send_template(&new_order(VENDOR)).await.unwrap_err();
    permanent(&error, 100);
    assert_eq!(error.status, Some(400));
    assert!(error.message.contains("999999999999999"), "{error}");

    let wrong_secret = WhatsAppClient::new(config(&sim).with_app_secret("not-the-app-secret")).unwrap();
    let error = wrong_secret.send_template(&new_order(VENDOR)).await.unwrap_err();
    permanent(&error, 100);
    assert!(error.message.contains("appsecret_proof"), "{error}");

    let client = client(&sim);
    let too_few = TemplateMessage::new(number(VENDOR), "vendor_new_order", "hi").body(["MW-1"]);
    let error = client.send_template(&too_few).await.unwrap_err();
    permanent(&error, 132_000);
    assert_eq!(
        error.details(),
        Some("body: number of localizable_params (1) does not match the expected number of params (3)")
    );

    let no_such_button = TemplateMessage::new(number(VENDOR), "customer_delay", "en")
        .body(["MW-1", "15", "heavy rain"])
        .quick_replies(["ok"]);
    permanent(&client.send_template(&no_such_button).await.unwrap_err(), 131_009);

    assert_eq!(sim.received().len(), 4, "none of them retried");
    assert!(sim.messages().is_empty());
    let codes: Vec<Option<i64>> = sim.received().iter().map(|r| r.response.as_ref().unwrap().error_code()).collect();
    assert_eq!(codes, [Some(100), Some(100), Some(132_000), Some(131_009)]);
}

#[tokio::test]
async fn malformed_bodies_are_answered_with_code_100_naming_the_parameter() {
    // What the production client never sends, sent by hand.
    let sim = sim().await;
    let http = reqwest::Client::new();
    let send =
        |body: serde_json::Value| http.post(sim.messages_url()).bearer_auth(sim.access_token()).json(&body).send();
    let answer = send(json!({"messaging_product": "whatsapp", "to": "919876543210", "type": "template",
        "template": {"name": "customer_status", "language": {"code": "en"}, "components": [
            {"type": "body", "parameters": [{"type": "text", "text": "MW-1"}, {"type": "txt", "text": "late"}]}]}}))
    .await
    .unwrap();
    assert_eq!(answer.status(), 400);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["error"]["code"], 100);
    assert_eq!(body["error"]["type"], "OAuthException");
    let details = body["error"]["error_data"]["details"].as_str().unwrap();
    assert!(details.contains("template.components[0].parameters[1].type"), "{details}");
    assert!(body["error"]["fbtrace_id"].is_string());
}

#[tokio::test]
async fn an_unknown_template_is_permanent() {
    let sim = sim().await;
    let unknown = TemplateMessage::new(number(VENDOR), "vendor_order_shipped", "hi").body(["MW-1"]);
    let error = client(&sim).send_template(&unknown).await.unwrap_err();
    assert_eq!(error.kind, WhatsAppErrorKind::Permanent);
    assert_eq!((error.status, error.code), (Some(404), Some(132_001)));
    assert_eq!(error.details(), Some("template name (vendor_order_shipped) does not exist in hi"));
    let tamil = TemplateMessage { template: "customer_status".into(), language: "ta".into(), ..unknown };
    assert_eq!(client(&sim).send_template(&tamil).await.unwrap_err().code, Some(132_001), "not approved in Tamil");
    assert_eq!(sim.received().len(), 2);
}

#[tokio::test]
async fn rate_limits_are_retried_with_backoff() {
    let sim = sim().await;
    sim.inject_fault(Fault::RateLimited, 2);
    let sent = client(&sim).send_template(&new_order(VENDOR)).await.unwrap();
    let received = sim.received();
    assert_eq!(received.len(), 3);
    for throttled in &received[..2] {
        let response = throttled.response.as_ref().unwrap();
        assert_eq!((response.status, response.error_code()), (429, Some(130_429)));
    }
    assert_eq!(received[2].message_id.as_deref(), Some(sent.message_id.as_str()));
    assert_eq!(sim.messages().len(), 1, "sent once");

    sim.clear_log();
    sim.inject_fault(Fault::RateLimited, 3);
    let error = client(&sim).send_template(&new_order(VENDOR)).await.unwrap_err();
    assert!(error.is_transient() && error.is_rate_limited(), "{error}");
    assert_eq!((error.status, error.code), (Some(429), Some(130_429)));
    assert_eq!(sim.received().len(), 3, "one attempt and two retries");
}

#[tokio::test]
async fn server_errors_are_retried_then_succeed() {
    let sim = sim().await;
    sim.inject_fault(Fault::server_error(503), 1);
    sim.inject_fault(Fault::server_error(500), 1);
    let sent = client(&sim).send_template(&new_order(VENDOR)).await.unwrap();
    let statuses: Vec<u16> = sim.received().iter().map(|r| r.response.as_ref().unwrap().status).collect();
    assert_eq!(statuses, [503, 500, 200]);
    assert_eq!(sim.messages().len(), 1);
    assert_eq!(sim.messages()[0].id, sent.message_id);

    sim.inject_fault(Fault::server_error(503), 5);
    let no_retries = WhatsAppClient::new(WhatsAppClientConfig { retries: 0, ..config(&sim) }).unwrap();
    let error = no_retries.send_template(&new_order(VENDOR)).await.unwrap_err();
    assert_eq!((error.kind, error.status, error.code), (WhatsAppErrorKind::Transient, Some(503), Some(2)));
}

#[tokio::test]
async fn an_undeliverable_number_is_reported_by_webhook_with_the_callback_data() {
    // Meta accepts the send (a wamid and all) and reports 131026 only in a
    // `failed` status, carrying back the send's biz_opaque_callback_data.
    let (sim, receiver) = sim_with_receiver().await;
    sim.script(&number(VENDOR), RecipientScript::fails(131_026));
    let message = new_order(VENDOR).callback_data("vendor_order_MW-2025-001234");
    let sent = client(&sim).send_template(&message).await.unwrap();
    assert!(sent.message_id.starts_with("wamid."));
    sim.advance(Duration::from_secs(5)).await;
    let failed: Vec<_> = receiver
        .events()
        .into_iter()
        .filter(|e| matches!(e, InboundEvent::Status { status: DeliveryStatus::Failed, .. }))
        .collect();
    match &failed[..] {
        [InboundEvent::Status { message_id, errors, callback_data, .. }] => {
            assert_eq!(message_id, &sent.message_id);
            assert_eq!(errors, &[(131_026, "Message undeliverable".to_string())]);
            assert_eq!(callback_data.as_deref(), Some("vendor_order_MW-2025-001234"));
        }
        other => panic!("one failed status expected: {other:?}"),
    }
}

#[tokio::test]
async fn the_spam_rate_limit_is_not_retried() {
    let sim = sim().await;
    sim.script(&number(VENDOR), RecipientScript::fails(131_048));
    let error = client(&sim).send_template(&new_order(VENDOR)).await.unwrap_err();
    assert_eq!((&error.kind, error.code), (&WhatsAppErrorKind::Permanent, Some(131_048)), "{error}");
    assert!(error.is_rate_limited());
    assert_eq!(sim.received().len(), 1, "131048: a retry only adds to the count");
}

#[tokio::test]
async fn the_pair_rate_limit_waits_six_seconds() {
    let sim = sim().await;
    // Without retries of its own the client hands the 6 s back to the caller.
    sim.script(&number(VENDOR), RecipientScript::fails(131_056));
    let no_retries = WhatsAppClient::new(WhatsAppClientConfig { retries: 0, ..config(&sim) }).unwrap();
    let error = no_retries.send_template(&new_order(VENDOR)).await.unwrap_err();
    assert_eq!((&error.kind, error.code), (&WhatsAppErrorKind::Transient, Some(131_056)), "{error}");
    assert_eq!(error.retry_after, Some(Duration::from_secs(6)));
    // With retries, the next attempt comes no sooner than 6 s later.
    sim.script_sequence(&number(VENDOR), vec![RecipientScript::fails(131_056), RecipientScript::NeverAnswers]);
    let started = std::time::Instant::now();
    let sent = client(&sim).send_template(&new_order(VENDOR)).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(6), "{:?}", started.elapsed());
    let received = sim.received();
    assert_eq!(received.len(), 3, "the refusal without retries, then one refusal and its retry");
    assert_eq!(received[2].message_id.as_deref(), Some(sent.message_id.as_str()));
}

#[tokio::test]
async fn template_names_outside_metas_pattern_are_refused_before_sending() {
    let sim = sim().await;
    for bad in ["Vendor_New_Order", "vendor-new-order", "vendor new order"] {
        let message = TemplateMessage { template: bad.to_string(), ..new_order(VENDOR) };
        let error = client(&sim).send_template(&message).await.unwrap_err();
        assert_eq!(error.field(), Some("template"), "{bad}: {error}");
    }
    assert!(sim.received().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn the_business_accounts_templates_are_listed_page_by_page() {
    let templates = vec![
        ApprovedTemplate::new("vendor_new_order", 3, &["Accept", "Reject"]),
        ApprovedTemplate::new("customer_status", 3, &[]).in_languages(&["hi", "en_US"]),
        ApprovedTemplate::new("customer_delay", 3, &[]).with_status("PENDING"),
    ];
    let config_ = WhatsAppSimConfig { templates, ..WhatsAppSimConfig::manual(start_time()) };
    let sim = WhatsAppSim::start(config_).await.unwrap();
    let listing = WhatsAppClient::new(
        WhatsAppClientConfig::new(sim.phone_number_id(), sim.access_token())
            .with_base_url(Url::parse(sim.base_url()).unwrap())
            .with_business_account_id(sim.business_account_id()),
    )
    .unwrap();
    let listed = listing.list_templates().await.unwrap();
    assert_eq!(listed.len(), 3 + 2 + 3, "one entry per template and language");
    let requests = sim.received();
    assert!(requests[0].path.ends_with(&format!("/{}/message_templates", sim.business_account_id())));
    let problems = check_templates(
        [("vendor_new_order", "hi"), ("customer_status", "en"), ("customer_status", "en_US"), ("customer_delay", "mr")],
        &listed,
    );
    let texts: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        texts,
        [
            "template customer_status does not exist in language en",
            "template customer_delay in language mr is PENDING, not APPROVED",
        ]
    );
    // Without the business account id there is nothing to list.
    assert_eq!(client(&sim).list_templates().await.unwrap_err().field(), Some("business_account_id"));
}

#[tokio::test]
async fn a_timeout_after_sending_is_ambiguous_and_not_retried() {
    let sim = sim().await;
    let impatient =
        WhatsAppClient::new(WhatsAppClientConfig { timeout: Duration::from_millis(300), ..config(&sim) }).unwrap();
    sim.inject_fault(Fault::delay(Duration::from_secs(3)), 1);
    let error = impatient.send_template(&new_order(VENDOR)).await.unwrap_err();
    assert_eq!(error.kind, WhatsAppErrorKind::Ambiguous, "{error}");
    assert!(error.is_ambiguous() && !error.is_transient());
    assert!(error.message.contains("timed out"), "{error}");
    assert_eq!(sim.received().len(), 1, "never retried: it could send twice");
    assert_eq!(sim.messages().len(), 1, "and indeed it was sent");
}

#[tokio::test]
async fn lost_connections_and_gateway_timeouts_are_ambiguous_too() {
    let sim = sim().await;
    let client = client(&sim);
    for fault in [Fault::Drop, Fault::DropAfterProcessing, Fault::GatewayTimeout] {
        sim.clear_log();
        sim.inject_fault(fault, 1);
        let error = client.send_template(&new_order(VENDOR)).await.unwrap_err();
        assert_eq!(error.kind, WhatsAppErrorKind::Ambiguous, "{fault:?}: {error}");
        assert_eq!(sim.received().len(), 1, "{fault:?} is not retried");
    }
    assert_eq!(sim.messages().len(), 2, "the drop-after-processing and the gateway timeout were sent");
}

#[tokio::test]
async fn no_connection_is_transient_and_retried() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let config = WhatsAppClientConfig::new("106540352242922", "token")
        .with_base_url(Url::parse(&format!("http://{closed}")).unwrap());
    let client = WhatsAppClient::new(WhatsAppClientConfig { retry_base: Duration::from_millis(1), ..config }).unwrap();
    let error = client.send_template(&new_order(VENDOR)).await.unwrap_err();
    assert_eq!(error.kind, WhatsAppErrorKind::Transient, "{error}");
    assert!(error.message.starts_with("could not connect"), "{error}");
    assert!(!error.message().contains("9876543210"));
}

#[tokio::test]
async fn a_button_reply_comes_back_signed_with_the_template_as_context() {
    let (sim, receiver) = sim_with_receiver().await;
    sim.script(&number(VENDOR), RecipientScript::replies_button(0, Duration::from_secs(30)));
    let sent = client(&sim).send_template(&new_order(VENDOR)).await.unwrap();

    sim.advance(Duration::from_secs(29)).await;
    let statuses: Vec<DeliveryStatus> = receiver
        .events()
        .into_iter()
        .map(|e| match e {
            InboundEvent::Status { status, message_id, recipient, .. } => {
                assert_eq!((message_id.as_str(), recipient), (sent.message_id.as_str(), Some(number(VENDOR))));
                status
            }
            other => panic!("only statuses yet: {other:?}"),
        })
        .collect();
    assert_eq!(statuses, [DeliveryStatus::Sent, DeliveryStatus::Delivered]);

    sim.advance(Duration::from_secs(1)).await;
    let events = receiver.events();
    assert_eq!(events.len(), 4, "{events:#?}");
    assert!(matches!(events[2], InboundEvent::Status { status: DeliveryStatus::Read, .. }));
    let InboundEvent::ButtonReply { from, message_id, context_message_id, payload, text, timestamp } = &events[3]
    else {
        panic!("a button reply: {:?}", events[3]);
    };
    assert_eq!(from, &number(VENDOR));
    assert_eq!(payload, "accept:MW-2025-001234");
    assert_eq!(text, "Accept");
    assert_eq!(context_message_id.as_deref(), Some(sent.message_id.as_str()));
    assert_eq!(*timestamp, start_time() + chrono::Duration::seconds(30));
    assert!(message_id.starts_with("wamid.") && message_id != &sent.message_id);

    let log = sim.webhooks_for(&sent.message_id);
    assert_eq!(log.len(), 4);
    assert!(log.iter().all(|w| w.response_status == Some(200)));
    assert_eq!(log[3].kind, WebhookKind::ButtonReply);
    assert_eq!(sim.message(&sent.message_id).unwrap().statuses, ["sent", "delivered", "read"]);

    let genuine = &receiver.deliveries()[3];
    let mut forged = genuine.body.to_vec();
    let at = forged.windows(6).position(|w| w == b"accept").unwrap();
    forged[at..at + 6].copy_from_slice(b"reject");
    assert!(!verify_signature(APP_SECRET, &forged, genuine.signature.as_deref()), "a changed body fails");
    assert!(!verify_signature("another-secret", &genuine.body, genuine.signature.as_deref()));
    assert!(client(&sim).verify_webhook(&genuine.body, genuine.signature.as_deref()));
}

#[tokio::test]
async fn the_other_scripts_arrive_as_webhooks() {
    let (sim, receiver) = sim_with_receiver().await;
    let vendor = number(VENDOR);
    sim.script_sequence(
        &vendor,
        vec![
            RecipientScript::fails(131_047),
            RecipientScript::replies_text("10 minute mein ready", Duration::from_secs(5)),
            RecipientScript::NeverAnswers,
        ],
    );
    let client = client(&sim);
    let failing = client.send_template(&new_order(VENDOR)).await.unwrap();
    let texted = client.send_template(&new_order(VENDOR)).await.unwrap();
    let ignored = client.send_template(&new_order(VENDOR)).await.unwrap();
    let inbound = sim.inbound_text(&number(RIDER), "rasta band hai");
    sim.advance(Duration::from_secs(60)).await;

    let events = receiver.events();
    let about = |id: &str| -> Vec<&InboundEvent> {
        events
            .iter()
            .filter(|e| match e {
                InboundEvent::Status { message_id, .. } => message_id == id,
                _ => false,
            })
            .collect()
    };
    assert!(
        matches!(about(&failing.message_id)[..], [InboundEvent::Status { status: DeliveryStatus::Failed, errors, .. }]
        if errors == &[(131_047, "Re-engagement message".to_string())])
    );
    assert_eq!(about(&texted.message_id).len(), 3, "sent, delivered, read");
    assert_eq!(about(&ignored.message_id).len(), 2, "sent, delivered");
    let texts: Vec<(&E164, &str, &str)> = events
        .iter()
        .filter_map(|e| match e {
            InboundEvent::Text { from, body, message_id, .. } => Some((from, body.as_str(), message_id.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(texts.len(), 2);
    assert_eq!((texts[0].0, texts[0].1, texts[0].2), (&number(RIDER), "rasta band hai", inbound.as_str()));
    assert_eq!((texts[1].0, texts[1].1), (&vendor, "10 minute mein ready"));
    assert_eq!(sim.pending_events(), 0);
}

#[tokio::test]
async fn the_subscription_handshake_round_trips() {
    let (sim, _receiver) = sim_with_receiver().await;
    assert_eq!(sim.subscribe(VERIFY_TOKEN).await, Ok(true));
    assert_eq!(sim.subscribe("someone-else").await, Ok(false));
}
