//! Protocol-faithful simulators of the services Mangwale talks to, for tests
//! and sandbox mode. Each runs as a real HTTP server on loopback, so the
//! production clients are exercised over the wire.
//!
//! - [`exotel`]: Exotel's v1 voice and SMS API and its callbacks, and the
//!   call flows (applet requests, Voicebot WebSocket) Exotel runs against us.
//! - [`jupiter`]: Jupiter, the order backend, and the PHP backend behind it,
//!   with the Nashik demo data; and the webhooks Jupiter sends us.
//! - [`speech`]: simulated ASR servers and the book of what simulated
//!   callers said.
//! - [`llm`] and [`nlu`]: an OpenAI-compatible chat server and the NLU
//!   service, answering the voice fallback from scripted tables.
//!
//! Time comes from a [`SimClock`]: the system clock for the sandbox, or a
//! manual clock that tests advance, firing every due event in order.

pub mod clock;
pub mod exotel;
mod http;
pub mod ids;
pub mod jupiter;
pub mod llm;
pub mod nlu;
pub mod push;
pub mod speech;
pub mod whatsapp;

pub use clock::SimClock;
pub use exotel::{
    CalleeScript, ExotelSim, FlowConfig, FlowDefinitions, SimConfig, SimError, SimHandle, run_standalone,
    run_standalone_with,
};
pub use jupiter::{JupiterSim, JupiterSimConfig};
pub use llm::{LlmScript, LlmSim, LlmSimConfig};
pub use nlu::{NluScript, NluSim};
pub use push::{PushSim, PushSimConfig};
pub use whatsapp::{RecipientScript, WhatsAppSim, WhatsAppSimConfig};
