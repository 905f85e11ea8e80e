//! The flows contract, `flows/exotel-flows.toml`: typed definitions of our
//! Exotel call flows (App Bazaar applets and how they connect), parsed and
//! checked once so the flow engine can trust them.
//!
//! Checks on load: flow ids and applet ids are unique, `start` and every
//! referenced applet (`next`, `no_input`, `on_302`, switch cases and
//! `default`) exist, each applet has exactly the fields its type uses, URLs
//! are relative to `PUBLIC_BASE_URL` and carry no `token`, every applet is
//! reachable from `start` and can reach a `hangup`, and a `switch` is only
//! entered from a `passthru` (the only applet whose answer it can read).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The repository's flows file, embedded at compile time.
pub const REPOSITORY_FLOWS_TOML: &str = include_str!("../../../../flows/exotel-flows.toml");

/// Why a flows file was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlowsError {
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
    #[error("not a valid flows file: {0}")]
    Syntax(String),
    /// Every problem found, each naming the flow and applet.
    #[error("invalid flows: {}", .0.join("; "))]
    Invalid(Vec<String>),
}

/// Whether Exotel starts the flow by calling out (`Calls/connect` with `Url`)
/// or when someone calls one of our ExoPhones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowDirection {
    Outbound,
    Incoming,
}

/// The applet types of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppletType {
    Greeting,
    Gather,
    Passthru,
    Switch,
    Connect,
    Voicebot,
    Record,
    Hangup,
}

impl AppletType {
    pub fn as_str(self) -> &'static str {
        match self {
            AppletType::Greeting => "greeting",
            AppletType::Gather => "gather",
            AppletType::Passthru => "passthru",
            AppletType::Switch => "switch",
            AppletType::Connect => "connect",
            AppletType::Voicebot => "voicebot",
            AppletType::Record => "record",
            AppletType::Hangup => "hangup",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "greeting" => AppletType::Greeting,
            "gather" => AppletType::Gather,
            "passthru" => AppletType::Passthru,
            "switch" => AppletType::Switch,
            "connect" => AppletType::Connect,
            "voicebot" => AppletType::Voicebot,
            "record" => AppletType::Record,
            "hangup" => AppletType::Hangup,
            _ => return None,
        })
    }
}

impl fmt::Display for AppletType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an applet does and where the flow goes after it. URLs are relative
/// to the service's base URL and carry no token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AppletKind {
    /// HEAD, then GET `url`; speak the `text/plain` answer.
    Greeting {
        url: String,
        next: String,
    },
    /// GET `url` for the Gather JSON; `next` with digits, or `no_input`
    /// (`next` when absent) after the repeats.
    Gather {
        url: String,
        next: String,
        no_input: Option<String>,
    },
    /// GET `url`: 200 → `next`, 302 → `on_302` (the call ends when absent).
    Passthru {
        url: String,
        next: String,
        on_302: Option<String>,
    },
    /// Routes on the preceding passthru's `{"select": "<case>"}`.
    Switch {
        cases: BTreeMap<String, String>,
        default: String,
    },
    /// GET `url` for the Connect JSON and dial its destination.
    Connect {
        url: String,
        next: String,
    },
    /// A bidirectional stream to `url` (http → ws).
    Voicebot {
        url: String,
        next: String,
    },
    /// Records the caller (after a beep) until they fall silent or
    /// `max_length` seconds pass; the next applet gets `RecordingUrl`.
    Record {
        next: String,
        max_length: u32,
    },
    Hangup,
}

/// A Record applet's longest recording when the file names none.
pub const DEFAULT_RECORD_MAX_LENGTH: u32 = 60;

/// One applet of a flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Applet {
    pub id: String,
    #[serde(flatten)]
    pub kind: AppletKind,
}

impl Applet {
    pub fn applet_type(&self) -> AppletType {
        match self.kind {
            AppletKind::Greeting { .. } => AppletType::Greeting,
            AppletKind::Gather { .. } => AppletType::Gather,
            AppletKind::Passthru { .. } => AppletType::Passthru,
            AppletKind::Switch { .. } => AppletType::Switch,
            AppletKind::Connect { .. } => AppletType::Connect,
            AppletKind::Voicebot { .. } => AppletType::Voicebot,
            AppletKind::Record { .. } => AppletType::Record,
            AppletKind::Hangup => AppletType::Hangup,
        }
    }

    /// The URL Exotel calls, if the applet calls one.
    pub fn url(&self) -> Option<&str> {
        match &self.kind {
            AppletKind::Greeting { url, .. }
            | AppletKind::Gather { url, .. }
            | AppletKind::Passthru { url, .. }
            | AppletKind::Connect { url, .. }
            | AppletKind::Voicebot { url, .. } => Some(url),
            AppletKind::Switch { .. } | AppletKind::Record { .. } | AppletKind::Hangup => None,
        }
    }

    /// Every applet id this applet can continue to.
    pub fn successors(&self) -> Vec<&str> {
        match &self.kind {
            AppletKind::Greeting { next, .. }
            | AppletKind::Connect { next, .. }
            | AppletKind::Voicebot { next, .. }
            | AppletKind::Record { next, .. } => {
                vec![next]
            }
            AppletKind::Gather { next, no_input, .. } => {
                std::iter::once(next).chain(no_input).map(String::as_str).collect()
            }
            AppletKind::Passthru { next, on_302, .. } => {
                std::iter::once(next).chain(on_302).map(String::as_str).collect()
            }
            AppletKind::Switch { cases, default } => {
                cases.values().chain(std::iter::once(default)).map(String::as_str).collect()
            }
            AppletKind::Hangup => Vec::new(),
        }
    }
}

/// One flow of the contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowDef {
    pub id: String,
    pub title: String,
    pub direction: FlowDirection,
    /// The configuration variable naming the ExoPhone the flow shows or answers on.
    pub caller_id: String,
    pub purpose: String,
    /// The first applet's id.
    pub start: String,
    pub applets: Vec<Applet>,
}

impl FlowDef {
    pub fn applet(&self, id: &str) -> Option<&Applet> {
        self.applets.iter().find(|a| a.id == id)
    }

    pub fn has_applet(&self, id: &str) -> bool {
        self.applet(id).is_some()
    }
}

/// Every flow of a flows file, checked (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowDefinitions {
    flows: Vec<FlowDef>,
}

impl FlowDefinitions {
    /// The repository's `flows/exotel-flows.toml` (embedded at build time).
    pub fn repository() -> Result<FlowDefinitions, FlowsError> {
        FlowDefinitions::from_toml(REPOSITORY_FLOWS_TOML)
    }

    /// Reads and checks a flows file.
    pub fn load(path: impl AsRef<Path>) -> Result<FlowDefinitions, FlowsError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| FlowsError::Read { path: path.display().to_string(), message: e.to_string() })?;
        FlowDefinitions::from_toml(&text)
    }

    /// Parses and checks flows written in the contract's TOML format.
    pub fn from_toml(text: &str) -> Result<FlowDefinitions, FlowsError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| FlowsError::Syntax(e.to_string()))?;
        let mut problems = Vec::new();
        let mut flows = Vec::new();
        let mut seen = BTreeSet::new();
        for raw_flow in raw.flows {
            if !seen.insert(raw_flow.id.clone()) {
                problems.push(format!("flow '{}' is defined twice", raw_flow.id));
            }
            if let Some(flow) = convert_flow(raw_flow, &mut problems) {
                check_flow(&flow, &mut problems);
                flows.push(flow);
            }
        }
        if flows.is_empty() && problems.is_empty() {
            problems.push("the file defines no flow".to_string());
        }
        if problems.is_empty() { Ok(FlowDefinitions { flows }) } else { Err(FlowsError::Invalid(problems)) }
    }

    pub fn flows(&self) -> &[FlowDef] {
        &self.flows
    }

    pub fn flow(&self, id: &str) -> Option<&FlowDef> {
        self.flows.iter().find(|f| f.id == id)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    flows: Vec<RawFlow>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFlow {
    id: String,
    title: String,
    direction: FlowDirection,
    caller_id: String,
    #[serde(default)]
    purpose: String,
    start: String,
    #[serde(default)]
    applets: Vec<RawApplet>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApplet {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    url: Option<String>,
    next: Option<String>,
    no_input: Option<String>,
    on_302: Option<String>,
    cases: Option<BTreeMap<String, String>>,
    default: Option<String>,
    max_length: Option<u32>,
}

fn convert_flow(raw: RawFlow, problems: &mut Vec<String>) -> Option<FlowDef> {
    let before = problems.len();
    let mut applets = Vec::with_capacity(raw.applets.len());
    let mut ids = BTreeSet::new();
    for raw_applet in raw.applets {
        let at = format!("flow '{}', applet '{}'", raw.id, raw_applet.id);
        if !ids.insert(raw_applet.id.clone()) {
            problems.push(format!("{at}: the id is used twice"));
        }
        if let Some(applet) = convert_applet(raw_applet, &at, problems) {
            applets.push(applet);
        }
    }
    (problems.len() == before).then_some(FlowDef {
        id: raw.id,
        title: raw.title,
        direction: raw.direction,
        caller_id: raw.caller_id,
        purpose: raw.purpose,
        start: raw.start,
        applets,
    })
}

fn convert_applet(raw: RawApplet, at: &str, problems: &mut Vec<String>) -> Option<Applet> {
    let Some(kind) = AppletType::parse(&raw.kind) else {
        problems.push(format!(
            "{at}: unknown type '{}' (greeting, gather, passthru, switch, connect, voicebot, record or hangup)",
            raw.kind
        ));
        return None;
    };
    let before = problems.len();
    let allowed: &[&str] = match kind {
        AppletType::Greeting | AppletType::Connect | AppletType::Voicebot => &["url", "next"],
        AppletType::Gather => &["url", "next", "no_input"],
        AppletType::Passthru => &["url", "next", "on_302"],
        AppletType::Switch => &["cases", "default"],
        AppletType::Record => &["next", "max_length"],
        AppletType::Hangup => &[],
    };
    let present = [
        ("url", raw.url.is_some()),
        ("next", raw.next.is_some()),
        ("no_input", raw.no_input.is_some()),
        ("on_302", raw.on_302.is_some()),
        ("cases", raw.cases.is_some()),
        ("default", raw.default.is_some()),
        ("max_length", raw.max_length.is_some()),
    ];
    for (field, is_present) in present {
        if is_present && !allowed.contains(&field) {
            problems.push(format!("{at}: a {kind} applet has no '{field}'"));
        }
    }
    let mut required = |field: &str, value: Option<String>| -> String {
        match value {
            Some(v) if !v.trim().is_empty() => v,
            _ => {
                problems.push(format!("{at}: a {kind} applet needs '{field}'"));
                String::new()
            }
        }
    };
    let applet_kind = match kind {
        AppletType::Greeting => {
            AppletKind::Greeting { url: required("url", raw.url), next: required("next", raw.next) }
        }
        AppletType::Gather => AppletKind::Gather {
            url: required("url", raw.url),
            next: required("next", raw.next),
            no_input: raw.no_input,
        },
        AppletType::Passthru => {
            AppletKind::Passthru { url: required("url", raw.url), next: required("next", raw.next), on_302: raw.on_302 }
        }
        AppletType::Switch => {
            let default = required("default", raw.default);
            let cases = raw.cases.unwrap_or_default();
            if cases.is_empty() {
                problems.push(format!("{at}: a switch applet needs at least one case"));
            }
            AppletKind::Switch { cases, default }
        }
        AppletType::Connect => AppletKind::Connect { url: required("url", raw.url), next: required("next", raw.next) },
        AppletType::Voicebot => {
            AppletKind::Voicebot { url: required("url", raw.url), next: required("next", raw.next) }
        }
        AppletType::Record => AppletKind::Record {
            next: required("next", raw.next),
            max_length: raw.max_length.unwrap_or(DEFAULT_RECORD_MAX_LENGTH),
        },
        AppletType::Hangup => AppletKind::Hangup,
    };
    if let AppletKind::Record { max_length: 0, .. } = applet_kind {
        problems.push(format!("{at}: max_length must be at least 1 second"));
    }
    let applet = Applet { id: raw.id, kind: applet_kind };
    if let Some(url) = applet.url()
        && !url.is_empty()
    {
        if !url.starts_with('/') {
            problems.push(format!("{at}: url '{url}' must be a path relative to PUBLIC_BASE_URL"));
        }
        let has_token =
            url.split_once('?').is_some_and(|(_, q)| form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "token"));
        if has_token {
            problems.push(format!("{at}: url '{url}' must not carry the token (it is appended)"));
        }
    }
    (problems.len() == before).then_some(applet)
}

fn check_flow(flow: &FlowDef, problems: &mut Vec<String>) {
    let index: HashMap<&str, &Applet> = flow.applets.iter().map(|a| (a.id.as_str(), a)).collect();
    if !index.contains_key(flow.start.as_str()) {
        problems.push(format!("flow '{}': start '{}' is not an applet of the flow", flow.id, flow.start));
        return;
    }
    let mut dangling = false;
    for applet in &flow.applets {
        for target in applet.successors() {
            if !index.contains_key(target) {
                dangling = true;
                problems.push(format!(
                    "flow '{}', applet '{}': '{target}' is not an applet of the flow",
                    flow.id, applet.id
                ));
            }
        }
    }
    if dangling {
        return;
    }

    // Reachable from start.
    let mut reachable = BTreeSet::new();
    let mut stack = vec![flow.start.as_str()];
    while let Some(id) = stack.pop() {
        if reachable.insert(id) {
            stack.extend(index[id].successors());
        }
    }
    for applet in &flow.applets {
        if !reachable.contains(applet.id.as_str()) {
            problems.push(format!("flow '{}', applet '{}': unreachable from start", flow.id, applet.id));
        }
    }

    // Every applet can end the call: reaches a hangup (a passthru without
    // `on_302` can also end it, but only on our 302, so it does not count).
    let mut ends: BTreeSet<&str> =
        flow.applets.iter().filter(|a| a.applet_type() == AppletType::Hangup).map(|a| a.id.as_str()).collect();
    if ends.is_empty() {
        problems.push(format!("flow '{}': has no hangup applet", flow.id));
        return;
    }
    loop {
        let before = ends.len();
        for applet in &flow.applets {
            if applet.successors().iter().any(|s| ends.contains(s)) {
                ends.insert(applet.id.as_str());
            }
        }
        if ends.len() == before {
            break;
        }
    }
    for applet in &flow.applets {
        if reachable.contains(applet.id.as_str()) && !ends.contains(applet.id.as_str()) {
            problems.push(format!("flow '{}', applet '{}': never reaches a hangup", flow.id, applet.id));
        }
    }

    // A switch reads the answer of the passthru just before it.
    for applet in &flow.applets {
        for target in applet.successors() {
            if index[target].applet_type() == AppletType::Switch && applet.applet_type() != AppletType::Passthru {
                problems.push(format!(
                    "flow '{}', applet '{}': a {} cannot lead to switch '{target}' (only a passthru's answer selects a case)",
                    flow.id,
                    applet.id,
                    applet.applet_type()
                ));
            }
        }
    }
    if index[flow.start.as_str()].applet_type() == AppletType::Switch {
        problems.push(format!("flow '{}': cannot start with a switch", flow.id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_flows_validate() {
        let defs = FlowDefinitions::repository().unwrap();
        let ids: Vec<&str> = defs.flows().iter().map(|f| f.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "vendor_new_order",
                "vendor_reminder",
                "rider_assignment",
                "address_update",
                "customer_voice_order",
                "voice_order_record",
                "missed_call",
                "masked_call",
                "campaign_call"
            ]
        );
        let flow = defs.flow("vendor_new_order").unwrap();
        assert_eq!(flow.direction, FlowDirection::Outbound);
        assert_eq!(flow.start, "announce");
        assert_eq!(
            flow.applet("menu").unwrap().kind,
            AppletKind::Gather {
                url: "/exotel/applet/gather?flow=vendor_new_order&step=menu".into(),
                next: "answer".into(),
                no_input: Some("answer".into()),
            }
        );
        let AppletKind::Switch { cases, default } = &flow.applet("route").unwrap().kind else { panic!("not a switch") };
        assert_eq!(cases["prep_time"], "prep_menu");
        assert_eq!(default, "goodbye");
        assert_eq!(
            defs.flow("customer_voice_order").unwrap().applet("bot").unwrap().applet_type(),
            AppletType::Voicebot
        );
        assert_eq!(defs.flow("missed_call").unwrap().direction, FlowDirection::Incoming);
        assert_eq!(
            defs.flow("voice_order_record").unwrap().applet("listen").unwrap().kind,
            AppletKind::Record { next: "heard".into(), max_length: 30 }
        );
    }

    #[test]
    fn loads_from_a_path() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../flows/exotel-flows.toml");
        assert_eq!(FlowDefinitions::load(&path).unwrap(), FlowDefinitions::repository().unwrap());
        assert!(matches!(FlowDefinitions::load("/nonexistent/flows.toml"), Err(FlowsError::Read { .. })));
    }

    const HEADER: &str = "[[flows]]\nid = \"f\"\ntitle = \"t\"\ndirection = \"outbound\"\ncaller_id = \"X\"\n";

    fn problems(body: &str) -> Vec<String> {
        match FlowDefinitions::from_toml(&format!("{HEADER}{body}")) {
            Err(FlowsError::Invalid(p)) => p,
            other => panic!("expected problems, got {other:?}"),
        }
    }

    #[test]
    fn rejects_broken_references_and_dead_ends() {
        let p = problems(
            r#"start = "a"
            [[flows.applets]]
            id = "a"
            type = "greeting"
            url = "/g"
            next = "missing"
            "#,
        );
        assert_eq!(p, ["flow 'f', applet 'a': 'missing' is not an applet of the flow"]);

        let p = problems(
            r#"start = "nowhere"
            [[flows.applets]]
            id = "end"
            type = "hangup"
            "#,
        );
        assert_eq!(p, ["flow 'f': start 'nowhere' is not an applet of the flow"]);

        let p = problems(
            r#"start = "a"
            [[flows.applets]]
            id = "a"
            type = "gather"
            url = "/g"
            next = "b"
            [[flows.applets]]
            id = "b"
            type = "passthru"
            url = "/p"
            next = "a"
            [[flows.applets]]
            id = "end"
            type = "hangup"
            "#,
        );
        assert!(p.contains(&"flow 'f', applet 'end': unreachable from start".to_string()), "{p:?}");
        assert!(p.contains(&"flow 'f', applet 'a': never reaches a hangup".to_string()), "{p:?}");
    }

    #[test]
    fn rejects_wrong_fields_types_urls_and_switch_predecessors() {
        let p = problems(
            r#"start = "a"
            [[flows.applets]]
            id = "a"
            type = "greeting"
            url = "https://x/g?token=abc"
            next = "s"
            cases = { x = "end" }
            [[flows.applets]]
            id = "s"
            type = "switch"
            cases = { x = "end" }
            default = "end"
            [[flows.applets]]
            id = "b"
            type = "beep"
            [[flows.applets]]
            id = "c"
            type = "passthru"
            [[flows.applets]]
            id = "end"
            type = "hangup"
            "#,
        );
        assert_eq!(
            p,
            [
                "flow 'f', applet 'a': a greeting applet has no 'cases'",
                "flow 'f', applet 'a': url 'https://x/g?token=abc' must be a path relative to PUBLIC_BASE_URL",
                "flow 'f', applet 'a': url 'https://x/g?token=abc' must not carry the token (it is appended)",
                "flow 'f', applet 'b': unknown type 'beep' (greeting, gather, passthru, switch, connect, voicebot, record or hangup)",
                "flow 'f', applet 'c': a passthru applet needs 'url'",
                "flow 'f', applet 'c': a passthru applet needs 'next'",
            ]
        );

        let p = problems(
            r#"start = "a"
            [[flows.applets]]
            id = "a"
            type = "greeting"
            url = "/g"
            next = "s"
            [[flows.applets]]
            id = "s"
            type = "switch"
            cases = { x = "end" }
            default = "end"
            [[flows.applets]]
            id = "end"
            type = "hangup"
            "#,
        );
        assert_eq!(
            p,
            ["flow 'f', applet 'a': a greeting cannot lead to switch 's' (only a passthru's answer selects a case)"]
        );
        assert!(matches!(FlowDefinitions::from_toml("[[flows]]\nid = 1"), Err(FlowsError::Syntax(_))));
        assert!(matches!(
            FlowDefinitions::from_toml(&format!("{HEADER}start = \"a\"\nunknown = 1\n")),
            Err(FlowsError::Syntax(_))
        ));
    }
}
