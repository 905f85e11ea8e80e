//! Marketing campaigns (issue 13): the compliance gate and opt-out intake.

pub mod compliance;
