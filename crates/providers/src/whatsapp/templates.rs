//! The business account's message templates, as Meta lists them, and the
//! check of ours against them.
//!
//! `GET /{version}/{waba_id}/message_templates?fields=name,language,status`
//! answers `{"data": [{"name", "language", "status", "id"}, …], "paging":
//! {"cursors": {"before", "after"}, "next"}}`, one entry per template and
//! language (Meta's "Template management" guide). Only an `APPROVED`
//! template can be sent; `PENDING`, `REJECTED`, `PAUSED`, `DISABLED`, … are
//! answered 132001 or 132015/132016.

use std::fmt;

use serde_json::Value;

/// One template in one language, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedTemplate {
    pub name: String,
    /// `en`, `en_US`, `hi`, …
    pub language: String,
    /// `APPROVED`, `PENDING`, `REJECTED`, `PAUSED`, `DISABLED`, …
    pub status: String,
}

/// One page of the listing.
pub(crate) struct TemplatePage {
    pub templates: Vec<ListedTemplate>,
    /// The cursor of the next page, when Meta says there is one.
    pub after: Option<String>,
}

pub(crate) fn parse_template_page(body: &[u8]) -> Result<TemplatePage, String> {
    let root: Value = serde_json::from_slice(body).map_err(|e| format!("the answer is not JSON: {e}"))?;
    let data = root.get("data").and_then(Value::as_array).ok_or("the answer has no data array")?;
    let templates = data
        .iter()
        .filter_map(|t| {
            let text = |key: &str| t.get(key).and_then(Value::as_str).map(str::to_string);
            Some(ListedTemplate { name: text("name")?, language: text("language")?, status: text("status")? })
        })
        .collect();
    let paging = root.get("paging");
    let after = paging
        .filter(|p| p.get("next").and_then(Value::as_str).is_some_and(|n| !n.is_empty()))
        .and_then(|p| p.pointer("/cursors/after"))
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .map(str::to_string);
    Ok(TemplatePage { templates, after })
}

/// Why one of our templates cannot be sent in one language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateProblem {
    /// No template of that name in that language.
    Missing { name: String, language: String },
    /// Listed, but not `APPROVED` (`status` says what it is).
    NotApproved { name: String, language: String, status: String },
}

impl fmt::Display for TemplateProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateProblem::Missing { name, language } => {
                write!(f, "template {name} does not exist in language {language}")
            }
            TemplateProblem::NotApproved { name, language, status } => {
                write!(f, "template {name} in language {language} is {status}, not APPROVED")
            }
        }
    }
}

/// Which of `wanted` (template name, language code) cannot be sent, by the
/// business account's listing; empty when all are approved.
pub fn check_templates<'a>(
    wanted: impl IntoIterator<Item = (&'a str, &'a str)>,
    listed: &[ListedTemplate],
) -> Vec<TemplateProblem> {
    let mut problems = Vec::new();
    for (name, language) in wanted {
        let found = listed.iter().find(|t| t.name == name && t.language == language);
        let (name, language) = (name.to_string(), language.to_string());
        match found {
            None => problems.push(TemplateProblem::Missing { name, language }),
            Some(t) if t.status != "APPROVED" => {
                problems.push(TemplateProblem::NotApproved { name, language, status: t.status.clone() })
            }
            Some(_) => {}
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_metas_listing_and_its_paging() {
        let page = parse_template_page(
            br#"{"data": [
                {"name": "vendor_new_order", "language": "hi", "status": "APPROVED", "id": "1"},
                {"name": "vendor_new_order", "language": "en_US", "status": "PENDING", "id": "2"},
                {"name": "broken"}
            ], "paging": {"cursors": {"before": "QVFI", "after": "QVFIUk"}, "next": "https://graph.facebook.com/x"}}"#,
        )
        .unwrap();
        assert_eq!(page.templates.len(), 2);
        assert_eq!(page.after.as_deref(), Some("QVFIUk"));
        let last =
            parse_template_page(br#"{"data": [], "paging": {"cursors": {"before": "a", "after": "b"}}}"#).unwrap();
        assert_eq!(last.after, None, "no next: the last page");
        assert!(parse_template_page(b"{}").is_err());
    }

    #[test]
    fn names_what_is_missing_or_not_approved() {
        let listed = [
            ListedTemplate { name: "customer_status".into(), language: "en".into(), status: "APPROVED".into() },
            ListedTemplate { name: "customer_delay".into(), language: "en".into(), status: "REJECTED".into() },
        ];
        let problems = check_templates(
            [("customer_status", "en"), ("customer_status", "en_US"), ("customer_delay", "en")],
            &listed,
        );
        assert_eq!(problems.len(), 2);
        assert_eq!(problems[0].to_string(), "template customer_status does not exist in language en_US");
        assert_eq!(problems[1].to_string(), "template customer_delay in language en is REJECTED, not APPROVED");
    }
}
