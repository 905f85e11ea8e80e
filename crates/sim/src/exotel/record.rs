//! The Record applet as Exotel runs it: the caller speaks after the prompt,
//! the recording is kept, and its URL goes to the next applet as
//! `RecordingUrl` (Exotel's Passthru article: "RecordingUrl … if the
//! Passthru follows a Connect/Voicemail applet").
//!
//! Recordings are WAV, 8 kHz mono 16-bit, served at
//! `{sim}/exotelrecordings/{account_sid}/{recording_sid}.wav` behind the
//! account's Basic credentials (API key and token), as Exotel's
//! credential-protected recording URLs are. Exotel serves MP3 by default
//! and WAV on request (its voice-log download takes `format` `mp3` or
//! `wav`); the service decodes both. What the caller says is spoken by the
//! flow engine's [`CallerVoice`](crate::speech::CallerVoice) (espeak-ng in
//! sandbox mode), which registers it in the transcript book; the samples of
//! the recording are exactly the caller's samples (silence around them
//! only), so the simulated ASR servers find it again.

use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, Response};
use http_body_util::Full;

use super::Inner;
use super::faults::{Endpoint, Fault, take_fault};
use crate::clock::lock;

/// The rate of recordings (narrowband telephony).
pub const RECORDING_RATE: u32 = 8_000;
/// The path prefix recordings are served under.
pub const RECORDINGS_PATH: &str = "/exotelrecordings/";
/// Silence before the caller starts speaking (after the beep).
const LEAD: Duration = Duration::from_millis(300);

/// A recording of `speech`: [`LEAD`] of silence, the speech, then the
/// silence that ends the recording, cut at `max_length`.
pub(crate) fn recording_samples(speech: &[i16], rate: u32, silence: Duration, max_length: Duration) -> Vec<i16> {
    let samples_of = |d: Duration| usize::try_from(d.as_micros() * u128::from(rate) / 1_000_000).unwrap_or(usize::MAX);
    let mut out = vec![0i16; samples_of(LEAD)];
    out.extend_from_slice(speech);
    out.extend(std::iter::repeat_n(0i16, samples_of(silence)));
    out.truncate(samples_of(max_length));
    out
}

/// Where a recording is fetched.
pub(crate) fn recording_url(base_url: &str, account_sid: &str, recording_sid: &str) -> String {
    format!("{}{RECORDINGS_PATH}{account_sid}/{recording_sid}.wav", base_url.trim_end_matches('/'))
}

/// The key a recording is kept under in the flow records.
pub(crate) fn recording_key(recording_sid: &str) -> String {
    format!("rec-{recording_sid}")
}

type HttpResponse = Response<Full<Bytes>>;

fn answer(status: u16, content_type: &str, body: Bytes) -> HttpResponse {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = http::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(CONTENT_TYPE, v);
    }
    r
}

fn credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let (user, pass) = String::from_utf8(decoded).ok()?.split_once(':').map(|(u, p)| (u.to_string(), p.to_string()))?;
    Some((user, pass))
}

/// What a request for a recording gets, and the fault to apply first
/// (`recordings` faults: a status, a slow answer, a dropped connection).
pub(crate) enum Served {
    Answer(HttpResponse),
    /// Answer this after the real-time delay.
    Slow(Duration, HttpResponse),
    Drop,
}

/// `GET {RECORDINGS_PATH}{account_sid}/{recording_sid}.wav`: 401 without
/// the account's credentials, 404 for an unknown recording.
pub(crate) fn serve(inner: &Inner, method: &http::Method, headers: &HeaderMap, rest: &str) -> Served {
    let fault = take_fault(&mut lock(&inner.state).faults, Some(Endpoint::Recordings));
    let reply = || -> HttpResponse {
        if *method != http::Method::GET && *method != http::Method::HEAD {
            return answer(405, "application/json", Bytes::from_static(br#"{"error":"GET only"}"#));
        }
        let cfg = &inner.config;
        let authorised = credentials(headers).is_some_and(|(user, pass)| user == cfg.api_key && pass == cfg.api_token);
        if !authorised {
            return answer(
                401,
                "application/json",
                Bytes::from_static(br#"{"RestException":{"Status":401,"Message":"Unauthorized; ","Code":34010}}"#),
            );
        }
        let found = rest
            .strip_suffix(".wav")
            .and_then(|p| p.split_once('/'))
            .filter(|(account, _)| *account == cfg.account_sid)
            .and_then(|(_, sid)| lock(&inner.flow_records).recording(&recording_key(sid)));
        match found {
            Some(wav) => answer(200, "audio/wav", Bytes::from(wav.as_ref().clone())),
            None => answer(404, "application/json", Bytes::from_static(br#"{"error":"no such recording"}"#)),
        }
    };
    match fault {
        Some(Fault::Status { status }) => {
            Served::Answer(answer(status, "text/html", Bytes::from(format!("<html><body>{status}</body></html>"))))
        }
        Some(Fault::Delay { secs }) => Served::Slow(secs, reply()),
        Some(Fault::Drop) | Some(Fault::DropAfterProcessing) => Served::Drop,
        None => Served::Answer(reply()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::audio;
    use super::*;

    #[test]
    fn a_recording_holds_the_callers_samples_between_silences() {
        let speech = audio::synthesize("do dosa", RECORDING_RATE, Duration::from_millis(60));
        let rec = recording_samples(&speech, RECORDING_RATE, Duration::from_secs(2), Duration::from_secs(60));
        assert_eq!(rec.len(), 2_400 + speech.len() + 16_000);
        assert_eq!(&rec[2_400..2_400 + speech.len()], &speech[..]);
        assert!(rec[..2_400].iter().chain(&rec[2_400 + speech.len()..]).all(|&s| s == 0));
        let cut = recording_samples(&speech, RECORDING_RATE, Duration::from_secs(2), Duration::from_secs(1));
        assert_eq!(cut.len(), 8_000);
        assert_eq!(
            recording_url("http://127.0.0.1:9/", "acme1", "abc"),
            "http://127.0.0.1:9/exotelrecordings/acme1/abc.wav"
        );
    }
}
