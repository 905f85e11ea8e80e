//! The Jupiter and PHP-backend simulator over real HTTP: the contract of
//! `docs/jupiter.md`, its misbehaviours, signed webhooks, and the demo data.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use hmac::{KeyInit, Mac};
use mangwale_sim::jupiter::{DemoData, JupiterFault, JupiterSim, JupiterSimConfig, Signing, Target};
use serde_json::{Value, json};

const KEY: &str = "test-jupiter-key";

async fn sim() -> JupiterSim {
    JupiterSim::start(JupiterSimConfig::new(KEY)).await.unwrap()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn jupiter_get(sim: &JupiterSim, path: &str) -> (u16, Value) {
    let res = client().get(format!("{}{path}", sim.jupiter_url())).header("X-API-Key", KEY).send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

async fn jupiter_post(sim: &JupiterSim, path: &str, body: &Value) -> (u16, Value) {
    let res = client()
        .post(format!("{}{path}", sim.jupiter_url()))
        .header("X-API-Key", KEY)
        .header("X-Service", "exotel-service")
        .json(body)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

async fn php_get(sim: &JupiterSim, path: &str) -> (u16, Value) {
    let res = client().get(format!("{}{path}", sim.php_url())).header("X-localization", "en").send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

fn names(answer: &Value) -> Vec<String> {
    answer["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap().to_string()).collect()
}

fn store_id(data: &DemoData, name: &str) -> u64 {
    data.stores.iter().find(|s| s.name == name).unwrap().id
}

fn item_id(data: &DemoData, store: u64, name: &str) -> u64 {
    data.items.iter().find(|i| i.store_id == store && i.name == name).unwrap().id
}

fn national(phone: &str) -> &str {
    phone.strip_prefix("+91").unwrap()
}

#[tokio::test]
async fn jupiter_requires_the_api_key_and_records_every_request() {
    let sim = sim().await;
    let url = format!("{}/health", sim.jupiter_url());
    let missing = client().get(&url).send().await.unwrap();
    assert_eq!(missing.status(), 401);
    assert_eq!(missing.json::<Value>().await.unwrap(), json!({"error": "invalid api key"}));
    let wrong = client().get(&url).header("X-API-Key", "nope").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(jupiter_get(&sim, "/health").await, (200, json!({"status": "ok"})));
    let order = sim.data().orders[0].id;
    assert_eq!(client().get(format!("{}/api/order/{order}", sim.jupiter_url())).send().await.unwrap().status(), 401);

    let received = sim.received();
    assert_eq!(received.len(), 4);
    assert_eq!(received[0].api_key, None);
    assert_eq!(received[1].api_key.as_deref(), Some("nope"));
    assert_eq!(received[2].api_key.as_deref(), Some(KEY));
    assert_eq!(received.iter().map(|r| r.status).collect::<Vec<_>>(), [Some(401), Some(401), Some(200), Some(401)]);
    assert!(received.iter().all(|r| r.target == Target::Jupiter && r.method == "GET"));

    php_get(&sim, "/api/v1/stores/details/1").await;
    let php = sim.received().pop().unwrap();
    assert_eq!((php.target, php.localization.as_deref(), php.api_key), (Target::Php, Some("en"), None));
    sim.clear_received();
    assert!(sim.received().is_empty());
    jupiter_get(&sim, "/health").await;
    assert_eq!(sim.received().len(), 1);
}

#[tokio::test]
async fn unknown_paths_answer_404_json_and_the_php_root_answers_a_page() {
    let sim = sim().await;
    let (status, body) = jupiter_get(&sim, "/api/nothing/here").await;
    assert_eq!(status, 404);
    assert!(body["error"].is_string());
    let (status, body) = php_get(&sim, "/api/v1/nothing").await;
    assert_eq!(status, 404);
    assert!(body["message"].is_string());
    let root = client().get(format!("{}/", sim.php_url())).send().await.unwrap();
    assert_eq!(root.status(), 404, "the PHP health probe only needs an answer");
    assert!(root.text().await.unwrap().contains("Not Found"));
    let (status, _) = jupiter_post(&sim, "/api/order/100001", &json!({})).await;
    assert_eq!(status, 405);
}

#[tokio::test]
async fn jupiter_orders_are_camel_case_with_numbers() {
    let sim = sim().await;
    let data = sim.data();
    let order = &data.orders[0];
    let (status, body) = jupiter_get(&sim, &format!("/api/order/{}", order.id)).await;
    assert_eq!(status, 200);
    assert_eq!(body["orderId"], order.id);
    assert_eq!(body["status"], order.status.as_str());
    assert_eq!(body["amount"].as_f64(), Some(order.order_amount));
    assert_eq!(body["deliveryCharge"].as_f64(), Some(order.delivery_charge));
    let store = data.store(order.store_id).unwrap();
    assert_eq!(body["store"]["phone"], store.phone.as_str());
    assert!(body["customer"]["phone"].as_str().unwrap().starts_with("+91"));
    assert!(body["deliveryAddress"]["latitude"].is_string());
    assert_eq!(body["items"].as_array().unwrap().len(), order.items.len());
    assert!(chrono::DateTime::parse_from_rfc3339(body["createdAt"].as_str().unwrap()).is_ok());
    assert_eq!(jupiter_get(&sim, "/api/order/999999").await.0, 404);
    assert_eq!(jupiter_get(&sim, "/api/order/not-a-number").await.0, 404);
}

#[tokio::test]
async fn php_orders_carry_6ammart_quirks() {
    let sim = sim().await;
    let data = sim.data();
    let mut stringified_receivers = 0;
    let mut object_receivers = 0;
    for order in &data.orders {
        let (status, body) = php_get(&sim, &format!("/api/v1/customer/order/details?order_id={}", order.id)).await;
        assert_eq!(status, 200, "{}", order.id);
        assert_eq!(body["order_amount"], format!("{:.2}", order.order_amount));
        assert_eq!(body["delivery_charge"], format!("{:.2}", order.delivery_charge));
        assert_eq!(body["order_status"], order.status.as_str());
        assert_eq!(body["payment_method"], order.payment_method.as_str());
        assert!(body["customer"]["f_name"].is_string() && body["customer"]["phone"].is_string());
        assert_eq!(body["store"]["id"], order.store_id);
        match order.rider_id {
            Some(rider) => assert_eq!(body["delivery_man"]["id"], rider),
            None => assert!(body["delivery_man"].is_null()),
        }
        let receiver = match &body["receiver_details"] {
            Value::String(text) => {
                stringified_receivers += 1;
                serde_json::from_str::<Value>(text).unwrap()
            }
            object => {
                object_receivers += 1;
                object.clone()
            }
        };
        assert_eq!(receiver["address"], order.delivery_address.address.as_str());
        let food = data.store(order.store_id).unwrap().module_type == "food";
        for (detail, line) in body["details"].as_array().unwrap().iter().zip(&order.items) {
            assert_eq!(detail["price"], format!("{:.2}", line.price));
            assert_eq!(detail["quantity"], line.quantity);
            let name = if food {
                detail["food"]["name"].clone()
            } else {
                match &detail["product_details"] {
                    Value::String(text) => serde_json::from_str::<Value>(text).unwrap()["name"].clone(),
                    object => object["name"].clone(),
                }
            };
            assert_eq!(name, line.name.as_str());
        }
    }
    assert!(stringified_receivers >= 1 && object_receivers >= 1, "both shapes appear in the demo data");
    let (status, body) = php_get(&sim, "/api/v1/customer/order/details?order_id=42").await;
    assert_eq!(status, 404);
    assert_eq!(body["errors"][0]["code"], "order");
    assert_eq!(php_get(&sim, "/api/v1/customer/order/details").await.0, 403, "6amMart's validation status");
}

#[tokio::test]
async fn php_stores_and_riders_by_id_and_by_phone() {
    let sim = sim().await;
    let data = sim.data();
    let mut phone_forms = HashSet::new();
    for store in &data.stores {
        let (status, body) = php_get(&sim, &format!("/api/v1/stores/details/{}", store.id)).await;
        assert_eq!(status, 200);
        assert_eq!(body["name"], store.name.as_str());
        let phone = body["phone"].as_str().unwrap();
        assert!(phone.ends_with(national(&store.phone)), "any form, same number");
        phone_forms.insert(phone.len() - 10);
        assert_eq!(body["active"], u8::from(store.active));
        assert!(body["latitude"].is_string());
        let (_, found) = php_get(&sim, &format!("/api/v1/stores/search?phone={}", national(&store.phone))).await;
        assert_eq!(found.as_array().unwrap().len(), 1);
        assert_eq!(found[0]["id"], store.id);
    }
    let (status, found) = php_get(&sim, "/api/v1/stores/search?phone=9000000000").await;
    assert_eq!((status, found), (200, json!([])));
    assert_eq!(php_get(&sim, "/api/v1/stores/details/9999").await.0, 404);

    assert_eq!(phone_forms.len(), 4, "10 digits, 0…, 91… and +91… all appear");

    let rider = data.riders.iter().find(|r| data.orders.iter().any(|o| o.rider_id == Some(r.id))).unwrap();
    let (status, body) = php_get(&sim, &format!("/api/v1/delivery-man/details/{}", rider.id)).await;
    assert_eq!(status, 200);
    assert_eq!(body["f_name"], rider.f_name.as_str());
    assert_eq!(body["vehicle_type"], rider.vehicle_type.as_str());
    assert!(body["current_orders"].as_u64().is_some());
    let (_, found) = php_get(&sim, &format!("/api/v1/delivery-man/search?phone={}", national(&rider.phone))).await;
    assert_eq!(found[0]["id"], rider.id);
    assert_eq!(php_get(&sim, "/api/v1/delivery-man/search?phone=9000000000").await.1, json!([]));
}

#[tokio::test]
async fn customers_and_riders_are_found_by_any_phone_form() {
    let sim = sim().await;
    let data = sim.data();
    let customer = &data.customers[1];
    for form in [national(&customer.phone).to_string(), customer.phone.replace('+', "%2B")] {
        let (status, body) = jupiter_get(&sim, &format!("/api/customer/lookup?phone={form}")).await;
        assert_eq!(status, 200, "{form}");
        assert_eq!(body["id"], customer.id);
        assert_eq!(body["phone"], customer.phone.as_str());
        assert_eq!(body["isRegistered"], true);
        assert_eq!(body["language"], customer.language.as_str());
        assert_eq!(body["addresses"].as_array().unwrap().len(), customer.addresses.len());
    }
    assert_eq!(jupiter_get(&sim, "/api/customer/lookup?phone=9000000000").await.0, 404);
    assert_eq!(jupiter_get(&sim, "/api/customer/lookup").await.0, 400);
    let rider = &data.riders[0];
    let (status, body) = jupiter_get(&sim, &format!("/api/rider/lookup?phone={}", national(&rider.phone))).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"id": rider.id, "name": format!("{} {}", rider.f_name, rider.l_name), "phone": rider.phone})
    );
}

#[tokio::test]
async fn catalog_search_understands_what_callers_say() {
    let sim = sim().await;
    let data = sim.data();
    let veg = store_id(&data, "Hari Om Fruits & Vegetables");
    let kirana = store_id(&data, "Sharma Kirana Stores");
    let search = |store: u64, q: &str| format!("/api/catalog/search?store_id={store}&q={q}");

    let (status, kanda) = jupiter_get(&sim, &search(veg, "kanda")).await;
    assert_eq!(status, 200);
    assert_eq!(names(&kanda)[..2], ["Onion", "Spring Onion"], "the exact alias first");
    let onion = &kanda["items"][0];
    assert_eq!(onion["storeId"], veg);
    assert!(onion["aliases"].as_array().unwrap().contains(&json!("कांदा")));
    assert!(onion["price"].is_f64() && onion["packSize"] == "1 kg" && onion["unit"] == "kg");
    assert_eq!(names(&jupiter_get(&sim, &search(veg, "प्याज")).await.1)[..2], ["Onion", "Spring Onion"]);
    assert_eq!(names(&jupiter_get(&sim, &search(veg, "ONION")).await.1)[..2], ["Onion", "Spring Onion"]);
    assert_eq!(names(&jupiter_get(&sim, &search(kirana, "tuvar")).await.1)[0], "Toor Dal");
    assert_eq!(names(&jupiter_get(&sim, &search(kirana, "तूर दाल")).await.1)[0], "Toor Dal");
    assert_eq!(names(&jupiter_get(&sim, &search(kirana, "do%20kilo%20pyaaz")).await.1)[0], "Onion");
    assert!(names(&jupiter_get(&sim, &search(kirana, "biryani")).await.1).is_empty());

    let (_, limited) = jupiter_get(&sim, &format!("{}&limit=1", search(veg, "kanda"))).await;
    assert_eq!(names(&limited), ["Onion"]);
    let (_, all) = jupiter_get(&sim, &format!("/api/catalog/search?store_id={veg}")).await;
    assert_eq!(all["items"].as_array().unwrap().len(), data.catalog(veg).count(), "an empty query lists the store");
    assert_eq!(jupiter_get(&sim, "/api/catalog/search?q=kanda").await.0, 400);
    assert_eq!(jupiter_get(&sim, "/api/catalog/search?store_id=9999&q=kanda").await.0, 404);
}

#[tokio::test]
async fn a_store_catalog_lists_every_item_with_its_variants_and_modifier_groups() {
    let sim = sim().await;
    let data = sim.data();
    let misal_house = store_id(&data, "Godavari Misal House");
    let (status, body) = jupiter_get(&sim, &format!("/api/catalog?store_id={misal_house}")).await;
    assert_eq!(status, 200);
    assert_eq!(body["store"]["name"], "Godavari Misal House");
    assert_eq!(body["store"]["language"], "mr");
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), data.catalog(misal_house).count(), "unavailable items too");
    let chai = items.iter().find(|i| i["name"] == "Cutting Chai").unwrap();
    assert_eq!(
        chai["variants"][0],
        json!({"id": "cutting", "name": "Cutting (half cup)",
        "aliases": ["cutting", "half cup", "कटिंग"], "price": 12.0})
    );
    let sugar = &chai["modifierGroups"][0];
    assert_eq!(
        (&sugar["id"], &sugar["exclusive"], &sugar["default"]),
        (&json!("sugar"), &json!(true), &json!("regular"))
    );
    assert!(sugar["options"].as_array().unwrap().iter().any(|o| o["id"] == "less" && o["priceDelta"] == 0.0));
    let pav = items.iter().find(|i| i["name"] == "Extra Pav").unwrap();
    assert_eq!((&pav["variants"], &pav["modifierGroups"]), (&json!([]), &json!([])));

    let (status, error) = jupiter_get(&sim, "/api/catalog").await;
    assert_eq!((status, &error["field"]), (400, &json!("store_id")));
    assert_eq!(jupiter_get(&sim, "/api/catalog?store_id=seven").await.1["field"], "store_id");
    assert_eq!(jupiter_get(&sim, "/api/catalog?store_id=9999").await.0, 404);
}

#[tokio::test]
async fn php_item_search_matches_names_only() {
    let sim = sim().await;
    let veg = store_id(&sim.data(), "Hari Om Fruits & Vegetables");
    let (status, body) = php_get(&sim, &format!("/api/v1/items/search?store_id={veg}&name=onion")).await;
    assert_eq!(status, 200);
    let products = body["products"].as_array().unwrap();
    let found: Vec<&str> = products.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(found, ["Onion", "Spring Onion"]);
    assert!(products[0]["price"].is_string() && products[0]["available"] == 1);
    assert_eq!(body["total_size"], 2);
    let (_, aliases) = php_get(&sim, &format!("/api/v1/items/search?store_id={veg}&name=kanda")).await;
    assert!(aliases["products"].as_array().unwrap().is_empty(), "PHP knows no aliases");
    let (_, limited) = php_get(&sim, &format!("/api/v1/items/search?store_id={veg}&name=&limit=3")).await;
    assert_eq!(limited["products"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn creating_an_order_prices_it_from_the_catalog_once_per_key() {
    let sim = sim().await;
    let data = sim.data();
    let store = data.store(store_id(&data, "Sharma Kirana Stores")).unwrap().clone();
    let dal = data.item(item_id(&data, store.id, "Toor Dal")).unwrap().clone();
    let onion = data.item(item_id(&data, store.id, "Onion")).unwrap().clone();
    let customer = &data.customers[0];
    let request = json!({
        "idempotencyKey": "voice-call-1",
        "customerPhone": national(&customer.phone),
        "storeId": store.id,
        "items": [{"itemId": dal.id, "quantity": 2}, {"itemId": onion.id.to_string(), "quantity": 3}],
        "paymentMethod": "cash_on_delivery",
        "deliveryAddress": {"address": "Flat 302, Shree Ganesh Apartment, College Road", "landmark": "Near BYK College",
                            "latitude": "20.0024", "longitude": 73.7629},
        "source": "exotel-voice",
        "note": "Ring twice",
    });
    let (status, created) = jupiter_post(&sim, "/api/order/create", &request).await;
    assert_eq!(status, 200, "{created}");
    let expected = dal.price * 2.0 + onion.price * 3.0 + store.delivery_charge;
    assert_eq!(created["success"], true);
    assert_eq!(created["status"], "pending");
    assert_eq!(created["orderAmount"].as_f64(), Some(expected));
    let id = created["orderId"].as_u64().unwrap();
    assert!(data.order(id).is_none(), "a new id");

    let (status, again) = jupiter_post(&sim, "/api/order/create", &request).await;
    assert_eq!((status, &again), (200, &created), "the same key answers the first order");
    assert_eq!(sim.data().orders.len(), data.orders.len() + 1);

    let order = sim.order(&id.to_string()).unwrap();
    assert_eq!((order.customer_id, order.store_id, order.status.as_str()), (customer.id, store.id, "pending"));
    assert_eq!(order.order_note.as_deref(), Some("Ring twice"));
    assert_eq!(order.delivery_address.latitude, Some(20.0024));
    assert_eq!(order.delivery_address.contact_person_number, customer.phone);
    let (_, shown) = jupiter_get(&sim, &format!("/api/order/{id}")).await;
    assert_eq!(shown["amount"].as_f64(), Some(expected));
    assert_eq!(shown["items"][1]["name"], "Onion");

    let mut guest = request.clone();
    guest["idempotencyKey"] = json!("voice-call-2");
    guest["customerPhone"] = json!("+919000000001");
    guest["deliveryAddress"]["contact_person_name"] = json!("Suresh");
    let (status, created) = jupiter_post(&sim, "/api/order/create", &guest).await;
    assert_eq!(status, 200);
    assert_eq!(created["orderId"].as_u64(), Some(id + 1));
    let (status, registered) = jupiter_get(&sim, "/api/customer/lookup?phone=9000000001").await;
    assert_eq!((status, registered["name"].as_str()), (200, Some("Suresh")), "a new caller becomes a customer");
}

#[tokio::test]
async fn creating_an_order_names_the_field_at_fault() {
    let sim = sim().await;
    let data = sim.data();
    let store = store_id(&data, "Hari Om Fruits & Vegetables");
    let onion = item_id(&data, store, "Onion");
    let mango = item_id(&data, store, "Alphonso Mango");
    let elsewhere = item_id(&data, store_id(&data, "Sharma Kirana Stores"), "Toor Dal");
    let closed = data.stores.iter().find(|s| !s.active).unwrap().id;
    let valid = json!({
        "idempotencyKey": "k", "customerPhone": "9822012345", "storeId": store,
        "items": [{"itemId": onion, "quantity": 1}], "paymentMethod": "digital_payment",
        "deliveryAddress": {"address": "Ramkund, Panchavati"},
    });
    let cases: Vec<(&str, Value, &str)> = vec![
        ("/items/0/itemId", json!(987654), "items[0].itemId"),
        ("/items/0/itemId", json!(elsewhere), "items[0].itemId"),
        ("/items/0/itemId", json!(mango), "items[0].itemId"),
        ("/items/0/quantity", json!(0), "items[0].quantity"),
        ("/items/0/quantity", json!(51), "items[0].quantity"),
        ("/items", json!([]), "items"),
        ("/storeId", json!(9999), "storeId"),
        ("/storeId", json!(closed), "storeId"),
        ("/paymentMethod", json!("upi"), "paymentMethod"),
        ("/customerPhone", json!("12345"), "customerPhone"),
        ("/deliveryAddress", json!("Panchavati"), "deliveryAddress"),
        ("/idempotencyKey", json!(""), "idempotencyKey"),
    ];
    for (i, (pointer, value, field)) in cases.into_iter().enumerate() {
        let mut body = valid.clone();
        *body.pointer_mut(pointer).unwrap() = value;
        body["idempotencyKey"] = if field == "idempotencyKey" { json!("") } else { json!(format!("bad-{i}")) };
        let (status, answer) = jupiter_post(&sim, "/api/order/create", &body).await;
        assert_eq!(status, 400, "{field}: {answer}");
        assert_eq!(answer["field"], field, "{answer}");
        assert!(answer["error"].as_str().unwrap().contains(field), "{answer}");
    }
    assert_eq!(sim.data().orders.len(), data.orders.len(), "nothing was created");
    let (status, _) = jupiter_post(&sim, "/api/order/create", &valid).await;
    assert_eq!(status, 200);
}

/// Godavari Misal House (store 7): misal sold in half and full plates with
/// spice, onion and extras; cutting chai in two sizes.
fn misal_order(key: &str) -> Value {
    json!({
        "idempotencyKey": key, "customerPhone": "9822012345", "storeId": 7,
        "items": [
            {"itemId": 7001, "variantId": "full", "quantity": 2, "unitPrice": 80, "lineTotal": 160,
             "modifiers": [{"groupId": "spice", "optionId": "hot"}, {"groupId": "extras", "optionId": "farsan"}]},
            {"itemId": 7012, "variantId": "cutting", "quantity": 1, "unitPrice": 12, "lineTotal": 12,
             "modifiers": []},
        ],
        "total": 172, "paymentMethod": "cash_on_delivery",
        "deliveryAddress": {"address": "Ramkund, Panchavati"},
    })
}

#[tokio::test]
async fn an_order_with_variants_and_modifiers_is_repriced_and_kept_with_them() {
    let sim = sim().await;
    let (status, created) = jupiter_post(&sim, "/api/order/create", &misal_order("misal-1")).await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["orderAmount"].as_f64(), Some(192.0), "172 and the delivery charge");
    let order = sim.order(&created["orderId"].to_string()).unwrap();
    assert_eq!(order.items[0].variant_id.as_deref(), Some("full"));
    assert_eq!((order.items[0].quantity, order.items[0].price), (2.0, 80.0));
    assert_eq!(order.items[0].modifiers.len(), 2);
    let (_, shown) = jupiter_get(&sim, &format!("/api/order/{}", order.id)).await;
    assert_eq!(shown["items"][0]["quantity"], json!(2), "a whole quantity stays an integer");
    assert_eq!(shown["items"][0]["modifiers"][1], json!({"groupId": "extras", "optionId": "farsan"}));

    // Loose goods take decimals; 1.5 kg of onions at 35 is 52.50.
    let onions = json!({
        "idempotencyKey": "onions", "customerPhone": "9822012345", "storeId": 18,
        "items": [{"itemId": 18001, "quantity": 1.5, "unitPrice": 35, "lineTotal": 52.5}], "total": 52.5,
        "paymentMethod": "digital_payment", "deliveryAddress": {"address": "Ramkund, Panchavati"},
    });
    let (status, created) = jupiter_post(&sim, "/api/order/create", &onions).await;
    assert_eq!((status, created["orderAmount"].as_f64()), (200, Some(62.5)), "{created}");
    // Poha is sold by the gram at ₹37 a 500 g pack: 1000 g is ₹74.
    let poha = json!({
        "idempotencyKey": "poha", "customerPhone": "9822012345", "storeId": 1,
        "items": [{"itemId": 1008, "quantity": 1000, "unitPrice": 37, "lineTotal": 74}], "total": 74,
        "paymentMethod": "cash_on_delivery", "deliveryAddress": {"address": "College Road"},
    });
    let (status, created) = jupiter_post(&sim, "/api/order/create", &poha).await;
    assert_eq!((status, created["orderAmount"].as_f64()), (200, Some(94.0)), "{created}");
}

#[tokio::test]
async fn a_line_that_does_not_fit_the_catalog_or_its_price_is_refused_by_field() {
    let sim = sim().await;
    let before = sim.data().orders.len();
    let cases: Vec<(&str, Value, &str)> = vec![
        ("/items/0/variantId", json!("jumbo"), "items[0].variantId"),
        ("/items/1/variantId", json!("kulhad"), "items[1].variantId"),
        ("/items/0/modifiers/0/groupId", json!("sauce"), "items[0].modifiers[0].groupId"),
        ("/items/0/modifiers/0/optionId", json!("volcanic"), "items[0].modifiers[0].optionId"),
        ("/items/0/modifiers/1", json!({"groupId": "spice", "optionId": "mild"}), "items[0].modifiers[1].groupId"),
        ("/items/0/quantity", json!(1.5), "items[0].quantity"),
        ("/items/0/unitPrice", json!(70), "items[0].unitPrice"),
        ("/items/0/lineTotal", json!(150), "items[0].lineTotal"),
        ("/total", json!(170), "total"),
    ];
    for (i, (pointer, value, field)) in cases.into_iter().enumerate() {
        let mut body = misal_order(&format!("bad-{i}"));
        *body.pointer_mut(pointer).unwrap() = value;
        let (status, answer) = jupiter_post(&sim, "/api/order/create", &body).await;
        assert_eq!(status, 400, "{field}: {answer}");
        assert_eq!(answer["field"], field, "{answer}");
    }
    assert_eq!(sim.data().orders.len(), before, "nothing was created");
}

#[tokio::test]
async fn a_customer_cancels_until_the_order_leaves_the_store_and_pays_by_a_upi_link() {
    let sim = sim().await;
    let (_, created) = jupiter_post(&sim, "/api/order/create", &misal_order("to-cancel")).await;
    let id = created["orderId"].as_u64().unwrap();
    let (status, link) = jupiter_post(&sim, &format!("/api/order/{id}/payment-link"), &json!({})).await;
    assert_eq!(status, 200, "{link}");
    let url = link["url"].as_str().unwrap();
    assert!(url.starts_with("upi://pay?pa=") && url.contains("am=192.00"), "{url}");
    let (_, again) = jupiter_post(&sim, &format!("/api/order/{id}/payment-link"), &json!({})).await;
    assert_eq!(again, link, "the same link for the same order");

    let cancel = json!({"orderId": id, "reason": "changed my mind", "cancelledBy": "customer"});
    for _ in 0..2 {
        let (status, answer) = jupiter_post(&sim, "/api/order/cancel", &cancel).await;
        assert_eq!((status, answer["status"].as_str()), (200, Some("canceled")), "{answer}");
    }
    assert_eq!(sim.order(&id.to_string()).unwrap().status, "canceled");
    let (status, _) = jupiter_post(&sim, &format!("/api/order/{id}/payment-link"), &json!({})).await;
    assert_eq!(status, 409, "nothing to pay on a cancelled order");

    let picked = sim.data().orders.iter().find(|o| o.status == "picked_up").unwrap().id;
    let (status, answer) = jupiter_post(&sim, "/api/order/cancel", &json!({"orderId": picked})).await;
    assert_eq!((status, answer["field"].as_str()), (409, Some("orderId")), "{answer}");
    let (status, _) = jupiter_post(&sim, "/api/order/cancel", &json!({"orderId": 1})).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn stores_are_listed_nearest_first_with_their_distance() {
    let sim = sim().await;
    // Ramkund, Panchavati: Godavari Misal House is a few hundred metres away.
    let (status, answer) = jupiter_get(&sim, "/api/stores?lat=20.0075&lng=73.7935&limit=5").await;
    assert_eq!(status, 200, "{answer}");
    let stores = answer["stores"].as_array().unwrap();
    assert_eq!(stores.len(), 5);
    let distances: Vec<f64> = stores.iter().map(|s| s["distanceKm"].as_f64().unwrap()).collect();
    assert!(distances.windows(2).all(|w| w[0] <= w[1]), "{distances:?}");
    assert!(stores.iter().any(|s| s["id"] == 7 && s["aliases"][0] == "godavari"), "{answer}");

    let (_, all) = jupiter_get(&sim, "/api/stores").await;
    let all = all["stores"].as_array().unwrap();
    assert_eq!(all.len(), 20);
    assert!(all.iter().all(|s| s["distanceKm"].is_null()));
    assert!(all.iter().any(|s| s["open"] == false), "closed stores are listed as closed");
    for (query, field) in [("lat=20.0", "lng"), ("lat=north&lng=73.7", "lat"), ("limit=0", "limit")] {
        let (status, answer) = jupiter_get(&sim, &format!("/api/stores?{query}")).await;
        assert_eq!((status, answer["field"].as_str()), (400, Some(field)), "{query}: {answer}");
    }
}

#[tokio::test]
async fn status_updates_change_the_order_everywhere() {
    let sim = sim().await;
    let order = sim.data().orders.iter().find(|o| o.status == "pending").unwrap().clone();
    let update = json!({"orderId": order.id.to_string(), "status": "processing",
                        "metadata": {"prepTimeMinutes": 25}, "source": "exotel-ivr"});
    let (status, answer) = jupiter_post(&sim, "/api/order/status", &update).await;
    assert_eq!(status, 200);
    assert_eq!(answer, json!({"success": true, "orderId": order.id, "status": "processing"}));
    assert_eq!(jupiter_get(&sim, &format!("/api/order/{}", order.id)).await.1["status"], "processing");
    let (_, php) = php_get(&sim, &format!("/api/v1/customer/order/details?order_id={}", order.id)).await;
    assert_eq!((&php["order_status"], &php["processing_time"]), (&json!("processing"), &json!("25")));
    assert_eq!(sim.order(&order.id.to_string()).unwrap().processing_time, Some(25));
    assert_eq!(sim.status_updates(), [update]);

    assert_eq!(jupiter_post(&sim, "/api/order/status", &json!({"orderId": 1, "status": "confirmed"})).await.0, 404);
    // Mangwale's own order reference, in the seed's form, finds the order too.
    let seed = json!({"orderId": "MW-2025-001234", "status": "accepted", "source": "exotel-ivr"});
    let (status, answer) = jupiter_post(&sim, "/api/order/status", &seed).await;
    assert_eq!((status, &answer["status"]), (200, &json!("accepted")), "{answer}");
    let by_reference = jupiter_get(&sim, "/api/order/MW-2025-001234").await.1;
    assert_eq!((&by_reference["status"], &by_reference["id"]), (&json!("accepted"), &answer["orderId"]));
    let (_, php) = php_get(&sim, "/api/v1/customer/order/details?order_id=MW-2025-001234").await;
    assert_eq!(php["order_status"], "accepted");
    assert_eq!(sim.order("MW-2025-001234").unwrap().status, "accepted");
    let bad = json!({"orderId": "MW 2025/1", "status": "accepted"});
    let (status, answer) = jupiter_post(&sim, "/api/order/status", &bad).await;
    assert_eq!((status, &answer["field"]), (400, &json!("orderId")), "{answer}");
    let (status, answer) = jupiter_post(&sim, "/api/order/status", &json!({"orderId": order.id})).await;
    assert_eq!((status, answer["field"].as_str()), (400, Some("status")));
    let (status, answer) = jupiter_post(&sim, "/api/order/status", &json!({"status": "confirmed"})).await;
    assert_eq!((status, answer["field"].as_str()), (400, Some("orderId")));
    let (status, _) =
        jupiter_post(&sim, "/api/order/status", &json!({"orderId": order.id, "status": "teleported"})).await;
    assert_eq!(status, 400);
    assert_eq!(sim.status_updates().len(), 2, "only accepted updates are kept");
}

#[tokio::test]
async fn notifications_are_recorded() {
    let sim = sim().await;
    let event = json!({"type": "vendor_accepted", "data": {"orderId": "100001"}, "source": "exotel-service",
                       "timestamp": "2026-01-15T13:30:00Z"});
    assert_eq!(jupiter_post(&sim, "/api/notifications/ivr-event", &event).await, (200, json!({"success": true})));
    let (status, answer) = jupiter_post(&sim, "/api/notifications/ivr-event", &json!({"data": {}})).await;
    assert_eq!((status, answer["field"].as_str()), (400, Some("type")));
    assert_eq!(sim.notifications(), [event]);
    let bad_json = client()
        .post(format!("{}/api/notifications/ivr-event", sim.jupiter_url()))
        .header("X-API-Key", KEY)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_json.status(), 400);
    assert_eq!(sim.received().last().unwrap().body, None);
}

#[tokio::test]
async fn status_faults_answer_without_effect_and_match_by_prefix() {
    let sim = sim().await;
    let order = sim.data().orders[0].clone();
    sim.inject_fault(Target::Jupiter, "/api/order/status", JupiterFault::Status(503), 2);
    let update = json!({"orderId": order.id, "status": "confirmed"});
    assert_eq!(jupiter_get(&sim, "/health").await.0, 200, "other paths are untouched");
    for _ in 0..2 {
        let (status, body) = jupiter_post(&sim, "/api/order/status", &update).await;
        assert_eq!(status, 503);
        assert!(body["error"].is_string());
    }
    assert_eq!(sim.order(&order.id.to_string()).unwrap().status, order.status, "no effect");
    assert_eq!(jupiter_post(&sim, "/api/order/status", &update).await.0, 200);
    assert_eq!(sim.status_updates().len(), 1);

    sim.inject_fault(Target::Php, "", JupiterFault::Status(500), 1);
    assert_eq!(php_get(&sim, "/api/v1/stores/details/1").await.0, 500);
    assert_eq!(php_get(&sim, "/api/v1/stores/details/1").await.0, 200);
    let statuses: Vec<Option<u16>> = sim.received().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [Some(200), Some(503), Some(503), Some(200), Some(500), Some(200)]);
}

#[tokio::test]
async fn a_delay_answers_late_after_the_effect() {
    let sim = sim().await;
    let order = sim.data().orders[0].clone();
    sim.inject_fault(Target::Jupiter, "/api/order/status", JupiterFault::Delay(Duration::from_millis(800)), 1);
    let impatient = reqwest::Client::builder().no_proxy().timeout(Duration::from_millis(150)).build().unwrap();
    let sent = impatient
        .post(format!("{}/api/order/status", sim.jupiter_url()))
        .header("X-API-Key", KEY)
        .json(&json!({"orderId": order.id, "status": "canceled"}))
        .send()
        .await;
    assert!(sent.unwrap_err().is_timeout());
    assert_eq!(sim.order(&order.id.to_string()).unwrap().status, "canceled", "the client cannot know it took effect");

    sim.inject_fault(Target::Php, "/api/v1/stores", JupiterFault::Delay(Duration::from_millis(100)), 1);
    let started = std::time::Instant::now();
    assert_eq!(php_get(&sim, "/api/v1/stores/details/1").await.0, 200);
    assert!(started.elapsed() >= Duration::from_millis(100));
}

#[tokio::test]
async fn a_dropped_connection_has_no_answer_and_no_effect() {
    let sim = sim().await;
    let order = sim.data().orders[0].clone();
    sim.inject_fault(Target::Jupiter, "", JupiterFault::Drop, 1);
    let sent = client()
        .post(format!("{}/api/order/status", sim.jupiter_url()))
        .header("X-API-Key", KEY)
        .json(&json!({"orderId": order.id, "status": "confirmed"}))
        .send()
        .await;
    assert!(sent.is_err(), "no answer");
    assert_eq!(sim.order(&order.id.to_string()).unwrap().status, order.status);
    let dropped = sim.received().pop().unwrap();
    assert_eq!((dropped.path.as_str(), dropped.status), ("/api/order/status", None));
    assert_eq!(dropped.body.unwrap()["status"], "confirmed");
    assert_eq!(jupiter_get(&sim, "/health").await.0, 200);
}

#[tokio::test]
async fn a_target_that_is_down_answers_503_until_it_is_back() {
    let sim = sim().await;
    sim.set_down(Target::Jupiter, true);
    let (status, body) = jupiter_get(&sim, "/health").await;
    assert_eq!(status, 503);
    assert!(body["error"].is_string());
    let unauthenticated = client().get(format!("{}/health", sim.jupiter_url())).send().await.unwrap();
    assert_eq!(unauthenticated.status(), 503, "the outage comes before the key check");
    assert_eq!(php_get(&sim, "/api/v1/stores/details/1").await.0, 200, "the PHP backend is separate");
    sim.set_down(Target::Php, true);
    assert_eq!(php_get(&sim, "/api/v1/stores/details/1").await.0, 503);
    assert_eq!(sim.received().len(), 4, "requests during an outage are recorded");
    sim.set_down(Target::Jupiter, false);
    sim.set_down(Target::Php, false);
    assert_eq!(jupiter_get(&sim, "/health").await.0, 200);
    assert_eq!(php_get(&sim, "/api/v1/stores/details/1").await.0, 200);
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<(Uri, HeaderMap, Bytes)>>>);

async fn capture(State(captured): State<Captured>, uri: Uri, headers: HeaderMap, body: Bytes) -> StatusCode {
    captured.0.lock().unwrap().push((uri, headers, body));
    StatusCode::ACCEPTED
}

fn hmac_hex(secret: &str, message: &[u8]) -> String {
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn webhooks_are_signed_over_the_exact_bytes_sent() {
    let sim = sim().await;
    let captured = Captured::default();
    let app = Router::new().fallback(capture).with_state(captured.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let body = json!({"order_id": 100001, "store_id": 7, "customer_id": 801, "amount": 200.0,
                      "payment_method": "cash_on_delivery", "note": "कमी तिखट"});
    let res = sim.send_webhook(&base, "order/new", &body, Signing::Secret("s3cret".into())).await.unwrap();
    assert_eq!(res.status(), 202);
    sim.send_webhook(&base, "/rider/assigned", &body, Signing::SecretWithTimestamp("s3cret".into(), 1_768_483_800))
        .await
        .unwrap();
    sim.send_webhook(&base, "order/ready", &body, Signing::None).await.unwrap();

    let captured = captured.0.lock().unwrap().clone();
    let [(uri, headers, bytes), (ts_uri, ts_headers, ts_bytes), (_, unsigned, _)] = captured.as_slice() else {
        panic!("three webhooks, got {}", captured.len())
    };
    assert_eq!(uri.path(), "/webhooks/jupiter/order/new");
    assert_eq!(serde_json::from_slice::<Value>(bytes).unwrap(), body);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["x-jupiter-signature"], hmac_hex("s3cret", bytes).as_str());
    assert!(headers.get("x-jupiter-timestamp").is_none());

    assert_eq!(ts_uri.path(), "/webhooks/jupiter/rider/assigned");
    assert_eq!(ts_headers["x-jupiter-timestamp"], "1768483800");
    let signed = [b"1768483800.".as_slice(), ts_bytes].concat();
    assert_eq!(ts_headers["x-jupiter-signature"], hmac_hex("s3cret", &signed).as_str());
    assert!(unsigned.get("x-jupiter-signature").is_none() && unsigned.get("x-jupiter-timestamp").is_none());
    server.abort();
}

#[tokio::test]
async fn the_nashik_demo_data_is_consistent() {
    let data = sim().await.data();
    assert!((18..=22).contains(&data.stores.len()), "about 20 stores");
    assert!((250..=400).contains(&data.items.len()), "about 300 items: {}", data.items.len());
    for (store_type, at_least) in [("kirana", 5), ("restaurant", 5), ("pharmacy", 2), ("fruits_vegetables", 3)] {
        assert!(data.stores.iter().filter(|s| s.store_type == store_type).count() >= at_least, "{store_type}");
    }
    assert!(data.stores.iter().filter(|s| s.store_type == "sweets" || s.store_type == "bakery").count() >= 3);
    assert!((8..=12).contains(&data.riders.len()) && (12..=18).contains(&data.customers.len()));

    let phones: Vec<&str> = data
        .stores
        .iter()
        .map(|s| s.phone.as_str())
        .chain(data.riders.iter().map(|r| r.phone.as_str()))
        .chain(data.customers.iter().map(|c| c.phone.as_str()))
        .collect();
    assert_eq!(phones.iter().collect::<HashSet<_>>().len(), phones.len(), "unique phones");
    for phone in phones {
        let national = phone.strip_prefix("+91").unwrap_or_else(|| panic!("{phone}"));
        assert!(national.len() == 10 && national.chars().all(|c| c.is_ascii_digit()), "{phone}");
        assert!(matches!(national.as_bytes()[0], b'6'..=b'9'), "an Indian mobile: {phone}");
    }
    let near_nashik = |lat: f64, long: f64| (19.9..20.1).contains(&lat) && (73.65..73.9).contains(&long);
    assert!(data.stores.iter().all(|s| near_nashik(s.latitude, s.longitude)));
    assert!(data.customers.iter().flat_map(|c| &c.addresses).all(|a| near_nashik(a.latitude, a.longitude)));
    assert!(data.customers.iter().all(|c| (1..=2).contains(&c.addresses.len())));

    let item_ids: HashSet<u64> = data.items.iter().map(|i| i.id).collect();
    assert_eq!(item_ids.len(), data.items.len(), "unique item ids");
    for store in &data.stores {
        let catalog: Vec<_> = data.catalog(store.id).collect();
        assert!((10..=25).contains(&catalog.len()), "{}: {} items", store.name, catalog.len());
        assert!(["hi", "mr", "en"].contains(&store.owner_language.as_str()));
    }
    assert!(data.items.iter().any(|i| !i.available) && data.items.iter().filter(|i| !i.available).count() < 20);
    assert!(data.items.iter().all(|i| i.price > 0.0 && !i.aliases.is_empty()));
    for item in &data.items {
        let variant_ids: HashSet<&str> = item.variants.iter().map(|v| v.id.as_str()).collect();
        assert_eq!(variant_ids.len(), item.variants.len(), "{}: unique variant ids", item.name);
        assert!(item.variants.iter().all(|v| v.price > 0.0), "{}", item.name);
        for group in &item.modifier_groups {
            let option_ids: HashSet<&str> = group.options.iter().map(|o| o.id.as_str()).collect();
            assert!(!option_ids.is_empty() && option_ids.len() == group.options.len(), "{}: {}", item.name, group.id);
            assert!(group.default.as_deref().is_none_or(|d| option_ids.contains(d)), "{}: {}", item.name, group.id);
            assert!(group.exclusive || group.default.is_none(), "{}: a default only picks one option", item.name);
        }
    }
    for store in [
        "Godavari Misal House",
        "Swad Maharashtrian Thali",
        "Shri Ganesh Sweets",
        "Udupi Krishna Bhavan",
        "Punjab Da Dhaba",
    ] {
        let id = store_id(&data, store);
        assert!(data.catalog(id).any(|i| !i.variants.is_empty()), "{store} has sizes");
        assert!(data.catalog(id).any(|i| !i.modifier_groups.is_empty()), "{store} has choices");
    }
    assert!(
        data.items.iter().any(|i| i.aliases.iter().any(|a| a.chars().any(|c| ('\u{0900}'..='\u{097F}').contains(&c))))
    );

    let statuses: HashSet<&str> = data.orders.iter().map(|o| o.status.as_str()).collect();
    for status in ["pending", "confirmed", "processing", "handover", "picked_up", "delivered"] {
        assert!(statuses.contains(status), "an order is {status}");
    }
    for order in &data.orders {
        assert!(order.id >= 100_001);
        let store = data.store(order.store_id).unwrap();
        assert!(data.customer(order.customer_id).is_some());
        assert!(order.rider_id.is_none_or(|r| data.rider(r).is_some()));
        let mut subtotal = 0.0;
        for line in &order.items {
            let item = data.item(line.item_id).unwrap();
            assert_eq!(item.store_id, order.store_id, "order {}: {} is from another store", order.id, item.name);
            assert_eq!((line.name.as_str(), line.price), (item.name.as_str(), item.price));
            subtotal += line.price * line.quantity;
        }
        assert_eq!(order.delivery_charge, store.delivery_charge);
        assert!((order.order_amount - (subtotal + order.delivery_charge)).abs() < 0.005, "order {}", order.id);
    }
    assert!(data.orders.iter().any(|o| o.rider_id.is_some()) && data.orders.iter().any(|o| o.php_json_strings));
}

#[tokio::test]
async fn orders_added_by_tests_are_served_and_shutdown_stops_both_listeners() {
    let sim = sim().await;
    let mut order = sim.data().orders[1].clone();
    order.id = 777;
    order.php_json_strings = true;
    sim.add_order(order.clone());
    assert_eq!(jupiter_get(&sim, "/api/order/777").await.1["orderId"], 777);
    let (_, php) = php_get(&sim, "/api/v1/customer/order/details?order_id=777").await;
    assert!(php["receiver_details"].is_string() && php["sender_details"].is_string());
    order.status = "delivered".into();
    sim.add_order(order);
    assert_eq!(sim.order("777").unwrap().status, "delivered");
    sim.edit_data(|data| data.stores.retain(|s| s.id != 1));
    assert_eq!(php_get(&sim, "/api/v1/stores/details/1").await.0, 404);

    let empty = JupiterSim::start(JupiterSimConfig { api_key: KEY.into(), demo_data: false }).await.unwrap();
    assert!(empty.data().orders.is_empty());
    assert_eq!(jupiter_get(&empty, "/api/order/100001").await.0, 404);

    let (jupiter, php) = (sim.jupiter_url(), sim.php_url());
    sim.shutdown().await;
    let fresh = client();
    assert!(fresh.get(format!("{jupiter}/health")).send().await.is_err());
    assert!(fresh.get(format!("{php}/")).send().await.is_err());
}
