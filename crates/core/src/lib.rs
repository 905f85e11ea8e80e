//! Pure domain core of the Mangwale Exotel service.
//!
//! No IO, no async and no reading of the time: everything here is a value
//! or a pure function, so it can be tested exhaustively and reused by every
//! layer. Time is injected through [`clock::Clock`].

pub mod campaign;
pub mod campaign_outcome;
pub mod campaign_send;
pub mod clock;
pub mod context;
pub mod csv;
pub mod ids;
pub mod inbound;
pub mod ivr;
pub mod ladder;
pub mod mask;
pub mod masking;
pub mod phone;

pub use ids::{Language, OrderId};
pub use mask::mask_phone_numbers;
pub use phone::E164;

/// A value that failed to parse at the edge of the system.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub String);
