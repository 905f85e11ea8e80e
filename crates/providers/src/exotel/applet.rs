//! Our answers to Exotel's applets: Gather and Connect JSON, Greeting text,
//! Passthru branching and Switch Case selection. The types serialise to
//! exactly what Exotel expects; the server turns them into HTTP responses.

use mangwale_core::E164;
use serde::Serialize;

/// What Exotel plays: text for its TTS, or an audio file (WAV, 8 kHz mono).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Prompt {
    #[serde(rename = "text")]
    Text(String),
    #[serde(rename = "audio_url")]
    AudioUrl(String),
}

/// The answer to a dynamic Gather applet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gather {
    pub gather_prompt: Prompt,
    pub max_input_digits: u8,
    /// Empty string: no finishing key.
    pub finish_on_key: String,
    /// Seconds to wait between keys.
    pub input_timeout: u8,
    /// How many times the menu is repeated when nothing is pressed.
    pub repeat_menu: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeat_gather_prompt: Option<Prompt>,
}

impl Gather {
    /// A one-key menu: repeated twice on silence, as the IVR menus need.
    pub fn menu(prompt: Prompt) -> Self {
        Gather {
            gather_prompt: prompt,
            max_input_digits: 1,
            finish_on_key: "#".to_string(),
            input_timeout: 6,
            repeat_menu: 2,
            repeat_gather_prompt: None,
        }
    }

    pub fn repeat_with(mut self, prompt: Prompt) -> Self {
        self.repeat_gather_prompt = Some(prompt);
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Destination {
    pub numbers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MusicOnHold {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StartCallPlayback {
    /// `callee` or `both`.
    pub playback_to: String,
    /// `text` or `audio_url`.
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParallelRinging {
    pub activate: bool,
    pub max_parallel_attempts: u8,
}

/// The answer to a dynamic Connect applet: whom to dial and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Connect {
    pub fetch_after_attempt: bool,
    pub destination: Destination,
    /// The ExoPhone shown to the callee (a masked call shows ours, never the
    /// other party's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outgoing_phone_number: Option<String>,
    pub record: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recording_channels: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_ringing_duration: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_conversation_duration: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub music_on_hold: Option<MusicOnHold>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_call_playback: Option<StartCallPlayback>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parallel_ringing: Option<ParallelRinging>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dial_passthru_event_url: Option<String>,
}

impl Connect {
    /// Dial `numbers` (in order) showing `caller_id`.
    pub fn dial(numbers: &[E164], caller_id: Option<&E164>) -> Self {
        Connect {
            fetch_after_attempt: false,
            destination: Destination { numbers: numbers.iter().map(|n| n.as_str().to_string()).collect() },
            outgoing_phone_number: caller_id.map(E164::national),
            record: false,
            recording_channels: None,
            max_ringing_duration: Some(45),
            max_conversation_duration: None,
            music_on_hold: Some(MusicOnHold { kind: "operator_tone".to_string(), value: None }),
            start_call_playback: None,
            parallel_ringing: None,
            dial_passthru_event_url: None,
        }
    }

    /// Nothing to dial: Exotel moves on (or ends the call).
    pub fn nobody() -> Self {
        Connect { destination: Destination { numbers: Vec::new() }, ..Connect::dial(&[], None) }
    }

    pub fn max_conversation(mut self, seconds: u32) -> Self {
        self.max_conversation_duration = Some(seconds.min(14_400));
        self
    }

    pub fn recorded(mut self) -> Self {
        self.record = true;
        self.recording_channels = Some("dual".to_string());
        self
    }

    pub fn announce(mut self, text: impl Into<String>) -> Self {
        self.start_call_playback =
            Some(StartCallPlayback { playback_to: "both".to_string(), kind: "text".to_string(), value: text.into() });
        self
    }
}

/// The body of a Greeting applet answer (`text/plain`): text for TTS, or
/// audio URLs, one per line, played in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Greeting {
    Text(String),
    Audio(Vec<String>),
}

impl Greeting {
    pub fn body(&self) -> String {
        match self {
            Greeting::Text(t) => t.clone(),
            Greeting::Audio(urls) => urls.join("\n"),
        }
    }
}

/// A Passthru's answer: the status code picks the branch; the body is
/// ignored by Exotel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Passthru {
    /// HTTP 200: the flow's first branch.
    Continue,
    /// HTTP 302: the flow's second branch.
    Alternate,
}

impl Passthru {
    pub fn status(self) -> u16 {
        match self {
            Passthru::Continue => 200,
            Passthru::Alternate => 302,
        }
    }
}

/// `Content-Type` of a Greeting answer, and of the Passthru answer read by a
/// Switch Case: Exotel accepts `text/plain` "and nothing else" (support
/// articles 48285 "Greeting using text from URL" and 3000052018
/// "Switchcase").
pub const TEXT_PLAIN: &str = "text/plain";

/// A Passthru answer read by a following Switch Case applet. Exotel's
/// Switch Case article (support 3000052018) specifies HTTP 200,
/// `Content-Type: text/plain` and exactly the body `{"select":"<case>"}`:
/// nothing else goes into it (our own details go to the timeline).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SwitchCase {
    pub select: String,
}

impl SwitchCase {
    pub fn new(select: impl Into<String>) -> Self {
        SwitchCase { select: select.into() }
    }

    /// The exact body: `{"select":"<case>"}`.
    pub fn body(&self) -> String {
        serde_json::json!({ "select": self.select }).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn gather_serialises_as_exotel_expects() {
        let g = Gather::menu(Prompt::Text("Accept ke liye 1 dabayein".into()))
            .repeat_with(Prompt::AudioUrl("https://x/y.wav".into()));
        assert_eq!(
            serde_json::to_value(&g).unwrap(),
            json!({"gather_prompt": {"text": "Accept ke liye 1 dabayein"}, "max_input_digits": 1,
                   "finish_on_key": "#", "input_timeout": 6, "repeat_menu": 2,
                   "repeat_gather_prompt": {"audio_url": "https://x/y.wav"}})
        );
    }

    #[test]
    fn connect_serialises_as_exotel_expects() {
        let rider = E164::parse("9988776655").unwrap();
        let did = E164::parse("08047112233").unwrap();
        let c = Connect::dial(&[rider], Some(&did)).max_conversation(300).recorded();
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            json!({"fetch_after_attempt": false, "destination": {"numbers": ["+919988776655"]},
                   "outgoing_phone_number": "08047112233", "record": true, "recording_channels": "dual",
                   "max_ringing_duration": 45, "max_conversation_duration": 300,
                   "music_on_hold": {"type": "operator_tone"}})
        );
        assert_eq!(serde_json::to_value(Connect::nobody()).unwrap()["destination"], json!({"numbers": []}));
    }

    #[test]
    fn greeting_and_switch_bodies() {
        assert_eq!(Greeting::Audio(vec!["a.wav".into(), "b.wav".into()]).body(), "a.wav\nb.wav");
        assert_eq!(SwitchCase::new("vendor").body(), r#"{"select":"vendor"}"#);
        assert_eq!(SwitchCase::new("a\"b").body(), r#"{"select":"a\"b"}"#);
        assert_eq!((Passthru::Continue.status(), Passthru::Alternate.status()), (200, 302));
    }
}
