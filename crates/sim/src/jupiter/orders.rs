//! Jupiter's writes: order status updates, IVR event notifications and
//! voice-order creation, validated the way a strict backend would.

use chrono::{DateTime, Utc};
use mangwale_core::E164;
use serde_json::{Map, Value, json};

use super::api::ApiError;
use super::data::{DeliveryAddress, DemoCustomer, DemoOrder, DemoOrderLine, round_paise};
use super::state::State;

/// The order statuses Jupiter accepts (6amMart's `order_status` values).
pub const ORDER_STATUSES: &[&str] = &[
    "pending",
    "accepted",
    "confirmed",
    "processing",
    "handover",
    "picked_up",
    "delivered",
    "canceled",
    "failed",
    "refund_requested",
    "refunded",
];

pub const PAYMENT_METHODS: &[&str] = &["cash_on_delivery", "digital_payment"];

/// How many of one item an order may have.
pub const MAX_QUANTITY: u64 = 50;

/// The first id handed to a created order when there are none yet.
const FIRST_ORDER_ID: u64 = 100_001;

/// `POST /api/order/status`.
pub(crate) fn update_status(st: &mut State, body: &Value) -> Result<Value, ApiError> {
    let id = required_order_id(body, "orderId")?;
    let status = required_str(body, "status")?;
    if !ORDER_STATUSES.contains(&status) {
        return Err(ApiError::field(400, "status", format!("status: unknown order status '{status}'")));
    }
    let order = st.data.find_order_mut(&id).ok_or_else(|| ApiError::new(404, format!("order {id} not found")))?;
    let number = order.id;
    order.status = status.to_string();
    if let Some(minutes) = body.pointer("/metadata/prepTimeMinutes").and_then(as_u64) {
        order.processing_time = u32::try_from(minutes).ok();
    }
    if status == "delivered" {
        order.payment_status = "paid".to_string();
    }
    st.push_status_update(body.clone());
    Ok(json!({"success": true, "orderId": number, "status": status}))
}

/// `POST /api/notifications/ivr-event`.
pub(crate) fn notify(st: &mut State, body: &Value) -> Result<Value, ApiError> {
    required_str(body, "type")?;
    st.push_notification(body.clone());
    Ok(json!({"success": true}))
}

/// `POST /api/order/create`: a new `pending` order priced from the
/// catalog, or the first answer again for a repeated `idempotencyKey`.
pub(crate) fn create(st: &mut State, body: &Value, now: DateTime<Utc>) -> Result<Value, ApiError> {
    let key = required_str(body, "idempotencyKey")?;
    if let Some(first) = st.created_orders.get(key) {
        return Ok(first.clone());
    }
    let order = validate(st, body, now)?;
    let answer =
        json!({"success": true, "orderId": order.id, "orderAmount": order.order_amount, "status": order.status});
    st.created_orders.insert(key.to_string(), answer.clone());
    st.data.orders.push(order);
    Ok(answer)
}

/// Checks a create request field by field and builds the order; a new
/// phone number becomes a new customer, as Jupiter registers guests.
fn validate(st: &mut State, body: &Value, now: DateTime<Utc>) -> Result<DemoOrder, ApiError> {
    let phone = required_str(body, "customerPhone")?;
    let phone =
        E164::parse(phone).map_err(|e| ApiError::field(400, "customerPhone", format!("customerPhone: {}", e.0)))?;
    let store_id = required_id(body, "storeId")?;
    let store = st
        .data
        .store(store_id)
        .ok_or_else(|| ApiError::field(400, "storeId", format!("storeId: no store {store_id}")))?
        .clone();
    if !store.active {
        return Err(ApiError::field(400, "storeId", format!("storeId: {} is closed", store.name)));
    }

    let lines = match body.get("items") {
        Some(Value::Array(lines)) if !lines.is_empty() => lines,
        _ => return Err(ApiError::field(400, "items", "items: at least one item is required")),
    };
    let mut order_lines = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        let field = format!("items[{i}].itemId");
        let item_id = line
            .get("itemId")
            .and_then(as_u64)
            .ok_or_else(|| ApiError::field(400, &field, format!("{field}: an item id is required")))?;
        let item =
            st.data.item(item_id).filter(|item| item.store_id == store.id).ok_or_else(|| {
                ApiError::field(400, &field, format!("{field}: {} has no item {item_id}", store.name))
            })?;
        if !item.available {
            return Err(ApiError::field(400, &field, format!("{field}: {} is not available", item.name)));
        }
        let quantity_field = format!("items[{i}].quantity");
        let quantity =
            line.get("quantity").and_then(as_u64).filter(|q| (1..=MAX_QUANTITY).contains(q)).ok_or_else(|| {
                ApiError::field(400, &quantity_field, format!("{quantity_field}: from 1 to {MAX_QUANTITY}"))
            })?;
        order_lines.push(DemoOrderLine {
            item_id,
            name: item.name.clone(),
            quantity: quantity as u32,
            price: item.price,
        });
    }

    let payment_method = required_str(body, "paymentMethod")?;
    if !PAYMENT_METHODS.contains(&payment_method) {
        return Err(ApiError::field(
            400,
            "paymentMethod",
            format!("paymentMethod: one of {}", PAYMENT_METHODS.join(", ")),
        ));
    }
    let address = match body.get("deliveryAddress") {
        Some(Value::Object(address)) => address,
        _ => return Err(ApiError::field(400, "deliveryAddress", "deliveryAddress: an address object is required")),
    };
    let address_text = text(address, &["address"]).ok_or_else(|| {
        ApiError::field(400, "deliveryAddress.address", "deliveryAddress.address: the address is required")
    })?;

    let customer_id = match st.data.customer_by_phone(phone.as_str()) {
        Some(customer) => customer.id,
        None => register_guest(st, &phone, text(address, &["contact_person_name", "contactPersonName"])),
    };
    let customer = st.data.customer(customer_id).map(|c| (c.name(), c.phone.clone())).unwrap_or_default();
    let subtotal: f64 = order_lines.iter().map(|l| l.price * f64::from(l.quantity)).sum();
    let id = st.data.orders.iter().map(|o| o.id + 1).max().unwrap_or(FIRST_ORDER_ID).max(FIRST_ORDER_ID);
    Ok(DemoOrder {
        id,
        // Mangwale's reference in the seed's form: year and a six-digit
        // serial.
        reference: Some(format!("MW-{}-{:06}", now.format("%Y"), id % 1_000_000)),
        store_id: store.id,
        customer_id,
        rider_id: None,
        status: "pending".to_string(),
        payment_method: payment_method.to_string(),
        payment_status: "unpaid".to_string(),
        order_note: body.get("note").and_then(Value::as_str).map(str::to_string).filter(|n| !n.trim().is_empty()),
        created_at: now,
        processing_time: None,
        delivery_charge: store.delivery_charge,
        order_amount: round_paise(subtotal + store.delivery_charge),
        php_json_strings: false,
        delivery_address: DeliveryAddress {
            contact_person_name: text(address, &["contact_person_name", "contactPersonName"]).unwrap_or(customer.0),
            contact_person_number: text(address, &["contact_person_number", "contactPersonNumber"])
                .and_then(|n| E164::parse(&n).ok())
                .map_or(customer.1, |n| n.as_str().to_string()),
            address_type: text(address, &["address_type", "addressType", "label"]).unwrap_or_else(|| "home".into()),
            address: address_text,
            landmark: text(address, &["landmark"]),
            latitude: address.get("latitude").and_then(as_f64),
            longitude: address.get("longitude").and_then(as_f64),
        },
        items: order_lines,
    })
}

fn register_guest(st: &mut State, phone: &E164, name: Option<String>) -> u64 {
    let id = st.data.customers.iter().map(|c| c.id + 1).max().unwrap_or(1);
    st.data.customers.push(DemoCustomer {
        id,
        f_name: name.unwrap_or_else(|| "Guest".to_string()),
        l_name: String::new(),
        phone: phone.as_str().to_string(),
        language: "hi".to_string(),
        addresses: Vec::new(),
    });
    id
}

fn required_str<'a>(body: &'a Value, field: &str) -> Result<&'a str, ApiError> {
    body.get(field)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::field(400, field, format!("{field} is required")))
}

/// An order id as callers send it: a number (`100001`) or a string, the
/// number as text or Mangwale's reference (`MW-2025-001234`): letters,
/// digits, `-`, `_` and `.`, at most 64.
fn required_order_id(body: &Value, field: &str) -> Result<String, ApiError> {
    let text = match body.get(field) {
        None | Some(Value::Null) => return Err(ApiError::field(400, field, format!("{field} is required"))),
        Some(Value::Number(n)) if n.as_u64().is_some() => n.to_string(),
        Some(Value::String(s)) => s.trim().to_string(),
        Some(v) => return Err(ApiError::field(400, field, format!("{field}: not an order id: {v}"))),
    };
    let ok = !text.is_empty()
        && text.len() <= 64
        && text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        return Err(ApiError::field(400, field, format!("{field}: not an order id: {text:?}")));
    }
    Ok(text)
}

fn required_id(body: &Value, field: &str) -> Result<u64, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Err(ApiError::field(400, field, format!("{field} is required"))),
        Some(v) => as_u64(v).ok_or_else(|| ApiError::field(400, field, format!("{field}: not an id: {v}"))),
    }
}

/// The first non-blank string among `names` (callers spell fields in
/// either case).
fn text(object: &Map<String, Value>, names: &[&str]) -> Option<String> {
    names
        .iter()
        .filter_map(|n| object.get(*n).and_then(Value::as_str))
        .map(str::trim)
        .find(|s| !s.is_empty())
        .map(str::to_string)
}

/// A number, or a string holding one (clients send ids either way).
pub(crate) fn as_u64(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

fn as_f64(v: &Value) -> Option<f64> {
    v.as_f64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}
