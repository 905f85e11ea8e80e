//! The `/_sim/` control endpoints (documented in the module doc of
//! [`crate::exotel`]).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Response};
use http_body_util::Full;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::script::CalleeScript;
use super::server::json_response;
use super::voice_order::VoiceOrder;
use super::{Endpoint, Fault, Inner, PhoneError, PhoneView, SimHandle};

#[derive(Deserialize)]
struct ScriptBody {
    number: String,
    script: CalleeScript,
}

#[derive(Deserialize)]
struct DefaultScriptBody {
    script: CalleeScript,
}

#[derive(Deserialize)]
struct FaultBody {
    endpoint: Endpoint,
    fault: Fault,
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

/// Someone calls an ExoPhone: `to` (or `exophone`), and the flow connected
/// to that number, unless `flow_id` names one.
#[derive(Deserialize)]
struct IncomingBody {
    from: String,
    #[serde(alias = "exophone")]
    to: String,
    #[serde(default)]
    flow_id: Option<String>,
}

/// A field of a phone's control request: a string (`None` when absent),
/// or the answer naming the field.
fn string_field(body: &serde_json::Value, field: &'static str) -> Result<Option<String>, Answer> {
    match body.get(field) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(field_error(400, field, &format!("{field} must be a string"))),
    }
}

/// The JSON object of a phone's control request.
fn object(bytes: &[u8]) -> Result<serde_json::Value, Answer> {
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(body) if body.is_object() => Ok(body),
        Ok(_) => Err(error(400, "the body must be a JSON object")),
        Err(e) => Err(error(400, &format!("invalid JSON body: {e}"))),
    }
}

/// Keys pressed on a held phone: `{"digits"}`.
fn keys_body(bytes: &[u8]) -> Result<String, Answer> {
    string_field(&object(bytes)?, "digits")?.ok_or_else(|| field_error(400, "digits", "digits is required"))
}

/// Words typed on a held phone, spoken to the Voicebot: `{"text", "language"}`.
fn say_body(bytes: &[u8]) -> Result<(String, Option<String>), Answer> {
    let body = object(bytes)?;
    let text = string_field(&body, "text")?.ok_or_else(|| field_error(400, "text", "text is required"))?;
    Ok((text, string_field(&body, "language")?))
}

/// A recording from the held phone's microphone: little-endian 16-bit mono
/// PCM in base64, at `sample_rate` (Exotel's Voicebot stream carries 8000,
/// the default): `{"pcm", "sample_rate"}`.
fn audio_body(bytes: &[u8]) -> Result<(Vec<i16>, u32), Answer> {
    let body = object(bytes)?;
    let pcm = string_field(&body, "pcm")?.ok_or_else(|| field_error(400, "pcm", "pcm is required"))?;
    let rate = match body.get("sample_rate") {
        None | Some(serde_json::Value::Null) => TELEPHONE_RATE,
        Some(value) => value.as_u64().and_then(|r| u32::try_from(r).ok()).ok_or_else(|| {
            field_error(400, "sample_rate", "sample_rate must be a whole number of Hz (8000 to 48000)")
        })?,
    };
    Ok((pcm_samples(&pcm)?, rate))
}

const TELEPHONE_RATE: u32 = 8_000;

type Answer = (u16, serde_json::Value);

fn ok() -> Answer {
    (200, json!({"ok": true}))
}

fn error(status: u16, message: &str) -> Answer {
    (status, json!({"error": message}))
}

/// An error that names the request's field at fault (`number`: the phone
/// in the path).
fn field_error(status: u16, field: &str, message: &str) -> Answer {
    (status, json!({"error": message, "field": field}))
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Answer> {
    serde_json::from_slice(bytes).map_err(|e| error(400, &format!("invalid JSON body: {e}")))
}

/// A number from a path segment (`+` may come percent-encoded).
fn decode(segment: &str) -> String {
    segment.replace("%2B", "+").replace("%2b", "+")
}

fn phone_answer(done: Result<PhoneView, PhoneError>) -> Answer {
    match done {
        Ok(view) => to_json(&view),
        Err(e) => field_error(e.status(), e.field(), &e.to_string()),
    }
}

/// Samples from base64 little-endian 16-bit PCM.
fn pcm_samples(pcm: &str) -> Result<Vec<i16>, Answer> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(pcm.trim())
        .map_err(|e| field_error(400, "pcm", &format!("pcm is not base64: {e}")))?;
    if bytes.len() % 2 != 0 {
        return Err(field_error(400, "pcm", "pcm must hold 16-bit samples (an even number of bytes)"));
    }
    Ok(bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect())
}

fn to_json<T: serde::Serialize>(value: &T) -> Answer {
    (200, serde_json::to_value(value).unwrap_or(serde_json::Value::Null))
}

pub(crate) async fn handle(inner: &Arc<Inner>, method: &Method, path: &str, bytes: &[u8]) -> Response<Full<Bytes>> {
    let (status, body) = answer(inner, method, path, bytes).await;
    json_response(status, body.to_string())
}

pub(crate) async fn answer(inner: &Arc<Inner>, method: &Method, path: &str, bytes: &[u8]) -> Answer {
    let handle = SimHandle { inner: inner.clone() };
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(2).collect();
    let result = match (method.as_str(), segments.as_slice()) {
        ("GET", []) => Ok(to_json(&json!({
            "account_sid": handle.account_sid(),
            "api_key": handle.api_key(),
            "base_url": handle.base_url(),
            "account_url": handle.account_url(),
            "now": handle.now(),
            "manual_clock": inner.clock.is_manual(),
            "pending_events": handle.pending_events(),
            "exophones": inner.config.exophones,
            "exophone_flows": handle
                .exophone_flows()
                .into_iter()
                .map(|(number, flow_id)| json!({"exophone": number, "flow_id": flow_id}))
                .collect::<Vec<_>>(),
        }))),
        ("POST", ["script"]) => parse::<ScriptBody>(bytes).map(|body| match handle.script(&body.number, body.script) {
            Ok(()) => ok(),
            Err(e) => error(400, &e.to_string()),
        }),
        ("POST", ["default_script"]) => parse::<DefaultScriptBody>(bytes).map(|body| {
            handle.set_default_script(body.script);
            ok()
        }),
        ("POST", ["faults"]) => parse::<FaultBody>(bytes).map(|body| {
            handle.inject_fault(body.endpoint, body.fault, body.times);
            ok()
        }),
        ("DELETE", ["faults"]) => {
            handle.clear_faults();
            Ok(ok())
        }
        ("GET", ["log"]) => Ok(to_json(&json!({"received": handle.received(), "callbacks": handle.callbacks_sent()}))),
        ("DELETE", ["log"]) => {
            handle.clear_log();
            Ok(ok())
        }
        ("GET", ["calls"]) => Ok(to_json(&handle.calls())),
        ("GET", ["calls", sid]) => Ok(handle.call(sid).map_or_else(|| error(404, "no such call"), |c| to_json(&c))),
        ("POST", ["incoming"]) => parse::<IncomingBody>(bytes).map(|body| {
            let placed = match &body.flow_id {
                Some(flow_id) => handle.incoming_call(&body.from, &body.to, flow_id).map(|sid| (sid, flow_id.clone())),
                None => handle.call_exophone(&body.from, &body.to),
            };
            match placed {
                Ok((sid, flow_id)) => to_json(&json!({"call_sid": sid, "flow_id": flow_id})),
                Err(e) => error(400, &e.to_string()),
            }
        }),
        ("GET", ["flows"]) => Ok(to_json(&handle.flow_runs())),
        ("GET", ["flows", sid]) => {
            Ok(handle.flow_run(sid).map_or_else(|| error(404, "no flow run for this call"), |r| to_json(&r)))
        }
        ("GET", ["calls", sid, "streams"]) => Ok(to_json(&handle.voicebot_streams(sid))),
        ("POST", ["voice-order"]) => parse::<VoiceOrder>(bytes).map(|order| match handle.place_voice_order(&order) {
            Ok(placed) => to_json(&placed),
            Err(e) => error(400, &e.to_string()),
        }),
        ("GET", ["streams", sid]) => {
            Ok(handle.stream_log(sid).map_or_else(|| error(404, "no such stream"), |s| to_json(&s)))
        }
        ("GET", ["phones"]) => Ok(to_json(&handle.held_phones())),
        ("GET", ["phones", number]) => Ok(match handle.phone(decode(number)) {
            Ok(view) => to_json(&view),
            Err(e) => error(400, &e.to_string()),
        }),
        ("POST", ["phones", number, "hold"]) => Ok(match handle.hold(decode(number)) {
            Ok(()) => handle.phone(decode(number)).map_or_else(|e| error(400, &e.to_string()), |v| to_json(&v)),
            Err(e) => error(400, &e.to_string()),
        }),
        ("DELETE", ["phones", number, "hold"]) => Ok(match handle.release(decode(number)) {
            Ok(()) => ok(),
            Err(e) => error(400, &e.to_string()),
        }),
        ("POST", ["phones", number, action @ ("answer" | "reject" | "hangup")]) => {
            let number = decode(number);
            let done = match *action {
                "answer" => handle.answer(number).await,
                "reject" => handle.reject(number).await,
                _ => handle.hang_up(number).await,
            };
            Ok(phone_answer(done))
        }
        ("POST", ["phones", number, "keys"]) => match keys_body(bytes) {
            Ok(digits) => Ok(phone_answer(handle.press(decode(number), &digits).await)),
            Err(e) => Err(e),
        },
        ("POST", ["phones", number, "say"]) => match say_body(bytes) {
            Ok((text, language)) => Ok(phone_answer(handle.say(decode(number), &text, language.as_deref()).await)),
            Err(e) => Err(e),
        },
        ("POST", ["phones", number, "audio"]) => match audio_body(bytes) {
            Ok((samples, rate)) => Ok(phone_answer(handle.speak_audio(decode(number), samples, rate).await)),
            Err(e) => Err(e),
        },
        ("GET", ["sms"]) => Ok(to_json(&handle.sms_messages())),
        ("GET", ["sms", sid]) => Ok(handle.sms(sid).map_or_else(|| error(404, "no such SMS"), |m| to_json(&m))),
        ("POST", ["advance"]) => match parse::<AdvanceBody>(bytes) {
            Err(e) => Err(e),
            Ok(_) if !inner.clock.is_manual() => Ok(error(409, "the simulator runs on the system clock")),
            Ok(body) => match Duration::try_from_secs_f64(body.seconds) {
                Ok(d) => {
                    handle.advance(d).await;
                    Ok(to_json(&json!({"now": handle.now(), "pending_events": handle.pending_events()})))
                }
                Err(e) => Ok(error(400, &format!("invalid seconds: {e}"))),
            },
        },
        _ => Ok(error(404, "unknown control endpoint")),
    };
    result.unwrap_or_else(|e| e)
}
