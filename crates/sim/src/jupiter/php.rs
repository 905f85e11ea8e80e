//! The PHP backend (6amMart): snake_case, money as strings, flags as 0/1,
//! some nested objects as JSON strings, phone numbers in whatever form the
//! row was saved in. No API key. Errors are 6amMart's
//! `{"errors": [{"code", "message"}]}`: 404 for a missing record, 403 for a
//! failed validation (6amMart's choice, not 422).

use http::Method;
use serde_json::{Value, json};

use super::Inner;
use super::api::pickup_address;
use super::data::{DemoCustomer, DemoData, DemoItem, DemoOrder, DemoRider, DemoStore};
use super::server::{ApiRequest, Reply};
use crate::clock::lock;

const DEFAULT_ITEM_LIMIT: usize = 10;

/// What Laravel answers at `/` on an API-only deployment.
const NOT_FOUND_PAGE: &str = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Not Found</title></head>\
<body><div class=\"flex-center\"><div class=\"code\">404</div><div class=\"message\">Not Found</div></div></body></html>\n";

pub(crate) fn handle(inner: &Inner, req: &ApiRequest<'_>) -> Reply {
    let segments = req.segments();
    if segments.is_empty() {
        return Reply::html(404, NOT_FOUND_PAGE);
    }
    if *req.method != Method::GET {
        return Reply::json(
            405,
            &json!({"message": format!("The {} method is not supported for this route.", req.method)}),
        );
    }
    let st = lock(&inner.state);
    let data = &st.data;
    let answer = match segments.as_slice() {
        ["api", "v1", "customer", "order", "details"] => order_details(data, req),
        ["api", "v1", "stores", "details", id] => {
            record(id.parse().ok().and_then(|id| data.store(id)), "store", php_store)
        }
        ["api", "v1", "stores", "search"] => {
            phone(req).map(|phone| Value::Array(data.stores_by_phone(phone).into_iter().map(php_store).collect()))
        }
        ["api", "v1", "delivery-man", "details", id] => {
            record(id.parse().ok().and_then(|id| data.rider(id)), "delivery_man", |r| php_rider(data, r))
        }
        ["api", "v1", "delivery-man", "search"] => phone(req)
            .map(|phone| Value::Array(data.rider_by_phone(phone).into_iter().map(|r| php_rider(data, r)).collect())),
        ["api", "v1", "items", "search"] => items_search(data, req),
        _ => return Reply::json(404, &json!({"message": format!("The route {} could not be found.", req.path)})),
    };
    match answer {
        Ok(body) => Reply::ok(&body),
        Err((status, code, message)) => Reply::json(status, &json!({"errors": [{"code": code, "message": message}]})),
    }
}

type PhpResult = Result<Value, (u16, &'static str, String)>;

fn record<T>(found: Option<&T>, code: &'static str, shape: impl FnOnce(&T) -> Value) -> PhpResult {
    found.map(shape).ok_or((404, code, format!("{} not found!", code.replace('_', " "))))
}

fn required<'a>(req: &'a ApiRequest<'_>, name: &'static str) -> Result<&'a str, (u16, &'static str, String)> {
    req.param(name).ok_or((403, name, format!("The {} field is required.", name.replace('_', " "))))
}

fn phone<'a>(req: &'a ApiRequest<'_>) -> Result<&'a str, (u16, &'static str, String)> {
    required(req, "phone")
}

/// `GET /api/v1/customer/order/details?order_id=`.
fn order_details(data: &DemoData, req: &ApiRequest<'_>) -> PhpResult {
    let id = required(req, "order_id")?;
    record(data.find_order(id), "order", |o| php_order(data, o))
}

/// `GET /api/v1/items/search?store_id=&name=&limit=`: a `LIKE '%name%'`
/// on item names, as 6amMart does — no aliases, no ranking.
fn items_search(data: &DemoData, req: &ApiRequest<'_>) -> PhpResult {
    let store_id: u64 =
        required(req, "store_id")?.parse().map_err(|_| (403, "store_id", "The store id must be an integer.".into()))?;
    let name = req.param("name").unwrap_or("").to_lowercase();
    let limit = req.param("limit").and_then(|l| l.parse().ok()).filter(|l| *l >= 1).unwrap_or(DEFAULT_ITEM_LIMIT);
    let matching: Vec<&DemoItem> = data.catalog(store_id).filter(|i| i.name.to_lowercase().contains(&name)).collect();
    Ok(json!({
        "total_size": matching.len(),
        "limit": limit.to_string(),
        "offset": "1",
        "products": matching.into_iter().take(limit).map(php_item).collect::<Vec<_>>(),
    }))
}

/// An order as `/api/v1/customer/order/details` sends it.
fn php_order(data: &DemoData, order: &DemoOrder) -> Value {
    let store = data.store(order.store_id);
    let food = store.is_some_and(|s| s.module_type == "food");
    let details: Vec<Value> = order
        .items
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let item = json!({"id": line.item_id, "name": line.name, "price": line.price,
                              "unit": data.item(line.item_id).map(|it| it.unit.as_str())});
            let mut detail = json!({
                "id": order.id * 100 + i as u64 + 1,
                "item_id": line.item_id,
                "order_id": order.id,
                "price": money(line.price),
                "quantity": super::api::quantity_json(line.quantity),
                "discount_on_item": "0.00",
                "tax_amount": "0.00",
                "variation": "[]",
                "add_ons": "[]",
            });
            if food {
                detail["food"] = item;
            } else {
                detail["product_details"] = maybe_string(item, order.php_json_strings);
            }
            detail
        })
        .collect();
    let address = &order.delivery_address;
    let receiver = json!({
        "contact_person_name": address.contact_person_name,
        "contact_person_number": php_phone(&address.contact_person_number, order.customer_id),
        "address_type": address.address_type,
        "address": address.address,
        "landmark": address.landmark,
        "latitude": address.latitude.map(|l| l.to_string()),
        "longitude": address.longitude.map(|l| l.to_string()),
    });
    let sender = store.map(pickup_address).map(|mut s| {
        if let Some(phone) = s["contact_person_number"].as_str() {
            s["contact_person_number"] = json!(php_phone(phone, order.store_id));
        }
        s
    });
    json!({
        "id": order.id,
        "user_id": order.customer_id,
        "store_id": order.store_id,
        "delivery_man_id": order.rider_id,
        "order_amount": money(order.order_amount),
        "coupon_discount_amount": "0.00",
        "total_tax_amount": "0.00",
        "delivery_charge": money(order.delivery_charge),
        "payment_status": order.payment_status,
        "order_status": order.status,
        "payment_method": order.payment_method,
        "transaction_reference": null,
        "order_type": "delivery",
        "order_note": order.order_note,
        "processing_time": order.processing_time.map(|m| m.to_string()),
        "module_type": store.map(|s| s.module_type.as_str()),
        "created_at": laravel_time(order.created_at),
        "updated_at": laravel_time(order.created_at),
        "delivery_address": receiver,
        "sender_details": sender.map(|s| maybe_string(s, order.php_json_strings)),
        "receiver_details": maybe_string(receiver.clone(), order.php_json_strings),
        "customer": data.customer(order.customer_id).map(php_customer),
        "store": store.map(php_store),
        "delivery_man": order.rider_id.and_then(|id| data.rider(id)).map(|r| php_person(r.id, &r.f_name, &r.l_name, &r.phone)),
        "details": details,
    })
}

fn php_customer(c: &DemoCustomer) -> Value {
    php_person(c.id, &c.f_name, &c.l_name, &c.phone)
}

fn php_person(id: u64, f_name: &str, l_name: &str, phone: &str) -> Value {
    json!({"id": id, "f_name": f_name, "l_name": l_name, "phone": php_phone(phone, id)})
}

fn php_store(s: &DemoStore) -> Value {
    json!({
        "id": s.id,
        "name": s.name,
        "phone": php_phone(&s.phone, s.id),
        "email": s.email,
        "address": s.address,
        "latitude": s.latitude.to_string(),
        "longitude": s.longitude.to_string(),
        "logo": format!("store-{}.png", s.id),
        "cover_photo": format!("store-{}-cover.png", s.id),
        "avg_rating": s.avg_rating,
        "delivery_time": s.delivery_time,
        "minimum_order": s.minimum_order,
        "delivery_charge": s.delivery_charge,
        "active": u8::from(s.active),
        "module_type": s.module_type,
    })
}

fn php_rider(data: &DemoData, r: &DemoRider) -> Value {
    json!({
        "id": r.id,
        "f_name": r.f_name,
        "l_name": r.l_name,
        "phone": php_phone(&r.phone, r.id),
        "email": format!("{}.{}@example.com", r.f_name.to_lowercase(), r.l_name.to_lowercase()),
        "image": format!("dm-{}.png", r.id),
        "avg_rating": r.avg_rating,
        "vehicle_type": r.vehicle_type,
        "current_orders": data.current_orders(r.id),
        "active": u8::from(r.active),
    })
}

fn php_item(i: &DemoItem) -> Value {
    json!({
        "id": i.id,
        "store_id": i.store_id,
        "name": i.name,
        "price": money(i.price),
        "unit": i.unit,
        "available": u8::from(i.available),
        "category_name": i.category,
        "image": format!("item-{}.png", i.id),
    })
}

/// Rupees as 6amMart's decimal columns serialise: `"325.00"`.
fn money(rupees: f64) -> String {
    format!("{rupees:.2}")
}

/// The PHP database holds numbers as they were typed: by the record's id,
/// 10 digits, `+91…`, `91…` or `0…`, so clients must parse every form.
fn php_phone(e164: &str, record_id: u64) -> String {
    let Some(national) = e164.strip_prefix("+91") else { return e164.to_string() };
    match record_id % 4 {
        0 => national.to_string(),
        1 => e164.to_string(),
        2 => format!("91{national}"),
        _ => format!("0{national}"),
    }
}

fn maybe_string(value: Value, as_string: bool) -> Value {
    if as_string { Value::String(value.to_string()) } else { value }
}

fn laravel_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}
