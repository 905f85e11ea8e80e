//! [`Ports`] over one catalog and no customer: what `voice dialog --catalog`
//! and `voice eval` run the dialog against ([`super::Mode::CatalogOnly`]).
//! Orders are kept in memory and, when a file is given, appended to it as
//! JSON lines, so a later run over the same file continues its numbering
//! and still answers an idempotency key it has seen. Nothing here talks to
//! Jupiter; there is no payment.
//!
//! The orders file is one record a line:
//!
//! ```json
//! {"placed":{"idempotency_key":"cli-1:0","order":{"order_id":"local-1","number":"1",...}}}
//! {"cancelled":{"order_id":"local-1"}}
//! ```
//!
//! One process at a time per file: two runs appending to the same file at
//! once would number their orders alike.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::ports::{LinkChannel, OrderRequest, PlacedOrder, PortError, Ports, Profile, StoreOffer};
use crate::catalog::{Catalog, CatalogError};

/// Why a catalog or an orders file could not be used; each names the file
/// (and the field or line).
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("{}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    /// The catalog does not match the format; `source.path` is the bad field.
    #[error("{}: {source}", path.display())]
    Catalog { path: PathBuf, source: CatalogError },
    #[error("{}: cannot append orders: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    #[error("{}:{line}: {message}", path.display())]
    OrdersFile { path: PathBuf, line: usize, message: String },
}

/// Reads and checks a catalog file.
pub fn read_catalog(path: &Path) -> Result<Catalog, LocalError> {
    let text = std::fs::read_to_string(path).map_err(|source| LocalError::Read { path: path.into(), source })?;
    Catalog::from_json(&text).map_err(|source| LocalError::Catalog { path: path.into(), source })
}

/// One line of the orders file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum OrderRecord {
    Placed { idempotency_key: String, order: PlacedOrder },
    Cancelled { order_id: String },
}

#[derive(Debug, Default)]
struct Orders {
    /// In the order they were placed; cancelled ones flagged.
    placed: Vec<PlacedOrder>,
    /// Idempotency key → index in `placed`.
    by_key: HashMap<String, usize>,
}

impl Orders {
    fn apply(&mut self, record: OrderRecord) -> Result<(), String> {
        match record {
            OrderRecord::Placed { idempotency_key, order } => {
                if self.by_key.contains_key(&idempotency_key) {
                    return Err(format!("idempotency_key {idempotency_key} is placed twice"));
                }
                if self.placed.iter().any(|o| o.order_id == order.order_id) {
                    return Err(format!("order_id {} is placed twice", order.order_id));
                }
                self.by_key.insert(idempotency_key, self.placed.len());
                self.placed.push(order);
            }
            OrderRecord::Cancelled { order_id } => match self.placed.iter_mut().find(|o| o.order_id == order_id) {
                Some(order) => order.cancelled = true,
                None => return Err(format!("order_id {order_id} is cancelled but was never placed")),
            },
        }
        Ok(())
    }
}

/// The ports of a catalog-only call: one store, no profile, local orders.
#[derive(Debug)]
pub struct LocalPorts {
    catalog: Arc<Catalog>,
    file: Option<PathBuf>,
    orders: Mutex<Orders>,
}

impl LocalPorts {
    /// Orders in memory only.
    pub fn new(catalog: Arc<Catalog>) -> LocalPorts {
        LocalPorts { catalog, file: None, orders: Mutex::new(Orders::default()) }
    }

    /// Orders appended to `path` (created when missing); the orders it
    /// already holds are read first.
    pub fn with_orders_file(catalog: Arc<Catalog>, path: impl Into<PathBuf>) -> Result<LocalPorts, LocalError> {
        let path = path.into();
        let mut orders = Orders::default();
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                    let bad = |message: String| LocalError::OrdersFile { path: path.clone(), line: n + 1, message };
                    let de = &mut serde_json::Deserializer::from_str(line);
                    let record: OrderRecord = serde_path_to_error::deserialize(de).map_err(|e| {
                        let at = e.path().to_string();
                        bad(if at == "." { e.inner().to_string() } else { format!("{at}: {}", e.inner()) })
                    })?;
                    orders.apply(record).map_err(bad)?;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(LocalError::Read { path, source }),
        }
        // A file that cannot be appended to is refused now, not when the
        // caller's first order fails.
        if let Err(source) = OpenOptions::new().create(true).append(true).open(&path) {
            return Err(LocalError::Write { path, source });
        }
        Ok(LocalPorts { catalog, file: Some(path), orders: Mutex::new(orders) })
    }

    pub fn catalog_ref(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// The one store, open, as the dialog is given it.
    pub fn store(&self) -> StoreOffer {
        StoreOffer {
            id: self.catalog.store.id.clone(),
            name: self.catalog.store.name.clone(),
            aliases: Vec::new(),
            distance_km: None,
            open: true,
        }
    }

    /// Every order placed through these ports (or read from the file),
    /// cancelled ones flagged.
    pub fn orders(&self) -> Vec<PlacedOrder> {
        self.lock().placed.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Orders> {
        // A panic while holding the lock leaves the orders as they were
        // before the panicking call's append; they are still consistent.
        self.orders.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Appends a record to the file (if any) before memory changes, so
    /// that memory never holds an order the file lost.
    fn record(&self, record: &OrderRecord) -> Result<(), PortError> {
        let Some(path) = &self.file else { return Ok(()) };
        let failed = |e: &dyn std::fmt::Display| PortError {
            message: format!("cannot write the orders file {}: {e}", path.display()),
            retryable: true,
        };
        let mut line = serde_json::to_string(record).map_err(|e| failed(&e))?;
        line.push('\n');
        let mut file = OpenOptions::new().create(true).append(true).open(path).map_err(|e| failed(&e))?;
        file.write_all(line.as_bytes()).and_then(|()| file.flush()).map_err(|e| failed(&e))
    }

    /// What Jupiter would refuse: another store, no lines, ids the catalog
    /// does not have.
    fn check(&self, order: &OrderRequest) -> Result<(), PortError> {
        let refused = |message: String| Err(PortError { message, retryable: false });
        if order.store_id != self.catalog.store.id {
            return refused(format!("store {} is not this catalog's store {}", order.store_id, self.catalog.store.id));
        }
        if order.lines.is_empty() {
            return refused("an order needs at least one line".into());
        }
        for line in &order.lines {
            let Some(item) = self.catalog.item(&line.item_id) else {
                return refused(format!("item {} is not in the catalog", line.item_id));
            };
            if let Some(variant) = &line.variant_id
                && !item.variants.iter().any(|v| &v.id == variant)
            {
                return refused(format!("{variant} is no variant of item {}", item.id));
            }
            if line.quantity.is_zero() {
                return refused(format!("item {} has no quantity", item.id));
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Ports for LocalPorts {
    async fn stores(&self) -> Result<Vec<StoreOffer>, PortError> {
        Ok(vec![self.store()])
    }

    async fn catalog(&self, store_id: &str) -> Result<Arc<Catalog>, PortError> {
        if store_id == self.catalog.store.id {
            Ok(self.catalog.clone())
        } else {
            Err(PortError { message: format!("store {store_id} is not this catalog's store"), retryable: false })
        }
    }

    async fn profile(&self) -> Result<Option<Profile>, PortError> {
        Ok(None)
    }

    async fn place_order(&self, order: &OrderRequest) -> Result<PlacedOrder, PortError> {
        let mut orders = self.lock();
        if let Some(&i) = orders.by_key.get(&order.idempotency_key) {
            return Ok(orders.placed[i].clone());
        }
        self.check(order)?;
        let number = orders.placed.len() + 1;
        let placed = PlacedOrder {
            order_id: format!("local-{number}"),
            number: number.to_string(),
            store_id: order.store_id.clone(),
            lines: order.lines.clone(),
            total: order.total,
            payment: order.payment,
            cancelled: false,
        };
        let record = OrderRecord::Placed { idempotency_key: order.idempotency_key.clone(), order: placed.clone() };
        self.record(&record)?;
        orders.apply(record).map_err(|message| PortError { message, retryable: false })?;
        Ok(placed)
    }

    async fn cancel_order(&self, order: &PlacedOrder) -> Result<(), PortError> {
        let mut orders = self.lock();
        match orders.placed.iter().find(|o| o.order_id == order.order_id) {
            None => Err(PortError { message: format!("order {} was never placed", order.order_id), retryable: false }),
            Some(placed) if placed.cancelled => Ok(()),
            Some(_) => {
                let record = OrderRecord::Cancelled { order_id: order.order_id.clone() };
                self.record(&record)?;
                orders.apply(record).map_err(|message| PortError { message, retryable: false })
            }
        }
    }

    async fn send_payment_link(&self, order: &PlacedOrder, _via: LinkChannel) -> Result<(), PortError> {
        Err(PortError {
            message: format!("order {}: no payment in catalog-only mode", order.order_id),
            retryable: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Lang, Paise};
    use crate::dialog::ports::OrderLine;
    use crate::numbers::Qty;

    const CATALOG: &str = r#"{
      "store": {"id": "7", "name": "Godavari Misal House", "language": "mr"},
      "items": [
        {"id": "7001", "name": "Misal Pav", "price": 70, "unit": "plate", "category": "Misal", "available": true,
         "variants": [{"id": "half", "name": "Half plate", "price": 45}]},
        {"id": "7012", "name": "Cutting Chai", "price": 12, "unit": "piece", "category": "Drinks", "available": true}
      ]
    }"#;

    fn catalog() -> Arc<Catalog> {
        Arc::new(Catalog::from_json(CATALOG).unwrap())
    }

    fn request(key: &str, item_id: &str, quantity: u64) -> OrderRequest {
        let line = OrderLine {
            item_id: item_id.into(),
            name: "x".into(),
            variant_id: None,
            quantity: Qty::whole(quantity),
            modifiers: Vec::new(),
            unit_price: Paise(7000),
            line_total: Paise(7000 * quantity as i64),
        };
        OrderRequest {
            idempotency_key: key.into(),
            store_id: "7".into(),
            total: line.line_total,
            lines: vec![line],
            payment: None,
            address: None,
            language: Lang::HiEn,
        }
    }

    fn block<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
    }

    #[test]
    fn one_store_no_profile_no_payment() {
        block(async {
            let ports = LocalPorts::new(catalog());
            let stores = ports.stores().await.unwrap();
            assert_eq!((stores.len(), stores[0].id.as_str(), stores[0].open), (1, "7", true));
            assert_eq!(ports.catalog("7").await.unwrap().store.name, "Godavari Misal House");
            assert!(!ports.catalog("8").await.unwrap_err().retryable);
            assert_eq!(ports.profile().await.unwrap(), None);
            let order = ports.place_order(&request("c:0", "7001", 2)).await.unwrap();
            let e = ports.send_payment_link(&order, LinkChannel::Sms).await.unwrap_err();
            assert!(e.message.contains("no payment") && !e.retryable, "{e}");
        });
    }

    #[test]
    fn a_repeated_key_is_the_same_order_and_numbers_run_on() {
        block(async {
            let ports = LocalPorts::new(catalog());
            let first = ports.place_order(&request("c:0", "7001", 2)).await.unwrap();
            assert_eq!((first.order_id.as_str(), first.number.as_str()), ("local-1", "1"));
            assert_eq!(first.total, Paise(14000));
            // A retry, even with other lines, is the order already placed.
            assert_eq!(ports.place_order(&request("c:0", "7012", 5)).await.unwrap(), first);
            let second = ports.place_order(&request("c:1", "7012", 1)).await.unwrap();
            assert_eq!(second.number, "2");
            assert_eq!(ports.orders().len(), 2);
        });
    }

    #[test]
    fn what_jupiter_would_refuse_is_refused() {
        block(async {
            let ports = LocalPorts::new(catalog());
            let e = ports.place_order(&request("c:0", "9999", 1)).await.unwrap_err();
            assert_eq!(e.message, "item 9999 is not in the catalog");
            let mut other = request("c:0", "7001", 1);
            other.store_id = "8".into();
            assert!(ports.place_order(&other).await.is_err());
            let mut sized = request("c:0", "7001", 1);
            sized.lines[0].variant_id = Some("jumbo".into());
            assert_eq!(ports.place_order(&sized).await.unwrap_err().message, "jumbo is no variant of item 7001");
            assert!(ports.orders().is_empty());
            let never = PlacedOrder {
                order_id: "local-9".into(),
                ..ports.place_order(&request("c:0", "7001", 1)).await.unwrap()
            };
            assert!(ports.cancel_order(&never).await.is_err());
        });
    }

    #[test]
    fn the_orders_file_keeps_orders_and_cancellations_across_runs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orders.jsonl");
        block(async {
            let ports = LocalPorts::with_orders_file(catalog(), &path).unwrap();
            let first = ports.place_order(&request("call-a:0", "7001", 2)).await.unwrap();
            ports.cancel_order(&first).await.unwrap();
            ports.cancel_order(&first).await.unwrap();
            assert!(ports.orders()[0].cancelled);

            let text = std::fs::read_to_string(&path).unwrap();
            let events: Vec<String> = text
                .lines()
                .map(|l| {
                    let record: serde_json::Map<String, serde_json::Value> = serde_json::from_str(l).unwrap();
                    record.keys().next().unwrap().clone()
                })
                .collect();
            assert_eq!(events, ["placed", "cancelled"], "a second cancel writes nothing");

            let again = LocalPorts::with_orders_file(catalog(), &path).unwrap();
            let read = again.orders();
            assert_eq!(read.len(), 1);
            assert!(read[0].cancelled);
            assert_eq!(read[0].lines, first.lines);
            let retried = again.place_order(&request("call-a:0", "7001", 2)).await.unwrap();
            assert_eq!(retried.order_id, "local-1", "a key seen in the file is the order it placed");
            let next = again.place_order(&request("call-b:0", "7012", 1)).await.unwrap();
            assert_eq!(next.number, "2");
        });
    }

    #[test]
    fn a_bad_orders_file_names_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orders.jsonl");
        std::fs::write(&path, "{\"cancelled\":{\"order_id\":\"local-1\"}}\n").unwrap();
        let e = LocalPorts::with_orders_file(catalog(), &path).unwrap_err();
        assert!(e.to_string().ends_with(":1: order_id local-1 is cancelled but was never placed"), "{e}");
        std::fs::write(&path, "\n{\"placed\":{\"idempotency_key\":\"k\",\"order\":{\"order_id\":1}}}\n").unwrap();
        let e = LocalPorts::with_orders_file(catalog(), &path).unwrap_err();
        assert!(e.to_string().contains(":2: placed.order.order_id: invalid type"), "{e}");
    }

    #[test]
    fn an_orders_file_that_cannot_be_written_is_refused_up_front() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no-such-dir/orders.jsonl");
        let e = LocalPorts::with_orders_file(catalog(), &path).unwrap_err();
        assert!(matches!(e, LocalError::Write { .. }), "{e}");
        assert!(e.to_string().contains("no-such-dir/orders.jsonl: cannot append orders"), "{e}");
        let fresh = dir.path().join("orders.jsonl");
        LocalPorts::with_orders_file(catalog(), &fresh).unwrap();
        assert_eq!(std::fs::read_to_string(&fresh).unwrap(), "", "created empty");
    }

    #[test]
    fn a_bad_catalog_file_names_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.json");
        std::fs::write(&path, CATALOG.replace(r#""price": 12,"#, r#""price": "12","#)).unwrap();
        let e = read_catalog(&path).unwrap_err();
        assert!(matches!(&e, LocalError::Catalog { source, .. } if source.path == "items[1].price"), "{e}");
        assert!(e.to_string().starts_with(&format!("{}: items[1].price: invalid type", path.display())), "{e}");
    }
}
