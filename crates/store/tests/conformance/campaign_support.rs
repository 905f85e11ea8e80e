//! What the campaign suites share: their time line and a plain campaign
//! with recipients.

use chrono::{DateTime, Utc};
use mangwale_core::campaign::{CampaignChannel, CampaignId, Pacing, TemplateKey};
use mangwale_core::{E164, Language};
use mangwale_store::test_support::TestDb;
use mangwale_store::{NewCampaign, NewRecipient};

/// `secs` seconds into the suites' time line.
pub fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_780_000_000 + secs, 0).unwrap()
}

/// Recipient `n`'s phone, `+9197` and `n` in eight digits.
pub fn phone(n: u64) -> E164 {
    E164::parse(&format!("+9197{n:08}")).unwrap()
}

/// Campaign `n` on both channels, created at `t(0)`, with the recipients
/// `phone(i)` for each `i` of `recipients` added at `added_at`.
pub async fn campaign_with(
    db: &TestDb,
    n: u32,
    recipients: impl IntoIterator<Item = u64>,
    added_at: DateTime<Utc>,
) -> CampaignId {
    let s = &db.store;
    let c = s
        .create_campaign(&NewCampaign {
            id: CampaignId::new(t(0).timestamp_millis(), n),
            name: format!("wave {n}"),
            template: TemplateKey::parse("area_launch").unwrap(),
            channel: CampaignChannel::Both,
            language: Language::Hi,
            pacing: Pacing { sms_per_second: 10.0, calls_per_second: 2.0, max_concurrent_calls: 5 },
            caller_id: None,
            target_audience: None,
            schedule: None,
            start_at: None,
            created_at: t(0),
        })
        .await
        .unwrap();
    let batch = recipients
        .into_iter()
        .map(|i| NewRecipient { phone: phone(i), name: None, language: None, variables: Default::default() })
        .collect();
    s.add_recipients(&c.id, batch, added_at).await.unwrap();
    c.id
}
