//! The `/_sim/` control endpoints (listed in the module doc of
//! [`crate::push`]), for the sandbox and for tests in other languages.

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::server::{HttpResponse, json_response};
use super::{Inner, PushEndpoint, PushFault, PushScript};
use crate::clock::lock;

#[derive(Deserialize)]
struct ScriptBody {
    recipient: String,
    script: PushScript,
}

#[derive(Deserialize)]
struct FaultBody {
    endpoint: PushEndpoint,
    fault: PushFault,
    #[serde(default = "one")]
    times: u32,
}

fn one() -> u32 {
    1
}

#[derive(Deserialize)]
struct AdvanceBody {
    seconds: f64,
}

type Answer = (u16, Value);

fn ok() -> Answer {
    (200, json!({"ok": true}))
}

fn error(status: u16, message: &str) -> Answer {
    (status, json!({"error": message}))
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Answer> {
    serde_json::from_slice(bytes).map_err(|e| error(400, &format!("invalid JSON body: {e}")))
}

pub(crate) fn handle(inner: &Arc<Inner>, method: &Method, path: &str, bytes: &[u8]) -> HttpResponse {
    let (status, body) = answer(inner, method, path, bytes).unwrap_or_else(|e| e);
    json_response(status, &body)
}

pub(crate) fn answer(inner: &Arc<Inner>, method: &Method, path: &str, bytes: &[u8]) -> Result<Answer, Answer> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(2).collect();
    let config = &inner.config;
    Ok(match (method.as_str(), segments.as_slice()) {
        ("GET", []) => (
            200,
            json!({
                "url": inner.base_url,
                "token_uri": inner.token_uri(),
                "project_id": config.project_id,
                "client_email": config.client_email,
                "private_key_id": config.private_key_id,
                "now": inner.now(),
                "manual_clock": config.clock.is_manual(),
            }),
        ),
        ("GET", ["service-account"]) => (200, inner.key_file(&config.private_key_pem)),
        ("POST", ["script"]) => {
            let body: ScriptBody = parse(bytes)?;
            lock(&inner.state).set_script(&body.recipient, body.script);
            ok()
        }
        ("POST", ["faults"]) => {
            let body: FaultBody = parse(bytes)?;
            lock(&inner.state).add_fault(body.endpoint, body.fault, body.times);
            ok()
        }
        ("DELETE", ["faults"]) => {
            lock(&inner.state).clear_faults();
            ok()
        }
        ("GET", ["log"]) => {
            let st = lock(&inner.state);
            let log = json!({"received": st.received(), "deliveries": st.deliveries(), "tokens": st.tokens()});
            (200, log)
        }
        ("GET", ["deliveries"]) => (200, json!(lock(&inner.state).deliveries())),
        ("DELETE", ["log"]) => {
            lock(&inner.state).clear_log();
            ok()
        }
        ("POST", ["revoke-tokens"]) => {
            lock(&inner.state).revoke_tokens();
            ok()
        }
        ("POST", ["advance"]) => {
            let body: AdvanceBody = parse(bytes)?;
            if !config.clock.is_manual() {
                return Err(error(409, "the simulator runs on the system clock"));
            }
            let by =
                Duration::try_from_secs_f64(body.seconds).map_err(|e| error(400, &format!("invalid seconds: {e}")))?;
            config.clock.advance_to(crate::clock::add(config.clock.now(), by));
            (200, json!({"now": inner.now()}))
        }
        _ => error(404, "unknown control endpoint"),
    })
}
