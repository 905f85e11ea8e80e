//! HTTP routes. Each module exposes `router()`.

pub mod exotel_auth;
pub mod system;
