//! The campaign store on both backends.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use mangwale_core::E164;
use mangwale_core::Language;
use mangwale_core::campaign::{
    CampaignChannel, CampaignId, CampaignState, MessageChannel, MessageState, Pacing, TemplateBook, TemplateKey,
};
use mangwale_store::test_support::TestDb;
use mangwale_store::{CampaignFilter, Intake, MessageOutcome, NewCampaign, NewRecipient, Transition};

use super::campaign_support::t;

conformance!(
    campaigns_are_listed_newest_first_and_change_state_by_compare_and_set,
    two_replicas_never_both_start_a_campaign,
    recipients_are_deduplicated_and_get_one_message_per_channel,
    due_messages_are_claimed_once_and_only_the_latest_claim_records_an_outcome,
    cancelling_cancels_queued_messages_and_the_export_pages_in_order,
    custom_templates_are_kept_and_replaced,
);

fn new_campaign(n: u32, channel: CampaignChannel, at: DateTime<Utc>) -> NewCampaign {
    NewCampaign {
        id: CampaignId::new(at.timestamp_millis(), n),
        name: format!("Nashik wave {n}"),
        template: TemplateKey::parse(if n.is_multiple_of(2) { "diwali" } else { "area_launch" }).unwrap(),
        channel,
        language: Language::Hi,
        pacing: Pacing { sms_per_second: 20.0, calls_per_second: 2.5, max_concurrent_calls: 10 },
        caller_id: Some(E164::parse("+919800000001").unwrap()),
        target_audience: Some(r#"{"area":"Nashik"}"#.into()),
        schedule: None,
        start_at: None,
        created_at: at,
    }
}

fn recipient(n: u64) -> NewRecipient {
    let mut variables = BTreeMap::new();
    variables.insert("city".to_string(), "Nashik".to_string());
    NewRecipient {
        phone: E164::parse(&format!("+9198{n:08}")).unwrap(),
        name: Some(format!("R{n}")),
        language: n.is_multiple_of(3).then_some(Language::Mr),
        variables: if n.is_multiple_of(2) { variables } else { BTreeMap::new() },
    }
}

fn added(i: Intake) -> (u64, u64) {
    match i {
        Intake::Added { accepted, duplicates } => (accepted, duplicates),
        other => panic!("not added: {other:?}"),
    }
}

async fn campaigns_are_listed_newest_first_and_change_state_by_compare_and_set(db: &TestDb) {
    let s = &db.store;
    let a = s.create_campaign(&new_campaign(1, CampaignChannel::Sms, t(0))).await.unwrap();
    let b = s.create_campaign(&new_campaign(2, CampaignChannel::Both, t(1))).await.unwrap();
    assert_eq!(a.state, CampaignState::Created);
    assert_eq!(a.pacing.calls_per_second, 2.5);
    assert_eq!(a.target_audience.as_deref(), Some(r#"{"area":"Nashik"}"#));
    assert_eq!(s.campaign(&a.id).await.unwrap().unwrap(), a);
    let all = s.list_campaigns(&CampaignFilter::default(), None, 10).await.unwrap();
    assert_eq!(all.iter().map(|c| c.id.clone()).collect::<Vec<_>>(), vec![b.id.clone(), a.id.clone()]);
    let page2 = s.list_campaigns(&CampaignFilter::default(), Some(&b.id), 10).await.unwrap();
    assert_eq!(page2.len(), 1);
    let diwali = CampaignFilter { template: Some(TemplateKey::parse("diwali").unwrap()), state: None };
    assert_eq!(s.count_campaigns(&diwali).await.unwrap(), 1);

    let start = |at| s.transition_campaign(&a.id, &[CampaignState::Created], CampaignState::Running, None, at);
    let Transition::Done(running) = start(t(10)).await.unwrap() else { panic!("start refused") };
    assert_eq!((running.state, running.started_at), (CampaignState::Running, Some(t(10))));
    assert_eq!(start(t(11)).await.unwrap(), Transition::Refused(CampaignState::Running));
    let running_only = CampaignFilter { state: Some(CampaignState::Running), template: None };
    assert_eq!(s.count_campaigns(&running_only).await.unwrap(), 1);
    let paused = s
        .transition_campaign(
            &a.id,
            &[CampaignState::Running],
            CampaignState::Paused,
            Some("breaker: 60% failed"),
            t(20),
        )
        .await
        .unwrap();
    let Transition::Done(paused) = paused else { panic!("pause refused") };
    assert_eq!(paused.state_reason.as_deref(), Some("breaker: 60% failed"));
    assert_eq!(paused.paused_at, Some(t(20)));
    let Transition::Done(resumed) =
        s.transition_campaign(&a.id, &[CampaignState::Paused], CampaignState::Running, None, t(30)).await.unwrap()
    else {
        panic!("resume refused")
    };
    assert_eq!((resumed.started_at, resumed.state_reason), (Some(t(10)), None), "the first start is kept");
    let any = [CampaignState::Created, CampaignState::Running, CampaignState::Paused];
    let Transition::Done(cancelled) =
        s.transition_campaign(&a.id, &any, CampaignState::Cancelled, Some("operator"), t(40)).await.unwrap()
    else {
        panic!("cancel refused")
    };
    assert_eq!(cancelled.finished_at, Some(t(40)));
    assert_eq!(start(t(50)).await.unwrap(), Transition::Refused(CampaignState::Cancelled));
    let missing = CampaignId::new(1, 1);
    assert_eq!(
        s.transition_campaign(&missing, &any, CampaignState::Cancelled, None, t(50)).await.unwrap(),
        Transition::NoCampaign
    );
}

async fn two_replicas_never_both_start_a_campaign(db: &TestDb) {
    let c = db.store.create_campaign(&new_campaign(3, CampaignChannel::Voice, t(0))).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (store, id) = (db.store.clone(), c.id.clone());
        tasks.push(tokio::spawn(async move {
            store.transition_campaign(&id, &[CampaignState::Created], CampaignState::Running, None, t(i)).await.unwrap()
        }));
    }
    let mut done = 0;
    for task in tasks {
        if matches!(task.await.unwrap(), Transition::Done(_)) {
            done += 1;
        }
    }
    assert_eq!(done, 1);
}

async fn recipients_are_deduplicated_and_get_one_message_per_channel(db: &TestDb) {
    let s = &db.store;
    let c = s.create_campaign(&new_campaign(4, CampaignChannel::Both, t(0))).await.unwrap();
    let mut batch: Vec<_> = (0..450).map(recipient).collect();
    batch.push(recipient(7));
    assert_eq!(added(s.add_recipients(&c.id, batch, t(1)).await.unwrap()), (450, 1));
    let batch: Vec<_> = (440..460).map(recipient).collect();
    assert_eq!(added(s.add_recipients(&c.id, batch, t(2)).await.unwrap()), (10, 10));
    let c2 = s.campaign(&c.id).await.unwrap().unwrap();
    assert_eq!((c2.recipients, c2.duplicates), (460, 11));
    let mut counts = s.message_counts(&c.id).await.unwrap();
    counts.sort_by_key(|m| m.channel);
    assert_eq!(counts.len(), 2);
    for (m, ch) in counts.iter().zip([MessageChannel::Sms, MessageChannel::Voice]) {
        assert_eq!((m.channel, m.state, m.count), (ch, MessageState::Queued, 460));
    }
    // The same number may be in another campaign.
    let other = s.create_campaign(&new_campaign(5, CampaignChannel::Sms, t(0))).await.unwrap();
    assert_eq!(added(s.add_recipients(&other.id, vec![recipient(1)], t(3)).await.unwrap()), (1, 0));
    s.transition_campaign(&c.id, &[CampaignState::Created], CampaignState::Running, None, t(4)).await.unwrap();
    assert_eq!(
        s.add_recipients(&c.id, vec![recipient(999)], t(5)).await.unwrap(),
        Intake::Closed(CampaignState::Running)
    );
    s.transition_campaign(&c.id, &[CampaignState::Running], CampaignState::Paused, None, t(6)).await.unwrap();
    assert_eq!(added(s.add_recipients(&c.id, vec![recipient(999)], t(7)).await.unwrap()), (1, 0));
    assert_eq!(s.add_recipients(&CampaignId::new(1, 1), vec![recipient(1)], t(7)).await.unwrap(), Intake::NoCampaign);
}

async fn due_messages_are_claimed_once_and_only_the_latest_claim_records_an_outcome(db: &TestDb) {
    let s = &db.store;
    let c = s.create_campaign(&new_campaign(6, CampaignChannel::Sms, t(0))).await.unwrap();
    added(s.add_recipients(&c.id, (0..10).map(recipient).collect(), t(0)).await.unwrap());
    let lease = Duration::from_secs(60);
    assert!(s.claim_messages(&c.id, MessageChannel::Voice, t(1), lease, 5).await.unwrap().is_empty());
    let first = s.claim_messages(&c.id, MessageChannel::Sms, t(1), lease, 4).await.unwrap();
    assert_eq!(first.len(), 4);
    assert!(first.iter().all(|m| m.attempts == 1 && m.channel == MessageChannel::Sms));
    let m0 = &first[0];
    assert_eq!(m0.phone, recipient(0).phone);
    assert_eq!(m0.variables.get("city").map(String::as_str), Some("Nashik"));
    assert_eq!(m0.language, Some(Language::Mr));
    let second = s.claim_messages(&c.id, MessageChannel::Sms, t(1), lease, 100).await.unwrap();
    assert_eq!(second.len(), 6, "the rest, none twice");
    assert!(second.iter().all(|m| first.iter().all(|f| f.seq != m.seq)));
    assert_eq!(s.count_due(&c.id, MessageChannel::Sms, t(1)).await.unwrap(), 0);

    let sent = MessageOutcome { state: MessageState::Sent, provider_sid: Some("SM1".into()), error: None };
    assert!(!s.finish_message(&c.id, MessageChannel::Sms, m0.seq, m0.fence + 1, &sent, t(2)).await.unwrap());
    assert!(s.finish_message(&c.id, MessageChannel::Sms, m0.seq, m0.fence, &sent, t(2)).await.unwrap());
    assert!(!s.finish_message(&c.id, MessageChannel::Sms, m0.seq, m0.fence, &sent, t(2)).await.unwrap(), "once");
    let queued = MessageOutcome { state: MessageState::Queued, provider_sid: None, error: None };
    let m1 = &first[1];
    assert!(!s.finish_message(&c.id, MessageChannel::Sms, m1.seq, m1.fence, &queued, t(2)).await.unwrap());
    let suppressed = MessageOutcome { state: MessageState::Suppressed, provider_sid: None, error: None };
    assert!(s.finish_message(&c.id, MessageChannel::Sms, m1.seq, m1.fence, &suppressed, t(2)).await.unwrap());

    // A retry waits for its time.
    let m2 = &first[2];
    assert!(s.requeue_message(&c.id, MessageChannel::Sms, m2.seq, m2.fence, t(600), Some("busy"), t(2)).await.unwrap());
    assert_eq!(s.count_due(&c.id, MessageChannel::Sms, t(599)).await.unwrap(), 0);
    assert_eq!(s.count_due(&c.id, MessageChannel::Sms, t(600)).await.unwrap(), 1);

    // A sender that died: its lease runs out and another takes the message
    // over with a new fence; the old fence can no longer record.
    let m3 = &first[3];
    let retaken = s.claim_messages(&c.id, MessageChannel::Sms, t(61), lease, 100).await.unwrap();
    let again = retaken.iter().find(|m| m.seq == m3.seq).expect("the expired claim is taken again");
    assert_eq!(again.attempts, 2);
    assert!(again.fence > m3.fence);
    assert!(!s.finish_message(&c.id, MessageChannel::Sms, m3.seq, m3.fence, &sent, t(62)).await.unwrap());
    assert!(s.finish_message(&c.id, MessageChannel::Sms, m3.seq, again.fence, &sent, t(62)).await.unwrap());

    let counts: BTreeMap<&str, u64> =
        s.message_counts(&c.id).await.unwrap().iter().map(|m| (m.state.as_str(), m.count)).collect();
    assert_eq!(counts.get("sent"), Some(&2));
    assert_eq!(counts.get("suppressed"), Some(&1));
    assert_eq!(counts.get("queued"), Some(&1));
}

async fn cancelling_cancels_queued_messages_and_the_export_pages_in_order(db: &TestDb) {
    let s = &db.store;
    let c = s.create_campaign(&new_campaign(8, CampaignChannel::Both, t(0))).await.unwrap();
    added(s.add_recipients(&c.id, (0..25).map(recipient).collect(), t(0)).await.unwrap());
    let claimed = s.claim_messages(&c.id, MessageChannel::Voice, t(1), Duration::from_secs(60), 1).await.unwrap();
    let any = [CampaignState::Created, CampaignState::Running, CampaignState::Paused];
    s.transition_campaign(&c.id, &any, CampaignState::Cancelled, None, t(2)).await.unwrap();
    let counts: BTreeMap<(MessageChannel, &str), u64> =
        s.message_counts(&c.id).await.unwrap().iter().map(|m| ((m.channel, m.state.as_str()), m.count)).collect();
    assert_eq!(counts.get(&(MessageChannel::Sms, "cancelled")), Some(&25));
    assert_eq!(counts.get(&(MessageChannel::Voice, "cancelled")), Some(&24));
    assert_eq!(counts.get(&(MessageChannel::Voice, "sending")), Some(&1), "in flight: its sender finishes it");
    assert_eq!(s.cancel_queued(&c.id, t(3)).await.unwrap(), 0);

    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page = s.recipients_page(&c.id, after, 10).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.seq;
        for r in &page {
            assert_eq!(r.messages.len(), 2);
            assert_eq!(r.messages[0].channel, MessageChannel::Sms);
        }
        seen.extend(page);
    }
    assert_eq!(seen.len(), 25);
    assert!(seen.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(seen[0].phone, recipient(0).phone);
    assert_eq!(seen[0].name.as_deref(), Some("R0"));
    let claimed_one = seen.iter().find(|r| r.seq == claimed[0].seq).unwrap();
    assert_eq!(claimed_one.messages[1].state, MessageState::Sending);
    assert_eq!(claimed_one.messages[1].attempts, 1);
}

async fn custom_templates_are_kept_and_replaced(db: &TestDb) {
    let s = &db.store;
    let book = TemplateBook::defaults();
    let mut t1 = book.get(&TemplateKey::parse("diwali").unwrap()).unwrap().clone();
    t1.key = TemplateKey::parse("holi_offer").unwrap();
    t1.built_in = false;
    s.put_custom_template(&t1, t(0)).await.unwrap();
    assert_eq!(s.custom_templates().await.unwrap(), vec![t1.clone()]);
    t1.description = "Holi, updated".into();
    s.put_custom_template(&t1, t(1)).await.unwrap();
    assert_eq!(s.custom_templates().await.unwrap(), vec![t1]);
}
