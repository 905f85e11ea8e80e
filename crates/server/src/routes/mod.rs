//! HTTP routes. Each module exposes `router()`.

pub mod campaign_compliance;
pub mod campaigns;
pub mod comms;
pub mod console;
pub mod docs;
pub mod exotel_auth;
pub mod exotel_ivr;
pub mod exotel_sms;
pub mod exotel_voicebot;
pub mod jupiter_webhooks;
pub mod masking;
pub mod ops;
pub mod sandbox_sim;
pub mod system;
pub mod voice;
pub mod whatsapp;
