//! The work a stream session asks for, run against the service: the
//! greeting (the durable voice session of `crate::voice::session`, the same
//! one the text routes use), a turn of speech (recognition with the store's
//! words as hints, the dialog turn, synthesis), keys and silence. Each turn
//! goes on the call's timeline with its transcript and timings, or why it
//! failed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use mangwale_core::E164;
use mangwale_store::{NewEvent, VoiceChannel, VoiceSessionStatus, VoiceSessionUpdate};
use mangwale_voice::Lang;
use mangwale_voice::dialog::prompts;
use mangwale_voice::dialog::{Dialog, DialogEvent, Expects, HandoffReason, Input, Mode, StoreOffer};
use mangwale_voice::speech::{Pcm16, RecognitionHints, SampleRate, SpeechError, Synthesizer};
use serde_json::{Value, json};

use super::machine::{FixedAudio, Job, JobKind, JobResult};
use crate::state::AppState;
use crate::voice::session::{self, NewSession, TurnAnswer};

/// Who is on the stream, from its `start`.
#[derive(Debug, Clone)]
pub struct CallInfo {
    pub call_sid: String,
    pub stream_sid: String,
    pub phone: Option<E164>,
    /// A store given by the applet's URL (`store=<id>`).
    pub store: Option<String>,
    /// A language given by the applet's URL (`language=hi|mr|en|hi-en`).
    pub language: Option<Lang>,
}

/// Where the dialog stands, for the recogniser's hints.
#[derive(Debug, Clone)]
struct Context {
    language: Lang,
    store_id: Option<String>,
}

/// One stream's jobs: shared by the tasks that run them.
pub struct Runner {
    state: AppState,
    call: CallInfo,
    context: Mutex<Context>,
}

/// What a job measured, for the timeline and the bench.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measured {
    pub transcript: Option<String>,
    pub asr_ms: Option<u64>,
    pub dialog_ms: Option<u64>,
    pub tts_ms: Option<u64>,
}

/// Fixed prompts already synthesised, per synthesiser, language and text:
/// the filler and the trouble sentence are ready before they are needed.
#[derive(Default)]
pub struct PromptAudio {
    cache: Mutex<HashMap<PromptKey, Arc<Vec<i16>>>>,
}

/// The synthesiser's name, the language, the text.
type PromptKey = (String, Lang, String);

impl PromptAudio {
    async fn get(&self, synth: &dyn Synthesizer, lang: Lang, text: String) -> Result<Arc<Vec<i16>>, SpeechError> {
        let key = (synth.name().to_string(), lang, text);
        if let Some(audio) = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(audio.clone());
        }
        let audio = Arc::new(synth.synthesize(&key.2, lang, SampleRate::Hz8000).await?.samples);
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).insert(key, audio.clone());
        Ok(audio)
    }
}

/// The prompt audio of the process.
pub fn prompt_audio() -> &'static PromptAudio {
    static AUDIO: std::sync::OnceLock<PromptAudio> = std::sync::OnceLock::new();
    AUDIO.get_or_init(PromptAudio::default)
}

fn ms(since: Instant) -> u64 {
    since.elapsed().as_millis() as u64
}

impl Runner {
    pub fn new(state: AppState, call: CallInfo) -> Runner {
        let context = Context { language: call.language.unwrap_or(Lang::Hi), store_id: call.store.clone() };
        Runner { state, call, context: Mutex::new(context) }
    }

    fn context(&self) -> Context {
        self.context.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn follow(&self, answer: &TurnAnswer) {
        let mut context = self.context.lock().unwrap_or_else(|p| p.into_inner());
        context.language = answer.language;
        if let Some(store) = &answer.cart.store_id {
            context.store_id = Some(store.clone());
        }
    }

    /// Runs a job; the result for the machine, and what was measured.
    pub async fn run(&self, job: &Job) -> (JobResult, Measured) {
        let mut measured = Measured::default();
        let result = match &job.kind {
            JobKind::Start => self.start(&mut measured).await,
            JobKind::Speech(utterance) => {
                let audio = Pcm16 { sample_rate: SampleRate::Hz8000, samples: utterance.samples.clone() };
                self.speech(audio, &mut measured).await
            }
            JobKind::Keys(keys) => self.turn(Input::Dtmf(keys.clone()), &mut measured).await,
            JobKind::Silence => self.turn(Input::Silence, &mut measured).await,
        };
        let result = result.unwrap_or_else(|why| JobResult::Failed { why, fixed: None });
        (result, measured)
    }

    async fn start(&self, measured: &mut Measured) -> Result<JobResult, String> {
        let Some(synth) = self.state.speech.synthesizer.clone() else {
            return Err("no speech synthesiser is configured".into());
        };
        let started = Instant::now();
        let answer = match self.state.store.voice_session(&self.call.call_sid).await.map_err(|e| e.to_string())? {
            // A stream that starts again (Exotel retried, the socket dropped):
            // the agent says again what it said last.
            Some(stored) => {
                let answer: TurnAnswer = stored
                    .last_reply
                    .as_deref()
                    .and_then(|r| serde_json::from_str(r).ok())
                    .ok_or_else(|| "the voice session has no reply to resume from".to_string())?;
                answer
            }
            None => {
                let store = match &self.call.store {
                    Some(id) => Some(store_offer(&self.state, id).await?),
                    None => None,
                };
                let new = NewSession {
                    session_id: self.call.call_sid.clone(),
                    channel: VoiceChannel::Call,
                    phone: self.call.phone.clone(),
                    mode: Mode::Call,
                    store,
                    language: self.call.language,
                };
                match session::start(&self.state, new, None).await.map_err(|e| e.to_string())? {
                    Some(answered) => answered.answer,
                    None => return Err("the voice session was started elsewhere at the same time".into()),
                }
            }
        };
        measured.dialog_ms = Some(ms(started));
        self.follow(&answer);
        let lang = answer.language;
        let synth_started = Instant::now();
        let audio = prompt_audio();
        let fixed = FixedAudio {
            filler: audio.get(synth.as_ref(), lang, prompts::one_moment(lang)).await.ok().map(|a| a.to_vec()),
            trouble: audio.get(synth.as_ref(), lang, prompts::system_down(lang)).await.ok().map(|a| a.to_vec()),
        };
        if self.state.speech.recognizer.is_none() && !answer.ended {
            // Nothing can hear the caller: say so, and the order desk.
            let text = prompts::no_speech_recognition(lang);
            let audio = synth.synthesize(&text, lang, SampleRate::Hz8000).await.map_err(|e| e.to_string())?;
            measured.tts_ms = Some(ms(synth_started));
            self.hand_off("no speech recogniser is configured").await;
            return Ok(JobResult::Reply { audio: audio.samples, ended: true, handed_off: true, fixed: Some(fixed) });
        }
        let spoken = self.say(synth.as_ref(), &answer.agent, lang).await;
        measured.tts_ms = Some(ms(synth_started));
        match spoken {
            Ok(audio) => Ok(JobResult::Reply {
                audio,
                ended: answer.ended,
                handed_off: answer.handoff.is_some(),
                fixed: Some(fixed),
            }),
            Err(e) => Err(format!("synthesising the greeting: {e}")),
        }
    }

    async fn say(&self, synth: &dyn Synthesizer, text: &str, lang: Lang) -> Result<Vec<i16>, SpeechError> {
        if text.trim().is_empty() {
            return Ok(Vec::new());
        }
        Ok(synth.synthesize(text, lang, SampleRate::Hz8000).await?.samples)
    }

    async fn hints(&self) -> RecognitionHints {
        let context = self.context();
        crate::voice::recognition_hints(
            &self.state,
            &self.call.call_sid,
            Some(context.language),
            context.store_id.as_deref(),
        )
        .await
    }

    async fn speech(&self, audio: Pcm16, measured: &mut Measured) -> Result<JobResult, String> {
        let Some(recognizer) = self.state.speech.recognizer.clone() else {
            return Err("no speech recogniser is configured".into());
        };
        let hints = self.hints().await;
        let started = Instant::now();
        let transcript = recognizer.recognize(&audio, &hints).await;
        measured.asr_ms = Some(ms(started));
        let transcript = transcript.map_err(|e| format!("recognition failed ({}): {e}", recognizer.name()))?;
        measured.transcript = Some(transcript.text.clone());
        self.turn(Input::Say(transcript.text), measured).await
    }

    async fn turn(&self, input: Input, measured: &mut Measured) -> Result<JobResult, String> {
        let Some(synth) = self.state.speech.synthesizer.clone() else {
            return Err("no speech synthesiser is configured".into());
        };
        let started = Instant::now();
        let answered = session::turn(&self.state, &self.call.call_sid, input, None).await;
        measured.dialog_ms = Some(ms(started));
        let answer = answered.map_err(|e| format!("the dialog turn failed: {e}"))?.answer;
        self.follow(&answer);
        let started = Instant::now();
        let audio = self.say(synth.as_ref(), &answer.agent, answer.language).await;
        measured.tts_ms = Some(ms(started));
        let audio = audio.map_err(|e| format!("synthesis failed ({}): {e}", synth.name()))?;
        Ok(JobResult::Reply { audio, ended: answer.ended, handed_off: answer.handoff.is_some(), fixed: None })
    }

    /// The caller hung up: the dialog hears it, so that an unplaced cart
    /// stays offered to their next call.
    pub async fn hang_up(&self) {
        match self.state.store.voice_session(&self.call.call_sid).await {
            Ok(Some(stored)) if stored.status == VoiceSessionStatus::Active => {
                if let Err(e) = session::turn(&self.state, &self.call.call_sid, Input::Hangup, None).await {
                    tracing::warn!(call_sid = %self.call.call_sid, error = %e, "the dialog did not hear the hang-up");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(call_sid = %self.call.call_sid, error = %e, "reading the voice session failed"),
        }
    }

    /// The bot gives the call to the order desk without the dialog having
    /// done so (a backend failed): the session says so, for the flow's
    /// Passthru after the stream, and the timeline says why.
    pub async fn hand_off(&self, why: &str) {
        let call_sid = &self.call.call_sid;
        for _ in 0..3 {
            let stored = match self.state.store.voice_session(call_sid).await {
                Ok(Some(stored)) => stored,
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(call_sid, error = %e, "marking the voice session handed off failed");
                    break;
                }
            };
            if stored.status != VoiceSessionStatus::Active {
                break;
            }
            let Ok(mut dialog) = serde_json::from_str::<Dialog>(&stored.dialog) else { break };
            dialog.ended = true;
            dialog.expects = Expects::Nothing;
            let Ok(text) = serde_json::to_string(&dialog) else { break };
            let update = VoiceSessionUpdate {
                dialog: text,
                status: VoiceSessionStatus::HandedOff,
                resumable: dialog.is_resumable(),
                last_turn: stored.last_turn.clone(),
                last_reply: stored.last_reply.clone(),
                at: self.state.clock.now(),
            };
            match self.state.store.save_voice_session(call_sid, stored.version, &update).await {
                Ok(Some(_)) => break,
                Ok(None) => continue,
                Err(e) => {
                    tracing::error!(call_sid, error = %e, "marking the voice session handed off failed");
                    break;
                }
            }
        }
        let reason = HandoffReason::Unavailable;
        let detail = serde_json::to_value(DialogEvent::HandedOff { reason }).unwrap_or(Value::Null);
        self.record("voice.handed_off", detail).await;
        self.record("voicebot.fallback", json!({"why": why, "to": "order_desk"})).await;
    }

    /// An entry on the call's timeline (failures to write are logged: the
    /// call goes on).
    pub async fn record(&self, kind: &str, detail: Value) {
        let event =
            NewEvent::new(kind, self.state.clock.now()).call(&self.call.call_sid).channel("voicebot").detail(detail);
        if let Err(e) = self.state.store.record_event(event).await {
            tracing::error!(call_sid = %self.call.call_sid, kind, error = %e, "recording a voicebot event failed");
        }
    }
}

/// The store the applet's URL names, from Jupiter.
async fn store_offer(state: &AppState, id: &str) -> Result<StoreOffer, String> {
    let number: u64 = id.parse().map_err(|_| format!("store={id:?} is not a store id"))?;
    match state.jupiter.client.store_catalog(number).await {
        Ok(Some(catalog)) => Ok(StoreOffer {
            id: catalog.store.id.to_string(),
            name: catalog.store.name.clone(),
            aliases: Vec::new(),
            distance_km: None,
            open: catalog.store.active,
        }),
        Ok(None) => Err(format!("Jupiter has no store {number}")),
        Err(e) => Err(format!("Jupiter: {}", e.message())),
    }
}
