//! How the simulated people behave when a template reaches them, and the
//! faults the simulated Graph API can be told to show.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Graph error codes the simulator answers a send with at once when a
/// recipient [`RecipientScript::Fails`] with them (Meta reports these in
/// the API answer); every other failure code, 131026 "Message
/// undeliverable" among them, is accepted (`wamid` and all) and then
/// reported by a `failed` status webhook with `errors`, as Meta does.
pub const SYNCHRONOUS_FAILURES: [i64; 4] = [
    // Recipient cannot be sender.
    131_021, // Recipient phone number not in allowed list (test numbers).
    131_030, // Spam rate limit hit.
    131_048, // (Business Account, Consumer Account) pair rate limit hit.
    131_056,
];

/// What the person behind a number does with each template sent to them.
/// Times count from Meta accepting the message; `sent` and `delivered`
/// statuses come at the configured delays (1 s and 2 s by default).
///
/// In JSON (durations in seconds): `{"kind": "reads", "after": 5}`,
/// `{"kind": "reply_button", "index": 0, "after": 20}`,
/// `{"kind": "reply_text", "text": "ok", "after": 20}`,
/// `{"kind": "never_answers"}`, `{"kind": "fails", "code": 131026}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RecipientScript {
    /// Statuses `sent`, `delivered`, then `read` after `after`.
    Reads {
        #[serde(with = "secs")]
        after: Duration,
    },
    /// Reads the template after `after` and taps its quick-reply button
    /// `index`: an inbound `button` message whose `context.id` is the
    /// template's message id and whose payload is the one the send gave
    /// that button (its label when none was given). A template without
    /// that button is only read.
    ReplyButton {
        index: usize,
        #[serde(with = "secs")]
        after: Duration,
    },
    /// Reads the template after `after` and writes `text` back.
    ReplyText {
        text: String,
        #[serde(with = "secs")]
        after: Duration,
    },
    /// Statuses `sent` and `delivered`, and nothing more.
    NeverAnswers,
    /// The message fails with Graph error `code`: at once for the codes in
    /// [`SYNCHRONOUS_FAILURES`] (131048, 131056, …), otherwise (131026
    /// undeliverable, …) accepted and then a `failed` status webhook
    /// carrying the error.
    Fails { code: i64 },
}

impl Default for RecipientScript {
    /// Reads every message 10 s after it was accepted.
    fn default() -> Self {
        RecipientScript::Reads { after: Duration::from_secs(10) }
    }
}

impl RecipientScript {
    pub fn reads_after(after: Duration) -> Self {
        RecipientScript::Reads { after }
    }

    pub fn replies_button(index: usize, after: Duration) -> Self {
        RecipientScript::ReplyButton { index, after }
    }

    pub fn replies_text(text: impl Into<String>, after: Duration) -> Self {
        RecipientScript::ReplyText { text: text.into(), after }
    }

    pub fn fails(code: i64) -> Self {
        RecipientScript::Fails { code }
    }

    /// Whether a send to this recipient is refused in the API answer.
    pub(crate) fn fails_synchronously(&self) -> Option<i64> {
        match self {
            RecipientScript::Fails { code } if SYNCHRONOUS_FAILURES.contains(code) => Some(*code),
            _ => None,
        }
    }
}

/// A misbehaviour of the Graph API for the next requests to the messages
/// endpoint. Faults apply before authentication, in the order injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// Answer this 5xx status with a Graph error body (code 2 "Service
    /// temporarily unavailable" for 503, code 131000 "Something went
    /// wrong" otherwise); nothing is sent.
    ServerError { status: u16 },
    /// Answer 429 with Graph code 130429 (throughput limit); nothing is sent.
    RateLimited,
    /// Close the connection without answering; nothing is sent.
    Drop,
    /// Accept the message (it is sent, its webhooks follow), then close the
    /// connection without answering: the client cannot know.
    DropAfterProcessing,
    /// Accept the message at once and answer this long (real time) later:
    /// a client that gives up sooner cannot know it was sent.
    Delay {
        #[serde(with = "secs")]
        secs: Duration,
    },
    /// Accept the message, then answer 504 with a proxy's HTML page (no
    /// Graph body), as a gateway that stopped waiting for Meta does.
    GatewayTimeout,
}

impl Fault {
    pub fn server_error(status: u16) -> Self {
        Fault::ServerError { status }
    }

    pub fn delay(by: Duration) -> Self {
        Fault::Delay { secs: by }
    }
}

/// Durations as (fractional) seconds in JSON.
pub(crate) mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_and_faults_in_json() {
        let script: RecipientScript =
            serde_json::from_str(r#"{"kind": "reply_button", "index": 1, "after": 2.5}"#).unwrap();
        assert_eq!(script, RecipientScript::replies_button(1, Duration::from_millis(2500)));
        let fails: RecipientScript = serde_json::from_str(r#"{"kind": "fails", "code": 131026}"#).unwrap();
        assert_eq!(fails.fails_synchronously(), None, "131026 comes by webhook");
        assert_eq!(RecipientScript::fails(131_056).fails_synchronously(), Some(131_056));
        assert_eq!(RecipientScript::fails(131_047).fails_synchronously(), None);
        let fault: Fault = serde_json::from_str(r#"{"kind": "server_error", "status": 503}"#).unwrap();
        assert_eq!(fault, Fault::server_error(503));
        assert_eq!(serde_json::to_value(Fault::RateLimited).unwrap(), serde_json::json!({"kind": "rate_limited"}));
    }
}
