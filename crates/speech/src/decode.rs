//! Decoding a call recording into PCM for a recogniser.
//!
//! Exotel's recordings are MP3 by default (`RecordingFormat` `mp3`, or
//! `mp3-hq`); simulators, the user's own tools and some accounts hand WAV
//! (16-bit PCM or G.711 μ-law/A-law). The format is told by the bytes
//! themselves (RIFF/WAVE, an ID3 tag or an MPEG frame header), not by the
//! `Content-Type`, which storage buckets often get wrong.

use std::io::Cursor;

use mangwale_voice::speech::{Pcm16, SampleRate};
use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use thiserror::Error;

use crate::audio::{self, AudioError};

/// The containers a recording can come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordingFormat {
    Wav,
    Mp3,
}

impl RecordingFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordingFormat::Wav => "wav",
            RecordingFormat::Mp3 => "mp3",
        }
    }
}

/// A decoded recording: mono samples at the file's own rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub format: RecordingFormat,
    pub sample_rate: u32,
    pub samples: Vec<i16>,
}

impl Decoded {
    pub fn duration_ms(&self) -> u64 {
        self.samples.len() as u64 * 1000 / u64::from(self.sample_rate.max(1))
    }

    /// The audio at a rate recognisers take: 8 kHz and 16 kHz recordings
    /// are passed on unchanged (sample for sample, so that a recogniser, or
    /// the simulators' transcript book, sees exactly what the caller said);
    /// any other rate is resampled to 16 kHz, or to 8 kHz when the
    /// recording is narrower than that.
    pub fn into_pcm(self) -> Pcm16 {
        if let Some(rate) = SampleRate::from_hz(self.sample_rate) {
            return Pcm16 { sample_rate: rate, samples: self.samples };
        }
        let target = if self.sample_rate < 8_000 { SampleRate::Hz8000 } else { SampleRate::Hz16000 };
        Pcm16 { sample_rate: target, samples: audio::resample(&self.samples, self.sample_rate, target.hz()) }
    }
}

/// Why a recording could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("the recording is empty")]
    Empty,
    /// Neither WAV nor MP3 (an HTML error page, a JSON body, another codec).
    #[error("not a WAV or MP3 recording (it starts with {0})")]
    Unrecognised(String),
    #[error("the WAV recording cannot be read: {0}")]
    Wav(#[from] AudioError),
    #[error("the MP3 recording cannot be read: {0}")]
    Mp3(String),
    /// Longer than the caller's turn can be (a whole call, a stuck recorder).
    #[error("the recording is {seconds} s long, more than the {max_seconds} s a turn may be")]
    TooLong { seconds: u64, max_seconds: u64 },
    /// Decoded, but nothing was in it.
    #[error("the recording holds no audio")]
    NoAudio,
}

/// Decodes `bytes` (WAV or MP3, told by their first bytes) into mono PCM,
/// refusing more than `max_seconds` of audio.
pub fn decode(bytes: &[u8], max_seconds: u64) -> Result<Decoded, DecodeError> {
    let decoded = match sniff(bytes)? {
        RecordingFormat::Wav => {
            let wav = audio::parse_wav(bytes)?;
            Decoded { format: RecordingFormat::Wav, sample_rate: wav.sample_rate, samples: wav.samples }
        }
        RecordingFormat::Mp3 => decode_mp3(bytes, max_seconds)?,
    };
    let seconds = decoded.samples.len() as u64 / u64::from(decoded.sample_rate.max(1));
    if seconds > max_seconds {
        return Err(DecodeError::TooLong { seconds, max_seconds });
    }
    if decoded.samples.is_empty() {
        return Err(DecodeError::NoAudio);
    }
    Ok(decoded)
}

/// The container, from the first bytes.
pub fn sniff(bytes: &[u8]) -> Result<RecordingFormat, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WAVE" {
        return Ok(RecordingFormat::Wav);
    }
    // An ID3v2 tag, or an MPEG audio frame's 11-bit sync word.
    if bytes.starts_with(b"ID3") || (bytes.len() >= 2 && bytes[0] == 0xFF && bytes[1] & 0xE0 == 0xE0) {
        return Ok(RecordingFormat::Mp3);
    }
    let shown: String =
        bytes.iter().take(8).map(|&b| if b.is_ascii_graphic() || b == b' ' { char::from(b) } else { '.' }).collect();
    Err(DecodeError::Unrecognised(format!("{shown:?}")))
}

/// MP3 through symphonia (pure Rust), mixed to mono.
fn decode_mp3(bytes: &[u8], max_seconds: u64) -> Result<Decoded, DecodeError> {
    let failed = |e: SymphoniaError| DecodeError::Mp3(e.to_string());
    let stream = MediaSourceStream::new(Box::new(Cursor::new(bytes.to_vec())), Default::default());
    let mut hint = Hint::new();
    hint.with_extension("mp3");
    let mut format = symphonia::default::get_probe()
        .probe(&hint, stream, FormatOptions::default(), MetadataOptions::default())
        .map_err(failed)?;
    let track = format.default_track(TrackType::Audio).ok_or_else(|| DecodeError::Mp3("no audio track".into()))?;
    let track_id = track.id;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or_else(|| DecodeError::Mp3("the audio track has no codec parameters".into()))?;
    let mut decoder =
        symphonia::default::get_codecs().make_audio_decoder(params, &AudioDecoderOptions::default()).map_err(failed)?;
    let mut samples = Vec::new();
    let mut rate = 0u32;
    let mut interleaved: Vec<i16> = Vec::new();
    let mut bad_frames = 0usize;
    loop {
        let packet = match format.next_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) => break,
            // A truncated last frame ends the stream like its end.
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(failed(e)),
        };
        if packet.track_id != track_id {
            continue;
        }
        let buffer = match decoder.decode(&packet) {
            Ok(buffer) => buffer,
            // A corrupt frame is skipped, as players do; a file of nothing
            // but corrupt frames decodes to no audio.
            Err(SymphoniaError::DecodeError(_)) => {
                bad_frames += 1;
                continue;
            }
            Err(e) => return Err(failed(e)),
        };
        let spec = buffer.spec();
        rate = spec.rate();
        let channels = spec.channels().count().max(1);
        interleaved.resize(buffer.samples_interleaved(), 0);
        buffer.copy_to_slice_interleaved(&mut interleaved);
        if channels == 1 {
            samples.extend_from_slice(&interleaved);
        } else {
            samples.extend(
                interleaved
                    .chunks_exact(channels)
                    .map(|frame| (frame.iter().map(|&s| i32::from(s)).sum::<i32>() / channels as i32) as i16),
            );
        }
        if rate > 0 && samples.len() as u64 / u64::from(rate) > max_seconds {
            return Err(DecodeError::TooLong { seconds: samples.len() as u64 / u64::from(rate), max_seconds });
        }
    }
    if rate == 0 {
        return Err(DecodeError::Mp3(format!("no frame could be decoded ({bad_frames} corrupt)")));
    }
    Ok(Decoded { format: RecordingFormat::Mp3, sample_rate: rate, samples })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, ms: u32) -> Vec<i16> {
        let n = (rate * ms / 1000) as usize;
        (0..n)
            .map(|i| ((i as f64 * 440.0 * 2.0 * std::f64::consts::PI / f64::from(rate)).sin() * 8000.0) as i16)
            .collect()
    }

    /// A μ-law WAV (format tag 7) of `samples`' G.711 encoding.
    fn ulaw_wav(codes: &[u8], rate: u32) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(b"RIFF");
        out.extend_from_slice(&(4 + 26 + 8 + codes.len() as u32).to_le_bytes());
        out.extend_from_slice(b"WAVEfmt ");
        out.extend_from_slice(&18u32.to_le_bytes());
        out.extend_from_slice(&7u16.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&rate.to_le_bytes());
        out.extend_from_slice(&rate.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&8u16.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(b"data");
        out.extend_from_slice(&(codes.len() as u32).to_le_bytes());
        out.extend_from_slice(codes);
        out
    }

    #[test]
    fn a_pcm_wav_decodes_sample_for_sample_and_keeps_its_rate() {
        let samples = tone(8_000, 300);
        let decoded = decode(&audio::write_wav(&samples, 8_000), 60).unwrap();
        assert_eq!(decoded.format, RecordingFormat::Wav);
        assert_eq!(decoded.duration_ms(), 300);
        let pcm = decoded.into_pcm();
        assert_eq!(pcm.sample_rate, SampleRate::Hz8000);
        assert_eq!(pcm.samples, samples);
    }

    #[test]
    fn a_ulaw_wav_decodes_to_linear_pcm() {
        let codes: Vec<u8> = (0..=255u8).cycle().take(800).collect();
        let decoded = decode(&ulaw_wav(&codes, 8_000), 60).unwrap();
        assert_eq!(decoded.sample_rate, 8_000);
        let expected: Vec<i16> = codes.iter().map(|&c| audio::ulaw_to_linear(c)).collect();
        assert_eq!(decoded.samples, expected);
    }

    #[test]
    fn other_rates_are_resampled_for_the_recogniser() {
        let decoded = decode(&audio::write_wav(&tone(22_050, 500), 22_050), 60).unwrap();
        let pcm = decoded.into_pcm();
        assert_eq!(pcm.sample_rate, SampleRate::Hz16000);
        assert_eq!(pcm.samples.len(), 8_000);
    }

    #[test]
    fn what_is_not_audio_is_named() {
        assert_eq!(decode(b"", 60), Err(DecodeError::Empty));
        let html = decode(b"<html><body>404</body></html>", 60).unwrap_err();
        assert_eq!(html, DecodeError::Unrecognised("\"<html><b\"".into()));
        assert!(matches!(decode(b"RIFF\0\0\0\0WAVEjunk", 60), Err(DecodeError::Wav(_))));
        assert!(matches!(decode(b"ID3\x04\0\0\0\0\0\0garbage", 60), Err(DecodeError::Mp3(_))));
        let long = audio::write_wav(&vec![100; 8_000 * 3], 8_000);
        assert_eq!(decode(&long, 2), Err(DecodeError::TooLong { seconds: 3, max_seconds: 2 }));
        assert_eq!(decode(&audio::write_wav(&[], 8_000), 60), Err(DecodeError::NoAudio));
    }

    /// `tests/fixtures/tone-8k.mp3`: 1 s of 440 Hz at 8 kHz mono, encoded
    /// by `lame -r -s 8 --bitwidth 16 --signed --little-endian -m m -b 16`
    /// (the form of Exotel's default recordings: MP3, 8 kHz, mono).
    #[test]
    fn an_mp3_recording_decodes() {
        let bytes = include_bytes!("../tests/fixtures/tone-8k.mp3");
        let decoded = decode(bytes, 60).unwrap();
        assert_eq!(decoded.format, RecordingFormat::Mp3);
        assert_eq!(decoded.sample_rate, 8_000);
        // The encoder's delay and padding add a few frames around the second.
        assert!((7_000..=10_000).contains(&decoded.samples.len()), "{}", decoded.samples.len());
        let middle = &decoded.samples[2_000..6_000];
        let rms = (middle.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / middle.len() as f64).sqrt();
        assert!(rms > 3_000.0, "the tone survives encoding: rms {rms}");
        assert_eq!(decoded.into_pcm().sample_rate, SampleRate::Hz8000);
    }
}
