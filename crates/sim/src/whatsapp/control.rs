//! The `/_sim/` control endpoints (documented in the module documentation
//! of [`crate::whatsapp`]).

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use mangwale_core::E164;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::script::{Fault, RecipientScript};
use super::state::Event;
use super::{Inner, info};
use crate::clock::lock;

#[derive(Deserialize)]
struct ScriptBody {
    number: String,
    #[serde(default)]
    script: Option<RecipientScript>,
    #[serde(default)]
    scripts: Vec<RecipientScript>,
}

#[derive(Deserialize)]
struct DefaultScriptBody {
    script: RecipientScript,
}

#[derive(Deserialize)]
struct WebhookBody {
    url: Option<String>,
    #[serde(default)]
    app_secret: Option<String>,
}

#[derive(Deserialize)]
struct FaultBody {
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

#[derive(Deserialize)]
struct InboundBody {
    from: String,
    text: String,
}

/// A person taps a quick-reply button of a message we sent them (by its
/// `index`, or its `payload` or label as `button_id`), or answers it with
/// `text`.
#[derive(Deserialize)]
struct ReplyBody {
    message_id: String,
    #[serde(default)]
    index: Option<usize>,
    #[serde(default, alias = "payload")]
    button_id: Option<String>,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
struct SubscribeBody {
    verify_token: String,
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

fn number(text: &str) -> Result<E164, Answer> {
    E164::parse(text).map_err(|e| error(400, &format!("not a phone number: {e}")))
}

fn to_json<T: serde::Serialize>(value: &T) -> Answer {
    (200, serde_json::to_value(value).unwrap_or(Value::Null))
}

pub(crate) async fn handle(inner: &Arc<Inner>, method: &Method, path: &str, bytes: &[u8]) -> Answer {
    answer(inner, method, path, bytes).await.unwrap_or_else(|e| e)
}

async fn answer(inner: &Arc<Inner>, method: &Method, path: &str, bytes: &[u8]) -> Result<Answer, Answer> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(2).collect();
    Ok(match (method.as_str(), segments.as_slice()) {
        ("GET", []) => (200, info(inner)),
        ("POST", ["script"]) => {
            let body: ScriptBody = parse(bytes)?;
            let number = number(&body.number)?;
            let scripts: Vec<RecipientScript> = body.script.into_iter().chain(body.scripts).collect();
            if scripts.is_empty() {
                return Err(error(400, "give a script or scripts"));
            }
            lock(&inner.state).set_scripts(&number, scripts);
            ok()
        }
        ("POST", ["default_script"]) => {
            let body: DefaultScriptBody = parse(bytes)?;
            lock(&inner.state).default_script = body.script;
            ok()
        }
        ("POST", ["webhook"]) => {
            let body: WebhookBody = parse(bytes)?;
            let mut st = lock(&inner.state);
            st.webhook_url = body.url;
            if let Some(secret) = body.app_secret {
                st.app_secret = secret;
            }
            ok()
        }
        ("POST", ["faults"]) => {
            let body: FaultBody = parse(bytes)?;
            lock(&inner.state).add_fault(body.fault, body.times);
            ok()
        }
        ("DELETE", ["faults"]) => {
            lock(&inner.state).clear_faults();
            ok()
        }
        ("GET", ["log"]) => {
            let st = lock(&inner.state);
            to_json(&json!({"received": st.received, "webhooks": st.webhooks}))
        }
        ("DELETE", ["log"]) => {
            lock(&inner.state).clear_log();
            ok()
        }
        ("GET", ["messages"]) => to_json(&lock(&inner.state).messages),
        ("GET", ["messages", id]) => match lock(&inner.state).message(id) {
            Some(message) => to_json(message),
            None => error(404, "no such message"),
        },
        ("POST", ["advance"]) => {
            if !inner.clock.is_manual() {
                return Err(error(409, "the simulator runs on the system clock"));
            }
            let body: AdvanceBody = parse(bytes)?;
            let by = Duration::try_from_secs_f64(body.seconds).map_err(|e| error(400, &e.to_string()))?;
            inner.advance(by).await;
            (200, json!({"now": inner.clock.now()}))
        }
        ("POST", ["inbound"]) => {
            let body: InboundBody = parse(bytes)?;
            let from = number(&body.from)?;
            (200, json!({"message_id": inner.inbound_text(&from, &body.text)}))
        }
        ("POST", ["reply"]) => {
            let body: ReplyBody = parse(bytes)?;
            let event = {
                let st = lock(&inner.state);
                let message = st.message(&body.message_id).ok_or_else(|| error(404, "no such message"))?;
                match (&body.text, body.index, &body.button_id) {
                    (Some(text), None, None) if !text.trim().is_empty() => {
                        Event::TextReply { message_id: message.id.clone(), text: text.trim().to_string() }
                    }
                    (None, Some(index), None) if index < message.button_labels.len() => {
                        Event::ButtonReply { message_id: message.id.clone(), index }
                    }
                    (None, None, Some(id)) => {
                        let index = (0..message.button_labels.len())
                            .find(|i| message.payloads.get(i) == Some(id) || &message.button_labels[*i] == id)
                            .ok_or_else(|| {
                                error(400, "button_id: the message has no button with that payload or label")
                            })?;
                        Event::ButtonReply { message_id: message.id.clone(), index }
                    }
                    (None, Some(_), None) => return Err(error(400, "index: the message has no such button")),
                    _ => return Err(error(400, "give one of index, button_id or text")),
                }
            };
            let reply = inner.reply_now(event).await;
            (200, json!({"reply_id": reply}))
        }
        ("POST", ["subscribe"]) => {
            let body: SubscribeBody = parse(bytes)?;
            match inner.subscribe(&body.verify_token).await {
                Ok(verified) => (200, json!({"verified": verified})),
                Err(e) => error(502, &e),
            }
        }
        _ => error(404, "no such control endpoint"),
    })
}
