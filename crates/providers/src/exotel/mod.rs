//! Exotel: the v1 REST client, the requests Exotel makes to our applet and
//! callback URLs, and the answers we give its applets. The wire protocol is
//! described, with sources, in `shared/docs/exotel-wire.md`.

pub mod applet;
pub mod client;
pub mod inbound;
pub mod params;
pub mod time;
pub mod voicebot;
