//! Campaign outcomes on both backends: campaign calls and their ordinals,
//! forward-only moves of messages, retries, lookups by sid, figures.

use std::time::Duration;

use chrono::{DateTime, Utc};
use mangwale_core::Language;
use mangwale_core::campaign::{
    CampaignId, MessageChannel, MessageState, SuppressionSource, TemplateCategory, TemplateKey,
};
use mangwale_store::test_support::TestDb;
use mangwale_store::{MessageOutcome, MessageRef, NewCampaignCall, NewSuppression};

use super::campaign_support::{campaign_with, phone, t};

conformance!(
    campaign_calls_are_numbered_per_message_and_found_by_attempt,
    messages_move_only_forward_and_retries_requeue,
    campaign_figures_count_the_period,
);

async fn campaign(db: &TestDb, n: u32, recipients: u64) -> CampaignId {
    campaign_with(db, n, 1..=recipients, t(0)).await
}

fn call(attempt: &str, message: Option<(CampaignId, i64)>, at: DateTime<Utc>) -> NewCampaignCall {
    NewCampaignCall {
        attempt_id: attempt.into(),
        message,
        template: TemplateKey::parse("area_launch").unwrap(),
        category: TemplateCategory::Promotional,
        language: Language::Mr,
        phone: phone(1),
        text: "नमस्कार! Mangwale".into(),
        at,
    }
}

async fn campaign_calls_are_numbered_per_message_and_found_by_attempt(db: &TestDb) {
    let s = &db.store;
    let id = campaign(db, 1, 2).await;
    assert_eq!(s.latest_call_ordinal(&id, 1).await.unwrap(), None);
    let first = s.add_campaign_call(&call("a1", Some((id.clone(), 1)), t(1))).await.unwrap();
    assert_eq!(first.ordinal, 1);
    let second = s.add_campaign_call(&call("a2", Some((id.clone(), 1)), t(2))).await.unwrap();
    assert_eq!(second.ordinal, 2);
    let other = s.add_campaign_call(&call("a3", Some((id.clone(), 2)), t(3))).await.unwrap();
    assert_eq!(other.ordinal, 1, "per message");
    let single = s.add_campaign_call(&call("a4", None, t(4))).await.unwrap();
    assert_eq!((single.ordinal, single.message_ref()), (1, None));
    assert_eq!(s.latest_call_ordinal(&id, 1).await.unwrap(), Some(2));

    let found = s.campaign_call("a2").await.unwrap().unwrap();
    assert_eq!(found, second);
    assert_eq!(found.text, "नमस्कार! Mangwale");
    assert_eq!(found.language, Language::Mr);
    assert_eq!(found.category, TemplateCategory::Promotional);
    assert_eq!(found.message_ref(), Some(MessageRef { campaign: id.clone(), channel: MessageChannel::Voice, seq: 1 }));
    assert!(s.campaign_call("nope").await.unwrap().is_none());

    // A call Exotel refused is forgotten: the next call takes its ordinal.
    let refused = s.add_campaign_call(&call("a5", Some((id.clone(), 1)), t(5))).await.unwrap();
    assert_eq!(refused.ordinal, 3);
    s.forget_campaign_call("a5").await.unwrap();
    assert!(s.campaign_call("a5").await.unwrap().is_none());
    assert_eq!(s.latest_call_ordinal(&id, 1).await.unwrap(), Some(2));
    let third = s.add_campaign_call(&call("a6", Some((id.clone(), 1)), t(6))).await.unwrap();
    assert_eq!(third.ordinal, 3);
}

async fn messages_move_only_forward_and_retries_requeue(db: &TestDb) {
    use MessageState::*;
    let s = &db.store;
    let id = campaign(db, 2, 2).await;
    let lease = Duration::from_secs(60);
    let sms = s.claim_messages(&id, MessageChannel::Sms, t(1), lease, 10).await.unwrap();
    let m = &sms[0];
    let sent = MessageOutcome { state: Sent, provider_sid: Some("SM-1".into()), error: None };
    assert!(s.finish_message(&id, MessageChannel::Sms, m.seq, m.fence, &sent, t(2)).await.unwrap());
    let (found, state) = s.message_by_sid(MessageChannel::Sms, "SM-1").await.unwrap().unwrap();
    assert_eq!((found.seq, state), (m.seq, Sent));
    assert!(s.message_by_sid(MessageChannel::Voice, "SM-1").await.unwrap().is_none());

    assert!(s.move_message(&found, &[Sending, Sent], Delivered, None, None, t(3)).await.unwrap());
    assert!(!s.move_message(&found, &[Sending, Sent], Delivered, None, None, t(4)).await.unwrap(), "once");
    assert!(!s.move_message(&found, &[Sending, Sent], Failed, None, Some("late"), t(5)).await.unwrap());
    assert_eq!(s.message_by_sid(MessageChannel::Sms, "SM-1").await.unwrap().unwrap().1, Delivered);

    // A call: the callback may come before the sender records the sid.
    let voice = s.claim_messages(&id, MessageChannel::Voice, t(1), lease, 1).await.unwrap();
    let v = MessageRef { campaign: id.clone(), channel: MessageChannel::Voice, seq: voice[0].seq };
    assert!(s.move_message(&v, &[Sending, Sent], Answered, Some("CA-1"), None, t(2)).await.unwrap());
    let late = MessageOutcome { state: Sent, provider_sid: Some("CA-1".into()), error: None };
    assert!(!s.finish_message(&id, MessageChannel::Voice, v.seq, voice[0].fence, &late, t(3)).await.unwrap());
    assert_eq!(s.message_by_sid(MessageChannel::Voice, "CA-1").await.unwrap().unwrap().1, Answered);
    assert!(s.move_message(&v, &[Sending, Sent, Answered], Pressed1, Some("CA-1"), None, t(3)).await.unwrap());
    assert!(!s.move_message(&v, &[Sending, Sent], Answered, Some("CA-1"), None, t(4)).await.unwrap());

    // Busy: queued again, due at the retry's time, then claimed again.
    let other = s.claim_messages(&id, MessageChannel::Voice, t(1), lease, 1).await.unwrap();
    let o = MessageRef { campaign: id.clone(), channel: MessageChannel::Voice, seq: other[0].seq };
    assert!(s.retry_message(&o, &[Sending, Sent], t(1801), Some("CA-2"), "call 1: busy", t(2)).await.unwrap());
    assert!(!s.retry_message(&o, &[Sending, Sent], t(1801), Some("CA-2"), "call 1: busy", t(3)).await.unwrap(), "once");
    assert_eq!(s.message_by_sid(MessageChannel::Voice, "CA-2").await.unwrap().unwrap().1, Queued);
    assert_eq!(s.count_due(&id, MessageChannel::Voice, t(1800)).await.unwrap(), 0);
    assert_eq!(s.count_due(&id, MessageChannel::Voice, t(1801)).await.unwrap(), 1);
    let again = s.claim_messages(&id, MessageChannel::Voice, t(1801), lease, 1).await.unwrap();
    assert_eq!((again[0].seq, again[0].attempts), (o.seq, 2));
    let export = s.recipients_page(&id, 0, 10).await.unwrap();
    let status = export
        .iter()
        .find(|r| r.seq == o.seq)
        .unwrap()
        .messages
        .iter()
        .find(|m| m.channel == MessageChannel::Voice)
        .cloned()
        .unwrap();
    assert_eq!(status.last_error.as_deref(), Some("call 1: busy"));
}

async fn campaign_figures_count_the_period(db: &TestDb) {
    use MessageState::*;
    let s = &db.store;
    let id = campaign(db, 3, 3).await;
    let sms = s.claim_messages(&id, MessageChannel::Sms, t(10), Duration::from_secs(60), 10).await.unwrap();
    for (i, m) in sms.iter().enumerate() {
        let sent = MessageOutcome { state: Sent, provider_sid: Some(format!("SM{i}")), error: None };
        assert!(s.finish_message(&id, MessageChannel::Sms, m.seq, m.fence, &sent, t(20)).await.unwrap());
    }
    let first = MessageRef { campaign: id.clone(), channel: MessageChannel::Sms, seq: sms[0].seq };
    assert!(s.move_message(&first, &[Sent], Delivered, None, None, t(30)).await.unwrap());
    s.add_campaign_call(&call("f1", Some((id.clone(), 1)), t(25))).await.unwrap();
    let entry = |source, at| NewSuppression { phone: phone(2), source, note: None, actor: "test".into(), at };
    s.add_suppression(&entry(SuppressionSource::CallKey9, t(26))).await.unwrap();
    s.add_suppression(&entry(SuppressionSource::SmsStop, t(100))).await.unwrap();

    let figures = s.campaign_figures(t(15), t(50)).await.unwrap();
    assert_eq!(
        figures.messages,
        vec![(MessageChannel::Sms, Delivered, 1), (MessageChannel::Sms, Sent, 2)],
        "queued voice messages last changed at intake, before the period"
    );
    assert_eq!(figures.opt_outs, vec![(SuppressionSource::CallKey9, 1)]);
    assert_eq!(figures.calls, 1);
    let none = s.campaign_figures(t(200), t(300)).await.unwrap();
    assert!(none.messages.is_empty() && none.opt_outs.is_empty() && none.calls == 0);
}
