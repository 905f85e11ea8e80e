//! The push simulator over raw HTTP: the token endpoint's checks of the
//! JWT-bearer grant, FCM's authorisation and message checks, the app
//! backend's, and the control endpoints.

use std::time::Duration;

use chrono::DateTime;
use mangwale_sim::SimClock;
use mangwale_sim::push::{
    FCM_SCOPE, OTHER_TEST_PRIVATE_KEY_PEM, PushEndpoint, PushSim, PushSimConfig, TEST_PRIVATE_KEY_PEM, sign_jwt,
};
use serde_json::{Value, json};

async fn sim() -> PushSim {
    let start = DateTime::from_timestamp(1_767_238_200, 0).unwrap();
    PushSim::start(PushSimConfig { clock: SimClock::manual(start), ..PushSimConfig::default() }).await.unwrap()
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

fn claims(sim: &PushSim) -> Value {
    let iat = sim.now().timestamp();
    json!({
        "iss": sim.config().client_email,
        "scope": FCM_SCOPE,
        "aud": sim.token_uri(),
        "iat": iat,
        "exp": iat + 3600,
    })
}

fn header(sim: &PushSim) -> Value {
    json!({"alg": "RS256", "typ": "JWT", "kid": sim.config().private_key_id})
}

async fn grant_with(sim: &PushSim, grant_type: &str, assertion: &str) -> (u16, Value) {
    let response = http()
        .post(sim.token_uri())
        .form(&[("grant_type", grant_type), ("assertion", assertion)])
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

async fn grant(sim: &PushSim, header: &Value, claims: &Value, key: &str) -> (u16, Value) {
    let jwt = sign_jwt(header, claims, key).unwrap();
    grant_with(sim, "urn:ietf:params:oauth:grant-type:jwt-bearer", &jwt).await
}

async fn token(sim: &PushSim) -> String {
    let (status, body) = grant(sim, &header(sim), &claims(sim), TEST_PRIVATE_KEY_PEM).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_string()
}

async fn fcm_send(sim: &PushSim, token: Option<&str>, body: &Value) -> (u16, Value) {
    let url = format!("{}/v1/projects/{}/messages:send", sim.url(), sim.project_id());
    let mut request = http().post(url).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

fn fcm_code(body: &Value) -> Option<&str> {
    body["error"]["details"].as_array()?.iter().find_map(|d| d["errorCode"].as_str())
}

/// Named `push::…` so that `cargo test -p mangwale-sim push` selects them.
mod push {
    use super::*;

    #[tokio::test]
    async fn the_token_endpoint_issues_bearer_tokens_for_a_valid_grant() {
        let sim = sim().await;
        let (status, body) = grant(&sim, &header(&sim), &claims(&sim), TEST_PRIVATE_KEY_PEM).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!((body["token_type"].as_str(), body["expires_in"].as_u64()), (Some("Bearer"), Some(3600)));
        let issued = &sim.issued_tokens()[0];
        assert_eq!(body["access_token"].as_str(), Some(issued.token.as_str()));
        assert_eq!(issued.scopes, vec![FCM_SCOPE.to_string()]);
        assert_eq!(issued.expires_at - issued.issued_at, chrono::Duration::hours(1));
    }

    #[tokio::test]
    async fn the_token_endpoint_refuses_bad_grants_as_google_does() {
        let sim = sim().await;
        let refused = |(status, body): (u16, Value)| (status, body["error"].as_str().unwrap_or_default().to_string());
        let bad = |s: &str| (400, s.to_string());

        let other_key = grant(&sim, &header(&sim), &claims(&sim), OTHER_TEST_PRIVATE_KEY_PEM).await;
        assert_eq!(other_key.1["error_description"], "Invalid JWT Signature.");
        assert_eq!(refused(other_key), bad("invalid_grant"));
        let wrong_kid = json!({"alg": "RS256", "typ": "JWT", "kid": "another-key"});
        assert_eq!(refused(grant(&sim, &wrong_kid, &claims(&sim), TEST_PRIVATE_KEY_PEM).await), bad("invalid_grant"));
        let hs256 = json!({"alg": "HS256", "typ": "JWT"});
        assert_eq!(refused(grant(&sim, &hs256, &claims(&sim), TEST_PRIVATE_KEY_PEM).await), bad("invalid_grant"));

        let mut tampered = sign_jwt(&header(&sim), &claims(&sim), TEST_PRIVATE_KEY_PEM).unwrap();
        tampered.insert(tampered.find('.').unwrap() + 1, 'e');
        let jwt_bearer = "urn:ietf:params:oauth:grant-type:jwt-bearer";
        assert_eq!(refused(grant_with(&sim, jwt_bearer, &tampered).await), bad("invalid_grant"));
        assert_eq!(refused(grant_with(&sim, jwt_bearer, "not.a.jwt").await), bad("invalid_grant"));
        assert_eq!(refused(grant_with(&sim, "client_credentials", "x").await), bad("unsupported_grant_type"));

        for (name, value) in [
            ("iss", json!("someone@else.iam.gserviceaccount.com")),
            ("aud", json!("https://oauth2.googleapis.com/token")),
            ("exp", json!(sim.now().timestamp() - 1)),
            ("exp", json!(sim.now().timestamp() + 7200)),
            ("iat", json!(sim.now().timestamp() + 3000)),
        ] {
            let mut claims = claims(&sim);
            claims[name] = value;
            assert_eq!(
                refused(grant(&sim, &header(&sim), &claims, TEST_PRIVATE_KEY_PEM).await),
                bad("invalid_grant"),
                "{name}"
            );
        }
        let mut no_scope = claims(&sim);
        no_scope.as_object_mut().unwrap().remove("scope");
        assert_eq!(refused(grant(&sim, &header(&sim), &no_scope, TEST_PRIVATE_KEY_PEM).await), bad("invalid_scope"));

        assert!(sim.issued_tokens().is_empty());
        let grants = sim.received_on(PushEndpoint::Token);
        assert!(grants.iter().all(|g| g.status == Some(400) && g.error.is_some()), "every refusal is logged");
    }

    #[tokio::test]
    async fn fcm_requires_a_live_token_with_the_messaging_scope() {
        let sim = sim().await;
        let message = json!({"message": {"topic": "vendor_V-42", "notification": {"title": "t", "body": "b"}}});
        let (status, body) = fcm_send(&sim, None, &message).await;
        assert_eq!((status, body["error"]["status"].as_str()), (401, Some("UNAUTHENTICATED")));
        let (status, _) = fcm_send(&sim, Some("ya29.made-up"), &message).await;
        assert_eq!(status, 401);

        let token = token(&sim).await;
        let (status, body) = fcm_send(&sim, Some(&token), &message).await;
        assert_eq!(status, 200, "{body}");
        let name = body["name"].as_str().unwrap();
        assert!(name.starts_with(&format!("projects/{}/messages/0:", sim.project_id())), "{name}");

        sim.advance(Duration::from_secs(3600));
        let (status, _) = fcm_send(&sim, Some(&token), &message).await;
        assert_eq!(status, 401, "expired");

        let mut other_scope = claims(&sim);
        other_scope["scope"] = json!("https://www.googleapis.com/auth/userinfo.email");
        let (_, body) = grant(&sim, &header(&sim), &other_scope, TEST_PRIVATE_KEY_PEM).await;
        let (status, body) = fcm_send(&sim, body["access_token"].as_str(), &message).await;
        assert_eq!((status, body["error"]["status"].as_str()), (403, Some("PERMISSION_DENIED")));
    }

    #[tokio::test]
    async fn fcm_checks_messages_and_answers_invalid_argument() {
        let sim = sim().await;
        let token = token(&sim).await;
        for message in [
            json!({"topic": "vendor V-42"}),
            json!({"topic": "a", "token": "b"}),
            json!({"topic": "t", "data": {"orderId": 1042}}),
            json!({"topic": "t", "android": {"ttl": "300"}}),
            json!({"topic": "t", "android": {"priority": "urgent"}}),
            json!({"topic": "t", "notification": {"title": "t", "subtitle": "s"}}),
            // FCM's 2,048 bytes of a topic message, keys and values.
            json!({"topic": "t", "data": {"items": "x".repeat(2048)}}),
            json!({"topic": "t", "apns": {"headers": {"apns-expiration": "in an hour"}}}),
            json!({"topic": "t", "apns": {"headers": {"apns-collapse-id": "c".repeat(65)}}}),
        ] {
            let (status, body) = fcm_send(&sim, Some(&token), &json!({"message": message})).await;
            assert_eq!((status, body["error"]["status"].as_str()), (400, Some("INVALID_ARGUMENT")), "{message}");
        }
        assert!(sim.deliveries().is_empty());
        let to_device = json!({"message": {"token": "device-token-1", "data": {"items": "x".repeat(2048)}}});
        assert_eq!(fcm_send(&sim, Some(&token), &to_device).await.0, 200, "4,096 bytes to a token");
        let (status, body) =
            fcm_send(&sim, Some(&token), &json!({"message": {"topic": "t"}, "validate_only": true})).await;
        assert_eq!((status, body["name"].as_str()), (200, Some("projects/mangwale-sim/messages/fake_message_id")));
        assert_eq!(sim.deliveries().len(), 1, "validate_only delivers nothing");
    }

    #[tokio::test]
    async fn scripts_and_faults_through_the_control_endpoints() {
        let sim = sim().await;
        let control = |path: &str| format!("{}/_sim/{path}", sim.url());
        let key_file: Value = http().get(control("service-account")).send().await.unwrap().json().await.unwrap();
        assert_eq!(key_file["token_uri"].as_str(), Some(sim.token_uri().as_str()));
        assert_eq!(key_file["type"], "service_account");

        for recipient in ["vendor_V-42", "device-token-1"] {
            let script = json!({"recipient": recipient, "script": {"kind": "unregistered"}});
            assert!(http().post(control("script")).json(&script).send().await.unwrap().status().is_success());
        }
        let token = token(&sim).await;
        let to_device = json!({"message": {"token": "device-token-1"}});
        let (status, body) = fcm_send(&sim, Some(&token), &to_device).await;
        assert_eq!((status, fcm_code(&body)), (404, Some("UNREGISTERED")), "a token error");
        let message = json!({"message": {"topic": "vendor_V-42"}});
        let (status, _) = fcm_send(&sim, Some(&token), &message).await;
        assert_eq!(status, 200, "a topic without subscribers is accepted");

        let fault =
            json!({"endpoint": "fcm_send", "fault": {"kind": "rate_limited", "retry_after_secs": 7}, "times": 1});
        assert!(http().post(control("faults")).json(&fault).send().await.unwrap().status().is_success());
        let url = format!("{}/v1/projects/{}/messages:send", sim.url(), sim.project_id());
        let response = http().post(url).bearer_auth(&token).json(&message).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 429);
        assert_eq!(response.headers()["retry-after"], "7");
        let body: Value = response.json().await.unwrap();
        assert_eq!(fcm_code(&body), Some("QUOTA_EXCEEDED"));

        let log: Value = http().get(control("log")).send().await.unwrap().json().await.unwrap();
        assert_eq!(log["received"].as_array().unwrap().len(), 4);
        assert_eq!(log["received"][2]["recipient"], "vendor_V-42");
        assert_eq!(log["tokens"].as_array().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn the_app_backend_checks_its_key_and_body() {
        let sim = sim().await;
        let url = format!("{}/api/push/send", sim.url());
        let body = json!({"recipientType": "rider", "recipientId": "R-9", "title": "Pickup", "body": "Store 12",
                          "data": {"orderId": "1042"}, "ttlSeconds": 60});
        let send = |key: &str, body: &Value| http().post(&url).header("X-API-Key", key).json(body).send();
        let response = send("wrong", &body).await.unwrap();
        assert_eq!(response.status().as_u16(), 401);

        let response = send(sim.app_api_key(), &body).await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["success"], true);
        let delivery = &sim.deliveries()[0];
        assert_eq!((delivery.recipient.as_str(), delivery.ttl), ("rider_R-9", Some(Duration::from_secs(60))));
        assert_eq!(answer["messageId"].as_str(), Some(delivery.message_id.as_str()));

        let mut bad = body.clone();
        bad["recipientType"] = json!("admin");
        let answer: Value = send(sim.app_api_key(), &bad).await.unwrap().json().await.unwrap();
        assert_eq!((answer["success"].as_bool(), answer["field"].as_str()), (Some(false), Some("recipientType")));
        let mut bad = body.clone();
        bad["data"] = json!({"orderId": 1042});
        assert_eq!(send(sim.app_api_key(), &bad).await.unwrap().status().as_u16(), 400);
    }
}
