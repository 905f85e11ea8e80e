//! The audio evaluation (issue 12, item 7, first half): the development
//! set's utterances spoken by espeak-ng, heard by the embedded Whisper
//! recogniser with the store's catalog as hints, and played through the
//! ordering dialog as `voice eval` plays the written cases.
//!
//! ```text
//! MODELS_DIR=/path/to/models cargo bench -p mangwale-speech --features whisper \
//!     --bench speech_eval -- [--limit N] [--lang hi|mr|en|hi-en] [--model base|small] [--verbose]
//!     [--no-prompt] [--script native] [--hinglish-as-english] [--min-audio-ctx N]
//! ```
//!
//! - Hindi and Marathi cases are written in Devanagari and spoken with
//!   espeak-ng's `hi` and `mr` voices; English and Hinglish as written
//!   (`en`, and `hi` for Latin Hinglish, which espeak reads with English
//!   sounds: the voice the service's own prompts use).
//! - Audio: espeak's 22,050 Hz resampled to the phone's 8 kHz, then given
//!   to the recogniser as a call's audio is (which resamples to 16 kHz).
//! - `--limit N` takes N cases spread evenly over each language's file in
//!   turn (stratified), for a run that fits in minutes on 2 cores.
//!
//! Prints, per language and overall: word error rate, exact-cart rate,
//! item recall and precision, quantity accuracy, and the recogniser's time
//! per utterance (p50, p95).
//! Without a model under MODELS_DIR it says so and exits successfully.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mangwale_speech::audio::resample;
use mangwale_speech::espeak::Espeak;
use mangwale_speech::hints::{Script, catalog_hints_in};
use mangwale_speech::wer::word_errors;
use mangwale_speech::whisper::{Whisper, WhisperConfig, models_present};
use mangwale_voice::catalog::Lang;
use mangwale_voice::dialog::Input;
use mangwale_voice::eval::{Catalogs, EvalCase, EvalReport, read_cases, run_case};
use mangwale_voice::speech::{Pcm16, SampleRate};

struct Options {
    limit: Option<usize>,
    lang: Option<Lang>,
    model: String,
    models_dir: PathBuf,
    verbose: bool,
    /// Leave the catalog out of the prompt (to measure what it brings).
    no_prompt: bool,
    /// The hints' script (`--script native` for Devanagari Hindi and
    /// Marathi phrases).
    script: Script,
    /// Decode Hinglish as English instead of Hindi.
    hinglish_as_english: bool,
    /// The smallest encoder context (`--min-audio-ctx`, in 20 ms
    /// positions; 1500 reads Whisper's whole 30 s window every time).
    min_audio_ctx: usize,
}

fn options() -> Options {
    let mut options = Options {
        limit: std::env::var("SPEECH_EVAL_LIMIT").ok().and_then(|v| v.parse().ok()),
        lang: None,
        model: std::env::var("WHISPER_MODEL").unwrap_or_else(|_| "base".into()),
        models_dir: std::env::var("MODELS_DIR").map_or_else(|_| PathBuf::from("models"), PathBuf::from),
        verbose: false,
        no_prompt: false,
        script: Script::Latin,
        hinglish_as_english: false,
        min_audio_ctx: mangwale_speech::whisper::MIN_AUDIO_CTX,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--limit" => options.limit = args.next().and_then(|v| v.parse().ok()),
            "--lang" => options.lang = args.next().and_then(|v| Lang::from_code(&v)),
            "--model" => options.model = args.next().unwrap_or_else(|| "base".into()),
            "--models-dir" => options.models_dir = args.next().map(PathBuf::from).unwrap_or(options.models_dir),
            "--verbose" => options.verbose = true,
            "--no-prompt" => options.no_prompt = true,
            "--script" => {
                options.script = if args.next().as_deref() == Some("native") { Script::Native } else { Script::Latin }
            }
            "--hinglish-as-english" => options.hinglish_as_english = true,
            "--min-audio-ctx" => {
                options.min_audio_ctx = args.next().and_then(|v| v.parse().ok()).unwrap_or(options.min_audio_ctx)
            }
            // cargo bench passes --bench; other flags are not ours.
            _ => {}
        }
    }
    options
}

/// `limit` cases spread evenly over each file (the files are one
/// language each), as equal a share per file as the limit allows.
fn stratified(per_file: Vec<Vec<EvalCase>>, limit: Option<usize>) -> Vec<EvalCase> {
    let Some(limit) = limit else { return per_file.into_iter().flatten().collect() };
    let files = per_file.len().max(1);
    let mut picked = Vec::new();
    for (i, cases) in per_file.into_iter().enumerate() {
        let share = limit / files + usize::from(i < limit % files);
        let share = share.min(cases.len());
        for k in 0..share {
            picked.push(cases[k * cases.len() / share].clone());
        }
    }
    picked
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

#[derive(Default)]
struct AsrTally {
    errors: usize,
    words: usize,
    /// Utterances heard in the other script (not in the WER).
    other_script: usize,
    times: Vec<Duration>,
}

fn devanagari(text: &str) -> bool {
    text.chars().any(|c| ('\u{0900}'..='\u{097F}').contains(&c))
}

#[tokio::main]
async fn main() {
    let options = options();
    let config = WhisperConfig {
        models_dir: options.models_dir.clone(),
        model: options.model.clone(),
        threads: std::env::var("WHISPER_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(2),
        max_tokens: std::env::var("WHISPER_MAX_TOKENS").ok().and_then(|v| v.parse().ok()).unwrap_or(96),
        min_audio_ctx: options.min_audio_ctx,
    };
    if !models_present(&config) {
        println!("speech_eval skipped: no models in {}", config.model_dir().display());
        return;
    }
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../voice/tests/data");
    let languages = [("hindi", Lang::Hi), ("marathi", Lang::Mr), ("english", Lang::En), ("hinglish", Lang::HiEn)];
    let mut per_file = Vec::new();
    for (file, lang) in languages {
        if options.lang.is_some_and(|l| l != lang) {
            continue;
        }
        per_file.push(read_cases(&[data.join(format!("cases-{file}.jsonl"))]).expect("development set"));
    }
    let cases = stratified(per_file, options.limit);
    let catalogs = Catalogs::open(&data.join("catalogs")).expect("catalogs");
    let per_case = catalogs.for_cases(&cases).expect("a catalog per case");

    let started = Instant::now();
    let whisper = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || Whisper::load(&config)).await.unwrap().expect("whisper loads")
    };
    println!("loaded whisper-{} in {:.1} s", config.model, started.elapsed().as_secs_f64());
    let espeak = Espeak::default();
    espeak.probe().await.expect("espeak-ng runs");

    let mut outcomes = Vec::with_capacity(cases.len());
    let mut asr: BTreeMap<String, AsrTally> = BTreeMap::new();
    let mut heard_lines = Vec::new();
    let run_started = Instant::now();
    for (index, (case, catalog)) in cases.iter().zip(per_case).enumerate() {
        let lang = case.lang.unwrap_or(catalog.store.language);
        let mut hints = catalog_hints_in(&catalog, lang, options.script);
        if options.hinglish_as_english && lang == Lang::HiEn {
            hints.language = Some(Lang::En);
        }
        if options.no_prompt {
            hints.phrases.clear();
        }
        let mut heard = case.clone();
        for turn in heard.turns.iter_mut() {
            let Input::Say(text) = turn else { continue };
            let (rate, samples) = espeak.render(text, Espeak::voice(lang)).await.expect("espeak-ng speaks");
            let audio = Pcm16 { sample_rate: SampleRate::Hz8000, samples: resample(&samples, rate, 8000) };
            let asr_started = Instant::now();
            let whisper_ref = &whisper;
            let transcript = tokio::task::block_in_place(|| whisper_ref.transcribe_blocking(&audio, &hints))
                .expect("whisper transcribes");
            let took = asr_started.elapsed();
            // Words compare only in one script: a Latin transcript of a
            // Devanagari sentence (the Latin prompt's doing) is left out
            // of the word error rate, and counted apart.
            let same_script = devanagari(text) == devanagari(&transcript.text) || transcript.text.is_empty();
            let (errors, words) = word_errors(text, &transcript.text);
            for key in [lang.code().to_string(), "all".to_string()] {
                let tally = asr.entry(key).or_default();
                if same_script {
                    tally.errors += errors;
                    tally.words += words;
                } else {
                    tally.other_script += 1;
                }
                tally.times.push(took);
            }
            if options.verbose {
                heard_lines.push(format!(
                    "  {} [{}] {:>5} ms  said: {text}\n{:>23}heard: {}",
                    case.id,
                    lang,
                    took.as_millis(),
                    "",
                    transcript.text
                ));
            }
            *turn = Input::Say(transcript.text);
        }
        outcomes.push(run_case(index, &heard, catalog, None).await);
        if (index + 1) % 20 == 0 {
            eprintln!("  {} / {} cases, {:.0} s", index + 1, cases.len(), run_started.elapsed().as_secs_f64());
        }
    }
    let report = EvalReport::new(&outcomes, None);
    let prompt = if options.no_prompt {
        "no prompt".to_string()
    } else {
        format!("catalog prompt, {:?} script", options.script)
    };
    println!(
        "speech_eval: {} cases, whisper-{} ({prompt}, {} threads, max {} tokens, encoder context ≥ {}), espeak-ng -> 8 kHz, {:.0} s",
        cases.len(),
        config.model,
        config.threads,
        config.max_tokens,
        config.min_audio_ctx,
        run_started.elapsed().as_secs_f64()
    );
    println!(
        "{:<8} {:>5}  {:>6}  {:>11}  {:>11}  {:>9}  {:>9}  {:>9}  {:>9}  {:>12}",
        "language",
        "cases",
        "WER",
        "exact carts",
        "item recall",
        "precision",
        "quantity",
        "ASR p50",
        "ASR p95",
        "other script"
    );
    let pct = |r: Option<f64>| r.map_or("-".into(), |r| format!("{:.1} %", r * 100.0));
    let mut rows: Vec<(String, _)> = report.by_language.iter().map(|(l, f)| (l.clone(), f)).collect();
    rows.push(("all".into(), &report.overall));
    for (lang, figures) in rows {
        let Some(tally) = asr.get_mut(&lang) else { continue };
        tally.times.sort();
        let wer = if tally.words == 0 { None } else { Some(tally.errors as f64 / tally.words as f64) };
        println!(
            "{lang:<8} {:>5}  {:>6}  {:>11}  {:>11}  {:>9}  {:>9}  {:>6} ms  {:>6} ms  {:>5} of {:<4}",
            figures.cases,
            pct(wer),
            pct(figures.exact_cart_rate),
            pct(figures.item_recall),
            pct(figures.item_precision),
            pct(figures.quantity_accuracy),
            percentile(&tally.times, 0.50).as_millis(),
            percentile(&tally.times, 0.95).as_millis(),
            tally.other_script,
            tally.times.len()
        );
    }
    if options.verbose {
        println!("\nutterances:");
        for line in &heard_lines {
            println!("{line}");
        }
        print!(
            "\n{}",
            report.to_text(true).lines().skip_while(|l| !l.starts_with("failing")).collect::<Vec<_>>().join("\n")
        );
        println!();
    }
}
