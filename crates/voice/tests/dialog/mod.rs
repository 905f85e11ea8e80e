//! The ordering dialog driven turn by turn against an in-memory world: the
//! committed demo catalogs (store 7 is Godavari Misal House), a caller
//! profile, and an order book that honours idempotency keys.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use mangwale_voice::dialog::{
    Address, Dialog, DialogEvent, Expects, Handoff, HandoffReason, Input, LinkChannel, Mode, OrderRequest, Payment,
    PlacedOrder, PortError, Ports, Profile, Reply, StoreOffer,
};
use mangwale_voice::{CartOp, Catalog, Context, ItemRef, Lang, Paise, Qty, Script, Understanding};

fn catalog(store_id: &str) -> Catalog {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/catalogs/{store_id}.json"));
    Catalog::from_json(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn offer(catalog: &Catalog, distance_km: f64) -> StoreOffer {
    StoreOffer {
        id: catalog.store.id.clone(),
        name: catalog.store.name.clone(),
        aliases: Vec::new(),
        distance_km: Some(distance_km),
        open: true,
    }
}

/// The world the dialog talks to, in memory.
struct World {
    stores: Vec<StoreOffer>,
    catalogs: HashMap<String, Arc<Catalog>>,
    profile: Option<Profile>,
    fail_orders: bool,
    fail_links: bool,
    /// What the second opinion makes of words the parser could not read.
    fallback: Option<Understanding>,
    fallback_asked: Mutex<Vec<String>>,
    /// Placed orders by idempotency key, in placing order.
    orders: Mutex<Vec<(String, OrderRequest, PlacedOrder)>>,
    cancelled: Mutex<Vec<String>>,
    links: Mutex<Vec<(String, LinkChannel)>>,
}

impl World {
    /// The demo stores 7 (nearest), 11 and 9, and a caller with a home address.
    fn new() -> World {
        let catalogs: Vec<Catalog> = ["7", "11", "9"].into_iter().map(catalog).collect();
        World {
            stores: catalogs.iter().enumerate().map(|(i, c)| offer(c, 1.0 + i as f64)).collect(),
            catalogs: catalogs.into_iter().map(|c| (c.store.id.clone(), Arc::new(c))).collect(),
            profile: Some(Profile {
                name: Some("Asha".into()),
                language: None,
                addresses: vec![Address {
                    id: Some("a1".into()),
                    label: Some("Home".into()),
                    text: "12 Gangapur Road".into(),
                    landmark: None,
                }],
            }),
            fail_orders: false,
            fail_links: false,
            fallback: None,
            fallback_asked: Mutex::new(Vec::new()),
            orders: Mutex::new(Vec::new()),
            cancelled: Mutex::new(Vec::new()),
            links: Mutex::new(Vec::new()),
        }
    }

    fn placed(&self) -> Vec<OrderRequest> {
        self.orders.lock().unwrap().iter().map(|(_, r, _)| r.clone()).collect()
    }

    fn store(&self, id: &str) -> StoreOffer {
        self.stores.iter().find(|s| s.id == id).unwrap().clone()
    }
}

#[async_trait]
impl Ports for World {
    async fn stores(&self) -> Result<Vec<StoreOffer>, PortError> {
        Ok(self.stores.clone())
    }

    async fn catalog(&self, store_id: &str) -> Result<Arc<Catalog>, PortError> {
        self.catalogs
            .get(store_id)
            .cloned()
            .ok_or_else(|| PortError { message: format!("no store {store_id}"), retryable: false })
    }

    async fn profile(&self) -> Result<Option<Profile>, PortError> {
        Ok(self.profile.clone())
    }

    async fn place_order(&self, order: &OrderRequest) -> Result<PlacedOrder, PortError> {
        if self.fail_orders {
            return Err(PortError { message: "jupiter said 500".into(), retryable: true });
        }
        let mut orders = self.orders.lock().unwrap();
        if let Some((_, _, placed)) = orders.iter().find(|(key, _, _)| *key == order.idempotency_key) {
            return Ok(placed.clone());
        }
        let number = (1041 + orders.len()).to_string();
        let placed = PlacedOrder {
            order_id: format!("ord-{number}"),
            number,
            store_id: order.store_id.clone(),
            lines: order.lines.clone(),
            total: order.total,
            payment: order.payment,
            cancelled: false,
        };
        orders.push((order.idempotency_key.clone(), order.clone(), placed.clone()));
        Ok(placed)
    }

    async fn cancel_order(&self, order: &PlacedOrder) -> Result<(), PortError> {
        self.cancelled.lock().unwrap().push(order.order_id.clone());
        Ok(())
    }

    async fn send_payment_link(&self, order: &PlacedOrder, via: LinkChannel) -> Result<(), PortError> {
        if self.fail_links {
            return Err(PortError { message: "sms gateway down".into(), retryable: true });
        }
        self.links.lock().unwrap().push((order.order_id.clone(), via));
        Ok(())
    }

    async fn fallback(&self, utterance: &str, _catalog: &Catalog, _context: &Context) -> Option<Understanding> {
        self.fallback_asked.lock().unwrap().push(utterance.to_string());
        self.fallback.clone()
    }
}

/// A call to Godavari Misal House (store 7) in Hinglish.
fn godavari_call(world: &World) -> Dialog {
    Dialog::new("CA1", Mode::Call, Lang::HiEn, Some(world.store("7")))
}

async fn say(dialog: &mut Dialog, world: &World, text: &str) -> Reply {
    dialog.turn(Input::Say(text.into()), world).await
}

async fn key(dialog: &mut Dialog, world: &World, keys: &str) -> Reply {
    dialog.turn(Input::Dtmf(keys.into()), world).await
}

fn lines(dialog: &Dialog) -> Vec<(String, Option<String>, Qty)> {
    dialog.cart.lines.iter().map(|l| (l.item_id.clone(), l.variant_id.clone(), l.quantity)).collect()
}

fn devanagari(text: &str) -> bool {
    text.chars().any(|c| ('\u{0900}'..='\u{097F}').contains(&c))
}

#[tokio::test]
async fn two_plates_of_misal_and_a_cutting_chai_paid_cash_is_one_order() {
    let world = World::new();
    let mut call = godavari_call(&world);
    let hello = call.turn(Input::Start, &world).await;
    assert!(hello.agent.contains("Godavari Misal House"), "{}", hello.agent);
    assert_eq!(hello.expects, Expects::Items);

    let items = say(&mut call, &world, "do plate misal aur ek cutting chai").await;
    assert_eq!(items.expects, Expects::Items, "{}", items.agent);
    assert!(items.agent.contains("Aur kuch?"), "{}", items.agent);
    assert!(items.understood.is_some());
    assert!(items.events.iter().any(|e| matches!(e, DialogEvent::CartChanged { .. })));

    let read_back = say(&mut call, &world, "bas itna hi").await;
    assert_eq!(read_back.expects, Expects::Confirm, "{}", read_back.agent);
    assert!(read_back.agent.contains("do plate Misal Pav"), "{}", read_back.agent);
    assert!(read_back.agent.contains("ek sau baavan rupaye"), "{}", read_back.agent);

    let address = say(&mut call, &world, "haan").await;
    assert_eq!(address.expects, Expects::Address, "{}", address.agent);
    assert!(address.agent.contains("Home, 12 Gangapur Road par bhejein?"), "{}", address.agent);
    let payment = key(&mut call, &world, "1").await;
    assert_eq!(payment.expects, Expects::Payment, "{}", payment.agent);
    let placed = key(&mut call, &world, "1").await;
    assert_eq!(placed.expects, Expects::AnythingElse, "{}", placed.agent);
    assert!(!placed.ended);
    assert!(placed.agent.contains("1041"), "{}", placed.agent);
    assert!(placed.events.iter().any(|e| matches!(e, DialogEvent::OrderPlaced { .. })));

    let orders = world.placed();
    assert_eq!(orders.len(), 1);
    let order = &orders[0];
    assert_eq!(order.idempotency_key, "CA1:0");
    assert_eq!(order.store_id, "7");
    assert_eq!(order.payment, Some(Payment::CashOnDelivery));
    assert_eq!(order.address.as_ref().map(|a| a.text.as_str()), Some("12 Gangapur Road"));
    let got: Vec<(&str, Qty, Paise)> =
        order.lines.iter().map(|l| (l.item_id.as_str(), l.quantity, l.line_total)).collect();
    assert_eq!(got, [("7001", Qty::whole(2), Paise(14000)), ("7012", Qty::ONE, Paise(1200))]);
    assert_eq!(order.total, Paise(15200));
    assert_eq!(call.orders.len(), 1);
    assert!(call.cart.lines.is_empty());
    assert!(!call.is_resumable());

    let bye = say(&mut call, &world, "bas dhanyavaad").await;
    assert!(bye.ended);
    assert_eq!(bye.expects, Expects::Nothing);
}

/// A call that has "do plate misal aur ek cutting chai" in the cart and
/// the cart read back.
async fn read_back_call(world: &World) -> Dialog {
    let mut call = godavari_call(world);
    call.turn(Input::Start, world).await;
    say(&mut call, world, "do plate misal aur ek cutting chai").await;
    let reply = say(&mut call, world, "bas").await;
    assert_eq!(reply.expects, Expects::Confirm, "{}", reply.agent);
    call
}

/// The same, confirmed, with the address accepted: the payment is asked.
async fn payment_call(world: &World) -> Dialog {
    let mut call = read_back_call(world).await;
    assert_eq!(key(&mut call, world, "1").await.expects, Expects::Address);
    assert_eq!(say(&mut call, world, "haan").await.expects, Expects::Payment);
    call
}

#[tokio::test]
async fn a_correction_sets_the_quantity_of_the_line_just_said() {
    let world = World::new();
    let mut call = godavari_call(&world);
    call.turn(Input::Start, &world).await;
    say(&mut call, &world, "do plate misal").await;
    let reply = say(&mut call, &world, "nahi do nahi teen").await;
    assert_eq!(lines(&call), [("7001".into(), None, Qty::whole(3))], "{}", reply.agent);
    assert!(reply.agent.contains("teen plate Misal Pav"), "{}", reply.agent);
    let CartView { total, .. } = match &reply.events[..] {
        [DialogEvent::CartChanged { cart }] => cart.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(total, Paise(21000));
}

use mangwale_voice::dialog::CartView;

#[tokio::test]
async fn a_removal_takes_the_item_out_and_says_so() {
    let world = World::new();
    let mut call = godavari_call(&world);
    call.turn(Input::Start, &world).await;
    say(&mut call, &world, "ek vada pav aur do cutting chai").await;
    assert_eq!(call.cart.lines.len(), 2);
    let reply = say(&mut call, &world, "vada pav hata do").await;
    // "cutting chai" names the `cutting` cup (docs/voice.md, "Quantities").
    assert_eq!(lines(&call), [("7012".into(), Some("cutting".into()), Qty::whole(2))], "{}", reply.agent);
    assert!(reply.agent.contains("Vada Pav hata diya"), "{}", reply.agent);
    assert_eq!(reply.expects, Expects::Items);
}

#[tokio::test]
async fn a_modifier_goes_on_the_line_and_its_price_delta_into_the_order() {
    let world = World::new();
    let mut call = godavari_call(&world);
    call.turn(Input::Start, &world).await;
    say(&mut call, &world, "do plate misal").await;
    say(&mut call, &world, "bina pyaaz").await;
    let line = &call.cart.lines[0];
    assert!(line.modifiers.iter().any(|m| m.group_id == "onion" && m.option_id == "no_onion"), "{line:?}");
    // Extra farsan costs ₹10 a plate.
    let reply = say(&mut call, &world, "extra farsan").await;
    let view = call.cart_view(&catalog("7"));
    assert_eq!(view.lines[0].unit_price, Paise(8000), "{}", reply.agent);
    assert_eq!(view.total, Paise(16000));
    let read_back = say(&mut call, &world, "bas").await;
    assert!(read_back.agent.contains("ek sau saath rupaye"), "{}", read_back.agent);
}

#[tokio::test]
async fn an_ambiguous_item_is_asked_and_answered_by_a_key() {
    let world = World::new();
    // "biryani" at Nawab Biryani House fits several biryanis: three are offered.
    let mut call = Dialog::new("CA1", Mode::Call, Lang::HiEn, Some(world.store("9")));
    call.turn(Input::Start, &world).await;
    let question = say(&mut call, &world, "do biryani").await;
    assert_eq!(question.expects, Expects::Choice, "{}", question.agent);
    assert!(question.agent.contains(" ya ") && question.agent.contains("1, 2 ya 3 dabaiye"), "{}", question.agent);
    assert!(call.cart.lines.is_empty());
    let first = call.questions.first().cloned();
    let reply = key(&mut call, &world, "1").await;
    assert_eq!(reply.expects, Expects::Items, "{}", reply.agent);
    let Some(mangwale_voice::dialog::Question::Choice { candidates, .. }) = first else { panic!("{first:?}") };
    assert_eq!(lines(&call), [(candidates[0].clone(), None, Qty::whole(2))]);
}

#[tokio::test]
async fn an_ambiguous_item_is_answered_by_naming_one() {
    let mut world = World::new();
    let dhaba = catalog("10");
    world.stores.push(offer(&dhaba, 4.0));
    world.catalogs.insert("10".into(), Arc::new(dhaba));
    let mut call = Dialog::new("CA1", Mode::Call, Lang::HiEn, Some(world.store("10")));
    call.turn(Input::Start, &world).await;
    let question = say(&mut call, &world, "ek paneer").await;
    assert_eq!(question.expects, Expects::Choice, "{}", question.agent);
    assert!(question.agent.contains("1 ya 2 dabaiye"), "{}", question.agent);
    let reply = say(&mut call, &world, "doosra wala").await;
    assert_eq!(reply.expects, Expects::Items, "{}", reply.agent);
    assert_eq!(lines(&call), [("10004".into(), None, Qty::ONE)]);
}

#[tokio::test]
async fn confirming_twice_places_one_order() {
    let world = World::new();
    let mut call = payment_call(&world).await;
    let placed = say(&mut call, &world, "cash on delivery").await;
    assert_eq!(placed.expects, Expects::AnythingElse, "{}", placed.agent);
    let again = say(&mut call, &world, "confirm").await;
    assert!(again.agent.contains("pehle hi ho gaya") && again.agent.contains("1041"), "{}", again.agent);
    let again = key(&mut call, &world, "1").await;
    assert!(!again.events.iter().any(|e| matches!(e, DialogEvent::OrderPlaced { .. })), "{}", again.agent);
    assert_eq!(world.placed().len(), 1);
    assert_eq!(call.orders.len(), 1);
}

#[tokio::test]
async fn a_retried_turn_after_reloading_the_state_places_no_second_order() {
    let world = World::new();
    let call = payment_call(&world).await;
    let saved = serde_json::to_string(&call).unwrap();
    let mut first: Dialog = serde_json::from_str(&saved).unwrap();
    let placed = key(&mut first, &world, "1").await;
    assert!(placed.agent.contains("1041"), "{}", placed.agent);
    // The server crashed before saving the new state: the turn runs again
    // from the state saved before it.
    let mut retried: Dialog = serde_json::from_str(&saved).unwrap();
    let again = key(&mut retried, &world, "1").await;
    assert!(again.agent.contains("1041"), "{}", again.agent);
    assert_eq!(world.placed().len(), 1);
    assert_eq!(retried.orders, first.orders);
}

#[tokio::test]
async fn an_order_is_cancelled_after_the_caller_confirms_the_cancellation() {
    let world = World::new();
    let mut call = payment_call(&world).await;
    key(&mut call, &world, "1").await;
    let ask = say(&mut call, &world, "order cancel karo").await;
    assert_eq!(ask.expects, Expects::Confirm, "{}", ask.agent);
    assert!(ask.agent.contains("1041"), "{}", ask.agent);
    assert!(world.cancelled.lock().unwrap().is_empty());
    let done = say(&mut call, &world, "haan").await;
    assert!(done.events.contains(&DialogEvent::OrderCancelled { order_id: "ord-1041".into() }), "{}", done.agent);
    assert_eq!(*world.cancelled.lock().unwrap(), ["ord-1041"]);
    assert!(call.orders[0].cancelled);
    assert_eq!(done.expects, Expects::AnythingElse);
    // A new order after it is the call's second: a new idempotency key.
    say(&mut call, &world, "ek kanda bhaji").await;
    say(&mut call, &world, "bas").await;
    key(&mut call, &world, "1").await;
    key(&mut call, &world, "1").await;
    let second = key(&mut call, &world, "1").await;
    assert!(second.agent.contains("1042"), "{}", second.agent);
    let keys: Vec<String> = world.placed().iter().map(|o| o.idempotency_key.clone()).collect();
    assert_eq!(keys, ["CA1:0", "CA1:1"]);
}

#[tokio::test]
async fn cancelling_before_placing_empties_the_cart() {
    let world = World::new();
    let mut call = read_back_call(&world).await;
    let reply = say(&mut call, &world, "cancel kar do").await;
    assert!(call.cart.lines.is_empty());
    assert_eq!(reply.expects, Expects::Items, "{}", reply.agent);
    assert!(reply.agent.contains("cancel kar diya"), "{}", reply.agent);
    let bye = say(&mut call, &world, "nahi").await;
    assert!(bye.ended, "{}", bye.agent);
    assert!(world.placed().is_empty());
}

#[tokio::test]
async fn three_turns_not_understood_hand_the_call_to_the_order_desk() {
    let world = World::new();
    let mut call = godavari_call(&world);
    call.turn(Input::Start, &world).await;
    let first = say(&mut call, &world, "").await;
    assert!(!first.ended);
    assert!(
        first.agent.contains("samajh nahi aaya") && first.agent.contains("Kya order karna hai?"),
        "{}",
        first.agent
    );
    let second = call.turn(Input::Silence, &world).await;
    assert!(!second.ended);
    let third = say(&mut call, &world, "  ").await;
    assert!(third.ended);
    assert_eq!(third.handoff, Some(Handoff::OrderDesk { reason: HandoffReason::NotUnderstood }));
    assert_eq!(third.expects, Expects::Nothing);
}

#[tokio::test]
async fn an_understood_turn_resets_the_count_of_misses() {
    let world = World::new();
    let mut call = godavari_call(&world);
    call.turn(Input::Start, &world).await;
    say(&mut call, &world, "").await;
    say(&mut call, &world, "").await;
    say(&mut call, &world, "ek vada pav").await;
    assert!(!say(&mut call, &world, "").await.ended);
    assert!(!call.turn(Input::Silence, &world).await.ended);
    assert!(call.turn(Input::Silence, &world).await.ended);
}

#[tokio::test]
async fn a_failed_order_hands_off_with_the_cart_on_the_timeline() {
    let world = World { fail_orders: true, ..World::new() };
    let mut call = payment_call(&world).await;
    let reply = key(&mut call, &world, "1").await;
    assert!(reply.ended);
    assert_eq!(reply.handoff, Some(Handoff::OrderDesk { reason: HandoffReason::OrderFailed }));
    assert!(reply.agent.contains("order place nahi ho paaya"), "{}", reply.agent);
    let failed = reply.events.iter().find_map(|e| match e {
        DialogEvent::OrderFailed { cart, error } => Some((cart, error)),
        _ => None,
    });
    let (cart, error) = failed.expect("an OrderFailed event");
    assert_eq!(cart.lines.len(), 2);
    assert_eq!(cart.total, Paise(15200));
    assert_eq!(error, "jupiter said 500");
    assert!(call.orders.is_empty());
}

#[tokio::test]
async fn a_marathi_caller_hears_marathi_in_devanagari() {
    let world = World::new();
    let mut call = Dialog::new("CA1", Mode::Call, Lang::Mr, Some(world.store("7")));
    let hello = call.turn(Input::Start, &world).await;
    assert!(hello.agent.contains("स्वागत आहे"), "{}", hello.agent);
    let items = say(&mut call, &world, "दोन मिसळ पाव आणि एक चहा").await;
    assert_eq!(items.language, Lang::Mr, "{}", items.agent);
    assert!(items.agent.contains("आणखी काही?"), "{}", items.agent);
    let read_back = say(&mut call, &world, "बस").await;
    assert!(read_back.agent.contains("दोन प्लेट मिसळ पाव"), "{}", read_back.agent);
    assert!(read_back.agent.contains("एकशे बावन्न रुपये"), "{}", read_back.agent);
    let address = say(&mut call, &world, "हो").await;
    assert_eq!(address.language, Lang::Mr, "{}", address.agent);
    assert!(address.agent.contains("इथे पाठवू?"), "{}", address.agent);
}

#[tokio::test]
async fn a_hindi_caller_in_devanagari_hears_devanagari_hindi() {
    let world = World::new();
    let mut call = godavari_call(&world);
    call.turn(Input::Start, &world).await;
    let items = say(&mut call, &world, "दो प्लेट मिसल पाव और एक चाय").await;
    assert_eq!(items.language, Lang::Hi, "{}", items.agent);
    assert!(items.agent.contains("और कुछ?"), "{}", items.agent);
    assert!(devanagari(&items.agent));
    let read_back = say(&mut call, &world, "बस इतना ही").await;
    assert!(read_back.agent.contains("एक सौ बावन रुपये"), "{}", read_back.agent);
    // A Hinglish caller in Latin script is answered in Latin again.
    let latin = say(&mut call, &world, "ek vada pav aur").await;
    assert_eq!(latin.language, Lang::HiEn, "{}", latin.agent);
    assert!(!devanagari(&latin.agent), "{}", latin.agent);
}

#[tokio::test]
async fn an_english_caller_hears_english() {
    let world = World::new();
    let mut call = godavari_call(&world);
    call.turn(Input::Start, &world).await;
    say(&mut call, &world, "two plates of misal and one cutting chai please").await;
    let read_back = say(&mut call, &world, "that's all").await;
    assert_eq!(read_back.language, Lang::En);
    assert!(read_back.agent.contains("one hundred and fifty-two rupees"), "{}", read_back.agent);
}

#[tokio::test]
async fn keys_confirm_the_cart_the_address_and_the_payment() {
    let world = World::new();
    let mut call = read_back_call(&world).await;
    assert_eq!(key(&mut call, &world, "1").await.expects, Expects::Address);
    assert_eq!(key(&mut call, &world, "1").await.expects, Expects::Payment);
    let placed = key(&mut call, &world, "2").await;
    assert!(placed.agent.contains("UPI link SMS par bheja hai"), "{}", placed.agent);
    assert_eq!(world.placed()[0].payment, Some(Payment::UpiLink { via: LinkChannel::Sms }));
    assert_eq!(*world.links.lock().unwrap(), [("ord-1041".to_string(), LinkChannel::Sms)]);
    assert!(placed.events.iter().any(|e| matches!(e, DialogEvent::PaymentLinkSent { .. })));
}

#[tokio::test]
async fn a_key_2_at_the_read_back_asks_what_to_change() {
    let world = World::new();
    let mut call = read_back_call(&world).await;
    let reply = key(&mut call, &world, "2").await;
    assert_eq!(reply.expects, Expects::Items);
    assert!(reply.agent.contains("Kya badalna hai?"), "{}", reply.agent);
}

#[tokio::test]
async fn a_whatsapp_link_that_cannot_be_sent_is_said_and_on_the_timeline() {
    let world = World { fail_links: true, ..World::new() };
    let mut call = payment_call(&world).await;
    let placed = say(&mut call, &world, "whatsapp pe link bhej do").await;
    assert_eq!(world.placed()[0].payment, Some(Payment::UpiLink { via: LinkChannel::Whatsapp }));
    assert!(placed.agent.contains("cash dijiye"), "{}", placed.agent);
    assert!(placed.events.iter().any(|e| matches!(e, DialogEvent::PaymentLinkFailed { .. })), "{:?}", placed.events);
}

#[tokio::test]
async fn no_address_on_the_profile_hands_off() {
    let world = World { profile: None, ..World::new() };
    let mut call = read_back_call(&world).await;
    let reply = key(&mut call, &world, "1").await;
    assert_eq!(reply.handoff, Some(Handoff::OrderDesk { reason: HandoffReason::NoAddress }));
    assert!(reply.ended);
}

#[tokio::test]
async fn a_refused_address_hands_off() {
    let world = World::new();
    let mut call = read_back_call(&world).await;
    key(&mut call, &world, "1").await;
    let reply = say(&mut call, &world, "nahi").await;
    assert_eq!(reply.handoff, Some(Handoff::OrderDesk { reason: HandoffReason::NoAddress }));
}

#[tokio::test]
async fn the_store_is_chosen_by_naming_a_dish_two_stores_sell() {
    let world = World::new();
    let mut call = Dialog::new("CA1", Mode::Call, Lang::HiEn, None);
    let hello = call.turn(Input::Start, &world).await;
    assert_eq!(hello.expects, Expects::Store);
    let offer = say(&mut call, &world, "do chai").await;
    assert_eq!(offer.expects, Expects::Store, "{}", offer.agent);
    assert!(offer.agent.starts_with("Godavari Misal House ya Udupi Krishna Bhavan?"), "{}", offer.agent);
    assert!(offer.agent.contains("1 ya 2 dabaiye"), "{}", offer.agent);
    let chosen = key(&mut call, &world, "2").await;
    assert!(
        chosen.events.iter().any(|e| matches!(e, DialogEvent::StoreChosen { store_id, .. } if store_id == "11")),
        "{:?}",
        chosen.events
    );
    assert_eq!(lines(&call), [("11014".into(), None, Qty::whole(2))], "{}", chosen.agent);
    assert_eq!(chosen.expects, Expects::Items);
}

#[tokio::test]
async fn the_store_is_chosen_by_its_name() {
    let world = World::new();
    let mut call = Dialog::new("CA1", Mode::Call, Lang::HiEn, None);
    call.turn(Input::Start, &world).await;
    let reply = say(&mut call, &world, "godavari se order karna hai").await;
    assert_eq!(call.store.as_ref().map(|s| s.id.as_str()), Some("7"), "{}", reply.agent);
    assert_eq!(reply.expects, Expects::Items);
    assert!(call.cart.lines.is_empty());
    assert_eq!(reply.agent, "Godavari Misal House. Kya order karna hai?");

    // Items said with the store's name go into its cart.
    let mut call = Dialog::new("CA2", Mode::Call, Lang::HiEn, None);
    call.turn(Input::Start, &world).await;
    let reply = say(&mut call, &world, "udupi se do masala dosa").await;
    assert_eq!(call.store.as_ref().map(|s| s.id.as_str()), Some("11"), "{}", reply.agent);
    assert_eq!(lines(&call), [("11001".into(), None, Qty::whole(2))], "{}", reply.agent);
    assert!(reply.agent.starts_with("Udupi Krishna Bhavan. do plate Masala Dosa, theek hai."), "{}", reply.agent);

    // A dish whose name shares a word with the store's is the dish: only
    // the store's own mention is taken out.
    let mut call = Dialog::new("CA3", Mode::Call, Lang::HiEn, None);
    call.turn(Input::Start, &world).await;
    let reply = say(&mut call, &world, "godavari misal house se do plate misal").await;
    assert_eq!(call.store.as_ref().map(|s| s.id.as_str()), Some("7"), "{}", reply.agent);
    assert_eq!(lines(&call), [("7001".into(), None, Qty::whole(2))], "{}", reply.agent);
}

#[tokio::test]
async fn an_unfinished_cart_is_offered_back_on_the_next_call() {
    let world = World::new();
    let mut earlier = godavari_call(&world);
    earlier.turn(Input::Start, &world).await;
    say(&mut earlier, &world, "do plate misal aur ek cutting chai").await;
    let gone = earlier.turn(Input::Hangup, &world).await;
    assert!(gone.ended);
    assert_eq!(gone.expects, Expects::Nothing);
    assert!(earlier.is_resumable());

    let mut call = Dialog::resuming("CA2", &earlier);
    let offer = call.turn(Input::Start, &world).await;
    assert_eq!(offer.expects, Expects::Resume);
    assert!(offer.agent.contains("do plate Misal Pav") && offer.agent.contains("Wahi order karein? 1 haan, 2 nahi"));
    let read_back = key(&mut call, &world, "1").await;
    assert_eq!(read_back.expects, Expects::Confirm, "{}", read_back.agent);
    key(&mut call, &world, "1").await;
    key(&mut call, &world, "1").await;
    key(&mut call, &world, "1").await;
    assert_eq!(world.placed()[0].idempotency_key, "CA2:0");

    let mut fresh = Dialog::resuming("CA3", &earlier);
    fresh.turn(Input::Start, &world).await;
    let no = key(&mut fresh, &world, "2").await;
    assert!(fresh.cart.lines.is_empty());
    assert_eq!(no.expects, Expects::Items);
}

#[tokio::test]
async fn asking_for_a_person_hands_off() {
    let world = World::new();
    let mut call = godavari_call(&world);
    call.turn(Input::Start, &world).await;
    let reply = say(&mut call, &world, "mujhe agent se baat karni hai").await;
    assert_eq!(reply.handoff, Some(Handoff::OrderDesk { reason: HandoffReason::Asked }));
    assert!(reply.ended);
}

#[tokio::test]
async fn items_not_sold_are_said_honestly_and_never_added() {
    let world = World::new();
    let mut call = godavari_call(&world);
    call.turn(Input::Start, &world).await;
    let reply = say(&mut call, &world, "do pizza").await;
    assert!(reply.agent.contains("pizza yahan nahi milta"), "{}", reply.agent);
    assert!(call.cart.lines.is_empty());
    assert_eq!(call.misses, 0);
}

#[tokio::test]
async fn an_unavailable_item_is_said_to_be_unavailable() {
    let mut world = World::new();
    let mut misal = catalog("7");
    misal.items.iter_mut().find(|i| i.id == "7005").unwrap().available = false;
    world.catalogs.insert("7".into(), Arc::new(misal));
    let mut call = godavari_call(&world);
    call.turn(Input::Start, &world).await;
    let reply = say(&mut call, &world, "ek batata vada").await;
    assert!(reply.agent.contains("Batata Vada abhi uplabdh nahi hai"), "{}", reply.agent);
    assert!(call.cart.lines.is_empty());
}

#[tokio::test]
async fn a_weighed_item_without_an_amount_is_asked_how_much() {
    let mut world = World::new();
    let kirana = catalog("1");
    world.stores.push(offer(&kirana, 4.0));
    world.catalogs.insert("1".into(), Arc::new(kirana));
    let mut call = Dialog::new("CA1", Mode::Call, Lang::HiEn, Some(world.store("1")));
    call.turn(Input::Start, &world).await;
    let question = say(&mut call, &world, "cheeni chahiye").await;
    assert_eq!(question.expects, Expects::Quantity, "{}", question.agent);
    assert!(question.agent.contains("Sugar kitna chahiye?"), "{}", question.agent);
    let reply = say(&mut call, &world, "dedh kilo").await;
    assert_eq!(lines(&call), [("1009".into(), None, Qty(1500))], "{}", reply.agent);
    assert!(reply.agent.contains("dedh kilo Sugar"), "{}", reply.agent);
    // An item sold in sizes takes the size said as the answer.
    let question = say(&mut call, &world, "aur besan").await;
    assert_eq!(question.expects, Expects::Quantity, "{}", question.agent);
    let reply = say(&mut call, &world, "ek kilo").await;
    assert_eq!(lines(&call)[1], ("1007".into(), Some("1kg".into()), Qty::ONE), "{}", reply.agent);
    // A price question is answered from the catalog.
    let price = say(&mut call, &world, "toor dal kitne ka hai").await;
    assert!(price.agent.contains("Toor Dal ek sau painsath rupaye ka hai"), "{}", price.agent);
}

#[tokio::test]
async fn one_catalog_without_a_profile_places_without_address_or_payment() {
    let world = World { profile: None, ..World::new() };
    let mut call = Dialog::new("session-1", Mode::CatalogOnly, Lang::HiEn, Some(world.store("7")));
    call.turn(Input::Start, &world).await;
    say(&mut call, &world, "ek misal").await;
    say(&mut call, &world, "bas").await;
    let placed = say(&mut call, &world, "haan").await;
    assert_eq!(placed.expects, Expects::AnythingElse, "{}", placed.agent);
    let order = &world.placed()[0];
    assert_eq!(order.payment, None);
    assert_eq!(order.address, None);
    assert_eq!(order.idempotency_key, "session-1:0");
}

#[tokio::test]
async fn a_port_that_is_down_hands_off_as_unavailable() {
    let mut world = World::new();
    world.catalogs.clear();
    let mut call = godavari_call(&world);
    call.turn(Input::Start, &world).await;
    let reply = say(&mut call, &world, "do plate misal").await;
    assert_eq!(reply.handoff, Some(Handoff::OrderDesk { reason: HandoffReason::Unavailable }));
    assert!(reply.ended);
}

#[tokio::test]
async fn words_the_parser_cannot_read_get_one_second_opinion() {
    let misal = ItemRef { item_id: "7001".into(), confidence: 0.9, alternatives: Vec::new(), heard: "misal".into() };
    let fallback = Understanding {
        ops: vec![CartOp::Add { item: misal, quantity: Some(Qty::whole(2)), variant_id: None, modifiers: Vec::new() }],
        language: Lang::HiEn,
        script: Script::Latin,
        unmatched_words: Vec::new(),
    };
    let world = World { fallback: Some(fallback), ..World::new() };
    let mut call = godavari_call(&world);
    call.turn(Input::Start, &world).await;
    let reply = say(&mut call, &world, "wo jo laal wala tikha hota hai").await;
    assert_eq!(*world.fallback_asked.lock().unwrap(), ["wo jo laal wala tikha hota hai"]);
    assert_eq!(lines(&call), [("7001".into(), None, Qty::whole(2))], "{}", reply.agent);
    assert_eq!(reply.understood.map(|u| u.ops.len()), Some(1));
    assert_eq!(call.misses, 0);

    // Without a second opinion the words are asked again.
    let world = World::new();
    let mut call = godavari_call(&world);
    call.turn(Input::Start, &world).await;
    let reply = say(&mut call, &world, "wo jo laal wala tikha hota hai").await;
    assert_eq!(*world.fallback_asked.lock().unwrap(), ["wo jo laal wala tikha hota hai"]);
    assert!(reply.agent.contains("samajh nahi aaya"), "{}", reply.agent);
    assert_eq!(call.misses, 1);
}

#[tokio::test]
async fn a_start_in_the_middle_of_a_dialog_asks_the_open_question_again() {
    let world = World::new();
    let mut call = read_back_call(&world).await;
    let again = call.turn(Input::Start, &world).await;
    assert_eq!(again.expects, Expects::Confirm);
    assert!(again.agent.starts_with("Aapka order: do plate Misal Pav"), "{}", again.agent);
}
mod outside;
