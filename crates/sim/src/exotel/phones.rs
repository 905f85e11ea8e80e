//! Phones held by a person (a browser page, or a test): a held number's
//! script is [`CalleeScript::interactive`], so a call to it rings until the
//! person answers or rejects it (or `TimeOut` runs out: `no-answer`, as an
//! unanswered scripted phone), the prompts the flow plays to it are kept
//! for them to read and hear, a Gather waits for the keys they press, and
//! in a Voicebot stream they speak by typed words or recorded audio.
//!
//! Every action goes through the paths a scripted phone takes: answering
//! or rejecting leg 1 (or a bridge's leg 2) fires the leg's outcome event
//! now instead of later, hanging up fires its hang-up event, and a
//! Connect leg or a Gather is woken early to look at the phone's news. The
//! callbacks and applet requests our service receives are therefore the
//! ones the scripted path makes.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};
use mangwale_core::E164;
use serde::Serialize;

use super::calls::{CallMode, CallStatus};
use super::script::CalleeScript;
use super::state::{Event, LegOutcome};
use super::{IntoNumber, SimError, SimHandle};
use crate::clock::{add, lock};

/// How many prompts one call keeps for its phone.
const MAX_PROMPTS: usize = 50;

/// Something the flow played to the person on a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PhonePrompt {
    pub at: DateTime<Utc>,
    pub applet_id: String,
    /// `greeting` or `gather`.
    pub kind: String,
    /// The words spoken (empty when the prompt is audio only).
    pub text: String,
    /// The audio files played, as our service gave them.
    pub audio_urls: Vec<String>,
}

impl PhonePrompt {
    /// A prompt from what our service answered: lines that are all
    /// http(s) URLs are audio files, anything else is text to speak.
    pub(crate) fn from_answer(at: DateTime<Utc>, applet_id: &str, kind: &str, body: &str) -> PhonePrompt {
        let lines: Vec<&str> = body.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        let audio = !lines.is_empty() && lines.iter().all(|l| l.starts_with("http://") || l.starts_with("https://"));
        PhonePrompt {
            at,
            applet_id: applet_id.to_string(),
            kind: kind.to_string(),
            text: if audio { String::new() } else { body.trim().to_string() },
            audio_urls: if audio { lines.iter().map(|l| l.to_string()).collect() } else { Vec::new() },
        }
    }
}

/// A Gather waiting for the person's keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PhoneListening {
    pub applet_id: String,
    /// Keys pressed so far in this play of the prompt.
    pub pressed: String,
    pub max_digits: usize,
    pub finish_on_key: Option<char>,
    /// When the prompt has finished playing.
    pub prompt_ends_at: DateTime<Utc>,
    #[serde(skip)]
    pub(crate) input_timeout: Duration,
    /// When the Gather stops listening unless another key comes.
    pub until: DateTime<Utc>,
}

impl PhoneListening {
    /// Whether the keys pressed end the Gather now (its finish key, or
    /// as many digits as it takes).
    pub(crate) fn complete(&self) -> bool {
        let (digits, finished) = take_keys(&self.pressed, self.max_digits, self.finish_on_key);
        finished.is_some() || digits.chars().count() >= self.max_digits
    }
}

/// The digits a Gather takes from `pressed`, and what ended it if the keys
/// did (`finish_on_key`, `max_input_digits`); `None`: still listening.
pub(crate) fn take_keys(
    pressed: &str,
    max_digits: usize,
    finish_on_key: Option<char>,
) -> (String, Option<&'static str>) {
    let mut digits = String::new();
    for key in pressed.chars() {
        if Some(key) == finish_on_key {
            return (digits, Some("finish_on_key"));
        }
        digits.push(key);
        if digits.chars().count() >= max_digits {
            return (digits, Some("max_input_digits"));
        }
    }
    (digits, None)
}

/// What a person did to a Connect leg ringing (or talking) on their phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LegDecision {
    Answer,
    Reject,
    HangUp,
}

/// A turn the person takes in a Voicebot stream.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum LiveTurn {
    /// Typed words, spoken by the simulated caller's voice.
    Words { text: String, language: String },
    /// Keys pressed in the stream.
    Keys(String),
    /// Recorded audio: mono 16-bit samples at `rate`.
    Audio { samples: Vec<i16>, rate: u32 },
}

/// What held phones are doing, beside the calls themselves.
#[derive(Debug, Default)]
pub(crate) struct Phones {
    prompts: HashMap<String, VecDeque<PhonePrompt>>,
    listening: HashMap<String, PhoneListening>,
    decisions: HashMap<(String, usize), LegDecision>,
    /// When an interactive Connect leg rings out, by (call, leg).
    ring_until: HashMap<(String, usize), DateTime<Utc>>,
    /// The Voicebot stream a call's caller is in, by call.
    streams: HashMap<String, String>,
    turns: HashMap<String, VecDeque<LiveTurn>>,
}

impl Phones {
    pub(crate) fn prompt(&mut self, sid: &str, prompt: PhonePrompt) {
        let list = self.prompts.entry(sid.to_string()).or_default();
        if list.len() >= MAX_PROMPTS {
            list.pop_front();
        }
        list.push_back(prompt);
    }

    pub(crate) fn listen(&mut self, sid: &str, listening: PhoneListening) {
        self.listening.insert(sid.to_string(), listening);
    }

    pub(crate) fn listening(&self, sid: &str) -> Option<&PhoneListening> {
        self.listening.get(sid)
    }

    pub(crate) fn stop_listening(&mut self, sid: &str) -> Option<PhoneListening> {
        self.listening.remove(sid)
    }

    pub(crate) fn take_decision(&mut self, sid: &str, leg: usize) -> Option<LegDecision> {
        self.decisions.remove(&(sid.to_string(), leg))
    }

    pub(crate) fn rings_until(&mut self, sid: &str, leg: usize, at: DateTime<Utc>) {
        self.ring_until.insert((sid.to_string(), leg), at);
    }

    pub(crate) fn in_stream(&mut self, sid: &str, stream_sid: Option<&str>) {
        match stream_sid {
            Some(stream) => self.streams.insert(sid.to_string(), stream.to_string()),
            None => self.streams.remove(sid),
        };
    }

    pub(crate) fn take_turns(&mut self, sid: &str) -> Vec<LiveTurn> {
        self.turns.remove(sid).map(Vec::from).unwrap_or_default()
    }

    /// Forgets what belongs to a call that ended (its prompts stay for the
    /// phone's last call).
    pub(crate) fn call_ended(&mut self, sid: &str) {
        self.listening.remove(sid);
        self.decisions.retain(|(s, _), _| s != sid);
        self.ring_until.retain(|(s, _), _| s != sid);
        self.streams.remove(sid);
        self.turns.remove(sid);
    }
}

/// Why a phone cannot do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum PhoneError {
    #[error(transparent)]
    Number(#[from] SimError),
    #[error("{0} is not held: hold it first (POST phones/{{number}}/hold)")]
    NotHeld(String),
    #[error("no call is ringing on {0}")]
    NotRinging(String),
    #[error("{0} is on no call")]
    NoCall(String),
    #[error("nothing on the call is listening for keys")]
    NotListening,
    #[error("the caller is not talking to a voice bot")]
    NoStream,
    #[error("not a key: {0:?} (0-9, * and #)")]
    InvalidKeys(String),
    /// A value of the request is wrong: the field, and why.
    #[error("{1}")]
    Invalid(&'static str, String),
}

impl PhoneError {
    /// The HTTP status of the control endpoint's answer.
    pub fn status(&self) -> u16 {
        match self {
            PhoneError::Number(_) | PhoneError::InvalidKeys(_) | PhoneError::Invalid(..) => 400,
            PhoneError::NotHeld(_) => 404,
            _ => 409,
        }
    }

    /// The field of the control request at fault: `number` (the phone in
    /// the path, and what it is doing), `digits`, or the field named.
    pub fn field(&self) -> &'static str {
        match self {
            PhoneError::InvalidKeys(_) => "digits",
            PhoneError::Invalid(field, _) => field,
            _ => "number",
        }
    }
}

/// One call on a phone, as the phone shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhoneCall {
    pub call_sid: String,
    pub leg: usize,
    /// `callee` (the phone is rung) or `caller` (the phone called an ExoPhone).
    pub role: &'static str,
    /// `ringing`, `in-progress`, or the leg's final status.
    pub status: String,
    /// The number on the phone's screen: who calls (the ExoPhone or the
    /// caller id a Connect shows), or the ExoPhone dialled.
    pub other_number: String,
    pub flow_id: Option<String>,
    pub rang_at: Option<DateTime<Utc>>,
    /// When it stops ringing unless answered.
    pub rings_until: Option<DateTime<Utc>>,
    pub answered_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    /// What the flow played to this phone, oldest first (leg 1 only).
    pub prompts: Vec<PhonePrompt>,
    pub listening: Option<PhoneListening>,
    /// The Voicebot stream the caller talks to, if any.
    pub stream_sid: Option<String>,
}

/// A phone, as `GET /_sim/phones/{number}` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhoneView {
    pub number: E164,
    pub held: bool,
    pub now: DateTime<Utc>,
    /// The call ringing or in progress on it.
    pub call: Option<PhoneCall>,
    /// The call before, once over.
    pub last: Option<PhoneCall>,
}

fn active(status: Option<CallStatus>) -> bool {
    matches!(status, Some(CallStatus::Ringing | CallStatus::InProgress))
}

fn valid_keys(digits: &str) -> Result<(), PhoneError> {
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit() || c == '*' || c == '#') {
        return Err(PhoneError::InvalidKeys(digits.to_string()));
    }
    Ok(())
}

impl SimHandle {
    /// A person holds the phone of `number`: calls to it ring until they
    /// answer or reject them through [`SimHandle::answer`] and
    /// [`SimHandle::reject`] (or ring out), and they press the keys
    /// ([`SimHandle::press`]). Replaces the number's script.
    pub fn hold(&self, number: impl IntoNumber) -> Result<(), SimError> {
        self.script(number, CalleeScript::interactive())
    }

    /// The person puts the phone down: the number answers as unscripted
    /// numbers do again (calls under way go on).
    pub fn release(&self, number: impl IntoNumber) -> Result<(), SimError> {
        let number = number.into_number()?;
        let mut st = lock(&self.inner.state);
        if st.scripts.get(number.as_str()).is_some_and(CalleeScript::is_interactive) {
            st.scripts.remove(number.as_str());
        }
        Ok(())
    }

    /// Whether a person holds `number`'s phone.
    pub fn is_held(&self, number: &E164) -> bool {
        lock(&self.inner.state).scripts.get(number.as_str()).is_some_and(CalleeScript::is_interactive)
    }

    /// Every held phone, by number.
    pub fn held_phones(&self) -> Vec<PhoneView> {
        let mut numbers: Vec<E164> = lock(&self.inner.state)
            .scripts
            .iter()
            .filter(|(_, s)| s.is_interactive())
            .filter_map(|(n, _)| E164::parse(n).ok())
            .collect();
        numbers.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        numbers.into_iter().map(|n| self.phone_view(&n)).collect()
    }

    /// What `number`'s phone shows: the call ringing or in progress on it,
    /// with the prompts played to it and the Gather listening for its keys.
    pub fn phone(&self, number: impl IntoNumber) -> Result<PhoneView, SimError> {
        Ok(self.phone_view(&number.into_number()?))
    }

    fn phone_view(&self, number: &E164) -> PhoneView {
        let held = self.is_held(number);
        let now = self.now();
        let st = lock(&self.inner.state);
        let phones = lock(&self.inner.phones);
        let mut call = None;
        let mut last = None;
        for c in st.calls.iter().rev() {
            for (leg, l) in c.legs.iter().enumerate().rev() {
                if &l.number != number {
                    continue;
                }
                let is_active = !c.is_ended() && active(l.status);
                if (is_active && call.is_some()) || (!is_active && last.is_some()) {
                    continue;
                }
                let incoming = matches!(c.mode, CallMode::Incoming { .. });
                let flow_id = match &c.mode {
                    CallMode::Flow { flow_id, .. } => flow_id.clone(),
                    CallMode::Incoming { flow_id } => Some(flow_id.clone()),
                    _ => None,
                };
                let rings_until = match (&c.mode, leg, l.dialled_at) {
                    (CallMode::Incoming { .. }, 0, _) => None,
                    (CallMode::Bridge, _, Some(at)) | (_, 0, Some(at)) => {
                        Some(at + chrono::Duration::seconds(i64::from(c.time_out)))
                    }
                    _ => phones.ring_until.get(&(c.sid.clone(), leg)).copied(),
                };
                let first_leg = leg == 0;
                let shown = PhoneCall {
                    call_sid: c.sid.clone(),
                    leg,
                    role: if incoming && first_leg { "caller" } else { "callee" },
                    status: l.status.map(|s| s.as_str().to_string()).unwrap_or_else(|| "queued".into()),
                    other_number: c.caller_id.as_str().to_string(),
                    flow_id,
                    rang_at: l.dialled_at,
                    rings_until,
                    answered_at: l.answered_at,
                    ended_at: l.ended_at.or(c.ended_at),
                    prompts: if first_leg {
                        phones.prompts.get(&c.sid).map(|p| p.iter().cloned().collect()).unwrap_or_default()
                    } else {
                        Vec::new()
                    },
                    listening: if first_leg && is_active { phones.listening.get(&c.sid).cloned() } else { None },
                    stream_sid: if first_leg && is_active { phones.streams.get(&c.sid).cloned() } else { None },
                };
                if is_active {
                    call = Some(shown);
                } else {
                    last = Some(shown);
                }
            }
            if call.is_some() && last.is_some() {
                break;
            }
        }
        PhoneView { number: number.clone(), held, now, call, last }
    }

    /// The active call on a held phone.
    fn held_call(&self, number: &E164) -> Result<PhoneCall, PhoneError> {
        if !self.is_held(number) {
            return Err(PhoneError::NotHeld(number.masked()));
        }
        self.phone_view(number).call.ok_or_else(|| PhoneError::NoCall(number.masked()))
    }

    /// Whether leg `leg` of call `sid` is dialled by a flow's Connect (the
    /// flow engine rings it), not by the call itself.
    fn is_connect_leg(&self, sid: &str, leg: usize) -> bool {
        lock(&self.inner.state).call(sid).is_some_and(|c| leg > 0 && !matches!(c.mode, CallMode::Bridge))
    }

    /// Fires `event` now and everything it leads to.
    async fn fire(&self, event: Event) {
        let now = self.now();
        lock(&self.inner.state).schedule(now, event);
        self.run_due().await;
    }

    /// Tells the flow engine about a Connect leg now.
    async fn decide(&self, sid: &str, leg: usize, decision: LegDecision) {
        let now = self.now();
        lock(&self.inner.phones).decisions.insert((sid.to_string(), leg), decision);
        lock(&self.inner.state).reschedule_flow(sid, now);
        self.run_due().await;
    }

    /// The person answers the call ringing on `number`.
    pub async fn answer(&self, number: impl IntoNumber) -> Result<PhoneView, PhoneError> {
        self.pick_up(number, true).await
    }

    /// The person rejects the call ringing on `number`: it ends `busy`, as
    /// a scripted [`Pickup::Busy`](super::Pickup::Busy) does.
    pub async fn reject(&self, number: impl IntoNumber) -> Result<PhoneView, PhoneError> {
        self.pick_up(number, false).await
    }

    async fn pick_up(&self, number: impl IntoNumber, answer: bool) -> Result<PhoneView, PhoneError> {
        let number = number.into_number()?;
        let call = self.held_call(&number)?;
        if call.status != CallStatus::Ringing.as_str() || call.role != "callee" {
            return Err(PhoneError::NotRinging(number.masked()));
        }
        if self.is_connect_leg(&call.call_sid, call.leg) {
            let decision = if answer { LegDecision::Answer } else { LegDecision::Reject };
            self.decide(&call.call_sid, call.leg, decision).await;
        } else {
            let outcome = if answer { LegOutcome::Answer } else { LegOutcome::Busy };
            self.fire(Event::LegOutcome { sid: call.call_sid.clone(), leg: call.leg, outcome }).await;
        }
        Ok(self.phone_view(&number))
    }

    /// The person hangs up (a ringing call they were rung on is rejected;
    /// a call they placed that still rings is given up).
    pub async fn hang_up(&self, number: impl IntoNumber) -> Result<PhoneView, PhoneError> {
        let number = number.into_number()?;
        let call = self.held_call(&number)?;
        let ringing = call.status == CallStatus::Ringing.as_str();
        if ringing && call.role == "callee" {
            return self.reject(&number).await;
        }
        if self.is_connect_leg(&call.call_sid, call.leg) {
            self.decide(&call.call_sid, call.leg, LegDecision::HangUp).await;
        } else {
            self.fire(Event::LegHangUp { sid: call.call_sid.clone(), leg: call.leg }).await;
        }
        Ok(self.phone_view(&number))
    }

    /// The person presses `digits` on the call: keys for the Gather
    /// listening (each key restarts its input timeout; its finish key or
    /// its last digit ends it at once), or `dtmf` in a Voicebot stream.
    pub async fn press(&self, number: impl IntoNumber, digits: &str) -> Result<PhoneView, PhoneError> {
        let number = number.into_number()?;
        valid_keys(digits)?;
        let call = self.held_call(&number)?;
        if call.leg != 0 || call.status != CallStatus::InProgress.as_str() {
            return Err(PhoneError::NotListening);
        }
        let sid = call.call_sid;
        let now = self.now();
        let wake = {
            let mut phones = lock(&self.inner.phones);
            if phones.streams.contains_key(&sid) {
                phones.turns.entry(sid.clone()).or_default().push_back(LiveTurn::Keys(digits.to_string()));
                now
            } else {
                let listening = phones.listening.get_mut(&sid).ok_or(PhoneError::NotListening)?;
                listening.pressed.push_str(digits);
                listening.until = add(listening.prompt_ends_at.max(now), listening.input_timeout);
                if listening.complete() { now } else { listening.until }
            }
        };
        lock(&self.inner.state).reschedule_flow(&sid, wake);
        self.run_due().await;
        Ok(self.phone_view(&number))
    }

    /// The caller on `number` says `text` (in `language`, `hi-en` when
    /// `None`) to the Voicebot it talks to: spoken by the simulated caller's
    /// voice and registered in the transcript book, as a scripted turn.
    pub async fn say(
        &self,
        number: impl IntoNumber,
        text: &str,
        language: Option<&str>,
    ) -> Result<PhoneView, PhoneError> {
        if text.trim().is_empty() {
            return Err(PhoneError::Invalid("text", "say something: text is empty".into()));
        }
        let turn = LiveTurn::Words { text: text.trim().to_string(), language: language.unwrap_or("hi-en").to_string() };
        self.live_turn(number, turn).await
    }

    /// The caller on `number` speaks `samples` (mono 16-bit at `rate`, a
    /// recording from a microphone) to the Voicebot it talks to, as the
    /// caller's audio in the stream.
    pub async fn speak_audio(
        &self,
        number: impl IntoNumber,
        samples: Vec<i16>,
        rate: u32,
    ) -> Result<PhoneView, PhoneError> {
        if samples.is_empty() {
            return Err(PhoneError::Invalid("pcm", "the recording is empty".into()));
        }
        if !(8_000..=48_000).contains(&rate) {
            return Err(PhoneError::Invalid("sample_rate", format!("sample rate {rate}: give 8000 to 48000 Hz")));
        }
        self.live_turn(number, LiveTurn::Audio { samples, rate }).await
    }

    async fn live_turn(&self, number: impl IntoNumber, turn: LiveTurn) -> Result<PhoneView, PhoneError> {
        let number = number.into_number()?;
        let call = self.held_call(&number)?;
        let sid = call.call_sid;
        {
            let mut phones = lock(&self.inner.phones);
            if call.leg != 0 || !phones.streams.contains_key(&sid) {
                return Err(PhoneError::NoStream);
            }
            phones.turns.entry(sid.clone()).or_default().push_back(turn);
        }
        let now = self.now();
        lock(&self.inner.state).reschedule_flow(&sid, now);
        self.run_due().await;
        Ok(self.phone_view(&number))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_end_at_the_finish_key_or_the_last_digit() {
        assert_eq!(take_keys("1", 1, Some('#')), ("1".to_string(), Some("max_input_digits")));
        assert_eq!(take_keys("12", 3, Some('#')), ("12".to_string(), None));
        assert_eq!(take_keys("12#5", 3, Some('#')), ("12".to_string(), Some("finish_on_key")));
        assert_eq!(take_keys("#", 3, None), ("#".to_string(), None));
        let prompt = PhonePrompt::from_answer(Utc::now(), "menu", "gather", "https://a/1.wav\n https://a/2.wav");
        assert_eq!((prompt.text.as_str(), prompt.audio_urls.len()), ("", 2));
        let prompt = PhonePrompt::from_answer(Utc::now(), "menu", "gather", " Press 1 ");
        assert_eq!((prompt.text.as_str(), prompt.audio_urls.len()), ("Press 1", 0));
    }
}
