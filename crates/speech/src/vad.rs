//! Voice activity detection and end-of-turn detection for a phone stream.
//!
//! Exotel streams 8 kHz PCM; the `earshot` network wants 16 kHz frames of
//! 256 samples (16 ms). [`Vad`] upsamples the stream as it arrives (with
//! [`crate::audio::resample`], holding back a few samples so that every
//! output sample has its whole filter context) and scores each 16 ms frame.
//! [`TurnDetector`] turns those scores into turns: speech starts after a
//! few voiced frames in a short window, the turn ends after a stretch of
//! silence following speech (the hang-over), or when the utterance reaches
//! its longest allowed length.
//!
//! Pure and deterministic: time is the count of samples fed, so the same
//! audio always gives the same turns at the same offsets.

use crate::audio::resample;

/// Samples of one earshot frame (16 ms at 16 kHz).
const FRAME_16K: usize = 256;
/// The same 16 ms at 8 kHz.
pub const FRAME_8K: usize = 128;
/// Input samples on each side an output sample needs for its full filter
/// (the resampler's 12 taps each side when upsampling).
const CONTEXT: usize = 12;

/// One scored 16 ms frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    /// earshot's voice score, 0..1.
    pub score: f32,
    /// The frame's level in dB relative to full scale (mean square).
    pub level_db: f32,
}

/// The level of digital silence: frames are never quieter than this.
const FLOOR_DB: f32 = -70.0;

fn level_db(frame: &[i16]) -> f32 {
    let power: f64 = frame.iter().map(|s| f64::from(*s) * f64::from(*s)).sum::<f64>() / frame.len().max(1) as f64;
    let relative = power / (32768.0 * 32768.0);
    if relative <= 0.0 { FLOOR_DB } else { ((10.0 * relative.log10()) as f32).max(FLOOR_DB) }
}

/// The 2x upsampling filter of [`resample`] as two fixed phases: the
/// coefficients by which input samples k-CONTEXT+1..=k+CONTEXT make the
/// outputs at k (phase 0) and k+1/2 (phase 1). Taken from `resample`'s
/// own response to an impulse, so the stream is upsampled exactly as
/// `resample` would (within rounding), at a fraction of its cost (it
/// computes its window for every output sample).
fn phases() -> &'static [[f32; 2 * CONTEXT]; 2] {
    static PHASES: std::sync::OnceLock<[[f32; 2 * CONTEXT]; 2]> = std::sync::OnceLock::new();
    PHASES.get_or_init(|| {
        let centre = 4 * CONTEXT;
        let mut impulse = vec![0i16; 8 * CONTEXT];
        impulse[centre] = i16::MAX;
        let response = resample(&impulse, 8000, 16000);
        let mut phases = [[0f32; 2 * CONTEXT]; 2];
        for (phase, taps) in phases.iter_mut().enumerate() {
            for (j, tap) in taps.iter_mut().enumerate() {
                // Input sample k - CONTEXT + 1 + j, output at k (+1/2): the
                // impulse at `centre` seen from output 2(centre - offset) + phase.
                let offset = j as isize - CONTEXT as isize + 1;
                let out = 2 * (centre as isize - offset) + phase as isize;
                *tap = f32::from(response[out as usize]) / f32::from(i16::MAX);
            }
        }
        phases
    })
}

/// Frame-by-frame voice scores of an 8 kHz stream.
pub struct Vad {
    detector: Box<earshot::Detector>,
    /// 8 kHz samples not yet upsampled: `CONTEXT` already-emitted samples
    /// of history first, then samples waiting for their look-ahead.
    window: Vec<i16>,
    /// Upsampled samples not yet scored (fewer than a frame).
    pending: Vec<i16>,
}

impl Default for Vad {
    fn default() -> Self {
        Vad::new()
    }
}

impl Vad {
    pub fn new() -> Vad {
        Vad { detector: earshot::Detector::default_boxed(), window: vec![0; CONTEXT], pending: Vec::new() }
    }

    /// Feeds 8 kHz samples; returns every 16 ms frame completed by them,
    /// scored, in order.
    pub fn push(&mut self, samples: &[i16]) -> Vec<Frame> {
        self.window.extend_from_slice(samples);
        let mut scores = Vec::new();
        if self.window.len() < 2 * CONTEXT + 1 {
            return scores;
        }
        // Emit the inputs [CONTEXT, len - CONTEXT): each has its whole
        // filter context on both sides.
        let ready = self.window.len() - 2 * CONTEXT;
        let [even, odd] = phases();
        for k in CONTEXT..CONTEXT + ready {
            let taps = &self.window[k + 1 - CONTEXT..=k + CONTEXT];
            for phase in [even, odd] {
                let value: f32 = taps.iter().zip(phase.iter()).map(|(x, h)| f32::from(*x) * h).sum();
                self.pending.push(value.round().clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16);
            }
        }
        self.window.drain(..ready);
        let mut frames = self.pending.chunks_exact(FRAME_16K);
        for frame in &mut frames {
            scores.push(Frame { score: self.detector.predict_i16(frame), level_db: level_db(frame) });
        }
        let rest = frames.remainder().to_vec();
        self.pending = rest;
        scores
    }
}

/// How turns are cut.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TurnConfig {
    /// A frame scoring at least this is voiced...
    pub threshold: f32,
    /// ...when it is also this many dB above the quietest frame of the
    /// last `floor_window_ms`: earshot alone scores a steady hiss (a noisy
    /// line) as voice after a while; speech rises and falls above it.
    pub above_floor_db: f32,
    pub floor_window_ms: u64,
    /// Speech starts when this many of the last `start_window` frames are
    /// voiced (a click or a cough is shorter).
    pub start_frames: usize,
    pub start_window: usize,
    /// Silence after speech that ends the turn (the hang-over), in ms.
    pub end_silence_ms: u64,
    /// An utterance is cut at this length and treated as a whole turn.
    pub max_utterance_ms: u64,
    /// Audio kept from before speech was detected, so that the recogniser
    /// hears the first syllable, in ms.
    pub pre_roll_ms: u64,
}

impl Default for TurnConfig {
    fn default() -> Self {
        TurnConfig {
            threshold: 0.5,
            above_floor_db: 6.0,
            floor_window_ms: 3000,
            start_frames: 6,
            start_window: 10,
            end_silence_ms: 640,
            max_utterance_ms: 15_000,
            pre_roll_ms: 320,
        }
    }
}

/// Why a turn ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnEnd {
    /// The hang-over of silence after speech.
    Silence,
    /// The utterance reached `max_utterance_ms`.
    MaxLength,
}

/// What the detector saw in the audio just fed.
#[derive(Debug, Clone, PartialEq)]
pub enum VadEvent {
    /// The caller started speaking, `at_ms` into the stream (the first
    /// voiced frame of the run that started it).
    SpeechStarted { at_ms: u64 },
    /// The caller's turn: their audio at 8 kHz (with pre-roll), where the
    /// speech started and stopped, and when the end was decided (`ended_at_ms`
    /// plus the hang-over).
    Turn(Utterance),
}

#[derive(Clone, PartialEq)]
pub struct Utterance {
    pub samples: Vec<i16>,
    pub started_at_ms: u64,
    /// The end of the last voiced frame.
    pub ended_at_ms: u64,
    /// When the detector decided the turn was over.
    pub decided_at_ms: u64,
    pub end: TurnEnd,
}

impl std::fmt::Debug for Utterance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Utterance")
            .field("samples", &self.samples.len())
            .field("started_at_ms", &self.started_at_ms)
            .field("ended_at_ms", &self.ended_at_ms)
            .field("decided_at_ms", &self.decided_at_ms)
            .field("end", &self.end)
            .finish()
    }
}

/// End-of-turn detection over an 8 kHz stream.
pub struct TurnDetector {
    config: TurnConfig,
    vad: Vad,
    /// 8 kHz samples fed so far.
    fed: u64,
    /// Frames scored so far.
    frames: u64,
    /// Voiced flags of the most recent frames (for the start rule).
    recent: std::collections::VecDeque<bool>,
    /// Levels of the frames of the floor window.
    levels: std::collections::VecDeque<f32>,
    /// Audio kept: the pre-roll while waiting, the utterance while speaking.
    audio: std::collections::VecDeque<i16>,
    speaking: Option<Speaking>,
}

struct Speaking {
    started_frame: u64,
    last_voiced_frame: u64,
}

const FRAME_MS: u64 = 16;

impl TurnDetector {
    pub fn new(config: TurnConfig) -> TurnDetector {
        TurnDetector {
            config,
            vad: Vad::new(),
            fed: 0,
            frames: 0,
            recent: std::collections::VecDeque::new(),
            levels: std::collections::VecDeque::new(),
            audio: std::collections::VecDeque::new(),
            speaking: None,
        }
    }

    pub fn config(&self) -> &TurnConfig {
        &self.config
    }

    /// Milliseconds of audio fed so far.
    pub fn position_ms(&self) -> u64 {
        self.fed / 8
    }

    /// Whether the caller is speaking now (a turn has started, not ended).
    pub fn speaking(&self) -> bool {
        self.speaking.is_some()
    }

    /// Forgets any turn in progress and the pre-roll (the audio so far is
    /// not the caller's turn, e.g. it was answered by keys).
    pub fn discard(&mut self) {
        self.speaking = None;
        self.audio.clear();
        self.recent.clear();
    }

    fn pre_roll_samples(&self) -> usize {
        (self.config.pre_roll_ms * 8) as usize
    }

    /// Feeds 8 kHz samples; returns what happened, in order.
    pub fn push(&mut self, samples: &[i16]) -> Vec<VadEvent> {
        let mut events = Vec::new();
        let scores = self.vad.push(samples);
        self.fed += samples.len() as u64;
        self.audio.extend(samples.iter().copied());
        for scored in scores {
            self.frames += 1;
            let frame = self.frames;
            self.levels.push_back(scored.level_db);
            if self.levels.len() as u64 > (self.config.floor_window_ms / FRAME_MS).max(1) {
                self.levels.pop_front();
            }
            let floor = self.levels.iter().copied().fold(f32::INFINITY, f32::min);
            let voiced = scored.score >= self.config.threshold && scored.level_db >= floor + self.config.above_floor_db;
            self.recent.push_back(voiced);
            if self.recent.len() > self.config.start_window {
                self.recent.pop_front();
            }
            match &mut self.speaking {
                None => {
                    let count = self.recent.iter().filter(|v| **v).count();
                    if count >= self.config.start_frames {
                        // The run started at the first voiced frame of the window.
                        let back = self.recent.iter().position(|v| *v).unwrap_or(0);
                        let started = frame + 1 - (self.recent.len() - back) as u64;
                        self.speaking = Some(Speaking { started_frame: started, last_voiced_frame: frame });
                        events.push(VadEvent::SpeechStarted { at_ms: (started - 1) * FRAME_MS });
                    }
                }
                Some(speaking) => {
                    if voiced {
                        speaking.last_voiced_frame = frame;
                    }
                    let silence_ms = (frame - speaking.last_voiced_frame) * FRAME_MS;
                    let length_ms = (frame + 1 - speaking.started_frame) * FRAME_MS;
                    let end = if silence_ms >= self.config.end_silence_ms {
                        Some(TurnEnd::Silence)
                    } else if length_ms >= self.config.max_utterance_ms {
                        Some(TurnEnd::MaxLength)
                    } else {
                        None
                    };
                    if let Some(end) = end {
                        let started_at_ms = (speaking.started_frame - 1) * FRAME_MS;
                        let ended_at_ms = speaking.last_voiced_frame * FRAME_MS;
                        let decided_at_ms = frame * FRAME_MS;
                        // The audio kept starts pre-roll before the start (or
                        // at the stream's start); cut it at the frame decided.
                        let kept_from = self.fed - self.audio.len() as u64;
                        let want_from = (started_at_ms * 8).saturating_sub(self.config.pre_roll_ms * 8).max(kept_from);
                        let upto = (decided_at_ms * 8).min(self.fed);
                        let samples: Vec<i16> = self
                            .audio
                            .iter()
                            .skip((want_from - kept_from) as usize)
                            .take(upto.saturating_sub(want_from) as usize)
                            .copied()
                            .collect();
                        events.push(VadEvent::Turn(Utterance {
                            samples,
                            started_at_ms,
                            ended_at_ms,
                            decided_at_ms,
                            end,
                        }));
                        self.speaking = None;
                        self.recent.clear();
                        // What came after the decision stays as pre-roll.
                        let drop = (upto - kept_from) as usize;
                        self.audio.drain(..drop.min(self.audio.len()));
                    }
                }
            }
        }
        if self.speaking.is_none() {
            let keep = self.pre_roll_samples() + FRAME_8K * self.config.start_window;
            while self.audio.len() > keep {
                self.audio.pop_front();
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::espeak::Espeak;

    fn silence(ms: u64) -> Vec<i16> {
        vec![0; (ms * 8) as usize]
    }

    /// Deterministic white noise (a linear congruential generator).
    fn noise(ms: u64, amplitude: i32) -> Vec<i16> {
        let mut state: u32 = 12345;
        (0..ms * 8)
            .map(|_| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (((state >> 16) as i32 % (2 * amplitude + 1)) - amplitude) as i16
            })
            .collect()
    }

    async fn speech(text: &str, voice: &str) -> Vec<i16> {
        let (rate, samples) = Espeak::default().render(text, voice).await.expect("espeak-ng is installed");
        // Without espeak's own leading and trailing silence, so that the
        // pauses a test puts between phrases are the pauses heard.
        let samples = resample(&samples, rate, 8000);
        let first = samples.iter().position(|s| s.unsigned_abs() > 100).unwrap_or(0);
        let last = samples.iter().rposition(|s| s.unsigned_abs() > 100).unwrap_or(0);
        samples[first..=last].to_vec()
    }

    /// Feeds audio in Exotel's 100 ms frames.
    fn feed(detector: &mut TurnDetector, audio: &[i16]) -> Vec<VadEvent> {
        audio.chunks(800).flat_map(|c| detector.push(c)).collect()
    }

    fn turns(events: &[VadEvent]) -> Vec<&Utterance> {
        events
            .iter()
            .filter_map(|e| match e {
                VadEvent::Turn(u) => Some(u),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_streaming_upsampler_matches_resample() {
        let audio = noise(200, 8000);
        let whole = resample(&audio, 8000, 16000);
        let mut vad = Vad::new();
        vad.push(&audio);
        vad.push(&[0; 100]);
        // The scored frames are gone; compare what one stream position gives.
        let mut ours = Vec::new();
        let mut window = vec![0i16; CONTEXT];
        window.extend(&audio);
        window.extend([0; CONTEXT]);
        let [even, odd] = phases();
        for k in CONTEXT..CONTEXT + audio.len() {
            for phase in [even, odd] {
                let taps = &window[k + 1 - CONTEXT..=k + CONTEXT];
                let v: f32 = taps.iter().zip(phase.iter()).map(|(x, h)| f32::from(*x) * h).sum();
                ours.push(v.round() as i16);
            }
        }
        // Away from the edges (where resample sees no context) they agree.
        for n in 2 * CONTEXT..whole.len() - 2 * CONTEXT {
            assert!((i32::from(ours[n]) - i32::from(whole[n])).abs() <= 2, "sample {n}: {} vs {}", ours[n], whole[n]);
        }
    }

    #[test]
    fn the_upsampler_scores_one_frame_per_16_ms_whatever_the_chunking() {
        let audio = noise(1000, 3000);
        let mut whole = Vad::new();
        let a = whole.push(&audio);
        let mut pieces = Vad::new();
        let b: Vec<Frame> = audio.chunks(77).flat_map(|c| pieces.push(c)).collect();
        // 1000 ms less the held-back look-ahead: 62 whole frames.
        assert_eq!(a.len(), 62);
        assert_eq!(a, b, "the same scores however the stream is cut");
    }

    #[test]
    fn silence_and_a_hissing_line_are_not_turns() {
        let mut detector = TurnDetector::new(TurnConfig::default());
        let events = feed(&mut detector, &silence(3000));
        assert!(events.is_empty(), "{events:?}");
        assert_eq!(detector.position_ms(), 3000);
        // White noise on the line from the start, loud (-29 dBFS) and soft.
        for amplitude in [2000, 300] {
            let mut detector = TurnDetector::new(TurnConfig::default());
            let events = feed(&mut detector, &noise(8000, amplitude));
            assert!(events.is_empty(), "{amplitude}: {events:?}");
            assert!(!detector.speaking());
        }
    }

    #[tokio::test]
    async fn speech_over_a_hissing_line_is_a_turn() {
        let mut audio = noise(2000, 1000);
        let words = speech("ek cutting chai", "hi").await;
        let hiss = noise(words.len() as u64 / 8 + 2000, 1000);
        audio.extend(words.iter().zip(hiss.iter().chain(std::iter::repeat(&0))).map(|(a, b)| a.saturating_add(*b)));
        audio.extend(&hiss[words.len()..]);
        let mut detector = TurnDetector::new(TurnConfig::default());
        let events = feed(&mut detector, &audio);
        let turns = turns(&events);
        assert_eq!(turns.len(), 1, "{events:?}");
        assert!((1800..2300).contains(&turns[0].started_at_ms), "{:?}", turns[0]);
    }

    #[tokio::test]
    async fn a_spoken_sentence_is_one_turn_ended_by_the_hang_over() {
        let words = speech("do misal pav aur ek cutting chai", "hi").await;
        let spoken_ms = words.len() as u64 / 8;
        let mut audio = silence(1000);
        audio.extend(&words);
        audio.extend(silence(2000));
        let mut detector = TurnDetector::new(TurnConfig::default());
        let events = feed(&mut detector, &audio);
        let turns = turns(&events);
        assert_eq!(turns.len(), 1, "{events:?}");
        let turn = turns[0];
        assert!(matches!(events[0], VadEvent::SpeechStarted { at_ms } if (900..1300).contains(&at_ms)), "{events:?}");
        assert_eq!(turn.end, TurnEnd::Silence);
        assert!((900..1300).contains(&turn.started_at_ms), "{turn:?}");
        let speech_end = 1000 + spoken_ms;
        assert!(turn.ended_at_ms + 400 > speech_end && turn.ended_at_ms < speech_end + 200, "{turn:?} vs {speech_end}");
        assert!(turn.decided_at_ms >= turn.ended_at_ms + 640 && turn.decided_at_ms < turn.ended_at_ms + 700);
        // The audio handed on holds the speech, with its pre-roll.
        assert_eq!(turn.samples.len() as u64, (turn.decided_at_ms - (turn.started_at_ms - 320)) * 8);
        // Same audio, same turns.
        let mut again = TurnDetector::new(TurnConfig::default());
        assert_eq!(feed(&mut again, &audio), events);
    }

    #[tokio::test]
    async fn a_pause_shorter_than_the_hang_over_stays_in_the_turn_and_long_speech_is_cut() {
        let mut audio = speech("ek cutting chai", "hi").await;
        audio.extend(silence(300));
        audio.extend(speech("aur do samosa", "hi").await);
        audio.extend(silence(1000));
        let mut detector = TurnDetector::new(TurnConfig::default());
        let events = feed(&mut detector, &audio);
        assert_eq!(turns(&events).len(), 1, "{events:?}");

        let short = TurnConfig { max_utterance_ms: 1000, ..TurnConfig::default() };
        let mut detector = TurnDetector::new(short);
        let long = speech("do misal pav, ek cutting chai, teen samosa aur ek paani ki botal", "hi").await;
        let events = feed(&mut detector, &long);
        let cut = turns(&events);
        assert!(cut.len() >= 2, "{events:?}");
        assert_eq!(cut[0].end, TurnEnd::MaxLength);
        assert!((1000..1016).contains(&(cut[0].decided_at_ms - cut[0].started_at_ms)), "{:?}", cut[0]);
    }
}
