//! The production push client against the push simulator over real HTTP,
//! both backends: the OAuth grant and its cache, refresh on expiry and on
//! 401, FCM's permanent and transient errors, `Retry-After`, dropped
//! connections, a wrong key, and the app backend.
//!
//! The client's clock is the simulator's: its waits move simulated time
//! instead of sleeping, so token expiry and `Retry-After` cost no real time.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use mangwale_providers::push::{
    AppBackendConfig, FCM_SCOPE, FcmConfig, PushBackend, PushClient, PushClientConfig, PushClock, PushConfig, PushEnv,
    PushErrorKind, PushMessage, Recipient, RetryPolicy, ServiceAccountKey,
};
use mangwale_sim::SimClock;
use mangwale_sim::push::{
    AuthUsed, OTHER_TEST_PRIVATE_KEY_PEM, PushEndpoint, PushFault, PushScript, PushSim, PushSimConfig,
};
use serde_json::json;

/// The client's clock, driven by the simulator's manual clock: `sleep`
/// records the wait and moves simulated time by it.
#[derive(Debug, Clone)]
struct SimTime {
    sim: PushSim,
    slept: Arc<Mutex<Vec<Duration>>>,
}

impl SimTime {
    fn slept(&self) -> Vec<Duration> {
        self.slept.lock().unwrap().clone()
    }
}

impl mangwale_core::clock::Clock for SimTime {
    fn now(&self) -> DateTime<Utc> {
        self.sim.now()
    }
}

impl PushClock for SimTime {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        self.slept.lock().unwrap().push(duration);
        self.sim.advance(duration);
        Box::pin(async {})
    }
}

async fn sim_with(config: PushSimConfig) -> PushSim {
    let start = DateTime::from_timestamp(1_767_238_200, 0).unwrap();
    PushSim::start(PushSimConfig { clock: SimClock::manual(start), ..config }).await.unwrap()
}

async fn sim() -> PushSim {
    sim_with(PushSimConfig::default()).await
}

fn push_client(sim: &PushSim, backend: PushConfig) -> (PushClient, SimTime) {
    let time = SimTime { sim: sim.clone(), slept: Arc::default() };
    let mut config = PushClientConfig::new(backend);
    config.retry = RetryPolicy { max_retries: 3, base: Duration::from_millis(200), cap: Duration::from_secs(10) };
    (PushClient::with_clock(config, Arc::new(time.clone())), time)
}

fn fcm_config(sim: &PushSim, key_json: &str) -> PushConfig {
    let key = ServiceAccountKey::from_json(key_json).unwrap();
    PushConfig::Fcm(FcmConfig::new(sim.project_id(), key).with_base_url(sim.url()))
}

async fn fcm() -> (PushSim, PushClient, SimTime) {
    let sim = sim().await;
    let (client, time) = push_client(&sim, fcm_config(&sim, &sim.service_account_json()));
    (sim, client, time)
}

async fn app() -> (PushSim, PushClient, SimTime) {
    let sim = sim().await;
    let backend = AppBackendConfig::new(sim.url().parse().unwrap(), sim.app_api_key());
    let (client, time) = push_client(&sim, PushConfig::AppBackend(backend));
    (sim, client, time)
}

fn new_order(vendor: &str) -> PushMessage {
    PushMessage::new(Recipient::vendor(vendor), "New order #1042", "2 items, ₹325, pickup in 15 min")
        .with_data("orderId", "1042")
        .with_data("action", "accept_order")
        .with_collapse_key("order-1042")
}

fn statuses(sim: &PushSim, endpoint: PushEndpoint) -> Vec<Option<u16>> {
    sim.received_on(endpoint).iter().map(|r| r.status).collect()
}

// -- FCM ---------------------------------------------------------------------

#[tokio::test]
async fn fcm_sends_the_v1_message_to_the_recipients_topic() {
    let (sim, client, _) = fcm().await;
    assert_eq!(client.backend(), PushBackend::Fcm);
    let sent = client.send(&new_order("V-42")).await.unwrap();

    let deliveries = sim.deliveries();
    assert_eq!(deliveries.len(), 1);
    let delivery = &deliveries[0];
    assert_eq!(sent.provider_id, delivery.message_id);
    assert_eq!((delivery.via, delivery.recipient.as_str()), (PushEndpoint::FcmSend, "vendor_V-42"));
    assert_eq!(delivery.ttl, Some(Duration::from_secs(300)));
    assert_eq!(delivery.priority.as_deref(), Some("high"));

    let send = &sim.received_on(PushEndpoint::FcmSend)[0];
    assert_eq!(send.path, format!("/v1/projects/{}/messages:send", sim.project_id()));
    assert_eq!(
        send.message().unwrap(),
        &json!({
            "topic": "vendor_V-42",
            "notification": {"title": "New order #1042", "body": "2 items, ₹325, pickup in 15 min"},
            "data": {"action": "accept_order", "orderId": "1042"},
            "android": {"priority": "high", "ttl": "300s", "collapse_key": "order-1042"},
            "apns": {"headers": {
                "apns-priority": "10",
                "apns-expiration": (sim.now().timestamp() + 300).to_string(),
                "apns-collapse-id": "order-1042",
            }},
        })
    );
    assert_eq!(send.bearer_token(), Some(sim.issued_tokens()[0].token.as_str()));
}

#[tokio::test]
async fn the_grant_is_an_rs256_assertion_and_its_token_is_fetched_once_and_reused() {
    let (sim, client, _) = fcm().await;
    let (one, two, three) = (new_order("V-1"), new_order("V-2"), new_order("V-3"));
    let clone = client.clone();
    let (a, b, c) = tokio::join!(client.send(&one), client.send(&two), clone.send(&three));
    a.unwrap();
    b.unwrap();
    c.unwrap();
    client.send(&new_order("V-4")).await.unwrap();

    let grants = sim.received_on(PushEndpoint::Token);
    assert_eq!(grants.len(), 1, "concurrent sends wait for one grant");
    let AuthUsed::JwtGrant { kid, claims } = &grants[0].auth else { panic!("a JWT grant: {:?}", grants[0].auth) };
    assert_eq!(kid.as_deref(), Some(sim.config().private_key_id.as_str()));
    assert_eq!(claims["iss"], sim.config().client_email.as_str());
    assert_eq!(claims["aud"], sim.token_uri().as_str());
    assert_eq!(claims["scope"], FCM_SCOPE);
    assert_eq!(claims["iat"].as_i64(), Some(sim.now().timestamp()));
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 3600);
    let form = &grants[0].form;
    assert!(form.contains(&("grant_type".into(), "urn:ietf:params:oauth:grant-type:jwt-bearer".into())));

    let token = &sim.issued_tokens()[0].token;
    let sends = sim.received_on(PushEndpoint::FcmSend);
    assert_eq!(sends.len(), 4);
    assert!(sends.iter().all(|s| s.bearer_token() == Some(token.as_str()) && s.status == Some(200)));
}

#[tokio::test]
async fn the_token_is_refreshed_shortly_before_it_expires() {
    let (sim, client, _) = fcm().await;
    client.send(&new_order("V-42")).await.unwrap();
    sim.advance(Duration::from_secs(3000));
    client.send(&new_order("V-42")).await.unwrap();
    assert_eq!(sim.issued_tokens().len(), 1, "still well within its hour");
    sim.advance(Duration::from_secs(301));
    client.send(&new_order("V-42")).await.unwrap();

    let tokens = sim.issued_tokens();
    assert_eq!(tokens.len(), 2, "replaced five minutes before expiry");
    assert_eq!(statuses(&sim, PushEndpoint::FcmSend), vec![Some(200); 3], "never sent with an expired token");
    assert_eq!(sim.received_on(PushEndpoint::FcmSend)[2].bearer_token(), Some(tokens[1].token.as_str()));
}

#[tokio::test]
async fn a_short_lived_token_is_refreshed_at_half_its_life() {
    let sim = sim_with(PushSimConfig { token_lifetime: Duration::from_secs(60), ..PushSimConfig::default() }).await;
    let (client, _) = push_client(&sim, fcm_config(&sim, &sim.service_account_json()));
    client.send(&new_order("V-42")).await.unwrap();
    sim.advance(Duration::from_secs(29));
    client.send(&new_order("V-42")).await.unwrap();
    assert_eq!(sim.issued_tokens().len(), 1);
    sim.advance(Duration::from_secs(1));
    client.send(&new_order("V-42")).await.unwrap();
    assert_eq!(sim.issued_tokens().len(), 2);
}

#[tokio::test]
async fn a_401_fetches_a_new_token_once() {
    let (sim, client, time) = fcm().await;
    client.send(&new_order("V-42")).await.unwrap();
    sim.revoke_tokens();
    client.send(&new_order("V-42")).await.unwrap();

    assert_eq!(statuses(&sim, PushEndpoint::FcmSend), vec![Some(200), Some(401), Some(200)]);
    let tokens = sim.issued_tokens();
    assert_eq!(tokens.len(), 2);
    assert_eq!(sim.received_on(PushEndpoint::FcmSend)[2].bearer_token(), Some(tokens[1].token.as_str()));
    assert!(time.slept().is_empty(), "a refresh is not a retry: no backoff");
}

#[tokio::test]
async fn a_401_that_survives_a_fresh_token_is_a_permanent_auth_error() {
    let (sim, client, _) = fcm().await;
    sim.inject_fault(PushEndpoint::FcmSend, PushFault::status(401), 5);
    let error = client.send(&new_order("V-42")).await.unwrap_err();
    assert_eq!((error.kind, error.status, error.operation), (PushErrorKind::Auth, Some(401), "send"));
    assert!(error.is_permanent() && error.message().contains("fresh access token"), "{}", error.message());
    assert_eq!(statuses(&sim, PushEndpoint::FcmSend), vec![Some(401), Some(401)], "one refresh, no retries");
    assert_eq!(sim.issued_tokens().len(), 2);
}

#[tokio::test]
async fn a_third_party_auth_error_is_permanent_and_keeps_the_token() {
    let (sim, client, _) = fcm().await;
    sim.script("vendor_V-42", PushScript::Fails { status: 401 });
    let error = client.send(&new_order("V-42")).await.unwrap_err();
    assert_eq!((error.kind, error.code.as_deref()), (PushErrorKind::Auth, Some("THIRD_PARTY_AUTH_ERROR")));
    assert_eq!(sim.issued_tokens().len(), 1, "APNs credentials are not our token");
    assert_eq!(sim.received_on(PushEndpoint::FcmSend).len(), 1);

    sim.script("vendor_V-43", PushScript::Fails { status: 403 });
    let error = client.send(&new_order("V-43")).await.unwrap_err();
    assert_eq!((error.kind, error.code.as_deref()), (PushErrorKind::Auth, Some("SENDER_ID_MISMATCH")));
}

#[tokio::test]
async fn unregistered_is_a_token_error_permanent_and_not_retried() {
    let (sim, client, time) = fcm().await;
    sim.script("device-token-V-42", PushScript::Unregistered);
    let error = client.send(&new_order("V-42").with_token("device-token-V-42")).await.unwrap_err();
    assert_eq!(error.kind, PushErrorKind::Unregistered);
    assert_eq!((error.status, error.code.as_deref()), (Some(404), Some("UNREGISTERED")));
    assert!(error.is_permanent() && error.is_unregistered());
    assert_eq!(sim.received_on(PushEndpoint::FcmSend).len(), 1);
    assert!(sim.deliveries().is_empty() && time.slept().is_empty());
    client.send(&new_order("V-7")).await.expect("other vendors still get pushes");
}

#[tokio::test]
async fn a_topic_nobody_subscribes_to_is_accepted() {
    let (sim, client, _) = fcm().await;
    sim.script("vendor_V-42", PushScript::Unregistered);
    client.send(&new_order("V-42")).await.expect("FCM accepts a topic without subscribers");
    assert_eq!(statuses(&sim, PushEndpoint::FcmSend), vec![Some(200)]);
}

#[tokio::test]
async fn topic_messages_are_capped_at_2048_bytes_and_carry_no_phone_number() {
    let (sim, client, _) = fcm().await;
    let big = new_order("V-42").with_data("items", "x".repeat(2048));
    let error = client.send(&big).await.unwrap_err();
    assert_eq!(error.kind, PushErrorKind::Invalid, "{error}");
    assert!(error.message.contains("at most 2048"), "{error}");
    let personal = new_order("V-42").with_data("customerPhone", "+919876543210");
    assert_eq!(client.send(&personal).await.unwrap_err().kind, PushErrorKind::Invalid);
    assert!(sim.received_on(PushEndpoint::FcmSend).is_empty(), "refused before sending");
    // To one device's registration token, FCM's 4,096 bytes apply.
    client.send(&big.with_token("device-token-V-42")).await.unwrap();
    let sent = &sim.received_on(PushEndpoint::FcmSend)[0];
    assert_eq!(sent.message().unwrap()["token"], "device-token-V-42");
}

#[tokio::test]
async fn unavailable_is_retried_with_backoff_until_it_succeeds() {
    let (sim, client, time) = fcm().await;
    sim.inject_fault(PushEndpoint::FcmSend, PushFault::status(503), 2);
    client.send(&new_order("V-42")).await.unwrap();
    assert_eq!(statuses(&sim, PushEndpoint::FcmSend), vec![Some(503), Some(503), Some(200)]);
    assert_eq!(sim.deliveries().len(), 1);
    let slept = time.slept();
    assert_eq!(slept.len(), 2);
    assert!((Duration::from_millis(100)..=Duration::from_millis(200)).contains(&slept[0]), "{slept:?}");
    assert!((Duration::from_millis(200)..=Duration::from_millis(400)).contains(&slept[1]), "{slept:?}");
}

#[tokio::test]
async fn an_outage_longer_than_the_retries_is_a_transient_error() {
    let (sim, client, _) = fcm().await;
    sim.inject_fault(PushEndpoint::FcmSend, PushFault::status(500), 10);
    let error = client.send(&new_order("V-42")).await.unwrap_err();
    assert!(error.is_transient(), "{}", error.message());
    assert_eq!((error.status, error.code.as_deref()), (Some(500), Some("INTERNAL")));
    assert_eq!(sim.received_on(PushEndpoint::FcmSend).len(), 4, "the first attempt and three retries");
}

#[tokio::test]
async fn quota_exceeded_waits_at_least_a_minute() {
    let (sim, client, time) = fcm().await;
    // FCM asks for at least a minute after QUOTA_EXCEEDED, whatever its
    // Retry-After says: longer than the client's cap, so the wait is
    // handed back to the caller's queue instead of holding a worker.
    sim.inject_fault(PushEndpoint::FcmSend, PushFault::rate_limited(2), 1);
    let error = client.send(&new_order("V-42")).await.unwrap_err();
    assert!(error.is_transient());
    assert_eq!((error.code.as_deref(), error.retry_after()), (Some("QUOTA_EXCEEDED"), Some(Duration::from_secs(60))));
    assert!(time.slept().is_empty(), "no retry within the minute");
    assert_eq!(statuses(&sim, PushEndpoint::FcmSend), vec![Some(429)]);

    // A longer Retry-After wins.
    sim.inject_fault(PushEndpoint::FcmSend, PushFault::rate_limited(3600), 1);
    let error = client.send(&new_order("V-42")).await.unwrap_err();
    assert_eq!((error.code.as_deref(), error.retry_after()), (Some("QUOTA_EXCEEDED"), Some(Duration::from_secs(3600))));
    assert_eq!(sim.received_on(PushEndpoint::FcmSend).len(), 2, "not retried");
    client.send(&new_order("V-42")).await.expect("after the wait it goes out");
}

/// A push whose answer was lost is sent again. FCM de-duplicates nothing,
/// so when FCM had accepted it the vendor gets it twice; we choose that,
/// since a duplicate "new order" buzz is harmless and a missed order is not.
#[tokio::test]
async fn a_dropped_connection_is_retried_even_if_that_may_deliver_twice() {
    let (sim, client, _) = fcm().await;
    sim.inject_fault(PushEndpoint::FcmSend, PushFault::Drop, 1);
    client.send(&new_order("V-42")).await.unwrap();
    let sends = sim.received_on(PushEndpoint::FcmSend);
    assert!(sends[0].dropped && sends[1].status == Some(200));
    assert_eq!(sim.deliveries().len(), 1, "dropped before FCM took it");

    sim.clear_log();
    sim.inject_fault(PushEndpoint::FcmSend, PushFault::DropAfterProcessing, 1);
    let sent = client.send(&new_order("V-42")).await.unwrap();
    let deliveries = sim.deliveries();
    assert_eq!(deliveries.len(), 2, "delivered, answer lost, delivered again");
    assert_eq!(deliveries[0].collapse_key, deliveries[1].collapse_key, "an offline device keeps one of them");
    assert_eq!(sent.provider_id, deliveries[1].message_id);
}

#[tokio::test]
async fn a_failing_token_endpoint_is_retried() {
    let (sim, client, _) = fcm().await;
    sim.inject_fault(PushEndpoint::Token, PushFault::status(503), 1);
    sim.inject_fault(PushEndpoint::Token, PushFault::Drop, 1);
    client.send(&new_order("V-42")).await.unwrap();
    let grants = sim.received_on(PushEndpoint::Token);
    assert_eq!((grants.len(), grants[0].status, grants[1].dropped, grants[2].status), (3, Some(503), true, Some(200)));
    assert_eq!(sim.deliveries().len(), 1);
}

#[tokio::test]
async fn a_wrong_service_account_key_is_a_permanent_auth_error() {
    let sim = sim().await;
    let (client, time) =
        push_client(&sim, fcm_config(&sim, &sim.service_account_json_with_key(OTHER_TEST_PRIVATE_KEY_PEM)));
    let error = client.send(&new_order("V-42")).await.unwrap_err();
    assert_eq!((error.kind, error.operation, error.status), (PushErrorKind::Auth, "token", Some(400)));
    assert_eq!(error.code.as_deref(), Some("invalid_grant"));
    assert!(error.is_permanent() && error.message().contains("Invalid JWT Signature"), "{}", error.message());
    assert_eq!(sim.received_on(PushEndpoint::Token).len(), 1, "not retried");
    assert!(sim.received_on(PushEndpoint::FcmSend).is_empty() && sim.issued_tokens().is_empty());
    assert!(time.slept().is_empty());
}

#[tokio::test]
async fn another_project_is_refused_as_an_auth_error() {
    let sim = sim().await;
    let key = ServiceAccountKey::from_json(&sim.service_account_json()).unwrap();
    let backend = PushConfig::Fcm(FcmConfig::new("someone-elses", key).with_base_url(sim.url()));
    let (client, _) = push_client(&sim, backend);
    let error = client.send(&new_order("V-42")).await.unwrap_err();
    assert_eq!(
        (error.kind, error.status, error.code.as_deref()),
        (PushErrorKind::Auth, Some(403), Some("PERMISSION_DENIED"))
    );
}

#[tokio::test]
async fn a_message_fcm_refuses_is_rejected_and_ids_are_made_topic_safe() {
    let (sim, client, _) = fcm().await;
    let reserved = new_order("V-42").with_data("from", "ivr");
    let error = client.send(&reserved).await.unwrap_err();
    assert_eq!((error.kind, error.code.as_deref()), (PushErrorKind::Rejected, Some("INVALID_ARGUMENT")));
    assert_eq!(sim.received_on(PushEndpoint::FcmSend).len(), 1);

    client
        .send(&PushMessage::new(Recipient::customer("C 42/ä"), "Out for delivery", "Ravi is on the way"))
        .await
        .unwrap();
    assert_eq!(sim.deliveries()[0].recipient, "customer_C%2042%2F%C3%A4");

    let error = client.send(&PushMessage::new(Recipient::rider(" "), "t", "b")).await.unwrap_err();
    assert_eq!(error.kind, PushErrorKind::Invalid);
    assert_eq!(sim.received_on(PushEndpoint::FcmSend).len(), 2, "nothing sent for an empty id");
}

#[tokio::test]
async fn the_configuration_from_env_values_reaches_the_simulator() {
    let sim = sim().await;
    let key_file = sim.service_account_json();
    let url = sim.url();
    let vars =
        [("PUSH_PROVIDER", "fcm"), ("FCM_SERVICE_ACCOUNT_JSON", key_file.as_str()), ("FCM_BASE_URL", url.as_str())];
    let env = PushEnv::from_lookup(|name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string()));
    let (client, _) = push_client(&sim, PushConfig::from_env(&env).unwrap());
    client.send(&new_order("V-42")).await.unwrap();
    assert_eq!(sim.deliveries().len(), 1);

    let key = sim.app_api_key().to_string();
    let vars = [("PUSH_PROVIDER", "app"), ("APP_PUSH_URL", url.as_str()), ("APP_PUSH_API_KEY", key.as_str())];
    let env = PushEnv::from_lookup(|name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string()));
    let (client, _) = push_client(&sim, PushConfig::from_env(&env).unwrap());
    client.send(&new_order("V-42")).await.unwrap();
    assert_eq!(sim.deliveries()[1].via, PushEndpoint::AppSend);
}

// -- the app backend -----------------------------------------------------------

#[tokio::test]
async fn the_app_backend_gets_its_own_shape_with_the_api_key() {
    let (sim, client, _) = app().await;
    assert_eq!(client.backend(), PushBackend::AppBackend);
    let sent = client.send(&new_order("V-42").with_ttl(Duration::from_secs(120))).await.unwrap();

    let request = &sim.received_on(PushEndpoint::AppSend)[0];
    assert_eq!(request.auth, AuthUsed::ApiKey { key: sim.app_api_key().to_string() });
    assert_eq!(
        request.body.as_ref().unwrap(),
        &json!({
            "recipientType": "vendor", "recipientId": "V-42",
            "title": "New order #1042", "body": "2 items, ₹325, pickup in 15 min",
            "data": {"action": "accept_order", "orderId": "1042"},
            "ttlSeconds": 120, "collapseKey": "order-1042",
        })
    );
    let delivery = &sim.deliveries()[0];
    assert_eq!((delivery.via, delivery.recipient.as_str()), (PushEndpoint::AppSend, "vendor_V-42"));
    assert_eq!(sent.provider_id, delivery.message_id);
    assert!(sim.issued_tokens().is_empty());
}

#[tokio::test]
async fn the_app_backend_errors_are_classified() {
    let (sim, client, time) = app().await;
    sim.script("customer_C-7", PushScript::Unregistered);
    let to_customer = PushMessage::new(Recipient::customer("C-7"), "Delivered", "Enjoy your meal");
    let error = client.send(&to_customer).await.unwrap_err();
    assert_eq!((error.kind, error.status), (PushErrorKind::Unregistered, Some(404)));
    assert_eq!(error.message, "no device registered");

    sim.script("rider_R-1", PushScript::Fails { status: 422 });
    let error = client.send(&PushMessage::new(Recipient::rider("R-1"), "t", "b")).await.unwrap_err();
    assert_eq!(error.kind, PushErrorKind::Rejected);
    assert_eq!(sim.received_on(PushEndpoint::AppSend).len(), 2, "permanent errors are not retried");

    sim.inject_fault(PushEndpoint::AppSend, PushFault::status(502), 1);
    sim.inject_fault(PushEndpoint::AppSend, PushFault::rate_limited(1), 1);
    client.send(&new_order("V-42")).await.unwrap();
    assert_eq!(time.slept().last(), Some(&Duration::from_secs(1)), "Retry-After honoured");
    assert_eq!(statuses(&sim, PushEndpoint::AppSend)[2..], [Some(502), Some(429), Some(200)]);

    sim.inject_fault(PushEndpoint::AppSend, PushFault::DropAfterProcessing, 1);
    client.send(&new_order("V-42")).await.unwrap();
    assert_eq!(sim.deliveries().len(), 3, "retried after a lost answer, delivered twice");
}

#[tokio::test]
async fn a_wrong_app_api_key_is_a_permanent_auth_error() {
    let sim = sim().await;
    let backend = AppBackendConfig::new(sim.url().parse().unwrap(), "not-the-key");
    let (client, _) = push_client(&sim, PushConfig::AppBackend(backend));
    let error = client.send(&new_order("V-42")).await.unwrap_err();
    assert_eq!((error.kind, error.status), (PushErrorKind::Auth, Some(401)));
    assert_eq!(sim.received_on(PushEndpoint::AppSend).len(), 1);

    let wrong_url = AppBackendConfig::new(format!("{}/nothing-here", sim.url()).parse().unwrap(), sim.app_api_key());
    let (client, _) = push_client(&sim, PushConfig::AppBackend(wrong_url));
    let error = client.send(&new_order("V-42")).await.unwrap_err();
    assert_eq!(error.kind, PushErrorKind::Rejected, "a bare 404 is a wrong URL, not a missing device");
    assert!(error.message().contains("APP_PUSH_URL"), "{}", error.message());
}
