//! Jupiter's writes: order status updates, IVR event notifications and
//! voice-order creation, validated the way a strict backend would.

use chrono::{DateTime, Utc};
use mangwale_core::E164;
use serde_json::{Map, Value, json};

use super::api::ApiError;
use super::data::{
    DeliveryAddress, DemoCustomer, DemoItem, DemoOrder, DemoOrderLine, DemoOrderModifier, DemoStore, round_paise,
};
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

/// The statuses from which a customer may still cancel: nothing has left
/// the store yet.
pub const CANCELLABLE_STATUSES: &[&str] = &["pending", "accepted", "confirmed", "processing"];

/// Units sold loose, whose quantity may be a decimal (1.5 kg); all others
/// (piece, plate, pack, dozen) and every item sold in sizes count whole.
const LOOSE_UNITS: &[&str] = &["kg", "g", "l", "litre", "ml"];

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
    let mut subtotal_paise = 0;
    for (i, line) in lines.iter().enumerate() {
        let priced = price_line(st, &store, i, line)?;
        subtotal_paise += priced.line_total_paise;
        order_lines.push(priced.line);
    }
    // An older client sends no total; one that does must have heard the
    // price Jupiter charges.
    if let Some(total) = body.get("total").filter(|v| !v.is_null()) {
        let sent = money_paise(total).ok_or_else(|| ApiError::field(400, "total", "total: not an amount"))?;
        if sent != subtotal_paise {
            return Err(ApiError::field(
                400,
                "total",
                format!("total: the items come to {}, not {}", rupees(subtotal_paise), rupees(sent)),
            ));
        }
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
        order_amount: round_paise(subtotal_paise as f64 / 100.0 + store.delivery_charge),
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

struct PricedLine {
    line: DemoOrderLine,
    line_total_paise: i64,
}

/// Checks one line of a create request against the store's catalog and
/// prices it: the variant's (or item's) price plus the options' deltas per
/// unit, times the quantity, rounded to the paisa half up. Prices the
/// client sent (`unitPrice`, `lineTotal`) must match.
fn price_line(st: &State, store: &DemoStore, i: usize, line: &Value) -> Result<PricedLine, ApiError> {
    let field = format!("items[{i}].itemId");
    let item_id = line
        .get("itemId")
        .and_then(as_u64)
        .ok_or_else(|| ApiError::field(400, &field, format!("{field}: an item id is required")))?;
    let item: &DemoItem = st
        .data
        .item(item_id)
        .filter(|item| item.store_id == store.id)
        .ok_or_else(|| ApiError::field(400, &field, format!("{field}: {} has no item {item_id}", store.name)))?;
    if !item.available {
        return Err(ApiError::field(400, &field, format!("{field}: {} is not available", item.name)));
    }

    let variant_field = format!("items[{i}].variantId");
    let variant_id = match line.get("variantId") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) if !id.trim().is_empty() => Some(id.trim().to_string()),
        Some(v) => return Err(ApiError::field(400, &variant_field, format!("{variant_field}: not a variant id: {v}"))),
    };
    // An item sold in sizes without a size is sold at the item's own price
    // (its default size), as a client of the older contract orders it.
    let base_rupees = match &variant_id {
        None => item.price,
        Some(id) => item.variants.iter().find(|v| &v.id == id).map(|v| v.price).ok_or_else(|| {
            ApiError::field(400, &variant_field, format!("{variant_field}: {} has no variant {id:?}", item.name))
        })?,
    };

    let quantity_field = format!("items[{i}].quantity");
    let loose = item.variants.is_empty() && LOOSE_UNITS.contains(&item.unit.as_str());
    // What the price buys, in thousandths of the item's unit: one pack of
    // loose goods priced by the pack (₹37 for 500 g of poha sold by the
    // gram), else one unit.
    let priced_milli = if loose { pack_content_milli(item).unwrap_or(1000) } else { 1000 };
    let quantity_milli = line
        .get("quantity")
        .and_then(quantity_milli)
        .filter(|q| *q > 0 && *q <= MAX_QUANTITY * priced_milli && (loose || q % 1000 == 0))
        .ok_or_else(|| {
            let kind = if loose { "up to three decimals" } else { "a whole number" };
            ApiError::field(400, &quantity_field, format!("{quantity_field}: from 1 to {MAX_QUANTITY}, {kind}"))
        })?;

    let mut modifiers: Vec<DemoOrderModifier> = Vec::new();
    let mut delta_paise = 0;
    let chosen = match line.get("modifiers") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(list)) => list.as_slice(),
        Some(_) => {
            let field = format!("items[{i}].modifiers");
            return Err(ApiError::field(400, &field, format!("{field}: a list of {{groupId, optionId}}")));
        }
    };
    for (j, choice) in chosen.iter().enumerate() {
        let group_field = format!("items[{i}].modifiers[{j}].groupId");
        let option_field = format!("items[{i}].modifiers[{j}].optionId");
        let group_id = choice.get("groupId").and_then(Value::as_str).unwrap_or("");
        let group = item.modifier_groups.iter().find(|g| g.id == group_id).ok_or_else(|| {
            ApiError::field(400, &group_field, format!("{group_field}: {} has no choice {group_id:?}", item.name))
        })?;
        let option_id = choice.get("optionId").and_then(Value::as_str).unwrap_or("");
        let option = group.options.iter().find(|o| o.id == option_id).ok_or_else(|| {
            ApiError::field(400, &option_field, format!("{option_field}: {} has no option {option_id:?}", group.name))
        })?;
        let taken = modifiers.iter().filter(|m| m.group_id == group.id);
        if modifiers.iter().any(|m| m.group_id == group.id && m.option_id == option.id)
            || (group.exclusive && taken.count() > 0)
        {
            return Err(ApiError::field(
                400,
                &group_field,
                format!("{group_field}: {} takes one option, given twice", group.name),
            ));
        }
        delta_paise += to_paise(option.price_delta);
        modifiers.push(DemoOrderModifier { group_id: group.id.clone(), option_id: option.id.clone() });
    }

    let unit_paise = to_paise(base_rupees) + delta_paise;
    let priced = priced_milli as i64;
    let line_total_paise = (unit_paise * quantity_milli as i64 + priced / 2).div_euclid(priced);
    for (name, expected) in [("unitPrice", unit_paise), ("lineTotal", line_total_paise)] {
        let Some(sent) = line.get(name).filter(|v| !v.is_null()) else { continue };
        let field = format!("items[{i}].{name}");
        let sent = money_paise(sent).ok_or_else(|| ApiError::field(400, &field, format!("{field}: not an amount")))?;
        if sent != expected {
            return Err(ApiError::field(
                400,
                &field,
                format!("{field}: {} costs {}, not {}", item.name, rupees(expected), rupees(sent)),
            ));
        }
    }
    Ok(PricedLine {
        line: DemoOrderLine {
            item_id,
            name: item.name.clone(),
            quantity: quantity_milli as f64 / 1000.0,
            price: unit_paise as f64 / 100.0,
            variant_id,
            modifiers,
        },
        line_total_paise,
    })
}

/// What one pack of a loose item holds, in thousandths of the item's unit,
/// when its pack size is a weight or volume of the same kind ("500 g" of an
/// item sold by the gram is 500 000; "1 kg" of one sold by the kg 1 000).
fn pack_content_milli(item: &DemoItem) -> Option<u64> {
    let text = item.pack_size.trim().to_ascii_lowercase();
    let split = text.find(|c: char| !c.is_ascii_digit() && c != '.')?;
    let amount: f64 = text[..split].trim().parse().ok()?;
    // The pack's unit and the item's, in grams or millilitres.
    let grams = |unit: &str| match unit {
        "g" | "ml" => Some((1.0, unit.starts_with('g'))),
        "kg" => Some((1000.0, true)),
        "l" | "litre" => Some((1000.0, false)),
        _ => None,
    };
    let (pack_scale, pack_weight) = grams(text[split..].trim())?;
    let (item_scale, item_weight) = grams(item.unit.as_str())?;
    if pack_weight != item_weight {
        return None;
    }
    let milli = (amount * pack_scale / item_scale * 1000.0).round();
    (milli >= 1.0).then_some(milli as u64)
}

/// A quantity (number or numeric text) in thousandths, if it has at most
/// three decimals.
fn quantity_milli(v: &Value) -> Option<u64> {
    let q = as_f64(v)?;
    let milli = (q * 1000.0).round();
    (q.is_finite() && q > 0.0 && (milli - q * 1000.0).abs() < 1e-6).then_some(milli as u64)
}

/// An amount in rupees (number or numeric text) in paise, if it has at
/// most two decimals.
fn money_paise(v: &Value) -> Option<i64> {
    let r = as_f64(v)?;
    let paise = (r * 100.0).round();
    (r.is_finite() && (paise - r * 100.0).abs() < 1e-6).then_some(paise as i64)
}

fn to_paise(rupees: f64) -> i64 {
    (rupees * 100.0).round() as i64
}

fn rupees(paise: i64) -> String {
    format!("{}.{:02}", paise / 100, paise % 100)
}

/// `POST /api/order/cancel`: the customer cancels. Cancelling a cancelled
/// order succeeds again (a retry); an order that has left the store (or
/// never will) is a 409.
pub(crate) fn cancel(st: &mut State, body: &Value) -> Result<Value, ApiError> {
    let id = required_order_id(body, "orderId")?;
    let order = st.data.find_order_mut(&id).ok_or_else(|| ApiError::new(404, format!("order {id} not found")))?;
    let number = order.id;
    if order.status != "canceled" {
        if !CANCELLABLE_STATUSES.contains(&order.status.as_str()) {
            return Err(ApiError::field(
                409,
                "orderId",
                format!("orderId: order {id} is {}; it can no longer be cancelled", order.status),
            ));
        }
        order.status = "canceled".to_string();
        st.push_status_update(
            json!({"orderId": number, "status": "canceled", "metadata": body, "source": body.get("source")}),
        );
    }
    Ok(json!({"success": true, "orderId": number, "status": "canceled"}))
}

/// The UPI collect link of the simulated Jupiter's payment gateway for an
/// order: a `upi://pay` intent for the amount due, the same for the same
/// order. A paid or cancelled order has nothing to pay (409).
pub(crate) fn payment_link(st: &State, id: &str) -> Result<Value, ApiError> {
    let order = st.data.find_order(id).ok_or_else(|| ApiError::new(404, format!("order {id} not found")))?;
    if order.status == "canceled" || order.payment_status == "paid" {
        let why = if order.status == "canceled" { "cancelled" } else { "paid" };
        return Err(ApiError::field(409, "orderId", format!("orderId: order {id} is {why}; nothing to pay")));
    }
    let amount = rupees(to_paise(order.order_amount));
    let reference = order.reference.clone().unwrap_or_else(|| order.id.to_string());
    let url = format!("upi://pay?pa={PAYEE_VPA}&pn=Mangwale&am={amount}&cu=INR&tr={reference}&tn=Order%20{}", order.id);
    Ok(json!({"success": true, "orderId": order.id, "url": url, "amount": order.order_amount}))
}

/// The payee of the simulated gateway's UPI links.
pub const PAYEE_VPA: &str = "mangwale.sim@upi";

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
