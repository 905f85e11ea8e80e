//! Latency of a Voicebot turn: from the end of the caller's speech to the
//! first byte of reply audio, split into VAD (the hang-over that decides
//! the turn is over, plus its computation), ASR, dialog and TTS, p50 and
//! p95; and our own processing (everything but ASR and TTS, the hang-over
//! being waiting, not work), p99. A benchmark, not a test: it asserts
//! nothing.
//!
//!     cargo bench -p mangwale-server --bench voicebot_latency
//!
//! Each utterance is the first turn of a case of the voice development set
//! (crates/voice/tests/data/cases-*.jsonl), spoken by espeak-ng and
//! resampled to 8 kHz, fed to the stream's state machine in Exotel's
//! 100 ms frames after the store's greeting; the turn it asks for runs as
//! the route runs it (`voicebot::jobs::Runner`: hints, recognition, the
//! durable dialog over SQLite and the in-process Jupiter simulator,
//! synthesis with espeak-ng); the reply's first media message is encoded.
//!
//! The recogniser: the embedded Whisper when it is built and its model is
//! in MODELS_DIR; otherwise a stub answering the case's text at once (the
//! output says which: with the stub, the ASR column is zero and the total
//! lacks the recogniser's time).
//!
//! Knobs: BENCH_UTTERANCES (default 40), MODELS_DIR (default ./models at
//! the workspace root), WHISPER_THREADS (default 2).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use base64::Engine;
use mangwale_server::speech::Speech;
use mangwale_server::voicebot::jobs::{CallInfo, Runner};
use mangwale_server::voicebot::machine::{Event, Job, JobKind, Machine, Output, Timings};
use mangwale_server::{Config, PrepareOptions};
use mangwale_speech::espeak::Espeak;
use mangwale_speech::vad::TurnConfig;
use mangwale_speech::whisper::{Whisper, WhisperConfig, models_present};
use mangwale_store::SystemClock;
use mangwale_store::test_support::TestDb;
use mangwale_voice::Lang;
use mangwale_voice::speech::{Pcm16, RecognitionHints, Recognizer, SpeechError, Transcript};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Rahul Kulkarni of the demo data (a saved address).
const RAHUL: &str = "+917207687342";

/// Answers the text of the utterance being measured, at once.
#[derive(Default, Clone)]
struct StubRecognizer {
    text: Arc<Mutex<String>>,
}

#[async_trait]
impl Recognizer for StubRecognizer {
    fn name(&self) -> &str {
        "stub (the case's text)"
    }

    async fn recognize(&self, _: &Pcm16, hints: &RecognitionHints) -> Result<Transcript, SpeechError> {
        let text = self.text.lock().unwrap().clone();
        Ok(Transcript { text, language: hints.language.unwrap_or(Lang::Hi), confidence: 1.0 })
    }
}

struct Case {
    store: String,
    lang: Lang,
    text: String,
}

fn cases(limit: usize) -> Vec<Case> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../voice/tests/data");
    let mut per_file = Vec::new();
    for name in ["cases-hindi", "cases-hinglish", "cases-marathi", "cases-english"] {
        let text = std::fs::read_to_string(format!("{dir}/{name}.jsonl")).expect("the development set");
        let cases: Vec<Case> = text
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter_map(|case| {
                Some(Case {
                    store: case["store_id"].as_str()?.to_string(),
                    lang: Lang::from_code(case["lang"].as_str()?)?,
                    text: case["turns"][0].as_str()?.to_string(),
                })
            })
            .collect();
        per_file.push(cases);
    }
    // Round robin over the languages.
    let mut out = Vec::new();
    let mut i = 0;
    while out.len() < limit && per_file.iter().any(|c| i < c.len()) {
        for cases in &mut per_file {
            if i < cases.len() && out.len() < limit {
                out.push(std::mem::replace(
                    &mut cases[i],
                    Case { store: String::new(), lang: Lang::Hi, text: String::new() },
                ));
            }
        }
        i += 1;
    }
    out
}

fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[derive(Default)]
struct Sample {
    vad: f64,
    asr: f64,
    dialog: f64,
    tts: f64,
    total: f64,
    own: f64,
}

/// The embedded Whisper, when it is built and its model is in MODELS_DIR.
async fn embedded_whisper() -> Option<Arc<dyn Recognizer>> {
    let dir = std::env::var("MODELS_DIR")
        .map_or_else(|_| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../models")), PathBuf::from);
    let mut config = WhisperConfig::new(dir);
    if let Some(threads) = std::env::var("WHISPER_THREADS").ok().and_then(|v| v.parse().ok()) {
        config.threads = threads;
    }
    if !models_present(&config) {
        return None;
    }
    match tokio::task::spawn_blocking(move || Whisper::load(&config)).await {
        Ok(Ok(whisper)) => Some(Arc::new(whisper)),
        Ok(Err(e)) => {
            eprintln!("the embedded Whisper cannot run ({e}): the stub stands in");
            None
        }
        Err(e) => {
            eprintln!("loading the embedded Whisper panicked ({e}): the stub stands in");
            None
        }
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(run());
}

async fn run() {
    let limit = std::env::var("BENCH_UTTERANCES").ok().and_then(|v| v.parse().ok()).unwrap_or(40);
    let espeak = Espeak::default();
    if let Err(e) = espeak.probe().await {
        eprintln!("espeak-ng is needed: {e}");
        return;
    }
    let stub = StubRecognizer::default();
    let recognizer: Arc<dyn Recognizer> = match embedded_whisper().await {
        Some(whisper) => whisper,
        None => Arc::new(stub.clone()),
    };
    let recognizer_name = recognizer.name().to_string();
    let db = TestDb::sqlite().await.unwrap();
    let config = Config::from_vars(vec![
        ("DATABASE_URL".to_string(), db.url.clone()),
        ("API_KEYS".to_string(), "bench-api-key-0123456789".to_string()),
        ("EXOTEL_WEBHOOK_TOKEN".to_string(), "bench-webhook-token-0123456789".to_string()),
    ])
    .unwrap();
    let speech = Speech { recognizer: Some(recognizer), synthesizer: Some(Arc::new(espeak.clone())), ..Speech::none() };
    let options = PrepareOptions { speech: Some(speech), ..PrepareOptions::default() };
    let state = mangwale_server::prepare_with(config, Arc::new(SystemClock), options).await.unwrap();

    let cases = cases(limit);
    let mut samples = Vec::new();
    for (n, case) in cases.iter().enumerate() {
        let call = CallInfo {
            call_sid: format!("bench-{n}"),
            stream_sid: format!("st-{n}"),
            phone: mangwale_core::E164::parse(RAHUL).ok(),
            store: Some(case.store.clone()),
            language: Some(case.lang),
        };
        let runner = Runner::new(state.clone(), call);
        let mut machine = Machine::new(Timings::default(), TurnConfig::default());
        // The greeting, played out.
        let Some(Output::StartJob(start)) = machine.start().into_iter().next() else { unreachable!() };
        let (result, _) = runner.run(&start).await;
        let mark = machine.handle(Event::Done { job: start.id, result }).into_iter().find_map(|o| match o {
            Output::Mark(m) => Some(m),
            _ => None,
        });
        if let Some(mark) = mark {
            machine.handle(Event::Mark(mark));
        }
        // The caller's words, in 100 ms frames, until the machine asks for the turn.
        let (rate, raw) = espeak.render(&case.text, Espeak::voice(case.lang)).await.unwrap();
        let mut audio = vec![0i16; 4000];
        audio.extend(mangwale_speech::audio::resample(&raw, rate, 8000));
        audio.resize(audio.len().div_ceil(800) * 800 + 16_000, 0);
        *stub.text.lock().unwrap() = case.text.clone();
        let mut asked: Option<(Job, f64)> = None;
        for frame in audio.chunks(800) {
            let started = Instant::now();
            let out = machine.handle(Event::Audio(frame.to_vec()));
            let cpu = started.elapsed().as_secs_f64() * 1000.0;
            if let Some(job) = out.into_iter().find_map(|o| match o {
                Output::StartJob(job) if matches!(job.kind, JobKind::Speech(_)) => Some(job),
                _ => None,
            }) {
                asked = Some((job, cpu));
                break;
            }
        }
        let Some((job, vad_cpu)) = asked else {
            eprintln!("no end of turn for {:?}", case.text);
            continue;
        };
        let JobKind::Speech(utterance) = &job.kind else { unreachable!() };
        // From the end of speech to the frame that carried the decision.
        let hang_over = (job.at_ms - utterance.ended_at_ms) as f64;
        let started = Instant::now();
        let (result, measured) = runner.run(&job).await;
        let job_ms = started.elapsed().as_secs_f64() * 1000.0;
        let started = Instant::now();
        let out = machine.handle(Event::Done { job: job.id, result });
        let first = out.into_iter().find_map(|o| match o {
            Output::Media(pcm) => Some(pcm),
            _ => None,
        });
        let Some(first) = first else {
            eprintln!("no reply audio for {:?}", case.text);
            continue;
        };
        let _payload = base64::engine::general_purpose::STANDARD.encode(&first);
        let send_cpu = started.elapsed().as_secs_f64() * 1000.0;
        let asr = measured.asr_ms.unwrap_or(0) as f64;
        let tts = measured.tts_ms.unwrap_or(0) as f64;
        let dialog = measured.dialog_ms.unwrap_or(0) as f64;
        let total = hang_over + vad_cpu + job_ms + send_cpu;
        samples.push(Sample {
            vad: hang_over + vad_cpu,
            asr,
            dialog,
            tts,
            total,
            own: vad_cpu + (job_ms - asr - tts).max(0.0) + send_cpu,
        });
    }
    let column = |f: fn(&Sample) -> f64| samples.iter().map(f).collect::<Vec<f64>>();
    println!(
        "voicebot turn latency: {} utterances of the development set, recogniser: {recognizer_name}",
        samples.len()
    );
    println!("(end of caller speech -> first byte of reply audio; ms)");
    println!("{:<28} {:>8} {:>8} {:>8}", "", "p50", "p95", "p99");
    for (name, values) in [
        ("VAD (hang-over + compute)", column(|s| s.vad)),
        ("ASR", column(|s| s.asr)),
        ("dialog", column(|s| s.dialog)),
        ("TTS (espeak-ng)", column(|s| s.tts)),
        ("total", column(|s| s.total)),
        ("own processing (not ASR/TTS)", column(|s| s.own)),
    ] {
        println!(
            "{name:<28} {:>8.1} {:>8.1} {:>8.1}",
            percentile(&values, 50.0),
            percentile(&values, 95.0),
            percentile(&values, 99.0)
        );
    }
    let own_p99 = percentile(&column(|s| s.own), 99.0);
    let total_p50 = percentile(&column(|s| s.total), 50.0);
    println!(
        "targets: end-of-speech to reply p50 <= 1500 ms: {total_p50:.0} ms{}; own processing p99 <= 50 ms: {own_p99:.1} ms ({})",
        if recognizer_name.starts_with("stub") { " (without the recogniser's time)" } else { "" },
        if own_p99 <= 50.0 { "met" } else { "missed" }
    );
    db.cleanup().await;
}
