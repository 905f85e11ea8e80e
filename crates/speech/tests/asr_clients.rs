//! The production ASR clients against the simulators over real HTTP: what
//! they send, what they make of each answer, and how each failure of the
//! server becomes a `SpeechError` the call can fall back on.

use std::time::Duration;

use mangwale_sim::speech::{AsrSim, OpenAiAsrSim, OpenAiAsrSimConfig, SpeechFault, TranscriptBook, voice_like_noise};
use mangwale_speech::asr_http::HttpAsr;
use mangwale_speech::openai::OpenAiAsr;
use mangwale_voice::catalog::Lang;
use mangwale_voice::speech::{Pcm16, RecognitionHints, Recognizer, SampleRate, SpeechError};
use reqwest::Url;

const KEY: &str = "sk-test-0123456789";

/// Whether an error is the one a fault should cause.
type Expected = fn(&SpeechError) -> bool;

/// An utterance registered in `book`, cut as a bot's VAD would cut it.
fn spoken(book: &TranscriptBook, seed: u32, text: &str, language: &str) -> Pcm16 {
    let samples = voice_like_noise(seed, 8_000);
    assert!(book.register(&samples, 8_000, text, language));
    let mut cut = vec![0i16; 800];
    cut.extend_from_slice(&samples[200..7_800]);
    cut.extend(vec![0i16; 800]);
    Pcm16 { sample_rate: SampleRate::Hz8000, samples: cut }
}

fn hints(language: Lang) -> RecognitionHints {
    RecognitionHints {
        language: Some(language),
        phrases: vec!["Misal Pav".into(), "Cutting Chai".into(), "do".into(), "ek".into()],
    }
}

fn http_asr(url: &str, timeout_ms: u64) -> HttpAsr {
    HttpAsr::new(Url::parse(url).unwrap(), Duration::from_millis(timeout_ms)).unwrap()
}

fn openai_asr(sim: &OpenAiAsrSim, key: &str, model: &str, timeout_ms: u64) -> OpenAiAsr {
    OpenAiAsr::new(Url::parse(&sim.url()).unwrap(), Some(key.into()), model.into(), Duration::from_millis(timeout_ms))
        .unwrap()
}

#[tokio::test]
async fn the_users_asr_server_is_called_as_the_incumbent_calls_it() {
    let sim = AsrSim::start(TranscriptBook::new()).await.unwrap();
    let audio = spoken(sim.book(), 1, "do misal pav aur ek cutting chai", "hi-en");
    let asr = http_asr(&sim.url(), 2_000);
    let heard = asr.recognize(&audio, &hints(Lang::HiEn)).await.unwrap();
    assert_eq!(heard.text, "do misal pav aur ek cutting chai");
    assert_eq!(heard.language, Lang::HiEn);
    let sent = &sim.requests()[0];
    assert_eq!(sent.content_type.as_deref(), Some("audio/raw"));
    assert_eq!(sent.language.as_deref(), Some("hi-IN"));
    assert_eq!(sent.sample_rate.as_deref(), Some("8000"));
    assert_eq!(sent.bytes, audio.samples.len() * 2);
    // Silence and unknown speech: an empty transcript, not an error.
    let silence = Pcm16 { sample_rate: SampleRate::Hz8000, samples: vec![0; 4_000] };
    let nothing = asr.recognize(&silence, &hints(Lang::Mr)).await.unwrap();
    assert_eq!((nothing.text.as_str(), nothing.language), ("", Lang::Mr));
    assert_eq!(sim.requests()[1].language.as_deref(), Some("mr-IN"));
    asr.check().await.unwrap();
    assert_eq!(asr.name(), "asr-http");
}

#[tokio::test]
async fn each_failure_of_the_users_asr_server_is_a_speech_error() {
    let sim = AsrSim::start(TranscriptBook::new()).await.unwrap();
    let audio = spoken(sim.book(), 2, "haan", "hi");
    let asr = http_asr(&sim.url(), 300);
    let cases: [(SpeechFault, Expected); 5] = [
        (SpeechFault::Down, |e| matches!(e, SpeechError::Unavailable(_))),
        (SpeechFault::Status { status: 503 }, |e| matches!(e, SpeechError::Unavailable(m) if m.contains("503"))),
        (SpeechFault::Status { status: 400 }, |e| matches!(e, SpeechError::Unsupported(m) if m.contains("400"))),
        (SpeechFault::Slow { ms: 5_000 }, |e| matches!(e, SpeechError::Timeout { after_ms: 300 })),
        (SpeechFault::Garbage, |e| matches!(e, SpeechError::BadResponse(_))),
    ];
    for (fault, expected) in cases {
        sim.set_fault(Some(fault.clone()));
        let e = asr.recognize(&audio, &hints(Lang::Hi)).await.unwrap_err();
        assert!(expected(&e), "{fault:?}: {e:?}");
    }
    sim.set_fault(Some(SpeechFault::Status { status: 503 }));
    assert!(matches!(asr.check().await, Err(SpeechError::Unavailable(_))));
    sim.set_fault(None);
    assert_eq!(asr.recognize(&audio, &hints(Lang::Hi)).await.unwrap().text, "haan");
    asr.check().await.unwrap();
    // Nothing listening at all.
    let url = sim.url();
    drop(sim);
    let e = http_asr(&url, 300).recognize(&audio, &hints(Lang::Hi)).await.unwrap_err();
    assert!(e.retryable(), "{e:?}");
}

#[tokio::test]
async fn the_asr_simulator_refuses_what_the_server_refuses() {
    let sim = AsrSim::start(TranscriptBook::new()).await.unwrap();
    let http = reqwest::Client::new();
    let post = |content_type: &'static str, headers: &'static [(&'static str, &'static str)], body: Vec<u8>| {
        let mut request =
            http.post(format!("{}/transcribe", sim.url())).header("Content-Type", content_type).body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send()
    };
    let full: &[(&str, &str)] = &[("X-Language", "hi-IN"), ("X-Sample-Rate", "8000")];
    let answer = post("application/octet-stream", full, vec![0; 320]).await.unwrap();
    assert_eq!(answer.status(), 415);
    assert_eq!(post("audio/raw", full, vec![0; 321]).await.unwrap().status(), 400);
    assert_eq!(post("audio/raw", full, vec![]).await.unwrap().status(), 400);
    let missing = post("audio/raw", &[("X-Language", "hi-IN")], vec![0; 320]).await.unwrap();
    assert_eq!(missing.status(), 422);
    let body: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(body["detail"][0]["loc"], serde_json::json!(["header", "x-sample-rate"]));
    let odd_rate = post("audio/raw", &[("X-Language", "hi-IN"), ("X-Sample-Rate", "44100")], vec![0; 320]).await;
    assert_eq!(odd_rate.unwrap().status(), 422);
    let tamil = post("audio/raw", &[("X-Language", "ta-IN"), ("X-Sample-Rate", "8000")], vec![0; 320]).await;
    assert_eq!(tamil.unwrap().status(), 422);
    let fine: serde_json::Value = post("audio/raw", full, vec![0; 320]).await.unwrap().json().await.unwrap();
    assert_eq!((fine["text"].as_str(), fine["isFinal"].as_bool()), (Some(""), Some(true)));
    // The fault control API.
    let set = http.post(format!("{}/_sim/fault", sim.url())).body(r#"{"kind": "status", "status": 503}"#).send();
    assert_eq!(set.await.unwrap().status(), 200);
    assert_eq!(post("audio/raw", full, vec![0; 320]).await.unwrap().status(), 503);
    assert_eq!(http.delete(format!("{}/_sim/fault", sim.url())).send().await.unwrap().status(), 200);
    assert_eq!(post("audio/raw", full, vec![0; 320]).await.unwrap().status(), 200);
}

#[tokio::test]
async fn the_openai_endpoint_gets_a_named_wav_iso_language_and_a_capped_prompt() {
    let config = OpenAiAsrSimConfig { api_key: Some(KEY.into()), ..OpenAiAsrSimConfig::default() };
    let sim = OpenAiAsrSim::start(config).await.unwrap();
    let audio = spoken(sim.book(), 3, "दोन मिसळ पाव", "mr");
    let asr = openai_asr(&sim, KEY, "whisper-1", 2_000);
    let mut many = hints(Lang::Mr);
    many.phrases.extend((0..400).map(|i| format!("आयटम {i}")));
    let heard = asr.recognize(&audio, &many).await.unwrap();
    assert_eq!((heard.text.as_str(), heard.language), ("दोन मिसळ पाव", Lang::Mr));
    let sent = &sim.requests()[0];
    assert_eq!(sent.authorization.as_deref(), Some(format!("Bearer {KEY}").as_str()));
    assert_eq!((sent.file_name.as_deref(), sent.file_type.as_deref()), (Some("audio.wav"), Some("audio/wav")));
    assert_eq!(sent.file_bytes, 44 + audio.samples.len() * 2);
    let field = |name: &str| sent.fields.get(name).map(String::as_str);
    assert_eq!(field("model"), Some("whisper-1"));
    assert_eq!(field("language"), Some("mr"));
    assert_eq!(field("response_format"), Some("json"));
    assert_eq!(field("temperature"), Some("0"));
    let prompt = field("prompt").unwrap();
    assert!(prompt.starts_with("Misal Pav, Cutting Chai, do, ek, आयटम 0"), "{prompt}");
    assert!(mangwale_speech::openai::estimated_tokens(prompt) <= mangwale_speech::openai::MAX_PROMPT_TOKENS);
    // Hinglish goes as Hindi; without a hint there is no language field.
    asr.recognize(&audio, &hints(Lang::HiEn)).await.unwrap();
    assert_eq!(sim.requests()[1].fields.get("language").map(String::as_str), Some("hi"));
    asr.recognize(&audio, &RecognitionHints::default()).await.unwrap();
    assert!(!sim.requests()[2].fields.contains_key("language") && !sim.requests()[2].fields.contains_key("prompt"));
    asr.check().await.unwrap();
}

#[tokio::test]
async fn openai_refusals_and_faults_are_speech_errors() {
    let config = OpenAiAsrSimConfig { api_key: Some(KEY.into()), ..OpenAiAsrSimConfig::default() };
    let sim = OpenAiAsrSim::start(config).await.unwrap();
    let audio = spoken(sim.book(), 4, "haan", "hi");
    let wrong_key = openai_asr(&sim, "sk-wrong-key-000", "whisper-1", 2_000);
    let e = wrong_key.recognize(&audio, &hints(Lang::Hi)).await.unwrap_err();
    assert!(matches!(&e, SpeechError::Unsupported(m) if m.contains("401") && !m.contains("sk-wrong-key")), "{e:?}");
    assert!(wrong_key.check().await.is_err());
    let unknown_model = openai_asr(&sim, KEY, "whisper-9", 2_000);
    assert!(matches!(unknown_model.check().await, Err(SpeechError::Unsupported(m)) if m.contains("404")));
    let asr = openai_asr(&sim, KEY, "whisper-1", 300);
    for (fault, retryable) in [
        (SpeechFault::Down, true),
        (SpeechFault::Status { status: 500 }, true),
        (SpeechFault::Slow { ms: 5_000 }, true),
        (SpeechFault::Garbage, false),
    ] {
        sim.set_fault(Some(fault.clone()));
        let e = asr.recognize(&audio, &hints(Lang::Hi)).await.unwrap_err();
        assert_eq!(e.retryable(), retryable, "{fault:?}: {e:?}");
    }
    sim.set_fault(None);
    assert_eq!(asr.recognize(&audio, &hints(Lang::Hi)).await.unwrap().text, "haan");
}

#[tokio::test]
async fn the_openai_simulator_checks_the_form_as_openai_does() {
    let sim = OpenAiAsrSim::start(OpenAiAsrSimConfig::default()).await.unwrap();
    let http = reqwest::Client::new();
    let url = format!("{}/audio/transcriptions", sim.url());
    let wav = mangwale_speech::audio::write_wav(&[0; 800], 8_000);
    let send = |form: reqwest::multipart::Form| http.post(&url).multipart(form).send();
    let file = |name: &'static str, bytes: Vec<u8>| reqwest::multipart::Part::bytes(bytes).file_name(name);
    let message = |r: reqwest::Response| async move {
        let status = r.status().as_u16();
        let body: serde_json::Value = r.json().await.unwrap();
        (status, body["error"]["message"].as_str().unwrap_or_default().to_string())
    };
    let json = http.post(&url).json(&serde_json::json!({"model": "whisper-1"})).send().await.unwrap();
    assert_eq!(message(json).await.0, 400);
    let (status, m) = message(send(reqwest::multipart::Form::new().text("model", "whisper-1")).await.unwrap()).await;
    assert_eq!(status, 400);
    assert!(m.contains("body -> file"), "{m}");
    let (status, m) =
        message(send(reqwest::multipart::Form::new().part("file", file("a.wav", wav.clone()))).await.unwrap()).await;
    assert_eq!((status, m.as_str()), (400, "you must provide a model parameter"));
    let no_extension =
        reqwest::multipart::Form::new().part("file", file("audio", wav.clone())).text("model", "whisper-1");
    let (status, m) = message(send(no_extension).await.unwrap()).await;
    assert!(status == 400 && m.starts_with("Invalid file format"), "{m}");
    let region = reqwest::multipart::Form::new()
        .part("file", file("a.wav", wav.clone()))
        .text("model", "whisper-1")
        .text("language", "hi-IN");
    let (status, m) = message(send(region).await.unwrap()).await;
    assert!(status == 400 && m.contains("ISO-639-1"), "{m}");
    let corrupt = reqwest::multipart::Form::new().part("file", file("a.wav", vec![1; 100])).text("model", "whisper-1");
    assert_eq!(message(send(corrupt).await.unwrap()).await.0, 400);
    let text = reqwest::multipart::Form::new()
        .part("file", file("a.wav", wav))
        .text("model", "whisper-1")
        .text("response_format", "text");
    let answer = send(text).await.unwrap();
    assert_eq!((answer.status().as_u16(), answer.text().await.unwrap()), (200, String::new()));
}
