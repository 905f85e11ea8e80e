//! What Exotel's reports do to a campaign message: the pure rules behind
//! the SMS delivery reports, the campaign call's status callbacks and the
//! keys pressed in it.
//!
//! A message only moves forward: each outcome names the states it may
//! follow ([`Outcome::moves_from`]), so a late or repeated report (Exotel
//! retries its callbacks) finds the message past them and changes nothing.

use chrono::{DateTime, Duration, Utc};

use crate::campaign::{MessageState, PromoWindow, TemplateCategory};

/// How long after a busy or unanswered campaign call it is tried again.
pub const CALL_RETRY_AFTER: Duration = Duration::minutes(30);

/// How many times an unanswered campaign call is tried again (so at most
/// three calls per message).
pub const CALL_RETRIES: u32 = 2;

/// What Exotel told us about a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The SMS reached the handset.
    Delivered,
    /// The recipient picked up the campaign call.
    Answered,
    /// They pressed 1 (connected to ordering).
    Pressed1,
    /// They pressed 9 (or replied STOP to this message).
    OptedOut,
    /// Not delivered, or the call failed: final.
    Failed,
}

impl Outcome {
    /// The state the message moves to.
    pub fn state(self) -> MessageState {
        match self {
            Outcome::Delivered => MessageState::Delivered,
            Outcome::Answered => MessageState::Answered,
            Outcome::Pressed1 => MessageState::Pressed1,
            Outcome::OptedOut => MessageState::OptedOut,
            Outcome::Failed => MessageState::Failed,
        }
    }

    /// The states the message may be in for this outcome to apply.
    /// `sending` is among them: a report may come before the sender has
    /// recorded that Exotel accepted the message. `failed` is among those
    /// of a delivery, an answer or a key: the sender fails a message whose
    /// fate it could not learn (outcome unknown, never sent again), and
    /// Exotel's report of what became of it is the truth. A failure never
    /// follows a failure.
    pub fn moves_from(self) -> &'static [MessageState] {
        use MessageState::{Answered, Failed, Sending, Sent};
        match self {
            Outcome::Delivered | Outcome::Answered => &[Sending, Sent, Failed],
            Outcome::Failed => &[Sending, Sent],
            Outcome::Pressed1 | Outcome::OptedOut => &[Sending, Sent, Answered, Failed],
        }
    }
}

/// The states from which a busy or unanswered call is queued again.
pub const RETRY_FROM: &[MessageState] = &[MessageState::Sending, MessageState::Sent];

/// What follows a campaign call nobody answered (busy, no answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unanswered {
    /// Queue the message again, due at this time.
    Retry { at: DateTime<Utc> },
    /// The retries are used up: the message failed.
    GiveUp,
}

/// After the `ordinal`-th call of a message (1 for the first) went
/// unanswered at `now`: another call [`CALL_RETRY_AFTER`] later while
/// fewer than [`CALL_RETRIES`] retries were made, moved to the window's next
/// opening (09:00 IST) when that time falls outside it for a promotional
/// message; else give up.
pub fn after_unanswered(ordinal: u32, category: TemplateCategory, now: DateTime<Utc>) -> Unanswered {
    if ordinal > CALL_RETRIES {
        return Unanswered::GiveUp;
    }
    Unanswered::Retry { at: PromoWindow::default().allowed_at(category, now + CALL_RETRY_AFTER) }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::campaign::ist;

    fn at(h: u32, m: u32, day: u32) -> DateTime<Utc> {
        ist().with_ymd_and_hms(2026, 12, day, h, m, 0).single().unwrap().with_timezone(&Utc)
    }

    #[test]
    fn an_unanswered_call_is_tried_twice_more_thirty_minutes_apart() {
        let p = TemplateCategory::Promotional;
        assert_eq!(after_unanswered(1, p, at(11, 0, 6)), Unanswered::Retry { at: at(11, 30, 6) });
        assert_eq!(after_unanswered(2, p, at(11, 31, 6)), Unanswered::Retry { at: at(12, 1, 6) });
        assert_eq!(after_unanswered(3, p, at(12, 2, 6)), Unanswered::GiveUp);
    }

    #[test]
    fn a_retry_that_would_fall_after_nine_pm_waits_for_the_morning() {
        let p = TemplateCategory::Promotional;
        assert_eq!(after_unanswered(1, p, at(20, 45, 6)), Unanswered::Retry { at: at(9, 0, 7) });
        let s = TemplateCategory::ServiceExplicit;
        assert_eq!(after_unanswered(1, s, at(20, 45, 6)), Unanswered::Retry { at: at(21, 15, 6) });
    }

    #[test]
    fn outcomes_only_move_forward() {
        assert!(Outcome::Answered.moves_from().contains(&MessageState::Sent));
        assert!(!Outcome::Answered.moves_from().contains(&MessageState::Pressed1));
        assert!(!Outcome::Answered.moves_from().contains(&MessageState::OptedOut));
        assert!(!Outcome::Delivered.moves_from().contains(&MessageState::Delivered));
        assert!(!Outcome::Failed.moves_from().contains(&MessageState::Delivered));
        assert!(Outcome::OptedOut.moves_from().contains(&MessageState::Answered));
        // A message failed as outcome unknown learns its fate from the report.
        assert!(Outcome::Delivered.moves_from().contains(&MessageState::Failed));
        assert!(!Outcome::Failed.moves_from().contains(&MessageState::Failed));
        for outcome in [Outcome::Delivered, Outcome::Answered, Outcome::Pressed1, Outcome::OptedOut, Outcome::Failed] {
            assert!(outcome.state().is_final());
            assert!(
                outcome.moves_from().iter().all(|s| !s.is_final()
                    || matches!(s, MessageState::Sent | MessageState::Answered | MessageState::Failed))
            );
            assert!(!outcome.moves_from().contains(&outcome.state()), "{outcome:?} is idempotent");
        }
    }
}
