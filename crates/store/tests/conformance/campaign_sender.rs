//! The campaign sender's store on both backends: shared pacing limiters,
//! breaker records, and its questions about messages and calls.

use std::time::Duration;

use chrono::{DateTime, Utc};
use mangwale_core::campaign::{CampaignId, CampaignState, MessageChannel, MessageState};
use mangwale_core::campaign_send::{grant_slots, interval_micros};
use mangwale_store::test_support::TestDb;
use mangwale_store::{ConnectOptions, MessageOutcome, NewCall, Rate, connect};

use super::campaign_support::{campaign_with, t};

conformance!(
    replicas_share_a_limiter_and_never_take_more_than_its_rate,
    unused_slots_are_given_back_only_if_nobody_took_one_since,
    the_breaker_record_keeps_the_last_sends_and_a_trip_empties_it,
    the_sender_sees_unfinished_messages_open_calls_and_sids,
);

fn at_micros(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(1_780_000_000_000_000 + us).unwrap()
}

async fn replicas_share_a_limiter_and_never_take_more_than_its_rate(db: &TestDb) {
    let other = connect(&db.url, &ConnectOptions { max_connections: 4, migrate: false }).await.unwrap();
    // 200 a minute, up to a second ahead.
    let rate = Rate { interval: 300_000, tolerance: 1_000_000 };
    let mut taken: Vec<(i64, u32)> = Vec::new();
    // Two replicas reserving side by side, every 100 ms for a minute.
    for tick in 0..600i64 {
        let now = at_micros(tick * 100_000);
        let (a, b) = tokio::join!(
            db.store.reserve_slots("exotel:voice", rate, 5, now),
            other.reserve_slots("exotel:voice", rate, 5, now)
        );
        for g in [a.unwrap(), b.unwrap()] {
            if g.granted > 0 {
                taken.push((tick * 100_000, g.granted));
            }
        }
    }
    let total: u32 = taken.iter().map(|(_, n)| n).sum();
    // 60 s at 300 ms; a new limiter's schedule starts a second ahead, so
    // there is no head start: 200 (GCRA's bound would allow 204).
    assert!((200..=204).contains(&total), "{total} in a minute");
    // A limiter not seen before starts open.
    let fresh = db.store.reserve_slots("campaign:x:sms", Rate { interval: 100_000, tolerance: 0 }, 5, t(0)).await;
    assert_eq!(fresh.unwrap().granted, 1);
    other.close().await;
}

async fn unused_slots_are_given_back_only_if_nobody_took_one_since(db: &TestDb) {
    let s = &db.store;
    let rate = Rate { interval: interval_micros(10.0), tolerance: 1_000_000 };
    // Used before, idle since: a second's worth is open (a new limiter
    // would start a second ahead, with one slot).
    let first = s.reserve_slots("campaign:a:sms", rate, 8, t(-10)).await.unwrap();
    assert_eq!(first.granted, 1, "a new limiter gives one slot, no burst");
    let g = s.reserve_slots("campaign:a:sms", rate, 8, t(0)).await.unwrap();
    assert_eq!(g.granted, 8);
    assert!(s.return_slots("campaign:a:sms", rate, &g, 3).await.unwrap());
    let again = s.reserve_slots("campaign:a:sms", rate, 100, t(0)).await.unwrap();
    assert_eq!(again.granted, 6, "the three given back and what is left of the second: 11 in all");
    assert_eq!(again.tat, grant_slots(g.tat - 300_000, t(0).timestamp_micros(), rate.interval, 1_000_000, 100).tat);
    assert!(!s.return_slots("campaign:a:sms", rate, &g, 3).await.unwrap(), "someone took slots since");
    // A forced slot pushes the paced ones back.
    s.force_slot("campaign:b:voice", rate, t(10)).await.unwrap();
    let after = s.reserve_slots("campaign:b:voice", Rate { tolerance: 0, ..rate }, 5, t(10)).await.unwrap();
    assert_eq!(after.granted, 0);
    assert_eq!(after.first, t(10).timestamp_micros() + rate.interval);
}

async fn the_breaker_record_keeps_the_last_sends_and_a_trip_empties_it(db: &TestDb) {
    let s = &db.store;
    let id = CampaignId::new(t(0).timestamp_millis(), 1);
    assert_eq!(s.breaker(&id).await.unwrap(), None);
    assert_eq!(s.record_sends(&id, "1101", 5, t(1)).await.unwrap(), "1101");
    assert_eq!(s.record_sends(&id, "000", 5, t(2)).await.unwrap(), "01000");
    assert_eq!(s.record_sends(&id, "1111111", 5, t(3)).await.unwrap(), "11111");
    s.trip_breaker(&id, "breaker: 3 of the last 5 sends failed", t(4)).await.unwrap();
    let record = s.breaker(&id).await.unwrap().unwrap();
    assert_eq!(record.recent, "");
    assert_eq!(record.tripped_at, Some(t(4)));
    assert_eq!(record.reason.as_deref(), Some("breaker: 3 of the last 5 sends failed"));
    assert_eq!(s.record_sends(&id, "0", 5, t(5)).await.unwrap(), "0");
}

async fn the_sender_sees_unfinished_messages_open_calls_and_sids(db: &TestDb) {
    let s = &db.store;
    let id = campaign_with(db, 7, 0..2, t(1)).await;
    s.transition_campaign(&id, &[CampaignState::Created], CampaignState::Running, None, t(2)).await.unwrap();
    assert!(s.has_unfinished_messages(&id).await.unwrap());
    assert_eq!(s.next_message_at(&id, MessageChannel::Sms).await.unwrap(), Some(t(1)));

    let lease = Duration::from_secs(300);
    let sms = s.claim_messages(&id, MessageChannel::Sms, t(3), lease, 1).await.unwrap();
    assert_eq!(s.next_message_at(&id, MessageChannel::Sms).await.unwrap(), Some(t(1)), "the other is queued");
    let sent = MessageOutcome { state: MessageState::Sent, provider_sid: Some("SM1".into()), error: None };
    assert!(s.finish_message(&id, MessageChannel::Sms, sms[0].seq, sms[0].fence, &sent, t(4)).await.unwrap());
    let seqs = [sms[0].seq, sms[0].seq + 1];
    let sids = s.provider_sids(&id, MessageChannel::Sms, &seqs).await.unwrap();
    assert_eq!(sids.len(), 1);
    assert_eq!(sids[&sms[0].seq], "SM1");

    // Calls: one open of this campaign, one over, one of another campaign.
    for (i, (party, state)) in [
        (format!("campaign:{}:1", id), None),
        (format!("campaign:{}:2", id), Some(mangwale_store::CallState::Completed)),
        (format!("campaign:{}0:1", id), None),
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("att{i}");
        let call = NewCall {
            id: id.clone(),
            purpose: "campaign".into(),
            order_id: None,
            escalation_id: None,
            party: Some(party),
            to_masked: "+9197xxxxx000".into(),
            to: None,
            bridge_to: None,
        };
        s.create_call(call, None, t(5)).await.unwrap();
        s.update_call(&id, mangwale_store::CallState::Placed, Some(&format!("CA{i}")), None, t(5)).await.unwrap();
        if let Some(state) = state {
            s.update_call(&id, state, None, None, t(6)).await.unwrap();
        }
    }
    assert_eq!(s.campaign_calls_in_flight(&id).await.unwrap(), 1);

    s.transition_campaign(&id, &[CampaignState::Running], CampaignState::Cancelled, None, t(7)).await.unwrap();
    assert!(!s.has_unfinished_messages(&id).await.unwrap(), "every queued message is cancelled");
    assert_eq!(s.next_message_at(&id, MessageChannel::Voice).await.unwrap(), None);
}
