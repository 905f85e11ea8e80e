//! Deterministic stand-in audio: what a scripted caller "says" becomes a
//! sequence of tones, one per character, so a bot sees sound exactly where
//! speech is and silence elsewhere. Integer arithmetic only, so every
//! platform produces the same bytes. Also the WAV container of recordings.

use std::time::Duration;

/// Peak amplitude of a spoken character.
const LOUD: i32 = 8000;
/// Peak amplitude of a space or punctuation (a quieter breath between words).
const SOFT: i32 = 2000;

/// The tone of one character: its frequency (Hz) and peak amplitude.
fn tone(c: char) -> (u64, i32) {
    match c {
        'a'..='z' | 'A'..='Z' => (300 + 20 * u64::from(c.to_ascii_lowercase() as u8 - b'a'), LOUD),
        '0'..='9' => (900 + 30 * u64::from(c as u8 - b'0'), LOUD),
        c if c.is_alphabetic() => (700 + u64::from(u32::from(c) % 16) * 25, LOUD),
        _ => (200, SOFT),
    }
}

/// Samples of one "spoken" text at `rate` Hz: each character a triangle-wave
/// tone lasting `per_char`, faded in and out over 5 ms.
pub(crate) fn synthesize(text: &str, rate: u32, per_char: Duration) -> Vec<i16> {
    let rate = u64::from(rate.max(1));
    let per_char_samples = usize::try_from(rate * per_char.as_micros() as u64 / 1_000_000).unwrap_or(0).max(1);
    let fade = usize::try_from(rate / 200).unwrap_or(1).clamp(1, per_char_samples / 2 + 1);
    let mut out = Vec::with_capacity(per_char_samples * text.chars().count());
    for c in text.chars() {
        let (freq, amplitude) = tone(c);
        let step = (freq << 32) / rate;
        let mut phase: u64 = 0;
        for i in 0..per_char_samples {
            let p = ((phase >> 16) & 0xFFFF) as i32;
            let tri = if p < 32768 { 2 * p - 32768 } else { 2 * (65535 - p) - 32768 };
            let edge = i.min(per_char_samples - 1 - i).min(fade) as i32;
            let value = tri * amplitude / 32768 * edge / fade as i32;
            out.push(value.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16);
            phase = (phase + step) & 0xFFFF_FFFF;
        }
    }
    out
}

/// How long `samples` play at `rate`.
pub(crate) fn samples_duration(samples: usize, rate: u32) -> Duration {
    Duration::from_micros((samples as u64).saturating_mul(1_000_000) / u64::from(rate.max(1)))
}

/// `samples` at `from` Hz as samples at `to` Hz (linear interpolation;
/// enough for speech into a telephone-rate stream).
pub(crate) fn resample(samples: &[i16], from: u32, to: u32) -> Vec<i16> {
    if from == to || samples.is_empty() || from == 0 || to == 0 {
        return samples.to_vec();
    }
    let out_len = (samples.len() as u64 * u64::from(to) / u64::from(from)) as usize;
    (0..out_len)
        .map(|i| {
            let pos = i as f64 * f64::from(from) / f64::from(to);
            let j = pos.floor() as usize;
            let frac = pos - j as f64;
            let a = f64::from(samples[j.min(samples.len() - 1)]);
            let b = f64::from(samples[(j + 1).min(samples.len() - 1)]);
            (a + (b - a) * frac).round() as i16
        })
        .collect()
}

/// Little-endian 16-bit PCM bytes.
pub(crate) fn to_le_bytes(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

/// A WAV file (RIFF, PCM, mono, 16-bit) around little-endian PCM bytes.
pub fn wav(pcm: &[u8], rate: u32) -> Vec<u8> {
    let data_len = u32::try_from(pcm.len()).unwrap_or(u32::MAX - 36) & !1;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes()); // byte rate
    out.extend_from_slice(&2u16.to_le_bytes()); // block align
    out.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    out.extend_from_slice(&pcm[..data_len as usize]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speech_is_deterministic_and_loud_only_where_spoken() {
        let a = synthesize("do dosa", 8000, Duration::from_millis(60));
        assert_eq!(a, synthesize("do dosa", 8000, Duration::from_millis(60)));
        assert_eq!(a.len(), 7 * 480);
        assert_ne!(a, synthesize("do idli", 8000, Duration::from_millis(60)));
        for window in a.chunks(160) {
            assert!(window.iter().any(|s| s.unsigned_abs() > 500), "every 20 ms is audible");
        }
        assert!(a.iter().all(|s| s.unsigned_abs() <= 8000));
        assert_eq!(samples_duration(a.len(), 8000), Duration::from_millis(420));
        assert_eq!(synthesize("a", 16000, Duration::from_millis(60)).len(), 960);
    }

    #[test]
    fn resampling_keeps_the_duration() {
        let at_16k: Vec<i16> = (0..1600).map(|i| (i % 100) as i16).collect();
        assert_eq!(resample(&at_16k, 16_000, 8_000).len(), 800);
        assert_eq!(resample(&at_16k, 8_000, 8_000), at_16k);
        assert_eq!(resample(&[0, 100], 8_000, 16_000), vec![0, 50, 100, 100]);
    }

    #[test]
    fn wav_header() {
        let pcm = to_le_bytes(&[1, -1, 300]);
        let file = wav(&pcm, 8000);
        assert_eq!(&file[0..4], b"RIFF");
        assert_eq!(u32::from_le_bytes(file[4..8].try_into().unwrap()), 36 + 6);
        assert_eq!(&file[8..16], b"WAVEfmt ");
        assert_eq!(u16::from_le_bytes([file[20], file[21]]), 1);
        assert_eq!(u16::from_le_bytes([file[22], file[23]]), 1);
        assert_eq!(u32::from_le_bytes(file[24..28].try_into().unwrap()), 8000);
        assert_eq!(u16::from_le_bytes([file[34], file[35]]), 16);
        assert_eq!(&file[36..40], b"data");
        assert_eq!(&file[44..], &[1, 0, 255, 255, 44, 1]);
    }
}
