//! Whisper's mel filter bank: 80 triangular filters over the 201 power
//! bins of a 400-sample FFT at 16 kHz, Slaney's scale and area
//! normalisation (librosa's `filters.mel(sr=16000, n_fft=400, n_mels=80)`),
//! the numbers OpenAI's `whisper.audio` computes its log-mel features with.
//!
//! whisper.cpp computes the features itself (the 30 s window, the 25 ms
//! Hann-windowed FFT every 10 ms, `log10`, the 8-decade floor) from the
//! filter bank its model file carries: [`crate::models`] writes this one
//! into the ggml file it converts.

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

/// Power bins of one FFT.
pub const N_BINS: usize = N_FFT / 2 + 1;

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
pub fn mel_filters() -> Vec<[f32; N_BINS]> {
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
}
