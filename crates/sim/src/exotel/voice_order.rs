//! A pretend voice order in one request: someone calls the ExoPhone that
//! runs `customer_voice_order`, presses the food key at the welcome menu,
//! and speaks to the Voicebot, listening to each answer before the next
//! turn (`POST /_sim/voice-order`, [`SimHandle::place_voice_order`]).

use std::time::Duration;

use mangwale_core::E164;
use serde::{Deserialize, Serialize};

use super::engine::INCOMING_FLOW;
use super::script::{CalleeScript, Cue, Utterance};
use super::{SimError, SimHandle};

/// The welcome menu's Gather in `customer_voice_order`.
const MENU_APPLET: &str = "menu";
/// The menu of a customer with an active order, and its "new order" key.
const ORDER_MENU_APPLET: &str = "order_menu";
const NEW_ORDER_KEY: &str = "3";
/// The Voicebot applet in `customer_voice_order`.
const BOT_APPLET: &str = "bot";

/// What the caller does, in JSON:
///
/// ```json
/// {"from": "+919876543210",
///  "keys_before": "1",
///  "say": ["Godavari Misal House se do misal pav aur ek cutting chai"],
///  "then_keys": "1",
///  "then_say": [{"text": "cash", "language": "en"}]}
/// ```
///
/// `to` (an ExoPhone) defaults to the one running `customer_voice_order`;
/// `keys_before` (pressed at the welcome menu) to `1`, food (a caller with
/// an active order presses 3, "a new order", at their order menu first); `language` to
/// `hi-en` for every line that names none. Lines are words, or objects with
/// `text`, `keys`, `language`, `barge_in_ms` (talk over the bot's answer
/// that long after it starts), `pause` (seconds of silence first; a line
/// with neither words nor keys is a silence that long) and `hang_up`. Every
/// line waits for the bot's answer to the one before. `hang_up_after`
/// (seconds from the call coming in) makes the caller hang up then, in the
/// middle of whatever is happening; by default they stay until the flow
/// ends the call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VoiceOrder {
    pub from: String,
    #[serde(default, alias = "exophone")]
    pub to: Option<String>,
    #[serde(default = "food")]
    pub keys_before: String,
    #[serde(default)]
    pub say: Vec<CallerLine>,
    #[serde(default)]
    pub then_keys: String,
    #[serde(default)]
    pub then_say: Vec<CallerLine>,
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub hang_up_after: Option<f64>,
}

fn food() -> String {
    "1".to_string()
}

/// One line of the caller: words, or a turn spelt out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CallerLine {
    Words(String),
    Turn(LineSpec),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineSpec {
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub keys: String,
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub barge_in_ms: Option<u64>,
    #[serde(default)]
    pub pause: Option<f64>,
    #[serde(default)]
    pub hang_up: bool,
}

impl VoiceOrder {
    /// `from` says `sentences` after pressing 1 at the menu.
    pub fn new(from: &str, sentences: &[&str]) -> VoiceOrder {
        VoiceOrder {
            from: from.to_string(),
            to: None,
            keys_before: food(),
            say: sentences.iter().map(|s| CallerLine::Words(s.to_string())).collect(),
            then_keys: String::new(),
            then_say: Vec::new(),
            language: None,
            hang_up_after: None,
        }
    }

    /// The caller's script: keys at the welcome menu, then a turn in the
    /// Voicebot stream per line, each after the bot's answer.
    pub fn script(&self) -> Result<CalleeScript, String> {
        let mut script = match self.hang_up_after {
            Some(secs) => {
                let after = Duration::try_from_secs_f64(secs).map_err(|e| format!("hang_up_after: {e}"))?;
                CalleeScript::default().stays_for(after)
            }
            None => CalleeScript::default().never_hangs_up(),
        };
        // A customer with an active order hears its status first: 3 there
        // is "a new order", which leads to the welcome menu.
        script = script.presses(ORDER_MENU_APPLET, NEW_ORDER_KEY);
        if !self.keys_before.is_empty() {
            script = script.presses(MENU_APPLET, &self.keys_before);
        }
        let keys = (!self.then_keys.is_empty())
            .then(|| CallerLine::Turn(LineSpec { keys: self.then_keys.clone(), ..LineSpec::default() }));
        for line in self.say.iter().chain(keys.as_ref()).chain(&self.then_say) {
            script = script.turn(self.turn(line)?);
        }
        Ok(script)
    }

    fn turn(&self, line: &CallerLine) -> Result<Utterance, String> {
        let spec = match line {
            CallerLine::Words(text) => LineSpec { text: text.clone(), ..LineSpec::default() },
            CallerLine::Turn(spec) => spec.clone(),
        };
        if !spec.keys.chars().all(|c| c.is_ascii_digit() || c == '*' || c == '#') {
            return Err(format!("keys {:?}: only 0-9, * and #", spec.keys));
        }
        let mut turn = Utterance::after_reply(BOT_APPLET, &spec.text).then_presses(&spec.keys);
        turn.language = spec.language.or_else(|| self.language.clone());
        if let Some(ms) = spec.barge_in_ms {
            turn.cue = Cue::BargeIn { after_ms: ms };
        }
        if let Some(secs) = spec.pause {
            turn.pause = Some(Duration::try_from_secs_f64(secs).map_err(|e| format!("pause: {e}"))?);
        }
        turn.hang_up = spec.hang_up;
        Ok(turn)
    }
}

/// A placed voice order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlacedVoiceOrder {
    pub call_sid: String,
    pub flow_id: String,
    /// The ExoPhone called (E.164).
    pub exophone: String,
    /// The script the caller plays.
    pub script: CalleeScript,
}

impl SimHandle {
    /// Places `order`: scripts the caller and calls the ExoPhone (see
    /// [`VoiceOrder`]).
    pub fn place_voice_order(&self, order: &VoiceOrder) -> Result<PlacedVoiceOrder, VoiceOrderError> {
        let script = order.script().map_err(VoiceOrderError::Invalid)?;
        let exophone = match &order.to {
            Some(to) => E164::parse(to).map_err(|e| VoiceOrderError::Sim(SimError::InvalidNumber(e.0)))?,
            None => self
                .exophone_flows()
                .into_iter()
                .find(|(_, flow)| flow == INCOMING_FLOW)
                .map(|(number, _)| number)
                .ok_or(VoiceOrderError::NoVoiceOrderExoPhone)?,
        };
        self.script(order.from.as_str(), script.clone()).map_err(VoiceOrderError::Sim)?;
        let (call_sid, flow_id) = self.call_exophone(order.from.as_str(), &exophone).map_err(VoiceOrderError::Sim)?;
        Ok(PlacedVoiceOrder { call_sid, flow_id, exophone: exophone.as_str().to_string(), script })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VoiceOrderError {
    #[error("{0}")]
    Invalid(String),
    #[error("no ExoPhone runs {INCOMING_FLOW}")]
    NoVoiceOrderExoPhone,
    #[error(transparent)]
    Sim(SimError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_request_becomes_menu_keys_and_listening_turns() {
        let order: VoiceOrder = serde_json::from_value(serde_json::json!({
            "from": "+919876543210",
            "say": ["Godavari Misal House se do misal pav aur ek cutting chai"],
            "then_keys": "1",
            "then_say": [{"text": "cash", "language": "en"}, {"pause": 4}, {"text": "haan", "barge_in_ms": 300, "hang_up": true}],
        }))
        .unwrap();
        let script = order.script().unwrap();
        assert_eq!(script.hang_up_after, None);
        let keys: Vec<(&str, &str)> =
            script.keypresses.iter().map(|k| (k.prompt.as_str(), k.digits.as_str())).collect();
        assert_eq!(keys, [("order_menu", "3"), ("menu", "1")]);
        let turns = &script.utterances;
        assert_eq!(turns.len(), 5);
        assert!(turns.iter().all(|t| t.prompt == "bot"));
        assert_eq!((turns[0].cue, turns[0].language_tag()), (Cue::AfterReply, "hi-en"));
        assert_eq!((turns[1].text.as_str(), turns[1].digits.as_str()), ("", "1"));
        assert_eq!(turns[2].language_tag(), "en");
        assert_eq!(turns[3].pause, Some(Duration::from_secs(4)));
        assert_eq!((turns[4].cue, turns[4].hang_up), (Cue::BargeIn { after_ms: 300 }, true));

        let bad: VoiceOrder =
            serde_json::from_value(serde_json::json!({"from": "+919876543210", "then_keys": "one"})).unwrap();
        assert!(bad.script().unwrap_err().contains("only 0-9"));
        assert!(
            serde_json::from_value::<VoiceOrder>(serde_json::json!({"from": "x", "say": [{"txt": "typo"}]})).is_err()
        );
    }
}
