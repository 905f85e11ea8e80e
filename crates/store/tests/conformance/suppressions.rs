//! The suppression ledger, on both backends.

use chrono::Duration;
use mangwale_core::E164;
use mangwale_core::campaign::{SuppressionSource, TemplateCategory};
use mangwale_store::suppressions::suppression_state;
use mangwale_store::test_support::TestDb;
use mangwale_store::{NewSuppression, SuppressionAction, SuppressionFilter};

conformance!(
    suppressions_are_appended_once_per_source_and_lifted_by_a_removal_entry,
    suppressions_are_checked_in_batches_listed_in_pages_and_counted,
);

fn phone(n: u32) -> E164 {
    E164::parse(&format!("+9198{n:08}")).unwrap()
}

fn entry(n: u32, source: SuppressionSource, at: chrono::DateTime<chrono::Utc>) -> NewSuppression {
    NewSuppression { phone: phone(n), source, note: Some(format!("note {n}")), actor: "test".into(), at }
}

async fn suppressions_are_appended_once_per_source_and_lifted_by_a_removal_entry(db: &TestDb) {
    let s = db.store.as_ref();
    let t0 = super::t0();
    let a = phone(1);
    assert!(suppression_state(s, &a).await.unwrap().is_empty());

    let first = s.add_suppression(&entry(1, SuppressionSource::ExotelDnd, t0)).await.unwrap().expect("written");
    assert_eq!((first.action, first.source, first.at), (SuppressionAction::Add, SuppressionSource::ExotelDnd, t0));
    assert!(
        s.add_suppression(&entry(1, SuppressionSource::ExotelDnd, t0 + Duration::minutes(1))).await.unwrap().is_none(),
        "a second DND report of a number in force adds nothing"
    );
    s.add_suppression(&entry(1, SuppressionSource::SmsStop, t0 + Duration::minutes(2))).await.unwrap().unwrap();

    let state = suppression_state(s, &a).await.unwrap();
    assert_eq!(state.active.len(), 2);
    let promo = state.blocking(TemplateCategory::Promotional).unwrap();
    assert_eq!((promo.source, promo.since), (SuppressionSource::ExotelDnd, t0));
    // DND blocks promotional traffic only; the STOP blocks explicit service messages too.
    let explicit = state.blocking(TemplateCategory::ServiceExplicit).unwrap();
    assert_eq!(explicit.source, SuppressionSource::SmsStop);
    assert_eq!(state.blocking(TemplateCategory::ServiceImplicit), None);

    let removed = s
        .remove_suppression(&a, SuppressionSource::Api, Some("asked to come back"), "ops", t0 + Duration::hours(1))
        .await
        .unwrap()
        .expect("a removal entry");
    assert_eq!(removed.action, SuppressionAction::Remove);
    assert!(suppression_state(s, &a).await.unwrap().is_empty(), "the removal lifts every earlier entry");
    assert!(
        s.remove_suppression(&a, SuppressionSource::Api, None, "ops", t0 + Duration::hours(2)).await.unwrap().is_none(),
        "nothing to lift: nothing written"
    );

    // A STOP after the removal is in force again, from its own time.
    let later = t0 + Duration::hours(3);
    s.add_suppression(&entry(1, SuppressionSource::WhatsappStop, later)).await.unwrap().unwrap();
    let state = suppression_state(s, &a).await.unwrap();
    assert_eq!(
        state.blocking(TemplateCategory::Promotional).map(|b| (b.source, b.since)),
        Some((SuppressionSource::WhatsappStop, later))
    );

    // Nothing was deleted: the whole history is in the ledger.
    let all = s
        .suppression_entries(&SuppressionFilter { phone: Some(a.clone()), limit: 100, ..Default::default() })
        .await
        .unwrap();
    let history: Vec<_> = all.iter().rev().map(|e| (e.action, e.source)).collect();
    assert_eq!(
        history,
        [
            (SuppressionAction::Add, SuppressionSource::ExotelDnd),
            (SuppressionAction::Add, SuppressionSource::SmsStop),
            (SuppressionAction::Remove, SuppressionSource::Api),
            (SuppressionAction::Add, SuppressionSource::WhatsappStop),
        ]
    );
    assert_eq!(all[1].note.as_deref(), Some("asked to come back"));
    assert_eq!(all[1].actor, "ops");
}

async fn suppressions_are_checked_in_batches_listed_in_pages_and_counted(db: &TestDb) {
    let s = db.store.as_ref();
    let t0 = super::t0();
    // More numbers than one query asks about.
    let list: Vec<NewSuppression> = (0..1200).map(|n| entry(n, SuppressionSource::ScrubList, t0)).collect();
    assert_eq!(s.add_suppressions(&list).await.unwrap(), 1200);
    assert_eq!(s.add_suppressions(&list[..10]).await.unwrap(), 0, "a re-imported list adds nothing");
    s.add_suppression(&entry(5, SuppressionSource::Api, t0)).await.unwrap().unwrap();
    s.add_suppression(&entry(5000, SuppressionSource::MissedCall, t0)).await.unwrap().unwrap();
    s.remove_suppression(&phone(7), SuppressionSource::Api, None, "ops", t0).await.unwrap().unwrap();

    let asked: Vec<E164> = (0..1300).map(phone).chain([phone(5000)]).collect();
    let states = s.suppression_states(&asked).await.unwrap();
    assert_eq!(states.len(), 1200, "1199 listed numbers in force, and the missed caller");
    assert!(!states.contains_key(&phone(7)) && !states.contains_key(&phone(1250)));
    assert_eq!(states[&phone(5)].active.len(), 2);
    assert_eq!(
        states[&phone(5000)].blocking(TemplateCategory::Promotional).unwrap().source,
        SuppressionSource::MissedCall
    );

    let counts = s.suppression_counts().await.unwrap();
    assert_eq!(counts.numbers, 1200);
    assert_eq!(
        counts.by_source,
        [(SuppressionSource::Api, 1), (SuppressionSource::MissedCall, 1), (SuppressionSource::ScrubList, 1199)]
    );

    // Pages, newest first, by cursor; filtered by source.
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = s
            .suppression_entries(&SuppressionFilter {
                source: Some(SuppressionSource::ScrubList),
                before_id: before,
                limit: 500,
                ..Default::default()
            })
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        before = page.last().map(|e| e.id);
        seen.extend(page.into_iter().map(|e| e.id));
    }
    assert_eq!(seen.len(), 1200);
    assert!(seen.windows(2).all(|w| w[0] > w[1]));
    let api = s
        .suppression_entries(&SuppressionFilter {
            source: Some(SuppressionSource::Api),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(api.len(), 2, "the operator's entry and the removal came through the API");
}
