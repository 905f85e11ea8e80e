//! The voice dialog's NLU/LLM fallback against the simulators over HTTP:
//! the real clients, the catalog checks, and what /health says of them.

use std::time::Duration;

use mangwale_providers::fallback::{FallbackErrorKind, LlmClient, LlmConfig, NluClient, NluConfig};
use mangwale_server::voice_fallback::VoiceFallback;
use mangwale_sim::llm::{DEFAULT_MODEL, LlmScript, LlmSim, LlmSimConfig};
use mangwale_sim::nlu::{NluScript, NluSim};
use mangwale_voice::{CartOp, Catalog, Context, Qty};
use serde_json::{Value, json};

use crate::common::TestApp;

const LLM_KEY: &str = "sk-test-llm-key-0123456789";

fn misal_house() -> Catalog {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../voice/tests/data/catalogs/7.json");
    Catalog::from_json(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn llm_client(sim: &LlmSim, timeout: Duration) -> LlmClient {
    LlmClient::new(LlmConfig {
        api_key: Some(LLM_KEY.into()),
        timeout,
        ..LlmConfig::new(sim.url().parse().unwrap(), DEFAULT_MODEL)
    })
}

async fn llm_sim() -> LlmSim {
    LlmSim::start(LlmSimConfig { api_key: Some(LLM_KEY.into()), ..LlmSimConfig::default() }).await.unwrap()
}

fn added(ops: &[CartOp]) -> Vec<(String, Option<Qty>)> {
    ops.iter()
        .filter_map(|op| match op {
            CartOp::Add { item, quantity, .. } => Some((item.item_id.clone(), *quantity)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn the_nlu_service_is_asked_first_and_the_llm_when_it_has_nothing() {
    let (nlu_sim, llm_sim) = (NluSim::start().await.unwrap(), llm_sim().await);
    nlu_sim.answer(
        "do missal",
        NluScript::Parse(json!({"intent": "add", "confidence": 0.9, "latency_ms": 12,
            "entities": [{"item_id": "7001", "quantity": 2, "variant_id": "full",
                          "modifiers": [{"group_id": "spice", "option_id": "hot"}], "text": "do missal"}]})),
    );
    llm_sim.answer(
        "ek kadak chaha",
        LlmScript::Content(
            r#"{"ops": [{"op": "add", "item_id": "7012", "quantity": 1, "heard": "ek kadak chaha"}]}"#.into(),
        ),
    );
    let nlu = NluClient::new(NluConfig::new(nlu_sim.url().parse().unwrap()));
    let fallback = VoiceFallback::new(Some(nlu), Some(llm_client(&llm_sim, Duration::from_secs(5)))).unwrap();
    let catalog = misal_house();

    let understood = fallback.resolve("do missal jhanjhanit", &catalog, &Context::default()).await.unwrap();
    assert_eq!(added(&understood.ops), vec![("7001".to_string(), Some(Qty::whole(2)))]);
    let CartOp::Add { item, .. } = &understood.ops[0] else { unreachable!() };
    assert!(item.confidence <= 0.7 * 0.9 + 1e-6, "lowered: {}", item.confidence);
    assert_eq!(llm_sim.completions(), 0, "the LLM is not asked when the NLU service answered");
    let sent = nlu_sim.requests()[0].body.clone().unwrap();
    assert_eq!(sent, json!({"text": "do missal jhanjhanit", "language": "mr", "store_id": "7"}));

    let understood = fallback.resolve("aur ek kadak chaha", &catalog, &Context::default()).await.unwrap();
    assert_eq!(added(&understood.ops), vec![("7012".to_string(), Some(Qty::ONE))]);
    assert_eq!(llm_sim.completions(), 1);

    // What went to the LLM: OpenAI's shape, the key as Bearer, the catalog
    // by id and no prices.
    let request = llm_sim.requests().into_iter().find(|r| r.path == "/v1/chat/completions").unwrap();
    assert_eq!(request.authorization.as_deref(), Some(format!("Bearer {LLM_KEY}").as_str()));
    let body = request.body.as_ref().unwrap();
    assert_eq!(body["model"], DEFAULT_MODEL);
    assert_eq!(body["temperature"], 0.0);
    assert_eq!(body["response_format"], json!({"type": "json_object"}));
    assert!(body["max_tokens"].as_u64().is_some_and(|n| n > 0));
    let system = request.message("system").unwrap();
    assert!(system.contains("7012 | Cutting Chai") && !system.contains("₹"));
    assert!(request.message("user").unwrap().contains(r#""aur ek kadak chaha""#));
}

#[tokio::test]
async fn untrusted_malformed_or_failed_answers_are_none() {
    let sim = llm_sim().await;
    let cases = [
        ("invented", LlmScript::Content(r#"{"ops": [{"op": "add", "item_id": "pizza-9", "quantity": 2}]}"#.into())),
        (
            "wrong variant",
            LlmScript::Content(r#"{"ops": [{"op": "add", "item_id": "7004", "variant_id": "half"}]}"#.into()),
        ),
        (
            "priced",
            LlmScript::Content(r#"{"ops": [{"op": "add", "item_id": "7001", "quantity": 2, "price": 1}]}"#.into()),
        ),
        ("chatty", LlmScript::Content("Sure! Two misal pav coming up.".into())),
        ("cut off", LlmScript::Truncated(r#"{"ops": [{"op": "add", "item_id": "70"#.into())),
        ("nothing", LlmScript::Content(r#"{"ops": [{"op": "dance"}]}"#.into())),
        ("broken server", LlmScript::Status(500)),
        ("overloaded", LlmScript::Status(429)),
        ("slow", LlmScript::Hang),
    ];
    sim.answer("all good", LlmScript::Content(r#"{"ops": [{"op": "confirm"}]}"#.into()));
    for (needle, script) in &cases {
        sim.answer(needle, script.clone());
    }
    let fallback = VoiceFallback::new(None, Some(llm_client(&sim, Duration::from_millis(300)))).unwrap();
    let catalog = misal_house();
    let metrics = mangwale_server::telemetry::Metrics::global();
    for (needle, _) in &cases {
        let understood = fallback.resolve(needle, &catalog, &Context::default()).await;
        assert!(understood.is_none(), "{needle}: {understood:?}");
        // A success in between keeps the breaker closed for the next case.
        let good = fallback.resolve("all good", &catalog, &Context::default()).await.unwrap();
        assert_eq!(good.ops, vec![CartOp::Confirm]);
    }
    let chats = sim.requests().iter().filter(|r| r.path == "/v1/chat/completions").count();
    assert_eq!(chats, 2 * cases.len(), "every case reached the server");
    // Each is counted by why it was not used (other tests add to the counts).
    let rendered = metrics.render();
    for reason in
        ["unknown_item", "unknown_variant", "price", "malformed", "bad_response", "nothing", "unavailable", "timeout"]
    {
        assert!(
            rendered.lines().any(|l| l.starts_with("mangwale_voice_fallback_total")
                && l.contains(r#"service="llm""#)
                && l.contains(&format!(r#"reason="{reason}""#))),
            "{reason} not counted"
        );
    }
    assert!(fallback.resolve("   ", &catalog, &Context::default()).await.is_none());
}

#[tokio::test]
async fn errors_never_carry_the_key_and_an_outage_opens_the_circuit() {
    let sim = llm_sim().await;
    let wrong = LlmClient::new(LlmConfig {
        api_key: Some("sk-wrong-key-abcdef".into()),
        ..LlmConfig::new(sim.url().parse().unwrap(), DEFAULT_MODEL)
    });
    let e = wrong.complete_json("json please", "hi").await.unwrap_err();
    assert_eq!((e.kind, e.status), (FallbackErrorKind::Refused, Some(401)));
    let text = format!("{e} {e:?}");
    assert!(!text.contains("sk-wrong") && !text.contains("ef."), "{text}");

    let e = LlmClient::new(LlmConfig::new(sim.url().parse().unwrap(), "not-served"))
        .complete_json("json please", "hi")
        .await
        .unwrap_err();
    assert_eq!((e.kind, e.status), (FallbackErrorKind::Refused, Some(401)), "no key at all");

    sim.answer("down", LlmScript::Status(503));
    let client = llm_client(&sim, Duration::from_secs(5));
    for _ in 0..3 {
        let e = client.complete_json("json", "down").await.unwrap_err();
        assert_eq!(e.kind, FallbackErrorKind::Unavailable);
    }
    let sent = sim.requests().len();
    let e = client.complete_json("json", "down").await.unwrap_err();
    assert_eq!(e.kind, FallbackErrorKind::CircuitOpen);
    assert_eq!(sim.requests().len(), sent, "an open circuit sends nothing");
    assert!(client.health().await.is_ok(), "the health probe passes an open circuit");
}

#[tokio::test]
async fn the_simulators_refuse_requests_as_the_real_services_do() {
    let sim = LlmSim::start(LlmSimConfig::default()).await.unwrap();
    let http = reqwest::Client::new();
    let chat = format!("{}/v1/chat/completions", sim.url());
    let post = |body: Value| http.post(&chat).json(&body).send();
    let messages = json!([{"role": "user", "content": "answer in json"}]);
    let cases = [
        (json!({"messages": messages}), 400, "you must provide a model parameter"),
        (json!({"model": DEFAULT_MODEL}), 400, "Missing required parameter: 'messages'."),
        (json!({"model": DEFAULT_MODEL, "messages": [{"role": "robot", "content": "x"}]}), 400, "Invalid value"),
        (json!({"model": "gpt-9", "messages": messages}), 404, "does not exist"),
        (
            json!({"model": DEFAULT_MODEL, "messages": messages, "guided_json": {}}),
            400,
            "Unrecognized request argument",
        ),
        (
            json!({"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "json_object"}}),
            400,
            "must contain the word 'json'",
        ),
    ];
    for (body, status, message) in cases {
        let res = post(body.clone()).await.unwrap();
        assert_eq!(res.status().as_u16(), status, "{body}");
        let answer: Value = res.json().await.unwrap();
        assert!(answer["error"]["message"].as_str().unwrap().contains(message), "{body}: {answer}");
        assert_eq!(answer["error"]["type"], "invalid_request_error");
    }
    let ok: Value = post(json!({"model": DEFAULT_MODEL, "messages": messages})).await.unwrap().json().await.unwrap();
    assert_eq!(ok["object"], "chat.completion");
    assert_eq!(ok["choices"][0]["message"]["content"], r#"{"ops": []}"#);

    let nlu = NluSim::start().await.unwrap();
    let res = http.post(format!("{}/parse", nlu.url())).json(&json!({"text": "do misal", "store_id": "7"})).send();
    let res = res.await.unwrap();
    assert_eq!(res.status().as_u16(), 422);
    assert_eq!(res.json::<Value>().await.unwrap()["detail"][0]["loc"], json!(["body", "language"]));
}

#[tokio::test]
async fn an_nlu_entity_outside_the_contract_is_not_read() {
    let sim = NluSim::start().await.unwrap();
    sim.answer(
        "misal",
        NluScript::Parse(json!({"intent": "add", "entities": [{"item_id": "7001", "quantity": 1, "price": 90}]})),
    );
    sim.answer("garbage", NluScript::Raw("<html>oops</html>".into()));
    sim.answer("crash", NluScript::Status(500));
    let client = NluClient::new(NluConfig::new(sim.url().parse().unwrap()));
    let fallback = VoiceFallback::new(Some(client), None).unwrap();
    for utterance in ["do misal", "garbage", "crash", "nothing known"] {
        assert!(fallback.resolve(utterance, &misal_house(), &Context::default()).await.is_none(), "{utterance}");
    }
}

#[tokio::test]
async fn health_lists_the_configured_fallbacks_with_latency_and_speech_as_none() {
    let (llm, nlu) = (llm_sim().await, NluSim::start().await.unwrap());
    let app = TestApp::start(&[
        ("LLM_URL", &format!("{}/v1", llm.url())),
        ("LLM_MODEL", DEFAULT_MODEL),
        ("LLM_API_KEY", LLM_KEY),
        ("NLU_URL", &nlu.url()),
        ("ASR_BACKEND", "none"),
        ("TTS_BACKEND", "none"),
    ])
    .await;
    let (_, health) = app.get("/health", None).await;
    let c = &health["connections"];
    assert_eq!(c["llm"]["connected"], true, "{health}");
    assert!(c["llm"]["latency_ms"].is_u64());
    assert_eq!(c["nlu"]["connected"], true, "{health}");
    assert!(c["nlu"]["latency_ms"].is_u64());
    assert_eq!(health["speech"], json!({"recognizer": "none configured", "synthesizer": "none configured"}));
    assert!(app.state.voice_fallback.is_some());
    app.stop().await;

    // A model the server does not serve: down, named, and the service degraded.
    let app = TestApp::start(&[("LLM_URL", &llm.url()), ("LLM_MODEL", "qwen-typo"), ("LLM_API_KEY", LLM_KEY)]).await;
    let (_, health) = app.get("/health", None).await;
    assert_eq!(health["connections"]["llm"]["connected"], false);
    assert!(health["connections"]["llm"]["error"].as_str().unwrap().contains("qwen-typo"), "{health}");
    assert!(health["connections"].get("nlu").is_none());
    assert_eq!(health["status"], "degraded");
    app.stop().await;
}
