//! Orders, stores, riders, customers and catalog items as the service uses
//! them, and the one place that maps Jupiter's camelCase and the PHP
//! backend's 6amMart shapes into them.
//!
//! Money is integer paise, phones are [`E164`]. The PHP shapes are lenient on
//! purpose: numbers arrive as strings (`"325.00"`), flags as 0/1, nested
//! objects as JSON strings, phone numbers in any Indian form.

use mangwale_core::{E164, Language, OrderId};
use serde::Serialize;
use serde_json::Value;

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Jupiter,
    Php,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub id: OrderId,
    /// 6amMart's `order_status` (`pending`, `confirmed`, …).
    pub status: String,
    pub amount_paise: i64,
    pub delivery_charge_paise: i64,
    /// `cash_on_delivery`, `digital_payment`, …
    pub payment_method: Option<String>,
    pub payment_status: Option<String>,
    pub note: Option<String>,
    pub customer: Option<Person>,
    pub store: Option<StoreRef>,
    pub rider: Option<Person>,
    pub pickup_address: Option<Address>,
    pub delivery_address: Option<Address>,
    pub items: Vec<OrderLine>,
    /// Jupiter's estimate of the minutes until delivery (`etaMinutes`), when
    /// it has one.
    pub eta_minutes: Option<u32>,
    pub source: Source,
}

impl Order {
    /// Whether the order is still under way (not delivered, cancelled,
    /// failed or refunded).
    pub fn is_active(&self) -> bool {
        !matches!(
            self.status.as_str(),
            "delivered" | "canceled" | "cancelled" | "failed" | "refund_requested" | "refunded"
        )
    }

    /// Cash to collect on delivery, or nothing for prepaid orders.
    pub fn is_cash_on_delivery(&self) -> bool {
        self.payment_method.as_deref() == Some("cash_on_delivery")
    }

    /// `Poha x1, Milk 500ml x2`: how the incumbent spoke the items.
    pub fn items_summary(&self) -> String {
        self.items.iter().map(|l| format!("{} x{}", l.name, l.quantity)).collect::<Vec<_>>().join(", ")
    }
}

/// A customer or rider as an order names them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Person {
    pub id: Option<u64>,
    pub name: String,
    pub phone: Option<E164>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoreRef {
    pub id: Option<u64>,
    pub name: String,
    pub phone: Option<E164>,
    pub address: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    pub contact_name: Option<String>,
    pub contact_phone: Option<E164>,
    pub address: String,
    pub landmark: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderLine {
    pub item_id: Option<u64>,
    pub name: String,
    pub quantity: u32,
    /// Price of one.
    pub price_paise: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Store {
    pub id: u64,
    pub name: String,
    pub phone: Option<E164>,
    pub email: Option<String>,
    pub address: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub active: bool,
    /// 6amMart's module: `grocery`, `food`, `pharmacy`, …
    pub module_type: Option<String>,
    pub minimum_order_paise: Option<i64>,
    /// `"20-30 min"`.
    pub delivery_time: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rider {
    pub id: u64,
    pub name: String,
    pub phone: Option<E164>,
    pub active: bool,
    pub vehicle_type: Option<String>,
    pub current_orders: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Customer {
    pub id: Option<u64>,
    pub name: Option<String>,
    pub phone: E164,
    pub language: Option<Language>,
    pub addresses: Vec<CustomerAddress>,
    /// False for a caller Jupiter does not know (a new customer).
    pub registered: bool,
}

impl Customer {
    /// A caller Jupiter has no record of.
    pub fn unregistered(phone: E164) -> Self {
        Customer { id: None, name: None, phone, language: None, addresses: Vec::new(), registered: false }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CustomerAddress {
    pub id: Option<u64>,
    pub label: Option<String>,
    pub address: String,
    pub landmark: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogItem {
    pub id: u64,
    pub store_id: u64,
    pub name: String,
    /// Other names people use: Hinglish, Devanagari (Jupiter only).
    pub aliases: Vec<String>,
    pub price_paise: i64,
    /// `kg`, `g`, `l`, `ml`, `piece`, `pack`, `plate`.
    pub unit: Option<String>,
    /// `"1 kg"`.
    pub pack_size: Option<String>,
    pub available: bool,
    pub category: Option<String>,
}

/// A store's whole catalog: Jupiter's `GET /api/catalog?store_id=`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreCatalog {
    pub store: CatalogStore,
    pub items: Vec<StoreCatalogItem>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogStore {
    pub id: u64,
    pub name: String,
    /// The language the store takes calls in (`hi`, `mr`, `en`), when Jupiter knows it.
    pub language: Option<String>,
    pub active: bool,
}

/// An item with the sizes it comes in and the choices it takes.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreCatalogItem {
    pub item: CatalogItem,
    pub variants: Vec<CatalogVariant>,
    pub modifier_groups: Vec<CatalogModifierGroup>,
}

/// One size of an item at its own price (half plate, 500 g box).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogVariant {
    pub id: String,
    pub name: String,
    pub aliases: Vec<String>,
    pub price_paise: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogModifierGroup {
    pub id: String,
    pub name: String,
    /// At most one option (spice level) rather than any number (extras).
    pub exclusive: bool,
    /// The option id that applies when the caller names none.
    pub default: Option<String>,
    pub options: Vec<CatalogModifierOption>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogModifierOption {
    pub id: String,
    pub name: String,
    pub aliases: Vec<String>,
    /// Added to the price of one unit.
    pub price_delta_paise: i64,
}

/// How a voice order is paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    CashOnDelivery,
    DigitalPayment,
}

impl PaymentMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentMethod::CashOnDelivery => "cash_on_delivery",
            PaymentMethod::DigitalPayment => "digital_payment",
        }
    }
}

/// An order to create in Jupiter (voice ordering).
#[derive(Debug, Clone, PartialEq)]
pub struct NewOrder {
    /// The same key always yields the first order (a retried create never
    /// orders twice).
    pub idempotency_key: String,
    pub customer_phone: E164,
    pub store_id: u64,
    pub lines: Vec<NewOrderLine>,
    /// The lines' totals added up (the delivery charge is Jupiter's to add):
    /// Jupiter recomputes it from its catalog and refuses an order whose
    /// prices differ, so the caller is never charged other than they heard.
    pub total_paise: i64,
    pub payment_method: PaymentMethod,
    pub delivery_address: Address,
    pub note: Option<String>,
}

/// One line of a [`NewOrder`], priced as the caller heard it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOrderLine {
    pub item_id: u64,
    /// The size, for an item sold in sizes.
    pub variant_id: Option<String>,
    /// In the item's unit, in thousandths (1.5 kg is 1500): sent as a
    /// decimal number.
    pub quantity_milli: u64,
    pub modifiers: Vec<NewOrderModifier>,
    /// The variant's (or item's) price plus the options' deltas, for one unit.
    pub unit_price_paise: i64,
    /// `unit_price × quantity`, rounded to the paisa (half up).
    pub line_total_paise: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrderModifier {
    pub group_id: String,
    pub option_id: String,
}

/// An open (or closed) store near a customer: Jupiter's `GET /api/stores`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NearbyStore {
    pub id: u64,
    pub name: String,
    /// Other names callers use (Hinglish, Devanagari).
    pub aliases: Vec<String>,
    pub area: Option<String>,
    /// From the point asked about; `None` when no point was given.
    pub distance_km: Option<f64>,
    /// Taking orders now.
    pub open: bool,
    pub language: Option<String>,
}

/// A link the customer pays an order by: Jupiter's
/// `POST /api/order/{id}/payment-link`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentLink {
    pub url: String,
    pub amount_paise: i64,
}

/// What Jupiter answered to a create.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedOrder {
    pub order_id: OrderId,
    pub amount_paise: i64,
    pub status: String,
}

// ---------------------------------------------------------------------------
// Lenient readers of JSON values

/// A number given as a number or as numeric text.
pub(crate) fn number(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub(crate) fn id(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Rupees (number or `"325.00"`) as paise.
pub(crate) fn paise(v: Option<&Value>) -> Option<i64> {
    number(v).filter(|r| r.is_finite()).map(|rupees| (rupees * 100.0).round() as i64)
}

pub(crate) fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `true`, `1` or `"1"`.
pub(crate) fn flag(v: Option<&Value>, default: bool) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_i64() != Some(0),
        Some(Value::String(s)) => matches!(s.trim(), "1" | "true" | "yes"),
        _ => default,
    }
}

pub(crate) fn phone(v: Option<&Value>) -> Option<E164> {
    text(v).and_then(|p| E164::parse(&p).ok())
}

/// An object, or a JSON string holding one (6amMart stores some columns so).
pub(crate) fn object(v: Option<&Value>) -> Option<Value> {
    match v? {
        Value::Object(_) => v.cloned(),
        Value::String(s) => serde_json::from_str::<Value>(s).ok().filter(Value::is_object),
        _ => None,
    }
}

fn joined_name(v: &Value) -> Option<String> {
    if let Some(name) = text(v.get("name")) {
        return Some(name);
    }
    let parts: Vec<String> = [text(v.get("f_name")), text(v.get("l_name"))].into_iter().flatten().collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

fn person(v: Option<&Value>) -> Option<Person> {
    let v = object(v)?;
    Some(Person { id: id(v.get("id")), name: joined_name(&v).unwrap_or_default(), phone: phone(v.get("phone")) })
}

fn address(v: Option<&Value>) -> Option<Address> {
    let v = object(v)?;
    Some(Address {
        contact_name: text(v.get("contact_person_name")).or_else(|| text(v.get("contactName"))),
        contact_phone: phone(v.get("contact_person_number")).or_else(|| phone(v.get("contactPhone"))),
        address: text(v.get("address"))?,
        landmark: text(v.get("landmark")),
        latitude: number(v.get("latitude")),
        longitude: number(v.get("longitude")),
    })
}

/// Jupiter may wrap a record: `{"success": true, "data": {...}}` or
/// `{"order": {...}}`.
pub(crate) fn unwrap_envelope<'a>(v: &'a Value, key: &str) -> &'a Value {
    for name in ["data", key] {
        if let Some(inner) = v.get(name).filter(|i| i.is_object())
            && v.get("id").is_none()
        {
            return inner;
        }
    }
    v
}

// ---------------------------------------------------------------------------
// Mappings

/// An order in either shape: PHP (`order_amount`, `order_status`, …) or
/// Jupiter's camelCase. `None` when it has no usable id.
pub fn order_from_json(v: &Value) -> Option<Order> {
    let v = unwrap_envelope(v, "order");
    if v.get("order_amount").is_some() || v.get("order_status").is_some() {
        order_from_php(v)
    } else {
        order_from_jupiter(v)
    }
}

fn order_from_jupiter(v: &Value) -> Option<Order> {
    let order_id = text(v.get("orderId")).or_else(|| text(v.get("id")))?;
    let items = v
        .get("items")
        .and_then(Value::as_array)
        .map(|lines| {
            lines
                .iter()
                .filter_map(|l| {
                    Some(OrderLine {
                        item_id: id(l.get("itemId")).or_else(|| id(l.get("id"))),
                        name: text(l.get("name"))?,
                        quantity: id(l.get("quantity")).unwrap_or(1) as u32,
                        price_paise: paise(l.get("price")).unwrap_or(0),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let store = object(v.get("store")).map(|s| StoreRef {
        id: id(s.get("id")),
        name: text(s.get("name")).unwrap_or_default(),
        phone: phone(s.get("phone")),
        address: text(s.get("address")),
    });
    Some(Order {
        id: OrderId::parse(&order_id).ok()?,
        status: text(v.get("status")).unwrap_or_else(|| "pending".into()),
        amount_paise: paise(v.get("amount")).or_else(|| paise(v.get("orderAmount"))).unwrap_or(0),
        delivery_charge_paise: paise(v.get("deliveryCharge")).unwrap_or(0),
        payment_method: text(v.get("paymentMethod")),
        payment_status: text(v.get("paymentStatus")),
        note: text(v.get("orderNote")),
        customer: person(v.get("customer")),
        store,
        rider: person(v.get("deliveryMan")).or_else(|| person(v.get("rider"))),
        pickup_address: address(v.get("pickupAddress")),
        delivery_address: address(v.get("deliveryAddress")),
        items,
        eta_minutes: id(v.get("etaMinutes")).and_then(|m| u32::try_from(m).ok()),
        source: Source::Jupiter,
    })
}

fn order_from_php(v: &Value) -> Option<Order> {
    let order_id = text(v.get("id"))?;
    let items = v
        .get("details")
        .and_then(Value::as_array)
        .map(|lines| {
            lines
                .iter()
                .filter_map(|l| {
                    let item = object(l.get("food")).or_else(|| object(l.get("product_details")));
                    let name = item.as_ref().and_then(|i| text(i.get("name")))?;
                    Some(OrderLine {
                        item_id: id(l.get("item_id")).or_else(|| item.as_ref().and_then(|i| id(i.get("id")))),
                        name,
                        quantity: id(l.get("quantity")).unwrap_or(1) as u32,
                        price_paise: paise(l.get("price")).unwrap_or(0),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let store = object(v.get("store")).map(|s| StoreRef {
        id: id(s.get("id")),
        name: text(s.get("name")).unwrap_or_default(),
        phone: phone(s.get("phone")),
        address: text(s.get("address")),
    });
    let delivery_address = address(v.get("receiver_details")).or_else(|| address(v.get("delivery_address")));
    Some(Order {
        id: OrderId::parse(&order_id).ok()?,
        status: text(v.get("order_status")).unwrap_or_else(|| "pending".into()),
        amount_paise: paise(v.get("order_amount")).unwrap_or(0),
        delivery_charge_paise: paise(v.get("delivery_charge")).unwrap_or(0),
        payment_method: text(v.get("payment_method")),
        payment_status: text(v.get("payment_status")),
        note: text(v.get("order_note")),
        customer: person(v.get("customer")),
        store,
        rider: person(v.get("delivery_man")),
        pickup_address: address(v.get("sender_details")),
        delivery_address,
        items,
        eta_minutes: None,
        source: Source::Php,
    })
}

/// A PHP store (`/api/v1/stores/details/{id}`, `/stores/search`).
pub fn store_from_json(v: &Value) -> Option<Store> {
    let v = unwrap_envelope(v, "store");
    Some(Store {
        id: id(v.get("id"))?,
        name: text(v.get("name"))?,
        phone: phone(v.get("phone")),
        email: text(v.get("email")),
        address: text(v.get("address")),
        latitude: number(v.get("latitude")),
        longitude: number(v.get("longitude")),
        active: flag(v.get("active").or_else(|| v.get("status")), true),
        module_type: text(v.get("module_type")),
        minimum_order_paise: paise(v.get("minimum_order")),
        delivery_time: text(v.get("delivery_time")),
    })
}

/// A PHP delivery man, or Jupiter's `{id, name, phone}` rider lookup.
pub fn rider_from_json(v: &Value) -> Option<Rider> {
    let v = unwrap_envelope(v, "rider");
    Some(Rider {
        id: id(v.get("id"))?,
        name: joined_name(v).unwrap_or_default(),
        phone: phone(v.get("phone")),
        active: flag(v.get("active"), true),
        vehicle_type: text(v.get("vehicle_type")),
        current_orders: id(v.get("current_orders")).map(|n| n as u32),
    })
}

/// Jupiter's customer lookup. `asked` is the number we looked up, used when
/// the answer carries none we can read.
pub fn customer_from_json(v: &Value, asked: &E164) -> Customer {
    let v = unwrap_envelope(v, "customer");
    let addresses = v
        .get("addresses")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|a| {
                    Some(CustomerAddress {
                        id: id(a.get("id")),
                        label: text(a.get("label")),
                        address: text(a.get("address"))?,
                        landmark: text(a.get("landmark")),
                        latitude: number(a.get("latitude")),
                        longitude: number(a.get("longitude")),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Customer {
        id: id(v.get("id")),
        name: joined_name(v),
        phone: phone(v.get("phone")).unwrap_or_else(|| asked.clone()),
        language: text(v.get("language")).and_then(|l| l.parse().ok()),
        addresses,
        registered: flag(v.get("isRegistered"), true),
    }
}

/// A catalog item in Jupiter's shape, or a PHP item (no aliases).
pub fn catalog_item_from_json(v: &Value) -> Option<CatalogItem> {
    let aliases = v
        .get("aliases")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    Some(CatalogItem {
        id: id(v.get("id"))?,
        store_id: id(v.get("storeId")).or_else(|| id(v.get("store_id")))?,
        name: text(v.get("name"))?,
        aliases,
        price_paise: paise(v.get("price"))?,
        unit: text(v.get("unit")),
        pack_size: text(v.get("packSize")),
        available: flag(v.get("available"), true),
        category: text(v.get("category")).or_else(|| text(v.get("category_name"))),
    })
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// A list field: absent or `null` is empty; anything else must be an array
/// whose every element parses, else the whole answer is bad (`Err` names
/// the element), so that no variant or option is silently dropped.
fn each<T>(v: Option<&Value>, what: &str, parse: impl Fn(&Value) -> Option<T>) -> Result<Vec<T>, String> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(list)) => {
            list.iter().enumerate().map(|(i, e)| parse(e).ok_or_else(|| format!("{what}[{i}] is malformed"))).collect()
        }
        Some(_) => Err(format!("{what} is not a list")),
    }
}

/// Jupiter's `{"store": {...}, "items": [...]}`; `Err` says which part is malformed.
pub fn store_catalog_from_json(v: &Value) -> Result<StoreCatalog, String> {
    let s = v.get("store").ok_or("no store")?;
    let store = CatalogStore {
        id: id(s.get("id")).ok_or("store.id is missing")?,
        name: text(s.get("name")).ok_or("store.name is missing")?,
        language: text(s.get("language")),
        active: flag(s.get("active"), true),
    };
    let items = each(v.get("items"), "items", |item| {
        let variants = each(item.get("variants"), "variants", |variant| {
            Some(CatalogVariant {
                id: text(variant.get("id"))?,
                name: text(variant.get("name"))?,
                aliases: strings(variant.get("aliases")),
                price_paise: paise(variant.get("price"))?,
            })
        })
        .ok()?;
        let modifier_groups = each(item.get("modifierGroups"), "modifierGroups", |group| {
            let options = each(group.get("options"), "options", |option| {
                Some(CatalogModifierOption {
                    id: text(option.get("id"))?,
                    name: text(option.get("name"))?,
                    aliases: strings(option.get("aliases")),
                    price_delta_paise: paise(option.get("priceDelta")).unwrap_or(0),
                })
            })
            .ok()?;
            Some(CatalogModifierGroup {
                id: text(group.get("id"))?,
                name: text(group.get("name"))?,
                exclusive: group.get("exclusive")?.as_bool()?,
                default: text(group.get("default")),
                options,
            })
        })
        .ok()?;
        Some(StoreCatalogItem { item: catalog_item_from_json(item)?, variants, modifier_groups })
    })?;
    Ok(StoreCatalog { store, items })
}

/// `{"stores": [...]}` of `GET /api/stores`; a store without id or name is
/// a bad answer, not dropped.
pub fn nearby_stores_from_json(v: &Value) -> Result<Vec<NearbyStore>, String> {
    let list = v.get("stores").and_then(Value::as_array).ok_or("an answer without stores")?;
    list.iter()
        .enumerate()
        .map(|(i, s)| {
            Ok(NearbyStore {
                id: id(s.get("id")).ok_or(format!("stores[{i}].id is missing"))?,
                name: text(s.get("name")).ok_or(format!("stores[{i}].name is missing"))?,
                aliases: s
                    .get("aliases")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(|x| text(Some(x))).collect())
                    .unwrap_or_default(),
                area: text(s.get("area")),
                distance_km: number(s.get("distanceKm")),
                open: s.get("open").and_then(Value::as_bool).unwrap_or(false),
                language: text(s.get("language")),
            })
        })
        .collect()
}

pub fn payment_link_from_json(v: &Value) -> Option<PaymentLink> {
    Some(PaymentLink { url: text(v.get("url"))?, amount_paise: paise(v.get("amount")).unwrap_or(0) })
}

pub fn created_order_from_json(v: &Value) -> Option<CreatedOrder> {
    Some(CreatedOrder {
        order_id: OrderId::parse(&text(v.get("orderId"))?).ok()?,
        amount_paise: paise(v.get("orderAmount")).unwrap_or(0),
        status: text(v.get("status")).unwrap_or_else(|| "pending".into()),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_php_order_with_strings_for_numbers_and_json_strings_maps() {
        let php = json!({
            "id": 100045, "order_amount": "325.00", "delivery_charge": "20.00", "order_status": "pending",
            "payment_method": "cash_on_delivery", "payment_status": "unpaid", "order_note": null,
            "customer": {"id": 890, "f_name": "Rahul", "l_name": "Patil", "phone": "09876543210"},
            "store": {"id": 67, "name": "Krishna Kirana", "phone": "919822012345", "address": "College Road"},
            "delivery_man": {"id": 5, "f_name": "Sunil", "l_name": "Pawar", "phone": "+919850011223"},
            "sender_details": "{\"contact_person_name\":\"Krishna Kirana\",\"address\":\"Shop 12, College Road\",\"latitude\":\"20.0\",\"longitude\":\"73.7\"}",
            "receiver_details": {"contact_person_name": "Rahul", "contact_person_number": "9876543210",
                                 "address": "Flat 4B, Shivaji Nagar", "landmark": null, "latitude": "20.01"},
            "details": [
                {"item_id": 7, "price": "25.00", "quantity": 1, "product_details": "{\"id\":7,\"name\":\"Poha\"}"},
                {"item_id": 9, "price": 30, "quantity": "2", "food": {"id": 9, "name": "Milk 500ml"}},
                {"item_id": 10, "price": "1.00", "quantity": 1}
            ]
        });
        let order = order_from_json(&php).unwrap();
        assert_eq!(order.id.as_str(), "100045");
        assert_eq!(order.amount_paise, 32_500);
        assert_eq!(order.delivery_charge_paise, 2_000);
        assert!(order.is_cash_on_delivery());
        assert_eq!(order.customer.as_ref().unwrap().name, "Rahul Patil");
        assert_eq!(order.customer.as_ref().unwrap().phone.as_ref().unwrap().as_str(), "+919876543210");
        assert_eq!(order.store.as_ref().unwrap().phone.as_ref().unwrap().as_str(), "+919822012345");
        assert_eq!(order.rider.as_ref().unwrap().name, "Sunil Pawar");
        assert_eq!(order.pickup_address.as_ref().unwrap().address, "Shop 12, College Road");
        assert_eq!(order.pickup_address.as_ref().unwrap().latitude, Some(20.0));
        let drop = order.delivery_address.as_ref().unwrap();
        assert_eq!(drop.contact_phone.as_ref().unwrap().as_str(), "+919876543210");
        assert_eq!(drop.landmark, None);
        assert_eq!(order.items.len(), 2, "a line without a name is skipped");
        assert_eq!(order.items[1].quantity, 2);
        assert_eq!(order.items_summary(), "Poha x1, Milk 500ml x2");
        assert_eq!(order.source, Source::Php);
    }

    #[test]
    fn a_jupiter_order_maps_and_envelopes_are_unwrapped() {
        let jupiter = json!({"success": true, "data": {
            "id": 12345, "status": "confirmed", "amount": 325, "paymentMethod": "digital_payment",
            "store": {"id": 67, "name": "Sharma Kirana", "phone": "+919822012345"},
            "deliveryMan": null,
            "items": [{"name": "Butter Chicken", "quantity": 1, "price": 280.0}]
        }});
        let order = order_from_json(&jupiter).unwrap();
        assert_eq!(order.id.as_str(), "12345");
        assert_eq!(order.status, "confirmed");
        assert_eq!(order.amount_paise, 32_500);
        assert!(!order.is_cash_on_delivery());
        assert_eq!(order.rider, None);
        assert_eq!(order.items[0].price_paise, 28_000);
        assert_eq!(order.source, Source::Jupiter);
        assert_eq!(order_from_json(&json!({"status": "x"})), None, "no id, no order");
    }

    #[test]
    fn stores_riders_customers_and_items_map_from_either_shape() {
        let store = store_from_json(&json!({"id": "4", "name": "Gupta Medical", "phone": "9822000004",
            "active": 0, "minimum_order": "100.00", "module_type": "pharmacy"}))
        .unwrap();
        assert_eq!((store.id, store.active, store.minimum_order_paise), (4, false, Some(10_000)));
        assert_eq!(store.phone.unwrap().as_str(), "+919822000004");

        let rider = rider_from_json(&json!({"id": 5, "f_name": "Sunil", "l_name": "Pawar", "phone": "0985001122 3",
            "active": "1", "current_orders": 2}))
        .unwrap();
        assert_eq!((rider.name.as_str(), rider.active, rider.current_orders), ("Sunil Pawar", true, Some(2)));
        assert_eq!(
            rider_from_json(&json!({"id": 3, "name": "Rahul", "phone": "+919988776655"})).unwrap().name,
            "Rahul"
        );

        let asked = E164::parse("9876543210").unwrap();
        let customer = customer_from_json(
            &json!({"id": 890, "name": "Rahul", "language": "mr",
                    "addresses": [{"id": 1, "label": "home", "address": "Flat 4B"}, {"label": "no address"}]}),
            &asked,
        );
        assert_eq!(customer.language, Some(Language::Mr));
        assert_eq!(customer.phone, asked);
        assert_eq!(customer.addresses.len(), 1);
        assert!(customer.registered);

        let item = catalog_item_from_json(&json!({"id": 11, "store_id": "2", "name": "Toor Dal", "price": "145.50",
            "available": 1, "category_name": "Dal"}))
        .unwrap();
        assert_eq!((item.store_id, item.price_paise, item.category.as_deref()), (2, 14_550, Some("Dal")));
        assert!(item.aliases.is_empty());
    }

    #[test]
    fn a_store_catalog_keeps_every_variant_and_option_or_is_refused() {
        let item = |variants: Value| {
            json!({"store": {"id": 7, "name": "Godavari Misal House", "language": "mr"},
                   "items": [{"id": 7001, "storeId": 7, "name": "Misal Pav", "price": 70.0, "unit": "plate",
                              "variants": variants,
                              "modifierGroups": [{"id": "spice", "name": "Spice", "exclusive": true, "default": "medium",
                                                  "options": [{"id": "medium", "name": "Medium", "priceDelta": 0},
                                                              {"id": "farsan", "name": "Extra farsan", "priceDelta": "10.00"}]}]}]})
        };
        let catalog =
            store_catalog_from_json(&item(json!([{"id": "half", "name": "Half plate", "price": 45}]))).unwrap();
        let misal = &catalog.items[0];
        assert_eq!(
            (misal.variants[0].price_paise, misal.modifier_groups[0].options[1].price_delta_paise),
            (4500, 1000)
        );
        assert_eq!(catalog.store.language.as_deref(), Some("mr"));
        assert!(store_catalog_from_json(&item(json!(null))).unwrap().items[0].variants.is_empty());
        let error = store_catalog_from_json(&item(json!([{"id": "half", "name": "Half plate"}]))).unwrap_err();
        assert_eq!(error, "items[0] is malformed", "a variant without a price is not dropped");
        assert_eq!(store_catalog_from_json(&item(json!("half"))).unwrap_err(), "items[0] is malformed");
        assert_eq!(store_catalog_from_json(&json!({"items": []})).unwrap_err(), "no store");
    }
}
