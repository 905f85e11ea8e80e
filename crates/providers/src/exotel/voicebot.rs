//! The Voicebot (bidirectional stream) WebSocket protocol: the JSON events
//! Exotel sends a bot, and those a bot sends back. Audio is base64 16-bit
//! little-endian mono PCM, 8 kHz unless the URL asks otherwise; what a bot
//! sends must come in multiples of 320 bytes (20 ms at 8 kHz).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Bytes of 20 ms of 8 kHz 16-bit audio: the unit outbound audio must come in.
pub const FRAME_BYTES: usize = 320;

/// An event from Exotel. Numbers arrive as strings or integers depending on
/// the sample; they are kept as JSON values where that varies.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum InboundEvent {
    Connected,
    Start {
        #[serde(default)]
        sequence_number: Value,
        #[serde(default)]
        stream_sid: Option<String>,
        start: StartInfo,
    },
    Media {
        #[serde(default)]
        sequence_number: Value,
        #[serde(default)]
        stream_sid: Option<String>,
        media: MediaPayload,
    },
    Dtmf {
        #[serde(default)]
        stream_sid: Option<String>,
        dtmf: DtmfInfo,
    },
    Mark {
        #[serde(default)]
        stream_sid: Option<String>,
        mark: MarkInfo,
    },
    Stop {
        #[serde(default)]
        stream_sid: Option<String>,
        #[serde(default)]
        stop: Option<StopInfo>,
    },
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct StartInfo {
    pub stream_sid: String,
    pub call_sid: String,
    #[serde(default)]
    pub account_sid: Option<String>,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    /// The query parameters of the applet's URL, without `token`: Exotel
    /// echoes our webhook token here, and it must never be stored or logged.
    #[serde(default, deserialize_with = "parameters_without_token")]
    pub custom_parameters: serde_json::Map<String, Value>,
    #[serde(default)]
    pub media_format: Option<Value>,
}

fn parameters_without_token<'de, D>(deserializer: D) -> Result<serde_json::Map<String, Value>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let mut parameters = Option::<serde_json::Map<String, Value>>::deserialize(deserializer)?.unwrap_or_default();
    parameters.retain(|name, _| !name.eq_ignore_ascii_case("token"));
    Ok(parameters)
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MediaPayload {
    #[serde(default)]
    pub chunk: Value,
    #[serde(default)]
    pub timestamp: Value,
    pub payload: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DtmfInfo {
    pub digit: String,
    #[serde(default)]
    pub duration: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarkInfo {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct StopInfo {
    #[serde(default)]
    pub call_sid: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// An event a bot sends to Exotel.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum OutboundEvent {
    /// Audio to play: base64 PCM, a multiple of [`FRAME_BYTES`].
    Media { stream_sid: String, media: OutboundMedia },
    /// Echoed back by Exotel once the audio queued before it has played.
    Mark { stream_sid: String, mark: MarkInfo },
    /// Drop queued audio that has not played yet (barge-in).
    Clear { stream_sid: String },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboundMedia {
    pub payload: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_events() {
        let start: InboundEvent = serde_json::from_str(
            r#"{"event":"start","sequence_number":1,"stream_sid":"6f04","start":{"stream_sid":"6f04","call_sid":"56b1","account_sid":"acme1","from":"09876543210","to":"08047112233","custom_parameters":{"lead":"42"},"media_format":{"encoding":"raw","sample_rate":"8000","bit_rate":"128"}}}"#,
        )
        .unwrap();
        let InboundEvent::Start { start, .. } = start else { panic!("not a start") };
        assert_eq!((start.call_sid.as_str(), start.custom_parameters["lead"].as_str()), ("56b1", Some("42")));
        let media: InboundEvent = serde_json::from_str(
            r#"{"event":"media","sequence_number":"3","stream_sid":"6f04","media":{"chunk":2,"timestamp":"200","payload":"AAAA"}}"#,
        )
        .unwrap();
        assert!(matches!(media, InboundEvent::Media { .. }));
        let stop: InboundEvent =
            serde_json::from_str(r#"{"event":"stop","sequence_number":20,"stream_sid":"6f04","stop":{"call_sid":"56b1","account_sid":"acme1","reason":"callended"}}"#)
                .unwrap();
        assert!(matches!(stop, InboundEvent::Stop { stop: Some(StopInfo { reason: Some(_), .. }), .. }));
        assert!(matches!(serde_json::from_str(r#"{"event":"connected"}"#).unwrap(), InboundEvent::Connected));
        let dtmf: InboundEvent = serde_json::from_str(
            r#"{"event":"dtmf","sequence_number":7,"stream_sid":"6f04","dtmf":{"digit":"5","duration":"100"}}"#,
        )
        .unwrap();
        assert!(matches!(dtmf, InboundEvent::Dtmf { dtmf: DtmfInfo { ref digit, .. }, .. } if digit == "5"));
    }

    #[test]
    fn the_webhook_token_never_reaches_the_custom_parameters() {
        let start: InboundEvent = serde_json::from_str(
            r#"{"event":"start","stream_sid":"s","start":{"stream_sid":"s","call_sid":"c","custom_parameters":{"flow":"customer_voice_order","token":"S3CR3T-token-0001","Token":"x"}}}"#,
        )
        .unwrap();
        let InboundEvent::Start { start, .. } = start else { panic!("not a start") };
        assert_eq!(start.custom_parameters.keys().collect::<Vec<_>>(), ["flow"]);
        let bare: InboundEvent = serde_json::from_str(
            r#"{"event":"start","start":{"stream_sid":"s","call_sid":"c","custom_parameters":null}}"#,
        )
        .unwrap();
        assert!(
            matches!(bare, InboundEvent::Start { start: StartInfo { ref custom_parameters, .. }, .. } if custom_parameters.is_empty())
        );
    }

    #[test]
    fn serialises_bot_events_in_snake_case() {
        let clear = OutboundEvent::Clear { stream_sid: "s".into() };
        assert_eq!(serde_json::to_string(&clear).unwrap(), r#"{"event":"clear","stream_sid":"s"}"#);
        let mark = OutboundEvent::Mark { stream_sid: "s".into(), mark: MarkInfo { name: "turn-1".into() } };
        assert_eq!(
            serde_json::to_string(&mark).unwrap(),
            r#"{"event":"mark","stream_sid":"s","mark":{"name":"turn-1"}}"#
        );
    }
}
