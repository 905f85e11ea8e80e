//! The dialog's steps: one input in, what the agent says out, with the
//! state in [`Dialog`] changed along the way. Each step answers the
//! question the agent asked last (`Dialog::expects`); words that answer
//! something else (an item while the address is asked) are taken as items
//! where that makes sense.

use std::sync::Arc;

use crate::catalog::{Catalog, CatalogStore, Lang, Paise, Unit};
use crate::lexicon::{AskTopic, ENGLISH_CUES, HINDI_CUES, MARATHI_CUES};
use crate::normalize::{light_key, similarity, tokenize};
use crate::numbers::{Qty, parse_amount};
use crate::understand::{CartOp, Context, ItemRef, Script, Subject, Understanding};

use super::pricing::{item_name, say_cart, say_line};
use super::prompts as say;
use super::{
    Address, Dialog, DialogEvent, Expects, Handoff, HandoffReason, Input, LinkChannel, Mode, OrderRequest, Payment,
    PortError, Ports, Question, StoreOffer,
};
use super::{courtesy, understanders};

/// What a turn produced besides the words.
#[derive(Debug, Default)]
pub struct Turn {
    pub events: Vec<DialogEvent>,
    pub handoff: Option<Handoff>,
    pub understood: Option<Understanding>,
}

/// How many stores' catalogs are searched for a dish, nearest first.
const DISH_SEARCH_STORES: usize = 8;
/// How many stores are offered for a dish.
const OFFERED_STORES: usize = 3;
/// Turns not understood in a row before the order desk takes over.
const MAX_MISSES: u8 = 3;

/// A yes or no, from words or keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum YesNo {
    Yes,
    No,
}

/// One caller input, understood.
struct Heard {
    /// The raw words (empty for keys).
    text: String,
    understanding: Option<Understanding>,
    /// A number pressed or said alone ("1", "do", "second").
    number: Option<u64>,
}

impl Heard {
    fn ops(&self) -> &[CartOp] {
        self.understanding.as_ref().map_or(&[], |u| u.ops.as_slice())
    }

    fn yes_no(&self) -> Option<YesNo> {
        match self.number {
            Some(1) => return Some(YesNo::Yes),
            Some(2) => return Some(YesNo::No),
            _ => {}
        }
        let ops = self.ops();
        if ops.iter().any(|o| matches!(o, CartOp::Confirm)) {
            Some(YesNo::Yes)
        } else if ops.iter().any(|o| matches!(o, CartOp::Reject)) {
            Some(YesNo::No)
        } else {
            None
        }
    }

    fn has(&self, f: impl Fn(&CartOp) -> bool) -> bool {
        self.ops().iter().any(f)
    }
}

pub async fn step(d: &mut Dialog, input: Input, ports: &dyn Ports, t: &mut Turn) -> String {
    if d.ended {
        d.expects = Expects::Nothing;
        return String::new();
    }
    match input {
        Input::Hangup => {
            d.ended = true;
            d.expects = Expects::Nothing;
            String::new()
        }
        Input::Start => start(d, ports, t).await,
        Input::Silence => miss(d, t, None),
        Input::Dtmf(keys) => {
            let number = keys.trim().trim_end_matches('#').parse::<u64>().ok();
            let heard = Heard { text: String::new(), understanding: None, number };
            answer(d, heard, ports, t).await
        }
        Input::Say(text) if text.trim().is_empty() => miss(d, t, None),
        Input::Say(text) => {
            let text = text.trim().to_string();
            // Keys said as digits ("1") answer like keys.
            if let Ok(n) = text.trim_end_matches('.').parse::<u64>() {
                let heard = Heard { text, understanding: None, number: Some(n) };
                return answer(d, heard, ports, t).await;
            }
            let catalog = match store_catalog(d, ports).await {
                Ok(c) => c,
                Err(e) => return unavailable(d, t, &e),
            };
            // Before a store is chosen the words are read against no items
            // (numbers, yes and no); that index is not worth keeping.
            let (catalog, understander) = match catalog {
                Some(catalog) => {
                    let understander = understanders::understander(&catalog);
                    (catalog, understander)
                }
                None => {
                    let catalog = Arc::new(empty_catalog(d.language));
                    let understander = Arc::new(crate::understand::Understander::new(&catalog));
                    (catalog, understander)
                }
            };
            let context = question_context(d).unwrap_or_else(|| d.cart.context());
            let mut understanding = understander.understand_in(&text, &context);
            courtesy::drop_courtesy(&mut understanding, &catalog);
            if is_done(&text) {
                drop_done_words(&mut understanding);
            }
            // Words the parser made nothing of (or only unknown words of), where
            // items are expected, get one second opinion, which the port has
            // validated against the catalog.
            let items_expected =
                matches!(d.expects, Expects::Items | Expects::AnythingElse | Expects::Choice | Expects::Quantity);
            let weak = is_weak(&understanding, &d.cart);
            if weak
                && items_expected
                && d.store.is_some()
                && !is_done(&text)
                && !courtesy::only_courtesy(&text)
                && spoken_number(&text).is_none()
                && let Some(second) = ports.fallback(&text, &catalog, &context).await
            {
                understanding = second;
            }
            let language_before = d.language;
            follow_language(d, &understanding, &text);
            if d.language != language_before {
                // One turn, one language: the question asked again (after a
                // "not understood", say) is asked in the caller's language.
                ask_again_in_language(d, &catalog);
            }
            t.understood = Some(understanding.clone());
            // "namaste ji", "हॅलो दादा": a greeting, answered with the open
            // question rather than "not understood".
            if understanding.ops.is_empty() && courtesy::only_courtesy(&text) && !d.question.is_empty() {
                return d.question.clone();
            }
            if understanding.ops.iter().any(|o| matches!(o, CartOp::Ask { topic: AskTopic::Human, .. }))
                || asks_for_person(&text)
            {
                return hand_off(d, t, HandoffReason::Asked, say::to_order_desk(d.language));
            }
            // Several unknown word groups and nothing else is not an item
            // the store lacks but words not understood: asked again.
            if is_weak(&understanding, &d.cart) && garbled(&understanding) {
                understanding.ops.clear();
            }
            let number = spoken_number(&text);
            let heard = Heard { text, understanding: Some(understanding), number };
            answer(d, heard, ports, t).await
        }
    }
}

/// Whether the parser found nothing to act on: no operations, or only
/// unknown words said without an amount, or an option that fits several
/// items none of which is in the cart.
fn is_weak(u: &Understanding, cart: &crate::cart::Cart) -> bool {
    u.ops.iter().all(|op| match op {
        CartOp::NotInCatalog { amount: None, removal: false, .. } => true,
        CartOp::SetVariant { subject: Subject::Item(item), .. }
        | CartOp::SetModifier { subject: Subject::Item(item), .. } => item.is_ambiguous() && !in_cart(cart, item),
        _ => false,
    })
}

/// Unknown words in more than one place, a long run of them, or only
/// grammar words ("kya tha"): not the name of a dish the store does not
/// sell ("pizza"), but words not understood.
fn garbled(u: &Understanding) -> bool {
    let unknown: Vec<&String> = u
        .ops
        .iter()
        .filter_map(|op| match op {
            CartOp::NotInCatalog { heard, .. } => Some(heard),
            _ => None,
        })
        .collect();
    unknown.len() > 1
        || unknown.iter().any(|h| h.split_whitespace().count() > 2)
        || (!unknown.is_empty() && unknown.iter().all(|h| courtesy::only_function_words(h)))
}

/// The item a pending question is about, as the context of its answer.
fn question_context(d: &Dialog) -> Option<Context> {
    match d.questions.first()? {
        Question::Quantity { op: CartOp::Add { item, .. } } => Some(Context { focus: Some(item.item_id.clone()) }),
        _ => None,
    }
}

async fn answer(d: &mut Dialog, heard: Heard, ports: &dyn Ports, t: &mut Turn) -> String {
    let misses_before = d.misses;
    let said = match d.expects {
        Expects::Store => on_store(d, &heard, ports, t).await,
        Expects::Resume => on_resume(d, &heard, ports, t).await,
        Expects::Choice | Expects::Quantity => on_question(d, &heard, ports, t).await,
        Expects::Confirm => on_confirm(d, &heard, ports, t).await,
        Expects::Address => on_address(d, &heard, t),
        Expects::Payment => on_payment(d, &heard, ports, t).await,
        Expects::Items | Expects::AnythingElse => on_items(d, &heard, ports, t).await,
        Expects::Nothing => Ok(Some(String::new())),
    };
    match said {
        Ok(Some(text)) => {
            // A step that counted a miss itself (a dish no store sells) keeps it.
            if !d.ended && d.misses == misses_before {
                d.misses = 0;
            }
            text
        }
        Ok(None) => miss(d, t, None),
        Err(e) => unavailable(d, t, &e),
    }
}

/// What a step says: `None` when the input answered nothing (a miss).
type Said = Result<Option<String>, PortError>;

async fn start(d: &mut Dialog, ports: &dyn Ports, t: &mut Turn) -> String {
    // A start in the middle of a dialog (the call's speech leg came back)
    // asks the open question again rather than greeting over it.
    if !d.question.is_empty() {
        return d.question.clone();
    }
    if d.expects == Expects::Resume {
        let catalog = match store_catalog(d, ports).await {
            Ok(Some(c)) => c,
            Ok(None) => return greet(d),
            Err(e) => return unavailable(d, t, &e),
        };
        let (lines, total) = say_cart(d.language, &d.cart, &catalog);
        return ask(d, Expects::Resume, String::new(), say::resume(d.language, &lines, &total));
    }
    greet(d)
}

fn greet(d: &mut Dialog) -> String {
    match &d.store {
        Some(store) => {
            let name = store.name.clone();
            ask(d, Expects::Items, String::new(), say::greet_store(d.language, &name))
        }
        None => ask(d, Expects::Store, String::new(), say::greet_no_store(d.language)),
    }
}

/// Says `before` and then `question`, remembering the question to ask
/// again when the answer is not understood.
fn ask(d: &mut Dialog, expects: Expects, before: String, question: String) -> String {
    d.expects = expects;
    d.question = question.clone();
    join(&[before, question])
}

/// What a step said, without the question it ended on (another question
/// is asked instead).
fn without_question(d: &Dialog, said: String) -> String {
    match said.strip_suffix(d.question.as_str()) {
        Some(before) if !d.question.is_empty() => before.trim_end().to_string(),
        _ => said,
    }
}

fn join(parts: &[String]) -> String {
    parts.iter().filter(|p| !p.is_empty()).cloned().collect::<Vec<_>>().join(" ")
}

fn miss(d: &mut Dialog, t: &mut Turn, instead: Option<String>) -> String {
    d.misses += 1;
    let sorry = instead.unwrap_or_else(|| say::not_understood(d.language));
    if d.misses >= MAX_MISSES {
        let desk = say::to_order_desk(d.language);
        return hand_off(d, t, HandoffReason::NotUnderstood, join(&[sorry, desk]));
    }
    join(&[sorry, d.question.clone()])
}

fn hand_off(d: &mut Dialog, t: &mut Turn, reason: HandoffReason, text: String) -> String {
    d.ended = true;
    d.expects = Expects::Nothing;
    t.handoff = Some(Handoff::OrderDesk { reason });
    t.events.push(DialogEvent::HandedOff { reason });
    text
}

fn unavailable(d: &mut Dialog, t: &mut Turn, _error: &PortError) -> String {
    let text = say::system_down(d.language);
    hand_off(d, t, HandoffReason::Unavailable, text)
}

fn goodbye(d: &mut Dialog) -> String {
    d.ended = true;
    d.expects = Expects::Nothing;
    say::goodbye(d.language)
}

async fn store_catalog(d: &Dialog, ports: &dyn Ports) -> Result<Option<Arc<Catalog>>, PortError> {
    match &d.store {
        Some(store) => ports.catalog(&store.id).await.map(Some),
        None => Ok(None),
    }
}

/// Before a store is chosen the caller's words are still read for yes, no,
/// cancel and "a person please": against a catalog with no items.
fn empty_catalog(language: Lang) -> Catalog {
    Catalog { store: CatalogStore { id: String::new(), name: String::new(), language }, items: Vec::new() }
}

/// Follows the language the caller speaks: a change of script always;
/// within a script, only when at least two words are cues of the language
/// and it has more of them than the others (a lone "ok", or "extra
/// farsan" in Hinglish, says little).
fn follow_language(d: &mut Dialog, u: &Understanding, text: &str) {
    let script_now = match d.language {
        Lang::Hi | Lang::Mr => Script::Devanagari,
        Lang::HiEn | Lang::En => Script::Latin,
    };
    if u.script != script_now {
        d.language = u.language;
        return;
    }
    // Item names are the catalog's words, not the caller's language
    // ("butter naan" is no English).
    let item_words: Vec<String> = u.ops.iter().filter_map(op_heard).flat_map(words_in).collect();
    let words: Vec<String> = words_in(text).into_iter().filter(|w| !item_words.contains(w)).collect();
    let numbers: Vec<String> = NUMBER_CUES.iter().map(|c| light_key(c)).collect();
    let count = |cues: &[&str]| {
        let cues: Vec<String> = cues.iter().map(|c| light_key(c)).collect();
        // A number word says the most: "three masks" is English, "teen
        // mask" Hinglish.
        words.iter().filter(|w| cues.contains(w)).map(|w| if numbers.contains(w) { 2 } else { 1 }).sum::<usize>()
    };
    let (english, hindi, marathi) = (count(ENGLISH_CUES), count(HINDI_CUES), count(MARATHI_CUES));
    let cues = match u.language {
        Lang::En => english.saturating_sub(hindi + marathi),
        Lang::Mr => marathi.saturating_sub(hindi),
        Lang::Hi | Lang::HiEn => hindi.saturating_sub(marathi + english),
    };
    if cues >= 2 || (cues >= 1 && words.len() >= 3) {
        d.language = u.language;
    }
}

/// Number words among the language cues: callers say numbers in their own
/// language even when they name items in another.
const NUMBER_CUES: &[&str] = &[
    "one", "two", "three", "four", "five", "ek", "do", "teen", "paanch", "panch", "dus", "dedh", "dhai", "aadha",
    "adha", "sawa", "paune", "don", "paach", "pach", "saha", "daha", "adich", "ardha",
];

/// The item words an operation names, as heard.
fn op_heard(op: &CartOp) -> Option<&str> {
    match op {
        CartOp::Add { item, .. } => Some(&item.heard),
        CartOp::Remove { subject: Subject::Item(item) }
        | CartOp::SetQuantity { subject: Subject::Item(item), .. }
        | CartOp::Reduce { subject: Subject::Item(item), .. }
        | CartOp::SetVariant { subject: Subject::Item(item), .. }
        | CartOp::SetModifier { subject: Subject::Item(item), .. } => Some(&item.heard),
        CartOp::Ask { item: Some(item), .. } => Some(&item.heard),
        _ => None,
    }
}

/// The open question, said again in the language the dialog speaks now.
fn ask_again_in_language(d: &mut Dialog, catalog: &Catalog) {
    if d.question.is_empty() {
        return;
    }
    let lang = d.language;
    d.question = match d.expects {
        Expects::Items | Expects::AnythingElse | Expects::Choice | Expects::Quantity => {
            let expects = d.expects;
            let question = next_question(d, catalog, String::new());
            // next_question may pick "anything else" for the items step;
            // what the dialog waits for stays as it was.
            d.expects = expects;
            question
        }
        Expects::Store => say::ask_store(lang),
        Expects::Confirm => match d.cancelling.clone() {
            Some(order_id) => {
                let number = d.orders.iter().find(|o| o.order_id == order_id).map(|o| o.number.clone());
                say::confirm_cancel(lang, &number.unwrap_or_default())
            }
            None if d.cart.lines.is_empty() => return,
            None => {
                let (lines, total) = say_cart(lang, &d.cart, catalog);
                say::read_back(lang, &lines, &total)
            }
        },
        Expects::Resume => {
            let (lines, total) = say_cart(lang, &d.cart, catalog);
            say::resume(lang, &lines, &total)
        }
        Expects::Address => match &d.address {
            Some(address) => say::ask_address(lang, &spoken_address(address)),
            None => return,
        },
        Expects::Payment => say::ask_payment(lang),
        Expects::Nothing => return,
    };
}

fn words_in(text: &str) -> Vec<String> {
    tokenize(text).into_iter().map(|t| t.light).collect()
}

/// Whether the words contain one of the phrases (light keys, in order).
fn contains_phrase(text: &str, phrases: &[&str]) -> bool {
    let words = words_in(text);
    phrases.iter().any(|p| {
        let phrase = words_in(p);
        !phrase.is_empty() && words.windows(phrase.len()).any(|w| w == phrase.as_slice())
    })
}

/// "bas", "itna hi", "that's all": the caller has finished ordering.
const DONE_PHRASES: &[&str] = &[
    "bas",
    "itna hi",
    "itnahi",
    "bas itna",
    "ho gaya",
    "aur kuch nahi",
    "kuch nahi",
    "that's all",
    "thats all",
    "thats it",
    "that's it",
    "bas itna hi",
    "itna hi chahiye",
    "bas yahi",
    "bas evdhach",
    "evdhanch",
    "बस इतना ही",
    "इतनाही",
    "बस एवढंच",
    "that is all",
    "nothing else",
    "nothing more",
    "no more",
    "done",
    "evdhach",
    "evadhach",
    "itkach",
    "bas zala",
    "zala",
    "baki kahi nako",
    "kahi nako",
    "thank you",
    "thanks",
    "dhanyavaad",
    "dhanyavad",
    "shukriya",
    "bye",
    "goodbye",
    "बस",
    "इतना ही",
    "और कुछ नहीं",
    "कुछ नहीं",
    "एवढंच",
    "एवढेच",
    "इतकंच",
    "झालं",
    "बाकी काही नको",
    "काही नको",
    "धन्यवाद",
    "शुक्रिया",
];

fn is_done(text: &str) -> bool {
    contains_phrase(text, DONE_PHRASES)
}

/// "bas itna hi", "that's all", "thank you bye": when the caller is done,
/// unknown words that are only words of such phrases (or grammar words) are
/// part of saying so, not goods the store lacks.
fn drop_done_words(u: &mut Understanding) {
    let done: std::collections::HashSet<String> = DONE_PHRASES.iter().flat_map(|p| words_in(p)).collect();
    u.ops.retain(|op| match op {
        CartOp::NotInCatalog { heard, amount: None, .. } => !words_in(heard)
            .iter()
            .all(|w| done.contains(w) || courtesy::only_function_words(w) || courtesy::only_courtesy(w)),
        _ => true,
    });
}

fn asks_for_person(text: &str) -> bool {
    contains_phrase(
        text,
        &["agent se baat", "insaan", "operator", "kisi se baat", "talk to a person", "real person", "इंसान", "ऑपरेटर"],
    )
}

/// A number said alone, as an answer to "1 ya 2": digits, a number word
/// ("do", "दोन") or an ordinal ("pehla", "second").
fn spoken_number(text: &str) -> Option<u64> {
    let tokens = tokenize(text);
    const ORDINALS: [(u64, &[&str]); 3] = [
        (1, &["pehla", "pehli", "pahla", "pahila", "pahili", "first", "पहला", "पहली", "पहिला", "पहिली"]),
        (2, &["dusra", "doosra", "dusri", "doosri", "dusara", "dusre", "second", "दूसरा", "दूसरी", "दुसरा", "दुसरी"]),
        (3, &["tisra", "teesra", "tisri", "teesri", "tisara", "third", "तीसरा", "तीसरी", "तिसरा", "तिसरी"]),
    ];
    let words = words_in(text);
    for (n, spellings) in ORDINALS {
        if spellings.iter().any(|s| words_in(s).first().is_some_and(|w| words.contains(w))) {
            return Some(n);
        }
    }
    let found = parse_amount(&tokens, 0)?;
    let filler = |w: &String| ["number", "namber", "option", "वाला", "wala", "vala", "नंबर"].contains(&w.as_str());
    let rest_is_filler = words[found.len..].iter().all(filler);
    (found.amount.unit.is_none() && found.amount.value.0 % 1000 == 0 && rest_is_filler)
        .then_some(found.amount.value.0 / 1000)
}

// ---- choosing the store -------------------------------------------------

/// Words of store names that do not tell stores apart.
const GENERIC_STORE_WORDS: &[&str] = &[
    "the",
    "and",
    "da",
    "di",
    "de",
    "ka",
    "ki",
    "shri",
    "shree",
    "sri",
    "stores",
    "store",
    "shop",
    "house",
    "kirana",
    "general",
    "mart",
    "bhavan",
    "hotel",
    "restaurant",
    "sweets",
    "farsan",
    "misal",
    "thali",
    "biryani",
    "fresh",
    "farm",
    "produce",
    "fruits",
    "vegetables",
    "sabzi",
    "mandi",
    "pharmacy",
    "medicals",
    "medical",
    "bakers",
    "supermarket",
    "provision",
    "daily",
    "needs",
    "nashik",
    "dhaba",
    "centre",
    "center",
];

/// How strongly the words name a store: the distinctive name words (or a
/// whole alias) heard.
fn store_score(store: &StoreOffer, heard: &[String]) -> usize {
    let generic: Vec<String> = GENERIC_STORE_WORDS.iter().map(|w| word_key_of(w)).collect();
    std::iter::once(&store.name)
        .chain(&store.aliases)
        .map(|name| {
            let words: Vec<String> =
                tokenize(name).into_iter().map(|t| t.key).filter(|k| !generic.contains(k)).collect();
            words.iter().filter(|w| heard.iter().any(|h| similarity(w, h) >= 0.8)).count()
        })
        .max()
        .unwrap_or(0)
}

fn word_key_of(word: &str) -> String {
    tokenize(word).into_iter().next().map(|t| t.key).unwrap_or_default()
}

/// The stores the words name best (several on a tie).
fn named_stores(stores: &[StoreOffer], text: &str) -> Vec<StoreOffer> {
    let heard: Vec<String> = tokenize(text).into_iter().map(|t| t.key).collect();
    let scored: Vec<(usize, &StoreOffer)> = stores.iter().map(|s| (store_score(s, &heard), s)).collect();
    let best = scored.iter().map(|(n, _)| *n).max().unwrap_or(0);
    if best == 0 {
        return Vec::new();
    }
    scored.into_iter().filter(|(n, _)| *n == best).map(|(_, s)| s.clone()).collect()
}

/// The words left when the store's name (and "se", "from" after it) is
/// taken out: what the caller ordered along with naming the store.
fn without_store_name(store: &StoreOffer, text: &str) -> String {
    let names: Vec<String> = std::iter::once(&store.name)
        .chain(&store.aliases)
        .flat_map(|n| tokenize(n).into_iter().map(|t| t.key))
        .collect();
    let from = ["se", "from", "madhun", "kadun", "mdhun", "kdun", "wale", "wala", "vale", "yahan"];
    let tokens = tokenize(text);
    let name_word: Vec<bool> = tokens.iter().map(|t| names.iter().any(|n| similarity(n, &t.key) >= 0.8)).collect();
    // Only the longest run of the store's name words is the store: in
    // "godavari misal house se do plate misal" the last "misal" is the
    // dish, even though "Misal" is in the store's name.
    let mut best = 0..0;
    let mut i = 0;
    while i < tokens.len() {
        let start = i;
        while i < tokens.len() && name_word[i] {
            i += 1;
        }
        if i - start > best.len() {
            best = start..i;
        }
        i = i.max(start + 1);
    }
    let mut end = best.end;
    while !best.is_empty() && end < tokens.len() && from.contains(&tokens[end].light.as_str()) {
        end += 1;
    }
    tokens
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !(best.start..end).contains(i))
        .map(|(_, t)| t.text)
        .collect::<Vec<_>>()
        .join(" ")
}

async fn on_store(d: &mut Dialog, heard: &Heard, ports: &dyn Ports, t: &mut Turn) -> Said {
    // A number picks one of the stores offered.
    if let Some(n) = heard.number
        && !d.offers.is_empty()
    {
        return match d.offers.get((n as usize).wrapping_sub(1)).cloned() {
            Some(store) => choose_store(d, store, ports, t).await,
            None => Ok(None),
        };
    }
    if heard.text.is_empty() {
        return Ok(None);
    }
    if heard.has(|o| matches!(o, CartOp::Cancel | CartOp::Reject)) || is_done(&heard.text) {
        return Ok(Some(goodbye(d)));
    }
    // A store named among those offered, else among all.
    let among_offers = named_stores(&d.offers, &heard.text);
    if among_offers.len() == 1 {
        return choose_store(d, among_offers[0].clone(), ports, t).await;
    }
    let stores = ports.stores().await?;
    let named = named_stores(&stores, &heard.text);
    if named.len() == 1 {
        let store = named[0].clone();
        if !store.open {
            let closed = say::store_closed(d.language, &store.name);
            return Ok(Some(ask(d, Expects::Store, String::new(), closed)));
        }
        // "godavari se do plate misal": the items said with the name count too.
        d.dish = Some(without_store_name(&store, &heard.text));
        return choose_store(d, store, ports, t).await;
    }
    // A dish: the nearest open stores whose catalog sells it.
    let mut selling: Vec<StoreOffer> = Vec::new();
    for store in stores.iter().filter(|s| s.open).take(DISH_SEARCH_STORES) {
        let catalog = ports.catalog(&store.id).await?;
        let understanding = understanders::understander(&catalog).understand(&heard.text);
        let sells = understanding.ops.iter().any(|op| match op {
            CartOp::Add { item, .. } => catalog.item(&item.item_id).is_some_and(|i| i.available),
            _ => false,
        });
        if sells {
            selling.push(store.clone());
        }
    }
    match selling.len() {
        0 => {
            let text = say::no_store_sells(d.language);
            Ok(Some(miss(d, t, Some(text))))
        }
        1 => {
            d.dish = Some(heard.text.clone());
            choose_store(d, selling.remove(0), ports, t).await
        }
        _ => {
            selling.truncate(OFFERED_STORES);
            d.dish = Some(heard.text.clone());
            let names: Vec<String> = selling.iter().map(|s| s.name.clone()).collect();
            d.offers = selling;
            let question = say::choose(d.language, &names);
            Ok(Some(ask(d, Expects::Store, String::new(), question)))
        }
    }
}

/// The caller's store: said, then the remembered dish (if any) goes into
/// its cart.
async fn choose_store(d: &mut Dialog, store: StoreOffer, ports: &dyn Ports, t: &mut Turn) -> Said {
    t.events.push(DialogEvent::StoreChosen { store_id: store.id.clone(), store_name: store.name.clone() });
    let name = store.name.clone();
    d.store = Some(store);
    d.offers.clear();
    let Some(dish) = d.dish.take() else {
        return Ok(Some(ask(d, Expects::Items, String::new(), say::store_chosen(d.language, &name))));
    };
    let Some(catalog) = store_catalog(d, ports).await? else { return Ok(None) };
    let mut understanding = understanders::understander(&catalog).understand_in(&dish, &d.cart.context());
    // Only the items: the other words named the store ("godavari se").
    understanding.ops.retain(|op| matches!(op, CartOp::Add { .. }));
    let heard = Heard { text: String::new(), understanding: Some(understanding), number: None };
    Ok(Some(match take_items(d, &heard, &catalog, t) {
        Some(said) => join(&[format!("{name}."), said]),
        None => ask(d, Expects::Items, String::new(), say::store_chosen(d.language, &name)),
    }))
}

// ---- resuming an earlier cart -------------------------------------------

async fn on_resume(d: &mut Dialog, heard: &Heard, ports: &dyn Ports, t: &mut Turn) -> Said {
    let Some(catalog) = store_catalog(d, ports).await? else { return Ok(None) };
    match heard.yes_no() {
        Some(YesNo::Yes) => Ok(Some(read_back(d, &catalog))),
        Some(YesNo::No) => {
            d.cart = Default::default();
            cart_changed(d, &catalog, t);
            Ok(Some(ask(d, Expects::Items, say::okay(d.language), say::ask_items(d.language))))
        }
        None => Ok(take_items(d, heard, &catalog, t)),
    }
}

// ---- items ---------------------------------------------------------------

async fn on_items(d: &mut Dialog, heard: &Heard, ports: &dyn Ports, t: &mut Turn) -> Said {
    let Some(catalog) = store_catalog(d, ports).await? else { return Ok(None) };
    if heard.understanding.is_none() {
        // Keys while taking items: 1 reads the cart back, 2 ends.
        let lang = d.language;
        let placed = d.orders.iter().rev().find(|o| !o.cancelled).map(|o| o.number.clone());
        return Ok(match (heard.number, placed) {
            (Some(1), _) if !d.cart.lines.is_empty() => Some(read_back(d, &catalog)),
            (Some(1), Some(number)) => {
                Some(ask(d, Expects::AnythingElse, say::already_placed(lang, &number), say::anything_else(lang)))
            }
            (Some(2), _) if d.cart.lines.is_empty() => Some(goodbye(d)),
            _ => None,
        });
    }
    Ok(take_items(d, heard, &catalog, t))
}

fn cart_changed(d: &Dialog, catalog: &Catalog, t: &mut Turn) {
    t.events.push(DialogEvent::CartChanged { cart: d.cart_view(catalog) });
}

fn read_back(d: &mut Dialog, catalog: &Catalog) -> String {
    if d.cart.lines.is_empty() {
        return ask(d, Expects::Items, String::new(), say::cart_empty(d.language));
    }
    let (lines, total) = say_cart(d.language, &d.cart, catalog);
    ask(d, Expects::Confirm, String::new(), say::read_back(d.language, &lines, &total))
}

/// The question after items changed: the first pending question, else
/// "anything else?" (or, with nothing in the cart, what to order).
fn next_question(d: &mut Dialog, catalog: &Catalog, before: String) -> String {
    let lang = d.language;
    match d.questions.first() {
        Some(Question::Choice { candidates, .. }) => {
            let names: Vec<String> =
                candidates.iter().filter_map(|id| catalog.item(id)).map(|i| item_name(lang, i)).collect();
            ask(d, Expects::Choice, before, say::choose(lang, &names))
        }
        Some(Question::Quantity { op }) => {
            let name = op_item(op).and_then(|id| catalog.item(id)).map(|i| item_name(lang, i)).unwrap_or_default();
            ask(d, Expects::Quantity, before, say::ask_quantity(lang, &name))
        }
        None if d.cart.lines.is_empty() && !d.orders.is_empty() => {
            ask(d, Expects::AnythingElse, before, say::anything_else(lang))
        }
        None if d.cart.lines.is_empty() => ask(d, Expects::Items, before, say::ask_items(lang)),
        None => ask(d, Expects::Items, before, say::anything_else(lang)),
    }
}

fn op_item(op: &CartOp) -> Option<&str> {
    match op {
        CartOp::Add { item, .. } => Some(&item.item_id),
        _ => None,
    }
}

/// What to do with an add.
enum Resolved {
    Apply(CartOp),
    /// It cannot go in yet: which item (the words fit several), or how
    /// much (a weighed item with no amount said and no size).
    Ask(Question),
    /// None of the items the words fit is available now.
    Unavailable,
}

/// The words of an utterance but those that named its other items ("ek
/// chicken tikka do biryani": "chicken" is the tikka's, not a choice among
/// biryanis).
fn words_besides(text: &str, ops: &[CartOp], this: &CartOp) -> Vec<String> {
    let others: Vec<String> =
        ops.iter().filter(|o| !std::ptr::eq(*o, this)).filter_map(op_heard).flat_map(words_in).collect();
    words_in(text).into_iter().filter(|w| !others.contains(w)).collect()
}

fn resolve_add(op: &CartOp, catalog: &Catalog, said: &[String]) -> Resolved {
    let CartOp::Add { item, .. } = op else { return Resolved::Apply(op.clone()) };
    let candidates: Vec<String> = std::iter::once(item.item_id.clone())
        .chain(item.alternatives.iter().map(|a| a.item_id.clone()))
        .filter(|id| catalog.item(id).is_some_and(|i| i.available))
        .take(3)
        .collect();
    match candidates.as_slice() {
        [] => Resolved::Unavailable,
        [only] => {
            let op = if item.is_ambiguous() { with_item(op, only) } else { op.clone() };
            if needs_quantity(&op, catalog) { Resolved::Ask(Question::Quantity { op }) } else { Resolved::Apply(op) }
        }
        _ => match named_in(&candidates, item, said, catalog) {
            // "do kilo atta chakki wala": the caller's own words already
            // say which.
            Some(id) => {
                let op = with_item(op, &id);
                if needs_quantity(&op, catalog) {
                    Resolved::Ask(Question::Quantity { op })
                } else {
                    Resolved::Apply(op)
                }
            }
            None => Resolved::Ask(Question::Choice { candidates, op: op.clone() }),
        },
    }
}

/// The one candidate whose distinguishing words (of its name and aliases,
/// not shared with every other candidate, nor the words that matched them
/// all) were said in the utterance, if exactly one was.
fn named_in(candidates: &[String], item: &ItemRef, said: &[String], catalog: &Catalog) -> Option<String> {
    let matched = words_in(&item.heard);
    let words_of = |id: &String| -> Vec<String> {
        catalog
            .item(id)
            .map(|i| std::iter::once(&i.name).chain(&i.aliases).flat_map(|n| words_in(n)).collect())
            .unwrap_or_default()
    };
    let all: Vec<Vec<String>> = candidates.iter().map(words_of).collect();
    let named: Vec<&String> = candidates
        .iter()
        .zip(&all)
        .filter(|(_, words)| {
            words.iter().any(|w| {
                w.chars().count() >= 3
                    && !matched.contains(w)
                    && !all.iter().all(|other| other.contains(w))
                    && said.iter().any(|s| !matched.contains(s) && similarity(w, s) >= 0.85)
            })
        })
        .map(|(id, _)| id)
        .collect();
    (named.len() == 1).then(|| named[0].clone())
}

/// A weighed item with no amount, no size and no pack said: how much is
/// asked. (One sold in packs of a weight is one pack.)
fn needs_quantity(op: &CartOp, catalog: &Catalog) -> bool {
    let CartOp::Add { item, quantity: None, variant_id: None, .. } = op else { return false };
    catalog
        .item(&item.item_id)
        .is_some_and(|i| matches!(i.unit, Unit::Kg | Unit::G | Unit::Litre | Unit::Ml) && one_pack(i).is_none())
}

/// What one pack of an item sold by weight or volume in packs of one size
/// holds (none with sizes to choose from, or priced per unit).
fn one_pack(item: &crate::catalog::Item) -> Option<Qty> {
    Some(item.price_quantity()).filter(|q| *q != Qty::ONE && item.variants.is_empty())
}

/// An add with no amount of an item priced by the pack ("poha bhi" of
/// poha sold by the gram in 500 g packs) is one pack.
fn one_pack_if_unsaid(op: CartOp, catalog: &Catalog) -> CartOp {
    match op {
        CartOp::Add { item, quantity: None, variant_id: None, modifiers } => {
            let pack = catalog.item(&item.item_id).and_then(one_pack);
            CartOp::Add { item, quantity: pack, variant_id: None, modifiers }
        }
        other => other,
    }
}

/// The add with the item the caller chose (and no alternatives left).
fn with_item(op: &CartOp, item_id: &str) -> CartOp {
    let mut op = op.clone();
    if let CartOp::Add { item, .. } = &mut op {
        *item = ItemRef {
            item_id: item_id.to_string(),
            confidence: 1.0,
            alternatives: Vec::new(),
            heard: item.heard.clone(),
        };
    }
    op
}

/// What changed between two carts, said briefly: the lines added or
/// changed, and the items removed.
fn acknowledge(d: &Dialog, before: &crate::cart::Cart, catalog: &Catalog) -> String {
    let lang = d.language;
    let changed: Vec<String> =
        d.cart.lines.iter().filter(|l| !before.lines.contains(l)).filter_map(|l| say_line(lang, l, catalog)).collect();
    let removed: Vec<String> = before
        .lines
        .iter()
        .filter(|b| !d.cart.lines.iter().any(|l| l.item_id == b.item_id))
        .filter_map(|b| catalog.item(&b.item_id))
        .map(|i| item_name(lang, i))
        .collect();
    let mut said = Vec::new();
    if !changed.is_empty() {
        said.push(say::added(lang, &say::list(lang, &changed)));
    }
    if !removed.is_empty() {
        said.push(say::removed(lang, &say::list(lang, &removed)));
    }
    join(&said)
}

/// Items said: applies what can be applied, notes what is not sold or not
/// available, answers questions, and queues what must be asked. `None`
/// when the words carried nothing the dialog can act on.
fn take_items(d: &mut Dialog, heard: &Heard, catalog: &Catalog, t: &mut Turn) -> Option<String> {
    let lang = d.language;
    let ops = heard.ops().to_vec();
    let done = is_done(&heard.text);
    if ops.is_empty() && !done {
        return None;
    }
    if ops.iter().any(|o| matches!(o, CartOp::Cancel)) {
        return Some(cancel(d, catalog, t));
    }
    let before = d.cart.clone();
    let mut notes: Vec<String> = Vec::new();
    let mut questions: Vec<Question> = Vec::new();
    let (mut confirm, mut reject) = (false, false);
    for op in &ops {
        match op {
            CartOp::Add { item, .. } => match resolve_add(op, catalog, &words_besides(&heard.text, &ops, op)) {
                Resolved::Apply(op) => {
                    d.cart.apply(catalog, &one_pack_if_unsaid(op, catalog));
                }
                Resolved::Ask(question) => questions.push(question),
                Resolved::Unavailable => {
                    let name =
                        catalog.item(&item.item_id).map(|i| item_name(lang, i)).unwrap_or_else(|| item.heard.clone());
                    notes.push(say::unavailable(lang, &name));
                }
            },
            CartOp::NotInCatalog { heard: words, removal: false, .. } => {
                notes.push(say::not_sold(lang, &as_said(&heard.text, words)))
            }
            CartOp::NotInCatalog { removal: true, .. } => {}
            CartOp::Clear => {
                if d.cart.apply(catalog, op) {
                    notes.push(say::cart_cleared(lang));
                }
            }
            CartOp::Confirm => confirm = true,
            CartOp::Reject => reject = true,
            CartOp::Ask { topic, item } => notes.push(answer_question(d, *topic, item.as_ref(), catalog)),
            CartOp::Cancel => {}
            // A size or option said alone that fits several items, none in
            // the cart: too unsure to add an item for it.
            CartOp::SetVariant { subject: Subject::Item(item), .. }
            | CartOp::SetModifier { subject: Subject::Item(item), .. }
                if item.is_ambiguous() && !in_cart(&d.cart, item) => {}
            _ => {
                d.cart.apply(catalog, op);
            }
        }
    }
    let changed = d.cart != before;
    if changed {
        cart_changed(d, catalog, t);
    }
    let ack = join(&[acknowledge(d, &before, catalog), join(&notes)]);
    if !questions.is_empty() {
        d.questions = questions;
        return Some(next_question(d, catalog, ack));
    }
    if done || confirm || reject {
        // A "nahi" that came with a change is a correction, not "nothing more".
        let correcting = reject && changed;
        if !d.cart.lines.is_empty() && !correcting {
            return Some(join(&[ack, read_back(d, catalog)]));
        }
        if confirm
            && !changed
            && let Some(order) = d.orders.iter().rev().find(|o| !o.cancelled)
        {
            let number = order.number.clone();
            return Some(ask(d, Expects::AnythingElse, say::already_placed(lang, &number), say::anything_else(lang)));
        }
        if d.cart.lines.is_empty() && (done || reject) {
            return Some(join(&[ack, goodbye(d)]));
        }
    }
    if ack.is_empty() && !changed {
        return None;
    }
    Some(next_question(d, catalog, ack))
}

/// The caller's own words (in their script) for words the parser heard
/// (normalised, Devanagari transliterated): "साबुन", not "saabun".
fn as_said(text: &str, heard: &str) -> String {
    let wanted = words_in(heard);
    let said: Vec<&str> = text
        .split_whitespace()
        .filter(|raw| {
            let keys = words_in(raw);
            !keys.is_empty() && keys.iter().all(|k| wanted.contains(k))
        })
        .collect();
    if said.is_empty() { heard.to_string() } else { said.join(" ") }
}

fn in_cart(cart: &crate::cart::Cart, item: &ItemRef) -> bool {
    cart.lines.iter().any(|l| l.item_id == item.item_id || item.alternatives.iter().any(|a| a.item_id == l.item_id))
}

fn answer_question(d: &Dialog, topic: AskTopic, item: Option<&ItemRef>, catalog: &Catalog) -> String {
    let lang = d.language;
    let item = item.and_then(|r| catalog.item(&r.item_id));
    match (topic, item) {
        (AskTopic::Price, Some(item)) => {
            let name = item_name(lang, item);
            let mut prices = vec![crate::spell::rupees(item.price, lang)];
            prices.extend(item.variants.iter().skip(1).map(|v| {
                format!(
                    "{}: {}",
                    super::pricing::spoken_name(lang, &v.name, &v.aliases),
                    crate::spell::rupees(v.price, lang)
                )
            }));
            say::price_of(lang, &name, &prices.join(", "))
        }
        (AskTopic::Menu, Some(item)) if item.available => say::sold_here(lang, &item_name(lang, item)),
        (AskTopic::Menu, Some(item)) => say::unavailable(lang, &item_name(lang, item)),
        (AskTopic::Menu, None) => {
            let names: Vec<String> =
                catalog.items.iter().filter(|i| i.available).take(6).map(|i| item_name(lang, i)).collect();
            say::menu(lang, &say::list(lang, &names))
        }
        (AskTopic::DeliveryTime, _) => say::delivery_time(lang),
        (AskTopic::Price | AskTopic::Total | AskTopic::Repeat, _) if !d.cart.lines.is_empty() => {
            let (lines, total) = say_cart(lang, &d.cart, catalog);
            say::total_so_far(lang, &lines, &total)
        }
        (AskTopic::Price | AskTopic::Total | AskTopic::Repeat | AskTopic::Human, _) => say::cart_empty(lang),
    }
}

/// "Cancel": an unplaced cart is emptied at once; with an empty cart the
/// last placed order is cancelled after the caller confirms.
fn cancel(d: &mut Dialog, catalog: &Catalog, t: &mut Turn) -> String {
    let lang = d.language;
    d.questions.clear();
    if !d.cart.lines.is_empty() {
        d.cart = Default::default();
        cart_changed(d, catalog, t);
        return ask(d, Expects::Items, String::new(), say::cart_cancelled(lang));
    }
    match d.orders.iter().rev().find(|o| !o.cancelled) {
        Some(order) => {
            let number = order.number.clone();
            d.cancelling = Some(order.order_id.clone());
            ask(d, Expects::Confirm, String::new(), say::confirm_cancel(lang, &number))
        }
        None if d.orders.is_empty() => ask(d, Expects::Items, String::new(), say::cart_cancelled(lang)),
        None => ask(d, Expects::AnythingElse, say::nothing_to_cancel(lang), say::anything_else(lang)),
    }
}

// ---- questions about items -----------------------------------------------

async fn on_question(d: &mut Dialog, heard: &Heard, ports: &dyn Ports, t: &mut Turn) -> Said {
    let Some(catalog) = store_catalog(d, ports).await? else { return Ok(None) };
    let Some(question) = d.questions.first().cloned() else {
        return Ok(Some(next_question(d, &catalog, String::new())));
    };
    let resolved = match &question {
        Question::Choice { candidates, op } => chosen(heard, candidates).map(|id| with_item(op, &id)),
        Question::Quantity { op } => how_much(heard, op, &catalog),
    };
    let Some(op) = resolved else {
        // Other words: the caller moved on. What they said now counts, and
        // the item asked about is not dropped: its question waits behind
        // those of the new words.
        let wants_read_back = heard.yes_no() == Some(YesNo::Yes) || is_done(&heard.text);
        if heard.ops().iter().any(|o| !matches!(o, CartOp::Confirm | CartOp::Reject)) || wants_read_back {
            let mut pending = std::mem::take(&mut d.questions);
            // "biryani hata do" to "which biryani?": that item is not wanted.
            pending.retain(|q| !heard.ops().iter().any(|o| removes(o, q)));
            // A yes or "bas" to "which one?" takes the likeliest (the
            // first offered): the read-back says it and the caller can
            // change it, but a line they asked for is never lost.
            let (taken, waiting): (Vec<Question>, Vec<Question>) = if wants_read_back {
                pending.into_iter().partition(|q| matches!(q, Question::Choice { .. }))
            } else {
                (Vec::new(), pending)
            };
            let before = d.cart.clone();
            for question in taken {
                if let Question::Choice { candidates, op } = question
                    && let Some(best) = candidates.first()
                {
                    let op = with_item(&op, best);
                    if needs_quantity(&op, &catalog) {
                        d.questions.push(Question::Quantity { op });
                    } else {
                        d.cart.apply(&catalog, &one_pack_if_unsaid(op, &catalog));
                    }
                }
            }
            let took = acknowledge(d, &before, &catalog);
            let waiting_now = std::mem::take(&mut d.questions).into_iter().chain(waiting).collect::<Vec<_>>();
            if d.cart != before {
                cart_changed(d, &catalog, t);
            }
            let said = take_items(d, heard, &catalog, t);
            // The new words' questions first, then the ones still open
            // (unless the caller cancelled).
            if !heard.has(|o| matches!(o, CartOp::Cancel)) {
                d.questions.extend(waiting_now);
            }
            if !d.questions.is_empty() && !d.ended {
                let before_question = join(&[took, said.map(|s| without_question(d, s)).unwrap_or_default()]);
                return Ok(Some(next_question(d, &catalog, before_question)));
            }
            return Ok(Some(join(&[took, said.unwrap_or_else(|| next_question(d, &catalog, String::new()))])));
        }
        if heard.yes_no() == Some(YesNo::No) && matches!(question, Question::Choice { .. }) {
            // "nahi" to "A ya B?": neither; the item is left out.
            d.questions.remove(0);
            return Ok(Some(next_question(d, &catalog, say::okay(d.language))));
        }
        return Ok(None);
    };
    d.questions.remove(0);
    if needs_quantity(&op, &catalog) {
        d.questions.insert(0, Question::Quantity { op });
        return Ok(Some(next_question(d, &catalog, String::new())));
    }
    let before = d.cart.clone();
    d.cart.apply(&catalog, &one_pack_if_unsaid(op, &catalog));
    if d.cart != before {
        cart_changed(d, &catalog, t);
    }
    let ack = acknowledge(d, &before, &catalog);
    Ok(Some(next_question(d, &catalog, ack)))
}

/// Whether an operation takes back the item a question is about.
fn removes(op: &CartOp, question: &Question) -> bool {
    let CartOp::Remove { subject: Subject::Item(item) } = op else { return false };
    let asked: Vec<&str> = match question {
        Question::Choice { candidates, .. } => candidates.iter().map(String::as_str).collect(),
        Question::Quantity { op } => op_item(op).into_iter().collect(),
    };
    std::iter::once(&item.item_id)
        .chain(item.alternatives.iter().map(|a| &a.item_id))
        .any(|id| asked.contains(&id.as_str()))
}

/// The candidate a choice answer names: by number, or by words that fit
/// one candidate only.
fn chosen(heard: &Heard, candidates: &[String]) -> Option<String> {
    if let Some(n) = heard.number {
        return candidates.get((n as usize).checked_sub(1)?).cloned();
    }
    let mut named: Vec<&String> = Vec::new();
    for op in heard.ops() {
        let item = match op {
            CartOp::Add { item, .. } => Some(item),
            CartOp::SetQuantity { subject: Subject::Item(item), .. }
            | CartOp::SetVariant { subject: Subject::Item(item), .. }
            | CartOp::SetModifier { subject: Subject::Item(item), .. } => Some(item),
            _ => None,
        };
        let Some(item) = item else { continue };
        let fits: Vec<&String> = candidates
            .iter()
            .filter(|c| **c == item.item_id || item.alternatives.iter().any(|a| &a.item_id == *c))
            .collect();
        if !item.is_ambiguous() && candidates.contains(&item.item_id) {
            named.push(candidates.iter().find(|c| **c == item.item_id)?);
        } else if fits.len() == 1 {
            named.push(fits[0]);
        }
    }
    named.dedup();
    (named.len() == 1).then(|| named[0].clone())
}

/// The amount a quantity answer gives, in the item's unit: a number
/// pressed, a size of the item ("ek kilo" of an item sold in 500g and 1kg
/// packs is one 1kg pack), or an amount said ("dedh kilo", "500 gram").
fn how_much(heard: &Heard, op: &CartOp, catalog: &Catalog) -> Option<CartOp> {
    let item_id = op_item(op)?;
    let item = catalog.item(item_id)?;
    let about = |subject: &Subject| match subject {
        Subject::Focus => true,
        Subject::Item(r) => r.item_id == item_id,
    };
    let (mut quantity, mut variant) = (None, None);
    if let (None, Some(n)) = (&heard.understanding, heard.number) {
        quantity = Some(Qty::whole(n));
    }
    for said in heard.ops() {
        match said {
            CartOp::SetVariant { subject, variant_id } if about(subject) => variant = Some(variant_id.clone()),
            CartOp::SetQuantity { subject, quantity: q } if about(subject) => quantity = Some(*q),
            CartOp::Add { item, quantity: q, variant_id, .. } if item.item_id == item_id => {
                quantity = quantity.or(*q);
                variant = variant.or_else(|| variant_id.clone());
            }
            _ => {}
        }
    }
    // "ek kilo toor dal" to "how much sugar?" is toor dal: an amount said
    // with another item is that item's.
    let other_item = heard.ops().iter().any(|o| matches!(o, CartOp::Add { item, .. } if item.item_id != item_id));
    if quantity.is_none() && variant.is_none() && !other_item {
        let tokens = tokenize(&heard.text);
        let amount = (0..tokens.len()).find_map(|i| parse_amount(&tokens, i))?.amount;
        quantity = Some(amount.in_unit(item.unit).0);
    }
    if quantity.is_none() && variant.is_none() || quantity.is_some_and(|q| q.is_zero()) {
        return None;
    }
    let mut op = op.clone();
    if let CartOp::Add { quantity: q, variant_id, .. } = &mut op {
        *q = quantity;
        *variant_id = variant;
    }
    Some(op)
}

// ---- confirming, address, payment, placing -----------------------------------

async fn on_confirm(d: &mut Dialog, heard: &Heard, ports: &dyn Ports, t: &mut Turn) -> Said {
    let lang = d.language;
    if let Some(order_id) = d.cancelling.clone() {
        return match heard.yes_no() {
            Some(YesNo::Yes) => Ok(Some(cancel_order(d, &order_id, ports, t).await)),
            Some(YesNo::No) => {
                d.cancelling = None;
                Ok(Some(ask(d, Expects::AnythingElse, say::order_kept(lang), say::anything_else(lang))))
            }
            None if heard.has(|o| matches!(o, CartOp::Cancel)) => Ok(Some(cancel_order(d, &order_id, ports, t).await)),
            None => Ok(None),
        };
    }
    let Some(catalog) = store_catalog(d, ports).await? else { return Ok(None) };
    let cart_ops = heard.ops().iter().any(|o| !matches!(o, CartOp::Confirm | CartOp::Reject));
    match heard.yes_no() {
        Some(YesNo::Yes) if !cart_ops => confirmed(d, &catalog, ports, t).await.map(Some),
        Some(YesNo::No) if !cart_ops => Ok(Some(ask(d, Expects::Items, String::new(), say::what_to_change(lang)))),
        _ if cart_ops => Ok(take_items(d, heard, &catalog, t)),
        _ => Ok(None),
    }
}

/// The cart is confirmed: on a call the address and payment come next;
/// with one catalog and no profile the order is placed now.
async fn confirmed(d: &mut Dialog, catalog: &Catalog, ports: &dyn Ports, t: &mut Turn) -> Result<String, PortError> {
    let lang = d.language;
    if d.cart.lines.is_empty() {
        return Ok(ask(d, Expects::Items, String::new(), say::cart_empty(lang)));
    }
    if d.mode == Mode::CatalogOnly {
        return Ok(place(d, catalog, None, ports, t).await);
    }
    let address = ports.profile().await?.and_then(|p| p.addresses.into_iter().next());
    let Some(address) = address else {
        return Ok(hand_off(d, t, HandoffReason::NoAddress, say::no_address(lang)));
    };
    let spoken = spoken_address(&address);
    d.address = Some(address);
    Ok(ask(d, Expects::Address, String::new(), say::ask_address(lang, &spoken)))
}

fn spoken_address(address: &Address) -> String {
    match &address.label {
        Some(label) if !label.trim().is_empty() => format!("{label}, {}", address.text),
        _ => address.text.clone(),
    }
}

fn on_address(d: &mut Dialog, heard: &Heard, t: &mut Turn) -> Said {
    let lang = d.language;
    Ok(match heard.yes_no() {
        Some(YesNo::Yes) => Some(ask(d, Expects::Payment, String::new(), say::ask_payment(lang))),
        Some(YesNo::No) => {
            d.address = None;
            Some(hand_off(d, t, HandoffReason::NoAddress, say::to_order_desk(lang)))
        }
        None => None,
    })
}

/// Cash on delivery or a UPI link, from keys or words.
fn payment_of(heard: &Heard) -> Option<Payment> {
    let text = heard.text.to_lowercase();
    let whatsapp = ["whatsapp", "whats app", "watsapp", "व्हाट्सएप", "व्हॉट्सॲप", "वॉट्सऐप", "व्हाट्सऐप"];
    let via = if whatsapp.iter().any(|w| text.contains(w)) { LinkChannel::Whatsapp } else { LinkChannel::Sms };
    match heard.number {
        Some(1) => return Some(Payment::CashOnDelivery),
        Some(2) => return Some(Payment::UpiLink { via }),
        _ => {}
    }
    let cash = ["cash", "kash", "cod", "nakad", "naqad", "rokh", "कैश", "कॅश", "नकद", "रोख", "कॅश ऑन"];
    let upi = [
        "upi",
        "u p i",
        "online",
        "link",
        "gpay",
        "google pay",
        "phonepe",
        "phone pe",
        "paytm",
        "यूपीआई",
        "ऑनलाइन",
        "लिंक",
    ];
    if upi.iter().any(|w| text.contains(w)) || via == LinkChannel::Whatsapp {
        Some(Payment::UpiLink { via })
    } else if cash.iter().any(|w| text.contains(w)) {
        Some(Payment::CashOnDelivery)
    } else {
        None
    }
}

async fn on_payment(d: &mut Dialog, heard: &Heard, ports: &dyn Ports, t: &mut Turn) -> Said {
    let Some(payment) = payment_of(heard) else { return Ok(None) };
    let Some(catalog) = store_catalog(d, ports).await? else { return Ok(None) };
    Ok(Some(place(d, &catalog, Some(payment), ports, t).await))
}

/// Places the cart as an order, once: the idempotency key is the call and
/// the number of orders already placed in it, so a retried turn (the same
/// state loaded again) gets the same order back from the port.
async fn place(d: &mut Dialog, catalog: &Catalog, payment: Option<Payment>, ports: &dyn Ports, t: &mut Turn) -> String {
    let lang = d.language;
    let view = d.cart_view(catalog);
    let Some(store_id) = view.store_id.clone() else {
        return ask(d, Expects::Store, String::new(), say::ask_store(lang));
    };
    let request = OrderRequest {
        idempotency_key: format!("{}:{}", d.call_id, d.orders.len()),
        store_id,
        lines: view.lines.clone(),
        total: view.total,
        payment,
        address: d.address.clone(),
        language: lang,
    };
    let order = match ports.place_order(&request).await {
        Ok(order) => order,
        Err(e) => {
            t.events.push(DialogEvent::OrderFailed { cart: view, error: e.message });
            return hand_off(d, t, HandoffReason::OrderFailed, say::place_failed(lang));
        }
    };
    d.orders.push(order.clone());
    d.cart = Default::default();
    d.address = None;
    t.events.push(DialogEvent::OrderPlaced { order: order.clone() });
    cart_changed(d, catalog, t);
    let total = crate::spell::rupees(order.total, lang);
    let mut said = vec![match order.total.0 - request.total.0 {
        delivery if delivery > 0 => {
            say::placed_with_delivery(lang, &order.number, &total, &crate::spell::rupees(Paise(delivery), lang))
        }
        _ => say::placed(lang, &order.number, &total),
    }];
    if let Some(Payment::UpiLink { via }) = payment {
        match ports.send_payment_link(&order, via).await {
            Ok(()) => {
                t.events.push(DialogEvent::PaymentLinkSent { order_id: order.order_id.clone(), via });
                said.push(say::link_sent(lang, via == LinkChannel::Whatsapp));
            }
            Err(e) => {
                t.events.push(DialogEvent::PaymentLinkFailed { order_id: order.order_id.clone(), error: e.message });
                said.push(say::link_failed(lang));
            }
        }
    }
    ask(d, Expects::AnythingElse, join(&said), say::anything_else(lang))
}

async fn cancel_order(d: &mut Dialog, order_id: &str, ports: &dyn Ports, t: &mut Turn) -> String {
    let lang = d.language;
    d.cancelling = None;
    let Some(index) = d.orders.iter().position(|o| o.order_id == order_id) else {
        return ask(d, Expects::AnythingElse, say::nothing_to_cancel(lang), say::anything_else(lang));
    };
    if let Err(_e) = ports.cancel_order(&d.orders[index]).await {
        return hand_off(d, t, HandoffReason::Unavailable, say::cancel_failed(lang));
    }
    d.orders[index].cancelled = true;
    let number = d.orders[index].number.clone();
    t.events.push(DialogEvent::OrderCancelled { order_id: order_id.to_string() });
    ask(d, Expects::AnythingElse, say::order_cancelled(lang, &number), say::anything_else(lang))
}
