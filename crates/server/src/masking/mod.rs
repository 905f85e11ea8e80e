//! Number masking: customer, rider and vendor of an order talk through one
//! of our ExoPhones and never see each other's number.
//!
//! The inbound menus (a customer pressing 1 to reach the rider, a rider
//! pressing 1 to reach the customer) and the masked-number flow all go
//! through [`connect_through_session`].

use mangwale_core::E164;
use mangwale_providers::exotel::applet::Connect;

use crate::error::AppResult;
use crate::exotel::CallerPurpose;
use crate::state::AppState;

/// A party of an order, as masking sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartyRole {
    Customer,
    Rider,
    Vendor,
}

/// One side of a masked conversation: who they are to the order, and their
/// real number (which the other side never learns).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leg {
    pub role: PartyRole,
    pub phone: E164,
}

/// The Connect that puts `caller` through to `callee` of `order_id`, showing
/// the callee one of our numbers, never the caller's.
pub async fn connect_through_session(
    state: &AppState,
    order_id: &str,
    caller: &Leg,
    callee: &Leg,
) -> AppResult<Connect> {
    let shown = match state.config.masking_numbers.first() {
        Some(number) => number.clone(),
        None => state.exotel.caller_id(CallerPurpose::Other),
    };
    tracing::info!(order_id, caller = ?caller.role, callee = ?callee.role, "masked connect");
    let connect = Connect::dial(std::slice::from_ref(&callee.phone), Some(&shown)).max_conversation(1800);
    Ok(if state.config.masking_record { connect.recorded() } else { connect })
}
