//! The speech engines this process runs, chosen once at start from the
//! configuration: a recogniser for callers' audio and a synthesiser for the
//! agent's replies. Either may be absent; calls then fall back to the keypad
//! and the order desk, and `/health` says so.
//!
//! Recogniser (`ASR_BACKEND`, default `auto`): the user's ASR server when
//! `ASR_URL` is set, else the OpenAI-compatible endpoint when
//! `OPENAI_ASR_URL` is, else the embedded Whisper when its model is in
//! `MODELS_DIR`, else, in sandbox mode, the in-process ASR simulator (the
//! production `ASR_URL` client over real HTTP, answering the exact
//! transcripts simulated callers register), else none.
//!
//! Synthesiser (`TTS_BACKEND`, default `auto`): the user's TTS server when
//! `TTS_URL` is set, else espeak-ng when it runs here, else none.
//!
//! Start-up never fails for an engine: one that was asked for and cannot
//! run is logged once and reported by `/health` as down (degraded), with
//! the reason; none asked for and none found is reported, not degraded.

use std::sync::Arc;

use mangwale_sim::exotel::ExotelSim;
use mangwale_sim::speech::{AsrSim, TranscriptBook};
use mangwale_speech::asr_http::HttpAsr;
use mangwale_speech::espeak::Espeak;
use mangwale_speech::openai::OpenAiAsr;
use mangwale_speech::tts_http::TtsHttp;
use mangwale_speech::whisper::{Whisper, WhisperConfig, models_present};
use mangwale_voice::speech::{Recognizer, SpeechStatus, Synthesizer};
use reqwest::Url;

use crate::config::{AsrBackend, Config, Mode, SpeechSettings, TtsBackend};

/// What `/health` names the sandbox's recogniser.
pub const SIMULATED_ASR_NAME: &str = "asr-http (simulator: exact transcripts)";

/// One engine as chosen: its backend, where it is, and why it is not
/// running when it was asked for but could not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Engine {
    /// The backend's name ("asr-http", "openai-asr", "whisper", "espeak-ng",
    /// "tts-http").
    pub backend: String,
    /// The server, for HTTP backends (without credentials).
    pub url: Option<Url>,
    /// Set when the engine could not start: `/health` reports it down.
    pub unavailable: Option<String>,
}

/// The engines in use.
#[derive(Clone, Default)]
pub struct Speech {
    pub recognizer: Option<Arc<dyn Recognizer>>,
    pub synthesizer: Option<Arc<dyn Synthesizer>>,
    /// The recogniser chosen (also when it could not start); `None`: none
    /// was configured or found.
    pub asr: Option<Engine>,
    pub tts: Option<Engine>,
    /// Sandbox: the in-process ASR simulator when it is the recogniser.
    pub asr_sim: Option<AsrSim>,
    /// Sandbox: the book simulated callers register what they say in, the
    /// Exotel simulator's own (one book, shared).
    pub transcripts: Option<TranscriptBook>,
}

impl Speech {
    /// No engines: text and keys only.
    pub fn none() -> Speech {
        Speech::default()
    }

    /// Chooses and starts the engines `config` asks for. In sandbox mode
    /// `exotel_sim` is the in-process Exotel simulator: its transcript book
    /// is the one the simulated ASR server answers from.
    pub async fn start(config: &Config, exotel_sim: Option<&ExotelSim>) -> Speech {
        let settings = &config.speech;
        let transcripts = exotel_sim.map(|sim| sim.transcripts().clone());
        let mut speech = Speech { transcripts: transcripts.clone(), ..Speech::none() };
        let sandbox = config.mode == Mode::Sandbox;
        match choose_recognizer(settings, sandbox, transcripts).await {
            Chosen::Running(recognizer, engine, sim) => {
                tracing::info!(
                    recognizer = recognizer.name(),
                    url = engine.url.as_ref().map(Url::as_str),
                    "speech recognition"
                );
                speech.recognizer = Some(recognizer);
                speech.asr = Some(engine);
                speech.asr_sim = sim;
            }
            Chosen::Unavailable(engine) => {
                tracing::warn!(
                    backend = %engine.backend,
                    reason = engine.unavailable.as_deref().unwrap_or_default(),
                    "speech recognition unavailable: calls fall back to the keypad and the order desk"
                );
                speech.asr = Some(engine);
            }
            Chosen::Nothing(why) => tracing::info!(reason = why, "no speech recognition"),
        }
        match choose_synthesizer(settings).await {
            Chosen::Running(synthesizer, engine, _) => {
                tracing::info!(
                    synthesizer = synthesizer.name(),
                    url = engine.url.as_ref().map(Url::as_str),
                    "speech synthesis"
                );
                speech.synthesizer = Some(synthesizer);
                speech.tts = Some(engine);
            }
            Chosen::Unavailable(engine) => {
                tracing::warn!(
                    backend = %engine.backend,
                    reason = engine.unavailable.as_deref().unwrap_or_default(),
                    "speech synthesis unavailable: calls cannot hear spoken replies"
                );
                speech.tts = Some(engine);
            }
            Chosen::Nothing(why) => tracing::info!(reason = why, "no speech synthesis"),
        }
        speech
    }

    /// What `/health` shows: each engine's name, or why there is none.
    pub fn status(&self) -> SpeechStatus {
        let mut status = SpeechStatus::of(self.recognizer.as_deref(), self.synthesizer.as_deref());
        let unavailable = |engine: &Option<Engine>| {
            engine.as_ref().and_then(|e| e.unavailable.as_ref().map(|why| format!("{} unavailable: {why}", e.backend)))
        };
        if self.recognizer.is_none()
            && let Some(why) = unavailable(&self.asr)
        {
            status.recognizer = why;
        }
        if self.synthesizer.is_none()
            && let Some(why) = unavailable(&self.tts)
        {
            status.synthesizer = why;
        }
        status
    }
}

enum Chosen<T: ?Sized = dyn Recognizer> {
    Running(Arc<T>, Engine, Option<AsrSim>),
    Unavailable(Engine),
    /// None asked for, none found (not a fault).
    Nothing(&'static str),
}

fn engine(backend: &str, url: Option<&Url>, unavailable: Option<String>) -> Engine {
    Engine { backend: backend.to_string(), url: url.map(without_credentials), unavailable }
}

/// `url` without a user name or password, for logs and `/health`.
fn without_credentials(url: &Url) -> Url {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown
}

async fn choose_recognizer(settings: &SpeechSettings, sandbox: bool, transcripts: Option<TranscriptBook>) -> Chosen {
    match settings.asr_backend {
        AsrBackend::None => Chosen::Nothing("ASR_BACKEND=none"),
        AsrBackend::Http => http_recognizer(settings),
        AsrBackend::OpenAi => openai_recognizer(settings),
        AsrBackend::Whisper => whisper_recognizer(settings).await,
        AsrBackend::Auto if settings.asr_url.is_some() => http_recognizer(settings),
        AsrBackend::Auto if settings.openai_asr_url.is_some() => openai_recognizer(settings),
        AsrBackend::Auto => {
            if models_present(&whisper_config(settings)) {
                match whisper_recognizer(settings).await {
                    Chosen::Unavailable(engine) if sandbox => {
                        tracing::warn!(
                            reason = engine.unavailable.as_deref().unwrap_or_default(),
                            "the Whisper model is present but could not be used; the sandbox uses exact transcripts"
                        );
                    }
                    chosen => return chosen,
                }
            }
            if sandbox {
                simulated_recognizer(transcripts.unwrap_or_default(), settings.asr_timeout).await
            } else {
                Chosen::Nothing("ASR_BACKEND=auto: no ASR_URL, no OPENAI_ASR_URL, no Whisper model in MODELS_DIR")
            }
        }
    }
}

fn http_recognizer(settings: &SpeechSettings) -> Chosen {
    let Some(url) = &settings.asr_url else {
        return Chosen::Unavailable(engine(mangwale_speech::asr_http::NAME, None, Some("ASR_URL is not set".into())));
    };
    match HttpAsr::new(url.clone(), settings.asr_timeout) {
        Ok(asr) => Chosen::Running(Arc::new(asr), engine(mangwale_speech::asr_http::NAME, Some(url), None), None),
        Err(e) => Chosen::Unavailable(engine(mangwale_speech::asr_http::NAME, Some(url), Some(e.to_string()))),
    }
}

fn openai_recognizer(settings: &SpeechSettings) -> Chosen {
    let name = mangwale_speech::openai::NAME;
    let Some(url) = &settings.openai_asr_url else {
        return Chosen::Unavailable(engine(name, None, Some("OPENAI_ASR_URL is not set".into())));
    };
    let key = settings.openai_asr_api_key.as_ref().map(|k| k.expose().to_string());
    match OpenAiAsr::new(url.clone(), key, settings.openai_asr_model.clone(), settings.asr_timeout) {
        Ok(asr) => Chosen::Running(Arc::new(asr), engine(name, Some(url), None), None),
        Err(e) => Chosen::Unavailable(engine(name, Some(url), Some(e.to_string()))),
    }
}

fn whisper_config(settings: &SpeechSettings) -> WhisperConfig {
    WhisperConfig {
        models_dir: settings.models_dir.clone(),
        model: settings.whisper_model.clone(),
        threads: settings.whisper_threads,
        max_tokens: settings.whisper_max_tokens,
        ..WhisperConfig::new(&settings.models_dir)
    }
}

async fn whisper_recognizer(settings: &SpeechSettings) -> Chosen {
    let config = whisper_config(settings);
    let unavailable = |why: String| Chosen::Unavailable(engine("whisper", None, Some(why)));
    if !models_present(&config) {
        return unavailable(format!(
            "no model in {} (run `mangwale-exotel models fetch`)",
            config.model_dir().display()
        ));
    }
    // Loading reads and prepares hundreds of megabytes: off the runtime.
    let loaded = tokio::task::spawn_blocking(move || Whisper::load(&config)).await;
    match loaded {
        Ok(Ok(whisper)) => Chosen::Running(Arc::new(whisper), engine("whisper", None, None), None),
        Ok(Err(e)) => unavailable(e.to_string()),
        Err(e) => unavailable(format!("loading panicked: {e}")),
    }
}

/// The sandbox's recogniser: the production client of the user's ASR
/// server, against the in-process simulator answering from `book`.
async fn simulated_recognizer(book: TranscriptBook, timeout: std::time::Duration) -> Chosen {
    let name = mangwale_speech::asr_http::NAME;
    let sim = match AsrSim::start(book).await {
        Ok(sim) => sim,
        Err(e) => {
            return Chosen::Unavailable(engine(name, None, Some(format!("the ASR simulator could not start: {e}"))));
        }
    };
    let url = match Url::parse(&sim.url()) {
        Ok(url) => url,
        Err(e) => return Chosen::Unavailable(engine(name, None, Some(format!("the ASR simulator's URL: {e}")))),
    };
    match HttpAsr::new(url.clone(), timeout) {
        Ok(asr) => {
            let asr = asr.with_name(SIMULATED_ASR_NAME);
            Chosen::Running(Arc::new(asr), engine(SIMULATED_ASR_NAME, Some(&url), None), Some(sim))
        }
        Err(e) => Chosen::Unavailable(engine(name, Some(&url), Some(e.to_string()))),
    }
}

async fn choose_synthesizer(settings: &SpeechSettings) -> Chosen<dyn Synthesizer> {
    let espeak = Espeak { program: settings.espeak_program.clone(), ..Espeak::default() };
    match settings.tts_backend {
        TtsBackend::None => Chosen::Nothing("TTS_BACKEND=none"),
        TtsBackend::Http => http_synthesizer(settings),
        TtsBackend::Auto if settings.tts_url.is_some() => http_synthesizer(settings),
        TtsBackend::Espeak => match espeak.probe().await {
            Ok(_) => Chosen::Running(Arc::new(espeak), engine("espeak-ng", None, None), None),
            Err(e) => Chosen::Unavailable(engine("espeak-ng", None, Some(e.to_string()))),
        },
        TtsBackend::Auto => match espeak.probe().await {
            Ok(_) => Chosen::Running(Arc::new(espeak), engine("espeak-ng", None, None), None),
            Err(_) => Chosen::Nothing("TTS_BACKEND=auto: no TTS_URL, and espeak-ng does not run here"),
        },
    }
}

/// The user's TTS server (`TTS_URL`, `TTS_VOICE`, `TTS_TIMEOUT_MS`).
fn http_synthesizer(settings: &SpeechSettings) -> Chosen<dyn Synthesizer> {
    let name = "tts-http";
    let Some(url) = &settings.tts_url else {
        return Chosen::Unavailable(engine(name, None, Some("TTS_URL is not set".into())));
    };
    match TtsHttp::new(url.as_str(), settings.tts_voice.clone(), settings.tts_timeout) {
        Ok(tts) => Chosen::Running(Arc::new(tts), engine(name, Some(url), None), None),
        Err(e) => Chosen::Unavailable(engine(name, Some(url), Some(e.to_string()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mangwale_voice::speech::NONE_CONFIGURED;

    fn config(vars: &[(&str, &str)]) -> Config {
        Config::from_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string()))).expect("valid configuration")
    }

    #[tokio::test]
    async fn the_sandbox_hears_through_the_asr_simulator_without_whisper_models() {
        let models = tempfile::tempdir().unwrap();
        let dir = models.path().to_str().unwrap();
        let book = TranscriptBook::new();
        let exotel = mangwale_sim::exotel::SimConfig { transcripts: book.clone(), ..Default::default() };
        let exotel = ExotelSim::start(exotel).await.unwrap();
        let speech = Speech::start(&config(&[("MODELS_DIR", dir), ("TTS_BACKEND", "none")]), Some(&exotel)).await;
        assert_eq!(speech.status().recognizer, SIMULATED_ASR_NAME);
        assert_eq!(speech.status().synthesizer, NONE_CONFIGURED);
        let sim = speech.asr_sim.as_ref().expect("the simulator runs");
        // One book: what the Exotel simulator's callers register, the ASR hears.
        let samples: Vec<i16> = (0..8_000).map(|i| ((i * 7919) % 20_000 - 10_000) as i16).collect();
        assert!(exotel.transcripts().register(&samples, 8_000, "haan", "hi"));
        assert_eq!(sim.book().len(), 1);
        let audio = mangwale_voice::speech::Pcm16 {
            sample_rate: mangwale_voice::speech::SampleRate::Hz8000,
            samples: samples.clone(),
        };
        let heard = speech.recognizer.as_ref().unwrap().recognize(&audio, &Default::default()).await.unwrap();
        assert_eq!(heard.text, "haan");
    }

    #[tokio::test]
    async fn a_missing_engine_is_reported_never_fatal() {
        let models = tempfile::tempdir().unwrap();
        let dir = models.path().to_str().unwrap();
        let speech = Speech::start(
            &config(&[
                ("ASR_BACKEND", "whisper"),
                ("MODELS_DIR", dir),
                ("TTS_BACKEND", "espeak"),
                ("ESPEAK_PROGRAM", "/nonexistent/espeak-ng"),
            ]),
            None,
        )
        .await;
        assert!(speech.recognizer.is_none() && speech.synthesizer.is_none());
        let status = speech.status();
        assert!(status.recognizer.starts_with("whisper unavailable: no model in"), "{status}");
        assert!(status.synthesizer.starts_with("espeak-ng unavailable"), "{status}");
        // Nothing asked for: none, and not a fault.
        let none = Speech::start(&config(&[("ASR_BACKEND", "none"), ("TTS_BACKEND", "none")]), None).await;
        assert_eq!(none.status(), SpeechStatus::none());
        assert!(none.asr.is_none() && none.tts.is_none());
    }

    #[tokio::test]
    async fn configured_servers_win_in_auto_and_urls_lose_their_credentials() {
        let speech = Speech::start(
            &config(&[
                ("ASR_URL", "http://user:secret@mercury.internal:7001"),
                ("OPENAI_ASR_URL", "http://vllm.internal:8000/v1"),
                ("TTS_BACKEND", "none"),
            ]),
            None,
        )
        .await;
        assert_eq!(speech.status().recognizer, "asr-http");
        let asr = speech.asr.as_ref().unwrap();
        assert_eq!(asr.url.as_ref().unwrap().as_str(), "http://mercury.internal:7001/");
        assert!(speech.asr_sim.is_none());
        let openai = Speech::start(
            &config(&[("OPENAI_ASR_URL", "http://vllm.internal:8000/v1"), ("TTS_BACKEND", "none")]),
            None,
        )
        .await;
        assert_eq!(openai.status().recognizer, "openai-asr");
    }
}
