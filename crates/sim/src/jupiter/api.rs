//! Jupiter's API: `X-API-Key` on every request, camelCase JSON, errors as
//! `{"error": message}` (plus `"field"` when one field is at fault).

use chrono::{SecondsFormat, Utc};
use http::Method;
use serde_json::{Value, json};

use super::data::{DemoData, DemoItem, DemoOrder, DemoStore, national_digits};
use super::server::{ApiRequest, Reply};
use super::{Inner, orders, search};
use crate::clock::lock;

/// Catalog results when the request names no `limit`, and the most it may ask for.
const DEFAULT_SEARCH_LIMIT: usize = 25;
const MAX_SEARCH_LIMIT: usize = 100;

/// A client error.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub status: u16,
    pub message: String,
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into(), field: None }
    }

    pub fn field(status: u16, field: &str, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into(), field: Some(field.to_string()) }
    }

    fn reply(&self) -> Reply {
        let mut body = json!({"error": self.message});
        if let Some(field) = &self.field {
            body["field"] = json!(field);
        }
        Reply::json(self.status, &body)
    }
}

pub(crate) fn handle(inner: &Inner, req: &ApiRequest<'_>) -> Reply {
    if req.header("x-api-key") != Some(inner.api_key.as_str()) {
        return ApiError::new(401, "invalid api key").reply();
    }
    let answer = match req.segments().as_slice() {
        ["health"] => only(req, Method::GET, || Ok(json!({"status": "ok"}))),
        ["api", "order", "status"] => only(req, Method::POST, || {
            let body = json_body(req)?;
            orders::update_status(&mut lock(&inner.state), body)
        }),
        ["api", "order", "create"] => only(req, Method::POST, || {
            let body = json_body(req)?;
            orders::create(&mut lock(&inner.state), body, Utc::now())
        }),
        ["api", "order", "cancel"] => only(req, Method::POST, || {
            let body = json_body(req)?;
            orders::cancel(&mut lock(&inner.state), body)
        }),
        ["api", "order", id, "payment-link"] => {
            only(req, Method::POST, || orders::payment_link(&lock(&inner.state), id))
        }
        ["api", "order", id] => only(req, Method::GET, || order(&lock(&inner.state).data, id)),
        ["api", "stores"] => only(req, Method::GET, || stores_near(&lock(&inner.state).data, req)),
        ["api", "notifications", "ivr-event"] => only(req, Method::POST, || {
            let body = json_body(req)?;
            orders::notify(&mut lock(&inner.state), body)
        }),
        ["api", "orders", "active"] => only(req, Method::GET, || active_orders(&lock(&inner.state).data, req)),
        ["api", "customer", "lookup"] => only(req, Method::GET, || customer(&lock(&inner.state).data, req)),
        ["api", "rider", "lookup"] => only(req, Method::GET, || rider(&lock(&inner.state).data, req)),
        ["api", "catalog"] => only(req, Method::GET, || store_catalog(&lock(&inner.state).data, req)),
        ["api", "catalog", "search"] => only(req, Method::GET, || catalog_search(&lock(&inner.state).data, req)),
        _ => Err(ApiError::new(404, format!("no endpoint {}", req.path))),
    };
    match answer {
        Ok(body) => Reply::ok(&body),
        Err(e) => e.reply(),
    }
}

fn only(
    req: &ApiRequest<'_>,
    method: Method,
    handler: impl FnOnce() -> Result<Value, ApiError>,
) -> Result<Value, ApiError> {
    if *req.method == method { handler() } else { Err(ApiError::new(405, format!("{method} only"))) }
}

fn json_body<'a>(req: &'a ApiRequest<'_>) -> Result<&'a Value, ApiError> {
    match req.body {
        Ok(Some(body)) => Ok(body),
        Ok(None) => Err(ApiError::new(400, "a JSON body is required")),
        Err(e) => Err(ApiError::new(400, format!("invalid JSON: {e}"))),
    }
}

/// `GET /api/order/{id}`.
fn order(data: &DemoData, id: &str) -> Result<Value, ApiError> {
    let order = data.find_order(id);
    order.map(|o| jupiter_order(data, o)).ok_or_else(|| ApiError::new(404, format!("order {id} not found")))
}

/// `GET /api/orders/active?customer_id=|rider_id=|store_id=`: the party's
/// orders still under way, oldest first.
fn active_orders(data: &DemoData, req: &ApiRequest<'_>) -> Result<Value, ApiError> {
    let params = ["customer_id", "rider_id", "store_id"];
    let given: Vec<&str> = params.iter().copied().filter(|p| req.param(p).is_some()).collect();
    let [param] = given.as_slice() else {
        return Err(ApiError::new(400, "exactly one of customer_id, rider_id, store_id is required"));
    };
    let id: u64 = req
        .param(param)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| ApiError::field(400, param, format!("{param}: not an id")))?;
    let mut orders: Vec<&DemoOrder> = data
        .orders
        .iter()
        .filter(|o| match *param {
            "customer_id" => o.customer_id == id,
            "rider_id" => o.rider_id == Some(id),
            _ => o.store_id == id,
        })
        .filter(|o| !FINISHED.contains(&o.status.as_str()))
        .collect();
    orders.sort_by_key(|o| (o.created_at, o.id));
    Ok(json!({"orders": orders.into_iter().map(|o| jupiter_order(data, o)).collect::<Vec<_>>()}))
}

/// Stores listed when the request names no `limit`, and the most it may ask for.
const DEFAULT_STORES_LIMIT: usize = 20;
const MAX_STORES_LIMIT: usize = 100;

/// `GET /api/stores?lat=&lng=&limit=`: stores nearest the point first (by
/// straight-line distance), open and closed; without a point, by id.
fn stores_near(data: &DemoData, req: &ApiRequest<'_>) -> Result<Value, ApiError> {
    let coordinate = |name: &str, range: f64| -> Result<Option<f64>, ApiError> {
        req.param(name)
            .map(|v| {
                v.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite() && x.abs() <= range)
                    .ok_or_else(|| ApiError::field(400, name, format!("{name}: not a coordinate: {v}")))
            })
            .transpose()
    };
    let point = match (coordinate("lat", 90.0)?, coordinate("lng", 180.0)?) {
        (Some(lat), Some(lng)) => Some((lat, lng)),
        (None, None) => None,
        (Some(_), None) => return Err(ApiError::field(400, "lng", "lng: required with lat")),
        (None, Some(_)) => return Err(ApiError::field(400, "lat", "lat: required with lng")),
    };
    let limit = match req.param("limit") {
        None => DEFAULT_STORES_LIMIT,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|l| *l >= 1)
            .ok_or_else(|| ApiError::field(400, "limit", "limit: a positive number"))?
            .min(MAX_STORES_LIMIT),
    };
    let mut stores: Vec<(Option<f64>, &DemoStore)> = data
        .stores
        .iter()
        .map(|s| (point.map(|(lat, lng)| km_between((lat, lng), (s.latitude, s.longitude))), s))
        .collect();
    stores.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal).then(a.1.id.cmp(&b.1.id)));
    let stores: Vec<Value> = stores
        .into_iter()
        .take(limit)
        .map(|(km, s)| {
            json!({"id": s.id, "name": s.name, "aliases": s.aliases, "area": s.area, "open": s.active,
                   "distanceKm": km.map(|km| (km * 100.0).round() / 100.0), "language": s.owner_language,
                   "storeType": s.store_type})
        })
        .collect();
    Ok(json!({"stores": stores}))
}

/// Great-circle distance in km.
fn km_between((lat1, lon1): (f64, f64), (lat2, lon2): (f64, f64)) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let (dp, dl) = ((lat2 - lat1).to_radians(), (lon2 - lon1).to_radians());
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    6371.0 * 2.0 * a.sqrt().asin()
}

/// A quantity as a JSON number: whole ones as integers, as older readers
/// of the contract expect.
pub(crate) fn quantity_json(quantity: f64) -> Value {
    if quantity.fract() == 0.0 && quantity.abs() < 1e15 { json!(quantity as i64) } else { json!(quantity) }
}

/// Order statuses after which an order is no longer under way.
const FINISHED: &[&str] = &["delivered", "canceled", "failed", "refund_requested", "refunded"];

/// A rider's average speed through town, for the delivery estimate.
const RIDER_KMH: f64 = 20.0;

/// Minutes until an order on its way arrives: the straight-line distance
/// from the store at the rider's average speed, at least 5.
fn eta_minutes(store: &DemoStore, order: &DemoOrder) -> Option<u64> {
    let (lat, lon) = (order.delivery_address.latitude?, order.delivery_address.longitude?);
    let km = km_between((store.latitude, store.longitude), (lat, lon));
    Some(((km / RIDER_KMH * 60.0).ceil() as u64).max(5))
}

/// `GET /api/customer/lookup?phone=`.
fn customer(data: &DemoData, req: &ApiRequest<'_>) -> Result<Value, ApiError> {
    let phone = phone_param(req)?;
    let customer = data.customer_by_phone(phone).ok_or_else(|| ApiError::new(404, "customer not found"))?;
    let addresses: Vec<Value> = customer
        .addresses
        .iter()
        .map(|a| {
            json!({"id": a.id, "label": a.label, "address": a.address, "landmark": a.landmark,
                   "latitude": a.latitude, "longitude": a.longitude})
        })
        .collect();
    Ok(json!({
        "id": customer.id, "name": customer.name(), "phone": customer.phone, "language": customer.language,
        "addresses": addresses, "isRegistered": true,
    }))
}

/// `GET /api/rider/lookup?phone=`.
fn rider(data: &DemoData, req: &ApiRequest<'_>) -> Result<Value, ApiError> {
    let phone = phone_param(req)?;
    let rider = data.rider_by_phone(phone).ok_or_else(|| ApiError::new(404, "rider not found"))?;
    Ok(json!({"id": rider.id, "name": rider.name(), "phone": rider.phone}))
}

fn phone_param<'a>(req: &'a ApiRequest<'_>) -> Result<&'a str, ApiError> {
    let phone = req.param("phone").ok_or_else(|| ApiError::field(400, "phone", "phone is required"))?;
    match national_digits(phone) {
        Some(_) => Ok(phone),
        None => Err(ApiError::field(400, "phone", format!("phone: not an Indian phone number: {phone}"))),
    }
}

/// `GET /api/catalog/search?store_id=&q=&limit=`.
fn catalog_search(data: &DemoData, req: &ApiRequest<'_>) -> Result<Value, ApiError> {
    let store_id = req.param("store_id").ok_or_else(|| ApiError::field(400, "store_id", "store_id is required"))?;
    let store = store_id
        .parse()
        .ok()
        .and_then(|id| data.store(id))
        .ok_or_else(|| ApiError::new(404, format!("store {store_id} not found")))?;
    let limit = match req.param("limit") {
        None => DEFAULT_SEARCH_LIMIT,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|l| *l >= 1)
            .ok_or_else(|| ApiError::field(400, "limit", "limit: a positive number"))?
            .min(MAX_SEARCH_LIMIT),
    };
    let items = search::search(data.catalog(store.id), req.param("q").unwrap_or(""), limit);
    Ok(json!({"items": items.into_iter().map(catalog_item).collect::<Vec<_>>()}))
}

/// `GET /api/catalog?store_id=`: a store and its whole catalog, with each
/// item's variants and modifier groups, in catalog order.
fn store_catalog(data: &DemoData, req: &ApiRequest<'_>) -> Result<Value, ApiError> {
    let store_id = req.param("store_id").ok_or_else(|| ApiError::field(400, "store_id", "store_id is required"))?;
    let id: u64 =
        store_id.parse().map_err(|_| ApiError::field(400, "store_id", format!("store_id: not an id: {store_id}")))?;
    let store = data.store(id).ok_or_else(|| ApiError::new(404, format!("store {id} not found")))?;
    let items: Vec<Value> = data
        .catalog(store.id)
        .map(|item| {
            let mut value = catalog_item(item);
            value["variants"] = item
                .variants
                .iter()
                .map(|v| json!({"id": v.id, "name": v.name, "aliases": v.aliases, "price": v.price}))
                .collect();
            value["modifierGroups"] = item
                .modifier_groups
                .iter()
                .map(|g| {
                    let options: Vec<Value> = g
                        .options
                        .iter()
                        .map(|o| json!({"id": o.id, "name": o.name, "aliases": o.aliases, "priceDelta": o.price_delta}))
                        .collect();
                    json!({"id": g.id, "name": g.name, "exclusive": g.exclusive, "default": g.default, "options": options})
                })
                .collect();
            value
        })
        .collect();
    Ok(json!({
        "store": {
            "id": store.id, "name": store.name, "language": store.owner_language, "active": store.active,
            "storeType": store.store_type, "moduleType": store.module_type,
        },
        "items": items,
    }))
}

fn catalog_item(item: &DemoItem) -> Value {
    json!({
        "id": item.id, "storeId": item.store_id, "name": item.name, "aliases": item.aliases,
        "price": item.price, "unit": item.unit, "packSize": item.pack_size,
        "available": item.available, "category": item.category,
    })
}

/// An order in Jupiter's shape (what the incumbent's `transformPhpOrder` produced).
pub(crate) fn jupiter_order(data: &DemoData, order: &DemoOrder) -> Value {
    let store = data.store(order.store_id);
    let customer = data.customer(order.customer_id).map(|c| json!({"id": c.id, "name": c.name(), "phone": c.phone}));
    let rider =
        order.rider_id.and_then(|id| data.rider(id)).map(|r| json!({"id": r.id, "name": r.name(), "phone": r.phone}));
    let address = &order.delivery_address;
    let items: Vec<Value> = order
        .items
        .iter()
        .map(|l| {
            let modifiers: Vec<Value> =
                l.modifiers.iter().map(|m| json!({"groupId": m.group_id, "optionId": m.option_id})).collect();
            json!({"itemId": l.item_id, "name": l.name, "quantity": quantity_json(l.quantity), "price": l.price,
                   "variantId": l.variant_id, "modifiers": modifiers})
        })
        .collect();
    json!({
        "id": order.id,
        "orderId": order.id,
        "status": order.status,
        "amount": order.order_amount,
        "deliveryCharge": order.delivery_charge,
        "paymentMethod": order.payment_method,
        "paymentStatus": order.payment_status,
        "orderNote": order.order_note,
        "createdAt": order.created_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        "customer": customer,
        "store": store.map(|s| json!({"id": s.id, "name": s.name, "phone": s.phone, "address": s.address})),
        "deliveryMan": rider,
        "pickupAddress": store.map(pickup_address),
        "deliveryAddress": {
            "contact_person_name": address.contact_person_name,
            "contact_person_number": address.contact_person_number,
            "address_type": address.address_type,
            "address": address.address,
            "latitude": address.latitude.map(|l| l.to_string()),
            "longitude": address.longitude.map(|l| l.to_string()),
            "landmark": address.landmark,
        },
        "items": items,
        "etaMinutes": store.filter(|_| order.status == "picked_up").and_then(|s| eta_minutes(s, order)),
    })
}

/// Where the rider collects an order: the store, in the same shape as the
/// delivery address (coordinates as strings, as 6amMart stores them).
pub(crate) fn pickup_address(store: &DemoStore) -> Value {
    json!({
        "contact_person_name": store.name,
        "contact_person_number": store.phone,
        "address": store.address,
        "latitude": store.latitude.to_string(),
        "longitude": store.longitude.to_string(),
        "landmark": store.area,
    })
}
