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
use mangwale_voice::{Catalog, Lang, Paise, Qty};

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
