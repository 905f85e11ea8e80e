//! Order understanding on a generated 200-item catalog: the time to parse
//! one utterance (normalise, match, build operations), p50/p99/max over
//! many utterances in Hinglish, Devanagari and English, one to four items
//! each, with ASR misspellings. Target: p99 ≤ 5 ms.
//!
//!     cargo bench -p mangwale-voice --bench understand
//!
//! Then it plays the development set (crates/voice/tests/data, over the
//! Nashik demo stores' catalogs in tests/data/catalogs) through the understander and a cart, and prints the
//! exact-cart rate and item recall and precision per language, clean and
//! with `AsrNoise::new(0.1, seed)` for seeds 1–3: a measurement of the
//! parser alone, without the dialog.
//!
//! Knobs: BENCH_ROUNDS (default 200 passes over the utterances);
//! BENCH_SHOW_MISSES=N prints the first N dev-set cases that came out wrong.
//! It asserts nothing.

use std::collections::HashMap;
use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use mangwale_voice::{AsrNoise, Cart, CartOp, Catalog, Understander};
use serde_json::Value;

const DISHES: &[(&str, &str)] = &[
    ("misal pav", "मिसळ पाव"),
    ("vada pav", "वडा पाव"),
    ("pav bhaji", "पाव भाजी"),
    ("poha", "पोहे"),
    ("upma", "उपमा"),
    ("sabudana khichdi", "साबुदाणा खिचडी"),
    ("thalipeeth", "थालीपीठ"),
    ("kanda bhaji", "कांदा भजी"),
    ("samosa", "समोसा"),
    ("kachori", "कचोरी"),
    ("dosa", "डोसा"),
    ("idli", "इडली"),
    ("uttapam", "उत्तपम"),
    ("puri bhaji", "पुरी भाजी"),
    ("chole bhature", "छोले भटूरे"),
    ("paneer tikka", "पनीर टिक्का"),
    ("dal khichdi", "दाल खिचड़ी"),
    ("veg biryani", "वेज बिरयानी"),
    ("jeera rice", "जीरा राइस"),
    ("butter roti", "बटर रोटी"),
    ("lassi", "लस्सी"),
    ("cutting chai", "कटिंग चाय"),
    ("cold coffee", "कोल्ड कॉफी"),
    ("shrikhand", "श्रीखंड"),
    ("gulab jamun", "गुलाब जामुन"),
    ("jalebi", "जलेबी"),
    ("rasmalai", "रसमलाई"),
    ("modak", "मोदक"),
    ("puran poli", "पुरण पोळी"),
    ("sol kadhi", "सोल कढी"),
    ("aloo paratha", "आलू पराठा"),
    ("masala dosa", "मसाला डोसा"),
    ("dahi vada", "दही वडा"),
    ("bhel puri", "भेल पुरी"),
    ("pani puri", "पानी पुरी"),
    ("sev puri", "शेव पुरी"),
    ("ragda pattice", "रगडा पॅटिस"),
    ("kothimbir vadi", "कोथिंबीर वडी"),
    ("zunka bhakar", "झुणका भाकर"),
    ("tomato soup", "टोमॅटो सूप"),
];
const STYLES: &[&str] = &["", "special", "jain", "cheese", "family"];

fn catalog() -> Catalog {
    let mut items = Vec::new();
    for (s, style) in STYLES.iter().enumerate() {
        for (d, (latin, devanagari)) in DISHES.iter().enumerate() {
            let name = if style.is_empty() { latin.to_string() } else { format!("{style} {latin}") };
            let mut item = serde_json::json!({
                "id": format!("i{s}{d:02}"), "name": name, "aliases": [devanagari, latin.replace("a", "aa")],
                "price": 40 + d * 5 + s * 10, "unit": "plate", "category": "Menu", "available": true,
            });
            if d % 3 == 0 {
                item["variants"] = serde_json::json!([
                    {"id": "half", "name": "Half", "aliases": ["half plate", "हाफ"], "price": 30},
                    {"id": "full", "name": "Full", "aliases": ["full plate", "फुल"], "price": 60}]);
                item["modifier_groups"] = serde_json::json!([
                    {"id": "spice", "name": "Spice", "exclusive": true, "options": [
                        {"id": "kam", "name": "Kam teekha", "aliases": ["less spicy", "कमी तिखट"], "price_delta": 0},
                        {"id": "extra", "name": "Extra teekha", "aliases": ["extra spicy"], "price_delta": 0}]},
                    {"id": "onion", "name": "Onion", "exclusive": false, "options": [
                        {"id": "no", "name": "Bina pyaaz", "aliases": ["no onion"], "price_delta": 0}]}]);
            }
            items.push(item);
        }
    }
    let json =
        serde_json::json!({"store": {"id": "bench", "name": "Bench House", "language": "hi-en"}, "items": items});
    Catalog::from_json(&json.to_string()).expect("generated catalog is valid")
}

const UTTERANCES: &[&str] = &[
    "do plate misal pav aur ek cutting chai",
    "bhaiya teen special missal paav kam teekha aur do jain vada pav bina pyaaz dena jaldi",
    "दोन मिसळ पाव आणि एक कटिंग चाय आणि तीन पोहे",
    "ek half plate pav bhaji extra teekha aur dedh plate cheese dosa aur char lassi",
    "two masala dosa and one cold coffee and three gulab jamun please",
    "nahi do nahi teen",
    "samosa hata do",
    "cancel the cutting chai",
    "haan confirm",
    "ek pizza aur do burger",
    "family veg biryani ek plate aur do butter roti aur ek sol kadhi aur paanch jalebi",
    "mujhe ek kachori chahiye aur ek dahi wada aur do sev puri aur ek pani puri",
    "एक श्रीखंड आणि दोन पुरण पोळी आणि एक सोल कढी",
    "chole bhature ek plate bina pyaaz aur ek lassi",
    "ek chai",
    "kitne ka hai paneer tikka",
];

fn main() {
    let rounds: usize = std::env::var("BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let catalog = catalog();
    let started = Instant::now();
    let understander = Understander::new(&catalog);
    let build = started.elapsed();
    let mut times = Vec::with_capacity(rounds * UTTERANCES.len());
    let mut ops = 0;
    for _ in 0..rounds {
        for u in UTTERANCES {
            let started = Instant::now();
            let understood = black_box(understander.understand(black_box(u)));
            times.push(started.elapsed());
            ops += understood.ops.len();
        }
    }
    times.sort();
    let pct = |p: f64| times[((times.len() - 1) as f64 * p) as usize];
    println!("catalog: {} items; index built in {build:.2?}", catalog.items.len());
    println!(
        "understand: {} parses ({} ops): p50 {:.1?}  p90 {:.1?}  p99 {:.1?}  max {:.1?}  (target p99 ≤ 5 ms)",
        times.len(),
        ops,
        pct(0.5),
        pct(0.9),
        pct(0.99),
        times[times.len() - 1]
    );
    for u in UTTERANCES.iter().take(4) {
        let kinds: Vec<String> = understander
            .understand(u)
            .ops
            .iter()
            .map(|op| match op {
                CartOp::Add { item, quantity, .. } => {
                    format!("add {} ×{}", item.item_id, quantity.map_or("?".into(), |q| q.to_string()))
                }
                other => format!("{other:?}").split([' ', '{']).next().unwrap_or_default().to_string(),
            })
            .collect();
        println!("  \"{u}\" → {kinds:?}");
    }
    devset(None);
    for seed in [1, 2, 3] {
        devset(Some(AsrNoise::new(0.1, seed)));
    }
}

/// The demo stores' catalogs (tests/data/catalogs/<store id>.json).
fn demo_catalogs(data: &Path) -> HashMap<String, Understander> {
    let mut stores = HashMap::new();
    let Ok(files) = std::fs::read_dir(data.join("catalogs")) else { return stores };
    for path in files.flatten().map(|f| f.path()) {
        let text = std::fs::read_to_string(&path).expect("catalog file");
        let catalog = Catalog::from_json(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        stores.insert(catalog.store.id.clone(), Understander::new(&catalog));
    }
    stores
}

type Line = (String, Option<String>, u64, Vec<String>);

/// Plays the development set, clean or with simulated ASR noise (each case
/// corrupted with its index over the sorted case files as the salt, as the
/// devset test does).
fn devset(noise: Option<AsrNoise>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let data = dir.join("tests/data");
    let Ok(files) = std::fs::read_dir(&data) else { return };
    let stores = demo_catalogs(&data);
    let show: usize = std::env::var("BENCH_SHOW_MISSES").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut shown = 0;
    // per language: cases, exact carts, expected lines, found lines,
    // expected lines whose item was found, found lines whose item was expected
    let mut tally: std::collections::BTreeMap<String, [usize; 6]> = Default::default();
    let mut paths: Vec<_> =
        files.flatten().map(|f| f.path()).filter(|p| p.extension() == Some("jsonl".as_ref())).collect();
    paths.sort();
    let mut index = 0u64;
    for path in paths {
        for line in std::fs::read_to_string(&path).unwrap().lines().filter(|l| !l.trim().is_empty()) {
            let case: Value = serde_json::from_str(line).expect("case");
            let salt = index;
            index += 1;
            let Some(u) = stores.get(case["store_id"].as_str().unwrap_or_default()) else { continue };
            let mut cart = Cart::default();
            for turn in case["turns"].as_array().unwrap() {
                let turn = turn.as_str().unwrap();
                let turn = noise.map_or_else(|| turn.to_string(), |n| n.corrupt(turn, salt));
                for op in u.understand_in(&turn, &cart.context()).ops {
                    cart.apply(u.catalog(), &op);
                }
            }
            let mut got: Vec<Line> = cart
                .lines
                .iter()
                .map(|l| {
                    let mods = l.modifiers.iter().map(|m| m.option_id.clone()).collect();
                    (l.item_id.clone(), l.variant_id.clone(), l.quantity.milli(), mods)
                })
                .collect();
            let mut want: Vec<Line> = case["expected"]["lines"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| {
                    let mut mods: Vec<String> =
                        l["modifiers"].as_array().unwrap().iter().map(|m| m.as_str().unwrap().to_string()).collect();
                    mods.sort();
                    let qty = (l["quantity"].as_f64().unwrap() * 1000.0).round() as u64;
                    (l["item_id"].as_str().unwrap().into(), l["variant_id"].as_str().map(Into::into), qty, mods)
                })
                .collect();
            got.sort();
            want.sort();
            let lang = case["lang"].as_str().unwrap_or("?").to_string();
            let t = tally.entry(lang).or_default();
            t[0] += 1;
            t[1] += usize::from(got == want);
            t[2] += want.len();
            t[3] += got.len();
            // By item: a case may expect one item in two sizes (1kg and 500g).
            t[4] += want.iter().filter(|w| got.iter().any(|g| g.0 == w.0)).count();
            t[5] += got.iter().filter(|g| want.iter().any(|w| w.0 == g.0)).count();
            if got != want && shown < show {
                shown += 1;
                println!("miss {}: {:?}\n  want {want:?}\n  got  {got:?}", case["id"], case["turns"]);
            }
        }
    }
    let mut all = [0; 6];
    match noise {
        None => println!("dev set (parser and cart only, no dialog):"),
        Some(n) => println!("dev set with ASR noise {} seed {}:", n.rate, n.seed),
    }
    for (lang, t) in &tally {
        (0..6).for_each(|i| all[i] += t[i]);
        print_tally(lang, t);
    }
    print_tally("all", &all);
}

fn print_tally(lang: &str, t: &[usize; 6]) {
    let pct = |a: usize, b: usize| if b == 0 { 0.0 } else { 100.0 * a as f64 / b as f64 };
    println!(
        "  {lang:6} {:4} cases  exact carts {:5.1} %  item recall {:5.1} %  item precision {:5.1} %",
        t[0],
        pct(t[1], t[0]),
        pct(t[4], t[2]),
        pct(t[5], t[3])
    );
}
