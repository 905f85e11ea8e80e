//! Calls into Mangwale: who is calling ([`caller`]), the menu each caller
//! gets in the inbound flow `customer_voice_order` ([`menus`]), and calling
//! back those who missed us ([`missed`]).

pub mod caller;
pub mod menus;
pub mod missed;
