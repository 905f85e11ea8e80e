//! The simulator's database: stores with their catalogs, riders, customers
//! and orders, shaped like the PHP backend's tables (numeric ids, money in
//! rupees), and the Nashik demo data set it starts with.

use chrono::{DateTime, Utc};
use mangwale_core::E164;
use serde::{Deserialize, Serialize};

/// The Nashik demo data set (`crates/sim/data/nashik-demo.json`).
pub const NASHIK_DEMO_JSON: &str = include_str!("../../data/nashik-demo.json");

/// Everything the simulated Jupiter and PHP backend know.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DemoData {
    pub stores: Vec<DemoStore>,
    pub riders: Vec<DemoRider>,
    pub customers: Vec<DemoCustomer>,
    /// Every store's catalog, in one list (see [`DemoItem::store_id`]).
    pub items: Vec<DemoItem>,
    pub orders: Vec<DemoOrder>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemoStore {
    pub id: u64,
    pub name: String,
    /// E.164.
    pub phone: String,
    pub email: String,
    /// The full postal address.
    pub address: String,
    /// The neighbourhood (`College Road`, `Panchavati`, …).
    pub area: String,
    pub latitude: f64,
    pub longitude: f64,
    /// What kind of shop: `kirana`, `restaurant`, `sweets`, `bakery`,
    /// `pharmacy`, `fruits_vegetables`.
    pub store_type: String,
    /// The 6amMart module: `grocery`, `food` or `pharmacy`. Items of `food`
    /// stores appear under `food` in PHP orders, others under `product_details`.
    pub module_type: String,
    /// The language the owner takes calls in: `hi`, `mr` or `en`.
    pub owner_language: String,
    /// As 6amMart shows it: `"20-30 min"`.
    pub delivery_time: String,
    /// Rupees.
    pub minimum_order: f64,
    /// Rupees, added to every order.
    pub delivery_charge: f64,
    pub avg_rating: f64,
    /// An inactive store takes no orders.
    pub active: bool,
    /// Other names callers use ("godavari", "गोदावरी").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
}

/// A catalog entry of one store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemoItem {
    pub id: u64,
    pub store_id: u64,
    /// English.
    pub name: String,
    /// What people call it: Hinglish, Devanagari (Hindi and Marathi). Only
    /// Jupiter's catalog search sees them; the PHP search matches names only.
    pub aliases: Vec<String>,
    /// Rupees per pack.
    pub price: f64,
    /// `kg`, `g`, `l`, `ml`, `piece`, `pack` or `plate`.
    pub unit: String,
    /// `"1 kg"`, `"500 g"`, `"1 plate"`, `"strip of 10"`.
    pub pack_size: String,
    pub category: String,
    pub available: bool,
    /// Sizes the item comes in (half or full plate, 250 g / 500 g / 1 kg
    /// box), each at its own price; none when it comes in one size.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<DemoVariant>,
    /// Choices the kitchen takes with the item (spice level, no onion,
    /// extra butter).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modifier_groups: Vec<DemoModifierGroup>,
}

/// One size of an item, at its own price (not a difference).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemoVariant {
    /// Unique within the item (`half`, `500g`).
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Rupees.
    pub price: f64,
}

/// A set of choices for an item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemoModifierGroup {
    /// Unique within the item (`spice`, `onion`, `extras`).
    pub id: String,
    pub name: String,
    /// At most one option (spice level) rather than any number (extras).
    pub exclusive: bool,
    /// The option that applies when the caller names none.
    #[serde(default)]
    pub default: Option<String>,
    pub options: Vec<DemoModifierOption>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemoModifierOption {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Rupees added to the price of one unit.
    pub price_delta: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemoRider {
    pub id: u64,
    pub f_name: String,
    pub l_name: String,
    /// E.164.
    pub phone: String,
    /// `bike` or `scooter`.
    pub vehicle_type: String,
    pub language: String,
    pub avg_rating: f64,
    pub active: bool,
}

impl DemoRider {
    pub fn name(&self) -> String {
        full_name(&self.f_name, &self.l_name)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemoCustomer {
    pub id: u64,
    pub f_name: String,
    pub l_name: String,
    /// E.164.
    pub phone: String,
    /// `hi`, `mr`, `en` or `hinglish`.
    pub language: String,
    pub addresses: Vec<DemoAddress>,
}

impl DemoCustomer {
    pub fn name(&self) -> String {
        full_name(&self.f_name, &self.l_name)
    }
}

/// A saved address of a customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemoAddress {
    pub id: u64,
    /// `home`, `work` or `other`.
    pub label: String,
    /// Flat, house or plot.
    pub house: String,
    pub area: String,
    /// The full address as one line.
    pub address: String,
    pub landmark: String,
    pub latitude: f64,
    pub longitude: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemoOrder {
    pub id: u64,
    /// Mangwale's order reference, in the seed's `MW-2025-001234` form: the
    /// id the service's APIs and ladders carry. Jupiter finds an order by
    /// its number or by this.
    #[serde(default)]
    pub reference: Option<String>,
    pub store_id: u64,
    pub customer_id: u64,
    pub rider_id: Option<u64>,
    /// 6amMart's `order_status`: `pending`, `confirmed`, `processing`,
    /// `handover`, `picked_up`, `delivered`, `canceled`, …
    pub status: String,
    /// `cash_on_delivery` or `digital_payment`.
    pub payment_method: String,
    /// `paid` or `unpaid`.
    pub payment_status: String,
    pub order_note: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Minutes of preparation the store announced.
    pub processing_time: Option<u32>,
    /// Rupees.
    pub delivery_charge: f64,
    /// Rupees: the items plus the delivery charge.
    pub order_amount: f64,
    /// Whether the PHP backend sends this order's `sender_details`,
    /// `receiver_details` and `product_details` as JSON strings, as some
    /// 6amMart versions do, rather than as objects.
    #[serde(default)]
    pub php_json_strings: bool,
    pub delivery_address: DeliveryAddress,
    pub items: Vec<DemoOrderLine>,
}

/// Where an order goes, frozen when it was placed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryAddress {
    pub contact_person_name: String,
    /// E.164.
    pub contact_person_number: String,
    /// `home`, `work` or `other`.
    #[serde(default)]
    pub address_type: String,
    pub address: String,
    #[serde(default)]
    pub landmark: Option<String>,
    #[serde(default)]
    pub latitude: Option<f64>,
    #[serde(default)]
    pub longitude: Option<f64>,
}

/// One line of an order, at the price it was sold for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemoOrderLine {
    pub item_id: u64,
    pub name: String,
    /// In the item's unit: whole for pieces and plates, a decimal for
    /// loose goods (1.5 kg).
    pub quantity: f64,
    /// Rupees per unit: the variant's (or item's) price plus the options'
    /// deltas.
    pub price: f64,
    /// The size, for an item sold in sizes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modifiers: Vec<DemoOrderModifier>,
}

/// An option chosen for a line (`spice`: `hot`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DemoOrderModifier {
    pub group_id: String,
    pub option_id: String,
}

/// The data file: catalogs are nested in their stores so that the file
/// reads shop by shop.
#[derive(Deserialize)]
struct DemoFile {
    /// The moment the file's order times were written for; see [`DemoData::from_json`].
    as_of: DateTime<Utc>,
    stores: Vec<FileStore>,
    riders: Vec<DemoRider>,
    customers: Vec<DemoCustomer>,
    orders: Vec<DemoOrder>,
}

#[derive(Deserialize)]
struct FileStore {
    #[serde(flatten)]
    store: DemoStore,
    items: Vec<FileItem>,
}

#[derive(Deserialize)]
struct FileItem {
    id: u64,
    name: String,
    aliases: Vec<String>,
    price: f64,
    unit: String,
    pack_size: String,
    category: String,
    available: bool,
    #[serde(default)]
    variants: Vec<DemoVariant>,
    #[serde(default)]
    modifier_groups: Vec<DemoModifierGroup>,
}

impl DemoData {
    /// The Nashik demo data, its order times moved so that the newest order
    /// was placed a few minutes ago.
    pub fn nashik() -> Result<DemoData, serde_json::Error> {
        DemoData::from_json(NASHIK_DEMO_JSON, Utc::now())
    }

    /// Reads a data file shaped like `nashik-demo.json`. Order times are
    /// shifted by `now - as_of`, so a demo always shows fresh orders.
    pub fn from_json(text: &str, now: DateTime<Utc>) -> Result<DemoData, serde_json::Error> {
        let file: DemoFile = serde_json::from_str(text)?;
        let shift = now - file.as_of;
        let mut data =
            DemoData { riders: file.riders, customers: file.customers, orders: file.orders, ..DemoData::default() };
        for FileStore { store, items } in file.stores {
            data.items.extend(items.into_iter().map(|i| DemoItem {
                id: i.id,
                store_id: store.id,
                name: i.name,
                aliases: i.aliases,
                price: i.price,
                unit: i.unit,
                pack_size: i.pack_size,
                category: i.category,
                available: i.available,
                variants: i.variants,
                modifier_groups: i.modifier_groups,
            }));
            data.stores.push(store);
        }
        for order in &mut data.orders {
            order.created_at += shift;
        }
        Ok(data)
    }

    pub fn store(&self, id: u64) -> Option<&DemoStore> {
        self.stores.iter().find(|s| s.id == id)
    }

    pub fn item(&self, id: u64) -> Option<&DemoItem> {
        self.items.iter().find(|i| i.id == id)
    }

    pub fn rider(&self, id: u64) -> Option<&DemoRider> {
        self.riders.iter().find(|r| r.id == id)
    }

    pub fn customer(&self, id: u64) -> Option<&DemoCustomer> {
        self.customers.iter().find(|c| c.id == id)
    }

    pub fn order(&self, id: u64) -> Option<&DemoOrder> {
        self.orders.iter().find(|o| o.id == id)
    }

    pub fn order_mut(&mut self, id: u64) -> Option<&mut DemoOrder> {
        self.orders.iter_mut().find(|o| o.id == id)
    }

    /// An order by the id a caller sent: its number (`100001`) or its
    /// reference (`MW-2025-001234`).
    pub fn find_order(&self, id: &str) -> Option<&DemoOrder> {
        let id = id.trim();
        let number: Option<u64> = id.parse().ok();
        self.orders.iter().find(|o| Some(o.id) == number || o.reference.as_deref() == Some(id))
    }

    /// [`DemoData::find_order`], to change it.
    pub fn find_order_mut(&mut self, id: &str) -> Option<&mut DemoOrder> {
        let id = id.trim();
        let number: Option<u64> = id.parse().ok();
        self.orders.iter_mut().find(|o| Some(o.id) == number || o.reference.as_deref() == Some(id))
    }

    /// The items of one store, in catalog order.
    pub fn catalog(&self, store_id: u64) -> impl Iterator<Item = &DemoItem> {
        self.items.iter().filter(move |i| i.store_id == store_id)
    }

    /// Phone lookups compare the 10 national digits, whatever form `phone` is in.
    pub fn customer_by_phone(&self, phone: &str) -> Option<&DemoCustomer> {
        let wanted = national_digits(phone)?;
        self.customers.iter().find(|c| national_digits(&c.phone).as_deref() == Some(wanted.as_str()))
    }

    pub fn rider_by_phone(&self, phone: &str) -> Option<&DemoRider> {
        let wanted = national_digits(phone)?;
        self.riders.iter().find(|r| national_digits(&r.phone).as_deref() == Some(wanted.as_str()))
    }

    pub fn stores_by_phone(&self, phone: &str) -> Vec<&DemoStore> {
        let Some(wanted) = national_digits(phone) else { return Vec::new() };
        self.stores.iter().filter(|s| national_digits(&s.phone).as_deref() == Some(wanted.as_str())).collect()
    }

    /// Orders a rider carries now (assigned and not finished).
    pub fn current_orders(&self, rider_id: u64) -> usize {
        self.orders
            .iter()
            .filter(|o| o.rider_id == Some(rider_id))
            .filter(|o| !matches!(o.status.as_str(), "delivered" | "canceled" | "failed" | "refunded"))
            .count()
    }

    /// Adds `order`, or replaces the order with the same id.
    pub fn upsert_order(&mut self, order: DemoOrder) {
        match self.order_mut(order.id) {
            Some(existing) => *existing = order,
            None => self.orders.push(order),
        }
    }
}

/// The 10 national digits of an Indian number in any form [`E164::parse`]
/// accepts; `None` for anything else.
pub fn national_digits(phone: &str) -> Option<String> {
    let e164 = E164::parse(phone).ok()?;
    e164.as_str().strip_prefix("+91").map(str::to_string)
}

/// Rounds rupees to whole paise.
pub(crate) fn round_paise(rupees: f64) -> f64 {
    (rupees * 100.0).round() / 100.0
}

fn full_name(first: &str, last: &str) -> String {
    format!("{first} {last}").trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_file_loads_with_fresh_order_times() {
        let now = Utc::now();
        let data = DemoData::from_json(NASHIK_DEMO_JSON, now).unwrap();
        let newest = data.orders.iter().map(|o| o.created_at).max().unwrap();
        assert!(newest <= now && now - newest < chrono::Duration::minutes(10), "newest order at {newest}");
        assert!(data.items.iter().all(|i| data.store(i.store_id).is_some()));
    }

    #[test]
    fn phones_match_on_national_digits() {
        let data = DemoData::nashik().unwrap();
        let phone = data.customers[0].phone.clone();
        let national = phone.strip_prefix("+91").unwrap();
        for form in [phone.clone(), national.to_string(), format!("0{national}"), format!("91{national}")] {
            assert_eq!(data.customer_by_phone(&form).map(|c| c.id), Some(data.customers[0].id), "{form}");
        }
        assert!(data.customer_by_phone("not a phone").is_none());
    }
}
