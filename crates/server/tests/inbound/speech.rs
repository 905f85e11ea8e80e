//! The speech engines the service chooses from its configuration, and what
//! `/health` says of them: the sandbox's exact-transcript recogniser, a
//! configured ASR server going down and coming back, none configured.

use mangwale_server::speech::SIMULATED_ASR_NAME;
use mangwale_sim::speech::tts::{TtsFault, TtsSim};
use mangwale_sim::speech::{AsrSim, OpenAiAsrSim, OpenAiAsrSimConfig, SpeechFault, TranscriptBook, voice_like_noise};
use mangwale_voice::speech::{Pcm16, RecognitionHints, SampleRate};

use crate::common::TestApp;

#[tokio::test]
async fn the_sandbox_recognises_through_the_asr_simulator_with_the_exotel_simulators_book() {
    let models = tempfile::tempdir().unwrap();
    let app = TestApp::start(&[("MODELS_DIR", models.path().to_str().unwrap())]).await;
    let (_, health) = app.get("/health", None).await;
    assert_eq!(health["speech"]["recognizer"], SIMULATED_ASR_NAME, "{health}");
    let asr = &health["connections"]["asr"];
    assert_eq!(
        (asr["connected"].as_bool(), asr["backend"].as_str()),
        (Some(true), Some(SIMULATED_ASR_NAME)),
        "{health}"
    );
    assert!(asr["latency_ms"].is_u64() && asr["url"].as_str().unwrap().starts_with("http://127.0.0.1:"));
    // espeak-ng is installed wherever the tests run (.ci/run installs it).
    assert_eq!(health["speech"]["synthesizer"], "espeak-ng", "{health}");
    assert_eq!(health["connections"]["tts"]["connected"], true, "{health}");
    assert_eq!(health["status"], "ok", "{health}");
    // What a simulated caller registers in the Exotel simulator's book is
    // what the service's recogniser hears.
    let book = app.state.exotel.sim.as_ref().unwrap().transcripts().clone();
    let samples = voice_like_noise(1, 8_000);
    assert!(book.register(&samples, 8_000, "do misal pav", "hi-en"));
    let recognizer = app.state.speech.recognizer.clone().unwrap();
    let audio = Pcm16 { sample_rate: SampleRate::Hz8000, samples };
    let heard = recognizer.recognize(&audio, &RecognitionHints::default()).await.unwrap();
    assert_eq!(heard.text, "do misal pav");
    app.stop().await;
}

#[tokio::test]
async fn an_asr_server_that_goes_down_degrades_health_naming_it() {
    let sim = AsrSim::start(TranscriptBook::new()).await.unwrap();
    let app = TestApp::start(&[("ASR_URL", &sim.url()), ("ASR_TIMEOUT_MS", "500"), ("TTS_BACKEND", "none")]).await;
    let (_, health) = app.get("/health", None).await;
    assert_eq!(health["speech"]["recognizer"], "asr-http");
    assert_eq!(health["connections"]["asr"]["connected"], true, "{health}");
    assert_eq!(health["status"], "ok", "{health}");
    assert!(app.state.speech.asr_sim.is_none(), "a configured server is used, not the simulator");
    for fault in [SpeechFault::Status { status: 503 }, SpeechFault::Down, SpeechFault::Slow { ms: 10_000 }] {
        sim.set_fault(Some(fault.clone()));
        app.state.health.probe_once().await;
        let (_, health) = app.get("/health", None).await;
        let asr = &health["connections"]["asr"];
        assert_eq!(health["status"], "degraded", "{fault:?}: {health}");
        assert_eq!((asr["connected"].as_bool(), asr["backend"].as_str()), (Some(false), Some("asr-http")), "{health}");
        assert!(asr["error"].is_string(), "{health}");
    }
    sim.set_fault(None);
    app.state.health.probe_once().await;
    let (_, health) = app.get("/health", None).await;
    assert_eq!(health["status"], "ok", "{health}");
    app.stop().await;
}

#[tokio::test]
async fn a_refused_openai_key_or_a_missing_model_is_degraded_and_no_engine_is_not() {
    let sim =
        OpenAiAsrSim::start(OpenAiAsrSimConfig { api_key: Some("sk-right-key-0001".into()), ..Default::default() })
            .await
            .unwrap();
    let app = TestApp::start(&[
        ("OPENAI_ASR_URL", &sim.url()),
        ("OPENAI_ASR_API_KEY", "sk-wrong-key-0002"),
        ("TTS_BACKEND", "none"),
    ])
    .await;
    let (_, health) = app.get("/health", None).await;
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["connections"]["asr"]["backend"], "openai-asr");
    assert!(!health.to_string().contains("sk-wrong-key"), "{health}");
    app.stop().await;

    // Whisper asked for without its model: the service starts, degraded.
    let models = tempfile::tempdir().unwrap();
    let app = TestApp::start(&[
        ("ASR_BACKEND", "whisper"),
        ("MODELS_DIR", models.path().to_str().unwrap()),
        ("TTS_BACKEND", "none"),
    ])
    .await;
    let (_, health) = app.get("/health", None).await;
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["connections"]["asr"]["backend"], "whisper");
    assert!(health["speech"]["recognizer"].as_str().unwrap().starts_with("whisper unavailable"), "{health}");
    app.stop().await;

    // None asked for: reported, not degraded.
    let app = TestApp::start(&[("ASR_BACKEND", "none"), ("TTS_BACKEND", "none")]).await;
    let (_, health) = app.get("/health", None).await;
    assert_eq!(
        health["speech"],
        serde_json::json!({"recognizer": "none configured", "synthesizer": "none configured"})
    );
    assert!(health["connections"].get("asr").is_none() && health["connections"].get("tts").is_none());
    assert_eq!(health["status"], "ok", "{health}");
    app.stop().await;
}

#[tokio::test]
async fn a_tts_server_that_fails_degrades_health_naming_it() {
    let tts = TtsSim::start().await.unwrap();
    let app = TestApp::start(&[("ASR_BACKEND", "none"), ("TTS_URL", &tts.url()), ("TTS_TIMEOUT_MS", "500")]).await;
    let (_, health) = app.get("/health", None).await;
    assert_eq!(health["speech"]["synthesizer"], "tts-http", "{health}");
    assert_eq!(health["connections"]["tts"]["connected"], true, "{health}");
    assert_eq!(health["status"], "ok", "{health}");
    tts.set_fault(Some(TtsFault::Status { status: 503 }));
    app.state.health.probe_once().await;
    let (_, health) = app.get("/health", None).await;
    assert_eq!(health["status"], "degraded", "{health}");
    let probe = &health["connections"]["tts"];
    assert_eq!((probe["connected"].as_bool(), probe["backend"].as_str()), (Some(false), Some("tts-http")), "{health}");
    app.stop().await;
}
