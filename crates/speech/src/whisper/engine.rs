//! The Whisper engine proper: whisper.cpp through `whisper-rs`, CPU only.
//! One context (the weights) is loaded once; each recognition borrows one
//! of a bounded pool of decoder states (whisper.cpp's per-inference
//! buffers), so recognitions run side by side without sharing a state.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use mangwale_voice::catalog::Lang;
use mangwale_voice::speech::{Pcm16, RecognitionHints, Recognizer, SpeechError, Transcript};
use tokio::sync::Semaphore;
use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState};

use super::{
    GGML_FILE, Request, WhisperConfig, audio_ctx, cut_repetition, models_present, prompt_within, recites_prompt,
    sample_order, whisper_language,
};
use crate::mel;

/// Above this no-speech probability, with an unlikely text (mean token
/// log probability under [`LOW_LOG_PROBABILITY`]), the audio held no
/// speech: whisper.cpp then writes no segment.
const NO_SPEECH_PROBABILITY: f32 = 0.6;
const LOW_LOG_PROBABILITY: f32 = -1.0;
/// Shorter audio is not an utterance (a click, a breath).
const MIN_AUDIO_MS: u64 = 100;

/// A loaded Whisper model; implements `Recognizer`.
pub struct Whisper {
    inner: Arc<Inner>,
    /// Bounds the recognitions in flight (the rest wait here, not on
    /// blocking threads); as many permits as states in the pool.
    slots: Arc<Semaphore>,
    name: String,
}

struct Inner {
    context: WhisperContext,
    /// Idle decoder states; a permit of `slots` guarantees one is here.
    states: Mutex<Vec<WhisperState>>,
    /// The pool's size (`parallel_recognitions`).
    pool: usize,
    config: WhisperConfig,
    /// The model's full encoder window (1500 positions, 30 s).
    full_audio_ctx: usize,
}

impl Whisper {
    /// Loads the model (blocking, seconds: call from `spawn_blocking`).
    pub fn load(config: &WhisperConfig) -> Result<Whisper, SpeechError> {
        let dir = config.model_dir();
        if !models_present(config) {
            return Err(SpeechError::Unavailable(format!(
                "no Whisper model in {} (run `mangwale-exotel models fetch --model {}`)",
                dir.display(),
                config.model
            )));
        }
        // whisper.cpp and ggml log to stderr unless told otherwise: their
        // lines go to `tracing` (targets `whisper_rs::…`) instead.
        whisper_rs::install_logging_hooks();
        let started = Instant::now();
        let path = dir.join(GGML_FILE);
        let mut parameters = WhisperContextParameters::default();
        parameters.use_gpu(false);
        let context = WhisperContext::new_with_params(&path, parameters)
            .map_err(|e| SpeechError::Unavailable(format!("loading {}: {e}", path.display())))?;
        if !context.is_multilingual() {
            return Err(SpeechError::Unavailable(format!("{} is an English-only model", path.display())));
        }
        let full_audio_ctx = usize::try_from(context.n_audio_ctx()).unwrap_or(super::FULL_AUDIO_CTX);
        let pool = config.parallel_recognitions();
        let states = (0..pool)
            .map(|_| context.create_state())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| SpeechError::Unavailable(format!("whisper.cpp state for {}: {e}", path.display())))?;
        tracing::info!(
            model = %config.model,
            file = %path.display(),
            states = pool,
            threads = config.threads,
            ms = started.elapsed().as_millis() as u64,
            "whisper loaded"
        );
        Ok(Whisper {
            inner: Arc::new(Inner {
                context,
                states: Mutex::new(states),
                pool,
                config: config.clone(),
                full_audio_ctx,
            }),
            slots: Arc::new(Semaphore::new(pool)),
            name: format!("whisper-{} (embedded)", config.model),
        })
    }

    /// Transcribes on the calling thread (blocking; the bench calls it
    /// directly, `recognize` from the blocking pool). It does not queue:
    /// with every pooled state busy it makes a transient one.
    pub fn transcribe_blocking(&self, audio: &Pcm16, hints: &RecognitionHints) -> Result<Transcript, SpeechError> {
        self.inner.transcribe(&Request::new(audio, hints))
    }
}

/// Returns a borrowed state to the pool, whatever happens to the
/// recognition (a transient one beyond the pool's size is freed).
struct Borrowed<'a> {
    inner: &'a Inner,
    state: Option<WhisperState>,
}

impl Drop for Borrowed<'_> {
    fn drop(&mut self) {
        if let Some(state) = self.state.take() {
            let mut idle = self.inner.states.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < self.inner.pool {
                idle.push(state);
            }
        }
    }
}

impl Inner {
    /// A state from the pool, or a transient one when the pool is empty
    /// (only past the semaphore, as `transcribe_blocking` is).
    fn borrow_state(&self) -> Result<Borrowed<'_>, SpeechError> {
        let idle = self.states.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let state = match idle {
            Some(state) => state,
            None => {
                self.context.create_state().map_err(|e| SpeechError::Unavailable(format!("whisper.cpp state: {e}")))?
            }
        };
        Ok(Borrowed { inner: self, state: Some(state) })
    }

    fn transcribe(&self, request: &Request) -> Result<Transcript, SpeechError> {
        let hinted = request.language;
        let audio_ms = request.audio.len() as u64 * 1000 / u64::from(mel::SAMPLE_RATE);
        if audio_ms < MIN_AUDIO_MS {
            return Ok(empty(hinted.unwrap_or_default()));
        }
        if request.audio.len() > mel::N_SAMPLES {
            return Err(SpeechError::Unsupported(format!("{audio_ms} ms of audio; Whisper takes at most 30 s a turn")));
        }
        let mut borrowed = self.borrow_state()?;
        let state = borrowed.state.as_mut().expect("a borrowed state");
        let threads = self.config.threads.max(1);
        let language = match hinted {
            Some(lang) => lang,
            None => self.detect(state, &request.audio, threads)?,
        };
        let pieces = sample_order(language, &request.phrases);
        let prompt = prompt_within(&pieces, self.config.prompt_budget(), |piece| {
            // Byte-level BPE: never more tokens than bytes.
            match self.context.tokenize(piece, piece.len() + 1) {
                Ok(tokens) => Some(tokens),
                Err(e) => {
                    tracing::warn!(error = %e, "whisper tokenizer refused a hint phrase");
                    None
                }
            }
        });
        let encoder_ctx = audio_ctx(request.audio.len(), self.config.min_audio_ctx, self.full_audio_ctx);
        let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        params.set_n_threads(threads as i32);
        params.set_language(Some(whisper_language(language)));
        params.set_translate(false);
        params.set_no_context(true);
        params.set_no_timestamps(true);
        params.set_single_segment(true);
        params.set_suppress_blank(true);
        params.set_suppress_nst(true);
        params.set_temperature(0.0);
        // No fallback to sampling at higher temperatures: one greedy pass.
        params.set_temperature_inc(0.0);
        params.set_max_tokens(self.config.answer_tokens() as i32);
        params.set_audio_ctx(encoder_ctx as i32);
        params.set_no_speech_thold(NO_SPEECH_PROBABILITY);
        params.set_logprob_thold(LOW_LOG_PROBABILITY);
        params.set_print_special(false);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_timestamps(false);
        params.set_tokens(&prompt);
        state.full(params, &request.audio).map_err(|e| SpeechError::Unavailable(format!("whisper.cpp: {e}")))?;

        // One segment, or none when whisper.cpp judged the audio silent.
        let mut text = String::new();
        let mut log_probability = 0f32;
        let mut tokens = 0usize;
        let eot = self.context.token_eot();
        for segment in state.as_iter() {
            text.push_str(&segment.to_str_lossy().map_err(|e| SpeechError::BadResponse(format!("whisper text: {e}")))?);
            for i in 0..segment.n_tokens() {
                let Some(token) = segment.get_token(i) else { continue };
                if token.token_id() < eot {
                    log_probability += token.token_data().plog;
                    tokens += 1;
                }
            }
        }
        let text = cut_repetition(text.trim());
        if text.is_empty() {
            return Ok(empty(language));
        }
        if recites_prompt(&text, &request.phrases, &pieces) {
            tracing::debug!(tokens, "whisper recited its prompt: no speech read");
            return Ok(empty(language));
        }
        let mean = if tokens == 0 { f32::NEG_INFINITY } else { log_probability / tokens as f32 };
        Ok(Transcript { text, language, confidence: mean.exp().clamp(0.0, 1.0) })
    }

    /// The likeliest of the languages the service speaks.
    fn detect(&self, state: &mut WhisperState, audio: &[f32], threads: usize) -> Result<Lang, SpeechError> {
        let failed = |e: whisper_rs::WhisperError| SpeechError::Unavailable(format!("whisper language detection: {e}"));
        state.pcm_to_mel(audio, threads).map_err(failed)?;
        let (_, probabilities) = state.lang_detect(0, threads).map_err(failed)?;
        let probability = |code: &str| {
            whisper_rs::get_lang_id(code)
                .and_then(|id| probabilities.get(usize::try_from(id).ok()?).copied())
                .unwrap_or(0.0)
        };
        // Urdu is Hindi as Whisper often hears it.
        let candidates = [
            (Lang::Hi, probability("hi") + probability("ur")),
            (Lang::Mr, probability("mr")),
            (Lang::En, probability("en")),
        ];
        Ok(candidates.iter().max_by(|a, b| a.1.total_cmp(&b.1)).map_or_else(Lang::default, |(lang, _)| *lang))
    }
}

fn empty(language: Lang) -> Transcript {
    Transcript { text: String::new(), language, confidence: 0.0 }
}

#[async_trait]
impl Recognizer for Whisper {
    fn name(&self) -> &str {
        &self.name
    }

    async fn recognize(&self, audio: &Pcm16, hints: &RecognitionHints) -> Result<Transcript, SpeechError> {
        let permit = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| SpeechError::Unavailable("whisper is shutting down".into()))?;
        let inner = self.inner.clone();
        let request = Request::new(audio, hints);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            inner.transcribe(&request)
        })
        .await
        .map_err(|e| SpeechError::Unavailable(format!("whisper recognition failed: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use mangwale_voice::speech::SampleRate;

    use super::*;
    use crate::audio::resample;
    use crate::espeak::Espeak;

    /// MODELS_DIR as the service reads it (default ./models, from the
    /// workspace root when run by cargo).
    fn config() -> WhisperConfig {
        let dir = std::env::var("MODELS_DIR")
            .map_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models"), PathBuf::from);
        WhisperConfig::new(dir)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_model_hears_an_espeak_sentence_with_the_catalog_in_its_prompt() {
        let config = config();
        if !models_present(&config) {
            println!("skipped: no models in {}", config.models_dir.display());
            return;
        }
        println!("ran: whisper-{} from {}", config.model, config.model_dir().display());
        let whisper = {
            let config = config.clone();
            tokio::task::spawn_blocking(move || Whisper::load(&config)).await.unwrap().unwrap()
        };
        let (rate, samples) = Espeak::default().render("two misal pav and one cutting chai", "en").await.unwrap();
        let audio = Pcm16 { sample_rate: SampleRate::Hz8000, samples: resample(&samples, rate, 8000) };
        let hints = RecognitionHints {
            language: Some(Lang::En),
            phrases: ["one", "two", "three", "Misal Pav", "Vada Pav", "Cutting Chai", "Kokum Sarbat"]
                .map(String::from)
                .to_vec(),
        };
        let heard = whisper.recognize(&audio, &hints).await.unwrap();
        println!("heard: {:?}", heard.text);
        let words = crate::wer::words(&heard.text);
        assert!(words.iter().any(|w| w == "misal"), "{heard:?}");
        assert!(words.iter().any(|w| w == "chai"), "{heard:?}");
        assert_eq!(heard.language, Lang::En);
        assert!(heard.confidence > 0.0, "{heard:?}");

        // Without a language hint: detected among Hindi, Marathi, English.
        let unhinted = RecognitionHints { language: None, ..hints.clone() };
        let detected = whisper.recognize(&audio, &unhinted).await.unwrap();
        println!("detected: {:?} {:?}", detected.language, detected.text);
        assert_eq!(detected.language, Lang::En, "{detected:?}");

        // Two at once: each on its own state.
        let (a, b) = tokio::join!(whisper.recognize(&audio, &hints), whisper.recognize(&audio, &hints));
        assert_eq!(a.unwrap().text, heard.text);
        assert_eq!(b.unwrap().text, heard.text);

        // Silence is an empty transcript, not the prompt read back.
        let silence = Pcm16 { sample_rate: SampleRate::Hz8000, samples: vec![0; 8000] };
        let nothing = whisper.recognize(&silence, &hints).await.unwrap();
        let prompt = sample_order(Lang::En, &hints.phrases);
        assert!(nothing.text.is_empty() || !recites_prompt(&nothing.text, &hints.phrases, &prompt), "{nothing:?}");
        // Too short to be speech: not even decoded.
        let click = Pcm16 { sample_rate: SampleRate::Hz8000, samples: vec![500; 400] };
        assert_eq!(whisper.recognize(&click, &hints).await.unwrap().text, "");
    }

    #[test]
    fn loading_without_a_model_says_how_to_get_one() {
        let dir = tempfile::tempdir().unwrap();
        let Err(error) = Whisper::load(&WhisperConfig::new(dir.path())) else { panic!("loaded from an empty folder") };
        assert!(matches!(&error, SpeechError::Unavailable(m) if m.contains("models fetch --model base")), "{error}");
    }
}
