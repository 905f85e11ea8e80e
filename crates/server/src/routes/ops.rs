//! The operations API behind the console: dead jobs (list, retry,
//! discard), the queue by kind, the effective configuration, the live
//! board (active ladders with their steps' prompts, escalate now, calls in
//! progress) and the analytics of a time range. All need an API key.
//!
//! Every change is a compare-and-set in the store, so operators on
//! several replicas (or two browser tabs) cannot both act on one job or
//! step: one wins, the other gets 409.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use mangwale_core::ladder::{LadderState, StepState};
use mangwale_store::{DeadJobChange, Escalation, Job, JobState, Ladder, NewEvent};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::comms;
use crate::error::{AppError, AppResult};
use crate::state::AppState;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/ops/jobs/dead", get(dead_jobs))
        .route("/ops/jobs/{id}/retry", post(retry_job))
        .route("/ops/jobs/{id}/discard", post(discard_job))
        .route("/ops/queue", get(queue))
        .route("/ops/config", get(config))
        .route("/ops/ladders/active", get(active_ladders))
        .route("/ops/calls/active", get(active_calls))
        .route("/ops/analytics", get(analytics))
        .route("/comms/escalations/{id}/escalate", post(escalate))
}

/// The longest analytics range.
pub const MAX_ANALYTICS_SPAN: chrono::Duration = chrono::Duration::days(31);

/// Calls older than this are not shown as in progress, whatever their
/// state: a call whose final callback never came would stay on the board
/// for ever (the longest call we place is limited to 4 hours).
pub const ACTIVE_CALL_WINDOW: chrono::Duration = chrono::Duration::hours(6);

/// Text, parsed by the handlers so that a bad value is a 400 naming it.
#[derive(Debug, Deserialize)]
struct Page {
    limit: Option<String>,
    after: Option<String>,
}

/// `limit` within `1..=max`, `default` when absent.
fn limit(raw: &Option<String>, default: u32, max: u32) -> AppResult<u32> {
    match raw.as_deref() {
        None => Ok(default),
        Some(l) => l
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|l| (1..=max).contains(l))
            .ok_or_else(|| AppError::invalid("limit", format!("limit: 1 to {max}"))),
    }
}

fn job_id(raw: &str) -> AppResult<i64> {
    raw.trim().parse::<i64>().ok().filter(|id| *id > 0).ok_or_else(|| AppError::invalid("id", "id: a job id"))
}

/// The order, escalation and party a job is about, where it names them:
/// `orderId` and `escalationId` in its payload, a ladder's job group, and
/// the ladder's order and party. `ladders` caches the ladders looked up.
async fn job_context(
    state: &AppState,
    job: &Job,
    ladders: &mut HashMap<String, Option<Ladder>>,
) -> AppResult<(Option<String>, Option<String>, Option<String>)> {
    let text = |v: &Value| match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let order = text(&job.payload["orderId"]).or_else(|| text(&job.payload["order_id"]));
    let escalation = text(&job.payload["escalationId"])
        .or_else(|| job.group.as_deref().and_then(|g| g.strip_prefix("ladder:")).map(str::to_string));
    let Some(escalation) = escalation else { return Ok((order, None, None)) };
    if !ladders.contains_key(&escalation) {
        let ladder = state.store.ladder(&escalation).await?;
        ladders.insert(escalation.clone(), ladder);
    }
    let ladder = ladders.get(&escalation).and_then(Option::as_ref);
    let order = order.or_else(|| ladder.and_then(|l| l.order_id.clone()));
    let party = ladder.map(|l| l.party.clone());
    Ok((order, Some(escalation), party))
}

/// `GET /ops/jobs/dead?limit=100&after=<id>`: dead jobs, oldest first;
/// `next` is the `after` of the next page (null on the last page).
async fn dead_jobs(State(state): State<AppState>, Query(page): Query<Page>) -> AppResult<Json<Value>> {
    let limit = limit(&page.limit, 100, 500)?;
    let after = crate::extract::parse_after(page.after.as_deref(), "a job id")?.unwrap_or(0);
    let dead = state.store.dead_jobs(after, limit).await?;
    let mut ladders = HashMap::new();
    let mut jobs = Vec::with_capacity(dead.len());
    for d in &dead {
        let (order, _, _) = job_context(&state, &d.job, &mut ladders).await?;
        jobs.push(json!({
            "id": d.job.id, "kind": d.job.kind, "key": d.job.key, "group": d.job.group,
            "attempts": d.job.attempts, "lastError": d.job.last_error, "deadAt": d.dead_at, "orderId": order,
        }));
    }
    let next = (dead.len() == limit as usize).then(|| dead.last().map(|d| d.job.id)).flatten();
    Ok(Json(json!({"jobs": jobs, "next": next})))
}

/// What an operator does to a dead job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JobAction {
    Retry,
    Discard,
}

impl JobAction {
    fn name(self) -> &'static str {
        match self {
            JobAction::Retry => "retry",
            JobAction::Discard => "discard",
        }
    }

    fn event(self) -> &'static str {
        match self {
            JobAction::Retry => "job_retried",
            JobAction::Discard => "job_discarded",
        }
    }
}

fn not_dead(id: i64, state: JobState) -> AppError {
    AppError::Conflict { code: "job_not_dead", message: format!("job {id} is {}, not dead", state.as_str()) }
}

async fn act_on_dead_job(state: &AppState, raw_id: &str, action: JobAction) -> AppResult<Job> {
    let id = job_id(raw_id)?;
    let job = state.store.job(id).await?.ok_or_else(|| AppError::NotFound(format!("no job {id}")))?;
    if job.state != JobState::Dead {
        return Err(not_dead(id, job.state));
    }
    let (order, escalation, party) = job_context(state, &job, &mut HashMap::new()).await?;
    let now = state.clock.now();
    let event = NewEvent::new(action.event(), now)
        .channel("ops")
        .context(order.as_deref(), escalation.as_deref(), party.as_deref())
        .detail(json!({
            "jobId": job.id, "kind": job.kind, "key": job.key, "attempts": job.attempts,
            "lastError": job.last_error, "actor": "api",
        }));
    let changed = match action {
        JobAction::Retry => state.store.retry_dead_job(id, event, now).await?,
        JobAction::Discard => state.store.discard_dead_job(id, event, now).await?,
    };
    match changed {
        DeadJobChange::Changed(job) => {
            metrics::counter!("mangwale_ops_job_actions_total", "action" => action.name(), "kind" => job.kind.clone())
                .increment(1);
            tracing::info!(job_id = id, kind = %job.kind, action = action.name(), "dead job changed by an operator");
            state.health.refresh_queue().await;
            Ok(job)
        }
        // Another operator or replica acted first.
        DeadJobChange::NotDead(now_state) => Err(not_dead(id, now_state)),
        DeadJobChange::NotFound => Err(AppError::NotFound(format!("no job {id}"))),
    }
}

/// `POST /ops/jobs/{id}/retry`: the dead job runs again now, with a fresh
/// budget of attempts.
async fn retry_job(State(state): State<AppState>, Path(id): Path<String>) -> AppResult<Json<Value>> {
    let job = act_on_dead_job(&state, &id, JobAction::Retry).await?;
    Ok(Json(json!({"id": job.id, "state": job.state.as_str(), "runAt": job.run_at})))
}

/// `POST /ops/jobs/{id}/discard`: the dead job leaves the dead list for good.
async fn discard_job(State(state): State<AppState>, Path(id): Path<String>) -> AppResult<Json<Value>> {
    let job = act_on_dead_job(&state, &id, JobAction::Discard).await?;
    Ok(Json(json!({"id": job.id, "state": job.state.as_str()})))
}

/// `GET /ops/queue`: pending, running, dead and overdue jobs by kind, and
/// the totals.
async fn queue(State(state): State<AppState>) -> AppResult<Json<Value>> {
    let now = state.clock.now();
    let (kinds, totals) = tokio::join!(state.store.queue_by_kind(now), state.store.queue_stats(now));
    let (kinds, totals) = (kinds?, totals?);
    let kinds: Vec<Value> = kinds
        .iter()
        .map(|k| {
            let oldest = k.oldest_overdue.map(|t| (now - t).num_milliseconds().max(0) as f64 / 1000.0);
            json!({"kind": k.kind, "pending": k.pending, "running": k.running, "dead": k.dead,
                   "overdue": k.overdue, "oldestOverdueSeconds": oldest})
        })
        .collect();
    Ok(Json(json!({
        "kinds": kinds,
        "totals": {"pending": totals.pending, "running": totals.running, "dead": totals.dead, "overdue": totals.overdue,
                   "lagMs": totals.lag_ms},
    })))
}

/// `GET /ops/config`: the effective configuration, secrets only as
/// "set"/"not set".
async fn config(State(state): State<AppState>) -> Json<Value> {
    Json(json!({"mode": state.config.mode.as_str(), "variables": state.config.report()}))
}

/// When the ladder's next step is due: its earliest pending step.
fn next_step_at(ladder: &Ladder) -> Option<DateTime<Utc>> {
    ladder.steps.iter().filter(|s| s.state == StepState::Pending).map(|s| s.due_at).min()
}

fn board_ladder(state: &AppState, ladder: &Ladder) -> Value {
    let steps: Vec<Value> = ladder
        .steps
        .iter()
        .map(|s| {
            json!({
                "index": s.index, "channel": s.channel.name(), "state": s.state.name(), "dueAt": s.due_at,
                "prompt": comms::prompts::step_prompt(state, ladder, s.channel),
            })
        })
        .collect();
    json!({
        "escalationId": ladder.escalation_id,
        "orderId": ladder.order_id,
        "party": ladder.party,
        "partyName": ladder.context.name,
        "language": ladder.language.code(),
        "kind": ladder.kind.name(),
        "state": ladder.state.name(),
        "startedAt": ladder.started_at,
        "nextStepAt": next_step_at(ladder),
        "steps": steps,
    })
}

/// `GET /ops/ladders/active?limit=200`: the active ladders, newest first,
/// each step with what it says or sends.
async fn active_ladders(State(state): State<AppState>, Query(page): Query<Page>) -> AppResult<Json<Value>> {
    let limit = limit(&page.limit, 200, 500)?;
    let ladders = state.store.active_ladders(limit).await?;
    let ladders: Vec<Value> = ladders.iter().map(|l| board_ladder(&state, l)).collect();
    Ok(Json(json!({"ladders": ladders})))
}

/// How many times an escalation looks again when a step changed under it.
const ESCALATE_TRIES: usize = 3;

/// `POST /comms/escalations/{id}/escalate`: the ladder's next pending step
/// runs now.
async fn escalate(State(state): State<AppState>, Path(id): Path<String>) -> AppResult<Json<Value>> {
    let id = id.trim().to_string();
    for _ in 0..ESCALATE_TRIES {
        let ladder = state.store.ladder(&id).await?.ok_or_else(|| AppError::NotFound(format!("no escalation {id}")))?;
        if ladder.state != LadderState::Active {
            return Err(ladder_not_active(&id, ladder.state));
        }
        let Some(step) = ladder.steps.iter().filter(|s| s.state == StepState::Pending).min_by_key(|s| s.index) else {
            return Err(AppError::Conflict {
                code: "no_pending_step",
                message: format!("escalation {id} has no step left to run"),
            });
        };
        let now = state.clock.now();
        let event = NewEvent::new("escalated_now", now)
            .escalation(&id)
            .channel("ops")
            .context(ladder.order_id.as_deref(), None, Some(&ladder.party))
            .detail(json!({"step": step.index, "stepChannel": step.channel.name(), "wasDueAt": step.due_at,
                           "ladder": ladder.kind, "actor": "api"}));
        let key = format!("{}:{id}:{}", comms::STEP_JOB, step.index);
        match state.store.escalate_step(&id, step.index, &key, event, now).await? {
            Escalation::Escalated { run_at } => {
                metrics::counter!("mangwale_ladders_escalated_total", "ladder" => ladder.kind.name()).increment(1);
                return Ok(Json(json!({"escalationId": id, "stepIndex": step.index, "runAt": run_at})));
            }
            Escalation::NotFound => return Err(AppError::NotFound(format!("no escalation {id}"))),
            Escalation::LadderFinished(now_state) => return Err(ladder_not_active(&id, now_state)),
            Escalation::JobNotPending => {
                return Err(AppError::Conflict {
                    code: "step_in_progress",
                    message: format!("step {} of escalation {id} is being sent right now", step.index),
                });
            }
            // The step was sent (or vanished) between the read and the
            // write: look again for the next one.
            Escalation::StepNotPending(_) | Escalation::NoSuchStep => continue,
        }
    }
    Err(AppError::Conflict { code: "escalation_busy", message: format!("escalation {id} kept changing; try again") })
}

fn ladder_not_active(id: &str, state: LadderState) -> AppError {
    AppError::Conflict {
        code: "ladder_not_active",
        message: format!("escalation {id} is {}, not active", state.name()),
    }
}

/// `GET /ops/calls/active?limit=200`: our calls not over yet, newest first,
/// numbers masked.
async fn active_calls(State(state): State<AppState>, Query(page): Query<Page>) -> AppResult<Json<Value>> {
    let limit = limit(&page.limit, 200, 500)?;
    let since = state.clock.now() - ACTIVE_CALL_WINDOW;
    let calls = state.store.active_calls(since, limit).await?;
    let calls: Vec<Value> = calls
        .iter()
        .map(|c| {
            json!({
                "id": c.id, "callSid": c.call_sid, "purpose": c.purpose, "orderId": c.order_id, "party": c.party,
                "to": c.to_masked, "state": c.state.as_str(), "startedAt": c.created_at,
            })
        })
        .collect();
    Ok(Json(json!({"calls": calls})))
}

#[derive(Debug, Deserialize)]
struct Range {
    from: Option<String>,
    to: Option<String>,
}

/// The range of `/ops/analytics`: the last 24 hours by default, at most
/// [`MAX_ANALYTICS_SPAN`].
fn range(range: &Range, now: DateTime<Utc>) -> AppResult<(DateTime<Utc>, DateTime<Utc>)> {
    let to = super::comms::time("to", &range.to)?.unwrap_or(now);
    let from = super::comms::time("from", &range.from)?.unwrap_or(to - chrono::Duration::hours(24));
    if from >= to {
        return Err(AppError::invalid("from", "from must be before to"));
    }
    if to - from > MAX_ANALYTICS_SPAN {
        return Err(AppError::invalid("from", "from: at most 31 days before to"));
    }
    Ok((from, to))
}

/// `GET /ops/analytics?from=&to=`: the console's charts.
async fn analytics(State(state): State<AppState>, Query(q): Query<Range>) -> AppResult<Json<Value>> {
    use mangwale_core::campaign::{MessageState, SuppressionSource};

    let (from, to) = range(&q, state.clock.now())?;
    let store = &state.store;
    let (counts, missed, figures) =
        tokio::join!(store.analytics(from, to), store.missed_call_stats(from, to), store.campaign_figures(from, to));
    let (counts, missed, figures) = (counts?, missed?, figures?);
    let messages = |states: &[MessageState]| -> u64 {
        figures.messages.iter().filter(|(_, s, _)| states.contains(s)).map(|(_, _, n)| n).sum()
    };
    // Reached: an SMS delivered, a call picked up.
    let reached = [MessageState::Delivered, MessageState::Answered, MessageState::Pressed1, MessageState::OptedOut];
    let sent = [&reached[..], &[MessageState::Sent]].concat();
    // Opt-outs by the recipients themselves (not imports, DND reports or operators).
    let own = [
        SuppressionSource::SmsStop,
        SuppressionSource::WhatsappStop,
        SuppressionSource::CallKey9,
        SuppressionSource::MissedCall,
    ];
    let opted_out: u64 = figures.opt_outs.iter().filter(|(s, _)| own.contains(s)).map(|(_, n)| n).sum();
    Ok(Json(json!({
        "from": from,
        "to": to,
        "callsPerHour": counts.calls_per_hour.iter()
            .map(|h| json!({"hour": h.hour, "outbound": h.outbound, "inbound": h.inbound}))
            .collect::<Vec<_>>(),
        "ladderOutcomes": {
            "accepted": counts.ladders.accepted,
            "rejected": counts.ladders.rejected,
            "noResponse": counts.ladders.no_response,
            "stopped": counts.ladders.stopped,
        },
        "responseSeconds": counts.response_seconds.iter()
            .map(|(le, n)| json!({"le": le, "count": n}))
            .collect::<Vec<_>>(),
        "channels": counts.channels.iter()
            .map(|c| json!({"channel": c.channel, "sent": c.sent, "succeeded": c.succeeded, "failed": c.failed}))
            .collect::<Vec<_>>(),
        "missedCalls": {"missed": missed.missed_calls, "calledBack": missed.callbacks_placed, "reached": missed.answered},
        "voiceOrders": {"sessions": counts.voice.sessions, "confirmed": counts.voice.confirmed, "ordered": counts.voice.ordered},
        "campaigns": {
            "sent": messages(&sent[..]),
            "delivered": messages(&reached),
            "failed": messages(&[MessageState::Failed]),
            "optedOut": opted_out,
        },
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_analytics_range_defaults_to_a_day_and_names_the_bad_field() {
        let now = DateTime::parse_from_rfc3339("2025-06-01T12:00:00Z").unwrap().with_timezone(&Utc);
        let none = Range { from: None, to: None };
        assert_eq!(range(&none, now).unwrap(), (now - chrono::Duration::hours(24), now));
        let field = |from: &str, to: &str| {
            let r = Range { from: Some(from.into()), to: Some(to.into()) };
            match range(&r, now) {
                Err(AppError::BadRequest { field, .. }) => field.unwrap(),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(field("yesterday", "2025-06-01T00:00:00Z"), "from");
        assert_eq!(field("2025-05-01T00:00:00Z", "soon"), "to");
        assert_eq!(field("2025-06-01T00:00:00Z", "2025-06-01T00:00:00Z"), "from");
        assert_eq!(field("2025-04-01T00:00:00Z", "2025-06-01T00:00:00Z"), "from");
        assert!(limit(&Some("0".into()), 100, 500).is_err() && limit(&Some("501".into()), 100, 500).is_err());
        assert_eq!(limit(&None, 100, 500).unwrap(), 100);
    }
}
