//! The production Jupiter client against the Jupiter and PHP simulator over
//! real HTTP: every function, both shapes of order, fallbacks, caching,
//! retries and the circuit breaker.

use std::time::Duration;

use mangwale_core::{E164, OrderId};
use mangwale_providers::jupiter::{
    Address, Backend, BreakerConfig, JupiterClient, JupiterClientConfig, JupiterErrorKind, NewOrder, NewOrderLine,
    NewOrderModifier, PartyRef, PaymentMethod, Source,
};
use mangwale_sim::jupiter::{JupiterFault, JupiterSim, JupiterSimConfig, Target};
use serde_json::json;

const KEY: &str = "test-jupiter-key";

async fn setup() -> (JupiterSim, JupiterClient) {
    let sim = JupiterSim::start(JupiterSimConfig::new(KEY)).await.unwrap();
    let client = JupiterClient::new(config(&sim, KEY));
    (sim, client)
}

fn config(sim: &JupiterSim, key: &str) -> JupiterClientConfig {
    let mut config = JupiterClientConfig::new(
        sim.jupiter_url().parse().unwrap(),
        Some(sim.php_url().parse().unwrap()),
        key.to_string(),
    );
    config.retry_base = Duration::from_millis(5);
    config
}

fn order_id(id: u64) -> OrderId {
    OrderId::parse(&id.to_string()).unwrap()
}

#[tokio::test]
async fn orders_come_from_jupiter_with_its_headers() {
    let (sim, client) = setup().await;
    let demo = sim.data().orders[0].clone();
    let order = client.order(&order_id(demo.id)).await.unwrap().expect("a demo order");
    assert_eq!(order.source, Source::Jupiter);
    assert_eq!(order.amount_paise, (demo.order_amount * 100.0).round() as i64);
    assert_eq!(order.items.len(), demo.items.len());
    assert_eq!(order.items[0].name, demo.items[0].name);
    let store = sim.data().store(demo.store_id).cloned().unwrap();
    assert_eq!(order.store.as_ref().unwrap().phone.as_ref().unwrap().as_str(), store.phone);
    assert_eq!(order.pickup_address.as_ref().unwrap().address, store.address);
    let sent = &sim.received()[0];
    assert_eq!((sent.target, sent.path.as_str()), (Target::Jupiter, format!("/api/order/{}", demo.id).as_str()));
    assert_eq!(sent.api_key.as_deref(), Some(KEY));
    assert_eq!(sent.service.as_deref(), Some("exotel-service"));
    assert_eq!(client.order(&order_id(999_999_999)).await.unwrap(), None, "unknown to Jupiter and PHP");
}

#[tokio::test]
async fn with_jupiter_down_orders_come_from_php_in_either_json_shape() {
    let (sim, client) = setup().await;
    sim.set_down(Target::Jupiter, true);
    let data = sim.data();
    for demo in data.orders.iter().take(4) {
        let order = client.order(&order_id(demo.id)).await.unwrap().expect("from PHP");
        assert_eq!(order.source, Source::Php);
        assert_eq!(order.status, demo.status);
        assert_eq!(order.amount_paise, (demo.order_amount * 100.0).round() as i64, "order {}", demo.id);
        let names: Vec<&str> = order.items.iter().map(|l| l.name.as_str()).collect();
        let expected: Vec<&str> = demo.items.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(
            names, expected,
            "details[].food.name or product_details.name (json strings: {})",
            demo.php_json_strings
        );
        let drop = order.delivery_address.as_ref().expect("receiver_details");
        assert_eq!(drop.address, demo.delivery_address.address);
        assert_eq!(drop.contact_phone.as_ref().unwrap().as_str(), demo.delivery_address.contact_person_number);
        let customer = data.customer(demo.customer_id).unwrap();
        assert_eq!(order.customer.as_ref().unwrap().phone.as_ref().unwrap().as_str(), customer.phone);
        assert!(order.pickup_address.is_some(), "sender_details");
    }
    let php = sim.received().into_iter().find(|r| r.target == Target::Php).unwrap();
    assert_eq!(php.localization.as_deref(), Some("en"));
    assert_eq!(php.api_key, None, "the API key goes to Jupiter only");
}

#[tokio::test]
async fn stores_riders_and_customers() {
    let (sim, client) = setup().await;
    let data = sim.data();
    for demo in data.stores.iter().take(4) {
        let store = client.store(demo.id).await.unwrap().unwrap();
        assert_eq!((store.name.as_str(), store.active), (demo.name.as_str(), demo.active));
        assert_eq!(store.phone.as_ref().unwrap().as_str(), demo.phone, "every stored phone form parses");
        let by_phone = client.store_by_phone(&E164::parse(&demo.phone).unwrap()).await.unwrap().unwrap();
        assert_eq!(by_phone.id, demo.id);
    }
    assert_eq!(client.store(999_999).await.unwrap(), None);
    assert_eq!(client.store_by_phone(&E164::parse("+919000000001").unwrap()).await.unwrap(), None);
    let query = sim.received().into_iter().find(|r| r.path == "/api/v1/stores/search").unwrap();
    assert_eq!(query.query[0].1.len(), 10, "phones go to PHP as 10 national digits");

    let rider = &data.riders[0];
    assert_eq!(client.rider(rider.id).await.unwrap().unwrap().name, rider.name());
    let by_phone = client.rider_by_phone(&E164::parse(&rider.phone).unwrap()).await.unwrap().unwrap();
    assert_eq!(by_phone.id, rider.id);
    sim.set_down(Target::Php, true);
    let other = &data.riders[1];
    let from_jupiter = client.rider_by_phone(&E164::parse(&other.phone).unwrap()).await.unwrap().unwrap();
    assert_eq!(from_jupiter.id, other.id, "Jupiter's rider lookup when PHP is down");

    let customer = &data.customers[0];
    let found = client.customer_by_phone(&E164::parse(&customer.phone).unwrap()).await.unwrap();
    assert!(found.registered);
    assert_eq!(found.name.as_deref(), Some(customer.name().as_str()));
    assert_eq!(found.addresses.len(), customer.addresses.len());
    let stranger = client.customer_by_phone(&E164::parse("+919000000002").unwrap()).await.unwrap();
    assert!(!stranger.registered, "a caller Jupiter does not know is a new customer");
}

#[tokio::test]
async fn a_partys_active_orders_come_oldest_first_without_finished_ones() {
    let (sim, client) = setup().await;
    let data = sim.data();
    let picked_up = data.orders.iter().find(|o| o.status == "picked_up" && o.rider_id.is_some()).unwrap().clone();
    let of_customer = client.active_orders(PartyRef::Customer(picked_up.customer_id)).await.unwrap();
    assert_eq!(of_customer.iter().map(|o| o.id.to_string()).collect::<Vec<_>>(), [picked_up.id.to_string()]);
    assert!(of_customer[0].eta_minutes.is_some_and(|m| m >= 5), "an order on its way has an estimate");
    let rider = picked_up.rider_id.unwrap();
    let of_rider = client.active_orders(PartyRef::Rider(rider)).await.unwrap();
    assert!(of_rider.iter().all(|o| o.rider.as_ref().and_then(|r| r.id) == Some(rider) && o.is_active()));
    let store = data.orders.iter().find(|o| o.status == "pending").unwrap().store_id;
    let of_store = client.active_orders(PartyRef::Store(store)).await.unwrap();
    let expected: Vec<String> = data
        .orders
        .iter()
        .filter(|o| o.store_id == store && o.status != "delivered")
        .map(|o| o.id.to_string())
        .collect();
    assert_eq!(of_store.iter().map(|o| o.id.to_string()).collect::<Vec<_>>(), expected);
    let delivered = data.orders.iter().find(|o| o.status == "delivered").unwrap();
    let finished = client.active_orders(PartyRef::Customer(delivered.customer_id)).await.unwrap();
    assert!(finished.iter().all(|o| o.id.to_string() != delivered.id.to_string()), "delivered is not active");
    let sent = sim.received().into_iter().find(|r| r.path == "/api/orders/active").unwrap();
    assert_eq!(sent.query, [("customer_id".to_string(), picked_up.customer_id.to_string())]);
}

#[tokio::test]
async fn catalog_search_by_alias_and_php_fallback() {
    let (sim, client) = setup().await;
    let data = sim.data();
    let item = data.items.iter().find(|i| !i.aliases.is_empty()).unwrap().clone();
    let found = client.catalog_search(item.store_id, &item.aliases[0], 5).await.unwrap();
    assert_eq!(found.first().map(|i| i.id), Some(item.id), "alias {} finds {}", item.aliases[0], item.name);
    assert_eq!(found[0].price_paise, (item.price * 100.0).round() as i64);
    sim.set_down(Target::Jupiter, true);
    let word = item.name.split_whitespace().next().unwrap().to_string();
    let fallback = client.catalog_search(item.store_id, &word, 5).await.unwrap();
    assert!(fallback.iter().any(|i| i.id == item.id), "PHP's name search");
    assert!(fallback.iter().all(|i| i.aliases.is_empty()));
}

#[tokio::test]
async fn a_store_catalog_comes_with_variants_and_modifier_groups() {
    let (sim, client) = setup().await;
    let data = sim.data();
    let misal_house = data.stores.iter().find(|s| s.name == "Godavari Misal House").unwrap();
    let catalog = client.store_catalog(misal_house.id).await.unwrap().expect("a known store");
    assert_eq!((catalog.store.id, catalog.store.name.as_str()), (misal_house.id, "Godavari Misal House"));
    assert_eq!(catalog.store.language.as_deref(), Some("mr"));
    assert_eq!(catalog.items.len(), data.catalog(misal_house.id).count());
    let misal = catalog.items.iter().find(|i| i.item.name == "Misal Pav").unwrap();
    let half = misal.variants.iter().find(|v| v.id == "half").unwrap();
    assert_eq!(half.price_paise, 4500);
    let spice = misal.modifier_groups.iter().find(|g| g.id == "spice").unwrap();
    assert!(spice.exclusive && spice.default.as_deref() == Some("medium"));
    assert!(spice.options.iter().any(|o| o.aliases.iter().any(|a| a == "kam teekha")));
    let extras = misal.modifier_groups.iter().find(|g| g.id == "extras").unwrap();
    assert!(!extras.exclusive && extras.options.iter().any(|o| o.price_delta_paise == 1000));

    client.store_catalog(misal_house.id).await.unwrap();
    assert_eq!(sim.received().iter().filter(|r| r.path == "/api/catalog").count(), 1, "cached");
    assert_eq!(client.store_catalog(9999).await.unwrap(), None);
}

#[tokio::test]
async fn a_status_update_reaches_jupiter_and_invalidates_the_cached_order() {
    let (sim, client) = setup().await;
    let demo = sim.data().orders.iter().find(|o| o.status == "pending").unwrap().clone();
    let id = order_id(demo.id);
    assert_eq!(client.order(&id).await.unwrap().unwrap().status, "pending");
    assert_eq!(client.order(&id).await.unwrap().unwrap().status, "pending");
    let reads = |sim: &JupiterSim| sim.received().iter().filter(|r| r.path.starts_with("/api/order/1")).count();
    assert_eq!(reads(&sim), 1, "the second read came from the cache");
    client.update_order_status(&id, "processing", json!({"prepTimeMinutes": 20})).await.unwrap();
    assert_eq!(
        sim.status_updates()[0],
        json!({"orderId": demo.id, "status": "processing", "metadata": {"prepTimeMinutes": 20}, "source": "exotel-ivr"})
    );
    assert_eq!(client.order(&id).await.unwrap().unwrap().status, "processing", "read again after the update");
    assert_eq!(reads(&sim), 2);

    client.notify("vendor_accepted", json!({"orderId": demo.id.to_string()})).await.unwrap();
    let note = &sim.notifications()[0];
    assert_eq!((note["type"].as_str(), note["source"].as_str()), (Some("vendor_accepted"), Some("exotel-service")));
    assert!(chrono::DateTime::parse_from_rfc3339(note["timestamp"].as_str().unwrap()).is_ok());

    let refused = client.update_order_status(&id, "teleported", json!({})).await.unwrap_err();
    assert!(!refused.is_transient());
    assert_eq!(refused.field(), Some("status"));
}

#[tokio::test]
async fn orders_are_created_once_per_idempotency_key() {
    let (sim, client) = setup().await;
    let data = sim.data();
    let item = data
        .items
        .iter()
        .find(|i| i.available && i.variants.is_empty() && data.store(i.store_id).unwrap().active)
        .unwrap();
    let price = (item.price * 100.0).round() as i64;
    let new = NewOrder {
        idempotency_key: "voice-call-1".into(),
        customer_phone: E164::parse("+919812345678").unwrap(),
        store_id: item.store_id,
        lines: vec![NewOrderLine {
            item_id: item.id,
            variant_id: None,
            quantity_milli: 2000,
            modifiers: Vec::new(),
            unit_price_paise: price,
            line_total_paise: 2 * price,
        }],
        total_paise: 2 * price,
        payment_method: PaymentMethod::CashOnDelivery,
        delivery_address: Address {
            contact_name: Some("Asha".into()),
            contact_phone: None,
            address: "Flat 7C, Mumbai Naka, Nashik".into(),
            landmark: None,
            latitude: Some(19.99),
            longitude: Some(73.78),
        },
        note: Some("by phone".into()),
    };
    let first = client.create_order(&new).await.unwrap();
    assert_eq!(first.status, "pending");
    assert!(first.amount_paise >= (item.price * 200.0).round() as i64);
    assert_eq!(client.create_order(&new).await.unwrap(), first);
    let mut bad = NewOrder { idempotency_key: "voice-call-2".into(), ..new };
    bad.lines[0].item_id = 999_999;
    let refused = client.create_order(&bad).await.unwrap_err();
    assert_eq!(refused.field(), Some("items[0].itemId"));
}

#[tokio::test]
async fn a_voice_order_carries_sizes_choices_and_prices_and_can_be_cancelled_and_paid_by_link() {
    let (sim, client) = setup().await;
    let line =
        |item_id: u64, variant: &str, quantity_milli: u64, unit: i64, modifiers: Vec<NewOrderModifier>| NewOrderLine {
            item_id,
            variant_id: Some(variant.into()),
            quantity_milli,
            modifiers,
            unit_price_paise: unit,
            line_total_paise: unit * quantity_milli as i64 / 1000,
        };
    let no_onion = NewOrderModifier { group_id: "onion".into(), option_id: "no_onion".into() };
    let new = NewOrder {
        idempotency_key: "voice-call-misal".into(),
        customer_phone: E164::parse("+919812345678").unwrap(),
        store_id: 7,
        lines: vec![line(7001, "half", 2000, 4500, vec![no_onion]), line(7012, "cutting", 1000, 1200, vec![])],
        total_paise: 10_200,
        payment_method: PaymentMethod::DigitalPayment,
        delivery_address: Address {
            contact_name: None,
            contact_phone: None,
            address: "Ramkund, Panchavati".into(),
            landmark: None,
            latitude: None,
            longitude: None,
        },
        note: None,
    };
    let created = client.create_order(&new).await.unwrap();
    assert_eq!(created.amount_paise, 12_200, "the items and the delivery charge");
    let sent = sim.received().into_iter().find(|r| r.path == "/api/order/create").unwrap().body.unwrap();
    assert_eq!(sent["items"][0]["variantId"], "half");
    assert_eq!(sent["items"][0]["modifiers"][0], json!({"groupId": "onion", "optionId": "no_onion"}));
    assert_eq!((sent["items"][0]["unitPrice"].clone(), sent["total"].clone()), (json!(45), json!(102)));

    let mut wrong = NewOrder { idempotency_key: "voice-call-wrong".into(), ..new.clone() };
    wrong.total_paise = 9_900;
    assert_eq!(client.create_order(&wrong).await.unwrap_err().field(), Some("total"));

    let link = client.payment_link(&created.order_id).await.unwrap();
    assert!(link.url.starts_with("upi://pay?") && link.amount_paise == 12_200, "{link:?}");
    client.cancel_order(&created.order_id, "caller cancelled").await.unwrap();
    client.cancel_order(&created.order_id, "caller cancelled").await.unwrap();
    assert_eq!(sim.order(created.order_id.as_str()).unwrap().status, "canceled");
    let late = client.payment_link(&created.order_id).await.unwrap_err();
    assert_eq!((late.is_transient(), late.status), (false, Some(409)));

    let near = client.stores_near(Some((20.0075, 73.7935)), 3).await.unwrap();
    assert_eq!(near.len(), 3);
    assert!(near.windows(2).all(|w| w[0].distance_km <= w[1].distance_km), "{near:?}");
    assert!(near.iter().all(|s| s.distance_km.is_some()));
}

#[tokio::test]
async fn transient_failures_are_retried_and_refusals_are_not() {
    let (sim, client) = setup().await;
    let demo = sim.data().orders[0].id;
    sim.inject_fault(Target::Jupiter, "/api/order/", JupiterFault::Status(503), 2);
    assert!(client.order(&order_id(demo)).await.unwrap().is_some(), "third time lucky");
    assert_eq!(sim.received().len(), 3);

    sim.inject_fault(Target::Jupiter, "/api/notifications", JupiterFault::Status(502), 1);
    let failed = client.notify("x", json!({})).await.unwrap_err();
    assert!(failed.is_transient());
    assert!(sim.notifications().is_empty(), "a write is sent once; the outbox retries it");

    let wrong_key = JupiterClient::new(config(&sim, "wrong"));
    sim.clear_received();
    let refused = wrong_key.notify("x", json!({})).await.unwrap_err();
    assert_eq!((refused.is_transient(), refused.status), (false, Some(401)));
    assert_eq!(sim.received().len(), 1);

    sim.inject_fault(Target::Jupiter, "/api/customer", JupiterFault::Drop, 1);
    assert!(
        client.customer_by_phone(&E164::parse("+919000000003").unwrap()).await.is_ok(),
        "a dropped connection is retried"
    );
}

#[tokio::test]
async fn an_outage_opens_the_circuit_and_requests_fail_fast_until_a_probe_succeeds() {
    let sim = JupiterSim::start(JupiterSimConfig::new(KEY)).await.unwrap();
    let mut config = config(&sim, KEY);
    config.php_url = None;
    config.read_retries = 0;
    config.breaker = BreakerConfig { failure_threshold: 3, open_for: Duration::from_millis(300) };
    let client = JupiterClient::new(config);
    sim.set_down(Target::Jupiter, true);
    for _ in 0..3 {
        assert!(client.notify("x", json!({})).await.unwrap_err().is_transient());
    }
    assert!(client.circuit_open(Backend::Jupiter));
    sim.clear_received();
    let fast = client.notify("x", json!({})).await.unwrap_err();
    assert!(matches!(fast.kind, JupiterErrorKind::CircuitOpen { .. }) && fast.is_transient());
    assert!(sim.received().is_empty(), "nothing was sent while the circuit is open");

    sim.set_down(Target::Jupiter, false);
    tokio::time::sleep(Duration::from_millis(350)).await;
    client.notify("x", json!({})).await.unwrap();
    assert!(!client.circuit_open(Backend::Jupiter), "the probe closed it");
    assert!(client.health_jupiter().await.is_ok());
    assert!(client.health_php().await.is_err(), "no PHP backend configured");
}

#[tokio::test]
async fn the_seeds_order_reference_is_read_and_updated_as_it_is() {
    // `MW-2025-001234` (exotel-integration.md) travels as that string, on
    // the path and in the status body alike, and Jupiter takes it.
    let (sim, client) = setup().await;
    let id = OrderId::parse("MW-2025-001234").unwrap();
    let order = client.order(&id).await.unwrap().expect("Jupiter knows the order by its reference");
    assert_eq!(order.status, "pending");
    client.update_order_status(&id, "accepted", json!({"prepTimeMinutes": 15})).await.unwrap();
    assert_eq!(sim.status_updates()[0]["orderId"], "MW-2025-001234");
    assert_eq!(sim.order("MW-2025-001234").unwrap().status, "accepted");
    // An id with leading zeros is not a number: it is sent as the string,
    // so Jupiter looks up `001234`, not order 1234.
    let padded = OrderId::parse("001234").unwrap();
    assert!(client.update_order_status(&padded, "accepted", json!({})).await.is_err(), "no such order");
    let last = sim.received().into_iter().rev().find(|r| r.path == "/api/order/status").unwrap();
    assert_eq!(last.body.unwrap()["orderId"], "001234");
    assert_eq!(sim.status_updates().len(), 1);
}
