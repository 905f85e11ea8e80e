//! The per-call stream session as a deterministic state machine: what the
//! bot does with each thing that happens on a Voicebot stream. Time is the
//! stream's own: milliseconds of caller audio received (Exotel sends it in
//! real time, about every 100 ms, for the whole call), so the machine is
//! tested, and the route driven, without a wall clock.
//!
//! Inputs: caller audio, keys, mark echoes, stop, and the results of the
//! jobs it asked for (greeting, turn, keys, silence: recognition, dialog
//! turn, synthesis). Outputs: audio and marks to send, `clear`, jobs to
//! start or cancel, notes for the timeline and metrics, and when to close.

use mangwale_speech::vad::{TurnConfig, TurnDetector, Utterance, VadEvent};

/// Bytes of a media message we send: 100 ms at 8 kHz, a multiple of 320.
pub const CHUNK_BYTES: usize = 3200;

/// The machine's timings, in ms of stream time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timings {
    /// A reply not ready this long after the caller stopped: the filler.
    pub filler_after_ms: u64,
    /// Silence (nothing playing, a job pending) that makes the bot give up
    /// on the job: the caller hears the trouble sentence and the order
    /// desk. With the VAD's hang-over before it, no stretch of dead air
    /// the caller hears exceeds 3 s.
    pub give_up_after_ms: u64,
    /// Silence after our question before it counts as no answer.
    pub no_answer_ms: u64,
    /// A mark not echoed this long after its audio should have finished is
    /// taken as played (Exotel lost it).
    pub mark_grace_ms: u64,
}

impl Default for Timings {
    fn default() -> Self {
        Timings { filler_after_ms: 700, give_up_after_ms: 2300, no_answer_ms: 7000, mark_grace_ms: 3000 }
    }
}

/// What a job is for.
#[derive(Debug, Clone, PartialEq)]
pub enum JobKind {
    /// Open or resume the dialog and speak its greeting; prepare the
    /// fixed prompts.
    Start,
    /// The caller's utterance: recognise, run the turn, speak.
    Speech(Utterance),
    Keys(String),
    /// No answer in time.
    Silence,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: u64,
    pub kind: JobKind,
    /// Stream time the job was asked for.
    pub at_ms: u64,
}

/// Audio the bot may need when a job cannot deliver: ready before it is
/// needed (synthesised at start).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FixedAudio {
    /// "Ek second..." in the caller's language.
    pub filler: Option<Vec<i16>>,
    /// "Sorry, trouble; connecting you to the order desk."
    pub trouble: Option<Vec<i16>>,
}

/// A job's result.
#[derive(Debug, Clone, PartialEq)]
pub enum JobResult {
    /// What to say (8 kHz), and where the dialog stands after it.
    Reply { audio: Vec<i16>, ended: bool, handed_off: bool, fixed: Option<FixedAudio> },
    /// Nothing could be said (recogniser, dialog or synthesiser failed):
    /// the machine says the trouble sentence and hands off.
    Failed { why: String, fixed: Option<FixedAudio> },
}

/// How the stream ends, for the flow after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The dialog ended (an order, a goodbye): thank you and hang up.
    Completed,
    /// The order desk takes over. `by_bot`: the bot gave up (a backend
    /// failed or was too slow), not the dialog; the session must be marked.
    HandedOff { by_bot: Option<String> },
    /// Exotel stopped the stream (the caller hung up).
    Stopped,
}

/// Something worth a timeline entry or a metric.
#[derive(Debug, Clone, PartialEq)]
pub enum Note {
    BargeIn {
        at_ms: u64,
    },
    Filler {
        job: u64,
        at_ms: u64,
    },
    /// A job failed or was given up on: the trouble sentence and the desk.
    Fallback {
        job: u64,
        why: String,
    },
    /// A reply not played because the caller spoke again meanwhile.
    Superseded {
        job: u64,
    },
    /// A key or words while the bot's last words play out: ignored.
    Ignored {
        what: &'static str,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// One media message's PCM (little-endian, a multiple of 320 bytes).
    Media(Vec<u8>),
    Mark(String),
    Clear,
    StartJob(Job),
    CancelJob(u64),
    Note(Note),
    Close(Outcome),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// 8 kHz samples of caller audio (one media message).
    Audio(Vec<i16>),
    Dtmf(String),
    Mark(String),
    Stop,
    Done {
        job: u64,
        result: JobResult,
    },
}

/// What is playing now.
#[derive(Debug, Clone, PartialEq)]
struct Playback {
    mark: String,
    /// When it should be done playing, at the latest (its length after
    /// the end of what played before it), plus grace.
    due_ms: u64,
    kind: Playing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Playing {
    /// A reply: once played, the caller's turn.
    Reply,
    /// The filler: the job is still pending.
    Filler,
    /// The last words: close once played.
    Last,
}

#[derive(Debug, Clone, PartialEq)]
struct Pending {
    id: u64,
    /// When the caller's input ended (or the job was asked for).
    since_ms: u64,
    filler_played: bool,
    /// Since when nothing has played while it is pending.
    quiet_since_ms: u64,
}

pub struct Machine {
    timings: Timings,
    detector: TurnDetector,
    now_ms: u64,
    next_id: u64,
    marks: u64,
    started: bool,
    pending: Option<Pending>,
    /// Input that came while a job was pending, run after it.
    held: Option<JobKind>,
    playing: Option<Playback>,
    /// When the caller's turn began (our prompt finished), for the silence
    /// timer; `None` while it does not run.
    waiting_since: Option<u64>,
    /// Close after the current playback with this outcome.
    closing: Option<Outcome>,
    fixed: FixedAudio,
    closed: bool,
}

impl Machine {
    pub fn new(timings: Timings, turns: TurnConfig) -> Machine {
        Machine {
            timings,
            detector: TurnDetector::new(turns),
            now_ms: 0,
            next_id: 0,
            marks: 0,
            started: false,
            pending: None,
            held: None,
            playing: None,
            waiting_since: None,
            closing: None,
            fixed: FixedAudio::default(),
            closed: false,
        }
    }

    /// Stream time now.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    pub fn closed(&self) -> bool {
        self.closed
    }

    /// The stream started: ask for the greeting.
    pub fn start(&mut self) -> Vec<Output> {
        let mut out = Vec::new();
        if self.started || self.closed {
            return out;
        }
        self.started = true;
        self.ask(JobKind::Start, &mut out);
        out
    }

    pub fn handle(&mut self, event: Event) -> Vec<Output> {
        let mut out = Vec::new();
        if self.closed {
            return out;
        }
        match event {
            Event::Audio(samples) => self.audio(&samples, &mut out),
            Event::Dtmf(digit) => self.keys(digit, &mut out),
            Event::Mark(name) => self.mark(&name, &mut out),
            Event::Stop => {
                if let Some(p) = self.pending.take() {
                    out.push(Output::CancelJob(p.id));
                }
                self.close(Outcome::Stopped, &mut out);
            }
            Event::Done { job, result } => self.done(job, result, &mut out),
        }
        out
    }

    fn ask(&mut self, kind: JobKind, out: &mut Vec<Output>) {
        self.next_id += 1;
        let id = self.next_id;
        self.waiting_since = None;
        self.pending = Some(Pending { id, since_ms: self.now_ms, filler_played: false, quiet_since_ms: self.now_ms });
        out.push(Output::StartJob(Job { id, kind, at_ms: self.now_ms }));
    }

    /// A caller input: run now, or after the pending job.
    fn input(&mut self, kind: JobKind, out: &mut Vec<Output>) {
        if self.pending.is_some() {
            self.held = Some(kind);
        } else {
            self.ask(kind, out);
        }
    }

    fn audio(&mut self, samples: &[i16], out: &mut Vec<Output>) {
        let events = self.detector.push(samples);
        self.now_ms = self.detector.position_ms();
        for event in events {
            match event {
                VadEvent::SpeechStarted { .. } => self.speech_started(out),
                VadEvent::Turn(utterance) => {
                    if self.closing.is_some() || !self.started {
                        out.push(Output::Note(Note::Ignored { what: "words" }));
                        continue;
                    }
                    self.input(JobKind::Speech(utterance), out);
                }
            }
        }
        self.timers(out);
    }

    fn speech_started(&mut self, out: &mut Vec<Output>) {
        self.waiting_since = None;
        if self.closing.is_some() {
            return;
        }
        if let Some(playing) = &self.playing
            && playing.kind != Playing::Last
        {
            // Barge-in: stop our audio; the words are the next turn.
            out.push(Output::Clear);
            out.push(Output::Note(Note::BargeIn { at_ms: self.now_ms }));
            self.playing = None;
            if let Some(p) = &mut self.pending {
                p.quiet_since_ms = self.now_ms;
            }
        }
    }

    fn keys(&mut self, digit: String, out: &mut Vec<Output>) {
        if self.closing.is_some() || !self.started {
            out.push(Output::Note(Note::Ignored { what: "key" }));
            return;
        }
        self.waiting_since = None;
        if self.playing.take().is_some() {
            out.push(Output::Clear);
            out.push(Output::Note(Note::BargeIn { at_ms: self.now_ms }));
        }
        // Words the caller had begun are not the answer: the key is.
        self.detector.discard();
        self.input(JobKind::Keys(digit), out);
    }

    fn mark(&mut self, name: &str, out: &mut Vec<Output>) {
        // Marks of audio cleared by a barge-in come back too: only the
        // current playback's counts.
        if self.playing.as_ref().is_some_and(|p| p.mark == name) {
            self.played(out);
        }
    }

    /// The current playback finished.
    fn played(&mut self, out: &mut Vec<Output>) {
        let Some(playing) = self.playing.take() else { return };
        match playing.kind {
            Playing::Last => {
                let outcome = self.closing.take().unwrap_or(Outcome::Completed);
                self.close(outcome, out);
            }
            Playing::Filler => {
                if let Some(p) = &mut self.pending {
                    p.quiet_since_ms = self.now_ms;
                }
            }
            Playing::Reply => {
                if self.pending.is_none() {
                    self.waiting_since = Some(self.now_ms);
                }
            }
        }
    }

    fn timers(&mut self, out: &mut Vec<Output>) {
        let now = self.now_ms;
        if let Some(playing) = &self.playing
            && now >= playing.due_ms
        {
            self.played(out);
        }
        if self.closed {
            return;
        }
        if let Some(p) = self.pending.clone()
            && self.playing.is_none()
        {
            let quiet = now.saturating_sub(p.quiet_since_ms);
            if !p.filler_played && now.saturating_sub(p.since_ms) >= self.timings.filler_after_ms {
                if let Some(filler) = self.fixed.filler.clone() {
                    out.push(Output::Note(Note::Filler { job: p.id, at_ms: now }));
                    self.play(&filler, Playing::Filler, out);
                }
                if let Some(p) = &mut self.pending {
                    p.filler_played = true;
                }
            } else if quiet >= self.timings.give_up_after_ms {
                self.pending = None;
                self.held = None;
                out.push(Output::CancelJob(p.id));
                let why = format!("no reply {} ms after the caller's turn", now.saturating_sub(p.since_ms));
                self.fall_back(p.id, why, out);
            }
        }
        if let Some(since) = self.waiting_since
            && !self.detector.speaking()
            && now.saturating_sub(since) >= self.timings.no_answer_ms
        {
            self.waiting_since = None;
            self.input(JobKind::Silence, out);
        }
    }

    fn done(&mut self, job: u64, result: JobResult, out: &mut Vec<Output>) {
        if self.pending.as_ref().map(|p| p.id) != Some(job) {
            // Given up on, or the stream moved on.
            return;
        }
        self.pending = None;
        let (JobResult::Reply { fixed: Some(fixed), .. } | JobResult::Failed { fixed: Some(fixed), .. }) = &result
        else {
            return self.reply(job, result, out);
        };
        self.fixed = fixed.clone();
        self.reply(job, result, out)
    }

    fn reply(&mut self, job: u64, result: JobResult, out: &mut Vec<Output>) {
        match result {
            JobResult::Failed { why, .. } => self.fall_back(job, why, out),
            JobResult::Reply { audio, ended, handed_off, .. } => {
                if ended {
                    self.held = None;
                    let outcome = if handed_off { Outcome::HandedOff { by_bot: None } } else { Outcome::Completed };
                    if self.playing.take().is_some() {
                        out.push(Output::Clear);
                    }
                    self.closing = Some(outcome);
                    self.play(&audio, Playing::Last, out);
                    return;
                }
                if let Some(held) = self.held.take() {
                    // The caller spoke (or pressed) again meanwhile: their
                    // latest input is the turn; this reply goes unsaid.
                    out.push(Output::Note(Note::Superseded { job }));
                    return self.ask(held, out);
                }
                if self.playing.take().is_some() {
                    // The filler, still playing.
                    out.push(Output::Clear);
                }
                self.play(&audio, Playing::Reply, out);
            }
        }
    }

    /// The trouble sentence (if there is audio for it), then the desk.
    fn fall_back(&mut self, job: u64, why: String, out: &mut Vec<Output>) {
        out.push(Output::Note(Note::Fallback { job, why: why.clone() }));
        self.held = None;
        if self.playing.take().is_some() {
            out.push(Output::Clear);
        }
        let outcome = Outcome::HandedOff { by_bot: Some(why) };
        match self.fixed.trouble.clone() {
            Some(trouble) => {
                self.closing = Some(outcome);
                self.play(&trouble, Playing::Last, out);
            }
            None => self.close(outcome, out),
        }
    }

    /// Sends `samples` as media messages of [`CHUNK_BYTES`] (the last one
    /// padded with silence to a multiple of 320 bytes), then a mark.
    fn play(&mut self, samples: &[i16], kind: Playing, out: &mut Vec<Output>) {
        if samples.is_empty() {
            // Nothing to say: as if it had played.
            self.playing = Some(Playback { mark: String::new(), due_ms: self.now_ms, kind });
            return self.played(out);
        }
        let mut bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        let unit = mangwale_providers::exotel::voicebot::FRAME_BYTES;
        bytes.resize(bytes.len().div_ceil(unit) * unit, 0);
        let length_ms = (bytes.len() / 16) as u64;
        for chunk in bytes.chunks(CHUNK_BYTES) {
            out.push(Output::Media(chunk.to_vec()));
        }
        self.marks += 1;
        let mark = format!("m{}", self.marks);
        out.push(Output::Mark(mark.clone()));
        self.waiting_since = None;
        self.playing = Some(Playback { mark, due_ms: self.now_ms + length_ms + self.timings.mark_grace_ms, kind });
    }

    fn close(&mut self, outcome: Outcome, out: &mut Vec<Output>) {
        self.closed = true;
        self.pending = None;
        self.playing = None;
        out.push(Output::Close(outcome));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loud alternating "speech" stand-in is not speech to earshot; the
    /// machine's own logic is tested here with utterances injected by
    /// driving jobs, and with real speech in the route's tests.
    fn machine() -> Machine {
        Machine::new(Timings::default(), TurnConfig::default())
    }

    fn silence(m: &mut Machine, ms: u64) -> Vec<Output> {
        let mut out = Vec::new();
        for _ in 0..ms / 100 {
            out.extend(m.handle(Event::Audio(vec![0; 800])));
        }
        out
    }

    fn job_of(out: &[Output]) -> Option<Job> {
        out.iter().find_map(|o| match o {
            Output::StartJob(j) => Some(j.clone()),
            _ => None,
        })
    }

    fn mark_of(out: &[Output]) -> Option<String> {
        out.iter().find_map(|o| match o {
            Output::Mark(m) => Some(m.clone()),
            _ => None,
        })
    }

    fn fixed() -> Option<FixedAudio> {
        Some(FixedAudio { filler: Some(vec![1; 4000]), trouble: Some(vec![2; 8000]) })
    }

    fn reply(audio: usize) -> JobResult {
        JobResult::Reply { audio: vec![3; audio], ended: false, handed_off: false, fixed: None }
    }

    #[test]
    fn the_greeting_plays_in_320_byte_multiples_then_no_answer_asks_for_silence() {
        let mut m = machine();
        let start = job_of(&m.start()).unwrap();
        assert_eq!(start.kind, JobKind::Start);
        let out = m.handle(Event::Done {
            job: start.id,
            result: JobResult::Reply { audio: vec![5; 8001], ended: false, handed_off: false, fixed: fixed() },
        });
        let media: Vec<usize> = out
            .iter()
            .filter_map(|o| match o {
                Output::Media(b) => Some(b.len()),
                _ => None,
            })
            .collect();
        assert_eq!(media, [3200, 3200, 3200, 3200, 3200, 320]);
        assert!(media.iter().all(|n| n % 320 == 0));
        let mark = mark_of(&out).unwrap();
        // While it plays, no silence timer.
        assert!(job_of(&silence(&mut m, 1000)).is_none());
        assert!(m.handle(Event::Mark(mark)).is_empty());
        assert!(job_of(&silence(&mut m, 6900)).is_none());
        let silent = job_of(&silence(&mut m, 100)).unwrap();
        assert_eq!(silent.kind, JobKind::Silence);
    }

    #[test]
    fn a_slow_reply_gets_the_filler_then_a_failed_one_the_trouble_sentence_and_the_desk() {
        let mut m = machine();
        let start = job_of(&m.start()).unwrap();
        let out = m.handle(Event::Done {
            job: start.id,
            result: JobResult::Reply { audio: vec![5; 800], ended: false, handed_off: false, fixed: fixed() },
        });
        m.handle(Event::Mark(mark_of(&out).unwrap()));
        let key = job_of(&m.handle(Event::Dtmf("1".into()))).unwrap();
        assert_eq!(key.kind, JobKind::Keys("1".into()));
        assert!(silence(&mut m, 600).is_empty());
        let out = silence(&mut m, 100);
        assert!(matches!(out[0], Output::Note(Note::Filler { .. })), "{out:?}");
        let filler_mark = mark_of(&out).unwrap();
        // The filler (500 ms) plays; then 2.3 s of quiet and the bot gives up.
        silence(&mut m, 500);
        m.handle(Event::Mark(filler_mark));
        assert!(silence(&mut m, 2200).is_empty());
        let out = silence(&mut m, 100);
        assert!(out.contains(&Output::CancelJob(key.id)), "{out:?}");
        assert!(matches!(&out[1], Output::Note(Note::Fallback { .. })), "{out:?}");
        let last = mark_of(&out).unwrap();
        // The late result is ignored; the trouble sentence's mark closes the stream.
        assert!(m.handle(Event::Done { job: key.id, result: reply(800) }).is_empty());
        let out = m.handle(Event::Mark(last));
        assert!(matches!(&out[..], [Output::Close(Outcome::HandedOff { by_bot: Some(_) })]), "{out:?}");
        assert!(m.closed());
    }

    #[test]
    fn keys_barge_in_and_a_final_reply_closes_after_its_mark() {
        let mut m = machine();
        let start = job_of(&m.start()).unwrap();
        m.handle(Event::Done {
            job: start.id,
            result: JobResult::Reply { audio: vec![5; 16000], ended: false, handed_off: false, fixed: fixed() },
        });
        let out = m.handle(Event::Dtmf("2".into()));
        assert_eq!(out[0], Output::Clear);
        let job = job_of(&out).unwrap();
        let out = m.handle(Event::Done {
            job: job.id,
            result: JobResult::Reply { audio: vec![5; 800], ended: true, handed_off: true, fixed: None },
        });
        let mark = mark_of(&out).unwrap();
        assert_eq!(m.handle(Event::Dtmf("1".into())), [Output::Note(Note::Ignored { what: "key" })]);
        let out = m.handle(Event::Mark(mark));
        assert_eq!(out, [Output::Close(Outcome::HandedOff { by_bot: None })]);
    }

    #[test]
    fn a_failed_job_without_fixed_audio_closes_to_the_desk_at_once() {
        let mut m = machine();
        let start = job_of(&m.start()).unwrap();
        let out =
            m.handle(Event::Done { job: start.id, result: JobResult::Failed { why: "no TTS".into(), fixed: None } });
        assert!(matches!(out.last(), Some(Output::Close(Outcome::HandedOff { by_bot: Some(w) })) if w == "no TTS"));
    }

    #[test]
    fn a_lost_mark_counts_as_played_after_the_grace() {
        let mut m = machine();
        let start = job_of(&m.start()).unwrap();
        m.handle(Event::Done {
            job: start.id,
            result: JobResult::Reply { audio: vec![5; 8000], ended: true, handed_off: false, fixed: None },
        });
        assert!(silence(&mut m, 3900).is_empty());
        assert_eq!(silence(&mut m, 100), [Output::Close(Outcome::Completed)]);
    }
}
