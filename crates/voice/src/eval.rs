//! `mangwale-exotel voice eval`: plays evaluation cases through the real
//! [`Dialog`] ([`Mode::CatalogOnly`], [`LocalPorts`]) and measures what
//! comes out against what each case expects.
//!
//! A case is one JSON line: `{"id", "turns": [...], "expected": {"lines":
//! [{"item_id", "variant_id", "quantity", "modifiers"}]}}`; `store_id` and
//! `lang` are read when present (which catalog, which language the caller
//! is expected to speak and which language the case counts under); any
//! other field (`tags`) is ignored. A turn is what the caller says, or one
//! protocol input (`{"dtmf": "1"}`, `{"hangup": true}`).
//!
//! Each case is a fresh call: the agent's greeting, then the turns in
//! order (stopping if the dialog ends). What the call came to is the lines
//! of the orders placed and not cancelled, or, when no order was placed,
//! the final cart. Lines compare on item, variant, quantity and modifier
//! option ids, in any order.
//!
//! Figures, overall and per language: the exact-cart rate (cases whose
//! lines are exactly the expected ones); item recall (expected lines whose
//! item is among the lines got) and precision (lines got whose item was
//! expected), by item so that a size mistaken is not also an item missed;
//! quantity accuracy (of expected lines got with the same item and variant,
//! those with the right quantity); and the p50 and p99 time of a caller
//! turn (`Dialog::turn`, the greeting excluded).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize};

use crate::catalog::{Catalog, Lang};
use crate::dialog::local::{LocalError, LocalPorts, read_catalog};
use crate::dialog::protocol::input_from_value;
use crate::dialog::{Dialog, Input, Mode};
use crate::noise::AsrNoise;
use crate::numbers::Qty;

/// A case file or catalog that cannot be used, naming the file and line or
/// the case.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}:{line}: {message}", path.display())]
    Case { path: PathBuf, line: usize, message: String },
    #[error(transparent)]
    Catalog(#[from] LocalError),
    #[error("case {case}: {message}")]
    Store { case: String, message: String },
}

/// One line of an order as cases state it: modifiers are option ids.
/// Case writers differ, so a line reads leniently where the meaning is
/// the same: `quantity` a number or a numeric string (`2`, `"0.5"`);
/// `variant_id` and `modifiers` missing or null for none; a modifier an
/// option id (`"mild"`) or a choice object (`{"group_id": "spice",
/// "option_id": "mild"}`), both compared on the option id, as the
/// dialog's lines are.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalLine {
    pub item_id: String,
    #[serde(default)]
    pub variant_id: Option<String>,
    #[serde(deserialize_with = "quantity_number_or_text")]
    pub quantity: Qty,
    #[serde(default, deserialize_with = "modifier_ids")]
    pub modifiers: Vec<String>,
}

fn quantity_number_or_text<'de, D: Deserializer<'de>>(d: D) -> Result<Qty, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Said {
        Number(f64),
        Text(String),
    }
    let value = match Said::deserialize(d)? {
        Said::Number(n) => n,
        Said::Text(text) => {
            text.trim().parse::<f64>().map_err(|_| serde::de::Error::custom(format!("{text:?} is not a number")))?
        }
    };
    Qty::from_f64(value)
        .ok_or_else(|| serde::de::Error::custom(format!("{value} is not a quantity (≥ 0, at most 3 decimals)")))
}

fn modifier_ids<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Choice {
        #[serde(default)]
        #[allow(dead_code)] // read to accept it; lines compare on the option
        group_id: Option<String>,
        option_id: String,
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Modifier {
        Id(String),
        Choice(Choice),
    }
    let said: Option<Vec<Modifier>> = Option::deserialize(d)?;
    Ok(said
        .unwrap_or_default()
        .into_iter()
        .map(|m| match m {
            Modifier::Id(id) => id,
            Modifier::Choice(c) => c.option_id,
        })
        .collect())
}

impl EvalLine {
    fn key(&self) -> (&str, Option<&str>, &[String]) {
        (&self.item_id, self.variant_id.as_deref(), &self.modifiers)
    }
}

/// One evaluation case.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalCase {
    pub id: String,
    pub store_id: Option<String>,
    pub lang: Option<Lang>,
    pub turns: Vec<Input>,
    /// Sorted.
    pub expected: Vec<EvalLine>,
}

#[derive(Deserialize)]
struct CaseFields {
    id: String,
    #[serde(default)]
    store_id: Option<String>,
    #[serde(default)]
    lang: Option<Lang>,
    turns: Vec<Turn>,
    expected: Expected,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    lines: Vec<EvalLine>,
}

/// A turn of a case: words, or one protocol input.
struct Turn(Input);

impl<'de> Deserialize<'de> for Turn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(text) => Ok(Turn(Input::Say(text))),
            other => input_from_value(&other).map(Turn).map_err(serde::de::Error::custom),
        }
    }
}

impl EvalCase {
    /// Reads one case line; the error names the field.
    pub fn from_json(line: &str) -> Result<EvalCase, String> {
        let de = &mut serde_json::Deserializer::from_str(line);
        let fields: CaseFields = serde_path_to_error::deserialize(de).map_err(|e| match e.path().to_string() {
            p if p == "." => e.inner().to_string(),
            p => format!("{p}: {}", e.inner()),
        })?;
        if fields.id.trim().is_empty() {
            return Err("id: must not be empty".into());
        }
        if fields.turns.is_empty() {
            return Err("turns: must not be empty".into());
        }
        let mut expected = fields.expected.lines;
        for line in &mut expected {
            line.modifiers.sort();
        }
        expected.sort();
        Ok(EvalCase {
            id: fields.id,
            store_id: fields.store_id,
            lang: fields.lang,
            turns: fields.turns.into_iter().map(|t| t.0).collect(),
            expected,
        })
    }
}

/// Reads case files (JSON lines; blank lines skipped), in order. Ids must
/// be unique over all of them.
pub fn read_cases(paths: &[PathBuf]) -> Result<Vec<EvalCase>, EvalError> {
    let mut cases = Vec::new();
    let mut seen = HashMap::new();
    for path in paths {
        let text = std::fs::read_to_string(path).map_err(|source| EvalError::Read { path: path.clone(), source })?;
        for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let bad = |message: String| EvalError::Case { path: path.clone(), line: n + 1, message };
            let case = EvalCase::from_json(line).map_err(bad)?;
            if let Some(first) = seen.insert(case.id.clone(), format!("{}:{}", path.display(), n + 1)) {
                return Err(bad(format!("id: {} is also the id of the case at {first}", case.id)));
            }
            cases.push(case);
        }
    }
    Ok(cases)
}

/// Where each case's catalog comes from: one file for every case, or a
/// directory of `<store_id>.json` picked by each case's `store_id` (the
/// layout of crates/voice/tests/data/catalogs).
#[derive(Debug, Clone)]
pub enum Catalogs {
    One(Arc<Catalog>),
    ByStore(PathBuf),
}

impl Catalogs {
    /// A directory, or a catalog file (read and checked now).
    pub fn open(path: &Path) -> Result<Catalogs, EvalError> {
        if path.is_dir() {
            Ok(Catalogs::ByStore(path.to_path_buf()))
        } else {
            Ok(Catalogs::One(Arc::new(read_catalog(path)?)))
        }
    }

    /// The catalog of every case, in order; each file is read once.
    pub fn for_cases(&self, cases: &[EvalCase]) -> Result<Vec<Arc<Catalog>>, EvalError> {
        let mut loaded: HashMap<String, Arc<Catalog>> = HashMap::new();
        let mut out = Vec::with_capacity(cases.len());
        for case in cases {
            let bad = |message: String| EvalError::Store { case: case.id.clone(), message };
            let catalog = match self {
                Catalogs::One(catalog) => {
                    if let Some(store) = &case.store_id
                        && *store != catalog.store.id
                    {
                        return Err(bad(format!("store_id {store}, but the catalog is store {}'s", catalog.store.id)));
                    }
                    catalog.clone()
                }
                Catalogs::ByStore(dir) => {
                    let Some(store) = &case.store_id else {
                        return Err(bad(format!("no store_id to pick its catalog in {}", dir.display())));
                    };
                    if store.is_empty() || !store.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                        return Err(bad(format!("store_id {store:?} is not a catalog file name")));
                    }
                    match loaded.get(store) {
                        Some(catalog) => catalog.clone(),
                        None => {
                            let catalog = Arc::new(read_catalog(&dir.join(format!("{store}.json")))?);
                            if catalog.store.id != *store {
                                return Err(bad(format!("{store}.json is the catalog of store {}", catalog.store.id)));
                            }
                            loaded.insert(store.clone(), catalog.clone());
                            catalog
                        }
                    }
                }
            };
            out.push(catalog);
        }
        Ok(out)
    }
}

/// What one case came to.
#[derive(Debug, Clone)]
pub struct CaseOutcome {
    pub id: String,
    pub lang: Option<Lang>,
    /// The caller's turns as the dialog got them (after noise).
    pub heard: Vec<Input>,
    pub expected: Vec<EvalLine>,
    /// Sorted.
    pub got: Vec<EvalLine>,
    /// The time of each caller turn.
    pub turn_times: Vec<Duration>,
}

impl CaseOutcome {
    pub fn exact(&self) -> bool {
        self.got == self.expected
    }
}

/// Plays one case as a fresh catalog-only call. `index` salts the noise.
pub async fn run_case(index: usize, case: &EvalCase, catalog: Arc<Catalog>, noise: Option<AsrNoise>) -> CaseOutcome {
    let lang = case.lang.unwrap_or(catalog.store.language);
    let ports = LocalPorts::new(catalog);
    let mut dialog = Dialog::new(format!("eval:{}", case.id), Mode::CatalogOnly, lang, Some(ports.store()));
    dialog.turn(Input::Start, &ports).await;
    let mut heard = Vec::with_capacity(case.turns.len());
    let mut turn_times = Vec::with_capacity(case.turns.len());
    for (t, turn) in case.turns.iter().enumerate() {
        if dialog.ended {
            break;
        }
        let input = match (turn, noise) {
            (Input::Say(text), Some(noise)) => Input::Say(noise.corrupt(text, noise_salt(index, t))),
            _ => turn.clone(),
        };
        heard.push(input.clone());
        let started = Instant::now();
        dialog.turn(input, &ports).await;
        turn_times.push(started.elapsed());
    }
    CaseOutcome {
        id: case.id.clone(),
        lang: case.lang,
        heard,
        expected: case.expected.clone(),
        got: outcome_lines(&dialog),
        turn_times,
    }
}

/// Distinct for every turn of every case under one seed.
fn noise_salt(case_index: usize, turn_index: usize) -> u64 {
    ((case_index as u64) << 16) | turn_index as u64
}

/// The lines of the orders placed and not cancelled, or, when none was
/// placed, of the cart; equal lines (two orders of one item) summed.
pub fn outcome_lines(dialog: &Dialog) -> Vec<EvalLine> {
    let lines: Vec<EvalLine> = if dialog.orders.is_empty() {
        dialog
            .cart
            .lines
            .iter()
            .map(|l| EvalLine {
                item_id: l.item_id.clone(),
                variant_id: l.variant_id.clone(),
                quantity: l.quantity,
                modifiers: l.modifiers.iter().map(|m| m.option_id.clone()).collect(),
            })
            .collect()
    } else {
        dialog
            .orders
            .iter()
            .filter(|o| !o.cancelled)
            .flat_map(|o| &o.lines)
            .map(|l| EvalLine {
                item_id: l.item_id.clone(),
                variant_id: l.variant_id.clone(),
                quantity: l.quantity,
                modifiers: l.modifiers.iter().map(|m| m.option_id.clone()).collect(),
            })
            .collect()
    };
    let mut merged: Vec<EvalLine> = Vec::with_capacity(lines.len());
    for mut line in lines {
        line.modifiers.sort();
        match merged.iter_mut().find(|m| m.key() == line.key()) {
            Some(same) => same.quantity = Qty(same.quantity.0 + line.quantity.0),
            None => merged.push(line),
        }
    }
    merged.sort();
    merged
}

/// Counts over some cases, from which the figures are rates.
#[derive(Debug, Clone, Default)]
struct Tally {
    cases: usize,
    exact: usize,
    expected_lines: usize,
    got_lines: usize,
    /// Expected lines whose item is among the lines got.
    recalled: usize,
    /// Lines got whose item was expected.
    precise: usize,
    /// Expected lines got with the same item and variant...
    matched: usize,
    /// ...and the right quantity.
    quantity_right: usize,
    turn_times: Vec<Duration>,
}

impl Tally {
    fn add(&mut self, outcome: &CaseOutcome) {
        let (expected, got) = (&outcome.expected, &outcome.got);
        self.cases += 1;
        self.exact += usize::from(outcome.exact());
        self.expected_lines += expected.len();
        self.got_lines += got.len();
        self.recalled += expected.iter().filter(|e| got.iter().any(|g| g.item_id == e.item_id)).count();
        self.precise += got.iter().filter(|g| expected.iter().any(|e| e.item_id == g.item_id)).count();
        let mut unused: Vec<&EvalLine> = got.iter().collect();
        for e in expected {
            if let Some(i) = unused.iter().position(|g| g.item_id == e.item_id && g.variant_id == e.variant_id) {
                self.matched += 1;
                self.quantity_right += usize::from(unused[i].quantity == e.quantity);
                unused.remove(i);
            }
        }
        self.turn_times.extend(&outcome.turn_times);
    }

    fn figures(mut self) -> Figures {
        self.turn_times.sort();
        let rate = |part: usize, whole: usize| (whole > 0).then(|| part as f64 / whole as f64);
        let percentile = |p: f64| {
            let n = self.turn_times.len();
            (n > 0).then(|| {
                let rank = ((p * n as f64).ceil() as usize).clamp(1, n);
                self.turn_times[rank - 1].as_secs_f64() * 1000.0
            })
        };
        Figures {
            cases: self.cases,
            exact_carts: self.exact,
            exact_cart_rate: rate(self.exact, self.cases),
            expected_lines: self.expected_lines,
            got_lines: self.got_lines,
            item_recall: rate(self.recalled, self.expected_lines),
            item_precision: rate(self.precise, self.got_lines),
            matched_lines: self.matched,
            quantity_accuracy: rate(self.quantity_right, self.matched),
            turns: self.turn_times.len(),
            turn_p50_ms: percentile(0.5),
            turn_p99_ms: percentile(0.99),
        }
    }
}

/// The figures over some cases. Rates are fractions (0..1); `None` (JSON
/// `null`) when there was nothing to count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    pub cases: usize,
    pub exact_carts: usize,
    pub exact_cart_rate: Option<f64>,
    pub expected_lines: usize,
    pub got_lines: usize,
    pub item_recall: Option<f64>,
    pub item_precision: Option<f64>,
    /// Expected lines got with the same item and variant.
    pub matched_lines: usize,
    /// Of the matched lines, those with the expected quantity.
    pub quantity_accuracy: Option<f64>,
    /// Caller turns timed.
    pub turns: usize,
    pub turn_p50_ms: Option<f64>,
    pub turn_p99_ms: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NoiseSetting {
    pub rate: f64,
    pub seed: u64,
}

/// A case whose lines were not the expected ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub id: String,
    pub lang: Option<Lang>,
    /// The turns as the dialog got them (after noise).
    pub heard: Vec<Input>,
    pub expected: Vec<EvalLine>,
    pub got: Vec<EvalLine>,
}

/// What `voice eval` prints (`--json`: this, serialised).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    pub noise: Option<NoiseSetting>,
    pub overall: Figures,
    /// By the cases' `lang` (cases without one count only overall).
    pub by_language: BTreeMap<String, Figures>,
    pub failures: Vec<Failure>,
}

impl EvalReport {
    pub fn new(outcomes: &[CaseOutcome], noise: Option<AsrNoise>) -> EvalReport {
        let mut overall = Tally::default();
        let mut by_language: BTreeMap<String, Tally> = BTreeMap::new();
        for outcome in outcomes {
            overall.add(outcome);
            if let Some(lang) = outcome.lang {
                by_language.entry(lang.code().to_string()).or_default().add(outcome);
            }
        }
        EvalReport {
            noise: noise.map(|n| NoiseSetting { rate: n.rate, seed: n.seed }),
            overall: overall.figures(),
            by_language: by_language.into_iter().map(|(lang, t)| (lang, t.figures())).collect(),
            failures: outcomes
                .iter()
                .filter(|o| !o.exact())
                .map(|o| Failure {
                    id: o.id.clone(),
                    lang: o.lang,
                    heard: o.heard.clone(),
                    expected: o.expected.clone(),
                    got: o.got.clone(),
                })
                .collect(),
        }
    }

    /// The figures as a table; with `verbose`, each failing case with its
    /// turns, expected and got lines.
    pub fn to_text(&self, verbose: bool) -> String {
        let mut out = String::new();
        let noise = match self.noise {
            Some(n) => format!("noise {} (seed {})", n.rate, n.seed),
            None => "no noise".into(),
        };
        let _ = writeln!(out, "voice eval: {} cases, {noise}", self.overall.cases);
        let _ = writeln!(
            out,
            "{:<8} {:>5}  {:>11}  {:>11}  {:>14}  {:>12}  {:>9}  {:>9}",
            "language", "cases", "exact carts", "item recall", "item precision", "quantity acc", "turn p50", "turn p99"
        );
        let row = |out: &mut String, name: &str, f: &Figures| {
            let pct = |r: Option<f64>| r.map_or("-".into(), |r| format!("{:.1} %", r * 100.0));
            let ms = |t: Option<f64>| t.map_or("-".into(), |t| format!("{t:.2} ms"));
            let _ = writeln!(
                out,
                "{name:<8} {:>5}  {:>11}  {:>11}  {:>14}  {:>12}  {:>9}  {:>9}",
                f.cases,
                pct(f.exact_cart_rate),
                pct(f.item_recall),
                pct(f.item_precision),
                pct(f.quantity_accuracy),
                ms(f.turn_p50_ms),
                ms(f.turn_p99_ms)
            );
        };
        for (lang, figures) in &self.by_language {
            row(&mut out, lang, figures);
        }
        row(&mut out, "all", &self.overall);
        if verbose {
            let _ = writeln!(out, "\nfailing cases ({}):", self.failures.len());
            for f in &self.failures {
                let lang = f.lang.map(|l| format!(" [{l}]")).unwrap_or_default();
                let turns: Vec<String> = f.heard.iter().map(describe_input).collect();
                let _ = writeln!(out, "  {}{lang}: {}", f.id, turns.join(" | "));
                let _ = writeln!(out, "    expected: {}", describe_lines(&f.expected));
                let _ = writeln!(out, "    got:      {}", describe_lines(&f.got));
            }
        } else if !self.failures.is_empty() {
            let _ = writeln!(out, "{} failing cases (--verbose lists them)", self.failures.len());
        }
        out
    }
}

fn describe_input(input: &Input) -> String {
    match input {
        // Not `{:?}`: that escapes Devanagari vowel signs.
        Input::Say(text) => format!("\"{text}\""),
        Input::Dtmf(keys) => format!("[dtmf {keys}]"),
        Input::Hangup => "[hangup]".into(),
        Input::Silence => "[silence]".into(),
        Input::Start => "[start]".into(),
    }
}

/// `7012/cutting ×1 [less]`, or `(none)`.
fn describe_lines(lines: &[EvalLine]) -> String {
    if lines.is_empty() {
        return "(none)".into();
    }
    let each: Vec<String> = lines
        .iter()
        .map(|l| {
            let variant = l.variant_id.as_ref().map(|v| format!("/{v}")).unwrap_or_default();
            let modifiers =
                if l.modifiers.is_empty() { String::new() } else { format!(" [{}]", l.modifiers.join(", ")) };
            format!("{}{variant} ×{}{modifiers}", l.item_id, l.quantity)
        })
        .collect();
    each.join(", ")
}

/// Plays every case (in order, one at a time, so that turn times are not
/// measured under contention) and reports.
pub async fn evaluate(
    cases: &[EvalCase],
    catalogs: &Catalogs,
    noise: Option<AsrNoise>,
) -> Result<EvalReport, EvalError> {
    let per_case = catalogs.for_cases(cases)?;
    let mut outcomes = Vec::with_capacity(cases.len());
    for (index, (case, catalog)) in cases.iter().zip(per_case).enumerate() {
        outcomes.push(run_case(index, case, catalog, noise).await);
    }
    Ok(EvalReport::new(&outcomes, noise))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(item: &str, variant: Option<&str>, quantity: u64) -> EvalLine {
        EvalLine {
            item_id: item.into(),
            variant_id: variant.map(Into::into),
            quantity: Qty::whole(quantity),
            modifiers: Vec::new(),
        }
    }

    fn outcome(id: &str, lang: Option<Lang>, expected: Vec<EvalLine>, got: Vec<EvalLine>, ms: &[u64]) -> CaseOutcome {
        CaseOutcome {
            id: id.into(),
            lang,
            heard: vec![Input::Say("x".into())],
            expected,
            got,
            turn_times: ms.iter().map(|m| Duration::from_millis(*m)).collect(),
        }
    }

    #[test]
    fn a_case_line_reads_with_extra_fields_and_protocol_turns() {
        let case = EvalCase::from_json(
            r#"{"id": "hinglish-001", "store_id": "7", "lang": "hi-en", "tags": ["multi-item"],
                "turns": ["do plate misal aur ek cutting chai", {"dtmf": "1"}],
                "expected": {"lines": [
                  {"item_id": "7012", "variant_id": "cutting", "quantity": 1, "modifiers": ["less", "adrak"]},
                  {"item_id": "7001", "variant_id": null, "quantity": 2, "modifiers": []}]}}"#,
        )
        .unwrap();
        assert_eq!(case.store_id.as_deref(), Some("7"));
        assert_eq!(case.lang, Some(Lang::HiEn));
        assert_eq!(case.turns, vec![Input::Say("do plate misal aur ek cutting chai".into()), Input::Dtmf("1".into())]);
        assert_eq!(case.expected[0].item_id, "7001", "sorted");
        assert_eq!(case.expected[1].modifiers, ["adrak", "less"], "modifiers sorted");
    }

    #[test]
    fn modifiers_as_ids_or_choices_and_quantities_as_text_read_the_same() {
        let read = |lines: &str| {
            EvalCase::from_json(&format!(r#"{{"id": "a", "turns": ["x"], "expected": {{"lines": [{lines}]}}}}"#))
                .expect("case")
                .expected
        };
        let as_ids =
            read(r#"{"item_id": "7012", "variant_id": "cutting", "quantity": 2, "modifiers": ["mild", "adrak"]}"#);
        let as_choices = read(
            r#"{"item_id": "7012", "variant_id": "cutting", "quantity": "2",
                "modifiers": [{"group_id": "spice", "option_id": "mild"}, {"option_id": "adrak"}]}"#,
        );
        assert_eq!(as_ids, as_choices);
        assert_eq!(as_ids[0].modifiers, ["adrak", "mild"]);
        let bare = read(r#"{"item_id": "7001", "quantity": "0.5", "variant_id": null, "modifiers": null}"#);
        assert_eq!(bare, [line("7001", None, 0)].map(|l| EvalLine { quantity: Qty(500), ..l }));
        let missing = read(r#"{"item_id": "7001", "quantity": 0.5}"#);
        assert_eq!(missing, bare);
        let e = EvalCase::from_json(
            r#"{"id": "a", "turns": ["x"], "expected": {"lines": [{"item_id": "1", "quantity": "two"}]}}"#,
        )
        .unwrap_err();
        assert!(e.starts_with("expected.lines[0].quantity"), "{e}");
    }

    #[test]
    fn a_bad_case_names_the_field() {
        let bad = |line: &str| EvalCase::from_json(line).unwrap_err();
        assert!(
            bad(r#"{"id": "a", "turns": ["x"], "expected": {"lines": [{"item_id": "1", "quantity": 0.0001}]}}"#)
                .starts_with("expected.lines[0].quantity: ")
        );
        assert!(
            bad(r#"{"id": "a", "turns": [{"dtmf": "x"}], "expected": {"lines": []}}"#).starts_with("turns[0]: dtmf")
        );
        assert!(bad(r#"{"id": "a", "lang": "fr", "turns": ["x"], "expected": {"lines": []}}"#).starts_with("lang: "));
        assert_eq!(bad(r#"{"id": "a", "turns": [], "expected": {"lines": []}}"#), "turns: must not be empty");
        assert!(bad(r#"{"id": "a", "turns": ["x"]}"#).contains("missing field `expected`"));
    }

    #[test]
    fn case_files_name_the_line_and_refuse_a_repeated_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cases.jsonl");
        let case = r#"{"id": "a", "turns": ["x"], "expected": {"lines": []}}"#;
        std::fs::write(&path, format!("{case}\n\n{case}\n")).unwrap();
        let e = read_cases(std::slice::from_ref(&path)).unwrap_err().to_string();
        assert!(
            e.ends_with(&format!("cases.jsonl:3: id: a is also the id of the case at {}:1", path.display())),
            "{e}"
        );
    }

    #[test]
    fn figures_count_items_quantities_and_exact_carts() {
        let outcomes = vec![
            // Exact.
            outcome("a", Some(Lang::HiEn), vec![line("1", None, 2)], vec![line("1", None, 2)], &[1]),
            // Right item, wrong quantity; one item missed; one extra.
            outcome(
                "b",
                Some(Lang::HiEn),
                vec![line("1", None, 2), line("2", None, 1)],
                vec![line("1", None, 3), line("3", None, 1)],
                &[2, 3],
            ),
            // Right item, other size: recalled by item, not matched for quantity.
            outcome("c", Some(Lang::Mr), vec![line("4", Some("1kg"), 1)], vec![line("4", Some("500g"), 2)], &[4]),
            // Nothing expected, nothing got.
            outcome("d", None, vec![], vec![], &[100]),
        ];
        let report = EvalReport::new(&outcomes, None);
        let all = &report.overall;
        assert_eq!((all.cases, all.exact_carts, all.exact_cart_rate), (4, 2, Some(0.5)));
        assert_eq!((all.expected_lines, all.got_lines), (4, 4));
        assert_eq!(all.item_recall, Some(3.0 / 4.0));
        assert_eq!(all.item_precision, Some(3.0 / 4.0));
        assert_eq!((all.matched_lines, all.quantity_accuracy), (2, Some(0.5)));
        assert_eq!((all.turns, all.turn_p50_ms, all.turn_p99_ms), (5, Some(3.0), Some(100.0)));
        assert_eq!(report.by_language.keys().collect::<Vec<_>>(), ["hi-en", "mr"]);
        let mr = &report.by_language["mr"];
        assert_eq!((mr.exact_cart_rate, mr.item_recall, mr.quantity_accuracy), (Some(0.0), Some(1.0), None));
        assert_eq!(report.failures.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(), ["b", "c"]);

        let text = report.to_text(true);
        assert!(text.contains("all          4       50.0 %       75.0 %"), "{text}");
        assert!(text.contains("    expected: 4/1kg ×1\n    got:      4/500g ×2\n"), "{text}");
        assert!(report.to_text(false).ends_with("2 failing cases (--verbose lists them)\n"));
        let json: EvalReport = serde_json::from_str(&serde_json::to_string(&report).unwrap()).unwrap();
        assert_eq!(json, report);
    }

    #[test]
    fn a_catalog_is_picked_by_store_id_from_a_directory() {
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/catalogs");
        let case = |id: &str, store: Option<&str>| EvalCase {
            id: id.into(),
            store_id: store.map(Into::into),
            lang: None,
            turns: vec![Input::Say("x".into())],
            expected: Vec::new(),
        };
        let by_store = Catalogs::open(&data).unwrap();
        let got = by_store.for_cases(&[case("a", Some("7")), case("b", Some("13")), case("c", Some("7"))]).unwrap();
        assert_eq!(got.iter().map(|c| c.store.id.as_str()).collect::<Vec<_>>(), ["7", "13", "7"]);
        assert!(Arc::ptr_eq(&got[0], &got[2]), "read once");
        let e = by_store.for_cases(&[case("a", None)]).unwrap_err().to_string();
        assert!(e.starts_with("case a: no store_id"), "{e}");
        let e = by_store.for_cases(&[case("a", Some("../7"))]).unwrap_err().to_string();
        assert!(e.contains("is not a catalog file name"), "{e}");

        let one = Catalogs::open(&data.join("7.json")).unwrap();
        assert_eq!(one.for_cases(&[case("a", None), case("b", Some("7"))]).unwrap().len(), 2);
        let e = one.for_cases(&[case("b", Some("8"))]).unwrap_err().to_string();
        assert_eq!(e, "case b: store_id 8, but the catalog is store 7's");
    }
}
