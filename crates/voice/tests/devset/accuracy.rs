//! How well the parser alone (the understander and a cart, no dialog)
//! gets the development set's carts right, clean and under simulated ASR
//! noise (`AsrNoise::new(0.1, seed)`, each case corrupted with its index
//! as the salt), per language. Issue 11's targets: ≥ 95 % exact carts
//! clean, ≥ 85 % with noise.
//!
//! `cargo test -p mangwale-voice --test main devset::accuracy -- --nocapture`
//! prints the figures; DEVSET_SHOW_MISSES=N (and DEVSET_NOISE_SEED=S for
//! the noisy ones) prints the first N cases that came out wrong.

use std::collections::{BTreeMap, HashMap};

use mangwale_voice::{AsrNoise, Cart, Catalog, Understander};
use serde_json::Value;

use super::{case_files, data_dir};

const CLEAN_TARGET: f64 = 0.95;
const NOISY_TARGET: f64 = 0.85;
pub(super) const NOISE_RATE: f64 = 0.1;
pub(super) const NOISE_SEEDS: [u64; 3] = [1, 2, 3];

pub(super) type Line = (String, Option<String>, u64, Vec<String>);

pub(super) struct DevCase {
    id: String,
    lang: String,
    store_id: String,
    turns: Vec<String>,
    want: Vec<Line>,
}

pub(super) fn understanders(dir: &std::path::Path) -> HashMap<String, Understander> {
    let mut stores = HashMap::new();
    for path in std::fs::read_dir(dir).expect("catalogs").map(|e| e.expect("entry").path()) {
        let text = std::fs::read_to_string(&path).expect("catalog file");
        let catalog = Catalog::from_json(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        stores.insert(catalog.store.id.clone(), Understander::new(&catalog));
    }
    stores
}

pub(super) fn cases(files: &[std::path::PathBuf]) -> Vec<DevCase> {
    let mut cases = Vec::new();
    for file in files {
        for line in std::fs::read_to_string(file).expect("case file").lines().filter(|l| !l.trim().is_empty()) {
            let case: Value = serde_json::from_str(line).expect("case");
            let mut want: Vec<Line> = case["expected"]["lines"]
                .as_array()
                .expect("lines")
                .iter()
                .map(|l| {
                    let mut modifiers: Vec<String> =
                        l["modifiers"].as_array().expect("modifiers").iter().map(modifier_option).collect();
                    modifiers.sort();
                    let quantity = (l["quantity"].as_f64().expect("quantity") * 1000.0).round() as u64;
                    (
                        l["item_id"].as_str().expect("item_id").into(),
                        l["variant_id"].as_str().map(Into::into),
                        quantity,
                        modifiers,
                    )
                })
                .collect();
            want.sort();
            cases.push(DevCase {
                id: case["id"].as_str().expect("id").into(),
                lang: case["lang"].as_str().unwrap_or("?").into(),
                store_id: case["store_id"].as_str().expect("store_id").into(),
                turns: case["turns"]
                    .as_array()
                    .expect("turns")
                    .iter()
                    .map(|t| t.as_str().expect("turn").into())
                    .collect(),
                want,
            });
        }
    }
    cases
}

/// A modifier of an expected line: the option id, written as a string
/// (the development set) or as `{group_id, option_id}` (the held-out set
/// may use either).
fn modifier_option(modifier: &Value) -> String {
    match modifier {
        Value::String(option) => option.clone(),
        other => other["option_id"].as_str().expect("modifier: an option id or {group_id, option_id}").into(),
    }
}

fn cart_of(understander: &Understander, turns: &[String]) -> Vec<Line> {
    let mut cart = Cart::default();
    for turn in turns {
        for op in understander.understand_in(turn, &cart.context()).ops {
            cart.apply(understander.catalog(), &op);
        }
    }
    let mut got: Vec<Line> = cart
        .lines
        .iter()
        .map(|l| {
            let modifiers = l.modifiers.iter().map(|m| m.option_id.clone()).collect();
            (l.item_id.clone(), l.variant_id.clone(), l.quantity.milli(), modifiers)
        })
        .collect();
    got.sort();
    got
}

/// Per language: cases, exact carts, expected lines, expected lines whose
/// item is in the cart (item recall).
#[derive(Clone, Copy, Default)]
pub(super) struct Tally {
    pub cases: usize,
    pub exact: usize,
    pub lines: usize,
    pub recalled: usize,
}

impl Tally {
    pub fn exact_share(&self) -> f64 {
        self.exact as f64 / self.cases.max(1) as f64
    }

    pub fn recall(&self) -> f64 {
        self.recalled as f64 / self.lines.max(1) as f64
    }
}

/// Exact carts and item recall per language, with the misses listed up to `show`.
fn measure(
    stores: &HashMap<String, Understander>,
    cases: &[DevCase],
    noise: Option<AsrNoise>,
    show: usize,
) -> BTreeMap<String, Tally> {
    let mut tally: BTreeMap<String, Tally> = BTreeMap::new();
    let mut shown = 0;
    for (index, case) in cases.iter().enumerate() {
        let understander = stores.get(&case.store_id).unwrap_or_else(|| panic!("{}: no catalog", case.id));
        let turns: Vec<String> = match noise {
            Some(noise) => case.turns.iter().map(|t| noise.corrupt(t, index as u64)).collect(),
            None => case.turns.clone(),
        };
        let got = cart_of(understander, &turns);
        let exact = got == case.want;
        let recalled = case.want.iter().filter(|w| got.iter().any(|g| g.0 == w.0)).count();
        for lang in [case.lang.as_str(), "all"] {
            let entry = tally.entry(lang.to_string()).or_default();
            entry.cases += 1;
            entry.exact += usize::from(exact);
            entry.lines += case.want.len();
            entry.recalled += recalled;
        }
        if !exact && shown < show {
            shown += 1;
            println!("miss {}: {turns:?}\n  want {:?}\n  got  {got:?}", case.id, case.want);
        }
    }
    tally
}

/// Tallies per language, clean and for each noise seed. `DEVSET_SHOW_MISSES=N`
/// prints the first N misses of the clean run, or with `DEVSET_NOISE_SEED=S`
/// of that seed's run.
pub(super) fn clean_and_noisy(
    stores: &HashMap<String, Understander>,
    cases: &[DevCase],
) -> (BTreeMap<String, Tally>, Vec<BTreeMap<String, Tally>>) {
    let show: usize = std::env::var("DEVSET_SHOW_MISSES").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    let noisy_seed: Option<u64> = std::env::var("DEVSET_NOISE_SEED").ok().and_then(|v| v.parse().ok());
    let clean = measure(stores, cases, None, if noisy_seed.is_none() { show } else { 0 });
    let noisy: Vec<BTreeMap<String, Tally>> = NOISE_SEEDS
        .iter()
        .map(|seed| {
            let show = if noisy_seed == Some(*seed) { show } else { 0 };
            measure(stores, cases, Some(AsrNoise::new(NOISE_RATE, *seed)), show)
        })
        .collect();
    (clean, noisy)
}

#[test]
fn exact_carts_clean_and_with_asr_noise_meet_the_targets() {
    let stores = understanders(&data_dir().join("catalogs"));
    let cases = cases(&case_files());
    let (clean, noisy) = clean_and_noisy(&stores, &cases);
    println!(
        "exact carts, parser and cart only ({} cases; noise {NOISE_RATE} over seeds {NOISE_SEEDS:?}):",
        cases.len()
    );
    for (lang, counts) in &clean {
        let per_seed: Vec<String> = noisy.iter().map(|n| format!("{:5.1} %", 100.0 * n[lang].exact_share())).collect();
        println!(
            "  {lang:6} {:4} cases  clean {:5.1} %  noisy {}",
            counts.cases,
            100.0 * counts.exact_share(),
            per_seed.join("  ")
        );
    }
    let clean_all = clean["all"].exact_share();
    assert!(clean_all >= CLEAN_TARGET, "clean exact carts {:.1} % < {:.0} %", 100.0 * clean_all, 100.0 * CLEAN_TARGET);
    for (seed, n) in NOISE_SEEDS.iter().zip(&noisy) {
        let noisy_all = n["all"].exact_share();
        assert!(
            noisy_all >= NOISY_TARGET,
            "exact carts with noise {NOISE_RATE} seed {seed}: {:.1} % < {:.0} %",
            100.0 * noisy_all,
            100.0 * NOISY_TARGET
        );
    }
}
