//! The simulator's mutable state and its event queue.

use std::collections::{BTreeMap, HashMap, VecDeque};

use chrono::{DateTime, Utc};

use super::calls::Call;
use super::faults::{FaultRule, RateWindow};
use super::log::{CallbackKind, ReceivedRequest, SentCallback};
use super::payload::Payload;
use super::script::{CalleeScript, FlowCall};
use super::sms::SmsMessage;
use crate::ids::IdGen;

/// Something that happens at a scheduled time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// The dialled leg answers, stays unanswered, is busy or fails.
    LegOutcome { sid: String, leg: usize, outcome: LegOutcome },
    /// The person on an answered leg hangs up.
    LegHangUp { sid: String, leg: usize },
    /// `TimeLimit` ran out.
    TimeLimit { sid: String },
    /// A flow runner's `Wait` ran out.
    FlowResume { sid: String },
    /// An incoming call's flow starts.
    FlowStart { sid: String },
    /// An SMS moves on (delivery decision, or the promotional window opened).
    SmsProgress { sid: String },
}

impl Event {
    fn sid(&self) -> &str {
        match self {
            Event::LegOutcome { sid, .. }
            | Event::LegHangUp { sid, .. }
            | Event::TimeLimit { sid }
            | Event::FlowResume { sid }
            | Event::FlowStart { sid }
            | Event::SmsProgress { sid } => sid,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LegOutcome {
    Answer,
    NoAnswer,
    Busy,
    Failed,
}

/// How a callback body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    Json,
    Multipart,
    UrlEncoded,
}

/// A callback to deliver.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    pub kind: CallbackKind,
    pub sid: String,
    pub url: String,
    pub encoding: Encoding,
    pub payload: Payload,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlowHook {
    Start,
    Resume,
    Ended,
}

/// Work that must happen outside the state lock.
#[derive(Debug)]
pub(crate) enum Action {
    Deliver(Outgoing),
    Flow(FlowHook, Box<FlowCall>),
}

#[derive(Debug)]
pub(crate) struct State {
    pub ids: IdGen,
    pub boundaries: u64,
    pub calls: Vec<Call>,
    pub sms: Vec<SmsMessage>,
    pub scripts: HashMap<String, CalleeScript>,
    pub default_script: CalleeScript,
    pub faults: Vec<FaultRule>,
    pub voice_rate: RateWindow,
    pub sms_rate: RateWindow,
    queue: BTreeMap<(DateTime<Utc>, u64), Event>,
    queue_seq: u64,
    pub received: VecDeque<ReceivedRequest>,
    pub callbacks: VecDeque<SentCallback>,
    received_seq: u64,
    max_log: usize,
}

impl State {
    pub(crate) fn new(seed: u64, default_script: CalleeScript, max_log: usize) -> Self {
        State {
            ids: IdGen::new(seed),
            boundaries: 0,
            calls: Vec::new(),
            sms: Vec::new(),
            scripts: HashMap::new(),
            default_script,
            faults: Vec::new(),
            voice_rate: RateWindow::default(),
            sms_rate: RateWindow::default(),
            queue: BTreeMap::new(),
            queue_seq: 0,
            received: VecDeque::new(),
            callbacks: VecDeque::new(),
            received_seq: 0,
            max_log: max_log.max(1),
        }
    }

    /// Logs a received request; returns its `seq`.
    pub(crate) fn push_received(&mut self, mut entry: ReceivedRequest) -> u64 {
        self.received_seq += 1;
        entry.seq = self.received_seq;
        if self.received.len() >= self.max_log {
            self.received.pop_front();
        }
        self.received.push_back(entry);
        self.received_seq
    }

    pub(crate) fn received_mut(&mut self, seq: u64) -> Option<&mut ReceivedRequest> {
        self.received.iter_mut().rev().find(|e| e.seq == seq)
    }

    pub(crate) fn push_callback(&mut self, entry: SentCallback) {
        if self.callbacks.len() >= self.max_log {
            self.callbacks.pop_front();
        }
        self.callbacks.push_back(entry);
    }

    pub(crate) fn schedule(&mut self, at: DateTime<Utc>, event: Event) {
        self.queue_seq += 1;
        self.queue.insert((at, self.queue_seq), event);
    }

    /// The earliest event due at or before `until`, in time order (ties in
    /// scheduling order).
    pub(crate) fn pop_due(&mut self, until: DateTime<Utc>) -> Option<(DateTime<Utc>, Event)> {
        let entry = self.queue.first_entry()?;
        if entry.key().0 > until {
            return None;
        }
        let ((at, _), event) = entry.remove_entry();
        Some((at, event))
    }

    /// Forgets every pending event of a call or SMS that ended.
    pub(crate) fn cancel_events(&mut self, sid: &str) {
        self.queue.retain(|_, event| event.sid() != sid);
    }

    /// Moves a call's pending flow wake-up to `at` (a person pressed keys,
    /// or answered, rejected or hung up a Connect leg): the flow engine
    /// looks at the phone's news then instead of at the time it planned.
    pub(crate) fn reschedule_flow(&mut self, sid: &str, at: DateTime<Utc>) {
        self.queue.retain(|_, event| !matches!(event, Event::FlowResume { sid: s } if s == sid));
        self.schedule(at, Event::FlowResume { sid: sid.to_string() });
    }

    pub(crate) fn next_due(&self) -> Option<DateTime<Utc>> {
        self.queue.keys().next().map(|(at, _)| *at)
    }

    pub(crate) fn pending_events(&self) -> usize {
        self.queue.len()
    }

    pub(crate) fn script_for(&self, number: &mangwale_core::E164) -> CalleeScript {
        self.scripts.get(number.as_str()).cloned().unwrap_or_else(|| self.default_script.clone())
    }

    pub(crate) fn next_boundary(&mut self) -> String {
        self.boundaries += 1;
        format!("----ExotelSimBoundary{:08}", self.boundaries)
    }
}
