//! How the simulated people behave when Exotel rings them, and the hook a
//! flow engine implements to play Url (flow) and StreamUrl (voicebot) calls.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use mangwale_core::E164;
use serde::{Deserialize, Serialize};

/// What happens when a number rings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Pickup {
    /// Answers after ringing this long (if that is within the call's
    /// `TimeOut`; otherwise the leg ends `no-answer`).
    Answer {
        #[serde(with = "secs")]
        after: Duration,
    },
    /// Never answers: the leg ends `no-answer` when `TimeOut` (default 30 s) runs out.
    NoAnswer,
    /// Rejects the call after ringing this long: `busy`.
    Busy {
        #[serde(with = "secs")]
        after: Duration,
    },
    /// The network fails the call after this long: `failed`.
    Fail {
        #[serde(with = "secs")]
        after: Duration,
    },
}

/// Who Exotel thinks answered (`Legs[i][AnsweredBy]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum AnsweredBy {
    #[default]
    Human,
    Machine,
    NotSure,
}

impl AnsweredBy {
    pub fn as_str(self) -> &'static str {
        match self {
            AnsweredBy::Human => "Human",
            AnsweredBy::Machine => "Machine",
            AnsweredBy::NotSure => "NotSure",
        }
    }
}

/// Keys the callee presses when a prompt containing `prompt` plays (an
/// empty `prompt` matches every prompt).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keypress {
    pub prompt: String,
    pub digits: String,
}

/// Words the callee speaks when a prompt containing `prompt` plays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Utterance {
    pub prompt: String,
    pub text: String,
}

/// The scripted behaviour of the person behind one phone number.
///
/// ```
/// # use std::time::Duration;
/// # use mangwale_sim::exotel::CalleeScript;
/// let agent = CalleeScript::answers_after(Duration::from_secs(3)).stays_for(Duration::from_secs(60));
/// let customer = CalleeScript::busy();
/// let caller = CalleeScript::answers_after(Duration::from_secs(1)).presses("confirm", "1");
/// # let _ = (agent, customer, caller);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalleeScript {
    pub pickup: Pickup,
    /// How long the callee stays on after answering before hanging up;
    /// `None`: until the other side ends the call or `TimeLimit` runs out.
    /// Defaults to 20 s when absent from JSON; `null` means `None`.
    #[serde(default = "default_talk", with = "opt_secs")]
    pub hang_up_after: Option<Duration>,
    #[serde(default)]
    pub answered_by: AnsweredBy,
    /// Used by the flow engine (Gather prompts, voicebot DTMF).
    #[serde(default)]
    pub keypresses: Vec<Keypress>,
    /// Used by the flow engine (voicebot speech).
    #[serde(default)]
    pub utterances: Vec<Utterance>,
}

/// How long an unscripted callee rings before answering.
pub const DEFAULT_RING: Duration = Duration::from_secs(2);
/// How long an unscripted callee talks.
pub const DEFAULT_TALK: Duration = Duration::from_secs(20);

fn default_talk() -> Option<Duration> {
    Some(DEFAULT_TALK)
}

impl Default for CalleeScript {
    /// Answers after 2 s, hangs up 20 s later.
    fn default() -> Self {
        CalleeScript::answers_after(DEFAULT_RING)
    }
}

impl CalleeScript {
    /// Answers after `ring`, then talks for 20 s (change with [`Self::stays_for`]).
    pub fn answers_after(ring: Duration) -> Self {
        CalleeScript {
            pickup: Pickup::Answer { after: ring },
            hang_up_after: Some(DEFAULT_TALK),
            answered_by: AnsweredBy::Human,
            keypresses: Vec::new(),
            utterances: Vec::new(),
        }
    }

    /// Answers after the default 2 s ring and hangs up `talk` later.
    pub fn hangs_up_after(talk: Duration) -> Self {
        CalleeScript::answers_after(DEFAULT_RING).stays_for(talk)
    }

    /// Never answers.
    pub fn no_answer() -> Self {
        CalleeScript { pickup: Pickup::NoAnswer, ..CalleeScript::default() }
    }

    /// Rejects the call after 3 s of ringing.
    pub fn busy() -> Self {
        CalleeScript::busy_after(Duration::from_secs(3))
    }

    pub fn busy_after(ring: Duration) -> Self {
        CalleeScript { pickup: Pickup::Busy { after: ring }, ..CalleeScript::default() }
    }

    /// The call to this number fails after 1 s.
    pub fn fails() -> Self {
        CalleeScript::fails_after(Duration::from_secs(1))
    }

    pub fn fails_after(after: Duration) -> Self {
        CalleeScript { pickup: Pickup::Fail { after }, ..CalleeScript::default() }
    }

    /// Stays on for `talk` after answering.
    pub fn stays_for(mut self, talk: Duration) -> Self {
        self.hang_up_after = Some(talk);
        self
    }

    /// Stays on until the other side hangs up or `TimeLimit` runs out.
    pub fn never_hangs_up(mut self) -> Self {
        self.hang_up_after = None;
        self
    }

    pub fn answered_by(mut self, who: AnsweredBy) -> Self {
        self.answered_by = who;
        self
    }

    /// Presses `digits` when a prompt containing `prompt` plays.
    pub fn presses(mut self, prompt: &str, digits: &str) -> Self {
        self.keypresses.push(Keypress { prompt: prompt.to_string(), digits: digits.to_string() });
        self
    }

    /// Says `text` when a prompt containing `prompt` plays.
    pub fn says(mut self, prompt: &str, text: &str) -> Self {
        self.utterances.push(Utterance { prompt: prompt.to_string(), text: text.to_string() });
        self
    }

    /// The digits for the first keypress whose prompt matches `prompt_text`.
    pub fn digits_for(&self, prompt_text: &str) -> Option<&str> {
        self.keypresses.iter().find(|k| prompt_text.contains(&k.prompt)).map(|k| k.digits.as_str())
    }

    /// The text of the first utterance whose prompt matches `prompt_text`.
    pub fn speech_for(&self, prompt_text: &str) -> Option<&str> {
        self.utterances.iter().find(|u| prompt_text.contains(&u.prompt)).map(|u| u.text.as_str())
    }
}

/// What the answered leg of a flow or voicebot call is connected to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FlowMode {
    /// `Url=http://my.exotel.com/<sid>/exoml/start_voice/<flow_id>`.
    Flow { url: String, flow_id: Option<String> },
    /// `StreamUrl=wss://…` with `StreamType=bidirectional`.
    Voicebot { stream_url: String, stream_name: Option<String> },
}

/// A flow or voicebot call as the flow engine sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowCall {
    pub call_sid: String,
    pub account_sid: String,
    pub mode: FlowMode,
    /// The person called (`From` of `Calls/connect`).
    pub from: E164,
    /// The ExoPhone (`CallerId`).
    pub exophone: E164,
    pub custom_field: Option<String>,
    /// The callee's script: keypresses and utterances to play back.
    pub script: CalleeScript,
    pub answered_at: DateTime<Utc>,
    /// The simulator's time now.
    pub now: DateTime<Utc>,
}

/// What the flow engine wants next.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlowStep {
    /// Call [`FlowRunner::resume`] again after this much simulated time.
    Wait(Duration),
    /// The flow hung up (end of flow): the call completes now.
    HangUp,
    /// Nothing more to do: the call lasts until the callee hangs up.
    Done,
}

/// Plays flow (Url) and voicebot (StreamUrl) calls once the callee answers.
///
/// The simulator calls these from its event loop and awaits them, so with
/// a manual clock everything a flow does (Passthru requests, WebSocket
/// frames) happens deterministically inside `advance`. Without a runner an
/// answered flow call simply stays connected until the callee hangs up.
/// The callee's `hang_up_after` still applies while a flow runs.
pub trait FlowRunner: Send + Sync + 'static {
    /// The callee answered.
    fn start(&self, call: FlowCall) -> BoxFuture<'_, FlowStep>;
    /// A [`FlowStep::Wait`] ran out.
    fn resume(&self, call: FlowCall) -> BoxFuture<'_, FlowStep>;
    /// The call ended (callee hung up, time limit, or the flow's own `HangUp`).
    fn ended(&self, call: FlowCall) -> BoxFuture<'_, ()> {
        let _ = call;
        Box::pin(async {})
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

pub(crate) mod opt_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_f64(d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        match Option::<f64>::deserialize(d)? {
            Some(secs) => Duration::try_from_secs_f64(secs).map(Some).map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_round_trip_through_json() {
        let script = CalleeScript::answers_after(Duration::from_millis(1500))
            .never_hangs_up()
            .presses("menu", "2")
            .says("name", "Ravi");
        let json = serde_json::to_value(&script).unwrap();
        assert_eq!(json["pickup"], serde_json::json!({"kind": "answer", "after": 1.5}));
        assert_eq!(serde_json::from_value::<CalleeScript>(json).unwrap(), script);
        let busy: CalleeScript = serde_json::from_str(r#"{"pickup":{"kind":"busy","after":4}}"#).unwrap();
        assert_eq!(busy.pickup, Pickup::Busy { after: Duration::from_secs(4) });
        assert_eq!(busy.hang_up_after, Some(DEFAULT_TALK));
        assert_eq!(script.digits_for("main menu: press 2"), Some("2"));
        assert_eq!(script.speech_for("your name?"), Some("Ravi"));
    }
}
