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
    /// The phone is held by a person (a browser, see
    /// [`SimHandle::hold`](super::SimHandle::hold)): it rings until they
    /// answer or reject it, or until `TimeOut` runs out (`no-answer`, as
    /// [`Pickup::NoAnswer`]); once answered, their keys come from
    /// [`SimHandle::press`](super::SimHandle::press).
    Interactive,
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
/// empty `prompt` matches every prompt). The flow engine matches `prompt`
/// by the rule of [`PromptContext`] (applet id, n-th Gather, or text) and
/// uses each entry once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keypress {
    pub prompt: String,
    pub digits: String,
}

/// One turn of the callee in a Voicebot stream: words, keys, silence or
/// hanging up, when a prompt containing `prompt` plays. The flow engine
/// matches `prompt` by the rule of [`PromptContext`] (usually the Voicebot
/// applet's id) and uses each entry once; a stream takes every entry that
/// matches it, as successive turns.
///
/// In JSON only `prompt` is required: `{"prompt": "bot", "text": "do misal
/// pav", "language": "hi-en", "cue": {"kind": "after_reply"}, "digits": "1",
/// "pause": 0.5, "hang_up": false}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Utterance {
    pub prompt: String,
    /// The words (empty: a turn of keys, silence or hanging up only).
    #[serde(default)]
    pub text: String,
    /// The language tag the words are in: `hi`, `mr` (Devanagari), `en`,
    /// `hi-en` (Hinglish in Latin letters, the default). Picks the voice and
    /// is what the transcript book answers with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// When the turn begins.
    #[serde(default)]
    pub cue: Cue,
    /// Keys pressed in the stream (`dtmf` events) after the words.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub digits: String,
    /// Silence between the cue and the words: for a turn without words or
    /// keys, how long the caller stays silent. Defaults: the stream's
    /// `speech_start`/`speech_gap` for [`Cue::Timed`], its `reply_pause`
    /// for [`Cue::AfterReply`], none for [`Cue::BargeIn`].
    #[serde(default, with = "opt_secs", skip_serializing_if = "Option::is_none")]
    pub pause: Option<Duration>,
    /// Hangs up once the turn is over (the stream stops, the call ends).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hang_up: bool,
}

/// When a caller's turn in a Voicebot stream begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Cue {
    /// On the clock, whatever the bot does: the first turn `speech_start`
    /// after the stream starts, each next one `speech_gap` after the
    /// previous ended (the simulator's original schedule).
    #[default]
    Timed,
    /// Once the bot has answered the previous turn (for the first turn: has
    /// said something) and its audio has finished playing, after `pause`:
    /// a caller who listens.
    AfterReply,
    /// `after_ms` after the bot's answer starts playing: the caller talks
    /// over the prompt (the bot should `clear` its audio).
    BargeIn { after_ms: u64 },
}

impl Utterance {
    /// Words spoken on the original schedule.
    pub fn timed(prompt: &str, text: &str) -> Utterance {
        Utterance {
            prompt: prompt.to_string(),
            text: text.to_string(),
            language: None,
            cue: Cue::Timed,
            digits: String::new(),
            pause: None,
            hang_up: false,
        }
    }

    /// Words said once the bot has answered and finished speaking.
    pub fn after_reply(prompt: &str, text: &str) -> Utterance {
        Utterance { cue: Cue::AfterReply, ..Utterance::timed(prompt, text) }
    }

    pub fn in_language(mut self, language: &str) -> Utterance {
        self.language = Some(language.to_string());
        self
    }

    pub fn cue(mut self, cue: Cue) -> Utterance {
        self.cue = cue;
        self
    }

    /// Presses `digits` after the words.
    pub fn then_presses(mut self, digits: &str) -> Utterance {
        self.digits = digits.to_string();
        self
    }

    pub fn pause(mut self, pause: Duration) -> Utterance {
        self.pause = Some(pause);
        self
    }

    pub fn then_hangs_up(mut self) -> Utterance {
        self.hang_up = true;
        self
    }

    /// The language tag of the words (`hi-en` unless given).
    pub fn language_tag(&self) -> &str {
        self.language.as_deref().unwrap_or("hi-en")
    }
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

    /// A phone held by a person: rings until answered or rejected through
    /// the control endpoints, stays on until they hang up, presses only the
    /// keys they press.
    pub fn interactive() -> Self {
        CalleeScript {
            pickup: Pickup::Interactive,
            hang_up_after: None,
            answered_by: AnsweredBy::Human,
            keypresses: Vec::new(),
            utterances: Vec::new(),
        }
    }

    /// Whether a person holds this phone ([`Pickup::Interactive`]).
    pub fn is_interactive(&self) -> bool {
        self.pickup == Pickup::Interactive
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

    /// Presses `digits` when a prompt containing `prompt` plays (in flows:
    /// see [`PromptContext`] for how `prompt` is matched).
    pub fn presses(mut self, prompt: &str, digits: &str) -> Self {
        self.keypresses.push(Keypress { prompt: prompt.to_string(), digits: digits.to_string() });
        self
    }

    /// Says `text` when a prompt containing `prompt` plays (in flows: see
    /// [`PromptContext`]; a Voicebot stream carries it as audio).
    pub fn says(mut self, prompt: &str, text: &str) -> Self {
        self.utterances.push(Utterance::timed(prompt, text));
        self
    }

    /// Takes a turn in a Voicebot stream whose applet matches `prompt` (see
    /// [`Utterance`]: words in a language, keys, silence, barge-in, hang-up).
    pub fn turn(mut self, utterance: Utterance) -> Self {
        self.utterances.push(utterance);
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

    /// The first keypress not in `used` that matches `at` (see [`PromptContext`]).
    pub fn next_keypress(&self, at: &PromptContext<'_>, used: &[usize]) -> Option<usize> {
        (0..self.keypresses.len()).find(|i| !used.contains(i) && at.matches(&self.keypresses[*i].prompt))
    }

    /// The first utterance not in `used` that matches `at` (see [`PromptContext`]).
    pub fn next_utterance(&self, at: &PromptContext<'_>, used: &[usize]) -> Option<usize> {
        (0..self.utterances.len()).find(|i| !used.contains(i) && at.matches(&self.utterances[*i].prompt))
    }
}

/// Where the callee is when the flow engine asks for keys or speech: a
/// Gather prompt playing, or a Voicebot stream.
///
/// The flow engine's matching rule for the `prompt` of a scripted
/// [`Keypress`] or [`Utterance`]:
///
/// 1. `""` matches every prompt;
/// 2. `"#n"` matches the n-th Gather visit of the call (1-based; repeats of
///    the same visit count once; a Voicebot is never `#n`);
/// 3. a prompt equal to the id of an applet of the flow matches that applet
///    only (`"menu"` does not match `prep_menu`);
/// 4. anything else matches when it is contained in the text being played
///    (a Gather's `text`, or its `audio_url`).
///
/// Each entry is used once, in script order: successive visits take
/// successive entries, so `.presses("menu", "9").presses("menu", "1")`
/// presses 9 at the first visit of `menu` and 1 at the second. An entry
/// with empty digits stays silent for that play (the menu repeats).
#[derive(Debug, Clone, Copy)]
pub struct PromptContext<'a> {
    pub applet_id: &'a str,
    /// The n-th Gather visit of the call; 0 outside a Gather.
    pub gather_visit: u32,
    pub text: &'a str,
    /// The ids of every applet of the flow.
    pub applet_ids: &'a [&'a str],
}

impl PromptContext<'_> {
    /// Whether a scripted `prompt` applies here.
    pub fn matches(&self, prompt: &str) -> bool {
        if prompt.is_empty() {
            return true;
        }
        if let Some(n) = prompt.strip_prefix('#').and_then(|n| n.parse::<u32>().ok()) {
            return self.gather_visit == n;
        }
        if self.applet_ids.contains(&prompt) {
            return prompt == self.applet_id;
        }
        self.text.contains(prompt)
    }
}

/// What the answered leg of a flow or voicebot call is connected to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FlowMode {
    /// `Url=http://my.exotel.com/<sid>/exoml/start_voice/<app_id>`; `flow_id`
    /// is the app id at the end of the URL.
    Flow { url: String, flow_id: Option<String> },
    /// `StreamUrl=wss://…` with `StreamType=bidirectional`.
    Voicebot { stream_url: String, stream_name: Option<String> },
    /// Someone called one of our ExoPhones, which runs flow `flow_id`.
    Incoming { flow_id: String },
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
    /// When the call was placed (or came in).
    pub created_at: DateTime<Utc>,
    /// When the callee answered; for an incoming call not yet answered by
    /// the flow, when it came in.
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

    #[test]
    fn prompts_match_by_applet_visit_or_text_and_are_used_once() {
        let ids = ["menu", "prep_menu", "bot"];
        let at = |applet_id, gather_visit, text| PromptContext { applet_id, gather_visit, text, applet_ids: &ids };
        let script = CalleeScript::default()
            .presses("menu", "9")
            .presses("menu", "3")
            .presses("prep_menu", "2")
            .presses("#4", "7")
            .presses("dabayein", "1")
            .says("bot", "do dosa");
        let mut used = Vec::new();
        let first = script.next_keypress(&at("menu", 1, "Press 1"), &used).unwrap();
        used.push(first);
        let second = script.next_keypress(&at("menu", 2, "Press 1"), &used).unwrap();
        used.push(second);
        assert_eq!((script.keypresses[first].digits.as_str(), script.keypresses[second].digits.as_str()), ("9", "3"));
        assert_eq!(script.next_keypress(&at("prep_menu", 3, "Minutes?"), &used), Some(2), "not taken by 'menu'");
        assert_eq!(script.next_keypress(&at("menu", 4, "again"), &used), Some(3), "#4");
        assert_eq!(script.next_keypress(&at("other", 5, "2 dabayein"), &used), Some(4), "by text");
        assert_eq!(script.next_keypress(&at("other", 5, "nothing"), &used), None);
        assert_eq!(script.next_utterance(&at("bot", 0, ""), &[]), Some(0));
        assert_eq!(script.next_utterance(&at("bot", 0, ""), &[0]), None);
        assert!(at("x", 0, "").matches(""));
    }
}
