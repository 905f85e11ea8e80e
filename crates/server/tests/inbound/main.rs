//! Inbound calls end to end (issue 10): who is calling, the menu they hear,
//! missed-call callbacks, masked calls and the rider's pickup details, with
//! the in-process simulators on clocks the tests move.

#[path = "../common/mod.rs"]
mod common;

mod campaign_call;
mod campaign_send;
mod compliance;
mod masking;
mod menus;
mod missed;
mod phones;
mod pickup;
mod sandbox_sim;
mod speech;
mod voice_call;
mod voice_catalog;
mod voice_cli;
mod voice_fallback;
mod voice_order;
mod voice_record;
mod voicebot;
