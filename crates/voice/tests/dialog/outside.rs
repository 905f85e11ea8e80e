//! What the held-out set's outside writer found the dialog doing wrong:
//! an item asked about and then lost, greetings and address forms taken
//! for items, replies in another language than the caller's.

use std::path::PathBuf;
use std::sync::Arc;

use mangwale_voice::Catalog;
use mangwale_voice::dialog::local::LocalPorts;
use mangwale_voice::dialog::{Dialog, Expects, Input, Mode, Reply};
use mangwale_voice::{Lang, Qty};

fn holdout_catalog(store_id: &str) -> Arc<Catalog> {
    catalog_at(&format!("tests/data/holdout/catalogs/{store_id}.json"))
}

fn catalog_at(path: &str) -> Arc<Catalog> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path);
    Arc::new(Catalog::from_json(&std::fs::read_to_string(path).unwrap()).unwrap())
}

/// A catalog-only call to Godavari Misal House (demo store 7), greeted.
async fn godavari(lang: Lang) -> (Dialog, LocalPorts) {
    let ports = LocalPorts::new(catalog_at("tests/data/catalogs/7.json"));
    let mut dialog = Dialog::new("CA-godavari", Mode::CatalogOnly, lang, Some(ports.store()));
    dialog.turn(Input::Start, &ports).await;
    (dialog, ports)
}

/// A catalog-only call to a held-out store, greeted.
async fn call(store_id: &str, lang: Lang) -> (Dialog, LocalPorts) {
    let ports = LocalPorts::new(holdout_catalog(store_id));
    let mut dialog = Dialog::new("CA-outside", Mode::CatalogOnly, lang, Some(ports.store()));
    dialog.turn(Input::Start, &ports).await;
    (dialog, ports)
}

async fn say(dialog: &mut Dialog, ports: &LocalPorts, text: &str) -> Reply {
    dialog.turn(Input::Say(text.into()), ports).await
}

fn lines(dialog: &Dialog) -> Vec<(String, Qty)> {
    let mut lines: Vec<(String, Qty)> = dialog.cart.lines.iter().map(|l| (l.item_id.clone(), l.quantity)).collect();
    lines.sort();
    lines
}

fn devanagari(text: &str) -> bool {
    text.chars().any(|c| ('\u{0900}'..='\u{097F}').contains(&c))
}

// Store 901 sells Aashirvaad Atta (90101, packs) and Chakki Atta (90102, by
// the kg): "atta" alone fits both.

#[tokio::test]
async fn an_item_asked_about_is_not_lost_when_the_caller_names_another() {
    let (mut d, p) = call("901", Lang::HiEn).await;
    let r = say(&mut d, &p, "do kilo atta").await;
    assert_eq!(r.expects, Expects::Choice, "{}", r.agent);
    let r = say(&mut d, &p, "aur ek kilo sabudana bhi").await;
    assert_eq!(lines(&d), [("90160".to_string(), Qty::whole(1))], "{}", r.agent);
    assert_eq!(r.expects, Expects::Choice, "the atta is asked again: {}", r.agent);
    assert!(r.agent.contains("Chakki Atta"), "{}", r.agent);
    let r = say(&mut d, &p, "2").await;
    assert_eq!(lines(&d), [("90102".to_string(), Qty::whole(2)), ("90160".to_string(), Qty::whole(1))], "{}", r.agent);
}

#[tokio::test]
async fn a_yes_to_which_item_takes_the_likeliest_and_reads_it_back() {
    let (mut d, p) = call("901", Lang::HiEn).await;
    say(&mut d, &p, "do kilo atta").await;
    let r = say(&mut d, &p, "haan confirm").await;
    assert_eq!(lines(&d).len(), 1, "the atta line is kept: {}", r.agent);
    assert_eq!(r.expects, Expects::Confirm, "read back: {}", r.agent);
    assert!(r.agent.contains("Aashirvaad Atta"), "{}", r.agent);
}

#[tokio::test]
async fn a_no_to_which_item_leaves_it_out() {
    let (mut d, p) = call("901", Lang::HiEn).await;
    say(&mut d, &p, "do kilo atta").await;
    let r = say(&mut d, &p, "nahi").await;
    assert!(d.cart.lines.is_empty() && d.questions.is_empty(), "{}", r.agent);
    assert_eq!(d.misses, 0);
}

#[tokio::test]
async fn the_callers_own_words_choose_between_similar_items() {
    let (mut d, p) = call("901", Lang::HiEn).await;
    let r = say(&mut d, &p, "do kilo atta chakki wala").await;
    assert_eq!(lines(&d), [("90102".to_string(), Qty::whole(2))], "{}", r.agent);
    assert_eq!(r.expects, Expects::Items, "nothing asked: {}", r.agent);
}

#[tokio::test]
async fn an_address_form_is_not_an_item_the_store_lacks() {
    let (mut d, p) = call("901", Lang::Mr).await;
    let r = say(&mut d, &p, "दादा दोन किलो साखर पाठवा").await;
    assert!(!r.agent.contains("मिळत नाही") && !r.agent.contains("daadaa"), "{}", r.agent);
    assert_eq!(lines(&d), [("90121".to_string(), Qty::whole(2))], "the amount said before दादा: {}", r.agent);
    let (mut d, p) = call("901", Lang::HiEn).await;
    let r = say(&mut d, &p, "namaste ji do kilo sugar bhau").await;
    assert!(!r.agent.contains("nahi milta"), "{}", r.agent);
    assert_eq!(lines(&d), [("90121".to_string(), Qty::whole(2))], "{}", r.agent);
}

#[tokio::test]
async fn a_greeting_alone_is_answered_with_the_question_not_an_apology() {
    let (mut d, p) = call("901", Lang::HiEn).await;
    for greeting in ["namaste ji", "hello sir", "नमस्कार ताई"] {
        let r = say(&mut d, &p, greeting).await;
        assert!(!r.agent.contains("nahi milta") && !r.agent.contains("मिळत नाही"), "{greeting}: {}", r.agent);
        assert!(!r.agent.to_lowercase().contains("samajh") && !r.agent.contains("समजलं"), "{greeting}: {}", r.agent);
        assert_eq!(d.misses, 0, "{greeting}");
    }
}

#[tokio::test]
async fn an_unknown_word_is_said_back_as_the_caller_said_it() {
    let (mut d, p) = call("901", Lang::Hi).await;
    let r = say(&mut d, &p, "एक पिज़्ज़ा").await;
    assert!(r.agent.contains("पिज़्ज़ा"), "{}", r.agent);
}

#[tokio::test]
async fn an_english_caller_hears_english_even_from_a_hinglish_start() {
    // Store 902 sells N95 masks.
    let (mut d, p) = call("902", Lang::HiEn).await;
    let r = say(&mut d, &p, "three masks").await;
    assert_eq!(r.language, Lang::En, "{}", r.agent);
    assert!(r.agent.starts_with("three N95 Mask"), "{}", r.agent);
}

#[tokio::test]
async fn item_names_in_english_do_not_switch_a_hinglish_caller() {
    // Store 904 sells butter naan and paneer butter masala.
    let (mut d, p) = call("904", Lang::HiEn).await;
    let r = say(&mut d, &p, "ek butter naan").await;
    assert_eq!(r.language, Lang::HiEn, "{}", r.agent);
}

#[tokio::test]
async fn not_understood_is_said_in_one_language() {
    // Greeted in Hindi (Devanagari); the caller speaks Latin Hinglish that
    // means nothing here: the apology and the question again are both Latin.
    let (mut d, p) = call("901", Lang::Hi).await;
    let r = say(&mut d, &p, "arre woh wala kya tha bhaiya").await;
    assert_eq!(d.misses, 1, "{}", r.agent);
    assert!(!devanagari(&r.agent), "{}", r.agent);
}

/// A demo catalog (store 1, Shree Ganesh Kirana: poha sold by the gram at
/// ₹37 a 500 g pack, wheat atta by the kg at ₹257 a 5 kg bag).
async fn demo_call(store_id: &str, lang: Lang) -> (Dialog, LocalPorts, Arc<Catalog>) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/catalogs/{store_id}.json"));
    let catalog = Arc::new(Catalog::from_json(&std::fs::read_to_string(path).unwrap()).unwrap());
    let ports = LocalPorts::new(catalog.clone());
    let mut dialog = Dialog::new("CA-pack", Mode::CatalogOnly, lang, Some(ports.store()));
    dialog.turn(Input::Start, &ports).await;
    (dialog, ports, catalog)
}

#[tokio::test]
async fn an_item_priced_by_the_pack_is_priced_per_pack() {
    let (mut d, p, catalog) = demo_call("1", Lang::HiEn).await;
    let poha = catalog.item("1008").unwrap();
    assert_eq!(poha.price_quantity(), Qty::whole(500), "the data: ₹37 buys a 500 g pack");
    let r = say(&mut d, &p, "aadha kilo poha").await;
    assert_eq!(lines(&d), [("1008".to_string(), Qty::whole(500))], "{}", r.agent);
    let view = d.cart_view(&catalog);
    assert_eq!(view.lines[0].line_total, poha.price, "500 g is one pack, not 500 packs");
    assert_eq!(view.total, poha.price);
    let r = say(&mut d, &p, "bas").await;
    assert!(r.agent.contains("saintees rupaye"), "{}", r.agent);
    // Two kilos of atta sold in 5 kg bags: two fifths of the bag's price.
    let atta = catalog.item("1006").unwrap();
    let (mut d, p, _) = demo_call("1", Lang::HiEn).await;
    say(&mut d, &p, "do kilo gehu ka atta").await;
    let view = d.cart_view(&catalog);
    assert_eq!(view.lines.len(), 1, "{view:?}");
    assert_eq!(view.lines[0].line_total.0 * 5, atta.price.0 * 2, "{view:?}");
}

#[tokio::test]
async fn a_pack_priced_item_said_without_an_amount_is_one_pack() {
    let (mut d, p, catalog) = demo_call("1", Lang::HiEn).await;
    let r = say(&mut d, &p, "poha bhi dena").await;
    assert_eq!(lines(&d), [("1008".to_string(), Qty::whole(500))], "{}", r.agent);
    assert_eq!(d.cart_view(&catalog).total, catalog.item("1008").unwrap().price);
}

#[tokio::test]
async fn an_item_asked_about_and_then_removed_is_not_asked_again() {
    let (mut d, p) = call("901", Lang::HiEn).await;
    say(&mut d, &p, "ek kilo sabudana aur do kilo atta").await;
    let r = say(&mut d, &p, "atta hata do").await;
    assert!(d.questions.is_empty(), "{}", r.agent);
    assert_eq!(r.expects, Expects::Items, "{}", r.agent);
    assert_eq!(lines(&d), [("90160".to_string(), Qty::whole(1))], "{}", r.agent);
}

#[tokio::test]
async fn the_words_of_another_item_do_not_choose_between_similar_items() {
    // Demo store 9: "biryani" fits chicken, mutton and egg biryani, and
    // "chicken" here is the tikka's word, not a choice among them.
    let (mut d, p, _) = demo_call("9", Lang::HiEn).await;
    let r = say(&mut d, &p, "ek chicken tikka do biryani").await;
    let ids: Vec<String> = d.cart.lines.iter().map(|l| l.item_id.clone()).collect();
    assert_eq!(ids, ["9008"], "no biryani taken for the tikka's word: {}", r.agent);
    assert_eq!(r.expects, Expects::Choice, "{}", r.agent);
}

#[tokio::test]
async fn how_much_is_asked_again_after_the_items_said_instead() {
    let (mut d, p, _) = demo_call("1", Lang::HiEn).await;
    let r = say(&mut d, &p, "cheeni chahiye").await;
    assert_eq!(r.expects, Expects::Quantity, "{}", r.agent);
    let r = say(&mut d, &p, "ek kilo toor dal").await;
    assert_eq!(lines(&d), [("1001".to_string(), Qty::whole(1))], "{}", r.agent);
    assert_eq!(r.expects, Expects::Quantity, "{}", r.agent);
    assert!(r.agent.contains("Toor Dal") && r.agent.ends_with("Jaise ek kilo ya 500 gram."), "{}", r.agent);
    let r = say(&mut d, &p, "dedh kilo").await;
    assert_eq!(lines(&d), [("1001".to_string(), Qty::whole(1)), ("1009".to_string(), Qty(1500))], "{}", r.agent);
}

#[tokio::test]
async fn saying_one_is_done_is_not_asking_for_goods() {
    // "bas itna hi", "बस एवढंच", "that's all", "thank you bye": the words of
    // being done are never read back as things the store does not sell.
    for (lang, order, done) in [
        (Lang::HiEn, "do plate misal", "bas itna hi"),
        (Lang::Mr, "दोन मिसळ पाव", "बस एवढंच"),
        (Lang::En, "two plates of misal", "thats all"),
        (Lang::Hi, "दो प्लेट मिसल", "बस इतना ही"),
    ] {
        let (mut d, p) = godavari(lang).await;
        say(&mut d, &p, order).await;
        let r = say(&mut d, &p, done).await;
        assert_eq!(r.expects, Expects::Confirm, "{done}: {}", r.agent);
        for not_sold in ["nahi milta", "मिळत नाही", "not sold", "नहीं मिलता"] {
            assert!(!r.agent.contains(not_sold), "{done}: {}", r.agent);
        }
    }
    let (mut d, p) = godavari(Lang::En).await;
    say(&mut d, &p, "two plates of misal").await;
    say(&mut d, &p, "thats all").await;
    say(&mut d, &p, "yes").await;
    let r = say(&mut d, &p, "thank you bye").await;
    assert!(r.ended && !r.agent.contains("not sold"), "{}", r.agent);
}

#[tokio::test]
async fn grammar_words_alone_are_not_understood_rather_than_not_sold() {
    let (mut d, p) = godavari(Lang::HiEn).await;
    let r = say(&mut d, &p, "kya tha woh").await;
    assert_eq!(d.misses, 1, "{}", r.agent);
    assert!(!r.agent.contains("nahi milta"), "{}", r.agent);
}
