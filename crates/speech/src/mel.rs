//! Whisper's input features: the 80-band log-mel spectrogram of a 30 s
//! window of 16 kHz audio, computed exactly as OpenAI's `whisper.audio`
//! does (`log_mel_spectrogram` after `pad_or_trim`), since the weights were
//! trained on those numbers:
//!
//! - the audio is zero-padded (or cut) to 30 s, 480,000 samples;
//! - a short-time Fourier transform with a 400-sample periodic Hann window
//!   and a 160-sample hop, centred (the signal reflect-padded by 200 on
//!   each side), the last frame dropped: 3,000 frames of 201 power bins;
//! - 80 triangular mel filters, Slaney's scale and area normalisation
//!   (librosa's `filters.mel(sr=16000, n_fft=400, n_mels=80)`);
//! - `log10(max(x, 1e-10))`, floored at the maximum minus 8, then
//!   `(x + 4) / 4`.
//!
//! The frames past the end of a short utterance hold only the padding's
//! zeros, so their transform is skipped: the cost follows the speech, not
//! the window.

use std::sync::Arc;

use rustfft::num_complex::Complex32;
use rustfft::{Fft, FftPlanner};

/// Whisper's sample rate.
pub const SAMPLE_RATE: u32 = 16_000;
/// FFT size (25 ms).
pub const N_FFT: usize = 400;
/// Hop (10 ms).
pub const HOP: usize = 160;
/// Mel bands of the multilingual base and small models.
pub const N_MELS: usize = 80;
/// Samples in one 30 s window.
pub const N_SAMPLES: usize = 480_000;
/// Frames in one window.
pub const N_FRAMES: usize = N_SAMPLES / HOP;

const N_BINS: usize = N_FFT / 2 + 1;

/// The filter bank and FFT plan, built once per model.
pub struct LogMel {
    /// `N_MELS` rows of `N_BINS` weights.
    filters: Vec<[f32; N_BINS]>,
    window: [f32; N_FFT],
    fft: Arc<dyn Fft<f32>>,
}

impl Default for LogMel {
    fn default() -> Self {
        LogMel::new()
    }
}

impl LogMel {
    pub fn new() -> LogMel {
        let mut window = [0f32; N_FFT];
        for (n, w) in window.iter_mut().enumerate() {
            // Periodic Hann, as torch.hann_window(400) is.
            *w = (0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / N_FFT as f64).cos()) as f32;
        }
        LogMel { filters: mel_filters(), window, fft: FftPlanner::new().plan_fft_forward(N_FFT) }
    }

    /// The features of `audio` (16 kHz, in [-1, 1]), row-major
    /// `[N_MELS][N_FRAMES]`. Audio longer than 30 s is cut: a caller's turn
    /// is seconds long, and the voice activity detector bounds it.
    pub fn features(&self, audio: &[f32]) -> Vec<f32> {
        let audio = &audio[..audio.len().min(N_SAMPLES)];
        let pad = N_FFT / 2;
        // The centred, reflect-padded signal, read without building it:
        // index i of the padded signal is sample i - pad, reflected at both
        // ends of the 30 s window (whose tail is zeros).
        let sample = |i: usize| -> f32 {
            let j = i as isize - pad as isize;
            let j = if j < 0 {
                -j
            } else if j >= N_SAMPLES as isize {
                2 * (N_SAMPLES as isize - 1) - j
            } else {
                j
            } as usize;
            audio.get(j).copied().unwrap_or(0.0)
        };
        // Frames whose window reaches a sample of the audio; later ones are
        // all zero (the reflection at the start only touches the first).
        let live_frames = ((audio.len() + pad).div_ceil(HOP)).min(N_FRAMES);
        let mut mel = vec![0f32; N_MELS * N_FRAMES];
        let mut buffer = vec![Complex32::new(0.0, 0.0); N_FFT];
        let mut scratch = vec![Complex32::new(0.0, 0.0); self.fft.get_inplace_scratch_len()];
        let mut power = [0f32; N_BINS];
        for frame in 0..live_frames {
            let start = frame * HOP;
            for (n, slot) in buffer.iter_mut().enumerate() {
                *slot = Complex32::new(sample(start + n) * self.window[n], 0.0);
            }
            self.fft.process_with_scratch(&mut buffer, &mut scratch);
            for (bin, p) in power.iter_mut().enumerate() {
                *p = buffer[bin].norm_sqr();
            }
            for (band, filter) in self.filters.iter().enumerate() {
                let energy: f32 = filter.iter().zip(power.iter()).map(|(w, p)| w * p).sum();
                mel[band * N_FRAMES + frame] = energy;
            }
        }
        let mut max = f32::MIN;
        for value in mel.iter_mut() {
            *value = value.max(1e-10).log10();
            max = max.max(*value);
        }
        let floor = max - 8.0;
        for value in mel.iter_mut() {
            *value = (value.max(floor) + 4.0) / 4.0;
        }
        mel
    }
}

/// Slaney's mel scale (librosa's default, `htk=False`): linear below
/// 1 kHz, logarithmic above.
fn hz_to_mel(hz: f64) -> f64 {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    let min_log_mel = MIN_LOG_HZ / F_SP;
    let logstep = 6.4f64.ln() / 27.0;
    if hz >= MIN_LOG_HZ { min_log_mel + (hz / MIN_LOG_HZ).ln() / logstep } else { hz / F_SP }
}

fn mel_to_hz(mel: f64) -> f64 {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    let min_log_mel = MIN_LOG_HZ / F_SP;
    let logstep = 6.4f64.ln() / 27.0;
    if mel >= min_log_mel { MIN_LOG_HZ * (logstep * (mel - min_log_mel)).exp() } else { F_SP * mel }
}

/// librosa.filters.mel(sr=16000, n_fft=400, n_mels=80, fmin=0,
/// fmax=8000, htk=False, norm="slaney").
fn mel_filters() -> Vec<[f32; N_BINS]> {
    let sr = f64::from(SAMPLE_RATE);
    let fft_freqs: Vec<f64> = (0..N_BINS).map(|k| k as f64 * sr / N_FFT as f64).collect();
    let (low, high) = (hz_to_mel(0.0), hz_to_mel(sr / 2.0));
    let mel_points: Vec<f64> =
        (0..N_MELS + 2).map(|i| mel_to_hz(low + (high - low) * i as f64 / (N_MELS + 1) as f64)).collect();
    (0..N_MELS)
        .map(|band| {
            let (left, centre, right) = (mel_points[band], mel_points[band + 1], mel_points[band + 2]);
            let norm = 2.0 / (right - left);
            let mut row = [0f32; N_BINS];
            for (bin, f) in fft_freqs.iter().enumerate() {
                let rising = (f - left) / (centre - left);
                let falling = (right - f) / (right - centre);
                row[bin] = (rising.min(falling).max(0.0) * norm) as f32;
            }
            row
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mel_scale_matches_slaney_and_round_trips() {
        assert!((hz_to_mel(1000.0) - 15.0).abs() < 1e-9);
        assert!((hz_to_mel(500.0) - 7.5).abs() < 1e-9);
        for hz in [0.0, 300.0, 1000.0, 2500.0, 8000.0] {
            assert!((mel_to_hz(hz_to_mel(hz)) - hz).abs() < 1e-6, "{hz}");
        }
        let filters = mel_filters();
        assert_eq!(filters.len(), N_MELS);
        // librosa's first filter: a single 40 Hz bin at its peak, weight
        // 2 / (mel_to_hz(2 * step) - 0) with step = hz_to_mel(8000) / 81.
        let step = hz_to_mel(8000.0) / 81.0;
        let peak = 2.0 / mel_to_hz(2.0 * step)
            * (40.0 / mel_to_hz(step)).min((mel_to_hz(2.0 * step) - 40.0) / (mel_to_hz(2.0 * step) - mel_to_hz(step)));
        assert!((f64::from(filters[0][1]) - peak).abs() < 1e-6);
        assert_eq!(filters[0][0], 0.0);
        // Every filter has some weight, and none reaches past Nyquist.
        assert!(filters.iter().all(|row| row.iter().any(|w| *w > 0.0)));
    }

    #[test]
    fn a_tone_lights_its_band_and_silence_sits_at_the_floor() {
        let mel = LogMel::new();
        let tone: Vec<f32> =
            (0..16_000).map(|i| 0.5 * (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 16_000.0).sin()).collect();
        let features = mel.features(&tone);
        assert_eq!(features.len(), N_MELS * N_FRAMES);
        let frame = 50;
        let loudest = (0..N_MELS)
            .max_by(|a, b| features[a * N_FRAMES + frame].total_cmp(&features[b * N_FRAMES + frame]))
            .unwrap();
        // 1 kHz is mel 15, band 15 * 81 / hz_to_mel(8000) - 1 ≈ 27.
        let expected = (15.0 / (hz_to_mel(8000.0) / 81.0)).round() as usize - 1;
        assert!(loudest.abs_diff(expected) <= 1, "loudest band {loudest}, expected about {expected}");
        // After the tone: the padding, at the floor (max - 8, normalised).
        let max = features.iter().copied().fold(f32::MIN, f32::max);
        let tail = features[10 * N_FRAMES + 2_000];
        assert!((tail - (max - 2.0)).abs() < 1e-5, "tail {tail}, max {max}");
        // All silence: every value is log10(1e-10) normalised.
        let silent = mel.features(&[0.0; 1600]);
        assert!(silent.iter().all(|v| (*v - (-10.0 + 4.0) / 4.0).abs() < 1e-6));
    }
}
