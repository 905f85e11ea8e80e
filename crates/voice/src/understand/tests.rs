//! Table-driven cases over two small stores, in Hinglish, Devanagari
//! Hindi, Marathi and English: each case's turns are understood in the
//! cart's context and applied, and the cart must come out as listed.

use super::*;
use crate::cart::Cart;

const MISAL_HOUSE: &str = r#"{
  "store": {"id": "godavari", "name": "Godavari Misal House", "language": "mr"},
  "items": [
    {"id": "misal", "name": "Misal Pav", "aliases": ["misal", "misal paav", "मिसळ पाव", "मिसळ"], "price": 90,
     "unit": "plate", "category": "Misal", "available": true,
     "variants": [{"id": "half", "name": "Half plate", "aliases": ["half", "हाफ", "अर्धी प्लेट"], "price": 55}],
     "modifier_groups": [
       {"id": "spice", "name": "Spice", "exclusive": true, "default": "medium", "options": [
         {"id": "medium", "name": "Medium", "price_delta": 0},
         {"id": "kam", "name": "Less spicy", "aliases": ["kam teekha", "कम तीखा", "कमी तिखट"], "price_delta": 0},
         {"id": "extra", "name": "Extra spicy", "aliases": ["extra teekha", "जास्त तिखट"], "price_delta": 0}]},
       {"id": "onion", "name": "Onion", "exclusive": false, "options": [
         {"id": "no_onion", "name": "No onion", "aliases": ["bina pyaaz", "बिना प्याज़", "कांदा नको"], "price_delta": 0}]}]},
    {"id": "vada", "name": "Vada Pav", "aliases": ["wada pav", "वडा पाव"], "price": 20, "unit": "piece",
     "category": "Snacks", "available": true},
    {"id": "cutting", "name": "Cutting Chai", "aliases": ["cutting", "कटिंग", "कटिंग चाय", "कटिंग चहा"], "price": 12,
     "unit": "piece", "category": "Drinks", "available": true},
    {"id": "masala_chai", "name": "Masala Chai", "aliases": ["मसाला चाय"], "price": 20, "unit": "piece",
     "category": "Drinks", "available": true},
    {"id": "adrak_chai", "name": "Adrak Chai", "aliases": ["ginger tea", "अदरक चाय", "आले चहा"], "price": 20,
     "unit": "piece", "category": "Drinks", "available": true},
    {"id": "samosa", "name": "Samosa", "aliases": ["समोसा"], "price": 15, "unit": "piece", "category": "Snacks",
     "available": true},
    {"id": "pav", "name": "Extra Pav", "aliases": ["pav", "पाव"], "price": 10, "unit": "piece", "category": "Extras",
     "available": true},
    {"id": "poha", "name": "Poha", "aliases": ["pohe", "पोहे", "पोहा"], "price": 30, "unit": "plate",
     "category": "Breakfast", "available": true},
    {"id": "batata_vada", "name": "Batata Vada", "aliases": ["बटाटा वडा"], "price": 15, "unit": "piece",
     "category": "Snacks", "available": true},
    {"id": "pav_bhaji", "name": "Pav Bhaji", "aliases": ["पाव भाजी"], "price": 80, "unit": "plate",
     "category": "Snacks", "available": true},
    {"id": "pav_bhaji_half", "name": "Pav Bhaji Half", "aliases": ["half pav bhaji", "हाफ पाव भाजी"], "price": 50,
     "unit": "plate", "category": "Snacks", "available": true},
    {"id": "bhaji", "name": "Kanda Bhaji", "aliases": ["onion pakoda", "कांदा भजी"], "price": 40, "unit": "plate",
     "category": "Snacks", "available": true}
  ]
}"#;

const KIRANA: &str = r#"{
  "store": {"id": "kirana", "name": "Shree Kirana", "language": "hi"},
  "items": [
    {"id": "sugar", "name": "Sugar", "aliases": ["shakkar", "cheeni", "chini", "साखर", "चीनी", "शक्कर"], "price": 45,
     "unit": "kg", "category": "Staples", "available": true},
    {"id": "toor", "name": "Toor Dal", "aliases": ["tur dal", "arhar dal", "तूर डाळ", "अरहर दाल"], "price": 140,
     "unit": "kg", "category": "Staples", "available": true},
    {"id": "milk", "name": "Milk", "aliases": ["doodh", "दूध"], "price": 56, "unit": "litre", "category": "Dairy",
     "available": true},
    {"id": "eggs", "name": "Eggs", "aliases": ["egg", "anda", "ande", "अंडे", "अंडी"], "price": 7, "unit": "piece",
     "category": "Dairy", "available": true},
    {"id": "bananas", "name": "Bananas", "aliases": ["banana", "kela", "kele", "केळी", "केले"], "price": 60,
     "unit": "dozen", "category": "Fruit", "available": true},
    {"id": "paneer", "name": "Paneer", "aliases": ["पनीर"], "price": 0.4, "unit": "g", "category": "Dairy",
     "available": true},
    {"id": "atta", "name": "Atta", "aliases": ["aata", "gehun atta", "आटा", "पीठ"], "price": 50, "unit": "kg",
     "category": "Staples", "available": true},
    {"id": "shrikhand", "name": "Shrikhand", "aliases": ["श्रीखंड"], "price": 300, "unit": "kg",
     "category": "Sweets", "available": true},
    {"id": "ghee", "name": "Ghee", "aliases": ["घी", "तूप"], "price": 600, "unit": "kg", "category": "Staples",
     "available": false},
    {"id": "oil", "name": "Sunflower Oil", "aliases": ["tel", "oil", "तेल"], "price": 160, "unit": "litre",
     "category": "Staples", "available": true}
  ]
}"#;

fn understander(json: &str) -> Understander {
    Understander::new(&Catalog::from_json(json).expect("test catalog"))
}

/// Plays the turns and returns the cart as (item, variant, quantity, modifier option ids).
fn play(u: &Understander, turns: &[&str]) -> Vec<(String, Option<String>, f64, Vec<String>)> {
    let mut cart = Cart::default();
    for turn in turns {
        let understood = u.understand_in(turn, &cart.context());
        for op in &understood.ops {
            cart.apply(u.catalog(), op);
        }
    }
    cart.lines
        .into_iter()
        .map(|l| (l.item_id, l.variant_id, l.quantity.as_f64(), l.modifiers.into_iter().map(|m| m.option_id).collect()))
        .collect()
}

type Line<'a> = (&'a str, Option<&'a str>, f64, &'a [&'a str]);

fn check(u: &Understander, cases: &[(&[&str], &[Line])]) {
    let mut failures = Vec::new();
    for (turns, expected) in cases {
        let got = play(u, turns);
        let want: Vec<_> = expected
            .iter()
            .map(|(i, v, q, m)| (i.to_string(), v.map(str::to_string), *q, m.iter().map(|s| s.to_string()).collect()))
            .collect::<Vec<_>>();
        if got != want {
            let ops: Vec<_> = turns.iter().map(|t| u.understand(t).ops).collect();
            failures.push(format!("{turns:?}\n  want {want:?}\n  got  {got:?}\n  ops  {ops:?}"));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[test]
fn orders_at_a_misal_house_in_four_languages() {
    let u = understander(MISAL_HOUSE);
    let none: &[&str] = &[];
    check(
        &u,
        &[
            // Hinglish as an ASR writes it
            (&["do plate misal aur ek cutting chai"], &[("misal", None, 2.0, none), ("cutting", None, 1.0, none)]),
            (&["teen missal paav"], &[("misal", None, 3.0, none)]),
            (&["misalpav do"], &[("misal", None, 2.0, none)]),
            (&["do mis al aur ek sa mosa"], &[("misal", None, 2.0, none), ("samosa", None, 1.0, none)]),
            (&["misal do plate"], &[("misal", None, 2.0, none)]),
            (&["2 misal"], &[("misal", None, 2.0, none)]),
            (&["ek samosa ek masala chai"], &[("samosa", None, 1.0, none), ("masala_chai", None, 1.0, none)]),
            (&["do wada pav aur char pav"], &[("vada", None, 2.0, none), ("pav", None, 4.0, none)]),
            (
                &["kanda bhaji ek plate aur do adrak chai"],
                &[("bhaji", None, 1.0, none), ("adrak_chai", None, 2.0, none)],
            ),
            (&["bhaiya ek poha dena jaldi"], &[("poha", None, 1.0, none)]),
            // Devanagari Hindi and Marathi
            (&["दोन मिसळ पाव, एक कटिंग"], &[("misal", None, 2.0, none), ("cutting", None, 1.0, none)]),
            (&["एक मिसळ आणि दोन वडा पाव"], &[("misal", None, 1.0, none), ("vada", None, 2.0, none)]),
            (&["दो समोसा और एक अदरक चाय"], &[("samosa", None, 2.0, none), ("adrak_chai", None, 1.0, none)]),
            (&["तीन पोहे आणि चार कटिंग चहा"], &[("poha", None, 3.0, none), ("cutting", None, 4.0, none)]),
            (&["don misal ani paach cutting"], &[("misal", None, 2.0, none), ("cutting", None, 5.0, none)]),
            // English
            (
                &["two misal pav and one cutting chai please"],
                &[("misal", None, 2.0, none), ("cutting", None, 1.0, none)],
            ),
            (&["one plate poha and two samosas"], &[("poha", None, 1.0, none), ("samosa", None, 2.0, none)]),
            (&["three ginger tea"], &[("adrak_chai", None, 3.0, none)]),
            // variants and modifiers
            (&["ek half plate misal"], &[("misal", Some("half"), 1.0, none)]),
            (&["do misal kam teekha"], &[("misal", None, 2.0, &["kam"])]),
            (&["ek misal bina pyaaz"], &[("misal", None, 1.0, &["no_onion"])]),
            (&["ek misal no pyaaz extra teekha"], &[("misal", None, 1.0, &["no_onion", "extra"])]),
            (&["एक मिसळ कमी तिखट"], &[("misal", None, 1.0, &["kam"])]),
            (&["ek misal", "half"], &[("misal", Some("half"), 1.0, none)]),
            (&["ek misal", "kam teekha"], &[("misal", None, 1.0, &["kam"])]),
            // corrections and removals
            (&["do misal", "nahi, do nahi teen"], &[("misal", None, 3.0, none)]),
            (&["do misal nahi teen misal"], &[("misal", None, 3.0, none)]),
            (&["do misal", "teen kar do"], &[("misal", None, 3.0, none)]),
            (&["do misal aur ek samosa", "samosa hata do"], &[("misal", None, 2.0, none)]),
            (&["do misal aur ek cutting", "cancel the cutting chai"], &[("misal", None, 2.0, none)]),
            (&["ek samosa aur ek poha", "समोसा नको"], &[("poha", None, 1.0, none)]),
            (&["ek misal nahi vada pav"], &[("vada", None, 1.0, none)]),
            (&["do misal", "sab hata do", "ek poha"], &[("poha", None, 1.0, none)]),
            (&["ek samosa", "hata do"], none_lines()),
            (&["teen misal", "ek plate kam karo"], &[("misal", None, 2.0, none)]),
            (&["पाच मिसळ पाव", "दोन मिसळ कमी करा"], &[("misal", None, 3.0, none)]),
            (&["teen misal", "ek aur misal"], &[("misal", None, 4.0, none)]),
            (&["ek batata vada ani don cutting", "vada nako"], &[("cutting", None, 2.0, none)]),
            (&["paach vada pav ani paach cutting", "vada pav hatva"], &[("cutting", None, 5.0, none)]),
            (&["बारा वडा पाव"], &[("vada", None, 12.0, none)]),
            (&["barah vada pav"], &[("vada", None, 12.0, none)]),
            (&["ek half plate pav bhaji"], &[("pav_bhaji_half", None, 1.0, none)]),
            (&["do pav bhaji aadhi plate"], &[("pav_bhaji_half", None, 2.0, none)]),
            (&["half misal"], &[("misal", Some("half"), 1.0, none)]),
            (&["a dozen samosas"], &[("samosa", None, 12.0, none)]),
            (&["two samosas", "make the samosas four"], &[("samosa", None, 4.0, none)]),
            (&["do misal", "order cancel karo"], none_lines()),
        ],
    );
}

fn none_lines() -> &'static [Line<'static>] {
    &[]
}

#[test]
fn weights_volumes_and_fractions_at_a_kirana() {
    let u = understander(KIRANA);
    let none: &[&str] = &[];
    check(
        &u,
        &[
            (&["ek kilo chini aur aadha kilo toor dal"], &[("sugar", None, 1.0, none), ("toor", None, 0.5, none)]),
            (&["500 gram shakkar"], &[("sugar", None, 0.5, none)]),
            (&["500g sugar"], &[("sugar", None, 0.5, none)]),
            (&["पाव किलो साखर"], &[("sugar", None, 0.25, none)]),
            (&["pav kilo shrikhand"], &[("shrikhand", None, 0.25, none)]),
            (&["sawa kilo atta"], &[("atta", None, 1.25, none)]),
            (&["dedh litre doodh"], &[("milk", None, 1.5, none)]),
            (&["ढाई किलो आटा"], &[("atta", None, 2.5, none)]),
            (&["अडीच किलो साखर"], &[("sugar", None, 2.5, none)]),
            (&["दीड किलो साखर"], &[("sugar", None, 1.5, none)]),
            (&["paune do kilo arhar dal"], &[("toor", None, 1.75, none)]),
            (&["ek darjan ande"], &[("eggs", None, 12.0, none)]),
            (&["do darjan kele"], &[("bananas", None, 2.0, none)]),
            (&["250 gram paneer"], &[("paneer", None, 250.0, none)]),
            (&["ek kilo paneer"], &[("paneer", None, 1000.0, none)]),
            (&["two litres of milk"], &[("milk", None, 2.0, none)]),
            (&["half kg sugar and 250 ml oil"], &[("sugar", None, 0.5, none), ("oil", None, 0.25, none)]),
            (&["dhai sau gram paneer"], &[("paneer", None, 250.0, none)]),
            (&["चीनी एक किलो, तेल दो लीटर"], &[("sugar", None, 1.0, none), ("oil", None, 2.0, none)]),
            (&["एक किलो साखर आणि अर्धा लिटर दूध"], &[("sugar", None, 1.0, none), ("milk", None, 0.5, none)]),
            (&["ek kilo chini", "nahi do nahi teen"], &[("sugar", None, 3.0, none)]),
            (&["ek kilo chini", "aadha kilo kar do"], &[("sugar", None, 0.5, none)]),
            (&["दोनशे ग्राम पनीर"], &[("paneer", None, 200.0, none)]),
            (&["adichshe gram paneer"], &[("paneer", None, 250.0, none)]),
            (&["साडेतीन किलो आटा"], &[("atta", None, 3.5, none)]),
            (&["one and a quarter kilo sugar"], &[("sugar", None, 1.25, none)]),
            (&["three quarter kilo sugar"], &[("sugar", None, 0.75, none)]),
            (&["do paneer 200 gram wale"], &[("paneer", None, 400.0, none)]),
            (&["ek tel 500 ml"], &[("oil", None, 0.5, none)]),
            (&["साखरेचा एक पुडा"], &[("sugar", None, 1.0, none)]),
            (&["ek kilo ghee aur ek kilo chini"], &[("sugar", None, 1.0, none)]),
        ],
    );
}

#[test]
fn ambiguous_words_come_back_with_alternatives() {
    let u = understander(MISAL_HOUSE);
    let ops = u.understand("ek chai").ops;
    let [CartOp::Add { item, quantity, .. }] = ops.as_slice() else { panic!("{ops:?}") };
    assert_eq!(*quantity, Some(Qty::ONE));
    assert!(item.is_ambiguous(), "{item:?}");
    let mut ids: Vec<&str> =
        std::iter::once(item.item_id.as_str()).chain(item.alternatives.iter().map(|a| a.item_id.as_str())).collect();
    ids.sort();
    assert_eq!(ids, ["adrak_chai", "cutting", "masala_chai"]);
    assert!(item.confidence < 0.7);

    let ops = u.understand("ek masala chai").ops;
    let [CartOp::Add { item, .. }] = ops.as_slice() else { panic!("{ops:?}") };
    assert!(!item.is_ambiguous() && item.confidence > 0.9, "{item:?}");
}

#[test]
fn items_not_in_the_catalog_are_not_forced_onto_one() {
    let u = understander(MISAL_HOUSE);
    for (text, heard, qty) in [("do pizza", "pizza", Some(2.0)), ("ek burger aur do misal", "burger", Some(1.0))] {
        let ops = u.understand(text).ops;
        let found = ops.iter().find_map(|op| match op {
            CartOp::NotInCatalog { heard, amount, removal: false } => {
                Some((heard.clone(), amount.map(|a| a.value.as_f64())))
            }
            _ => None,
        });
        assert_eq!(found, Some((heard.to_string(), qty)), "{text}: {ops:?}");
        assert!(!ops.iter().any(|op| matches!(op, CartOp::Add { item, .. } if item.heard == heard)), "{ops:?}");
    }
    let ops = u.understand("biryani").ops;
    assert!(matches!(ops.as_slice(), [CartOp::NotInCatalog { .. }]), "{ops:?}");
}

#[test]
fn yes_no_cancel_and_questions() {
    let u = understander(MISAL_HOUSE);
    let cases: &[(&str, CartOp)] = &[
        ("haan", CartOp::Confirm),
        ("ha ji theek hai", CartOp::Confirm),
        ("ho", CartOp::Confirm),
        ("hoy barobar", CartOp::Confirm),
        ("yes confirm", CartOp::Confirm),
        ("हाँ", CartOp::Confirm),
        ("होय", CartOp::Confirm),
        ("confirm confirm", CartOp::Confirm),
        ("nahi", CartOp::Reject),
        ("nako", CartOp::Reject),
        ("no", CartOp::Reject),
        ("नाही", CartOp::Reject),
        ("नहीं", CartOp::Reject),
        ("cancel", CartOp::Cancel),
        ("order cancel kar do", CartOp::Cancel),
        ("rehne do", CartOp::Cancel),
        ("ऑर्डर रद्द करा", CartOp::Cancel),
        ("sab hata do", CartOp::Clear),
    ];
    for (text, want) in cases {
        assert_eq!(u.understand(text).ops, vec![want.clone()], "{text}");
    }
    let ops = u.understand("misal kitne ka hai").ops;
    assert!(
        matches!(ops.as_slice(), [CartOp::Ask { topic: AskTopic::Price, item: Some(i) }] if i.item_id == "misal"),
        "{ops:?}"
    );
    assert!(matches!(
        u.understand("kab tak aayega").ops.as_slice(),
        [CartOp::Ask { topic: AskTopic::DeliveryTime, .. }]
    ));
    assert!(matches!(
        u.understand("manager se baat karni hai").ops.as_slice(),
        [CartOp::Ask { topic: AskTopic::Human, .. }]
    ));
    assert!(u.understand("").ops.is_empty());
}

#[test]
fn the_language_and_script_are_detected() {
    let u = understander(MISAL_HOUSE);
    let cases = [
        ("do plate misal aur ek cutting chai", Lang::HiEn, Script::Latin),
        ("two misal and one cutting chai please", Lang::En, Script::Latin),
        ("दोन मिसळ पाव आणि एक कटिंग", Lang::Mr, Script::Devanagari),
        ("दो समोसा और एक चाय", Lang::Hi, Script::Devanagari),
        ("don misal ani ek cutting pahije", Lang::Mr, Script::Latin),
    ];
    for (text, lang, script) in cases {
        let understood = u.understand(text);
        assert_eq!((understood.language, understood.script), (lang, script), "{text}");
    }
}

#[test]
fn operations_serialize_with_ids_and_typed_quantities() {
    let u = understander(KIRANA);
    let ops = u.understand("dedh kilo chini").ops;
    let json = serde_json::to_value(&ops).unwrap();
    assert_eq!(json[0]["op"], "add");
    assert_eq!(json[0]["item"]["item_id"], "sugar");
    assert_eq!(json[0]["quantity"], 1.5);
    let back: Vec<CartOp> = serde_json::from_value(json).unwrap();
    assert_eq!(back, ops);
}

#[test]
fn an_unavailable_item_is_understood_but_never_a_line() {
    let u = understander(KIRANA);
    let ops = u.understand("ek kilo ghee").ops;
    assert!(matches!(ops.as_slice(), [CartOp::Add { item, .. }] if item.item_id == "ghee"), "{ops:?}");
    let mut cart = Cart::default();
    assert!(!cart.apply(u.catalog(), &ops[0]));
    assert!(cart.lines.is_empty());
}

#[test]
fn another_items_size_said_of_an_item_without_sizes_is_its_weight() {
    // Sharma Kirana: Besan has a 500g variant aliased "aadha kilo"; Curd has none.
    let u = understander(include_str!("../../tests/data/catalogs/1.json"));
    check(
        &u,
        &[
            (&["aadha kilo dahi"], &[("1017", None, 500.0, &[])]),
            (&["आधा लीटर दूध"], &[("1016", Some("500ml"), 1.0, &[])]),
        ],
    );
}

#[test]
fn english_words_that_sound_like_number_words_are_not_quantities() {
    let u = understander(MISAL_HOUSE);
    // "did" is not दीड (1½); "deed" spelled out still is.
    check(
        &u,
        &[
            (&["i did order misal pav"], &[("misal", None, 1.0, &[])]),
            (&["deed plate misal"], &[("misal", None, 1.5, &[])]),
        ],
    );
}

/// A sweet shop, bakery and kirana in one: items sold in weight sizes,
/// items counted in packs of a weight or of pieces, a half item.
const SIZES_AND_PACKS: &str = r#"{
  "store": {"id": "mixed", "name": "Mixed Store", "language": "hi-en"},
  "items": [
    {"id": "pedha", "name": "Pedha", "aliases": ["pede", "पेढे", "पेड़ा"], "price": 480, "unit": "g",
     "category": "Sweets", "available": true,
     "variants": [
       {"id": "250g", "name": "250 g", "aliases": ["paav kilo", "पाव किलो"], "price": 120},
       {"id": "500g", "name": "500 g", "aliases": ["aadha kilo", "अर्धा किलो"], "price": 240},
       {"id": "1kg", "name": "1 kg", "aliases": ["ek kilo", "एक किलो"], "price": 480}]},
    {"id": "besan", "name": "Besan", "aliases": ["बेसन"], "price": 58, "unit": "g", "category": "Flour",
     "available": true, "pack_size": {"quantity": 500, "unit": "g"},
     "variants": [
       {"id": "500g", "name": "500 g", "aliases": ["aadha kilo"], "price": 58},
       {"id": "1kg", "name": "1 kg", "aliases": ["ek kilo", "1 kilo"], "price": 116}]},
    {"id": "bread", "name": "White Bread", "aliases": ["bread", "ब्रेड"], "price": 0.1, "unit": "g",
     "category": "Bakery", "available": true, "pack_size": {"quantity": 400, "unit": "g"}},
    {"id": "eggs", "name": "Eggs", "aliases": ["ande", "anda", "अंडे", "अंडी"], "price": 42, "unit": "pack",
     "category": "Dairy", "available": true, "pack_size": {"quantity": 6, "unit": "piece"}},
    {"id": "chilli", "name": "Red Chilli Powder", "aliases": ["lal mirch", "लाल मिर्च"], "price": 0.5, "unit": "g",
     "category": "Masala", "available": true, "pack_size": {"quantity": 100, "unit": "g"}},
    {"id": "coke", "name": "Coca Cola", "aliases": ["coke", "कोक"], "price": 0.08, "unit": "ml",
     "category": "Drinks", "available": true, "pack_size": {"quantity": 500, "unit": "ml"}},
    {"id": "idli", "name": "Idli Sambar", "aliases": ["idli", "इडली"], "price": 50, "unit": "plate",
     "category": "Breakfast", "available": true,
     "variants": [
       {"id": "plate", "name": "Plate (2 idli)", "aliases": ["plate"], "price": 50},
       {"id": "single", "name": "Single idli", "aliases": ["single", "ek idli"], "price": 30}]},
    {"id": "chai", "name": "Cutting Chai", "aliases": ["chai", "चाय"], "price": 12, "unit": "piece",
     "category": "Drinks", "available": true,
     "variants": [
       {"id": "cutting", "name": "Cutting", "aliases": ["cutting", "कटिंग"], "price": 12},
       {"id": "full", "name": "Full cup", "aliases": ["full"], "price": 20}]},
    {"id": "samosa", "name": "Samosa", "aliases": ["samose", "समोसा"], "price": 15, "unit": "piece",
     "category": "Snacks", "available": true},
    {"id": "raita", "name": "Raita", "aliases": ["रायता"], "price": 40, "unit": "plate", "category": "Sides",
     "available": true},
    {"id": "biryani", "name": "Chicken Biryani", "aliases": ["biryani", "बिरयानी"], "price": 220, "unit": "plate",
     "category": "Biryani", "available": true},
    {"id": "biryani_half", "name": "Chicken Biryani Half", "aliases": ["half biryani", "हाफ बिरयानी"],
     "price": 130, "unit": "plate", "category": "Biryani", "available": true}
  ]
}"#;

#[test]
fn hindi_and_marathi_numbers_up_to_ninety_nine() {
    let u = understander(SIZES_AND_PACKS);
    let none: &[&str] = &[];
    check(
        &u,
        &[
            (&["teis samose"], &[("samosa", None, 23.0, none)]),
            (&["chhabbis samose"], &[("samosa", None, 26.0, none)]),
            (&["सैंतालीस समोसे"], &[("samosa", None, 47.0, none)]),
            (&["pachpan samose"], &[("samosa", None, 55.0, none)]),
            (&["निन्यानवे समोसे"], &[("samosa", None, 99.0, none)]),
            (&["तेवीस समोसे"], &[("samosa", None, 23.0, none)]),
            (&["बेचाळीस समोसे"], &[("samosa", None, 42.0, none)]),
            (&["एकसष्ट समोसे"], &[("samosa", None, 61.0, none)]),
            (&["sattavis samose"], &[("samosa", None, 27.0, none)]),
            (&["pasashta samose"], &[("samosa", None, 65.0, none)]),
        ],
    );
}

#[test]
fn weights_of_items_sold_in_sizes_are_packs_of_those_sizes() {
    let u = understander(SIZES_AND_PACKS);
    let none: &[&str] = &[];
    check(
        &u,
        &[
            (&["dedh kilo pede"], &[("pedha", Some("1kg"), 1.0, none), ("pedha", Some("500g"), 1.0, none)]),
            (&["do kilo pedha"], &[("pedha", Some("1kg"), 2.0, none)]),
            (&["sawa kilo pedha"], &[("pedha", Some("1kg"), 1.0, none), ("pedha", Some("250g"), 1.0, none)]),
            (&["पौने एक किलो पेड़ा"], &[("pedha", Some("500g"), 1.0, none), ("pedha", Some("250g"), 1.0, none)]),
            (&["dhai sau gram pedha"], &[("pedha", Some("250g"), 1.0, none)]),
            // A fraction of an item sold by the gram is of a kilo.
            (&["paav pedha"], &[("pedha", Some("250g"), 1.0, none)]),
            (
                &["ek kilo pedha", "nahi dedh kilo"],
                &[("pedha", Some("1kg"), 1.0, none), ("pedha", Some("500g"), 1.0, none)],
            ),
            // No size or weight said: the dialog asks which.
            (&["do pedha"], &[("pedha", None, 2.0, none)]),
            // Sizes that do not add up stay a weight.
            (&["100 gram pedha"], &[("pedha", None, 100.0, none)]),
        ],
    );
}

#[test]
fn counts_of_items_sold_in_packs_are_packs() {
    let u = understander(SIZES_AND_PACKS);
    let none: &[&str] = &[];
    check(
        &u,
        &[
            (&["do bread"], &[("bread", None, 800.0, none)]),
            (&["ek coke"], &[("coke", None, 500.0, none)]),
            (&["ek lal mirch"], &[("chilli", None, 100.0, none)]),
            (&["200 gram lal mirch"], &[("chilli", None, 200.0, none)]),
            (&["ek darjan ande"], &[("eggs", None, 2.0, none)]),
            (&["aadha darjan ande"], &[("eggs", None, 1.0, none)]),
            (&["chhe ande"], &[("eggs", None, 1.0, none)]),
            (&["do packet ande"], &[("eggs", None, 2.0, none)]),
        ],
    );
}

#[test]
fn a_size_said_in_the_name_or_as_the_unit_is_that_variant() {
    let u = understander(SIZES_AND_PACKS);
    let none: &[&str] = &[];
    check(
        &u,
        &[
            (&["ek cutting chai"], &[("chai", Some("cutting"), 1.0, none)]),
            (&["char cutting"], &[("chai", Some("cutting"), 4.0, none)]),
            (&["ek chai"], &[("chai", None, 1.0, none)]),
            (&["do plate idli"], &[("idli", Some("plate"), 2.0, none)]),
            // "ek idli sambar" is one Idli Sambar, not the single idli and sambar.
            (&["ek idli sambar"], &[("idli", None, 1.0, none)]),
            (&["half biryani", "nahi full plate"], &[("biryani", None, 1.0, none)]),
        ],
    );
}

#[test]
fn words_an_asr_ran_together_or_split_are_mended() {
    let u = understander(SIZES_AND_PACKS);
    let none: &[&str] = &[];
    check(
        &u,
        &[
            (&["do samose aur ekraita"], &[("samosa", None, 2.0, none), ("raita", None, 1.0, none)]),
            (&["tw samose"], &[("samosa", None, 2.0, none)]),
            (&["te en samose"], &[("samosa", None, 3.0, none)]),
            (&["dokilo pede"], &[("pedha", Some("1kg"), 2.0, none)]),
            (&["ded kilo pede"], &[("pedha", Some("1kg"), 1.0, none), ("pedha", Some("500g"), 1.0, none)]),
            (&["do samose", "canc el"], &[]),
            (&["ec samosa"], &[("samosa", None, 1.0, none)]),
        ],
    );
}

#[test]
fn unknown_things_beside_known_words_stay_unknown() {
    let u = understander(SIZES_AND_PACKS);
    // "hari mirch" at a shop that sells only lal mirch.
    let ops = u.understand("paav kilo hari mirch").ops;
    assert!(matches!(ops.as_slice(), [CartOp::NotInCatalog { heard, .. }] if heard == "hari mirch"), "{ops:?}");
    // "ek kilo" is Besan's size, but said of paneer, which the shop does not sell.
    let ops = u.understand("ek kilo paneer").ops;
    assert!(
        matches!(ops.as_slice(), [CartOp::NotInCatalog { heard, amount: Some(_), .. }] if heard == "paneer"),
        "{ops:?}"
    );
    // An amount after "aur" with its item unheard changes no line.
    assert_eq!(play(&u, &["do samose aur ek kilo"]), vec![("samosa".to_string(), None, 2.0, Vec::new())]);
    // A word that is no number and no item is not split into them.
    let ops = u.understand("theek hai").ops;
    assert_eq!(ops, vec![CartOp::Confirm]);
}

/// A store written the way outside catalogs are: items sold in packs whose
/// sizes are named "500 g", "1 kg bag", "1 ltr pouch" or only by their id,
/// plates with full and half variants, bottles called small and big.
const OUTSIDE_STORE: &str = r#"{
  "store": {"id": "outside", "name": "Outside Store", "language": "hi"},
  "items": [
    {"id": "tea", "name": "Tata Tea Premium", "aliases": ["tata tea"], "price": 130, "unit": "pack",
     "category": "Tea", "available": true,
     "variants": [{"id": "250g", "name": "250 gm", "price": 130}, {"id": "500g", "name": "500 g", "price": 255},
                  {"id": "1kg", "name": "1 kg", "price": 500}]},
    {"id": "salt", "name": "Tata Salt", "aliases": ["namak"], "price": 28, "unit": "pack", "category": "Staples",
     "available": true},
    {"id": "milk", "name": "Gokul Milk", "aliases": ["gokul doodh", "doodh", "दूध"], "price": 34, "unit": "pack",
     "category": "Dairy", "available": true,
     "variants": [{"id": "500ml", "name": "half litre pouch", "price": 34}, {"id": "1l", "name": "Big pouch", "price": 66}]},
    {"id": "atta", "name": "Aashirvaad Atta", "aliases": ["atta"], "price": 245, "unit": "pack", "category": "Staples",
     "available": true,
     "variants": [{"id": "5kg", "name": "5 kg bag", "price": 245}, {"id": "10kg", "name": "10 kg bag", "price": 470}]},
    {"id": "basmati", "name": "Basmati Rice", "aliases": ["basmati", "बासमती"], "price": 110, "unit": "kg",
     "category": "Rice", "available": true},
    {"id": "kolam", "name": "Kolam Rice", "aliases": ["kolam chawal"], "price": 62, "unit": "kg", "category": "Rice",
     "available": true},
    {"id": "lux", "name": "Lux Soap", "aliases": ["lux", "लक्स"], "price": 38, "unit": "piece",
     "category": "Personal Care", "available": true},
    {"id": "mask", "name": "N95 Mask", "aliases": ["mask"], "price": 40, "unit": "piece", "category": "Devices",
     "available": true},
    {"id": "vicks_action", "name": "Vicks Action 500 (strip of 10)", "aliases": ["vicks action"], "price": 48,
     "unit": "pack", "category": "Cold", "available": true},
    {"id": "vaporub", "name": "Vicks VapoRub", "aliases": ["vicks"], "price": 50, "unit": "pack", "category": "Cold",
     "available": true,
     "variants": [{"id": "25ml", "name": "25 ml", "aliases": ["chhota"], "price": 50},
                  {"id": "50ml", "name": "50 ml", "aliases": ["bada"], "price": 95}]},
    {"id": "benadryl", "name": "Benadryl", "aliases": ["benadryl", "बेनाड्रिल"], "price": 125, "unit": "pack",
     "category": "Cold", "available": true,
     "variants": [{"id": "100ml", "name": "100 ml bottle", "aliases": ["chhoti bottle"], "price": 125},
                  {"id": "150ml", "name": "150 ml bottle", "aliases": ["badi bottle"], "price": 165}]},
    {"id": "dettol", "name": "Dettol Liquid", "aliases": ["dettol"], "price": 65, "unit": "pack", "category": "First Aid",
     "available": true,
     "variants": [{"id": "125ml", "name": "125 ml", "aliases": ["chhoti"], "price": 65},
                  {"id": "550ml", "name": "550 ml", "aliases": ["badi"], "price": 240}]},
    {"id": "manchurian", "name": "Veg Manchurian", "aliases": ["manchurian"], "price": 140, "unit": "plate",
     "category": "Chinese", "available": true,
     "variants": [{"id": "full", "name": "Full plate", "price": 140}, {"id": "half", "name": "Half plate", "price": 85}]},
    {"id": "pbm", "name": "Paneer Butter Masala", "aliases": ["paneer butter masala"], "price": 220, "unit": "plate",
     "category": "Punjabi", "available": true,
     "variants": [{"id": "full", "name": "Full plate", "price": 220}, {"id": "half", "name": "Half plate", "price": 130}]},
    {"id": "vada_pav", "name": "Vada Pav", "aliases": ["vada pav", "वडा पाव"], "price": 20, "unit": "piece",
     "category": "Snacks", "available": true,
     "modifier_groups": [{"id": "extras", "name": "Extras", "exclusive": false, "options": [
       {"id": "cheese", "name": "Extra cheese", "aliases": ["extra cheese"], "price_delta": 15}]}]}
  ]
}"#;

#[test]
fn an_outside_catalogs_sizes_hold_whatever_their_names_say() {
    let u = understander(OUTSIDE_STORE);
    let none: &[&str] = &[];
    check(
        &u,
        &[
            // A weight or volume of an item sold in packs of sizes.
            (&["aadha kilo tata tea"], &[("tea", Some("500g"), 1.0, none)]),
            (&["one and a half kilo tata tea"], &[("tea", Some("1kg"), 1.0, none), ("tea", Some("500g"), 1.0, none)]),
            (&["डेढ़ किलो टाटा टी"], &[("tea", Some("1kg"), 1.0, none), ("tea", Some("500g"), 1.0, none)]),
            (&["paav kilo tata tea"], &[("tea", Some("250g"), 1.0, none)]),
            (&["do litre gokul doodh"], &[("milk", Some("1l"), 2.0, none)]),
            (&["दो लीटरदूध"], &[("milk", Some("1l"), 2.0, none)]),
            (&["5 kilo atta"], &[("atta", Some("5kg"), 1.0, none)]),
            // A number that is one of the item's sizes.
            (&["one dettol550"], &[("dettol", Some("550ml"), 1.0, none)]),
            // A number inside a product's name is its name.
            (&["ek vicks action 500"], &[("vicks_action", None, 1.0, none)]),
            // Size words, in any language, after the item.
            (&["paneer butter masala full"], &[("pbm", Some("full"), 1.0, none)]),
            (&["ek half manchurian"], &[("manchurian", Some("half"), 1.0, none)]),
            (&["एक विक्स मोठी"], &[("vaporub", Some("50ml"), 1.0, none)]),
            (&["बेनाड्रिल छोटी बोतल"], &[("benadryl", Some("100ml"), 1.0, none)]),
        ],
    );
}

#[test]
fn corrections_greetings_and_descriptions_around_an_order() {
    let u = understander(OUTSIDE_STORE);
    let none: &[&str] = &[];
    let cheese: &[&str] = &["cheese"];
    check(
        &u,
        &[
            // The last number said of the item wins.
            (&["तीन लक्स साबुन नहीं नहीं चार"], &[("lux", None, 4.0, none)]),
            (&["चार लक्स नको नको सहा"], &[("lux", None, 6.0, none)]),
            (&["three lux soaps no make it four"], &[("lux", None, 4.0, none)]),
            (&["three masks", "sorry make that five masks"], &[("mask", None, 5.0, none)]),
            // Greetings and address forms are no items.
            (&["namaskar dada ek lux dena"], &[("lux", None, 1.0, none)]),
            (&["हॅलो भाऊ जरा दोन लक्स द्या"], &[("lux", None, 2.0, none)]),
            (&["hello sir two masks please"], &[("mask", None, 2.0, none)]),
            // A word that is only part of another item's name describes the item said.
            (&["dedh kilo basmati chawal"], &[("basmati", None, 1.5, none)]),
            (&["बांसमती एक किलो"], &[("basmati", None, 1.0, none)]),
            // "ke saath" is with, not sixty.
            (&["vada pav extra cheese ke saath"], &[("vada_pav", None, 1.0, cheese)]),
            // Number words an ASR stuttered or cut.
            (&["ददो लक्स"], &[("lux", None, 2.0, none)]),
        ],
    );
    // Still not forced onto the nearest item.
    let ops = u.understand("do pizza").ops;
    assert!(matches!(ops.as_slice(), [CartOp::NotInCatalog { .. }]), "{ops:?}");
}

const DAIRY: &str = r#"{
  "store": {"id": "dairy", "name": "Sai Dairy", "language": "mr"},
  "items": [
    {"id": "paneer", "name": "Paneer", "aliases": ["पनीर"], "price": 0.4, "unit": "g", "category": "Dairy",
     "available": true},
    {"id": "khoa", "name": "Khoa", "aliases": ["mawa", "मावा", "खवा"], "price": 360, "unit": "kg",
     "category": "Sweets", "available": true},
    {"id": "ghee", "name": "Ghee", "aliases": ["तूप", "घी"], "price": 340, "unit": "pack", "category": "Dairy",
     "available": true, "variants": [
       {"id": "200g", "name": "200 g jar", "aliases": ["200 gram"], "price": 150},
       {"id": "500g", "name": "500 g jar", "aliases": ["500 gram"], "price": 340},
       {"id": "1kg", "name": "1 kg jar", "aliases": ["1 kilo"], "price": 660}]},
    {"id": "eggs", "name": "Eggs", "aliases": ["anda", "अंडी", "अंडे"], "price": 7, "unit": "piece",
     "category": "Eggs", "available": true},
    {"id": "bread", "name": "Brown Bread", "aliases": ["ब्राउन ब्रेड"], "price": 50, "unit": "pack",
     "category": "Bakery", "available": true},
    {"id": "pav", "name": "Pav", "aliases": ["पाव"], "price": 4, "unit": "piece", "category": "Bakery",
     "available": true},
    {"id": "dahi", "name": "Dahi", "aliases": ["दही"], "price": 120, "unit": "kg", "category": "Dairy",
     "available": true},
    {"id": "toned", "name": "Toned Milk", "aliases": ["doodh"], "price": 28, "unit": "pack", "category": "Milk",
     "available": true, "variants": [
       {"id": "500ml", "name": "500 ml packet", "aliases": ["half litre"], "price": 28},
       {"id": "1l", "name": "1 litre packet", "aliases": ["ek litre"], "price": 54}]},
    {"id": "cream_milk", "name": "Full Cream Milk", "aliases": ["full cream"], "price": 35, "unit": "pack",
     "category": "Milk", "available": true},
    {"id": "masala_milk", "name": "Masala Milk Bottle", "aliases": ["masala doodh"], "price": 35, "unit": "piece",
     "category": "Milk", "available": true}
  ]
}"#;

const TIFFIN: &str = r#"{
  "store": {"id": "tiffin", "name": "Annapurna Tiffin", "language": "mr"},
  "items": [
    {"id": "usal", "name": "Usal", "aliases": ["उसळ"], "price": 60, "unit": "plate", "category": "Meals",
     "available": true, "modifier_groups": [{"id": "spice", "name": "Spice", "exclusive": true, "options": [
       {"id": "hot", "name": "Extra spicy", "aliases": ["jyada teekha", "tikhat"], "price_delta": 0}]}]},
    {"id": "thali", "name": "Veg Thali", "aliases": ["thali", "थाळी"], "price": 120, "unit": "plate",
     "category": "Meals", "available": true}
  ]
}"#;

#[test]
fn hundreds_halves_dozens_and_corrections_at_a_dairy() {
    let u = understander(DAIRY);
    let none: &[&str] = &[];
    check(
        &u,
        &[
            // साडे N-शे is N hundred and fifty.
            (&["साडे तीनशे ग्राम पनीर"], &[("paneer", None, 350.0, none)]),
            (&["saade teen sau gram paneer"], &[("paneer", None, 350.0, none)]),
            // A dozen of an item sold by the piece; "brown" is not Brown Bread.
            (&["एक डझन ब्राउन अंडी"], &[("eggs", None, 12.0, none)]),
            // "milk" is the item called "doodh" alone, not every "... Milk".
            (
                &["one and a half litre milk please"],
                &[("toned", Some("1l"), 1.0, none), ("toned", Some("500ml"), 1.0, none)],
            ),
            // "nahi pav nahi aadha kilo": pav is the quarter corrected.
            (&["पाव किलो मावा", "नहीं पाव नहीं आधा किलो कर दो"], &[("khoa", None, 0.5, none)]),
            // चा is the genitive, not छह; the jar (डबा) names no item.
            (&["अर्धा किलो तूप", "नाही एक किलो चा डबा द्या"], &[("ghee", Some("1kg"), 1.0, none)]),
        ],
    );
}

#[test]
fn an_option_word_beside_words_that_name_nothing_orders_nothing() {
    let u = understander(TIFFIN);
    let ops = u.understand("मुझे एक पनीर टिक्का चाहिए").ops;
    assert!(
        !ops.iter().any(|op| matches!(op, CartOp::Add { .. } | CartOp::SetModifier { .. })),
        "no item from the option word: {ops:?}"
    );
    // Said alone, the option still goes to the item that has it.
    assert!(u.understand("tikhat").ops.iter().any(|op| matches!(op, CartOp::SetModifier { .. })));
}
