//! The voice crate's tests against committed data (crates/voice/tests/data).

mod catalog_format;
mod devset;
mod dialog;
mod fallback;
mod protocol;
