//! The WhatsApp Cloud API (Meta's Graph API): sending approved templates,
//! and reading the webhooks Meta sends us.
//!
//! - [`WhatsAppClient::send_template`]: `POST {base}/{version}/{phone_number_id}/messages`
//!   with a Bearer token (and `appsecret_proof` when the app secret is
//!   configured). Every failure is one [`WhatsAppError`]: transient
//!   (retried here with backoff and jitter, then returned), permanent,
//!   ambiguous (the message may have gone out: never retried, because the
//!   Cloud API has no idempotency key), or invalid (refused before sending).
//! - [`WhatsAppClient::list_templates`]: the business account's templates
//!   (`GET /{version}/{waba_id}/message_templates`), and [`check_templates`]
//!   says which of ours are missing or not `APPROVED` in a language.
//! - [`parse_webhook`]: button replies, texts and delivery statuses from the
//!   `messages` webhook; [`verify_signature`] checks its
//!   `X-Hub-Signature-256`; [`verify_subscription`] answers the GET
//!   handshake that registers the callback URL.
//! - Logs carry masked numbers only, never the token, the app secret or
//!   template parameters (they hold customers' names and addresses).

mod client;
mod config;
mod error;
#[doc(hidden)]
pub mod fuzz;
mod message;
mod templates;
mod webhook;

pub use client::WhatsAppClient;
pub use config::{DEFAULT_API_VERSION, DEFAULT_BASE_URL, WhatsAppClientConfig};
pub use error::{GraphDetails, PAIR_RATE_LIMIT_WAIT, WhatsAppError, WhatsAppErrorKind, codes};
pub use message::{MAX_BUTTONS, MAX_PARAM_CHARS, MAX_TEMPLATE_NAME, SentMessage, TemplateMessage, valid_template_name};
pub use templates::{ListedTemplate, TemplateProblem, check_templates};
pub use webhook::{
    DeliveryStatus, InboundEvent, SIGNATURE_HEADER, WEBHOOK_OBJECT, WebhookError, parse_webhook, signature_header,
    verify_signature, verify_subscription,
};
