//! Typed clients for the services Mangwale calls out to, and the wire formats
//! those services use when they call us.

pub mod body;
pub mod exotel;
pub mod fallback;
pub mod jupiter;
pub mod push;
pub mod retry;
pub mod whatsapp;
