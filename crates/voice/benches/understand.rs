//! Order understanding on a generated 200-item catalog: the time to parse
//! one utterance (normalise, match, build operations), p50/p99/max over
//! many utterances in Hinglish, Devanagari and English, one to four items
//! each, with ASR misspellings. Target: p99 ≤ 5 ms.
//!
//!     cargo bench -p mangwale-voice --bench understand
//!
//! Knob: BENCH_ROUNDS (default 200 passes over the utterances). It asserts
//! nothing.

use std::hint::black_box;
use std::time::Instant;

use mangwale_voice::{CartOp, Catalog, Understander};

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
}
