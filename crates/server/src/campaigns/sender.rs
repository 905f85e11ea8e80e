//! The campaign sender: runs in every replica, picks up running campaigns
//! from the store and sends their due messages, paced, inside the
//! promotional window, at most once each.
//!
//! One pass ([`CampaignSender::run_once`]) goes over the running
//! campaigns. For each channel of each campaign it takes pacing slots from
//! the store's limiters (the campaign's own rate, and for calls the
//! account-wide `exotel:voice` limit and the campaign's cap on calls at
//! once), claims as many due messages (a lease with a fence), and for each:
//! the compliance gate at send time, the template rendered for the
//! recipient, the send through the at-most-once path (an idempotency key
//! per message and retry, claimed in the store before Exotel is asked), then
//! the outcome recorded under the claim's fence. A replica that dies
//! mid-batch leaves claims whose leases run out; whoever reclaims them
//! finds the keys: a message Exotel accepted is finished from the stored
//! answer, one whose fate is unknown is failed as unknown, never sent again.
//!
//! After each batch the breaker looks at the campaign's last sends; a
//! campaign whose queue is empty, with no call still going, is completed.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use mangwale_core::campaign::{
    CampaignId, CampaignState, CampaignTemplate, MessageChannel, MessageState, PromoWindow, TemplateCategory, render,
};
use mangwale_core::campaign_send::{
    BREAKER_FAILED, BREAKER_OK, SMS_MAX_TRIES, breaker_verdict, expected_finish, interval_micros,
    interval_micros_per_minute, retry_delay, work_for,
};
use mangwale_core::{Language, campaign_send::SlotGrant};
use mangwale_providers::exotel::client::{SendSms, SmsType};
use mangwale_store::{
    Campaign, CampaignFilter, ClaimedMessage, MessageCount, MessageOutcome, Rate, StoreError, Transition,
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::call::{CampaignCall, place_campaign_call};
use super::campaign_event;
use super::compliance::{self, Verdict};
use crate::calls::PlaceCallError;
use crate::comms::channels::{SendFailure, SentOnce, SmsPurpose, send_at_most_once, send_sms_once};
use crate::state::AppState;

/// How long a claim holds a message by default
/// (`CAMPAIGN_CLAIM_LEASE_SECONDS`): far longer than one send takes, so
/// only a dead replica's claims run out.
pub const LEASE: Duration = Duration::from_secs(300);
/// The most messages of one channel a pass claims for one campaign.
pub const BATCH: u32 = 50;
/// Sends of one batch in flight at once.
const SEND_CONCURRENCY: usize = 8;
/// A slot may be taken up to a second before it opens: the sender wakes
/// several times a second and sends what the second allows.
const TOLERANCE_MICROS: i64 = 1_000_000;
/// The account-wide limiter of Exotel voice requests.
pub const VOICE_LIMITER: &str = "exotel:voice";
/// The longest the loop sleeps between passes.
const IDLE_POLL: Duration = Duration::from_secs(1);
/// The campaigns one pass looks at.
const CAMPAIGNS_PER_PASS: u32 = 200;
/// How often a running campaign's `campaign.progress` event is written.
const PROGRESS_EVERY: chrono::Duration = chrono::Duration::seconds(60);

/// What the sender did with messages, by outcome.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Accepted by Exotel (an SMS queued, a call placed).
    pub sent: u64,
    /// Finished from an earlier attempt's stored answer (no new send).
    pub sent_earlier: u64,
    pub failed: u64,
    /// May or may not have gone out: failed, never sent again.
    pub unknown: u64,
    pub suppressed: u64,
    /// Put back until the promotional window opens.
    pub waiting: u64,
    /// Put back after a transient failure.
    pub retried: u64,
    /// Finished as cancelled (the campaign was cancelled mid-batch).
    pub cancelled: u64,
    /// Given back unsent (the campaign paused, or the sender stopping).
    pub released: u64,
    /// Whose outcome could not be recorded (the claim was lost, or the
    /// store failed): the lease runs out and the key settles it.
    pub unrecorded: u64,
}

impl Tally {
    fn add(&mut self, o: &Tally) {
        self.sent += o.sent;
        self.sent_earlier += o.sent_earlier;
        self.failed += o.failed;
        self.unknown += o.unknown;
        self.suppressed += o.suppressed;
        self.waiting += o.waiting;
        self.retried += o.retried;
        self.cancelled += o.cancelled;
        self.released += o.released;
        self.unrecorded += o.unrecorded;
    }

    pub fn total(&self) -> u64 {
        self.sent
            + self.sent_earlier
            + self.failed
            + self.unknown
            + self.suppressed
            + self.waiting
            + self.retried
            + self.cancelled
            + self.released
            + self.unrecorded
    }

    fn json(&self) -> Value {
        json!({
            "sent": self.sent, "sentEarlier": self.sent_earlier, "failed": self.failed, "unknown": self.unknown,
            "suppressed": self.suppressed, "waiting": self.waiting, "retried": self.retried,
            "cancelled": self.cancelled, "released": self.released, "unrecorded": self.unrecorded,
        })
    }
}

/// What one pass did.
#[derive(Debug, Default, Clone)]
pub struct SendReport {
    pub tally: Tally,
    /// Messages claimed.
    pub claimed: u64,
    pub completed: Vec<CampaignId>,
    /// Campaigns the breaker paused.
    pub tripped: Vec<CampaignId>,
    /// The earliest time a running campaign may have more to send (None:
    /// nothing is running).
    pub next_at: Option<DateTime<Utc>>,
}

impl SendReport {
    fn wake_at(&mut self, at: DateTime<Utc>) {
        self.next_at = Some(self.next_at.map_or(at, |n| n.min(at)));
    }
}

/// How one claimed message ended.
enum Done {
    Sent { sid: String, earlier: bool },
    Failed { error: String },
    Unknown { error: String },
    Suppressed { error: String },
    Wait { until: DateTime<Utc>, reason: String },
    Retry { at: DateTime<Utc>, error: String },
    Cancelled,
    Released,
}

impl Done {
    fn label(&self) -> &'static str {
        match self {
            Done::Sent { earlier: false, .. } => "sent",
            Done::Sent { earlier: true, .. } => "sent_earlier",
            Done::Failed { .. } => "failed",
            Done::Unknown { .. } => "unknown",
            Done::Suppressed { .. } => "suppressed",
            Done::Wait { .. } => "waiting",
            Done::Retry { .. } => "retried",
            Done::Cancelled => "cancelled",
            Done::Released => "released",
        }
    }

    /// What the breaker makes of it: a send that went through, one that
    /// failed, or nothing (not a send: suppressed, waiting, cancelled).
    fn breaker(&self) -> Option<char> {
        match self {
            Done::Sent { .. } => Some(BREAKER_OK),
            Done::Failed { .. } | Done::Unknown { .. } | Done::Retry { .. } => Some(BREAKER_FAILED),
            _ => None,
        }
    }

    fn error(&self) -> Option<&str> {
        match self {
            Done::Failed { error } | Done::Unknown { error } | Done::Retry { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// Event throttling per campaign (this replica's; losing it on a restart
/// costs one extra event and the `messages` tally since the last one, while
/// each event's `totals` come from the store).
#[derive(Default)]
struct Notes {
    last_progress: Option<DateTime<Utc>>,
    tally: Tally,
    waiting_until: Option<DateTime<Utc>>,
}

/// The sender of every running campaign.
pub struct CampaignSender {
    state: AppState,
    notes: std::sync::Mutex<HashMap<CampaignId, Notes>>,
}

/// What a batch needs to know about its campaign.
struct Batch<'a> {
    campaign: &'a Campaign,
    template: &'a CampaignTemplate,
    channel: MessageChannel,
    defaults: &'a BTreeMap<String, String>,
    /// Each message's provider sid before this claim (a call that was
    /// placed before and is being retried).
    earlier_sids: HashMap<i64, String>,
    stop: &'a CancellationToken,
}

/// The shared limiter's rate (`CAMPAIGN_VOICE_REQUESTS_PER_MINUTE`).
fn voice_rate(state: &AppState) -> Rate {
    Rate {
        interval: interval_micros_per_minute(state.campaigns.settings.voice_requests_per_minute),
        tolerance: TOLERANCE_MICROS,
    }
}

fn rate(per_second: f64) -> Rate {
    Rate { interval: interval_micros(per_second), tolerance: TOLERANCE_MICROS }
}

fn from_micros(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

fn limiter(id: &CampaignId, channel: MessageChannel) -> String {
    format!("campaign:{id}:{}", channel.as_str())
}

/// Counts a call that is not a campaign's (a ladder's, a callback, a
/// bridge) against the shared `exotel:voice` limiter without waiting:
/// such calls are never held back, and the campaigns' calls leave room for
/// them. Campaign calls took their slot before they were claimed. A store
/// error is logged (the call goes ahead).
pub async fn count_voice_request(state: &AppState, purpose: &str) {
    if purpose == "campaign" {
        return;
    }
    if let Err(e) = state.store.force_slot(VOICE_LIMITER, voice_rate(state), state.clock.now()).await {
        tracing::warn!(error = %e, purpose, "a call could not be counted against the shared voice limit");
    }
}

/// The at-most-once key of one try of a message: the campaign, channel and
/// sequence, and the provider sid the message held when it was claimed
/// (`first` for none). A message reclaimed after its sender died has the
/// same key (it sends nothing again); a call retried after an earlier call
/// ended (busy, no answer) holds that call's sid, so it gets a new key.
/// SMS go through [`send_sms_once`] under [`SmsPurpose::Campaign`], calls
/// through [`send_at_most_once`] as `campaign_call:<key>`.
pub fn message_key(id: &CampaignId, channel: MessageChannel, seq: i64, earlier_sid: Option<&str>) -> String {
    format!("{id}:{}:{seq}:{}", channel.as_str(), earlier_sid.unwrap_or("first"))
}

/// The SMS type Exotel is told for a template's category.
pub fn sms_type(category: TemplateCategory) -> SmsType {
    match category {
        TemplateCategory::Promotional => SmsType::Promotional,
        TemplateCategory::ServiceExplicit => SmsType::TransactionalOptIn,
        TemplateCategory::ServiceImplicit => SmsType::Transactional,
    }
}

impl CampaignSender {
    pub fn new(state: &AppState) -> CampaignSender {
        CampaignSender { state: state.clone(), notes: std::sync::Mutex::new(HashMap::new()) }
    }

    fn voice_rate(&self) -> Rate {
        voice_rate(&self.state)
    }

    /// Runs passes until shutdown, sleeping until the next message may go
    /// (at most [`IDLE_POLL`]); a pass that fails is logged and retried.
    pub async fn run(&self, stop: CancellationToken) {
        while !stop.is_cancelled() {
            let wait = match self.pass(&stop).await {
                Ok(report) if report.claimed > 0 => Duration::ZERO,
                Ok(report) => {
                    let now = self.state.clock.now();
                    report
                        .next_at
                        .map(|at| (at - now).to_std().unwrap_or_default())
                        .unwrap_or(IDLE_POLL)
                        .clamp(Duration::from_millis(20), IDLE_POLL)
                }
                Err(e) => {
                    tracing::error!(error = %e, "campaign sender pass failed");
                    metrics::counter!("mangwale_campaign_sender_errors_total").increment(1);
                    IDLE_POLL
                }
            };
            if wait.is_zero() {
                tokio::task::yield_now().await;
                continue;
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One pass over the running campaigns.
    pub async fn run_once(&self) -> Result<SendReport, StoreError> {
        self.pass(&CancellationToken::new()).await
    }

    /// Passes until one claims nothing: everything due now is done.
    pub async fn run_until_idle(&self) -> Result<SendReport, StoreError> {
        let mut total = SendReport::default();
        loop {
            let report = self.pass(&CancellationToken::new()).await?;
            total.tally.add(&report.tally);
            total.claimed += report.claimed;
            total.completed.extend(report.completed);
            total.tripped.extend(report.tripped);
            total.next_at = report.next_at;
            if report.claimed == 0 {
                return Ok(total);
            }
        }
    }

    async fn pass(&self, stop: &CancellationToken) -> Result<SendReport, StoreError> {
        let store = &self.state.store;
        let filter = CampaignFilter { state: Some(CampaignState::Running), template: None };
        let campaigns = store.list_campaigns(&filter, None, CAMPAIGNS_PER_PASS).await?;
        let mut report = SendReport::default();
        if campaigns.is_empty() {
            return Ok(report);
        }
        let book = self.state.campaigns.templates(store.as_ref()).await?;
        let defaults = super::default_variables(&self.state);
        for campaign in &campaigns {
            if stop.is_cancelled() {
                break;
            }
            let Some(template) = book.get(&campaign.template) else {
                let reason = format!("sender: template {} is not known", campaign.template);
                self.pause(campaign, &reason, None).await?;
                continue;
            };
            self.campaign_pass(campaign, template, &defaults, stop, &mut report).await?;
        }
        Ok(report)
    }

    async fn campaign_pass(
        &self,
        campaign: &Campaign,
        template: &CampaignTemplate,
        defaults: &BTreeMap<String, String>,
        stop: &CancellationToken,
        report: &mut SendReport,
    ) -> Result<(), StoreError> {
        let store = &self.state.store;
        let now = self.state.clock.now();
        if let Some(start_at) = campaign.start_at.filter(|s| *s > now) {
            report.wake_at(start_at);
            return Ok(());
        }
        let window = PromoWindow::default();
        if template.category.is_promotional() && !window.is_open(now) {
            // Nothing is claimed at night: the queue waits as it is.
            let opens = window.next_open(now);
            if !store.has_unfinished_messages(&campaign.id).await? {
                return self.complete(campaign, report).await;
            }
            self.note_waiting(campaign, opens, now).await?;
            report.wake_at(opens);
            return Ok(());
        }
        let mut claimed_any = false;
        let mut pass_tally = Tally::default();
        for channel in campaign.message_channels() {
            if stop.is_cancelled() {
                break;
            }
            let (claimed, tally) = self.channel_batch(campaign, template, channel, defaults, stop, report).await?;
            claimed_any |= claimed > 0;
            pass_tally.add(&tally);
            if report.tripped.contains(&campaign.id) {
                break;
            }
        }
        report.tally.add(&pass_tally);
        if !claimed_any && !stop.is_cancelled() && !report.tripped.contains(&campaign.id) {
            let calls_open = campaign.channel.calls() && store.campaign_calls_in_flight(&campaign.id).await? > 0;
            if !calls_open && !store.has_unfinished_messages(&campaign.id).await? {
                return self.complete(campaign, report).await;
            }
        }
        self.note_progress(campaign, &pass_tally, now).await
    }

    /// Takes slots, claims that many messages of `channel`, sends them.
    async fn channel_batch(
        &self,
        campaign: &Campaign,
        template: &CampaignTemplate,
        channel: MessageChannel,
        defaults: &BTreeMap<String, String>,
        stop: &CancellationToken,
        report: &mut SendReport,
    ) -> Result<(u64, Tally), StoreError> {
        let store = &self.state.store;
        let now = self.state.clock.now();
        let id = &campaign.id;
        let mut want = BATCH;
        if channel == MessageChannel::Voice {
            let open = store.campaign_calls_in_flight(id).await?;
            let room = u64::from(campaign.pacing.max_concurrent_calls).saturating_sub(open);
            want = want.min(u32::try_from(room).unwrap_or(u32::MAX));
            if want == 0 {
                // Calls end on their status callbacks: look again shortly.
                report.wake_at(now + chrono::Duration::seconds(1));
                return Ok((0, Tally::default()));
            }
        }
        let own = match channel {
            MessageChannel::Sms => rate(campaign.pacing.sms_per_second),
            MessageChannel::Voice => rate(campaign.pacing.calls_per_second),
        };
        let own_name = limiter(id, channel);
        let mut grant = store.reserve_slots(&own_name, own, want, now).await?;
        let mut shared: Option<SlotGrant> = None;
        if grant.granted > 0 && channel == MessageChannel::Voice {
            let account = store.reserve_slots(VOICE_LIMITER, self.voice_rate(), grant.granted, now).await?;
            if account.granted < grant.granted {
                store.return_slots(&own_name, own, &grant, grant.granted - account.granted).await?;
                if account.granted == 0 {
                    report.wake_at(from_micros(account.first - TOLERANCE_MICROS));
                }
                grant.granted = account.granted;
                grant.tat = grant.first + i64::from(account.granted) * own.interval;
            }
            shared = Some(account);
        }
        if grant.granted == 0 {
            report.wake_at(from_micros(grant.first - TOLERANCE_MICROS));
            return Ok((0, Tally::default()));
        }
        let lease = self.state.campaigns.settings.claim_lease;
        let claimed = store.claim_messages(id, channel, now, lease, grant.granted).await?;
        let unused = grant.granted - claimed.len() as u32;
        if unused > 0 {
            store.return_slots(&own_name, own, &grant, unused).await?;
            if let Some(account) = &shared {
                store.return_slots(VOICE_LIMITER, self.voice_rate(), account, unused).await?;
            }
        }
        if claimed.is_empty() {
            if let Some(at) = store.next_message_at(id, channel).await? {
                report.wake_at(at.max(now));
            }
            return Ok((0, Tally::default()));
        }
        report.claimed += claimed.len() as u64;
        report.wake_at(now);
        for (i, _) in claimed.iter().enumerate() {
            let slot = from_micros(grant.first + i as i64 * own.interval);
            let late = (now - slot).to_std().unwrap_or_default();
            metrics::histogram!("mangwale_campaign_send_lateness_seconds", "channel" => channel.as_str())
                .record(late.as_secs_f64());
        }
        // The campaign as it is now: a pause or cancel since the list.
        let current = store.campaign(id).await?.map(|c| c.state);
        let seqs: Vec<i64> = claimed.iter().map(|m| m.seq).collect();
        let earlier_sids = store.provider_sids(id, channel, &seqs).await?;
        let batch = Batch { campaign, template, channel, defaults, earlier_sids, stop };
        // The futures first, then the stream: a closure in the stream would
        // need a lifetime the compiler cannot name for a Send future.
        let sends: Vec<_> = claimed.iter().map(|m| Box::pin(self.handle(&batch, m, current))).collect();
        let outcomes: Vec<Done> = futures::stream::iter(sends).buffer_unordered(SEND_CONCURRENCY).collect().await;
        let mut tally = Tally::default();
        let mut breaker = String::new();
        let mut last_error = None;
        for done in &outcomes {
            match done {
                Done::Sent { earlier: false, .. } => tally.sent += 1,
                Done::Sent { earlier: true, .. } => tally.sent_earlier += 1,
                Done::Failed { .. } => tally.failed += 1,
                Done::Unknown { .. } => tally.unknown += 1,
                Done::Suppressed { .. } => tally.suppressed += 1,
                Done::Wait { .. } => tally.waiting += 1,
                Done::Retry { .. } => tally.retried += 1,
                Done::Cancelled => tally.cancelled += 1,
                Done::Released => tally.released += 1,
            }
            breaker.extend(done.breaker());
            if let Some(e) = done.error() {
                last_error = Some(e.to_string());
            }
        }
        if !breaker.is_empty() {
            self.judge(campaign, &breaker, last_error.as_deref(), report).await?;
        }
        Ok((claimed.len() as u64, tally))
    }

    /// Sends one claimed message and records how it ended.
    async fn handle(&self, batch: &Batch<'_>, m: &ClaimedMessage, current: Option<CampaignState>) -> Done {
        let done = match current {
            Some(CampaignState::Cancelled) | None => Done::Cancelled,
            Some(CampaignState::Running) if !batch.stop.is_cancelled() => self.send(batch, m).await,
            _ => Done::Released,
        };
        let store = &self.state.store;
        let id = &batch.campaign.id;
        let now = self.state.clock.now();
        let finish = |state: MessageState, sid: Option<String>, error: Option<String>| MessageOutcome {
            state,
            provider_sid: sid,
            error,
        };
        let recorded = match &done {
            Done::Sent { sid, .. } => {
                store
                    .finish_message(
                        id,
                        batch.channel,
                        m.seq,
                        m.fence,
                        &finish(MessageState::Sent, Some(sid.clone()), None),
                        now,
                    )
                    .await
            }
            Done::Failed { error } | Done::Unknown { error } => {
                let outcome = finish(MessageState::Failed, None, Some(error.clone()));
                store.finish_message(id, batch.channel, m.seq, m.fence, &outcome, now).await
            }
            Done::Suppressed { error } => {
                let outcome = finish(MessageState::Suppressed, None, Some(error.clone()));
                store.finish_message(id, batch.channel, m.seq, m.fence, &outcome, now).await
            }
            Done::Cancelled => {
                let outcome = finish(MessageState::Cancelled, None, Some("the campaign was cancelled".into()));
                store.finish_message(id, batch.channel, m.seq, m.fence, &outcome, now).await
            }
            Done::Wait { until, reason } => {
                store.requeue_message(id, batch.channel, m.seq, m.fence, *until, Some(reason), now).await
            }
            Done::Retry { at, error } => {
                store.requeue_message(id, batch.channel, m.seq, m.fence, *at, Some(error), now).await
            }
            Done::Released => store.requeue_message(id, batch.channel, m.seq, m.fence, now, None, now).await,
        };
        let label = match recorded {
            Ok(true) => done.label(),
            Ok(false) => {
                tracing::warn!(campaign = %id, seq = m.seq, channel = batch.channel.as_str(), outcome = done.label(),
                    "a newer claim (or an Exotel report that came first) holds the message: its outcome was not recorded");
                "unrecorded"
            }
            Err(e) => {
                tracing::error!(campaign = %id, seq = m.seq, channel = batch.channel.as_str(), outcome = done.label(),
                    error = %e, "the message's outcome could not be recorded; its lease will run out and its key settle it");
                "unrecorded"
            }
        };
        metrics::counter!("mangwale_campaign_messages_total", "channel" => batch.channel.as_str(), "outcome" => label)
            .increment(1);
        done
    }

    /// The gate, the text, the send.
    async fn send(&self, batch: &Batch<'_>, m: &ClaimedMessage) -> Done {
        let template = batch.template;
        let now = self.state.clock.now();
        let lang: Language = m.language.filter(|l| template.text(*l).is_some()).unwrap_or(batch.campaign.language);
        let verdict = match compliance::check(&self.state, &m.phone, template, lang, batch.channel, now).await {
            Ok(v) => v,
            // Nothing was sent: try again shortly (a failed try, bounded).
            Err(e) => return self.retry_or_fail(m, format!("compliance check: {e}"), None),
        };
        let dlt = match verdict {
            Verdict::Send { dlt } => dlt,
            Verdict::Suppressed { source, since } => {
                return Done::Suppressed {
                    error: format!("suppressed: {} since {}", source.as_str(), since.to_rfc3339()),
                };
            }
            Verdict::Wait { until, reason } => return Done::Wait { until, reason },
            Verdict::Refused { field, reason } => {
                return Done::Failed { error: format!("refused ({field}): {reason}") };
            }
        };
        let mut values = batch.defaults.clone();
        if let Some(name) = &m.name {
            values.insert("name".into(), name.chars().take(mangwale_core::campaign::DLT_VAR_MAX_CHARS).collect());
        }
        values.extend(m.variables.iter().map(|(k, v)| (k.clone(), v.clone())));
        // The key of this message and try: a call retried after an earlier
        // one ended carries that call's sid, so it is a new key; a reclaim
        // of an unfinished claim is the same key, and sends nothing again.
        let earlier = batch.earlier_sids.get(&m.seq).map(String::as_str);
        let key = message_key(&batch.campaign.id, batch.channel, m.seq, earlier);
        match batch.channel {
            MessageChannel::Sms => {
                let Some(dlt) = dlt else {
                    return Done::Failed { error: "the gate settled no DLT fields for an SMS".into() };
                };
                let body = match render(&dlt.text, &template.variables, &values) {
                    Ok(body) => body,
                    Err(e) => return Done::Failed { error: format!("template {}: {e}", template.key) },
                };
                let mut sms = SendSms::new(dlt.sender.clone(), m.phone.clone(), body);
                sms.dlt_entity_id = dlt.entity_id.clone();
                sms.dlt_template_id = dlt.template_id.clone();
                sms.sms_type = Some(sms_type(template.category));
                sms.custom_field = Some(super::call::sms_custom_field(&batch.campaign.id, m.seq));
                match send_sms_once(&self.state, SmsPurpose::Campaign, &key, &sms).await {
                    SentOnce::Sent { id, earlier } => Done::Sent { sid: id, earlier },
                    SentOnce::NotSent { message, transient: true, retry_after } => {
                        self.retry_or_fail(m, message, retry_after)
                    }
                    SentOnce::NotSent { message, .. } => Done::Failed { error: message },
                    SentOnce::Unknown { message } => Done::Unknown { error: format!("outcome unknown: {message}") },
                }
            }
            MessageChannel::Voice => {
                let Some(text) = template.text(lang) else {
                    return Done::Failed { error: format!("template {} has no {} text", template.key, lang.code()) };
                };
                let text = match render(&text.voice, &template.variables, &values) {
                    Ok(text) => text,
                    Err(e) => return Done::Failed { error: format!("template {}: {e}", template.key) },
                };
                let call = CampaignCall { campaign: batch.campaign, message: m, text, language: lang };
                let placed = send_at_most_once(&self.state, &format!("campaign_call:{key}"), "campaign_call", async {
                    match place_campaign_call(&self.state, call).await {
                        Ok(attempt) => match attempt.call_sid {
                            Some(sid) => Ok(sid),
                            None => Err(SendFailure::Ambiguous {
                                message: attempt.detail.unwrap_or_else(|| "no CallSid came back".into()),
                            }),
                        },
                        Err(PlaceCallError::Transient(message)) => {
                            Err(SendFailure::NotSent { message, transient: true, retry_after: None })
                        }
                        Err(PlaceCallError::Permanent(message)) => {
                            Err(SendFailure::NotSent { message, transient: false, retry_after: None })
                        }
                        // The attempt may or may not have reached Exotel.
                        Err(PlaceCallError::Store(e)) => Err(SendFailure::Ambiguous { message: e.to_string() }),
                    }
                })
                .await;
                match placed {
                    SentOnce::Sent { id, earlier } => Done::Sent { sid: id, earlier },
                    SentOnce::NotSent { message, transient: true, retry_after } => {
                        self.retry_or_fail(m, message, retry_after)
                    }
                    SentOnce::NotSent { message, .. } => Done::Failed { error: message },
                    SentOnce::Unknown { message } => Done::Unknown { error: format!("outcome unknown: {message}") },
                }
            }
        }
    }

    /// A transient failure: tried again later while tries are left
    /// (the gate decides at that time whether the window still allows it).
    fn retry_or_fail(&self, m: &ClaimedMessage, error: String, retry_after: Option<Duration>) -> Done {
        if m.attempts >= SMS_MAX_TRIES {
            return Done::Failed { error: format!("{error} (after {} tries)", m.attempts) };
        }
        let wait = chrono::Duration::from_std(retry_delay(m.attempts, retry_after)).unwrap_or(chrono::Duration::MAX);
        let now = self.state.clock.now();
        Done::Retry { at: now.checked_add_signed(wait).unwrap_or(now), error }
    }

    /// Records a batch's sends on the breaker and pauses the campaign if
    /// too many failed.
    async fn judge(
        &self,
        campaign: &Campaign,
        outcomes: &str,
        last_error: Option<&str>,
        report: &mut SendReport,
    ) -> Result<(), StoreError> {
        let settings = &self.state.campaigns.settings;
        let window = settings.breaker_window as usize;
        let now = self.state.clock.now();
        let recent = self.state.store.record_sends(&campaign.id, outcomes, window, now).await?;
        let Some(trip) = breaker_verdict(&recent, window, settings.breaker_failure_share) else {
            return Ok(());
        };
        let mut reason = format!("breaker: {} of the last {} sends failed", trip.failed, trip.of);
        if let Some(e) = last_error {
            let e: String = e.chars().take(200).collect();
            reason.push_str(&format!(" (last error: {e})"));
        }
        let breaker = json!({"failed": trip.failed, "of": trip.of, "share": settings.breaker_failure_share,
                             "lastError": last_error});
        if self.pause(campaign, &reason, Some(breaker)).await? {
            metrics::counter!("mangwale_campaign_breaker_trips_total").increment(1);
            tracing::warn!(campaign = %campaign.id, reason, "campaign breaker tripped: campaign paused");
            report.tripped.push(campaign.id.clone());
        }
        Ok(())
    }

    /// Pauses a running campaign (the sender's own reasons); whether it did.
    async fn pause(&self, campaign: &Campaign, reason: &str, breaker: Option<Value>) -> Result<bool, StoreError> {
        let store = &self.state.store;
        let now = self.state.clock.now();
        let moved = store
            .transition_campaign(&campaign.id, &[CampaignState::Running], CampaignState::Paused, Some(reason), now)
            .await?;
        let Transition::Done(paused) = moved else { return Ok(false) };
        if breaker.is_some() {
            store.trip_breaker(&campaign.id, reason, now).await?;
        }
        metrics::counter!("mangwale_campaign_transitions_total", "action" => "pause").increment(1);
        let extra = json!({"reason": reason, "by": "sender", "breaker": breaker});
        store.record_event(campaign_event("campaign.paused", &paused, now, extra)).await?;
        Ok(true)
    }

    async fn complete(&self, campaign: &Campaign, report: &mut SendReport) -> Result<(), StoreError> {
        let store = &self.state.store;
        let now = self.state.clock.now();
        let moved = store
            .transition_campaign(&campaign.id, &[CampaignState::Running], CampaignState::Completed, None, now)
            .await?;
        let Transition::Done(done) = moved else { return Ok(()) };
        metrics::counter!("mangwale_campaign_transitions_total", "action" => "complete").increment(1);
        let counts = store.message_counts(&campaign.id).await?;
        let by_state: BTreeMap<&str, u64> = counts.iter().fold(BTreeMap::new(), |mut m, c| {
            *m.entry(c.state.as_str()).or_default() += c.count;
            m
        });
        store.record_event(campaign_event("campaign.completed", &done, now, json!({"totals": by_state}))).await?;
        tracing::info!(campaign = %campaign.id, "campaign completed");
        self.notes.lock().unwrap_or_else(|e| e.into_inner()).remove(&campaign.id);
        report.completed.push(campaign.id.clone());
        Ok(())
    }

    /// `campaign.waiting` once per night (per replica).
    async fn note_waiting(
        &self,
        campaign: &Campaign,
        opens: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let first = {
            let mut notes = self.notes.lock().unwrap_or_else(|e| e.into_inner());
            let n = notes.entry(campaign.id.clone()).or_default();
            let first = n.waiting_until != Some(opens);
            n.waiting_until = Some(opens);
            first
        };
        if first {
            let extra = json!({"nextAllowedAt": opens.to_rfc3339(),
                               "reason": "promotional messages go out between 09:00 and 21:00 IST only"});
            self.state.store.record_event(campaign_event("campaign.waiting", campaign, now, extra)).await?;
        }
        Ok(())
    }

    /// Adds a pass's tally and writes `campaign.progress` at most once a
    /// minute (per replica) with what was done since the last one.
    async fn note_progress(&self, campaign: &Campaign, tally: &Tally, now: DateTime<Utc>) -> Result<(), StoreError> {
        let due = {
            let mut notes = self.notes.lock().unwrap_or_else(|e| e.into_inner());
            let n = notes.entry(campaign.id.clone()).or_default();
            n.tally.add(tally);
            let due = n.tally.total() > 0 && n.last_progress.is_none_or(|at| now - at >= PROGRESS_EVERY);
            if due {
                n.last_progress = Some(now);
                Some(std::mem::take(&mut n.tally))
            } else {
                None
            }
        };
        if let Some(t) = due {
            // The store's counts are the durable truth; `messages` (this
            // replica's work since its last event) is lost on a restart.
            let counts = self.state.store.message_counts(&campaign.id).await?;
            let totals = crate::campaigns::campaign_json(campaign, Some(&counts))["totals"].take();
            let extra = json!({"since": "the last progress event", "messages": t.json(), "totals": totals});
            self.state.store.record_event(campaign_event("campaign.progress", campaign, now, extra)).await?;
        }
        Ok(())
    }
}

/// What `GET /campaigns/{id}` adds for the sender: progress (final of
/// total messages), the expected finish given the pacing and the window,
/// and the breaker.
pub async fn status_json(
    state: &AppState,
    campaign: &Campaign,
    counts: &[MessageCount],
    category: Option<TemplateCategory>,
) -> Result<Value, StoreError> {
    let settings = &state.campaigns.settings;
    let total: u64 = counts.iter().map(|c| c.count).sum();
    let left = |channel: MessageChannel| -> u64 {
        counts.iter().filter(|c| c.channel == channel && !c.state.is_final()).map(|c| c.count).sum()
    };
    let finals = total - left(MessageChannel::Sms) - left(MessageChannel::Voice);
    let now = state.clock.now();
    let voice_rate = campaign.pacing.calls_per_second.min(f64::from(settings.voice_requests_per_minute) / 60.0);
    let work = work_for(left(MessageChannel::Sms), campaign.pacing.sms_per_second)
        .max(work_for(left(MessageChannel::Voice), voice_rate));
    let window = PromoWindow::default();
    let window = category.filter(|c| c.is_promotional()).map(|_| &window);
    let expected = match campaign.state {
        CampaignState::Created | CampaignState::Running => {
            let start = campaign.start_at.map_or(now, |s| s.max(now));
            Some(expected_finish(start, work, window).to_rfc3339())
        }
        CampaignState::Completed | CampaignState::Cancelled => campaign.finished_at.map(|t| t.to_rfc3339()),
        // Paused: it finishes when someone resumes it.
        CampaignState::Paused => None,
    };
    let record = state.store.breaker(&campaign.id).await?.unwrap_or_default();
    let failed = record.recent.chars().filter(|c| *c == BREAKER_FAILED).count();
    let tripped = campaign.state == CampaignState::Paused
        && campaign.state_reason.as_deref().is_some_and(|r| r.starts_with("breaker:"));
    Ok(json!({
        "progress": {
            "final": finals,
            "total": total,
            "percent": if total == 0 { 100.0 } else { (finals as f64 * 1000.0 / total as f64).round() / 10.0 },
        },
        "expectedFinishAt": expected,
        "breaker": {
            "state": if tripped { "tripped" } else { "closed" },
            "reason": if tripped { campaign.state_reason.clone() } else { None },
            "lastTrippedAt": record.tripped_at.map(|t| t.to_rfc3339()),
            "lastTripReason": record.reason,
            "recentSends": record.recent.chars().count(),
            "recentFailures": failed,
            "window": settings.breaker_window,
            "failureShare": settings.breaker_failure_share,
        },
    }))
}
