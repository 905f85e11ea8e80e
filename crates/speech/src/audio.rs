//! Audio plumbing: sample-rate conversion and the WAV container.
//!
//! Exotel carries 8 kHz 16-bit mono PCM; espeak-ng writes 22.05 kHz, Whisper
//! and the VAD want 16 kHz. One band-limited resampler serves all of them.

use std::f64::consts::PI;

use thiserror::Error;

/// Why bytes could not be read as audio.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AudioError {
    #[error("not a WAV file: {0}")]
    NotWav(&'static str),
    #[error("unsupported WAV encoding: {0}")]
    Unsupported(String),
}

/// Converts mono samples from `from_hz` to `to_hz` with a windowed-sinc
/// (Blackman) low-pass at the lower Nyquist frequency, so downsampling does
/// not fold high frequencies back into the telephone band.
pub fn resample(samples: &[i16], from_hz: u32, to_hz: u32) -> Vec<i16> {
    if from_hz == to_hz || samples.is_empty() || from_hz == 0 || to_hz == 0 {
        return samples.to_vec();
    }
    let ratio = f64::from(to_hz) / f64::from(from_hz);
    // Cutoff relative to the input rate, a little under Nyquist.
    let cutoff = 0.5 * ratio.min(1.0) * 0.94;
    // Taps on each side, in input samples: wider when downsampling.
    let half = (12.0 / ratio.min(1.0)).ceil() as i64;
    let out_len = ((samples.len() as f64) * ratio).round() as usize;
    let mut out = Vec::with_capacity(out_len);
    let last = samples.len() as i64 - 1;
    for n in 0..out_len {
        let t = n as f64 / ratio;
        let centre = t.floor() as i64;
        let mut acc = 0.0;
        let mut norm = 0.0;
        for k in (centre - half + 1)..=(centre + half) {
            let x = t - k as f64;
            let w = blackman(x / half as f64);
            if w <= 0.0 {
                continue;
            }
            let h = 2.0 * cutoff * sinc(2.0 * cutoff * x) * w;
            norm += h;
            if (0..=last).contains(&k) {
                acc += h * f64::from(samples[k as usize]);
            }
        }
        // Normalising by the filter's own sum keeps DC gain exactly 1.
        let value = if norm.abs() > 1e-9 { acc / norm } else { 0.0 };
        out.push(value.round().clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16);
    }
    out
}

fn sinc(x: f64) -> f64 {
    if x.abs() < 1e-12 { 1.0 } else { (PI * x).sin() / (PI * x) }
}

/// Blackman window over [-1, 1]; zero outside.
fn blackman(x: f64) -> f64 {
    if x.abs() >= 1.0 {
        return 0.0;
    }
    let p = (x + 1.0) / 2.0;
    0.42 - 0.5 * (2.0 * PI * p).cos() + 0.08 * (4.0 * PI * p).cos()
}

/// Audio read from a WAV file, mixed down to mono.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wav {
    pub sample_rate: u32,
    pub samples: Vec<i16>,
}

/// Reads a RIFF/WAVE file of 16-bit PCM, 8-bit PCM, or G.711 μ-law/A-law,
/// any channel count (mixed to mono).
pub fn parse_wav(bytes: &[u8]) -> Result<Wav, AudioError> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(AudioError::NotWav("no RIFF/WAVE header"));
    }
    let mut at = 12;
    let mut format: Option<(u16, u16, u32, u16)> = None;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let size = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]]) as usize;
        let body_start = at + 8;
        // Streaming writers (espeak-ng --stdout) leave the data size at its
        // maximum: the data then runs to the end of the file.
        let body_end = body_start.saturating_add(size).min(bytes.len());
        let body = &bytes[body_start..body_end];
        match id {
            b"fmt " => {
                if body.len() < 16 {
                    return Err(AudioError::NotWav("fmt chunk too short"));
                }
                let tag = u16::from_le_bytes([body[0], body[1]]);
                let channels = u16::from_le_bytes([body[2], body[3]]);
                let rate = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
                let bits = u16::from_le_bytes([body[14], body[15]]);
                // WAVE_FORMAT_EXTENSIBLE carries the real tag in its GUID.
                let tag =
                    if tag == 0xFFFE && body.len() >= 26 { u16::from_le_bytes([body[24], body[25]]) } else { tag };
                format = Some((tag, channels.max(1), rate, bits));
            }
            b"data" => {
                let (tag, channels, rate, bits) = format.ok_or(AudioError::NotWav("data before fmt"))?;
                let interleaved: Vec<i16> = match (tag, bits) {
                    (1, 16) => body.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect(),
                    (1, 8) => body.iter().map(|&b| (i16::from(b) - 128) << 8).collect(),
                    (7, 8) => body.iter().map(|&b| ulaw_to_linear(b)).collect(),
                    (6, 8) => body.iter().map(|&b| alaw_to_linear(b)).collect(),
                    _ => return Err(AudioError::Unsupported(format!("format tag {tag}, {bits} bits"))),
                };
                let channels = usize::from(channels);
                let samples = if channels == 1 {
                    interleaved
                } else {
                    interleaved
                        .chunks_exact(channels)
                        .map(|frame| (frame.iter().map(|&s| i32::from(s)).sum::<i32>() / channels as i32) as i16)
                        .collect()
                };
                if rate == 0 {
                    return Err(AudioError::NotWav("sample rate 0"));
                }
                return Ok(Wav { sample_rate: rate, samples });
            }
            _ => {}
        }
        // Chunks are padded to an even size.
        at = body_start.saturating_add(size + (size & 1));
    }
    Err(AudioError::NotWav("no data chunk"))
}

/// A 16-bit mono PCM WAV file.
pub fn write_wav(samples: &[i16], sample_rate: u32) -> Vec<u8> {
    let data_len = (samples.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + samples.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&sample_rate.to_le_bytes());
    out.extend_from_slice(&(sample_rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

/// G.711 μ-law byte to linear PCM.
pub fn ulaw_to_linear(byte: u8) -> i16 {
    let u = !byte;
    let sign = u & 0x80;
    let exponent = (u >> 4) & 0x07;
    let mantissa = u & 0x0F;
    let magnitude = ((i32::from(mantissa) << 3) + 0x84) << exponent;
    let value = magnitude - 0x84;
    (if sign != 0 { -value } else { value }) as i16
}

/// G.711 A-law byte to linear PCM.
pub fn alaw_to_linear(byte: u8) -> i16 {
    let a = byte ^ 0x55;
    let sign = a & 0x80;
    let exponent = (a >> 4) & 0x07;
    let mantissa = i32::from(a & 0x0F);
    let magnitude = if exponent == 0 { (mantissa << 4) + 8 } else { ((mantissa << 4) + 0x108) << (exponent - 1) };
    (if sign != 0 { magnitude } else { -magnitude }) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freq: f64, rate: u32, ms: u32) -> Vec<i16> {
        let n = (rate * ms / 1000) as usize;
        (0..n).map(|i| ((2.0 * PI * freq * i as f64 / f64::from(rate)).sin() * 10_000.0) as i16).collect()
    }

    fn rms(samples: &[i16]) -> f64 {
        (samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len().max(1) as f64).sqrt()
    }

    #[test]
    fn resampling_keeps_in_band_tones_and_removes_what_would_alias() {
        let voice = resample(&tone(440.0, 22_050, 500), 22_050, 8_000);
        assert_eq!(voice.len(), 4_000);
        assert!((rms(&voice[200..3800]) - 7071.0).abs() < 300.0, "440 Hz passes: {}", rms(&voice));
        // 6 kHz would fold to 2 kHz at 8 kHz sampling: it must be filtered out.
        let alias = resample(&tone(6_000.0, 22_050, 500), 22_050, 8_000);
        assert!(rms(&alias[200..3800]) < 200.0, "6 kHz is removed: {}", rms(&alias));
        let up = resample(&tone(300.0, 8_000, 100), 8_000, 16_000);
        assert_eq!(up.len(), 1_600);
        assert!((rms(&up[100..1500]) - 7071.0).abs() < 300.0);
        assert_eq!(resample(&[1, 2, 3], 8_000, 8_000), vec![1, 2, 3]);
    }

    #[test]
    fn wav_round_trips_and_bad_files_are_named() {
        let samples = vec![0, 1, -1, 1234, i16::MIN, i16::MAX];
        let wav = parse_wav(&write_wav(&samples, 8_000)).unwrap();
        assert_eq!(wav, Wav { sample_rate: 8_000, samples });
        assert_eq!(parse_wav(b"ID3\x04 mp3 bytes"), Err(AudioError::NotWav("no RIFF/WAVE header")));
        // A streamed header with the data size left at u32::MAX still reads.
        let mut streamed = write_wav(&[5, 6], 16_000);
        streamed[40..44].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(parse_wav(&streamed).unwrap().samples, vec![5, 6]);
    }

    #[test]
    fn g711_decodes_to_the_standard_values() {
        assert_eq!(ulaw_to_linear(0xFF), 0);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
    }
}
