//! The operations console's store: dead jobs retried and discarded, the
//! queue by kind, the live board (active ladders, escalate now, calls in
//! progress) and the analytics, on both backends.

use chrono::Duration as Span;
use mangwale_core::ladder::{LadderState, StepState, StopAction};
use mangwale_store::test_support::TestDb;
use mangwale_store::{
    CallState, DeadJobChange, Escalation, FailOutcome, JobState, NewCall, NewEvent, NewJob, StepClaim, VoiceChannel,
    VoiceSession, VoiceSessionStatus,
};
use serde_json::json;

use super::{at, kinds, new_ladder, secs, t0};

conformance!(
    dead_jobs_are_listed_retried_once_and_discarded_for_good,
    the_queue_is_counted_by_kind,
    the_next_step_of_an_active_ladder_can_be_made_due_now,
    the_board_lists_active_ladders_and_calls_newest_first,
    analytics_count_calls_ladders_channels_and_voice_orders,
);

/// Enqueues a job of `kind` and makes it dead (a permanent failure).
async fn dead_job(db: &TestDb, kind: &str, key: &str, payload: serde_json::Value, at_secs: i64) -> i64 {
    let s = &db.store;
    let id = s.enqueue(NewJob::new(kind, key, payload, at(at_secs)).max_attempts(3)).await.unwrap().id();
    let claimed = s.claim(&kinds(&[kind]), "w", 10, secs(30), at(at_secs)).await.unwrap();
    let job = claimed.iter().find(|j| j.id == id).expect("claimed");
    assert_eq!(s.fail(job.lease(), "Jupiter said 400", None, at(at_secs + 1)).await.unwrap(), FailOutcome::Dead);
    id
}

async fn dead_jobs_are_listed_retried_once_and_discarded_for_good(db: &TestDb) {
    let s = &db.store;
    let a = dead_job(db, "jupiter.outbox", "a", json!({"orderId": "MW-1"}), 0).await;
    let b = dead_job(db, "jupiter.outbox", "b", json!({"orderId": "MW-2"}), 10).await;
    let c = dead_job(db, "other", "c", json!({}), 20).await;
    s.enqueue(NewJob::new("other", "alive", json!({}), at(0))).await.unwrap();

    let page = s.dead_jobs(0, 2).await.unwrap();
    assert_eq!(page.iter().map(|d| d.job.id).collect::<Vec<_>>(), vec![a, b], "oldest first, cut at the limit");
    assert_eq!(page[0].dead_at, at(1));
    assert_eq!((page[0].job.attempts, page[0].job.last_error.as_deref()), (1, Some("Jupiter said 400")));
    let rest = s.dead_jobs(b, 2).await.unwrap();
    assert_eq!(rest.iter().map(|d| d.job.id).collect::<Vec<_>>(), vec![c]);
    assert_eq!(s.queue_stats(at(30)).await.unwrap().dead, 3);

    // Retry: pending, due now, a fresh budget; the event in the same write.
    let event = NewEvent::new("job_retried", at(100)).order("MW-1").detail(json!({"jobId": a}));
    let DeadJobChange::Changed(job) = s.retry_dead_job(a, event.clone(), at(100)).await.unwrap() else { panic!() };
    assert_eq!((job.state, job.attempts, job.run_at), (JobState::Pending, 0, at(100)));
    let again = s.retry_dead_job(a, event, at(101)).await.unwrap();
    assert!(matches!(again, DeadJobChange::NotDead(JobState::Pending)), "{again:?}");
    assert!(matches!(
        s.retry_dead_job(999_999, NewEvent::new("x", t0()), t0()).await.unwrap(),
        DeadJobChange::NotFound
    ));
    let retried = s.events_for_order("MW-1").await.unwrap();
    assert_eq!(retried.iter().filter(|e| e.kind == "job_retried").count(), 1, "one event for the one retry");
    let claimed = s.claim(&kinds(&["jupiter.outbox"]), "w", 10, secs(30), at(100)).await.unwrap();
    assert_eq!(claimed.iter().map(|j| (j.id, j.attempts)).collect::<Vec<_>>(), vec![(a, 1)], "it runs again now");
    assert!(s.complete(claimed[0].lease(), at(101)).await.unwrap());

    // Discard: off the dead list, counted nowhere, pruned like a finished job.
    let event = NewEvent::new("job_discarded", at(110)).order("MW-2");
    let DeadJobChange::Changed(job) = s.discard_dead_job(b, event, at(110)).await.unwrap() else { panic!() };
    assert_eq!(job.state, JobState::Discarded);
    assert!(matches!(
        s.discard_dead_job(b, NewEvent::new("job_discarded", at(111)), at(111)).await.unwrap(),
        DeadJobChange::NotDead(JobState::Discarded)
    ));
    assert!(matches!(
        s.discard_dead_job(a, NewEvent::new("job_discarded", at(111)), at(111)).await.unwrap(),
        DeadJobChange::NotDead(JobState::Done)
    ));
    assert_eq!(s.dead_jobs(0, 10).await.unwrap().iter().map(|d| d.job.id).collect::<Vec<_>>(), vec![c]);
    assert_eq!(s.queue_stats(at(120)).await.unwrap().dead, 1);
    let dead_by_kind = s.dead_by_kind(t0()).await.unwrap();
    assert_eq!(dead_by_kind, vec![("other".to_string(), 1)]);
    assert_eq!(s.events_for_order("MW-2").await.unwrap().len(), 1);
    assert_eq!(s.prune_finished(at(200)).await.unwrap(), 2, "the done job and the discarded one");
    assert!(s.job(b).await.unwrap().is_none());
    assert_eq!(s.job(c).await.unwrap().unwrap().state, JobState::Dead, "a dead job is kept");
}

async fn the_queue_is_counted_by_kind(db: &TestDb) {
    let s = &db.store;
    dead_job(db, "b.kind", "dead", json!({}), 0).await;
    s.enqueue(NewJob::new("a.kind", "late", json!({}), at(10))).await.unwrap();
    s.enqueue(NewJob::new("a.kind", "later", json!({}), at(40))).await.unwrap();
    s.enqueue(NewJob::new("a.kind", "future", json!({}), at(500))).await.unwrap();
    s.enqueue(NewJob::new("b.kind", "running", json!({}), at(0))).await.unwrap();
    assert_eq!(s.claim(&kinds(&["b.kind"]), "w", 10, secs(30), at(0)).await.unwrap().len(), 1);
    let kinds = s.queue_by_kind(at(100)).await.unwrap();
    assert_eq!(kinds.len(), 2);
    let (a, b) = (&kinds[0], &kinds[1]);
    assert_eq!((a.kind.as_str(), a.pending, a.running, a.dead, a.overdue), ("a.kind", 3, 0, 0, 2));
    assert_eq!(a.oldest_overdue, Some(at(10)));
    assert_eq!(
        (b.kind.as_str(), b.pending, b.running, b.dead, b.overdue, b.oldest_overdue),
        ("b.kind", 0, 1, 1, 0, None)
    );
    assert!(s.queue_by_kind(at(100)).await.unwrap().iter().all(|k| k.kind != "c.kind"));
}

async fn the_next_step_of_an_active_ladder_can_be_made_due_now(db: &TestDb) {
    let s = &db.store;
    let id = "vendor_order_E-1";
    let (ladder, jobs) = new_ladder(id, "E-1", &[("app_push", 0), ("whatsapp", 60), ("ivr", 180)]);
    s.start_ladder(ladder, jobs, NewEvent::new("ladder.started", t0())).await.unwrap();
    let key = |i: u32| format!("ladder:{id}:{i}");
    let event = |n: u32| NewEvent::new("escalated_now", at(10)).order("E-1").escalation(id).detail(json!({"step": n}));

    // Step 0 is sent; step 1 is the next pending one.
    assert!(matches!(s.claim_step(id, 0, t0()).await.unwrap(), StepClaim::Claimed(_)));
    assert_eq!(
        s.escalate_step(id, 0, &key(0), event(0), at(10)).await.unwrap(),
        Escalation::StepNotPending(StepState::Sending)
    );
    assert_eq!(
        s.escalate_step(id, 1, &key(1), event(1), at(10)).await.unwrap(),
        Escalation::Escalated { run_at: at(10) }
    );
    assert_eq!(s.job_by_key(&key(1)).await.unwrap().unwrap().run_at, at(10));
    let ladder = s.ladder(id).await.unwrap().unwrap();
    assert_eq!(ladder.steps[1].due_at, at(10), "the board shows it due now");
    assert_eq!(ladder.steps[2].due_at, at(180), "later steps keep their time");
    let events = s.events_for_order("E-1").await.unwrap();
    assert_eq!(events.iter().filter(|e| e.kind == "escalated_now").count(), 1);
    // Escalating again never makes it later.
    assert_eq!(
        s.escalate_step(id, 1, &key(1), event(1), at(20)).await.unwrap(),
        Escalation::Escalated { run_at: at(10) }
    );
    assert_eq!(s.escalate_step(id, 9, &key(9), event(9), at(20)).await.unwrap(), Escalation::NoSuchStep);
    assert_eq!(s.escalate_step("nope", 0, "nope", event(0), at(20)).await.unwrap(), Escalation::NotFound);

    // A step whose job a worker holds right now is not moved.
    let claimed = s.claim(&kinds(&["ladder.step"]), "w", 10, secs(30), at(20)).await.unwrap();
    assert!(claimed.iter().any(|j| j.key.as_deref() == Some(key(1).as_str())));
    assert_eq!(s.escalate_step(id, 1, &key(1), event(1), at(21)).await.unwrap(), Escalation::JobNotPending);

    s.stop_ladder(
        id,
        StopAction::Accept,
        "vendor:V-42",
        &format!("ladder:{id}"),
        NewEvent::new("ladder.stopped", at(30)),
        vec![],
        at(30),
    )
    .await
    .unwrap();
    assert_eq!(
        s.escalate_step(id, 2, &key(2), event(2), at(31)).await.unwrap(),
        Escalation::LadderFinished(LadderState::Stopped)
    );
    assert_eq!(s.job_by_key(&key(2)).await.unwrap().unwrap().state, JobState::Cancelled);
}

fn call(id: &str, order: &str) -> NewCall {
    NewCall {
        id: id.into(),
        purpose: "ivr".into(),
        order_id: Some(order.into()),
        escalation_id: None,
        party: Some("vendor:V-42".into()),
        to_masked: "+9198xxxxx210".into(),
        to: None,
        bridge_to: None,
    }
}

async fn the_board_lists_active_ladders_and_calls_newest_first(db: &TestDb) {
    let s = &db.store;
    for (n, offset) in [(1, 0), (2, 30), (3, 60)] {
        let id = format!("vendor_order_B-{n}");
        let (mut ladder, jobs) = new_ladder(&id, &format!("B-{n}"), &[("app_push", 0), ("ivr", 180)]);
        ladder.started_at = at(offset);
        s.start_ladder(ladder, jobs, NewEvent::new("ladder.started", at(offset))).await.unwrap();
    }
    s.stop_ladder(
        "vendor_order_B-2",
        StopAction::Cancel,
        "api",
        "ladder:vendor_order_B-2",
        NewEvent::new("ladder.stopped", at(70)),
        vec![],
        at(70),
    )
    .await
    .unwrap();
    let active = s.active_ladders(10).await.unwrap();
    let ids: Vec<&str> = active.iter().map(|l| l.escalation_id.as_str()).collect();
    assert_eq!(ids, ["vendor_order_B-3", "vendor_order_B-1"]);
    assert_eq!(active[0].steps.len(), 2, "each with its steps");
    assert_eq!(active[0].steps[1].channel.name(), "ivr");
    assert_eq!(s.active_ladders(1).await.unwrap().len(), 1);

    s.create_call(call("c1", "B-1"), None, at(0)).await.unwrap();
    s.create_call(call("c2", "B-3"), None, at(10)).await.unwrap();
    s.create_call(call("c3", "B-3"), None, at(20)).await.unwrap();
    s.update_call("c2", CallState::InProgress, Some("sid-2"), None, at(15)).await.unwrap();
    s.update_call("c3", CallState::Completed, Some("sid-3"), None, at(30)).await.unwrap();
    let calls = s.active_calls(t0(), 10).await.unwrap();
    let ids: Vec<(&str, CallState)> = calls.iter().map(|c| (c.id.as_str(), c.state)).collect();
    assert_eq!(ids, [("c2", CallState::InProgress), ("c1", CallState::Requested)], "newest first, ended ones left out");
    assert_eq!(s.active_calls(at(5), 10).await.unwrap().len(), 1, "older attempts are left out");
}

async fn analytics_count_calls_ladders_channels_and_voice_orders(db: &TestDb) {
    use mangwale_core::ladder::Channel;
    let s = &db.store;
    let minutes = Span::minutes;
    // t0 is half past an hour: the range's first hour begins 30 minutes earlier.
    let hour0 = t0() - minutes(30);

    // Outbound calls: two in the first hour (one refused), one in the next.
    s.create_call(call("o1", "A-1"), None, t0()).await.unwrap();
    s.create_call(call("o2", "A-1"), None, t0() + minutes(5)).await.unwrap();
    s.update_call("o2", CallState::NotPlaced, None, None, t0() + minutes(5)).await.unwrap();
    s.create_call(call("o3", "A-1"), None, t0() + minutes(40)).await.unwrap();
    // Inbound: a call to the IVR, a missed call, a call to a masked number.
    let caller = super::phone("+919876543210");
    let inbound = mangwale_store::InboundCall {
        call_sid: "CA-in".into(),
        phone: Some(caller.clone()),
        kind: mangwale_core::inbound::CallerKind::Customer,
        party_id: None,
        language: mangwale_core::Language::Hi,
        order_id: None,
        pending_orders: 0,
        settled: true,
        choice: None,
        started_at: t0() + minutes(1),
        updated_at: t0() + minutes(1),
        active_until: t0() + minutes(3),
        ended_at: None,
    };
    s.save_inbound_call(&inbound).await.unwrap();
    s.record_missed_call(
        super::missed("m1", &caller, 120),
        super::new_callback("cb1", 150),
        NewEvent::new("missed_call", at(120)),
        at(120),
    )
    .await
    .unwrap();
    s.masked_call_put(&mangwale_store::MaskedCall {
        key: "sid-masked".into(),
        direction: mangwale_store::MaskedCallDirection::Inbound,
        masked_number: super::phone("+918047112233"),
        session_id: None,
        order_id: None,
        caller_role: None,
        outcome: mangwale_store::MaskedCallOutcome::NoSession,
        digit_tries: 0,
        started_at: t0() + minutes(45),
        ended_at: None,
        duration_secs: None,
    })
    .await
    .unwrap();

    // Ladders: accepted in 20 s, rejected in 100 s, stopped by the API, one
    // that ran out, and one still running.
    let ladder = |n: u32, steps: &[(&str, i64)]| new_ladder(&format!("vendor_order_L-{n}"), &format!("L-{n}"), steps);
    for n in 1..=5 {
        let (l, jobs) = ladder(n, &[("app_push", 0), ("whatsapp", 60)]);
        s.start_ladder(l, jobs, NewEvent::new("ladder.started", t0())).await.unwrap();
    }
    let stop = |n: u32, action: StopAction, secs: i64| async move {
        let id = format!("vendor_order_L-{n}");
        let event = NewEvent::new("ladder.stopped", at(secs));
        s.stop_ladder(&id, action, "x", &format!("ladder:{id}"), event, vec![], at(secs)).await.unwrap();
    };
    let finish = |n: u32, index: u32, state: StepState| async move {
        let id = format!("vendor_order_L-{n}");
        s.claim_step(&id, index, t0()).await.unwrap();
        let result = mangwale_store::StepResult { state, provider_id: None, detail: None };
        s.finish_step(&id, index, result, NewEvent::new("ladder.step", at(1)), vec![], Default::default(), at(1))
            .await
            .unwrap();
    };
    finish(1, 0, StepState::Sent).await;
    stop(1, StopAction::Accept, 20).await;
    finish(2, 0, StepState::Failed).await;
    stop(2, StopAction::Reject, 100).await;
    finish(3, 0, StepState::Sent).await;
    stop(3, StopAction::Cancel, 500).await;
    finish(4, 0, StepState::Sent).await;
    finish(4, 1, StepState::Unknown).await;
    finish(5, 0, StepState::Skipped).await;

    // Voice: three sessions, two confirmed an order, one still has it.
    for (n, orders, status) in [
        (1, "[]", VoiceSessionStatus::Ended),
        (2, r#"[{"order_id":"V-1","cancelled":true}]"#, VoiceSessionStatus::Ended),
        (3, r#"[{"order_id":"V-2","cancelled":false}]"#, VoiceSessionStatus::Placed),
    ] {
        let session = VoiceSession {
            session_id: format!("CA-voice-{n}"),
            channel: VoiceChannel::Call,
            phone: None,
            dialog: format!(r#"{{"cart":[],"orders":{orders}}}"#),
            version: 1,
            status,
            resumable: false,
            last_turn: None,
            last_reply: None,
            created_at: t0() + minutes(n),
            updated_at: t0() + minutes(n),
        };
        assert!(s.create_voice_session(&session, None).await.unwrap());
    }

    let a = s.analytics(t0(), t0() + minutes(90)).await.unwrap();
    let hours: Vec<_> = a.calls_per_hour.iter().map(|h| (h.hour, h.outbound, h.inbound)).collect();
    assert_eq!(
        hours,
        vec![(hour0, 1, 2), (hour0 + minutes(60), 1, 1)],
        "every hour of the range, the refused call left out"
    );
    assert_eq!((a.ladders.accepted, a.ladders.rejected, a.ladders.stopped, a.ladders.no_response), (1, 1, 1, 1));
    let buckets: Vec<_> = a.response_seconds.clone();
    assert_eq!(buckets, vec![(Some(10), 0), (Some(30), 1), (Some(60), 0), (Some(120), 1), (Some(300), 0), (None, 0)]);
    let channels: Vec<_> = a.channels.iter().map(|c| (c.channel.as_str(), c.sent, c.succeeded, c.failed)).collect();
    assert_eq!(channels, vec![(Channel::AppPush.name(), 4, 3, 1), (Channel::WhatsApp.name(), 1, 0, 0)]);
    assert_eq!((a.voice.sessions, a.voice.confirmed, a.voice.ordered), (3, 2, 1));

    let quiet = s.analytics(t0() + minutes(600), t0() + minutes(660)).await.unwrap();
    assert_eq!(quiet.calls_per_hour.iter().map(|h| h.outbound + h.inbound).sum::<u64>(), 0);
    assert_eq!(quiet.calls_per_hour.len(), 2, "a range across an hour's start touches two hours");
    assert_eq!((quiet.ladders.accepted, quiet.voice.sessions), (0, 0));
    assert!(quiet.channels.is_empty());
}
