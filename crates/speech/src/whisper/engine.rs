//! The Whisper engine proper: CTranslate2 (through `ct2rs`'s raw bindings,
//! whose high-level `Whisper` cannot take a previous-text prompt), the
//! model's own tokenizer, and [`LogMel`] features.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use ct2rs::sys::{self, ComputeType, Config, Device, StorageView, WhisperOptions};
use mangwale_voice::catalog::Lang;
use mangwale_voice::speech::{Pcm16, RecognitionHints, Recognizer, SpeechError, Transcript};
use tokio::sync::Semaphore;

use super::{
    Request, WhisperConfig, ct2_max_length, decoder_prompt, models_present, prompt_tokens, recites_prompt,
    whisper_language,
};
use crate::mel::{self, LogMel};

/// Above this no-speech probability, with an unlikely text, the audio held
/// no speech (faster-whisper's thresholds).
const NO_SPEECH_PROBABILITY: f32 = 0.6;
const LOW_LOG_PROBABILITY: f32 = -1.0;
/// Shorter audio is not an utterance (a click, a breath).
const MIN_AUDIO_MS: u64 = 100;
/// Tokens of the answer seen in another n-gram are blocked: a prompted
/// Whisper otherwise loops ("misal pav misal pav misal pav ...").
const NO_REPEAT_NGRAM: usize = 3;
const REPETITION_PENALTY: f32 = 1.1;

/// A loaded Whisper model; implements `Recognizer`.
pub struct Whisper {
    inner: Arc<Inner>,
    /// Bounds the recognitions in flight (the rest wait here, not on
    /// blocking threads).
    slots: Arc<Semaphore>,
    name: String,
}

struct Inner {
    model: sys::Whisper,
    tokenizer: tokenizers::Tokenizer,
    mel: LogMel,
    config: WhisperConfig,
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
        let started = Instant::now();
        let ct2_config = Config {
            device: Device::CPU,
            // int8 weights with f32 activations: the fastest on a CPU, and
            // what faster-whisper runs on one.
            compute_type: ComputeType::INT8_FLOAT32,
            num_threads_per_replica: config.threads.max(1),
            ..Config::default()
        };
        let model = sys::Whisper::new(&dir, ct2_config)
            .map_err(|e| SpeechError::Unavailable(format!("loading {}: {e:#}", dir.display())))?;
        if !model.is_multilingual() {
            return Err(SpeechError::Unavailable(format!("{} is an English-only model", dir.display())));
        }
        let tokenizer = tokenizers::Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|e| SpeechError::Unavailable(format!("{}/tokenizer.json: {e}", dir.display())))?;
        tracing::info!(model = %config.model, dir = %dir.display(), ms = started.elapsed().as_millis() as u64, "whisper loaded");
        let slots = Arc::new(Semaphore::new(config.parallel_recognitions()));
        Ok(Whisper {
            inner: Arc::new(Inner { model, tokenizer, mel: LogMel::new(), config: config.clone() }),
            slots,
            name: format!("whisper-{} (embedded)", config.model),
        })
    }

    /// Transcribes on the calling thread (blocking; the bench and tests
    /// call it directly, `recognize` from the blocking pool).
    pub fn transcribe_blocking(&self, audio: &Pcm16, hints: &RecognitionHints) -> Result<Transcript, SpeechError> {
        self.inner.transcribe(&Request::new(audio, hints))
    }
}

impl Inner {
    fn transcribe(&self, request: &Request) -> Result<Transcript, SpeechError> {
        let hinted = request.language;
        let audio_ms = request.audio.len() as u64 * 1000 / u64::from(mel::SAMPLE_RATE);
        if audio_ms < MIN_AUDIO_MS {
            return Ok(empty(hinted.unwrap_or_default()));
        }
        if request.audio.len() > mel::N_SAMPLES {
            return Err(SpeechError::Unsupported(format!("{audio_ms} ms of audio; Whisper takes at most 30 s a turn")));
        }
        let mut features = self.mel.features(&request.audio);
        let features = StorageView::new(&[1, mel::N_MELS, mel::N_FRAMES], &mut features, Device::CPU)
            .map_err(|e| SpeechError::BadResponse(format!("features: {e:#}")))?;
        // Encoded once: language detection and decoding both read it.
        let encoded = self.model.encode(&features, false).map_err(|e| SpeechError::Unavailable(format!("{e:#}")))?;
        let language = match hinted {
            Some(lang) => lang,
            None => self.detect(&encoded)?,
        };
        let previous = prompt_tokens(&request.phrases, self.config.prompt_budget(), |text| self.encode(text));
        let prompt = decoder_prompt(&previous, whisper_language(language));
        let options = WhisperOptions {
            beam_size: 1,
            sampling_topk: 1,
            sampling_temperature: 0.0,
            max_length: ct2_max_length(prompt.len(), self.config.answer_tokens()),
            no_repeat_ngram_size: NO_REPEAT_NGRAM,
            repetition_penalty: REPETITION_PENALTY,
            return_scores: true,
            return_no_speech_prob: true,
            ..WhisperOptions::default()
        };
        let result = self
            .model
            .generate(&encoded, &[prompt], &options)
            .map_err(|e| SpeechError::Unavailable(format!("{e:#}")))?
            .into_iter()
            .next()
            .ok_or_else(|| SpeechError::BadResponse("whisper returned no result".into()))?;
        let ids: Vec<u32> =
            result.sequences_ids.first().map(|s| s.iter().map(|&id| id as u32).collect()).unwrap_or_default();
        // With length_penalty 1, CTranslate2's score is the mean log
        // probability of the answer's tokens.
        let log_probability = result.scores.first().copied().unwrap_or(f32::NEG_INFINITY);
        if result.no_speech_prob > NO_SPEECH_PROBABILITY && log_probability < LOW_LOG_PROBABILITY {
            return Ok(empty(language));
        }
        let text = self
            .tokenizer
            .decode(&ids, true)
            .map_err(|e| SpeechError::BadResponse(format!("decoding tokens: {e}")))?
            .trim()
            .to_string();
        if recites_prompt(&text, &request.phrases) {
            tracing::debug!(tokens = ids.len(), "whisper recited its prompt: no speech read");
            return Ok(empty(language));
        }
        Ok(Transcript { text, language, confidence: log_probability.exp().clamp(0.0, 1.0) })
    }

    /// The likeliest of the languages the service speaks.
    fn detect(&self, encoded: &StorageView) -> Result<Lang, SpeechError> {
        let ranked = self.model.detect_language(encoded).map_err(|e| SpeechError::Unavailable(format!("{e:#}")))?;
        let ranked = ranked.into_iter().next().unwrap_or_default();
        Ok(ranked
            .iter()
            .find_map(|d| match d.language.as_str() {
                "<|hi|>" => Some(Lang::Hi),
                "<|mr|>" => Some(Lang::Mr),
                "<|en|>" => Some(Lang::En),
                // Urdu is Hindi as Whisper often hears it.
                "<|ur|>" => Some(Lang::Hi),
                _ => None,
            })
            .unwrap_or_default())
    }

    fn encode(&self, text: &str) -> Vec<String> {
        match self.tokenizer.encode(text, false) {
            Ok(encoding) => encoding.get_tokens().to_vec(),
            // A phrase the tokenizer refuses is left out of the prompt
            // (the prompt is a hint; the recognition goes on).
            Err(e) => {
                tracing::warn!(error = %e, "whisper tokenizer refused a hint phrase");
                Vec::new()
            }
        }
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

        // Silence is an empty transcript, not the prompt read back.
        let silence = Pcm16 { sample_rate: SampleRate::Hz8000, samples: vec![0; 8000] };
        let nothing = whisper.recognize(&silence, &hints).await.unwrap();
        assert!(nothing.text.is_empty() || !recites_prompt(&nothing.text, &hints.phrases), "{nothing:?}");
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
