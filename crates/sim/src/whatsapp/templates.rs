//! The message templates the simulated WhatsApp Business Account has
//! approved.

use serde::{Deserialize, Serialize};

/// A template of the business account: what the simulator checks a send
/// against, and what `GET /{version}/{waba_id}/message_templates` lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovedTemplate {
    /// As created, matched exactly (`vendor_new_order`). Meta allows only
    /// `^[a-z0-9_]+$`; a send naming anything else is refused.
    pub name: String,
    /// Language codes it is approved in (`hi`, `en`, `mr`); a send in any
    /// other language is answered 132001, as Meta does.
    pub languages: Vec<String>,
    /// How many `{{n}}` variables the body has; a send with another count
    /// is answered 132000.
    pub body_params: usize,
    /// The labels of its quick-reply buttons, by index. A reply webhook
    /// carries the label as `button.text`. Labels are the same in every
    /// language (the simulator does not translate).
    pub buttons: Vec<String>,
    /// `utility`, `marketing` or `authentication`: shows as the
    /// conversation origin and pricing category of status webhooks.
    pub category: String,
    /// Meta's review status, in every language: `APPROVED` (sendable), or
    /// `PENDING`, `REJECTED`, `PAUSED`, `DISABLED` (a send is answered
    /// 132001, 132015 or 132016).
    #[serde(default = "approved")]
    pub status: String,
}

fn approved() -> String {
    "APPROVED".to_string()
}

/// Whether `name` is a template name Meta accepts: `^[a-z0-9_]+$`, at most
/// 512 characters.
pub fn valid_template_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 512
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl ApprovedTemplate {
    /// A utility template approved in Hindi, English and Marathi.
    pub fn new(name: &str, body_params: usize, buttons: &[&str]) -> Self {
        ApprovedTemplate {
            name: name.to_string(),
            languages: ["hi", "en", "mr"].map(str::to_string).to_vec(),
            body_params,
            buttons: buttons.iter().map(|b| b.to_string()).collect(),
            category: "utility".to_string(),
            status: approved(),
        }
    }

    /// The same template with another review status (`PENDING`, …).
    pub fn with_status(mut self, status: &str) -> Self {
        self.status = status.to_string();
        self
    }

    pub fn in_languages(mut self, languages: &[&str]) -> Self {
        self.languages = languages.iter().map(|l| l.to_string()).collect();
        self
    }

    pub fn approved_in(&self, language: &str) -> bool {
        self.languages.iter().any(|l| l == language)
    }
}

/// The templates of the incumbent's ladders, with the variables and buttons
/// the service's ladders send:
///
/// | template | body variables | quick replies |
/// |---|---|---|
/// | `vendor_new_order` | order id, amount, items | Accept, Reject |
/// | `vendor_ready_reminder` | order id, minutes remaining | Ready, 10 more minutes |
/// | `rider_assignment` | order id, pickup address, drop address, amount | Accept, Reject |
/// | `rider_address_updated` | order id, new address, map link | Confirm, Problem |
/// | `customer_status` | order id, status, minutes to arrival | — |
/// | `customer_delay` | order id, minutes of delay, reason | — |
/// | `rider_pickup` | order id, vendor name, vendor address, map link, items | — |
/// | `order_payment_link` | order id, amount, payment link | — |
pub fn default_templates() -> Vec<ApprovedTemplate> {
    vec![
        ApprovedTemplate::new("vendor_new_order", 3, &["Accept", "Reject"]),
        ApprovedTemplate::new("vendor_ready_reminder", 2, &["Ready", "10 more minutes"]),
        ApprovedTemplate::new("rider_assignment", 4, &["Accept", "Reject"]),
        ApprovedTemplate::new("rider_address_updated", 3, &["Confirm", "Problem"]),
        ApprovedTemplate::new("customer_status", 3, &[]),
        ApprovedTemplate::new("customer_delay", 3, &[]),
        ApprovedTemplate::new("rider_pickup", 5, &[]),
        ApprovedTemplate::new("order_payment_link", 3, &[]),
    ]
}
