//! The message templates the simulated WhatsApp Business Account has
//! approved.

use serde::{Deserialize, Serialize};

/// An approved template: what the simulator checks a send against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovedTemplate {
    /// As approved, matched exactly (`Vendor_New_Order`).
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
        }
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
/// | `Vendor_New_Order` | order id, amount, items | Accept, Reject |
/// | `Vendor_Ready_Reminder` | order id, minutes remaining | Ready, 10 more minutes |
/// | `Rider_Assignment` | order id, pickup address, drop address, amount | Accept, Reject |
/// | `Rider_Address_Updated` | order id, new address, map link | Confirm, Problem |
/// | `Customer_Status` | order id, status, minutes to arrival | — |
/// | `Customer_Delay` | order id, minutes of delay, reason | — |
pub fn default_templates() -> Vec<ApprovedTemplate> {
    vec![
        ApprovedTemplate::new("Vendor_New_Order", 3, &["Accept", "Reject"]),
        ApprovedTemplate::new("Vendor_Ready_Reminder", 2, &["Ready", "10 more minutes"]),
        ApprovedTemplate::new("Rider_Assignment", 4, &["Accept", "Reject"]),
        ApprovedTemplate::new("Rider_Address_Updated", 3, &["Confirm", "Problem"]),
        ApprovedTemplate::new("Customer_Status", 3, &[]),
        ApprovedTemplate::new("Customer_Delay", 3, &[]),
    ]
}
