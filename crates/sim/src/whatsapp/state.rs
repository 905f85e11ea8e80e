//! The simulator's mutable state, its event queue, and the webhook bodies
//! the events turn into.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use mangwale_core::E164;
use serde_json::{Value, json};

use super::WhatsAppSimConfig;
use super::api::{ValidSend, error_title};
use super::log::{ReceivedRequest, SentWebhook, SimMessage, WebhookKind};
use super::script::{Fault, RecipientScript};
use crate::clock::add;
use crate::ids::IdGen;

/// Meta's page about error codes, linked from `failed` statuses.
const ERROR_CODES_HREF: &str = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/";

/// Something that happens at a scheduled time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// A `sent`, `delivered` or `read` status of our message.
    Status { message_id: String, status: &'static str },
    /// A `failed` status with this error code.
    Failed { message_id: String, code: i64 },
    /// The person taps quick-reply button `index` of our message.
    ButtonReply { message_id: String, index: usize },
    /// The person answers our message with text.
    TextReply { message_id: String, text: String },
    /// The person writes to us unprompted.
    Inbound { from: E164, text: String, id: String },
}

/// A webhook to deliver: the `value` of one `messages` change.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    pub kind: WebhookKind,
    pub message_id: String,
    pub context_message_id: Option<String>,
    pub value: Value,
}

#[derive(Debug)]
pub(crate) struct State {
    ids: IdGen,
    pub webhook_url: Option<String>,
    pub app_secret: String,
    pub messages: Vec<SimMessage>,
    /// Per number: the scripts of its next messages; the last one repeats.
    scripts: HashMap<String, VecDeque<RecipientScript>>,
    pub default_script: RecipientScript,
    faults: VecDeque<(Fault, u32)>,
    queue: BTreeMap<(DateTime<Utc>, u64), Event>,
    queue_seq: u64,
    pub received: VecDeque<ReceivedRequest>,
    received_seq: u64,
    pub webhooks: VecDeque<SentWebhook>,
    webhook_seq: u64,
    max_log: usize,
}

impl State {
    pub(crate) fn new(config: &WhatsAppSimConfig) -> Self {
        State {
            ids: IdGen::new(config.seed),
            webhook_url: config.webhook_url.clone(),
            app_secret: config.app_secret.clone(),
            messages: Vec::new(),
            scripts: HashMap::new(),
            default_script: config.default_script.clone(),
            faults: VecDeque::new(),
            queue: BTreeMap::new(),
            queue_seq: 0,
            received: VecDeque::new(),
            received_seq: 0,
            webhooks: VecDeque::new(),
            webhook_seq: 0,
            max_log: config.max_log_entries.max(1),
        }
    }

    /// `wamid.` and 24 random bytes in base64, the shape of Meta's ids.
    pub(crate) fn next_wamid(&mut self) -> String {
        let mut bytes = Vec::with_capacity(24);
        for _ in 0..3 {
            bytes.extend_from_slice(&self.ids.next_u64().to_be_bytes());
        }
        format!("wamid.{}", base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    /// A 23-character id like Meta's `fbtrace_id`.
    pub(crate) fn next_trace_id(&mut self) -> String {
        let mut bytes = self.ids.next_u64().to_be_bytes().to_vec();
        bytes.extend_from_slice(&self.ids.next_u64().to_be_bytes());
        bytes.push(self.ids.next_u64() as u8);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A `hub.challenge`: a number of up to ten digits.
    pub(crate) fn next_challenge(&mut self) -> String {
        (self.ids.next_u64() % 10_000_000_000).to_string()
    }

    pub(crate) fn set_scripts(&mut self, number: &E164, scripts: Vec<RecipientScript>) {
        if scripts.is_empty() {
            self.scripts.remove(number.as_str());
        } else {
            self.scripts.insert(number.as_str().to_string(), scripts.into());
        }
    }

    pub(crate) fn clear_scripts(&mut self) {
        self.scripts.clear();
    }

    /// The script of the next message to `number`.
    pub(crate) fn take_script(&mut self, number: &E164) -> RecipientScript {
        match self.scripts.get_mut(number.as_str()) {
            Some(queue) if queue.len() > 1 => queue.pop_front().unwrap_or_default(),
            Some(queue) => queue.front().cloned().unwrap_or_else(|| self.default_script.clone()),
            None => self.default_script.clone(),
        }
    }

    pub(crate) fn add_fault(&mut self, fault: Fault, times: u32) {
        if times > 0 {
            self.faults.push_back((fault, times));
        }
    }

    pub(crate) fn clear_faults(&mut self) {
        self.faults.clear();
    }

    pub(crate) fn take_fault(&mut self) -> Option<Fault> {
        let (fault, remaining) = self.faults.front_mut()?;
        let fault = *fault;
        *remaining -= 1;
        if *remaining == 0 {
            self.faults.pop_front();
        }
        Some(fault)
    }

    /// Logs a received request; returns its `seq`.
    pub(crate) fn push_received(&mut self, mut entry: ReceivedRequest) -> u64 {
        self.received_seq += 1;
        entry.seq = self.received_seq;
        if self.received.len() >= self.max_log {
            self.received.pop_front();
        }
        self.received.push_back(entry);
        self.received_seq
    }

    pub(crate) fn received_mut(&mut self, seq: u64) -> Option<&mut ReceivedRequest> {
        self.received.iter_mut().rev().find(|e| e.seq == seq)
    }

    pub(crate) fn push_webhook(&mut self, mut entry: SentWebhook) {
        self.webhook_seq += 1;
        entry.seq = self.webhook_seq;
        if self.webhooks.len() >= self.max_log {
            self.webhooks.pop_front();
        }
        self.webhooks.push_back(entry);
    }

    pub(crate) fn clear_log(&mut self) {
        self.received.clear();
        self.webhooks.clear();
    }

    pub(crate) fn schedule(&mut self, at: DateTime<Utc>, event: Event) {
        self.queue_seq += 1;
        self.queue.insert((at, self.queue_seq), event);
    }

    /// The earliest event due at or before `until` (ties in scheduling order).
    pub(crate) fn pop_due(&mut self, until: DateTime<Utc>) -> Option<(DateTime<Utc>, Event)> {
        let entry = self.queue.first_entry()?;
        if entry.key().0 > until {
            return None;
        }
        let ((at, _), event) = entry.remove_entry();
        Some((at, event))
    }

    pub(crate) fn next_due(&self) -> Option<DateTime<Utc>> {
        self.queue.keys().next().map(|(at, _)| *at)
    }

    pub(crate) fn pending_events(&self) -> usize {
        self.queue.len()
    }

    pub(crate) fn message(&self, id: &str) -> Option<&SimMessage> {
        self.messages.iter().find(|m| m.id == id)
    }

    fn message_mut(&mut self, id: &str) -> Option<&mut SimMessage> {
        self.messages.iter_mut().find(|m| m.id == id)
    }

    /// Accepts a validated send: stores the message and schedules what its
    /// recipient's script makes happen. Returns the message id.
    pub(crate) fn accept(
        &mut self,
        config: &WhatsAppSimConfig,
        send: ValidSend,
        script: RecipientScript,
        now: DateTime<Utc>,
    ) -> String {
        let id = self.next_wamid();
        let conversation_id = self.ids.next_sid();
        let sent_at = add(now, config.sent_after);
        let delivered_at = add(now, config.delivered_after.max(config.sent_after));
        let read_at = |after: Duration| add(now, after.max(config.delivered_after).max(config.sent_after));
        let status = |status| Event::Status { message_id: id.clone(), status };
        match &script {
            RecipientScript::Reads { after } => {
                self.schedule(sent_at, status("sent"));
                self.schedule(delivered_at, status("delivered"));
                self.schedule(read_at(*after), status("read"));
            }
            RecipientScript::ReplyButton { index, after } => {
                self.schedule(sent_at, status("sent"));
                self.schedule(delivered_at, status("delivered"));
                self.schedule(read_at(*after), status("read"));
                if *index < send.template.buttons.len() {
                    self.schedule(read_at(*after), Event::ButtonReply { message_id: id.clone(), index: *index });
                } else {
                    tracing::warn!(
                        template = %send.template.name,
                        index,
                        "whatsapp sim: the script taps a button the template does not have; the message is only read"
                    );
                }
            }
            RecipientScript::ReplyText { text, after } => {
                self.schedule(sent_at, status("sent"));
                self.schedule(delivered_at, status("delivered"));
                self.schedule(read_at(*after), status("read"));
                self.schedule(read_at(*after), Event::TextReply { message_id: id.clone(), text: text.clone() });
            }
            RecipientScript::NeverAnswers => {
                self.schedule(sent_at, status("sent"));
                self.schedule(delivered_at, status("delivered"));
            }
            RecipientScript::Fails { code } => {
                self.schedule(sent_at, Event::Failed { message_id: id.clone(), code: *code });
            }
        }
        self.messages.push(SimMessage {
            id: id.clone(),
            to: send.to,
            template: send.template.name.clone(),
            language: send.language,
            body_params: send.body_params,
            payloads: send.payloads,
            callback_data: send.callback_data,
            accepted_at: now,
            script,
            statuses: Vec::new(),
            replies: Vec::new(),
            conversation_id,
            category: send.template.category.clone(),
            button_labels: send.template.buttons.clone(),
            wa_id: send.wa_id,
        });
        id
    }

    /// Applies a due event: the webhook it makes, if any.
    pub(crate) fn apply(&mut self, config: &WhatsAppSimConfig, event: Event, at: DateTime<Utc>) -> Option<Outgoing> {
        let timestamp = at.timestamp().to_string();
        let metadata = json!({
            "display_phone_number": config.display_phone_number,
            "phone_number_id": config.phone_number_id,
        });
        match event {
            Event::Status { message_id, status } => {
                let message = self.message_mut(&message_id)?;
                message.statuses.push(status.to_string());
                let mut entry = json!({
                    "id": message_id,
                    "status": status,
                    "timestamp": timestamp,
                    "recipient_id": message.wa_id,
                });
                if let Some(data) = &message.callback_data {
                    entry["biz_opaque_callback_data"] = json!(data);
                }
                if status != "read" {
                    let mut conversation = json!({"id": message.conversation_id, "origin": {"type": message.category}});
                    if status == "sent" {
                        let expires = at.timestamp() + 24 * 3600;
                        conversation["expiration_timestamp"] = json!(expires.to_string());
                    }
                    entry["conversation"] = conversation;
                    entry["pricing"] = json!({"billable": true, "pricing_model": "CBP", "category": message.category});
                }
                Some(Outgoing {
                    kind: WebhookKind::Status { status: status.to_string() },
                    message_id,
                    context_message_id: None,
                    value: json!({"messaging_product": "whatsapp", "metadata": metadata, "statuses": [entry]}),
                })
            }
            Event::Failed { message_id, code } => {
                let message = self.message_mut(&message_id)?;
                message.statuses.push("failed".to_string());
                let title = error_title(code);
                let mut entry = json!({
                    "id": message_id,
                    "status": "failed",
                    "timestamp": timestamp,
                    "recipient_id": message.wa_id,
                    "errors": [{
                        "code": code,
                        "title": title,
                        "message": title,
                        "error_data": {"details": format!("{title}.")},
                        "href": ERROR_CODES_HREF,
                    }],
                });
                if let Some(data) = &message.callback_data {
                    entry["biz_opaque_callback_data"] = json!(data);
                }
                Some(Outgoing {
                    kind: WebhookKind::Status { status: "failed".to_string() },
                    message_id,
                    context_message_id: None,
                    value: json!({"messaging_product": "whatsapp", "metadata": metadata, "statuses": [entry]}),
                })
            }
            Event::ButtonReply { message_id, index } => {
                let reply_id = self.next_wamid();
                let message = self.message_mut(&message_id)?;
                let label = message.button_labels.get(index)?.clone();
                let payload = message.payloads.get(&index).cloned().unwrap_or_else(|| label.clone());
                message.replies.push(reply_id.clone());
                let wa_id = message.wa_id.clone();
                let reply = json!({
                    "context": {"from": config.display_phone_number, "id": message_id},
                    "from": wa_id,
                    "id": reply_id,
                    "timestamp": timestamp,
                    "type": "button",
                    "button": {"payload": payload, "text": label},
                });
                Some(Outgoing {
                    kind: WebhookKind::ButtonReply,
                    message_id: reply_id,
                    context_message_id: Some(message_id),
                    value: inbound_value(config, metadata, &wa_id, reply),
                })
            }
            Event::TextReply { message_id, text } => {
                let reply_id = self.next_wamid();
                let message = self.message_mut(&message_id)?;
                message.replies.push(reply_id.clone());
                let wa_id = message.wa_id.clone();
                let reply = json!({
                    "from": wa_id,
                    "id": reply_id,
                    "timestamp": timestamp,
                    "type": "text",
                    "text": {"body": text},
                });
                Some(Outgoing {
                    kind: WebhookKind::Text,
                    message_id: reply_id,
                    context_message_id: None,
                    value: inbound_value(config, metadata, &wa_id, reply),
                })
            }
            Event::Inbound { from, text, id } => {
                let wa_id = from.as_str().trim_start_matches('+').to_string();
                let message = json!({
                    "from": wa_id,
                    "id": id,
                    "timestamp": timestamp,
                    "type": "text",
                    "text": {"body": text},
                });
                Some(Outgoing {
                    kind: WebhookKind::Text,
                    message_id: id,
                    context_message_id: None,
                    value: inbound_value(config, metadata, &wa_id, message),
                })
            }
        }
    }
}

/// The `value` of an inbound message, with the sender's contact card.
fn inbound_value(config: &WhatsAppSimConfig, metadata: Value, wa_id: &str, message: Value) -> Value {
    json!({
        "messaging_product": "whatsapp",
        "metadata": metadata,
        "contacts": [{"profile": {"name": config.profile_name}, "wa_id": wa_id}],
        "messages": [message],
    })
}
