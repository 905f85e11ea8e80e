//! Inbound calls: who is calling, what they hear, and calling back those
//! who missed us.

pub mod missed;
