//! Who is calling: a vendor (`store_by_phone`), a rider (`rider_by_phone`),
//! a customer (`customer_by_phone`), with their active orders, or an
//! unknown caller.
//!
//! The answer decides the first Switch of the inbound flow, so it has to
//! come within the Passthru's few seconds. A caller seen recently is
//! answered from the cache at once (and refreshed in the background when
//! the entry is older than [`FRESH_FOR`]); a new caller is looked up for at
//! most `CALLER_LOOKUP_DEADLINE_MS`, after which the call goes on as an
//! unknown caller and the lookup finishes in the background, updating the
//! call's record for the applets that follow.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use mangwale_core::inbound::CallerKind;
use mangwale_core::{E164, Language, OrderId};
use mangwale_providers::jupiter::{JupiterClient, JupiterError, Order, PartyRef};
use mangwale_store::{InboundCall, NewEvent};
use serde_json::json;
use tokio::task::JoinHandle;

use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// A cached caller younger than this is used without asking Jupiter again.
pub const FRESH_FOR: chrono::Duration = chrono::Duration::seconds(60);
/// A cached caller is kept this long as "what is known" (answered at once,
/// refreshed in the background).
pub const KEEP_FOR: chrono::Duration = chrono::Duration::hours(12);
/// Most callers remembered; the oldest go first.
const CACHE_CAPACITY: usize = 50_000;
/// How long after an applet request the caller counts as on the line.
pub const ON_THE_LINE: chrono::Duration = chrono::Duration::minutes(2);

/// An order as a caller's menu needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveOrder {
    pub id: OrderId,
    /// 6amMart's `order_status`.
    pub status: String,
}

/// What Jupiter knows about a phone number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub kind: CallerKind,
    /// The store, rider or customer id.
    pub party_id: Option<u64>,
    /// Jupiter's language for the caller, else Hindi.
    pub language: Language,
    /// Active orders, oldest first.
    pub orders: Vec<ActiveOrder>,
}

impl Caller {
    pub fn unknown() -> Self {
        Caller { kind: CallerKind::Unknown, party_id: None, language: Language::Hi, orders: Vec::new() }
    }

    /// The order the caller's menu is about: a customer's newest, a rider's
    /// current delivery (one picked up first), a vendor's oldest pending.
    pub fn menu_order(&self) -> Option<&OrderId> {
        match self.kind {
            CallerKind::Customer => self.orders.last().map(|o| &o.id),
            CallerKind::Rider => {
                self.orders.iter().find(|o| o.status == "picked_up").or(self.orders.first()).map(|o| &o.id)
            }
            CallerKind::Vendor => self.pending().next().map(|o| &o.id),
            CallerKind::Unknown => None,
        }
    }

    /// A vendor's orders waiting for acceptance, oldest first.
    pub fn pending(&self) -> impl Iterator<Item = &ActiveOrder> {
        self.orders.iter().filter(|o| o.status == "pending")
    }
}

/// How the answer was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// The cache, fresh: no lookup.
    Cached,
    /// The cache, old: answered at once, refreshed in the background.
    Stale,
    /// Looked up within the deadline.
    LookedUp,
    /// Nothing known by the deadline: unknown for now, looked up in the
    /// background.
    Deadline,
    /// The lookup failed: unknown.
    Failed,
    /// No caller number.
    NoNumber,
}

impl Found {
    pub fn name(self) -> &'static str {
        match self {
            Found::Cached => "cached",
            Found::Stale => "stale",
            Found::LookedUp => "looked_up",
            Found::Deadline => "deadline",
            Found::Failed => "failed",
            Found::NoNumber => "no_number",
        }
    }
}

/// The answer for the Passthru, and the lookup still running behind it.
pub struct Identified {
    pub caller: Caller,
    pub found: Found,
    /// Why the lookup failed (`Found::Failed`), without phone numbers.
    pub error: Option<String>,
    /// The lookup that goes on past the answer (`Stale`, `Deadline`).
    pub pending: Option<JoinHandle<Result<Caller, String>>>,
}

#[derive(Clone)]
struct Cached {
    caller: Caller,
    at: DateTime<Utc>,
}

/// Callers by phone number, shared by every request of this process. A
/// cache only: the call's record in the store is what later applets read.
#[derive(Clone, Default)]
pub struct CallerCache {
    entries: Arc<Mutex<HashMap<E164, Cached>>>,
}

impl CallerCache {
    fn get(&self, phone: &E164, now: DateTime<Utc>) -> Option<Cached> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(phone).filter(|c| now - c.at < KEEP_FOR).cloned()
    }

    fn put(&self, phone: E164, caller: Caller, at: DateTime<Utc>) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CACHE_CAPACITY && !entries.contains_key(&phone) {
            entries.retain(|_, c| at - c.at < KEEP_FOR);
            if entries.len() >= CACHE_CAPACITY
                && let Some(oldest) = entries.iter().min_by_key(|(_, c)| c.at).map(|(k, _)| k.clone())
            {
                entries.remove(&oldest);
            }
        }
        entries.insert(phone, Cached { caller, at });
    }

    /// Identifies `phone`: from the cache when it knows the number, else by
    /// `lookup`, waited for at most `deadline`. The deadline is the time
    /// Exotel waits on the Passthru, real time on the runtime's timer, not
    /// the business clock. A lookup that finishes fills the cache, whether
    /// or not it was waited for.
    pub async fn identify<F>(&self, phone: &E164, now: DateTime<Utc>, deadline: Duration, lookup: F) -> Identified
    where
        F: Future<Output = Result<Caller, String>> + Send + 'static,
    {
        let cached = self.get(phone, now);
        if let Some(cached) = &cached
            && now - cached.at < FRESH_FOR
        {
            return Identified { caller: cached.caller.clone(), found: Found::Cached, error: None, pending: None };
        }
        let cache = self.clone();
        let key = phone.clone();
        let mut task = tokio::spawn(async move {
            let result = lookup.await;
            if let Ok(caller) = &result {
                cache.put(key, caller.clone(), now);
            }
            result
        });
        if let Some(cached) = cached {
            return Identified { caller: cached.caller, found: Found::Stale, error: None, pending: Some(task) };
        }
        match tokio::time::timeout(deadline, &mut task).await {
            Ok(Ok(Ok(caller))) => Identified { caller, found: Found::LookedUp, error: None, pending: None },
            Ok(Ok(Err(error))) => {
                Identified { caller: Caller::unknown(), found: Found::Failed, error: Some(error), pending: None }
            }
            Ok(Err(join)) => Identified {
                caller: Caller::unknown(),
                found: Found::Failed,
                error: Some(format!("the lookup task failed: {join}")),
                pending: None,
            },
            Err(_) => {
                Identified { caller: Caller::unknown(), found: Found::Deadline, error: None, pending: Some(task) }
            }
        }
    }
}

/// Asks Jupiter who `phone` is: a store's phone is a vendor, then a
/// rider's, then a registered customer; then their active orders.
pub async fn look_up(client: JupiterClient, phone: E164) -> Result<Caller, String> {
    let describe = |e: JupiterError| e.to_string();
    // Without the PHP backend there are no stores to find (and riders are
    // looked up in Jupiter alone).
    let has_php = client.config().php_url.is_some();
    let store = async { if has_php { client.store_by_phone(&phone).await } else { Ok(None) } };
    let (store, rider, customer) = tokio::join!(store, client.rider_by_phone(&phone), client.customer_by_phone(&phone));
    let (store, rider, customer) = (store.map_err(describe)?, rider.map_err(describe)?, customer.map_err(describe)?);
    let (kind, party) = if let Some(store) = store {
        (CallerKind::Vendor, Some(PartyRef::Store(store.id)))
    } else if let Some(rider) = rider {
        (CallerKind::Rider, Some(PartyRef::Rider(rider.id)))
    } else if customer.registered {
        (CallerKind::Customer, customer.id.map(PartyRef::Customer))
    } else {
        (CallerKind::Unknown, None)
    };
    let orders = match party {
        Some(party) => client.active_orders(party).await.map_err(describe)?,
        None => Vec::new(),
    };
    let party_id = party.map(|p| match p {
        PartyRef::Customer(id) | PartyRef::Rider(id) | PartyRef::Store(id) => id,
    });
    Ok(Caller {
        kind,
        party_id,
        // Jupiter keeps a language for customers only; a vendor or rider who
        // also orders as a customer is spoken to in it, anyone else in Hindi.
        language: customer.language.unwrap_or_default(),
        orders: orders.iter().map(active_order).collect(),
    })
}

fn active_order(order: &Order) -> ActiveOrder {
    ActiveOrder { id: order.id.clone(), status: order.status.clone() }
}

fn unavailable(e: mangwale_store::StoreError) -> AppError {
    tracing::error!(error = %e, "recording an inbound caller failed");
    AppError::Unavailable { code: "store_unavailable", message: "the call could not be recorded; retry".into() }
}

/// The call's record for `caller`.
fn record_for(call_sid: &str, phone: Option<&E164>, caller: &Caller, settled: bool, now: DateTime<Utc>) -> InboundCall {
    InboundCall {
        call_sid: call_sid.to_string(),
        phone: phone.cloned(),
        kind: caller.kind,
        party_id: caller.party_id,
        language: caller.language,
        order_id: caller.menu_order().cloned(),
        pending_orders: u32::try_from(caller.pending().count()).unwrap_or(u32::MAX),
        settled,
        choice: None,
        started_at: now,
        updated_at: now,
        active_until: now + ON_THE_LINE,
        ended_at: None,
    }
}

fn caller_event(kind: &str, record: &InboundCall, found: Found, error: Option<&str>, at: DateTime<Utc>) -> NewEvent {
    let party = match (record.kind, record.party_id) {
        (CallerKind::Unknown, _) | (_, None) => record.kind.name().to_string(),
        (kind, Some(id)) => format!("{}:{id}", kind.name()),
    };
    NewEvent::new(kind, at)
        .call(&record.call_sid)
        .channel("ivr")
        .context(record.order_id.as_ref().map(OrderId::as_str), None, Some(&party))
        .detail(json!({
            "kind": record.kind.name(),
            "caller": record.phone.as_ref().map(E164::masked),
            "orderId": record.order_id,
            "pendingOrders": record.pending_orders,
            "language": record.language.code(),
            "found": found.name(),
            "settled": record.settled,
            "error": error,
        }))
}

/// Who `phone` is, by the same cache and deadline as the inbound flow, for
/// the other inbound paths (missed calls, the masked number). Records
/// nothing: a missed call is not a call the caller is on.
pub async fn who_is(state: &AppState, phone: &E164) -> Identified {
    let lookup = look_up(state.jupiter.client.clone(), phone.clone());
    state.callers.identify(phone, state.clock.now(), state.config.caller_lookup_deadline, lookup).await
}

/// Identifies the caller of `call_sid` and records the answer on the call
/// and its timeline. A lookup that runs past the answer updates both when
/// it finishes.
pub async fn identify_call(state: &AppState, call_sid: &str, phone: Option<&E164>) -> AppResult<InboundCall> {
    let now = state.clock.now();
    let identified = match phone {
        None => Identified { caller: Caller::unknown(), found: Found::NoNumber, error: None, pending: None },
        Some(phone) => who_is(state, phone).await,
    };
    let settled = identified.pending.is_none();
    let record = record_for(call_sid, phone, &identified.caller, settled, now);
    state.store.save_inbound_call(&record).await.map_err(unavailable)?;
    let event = caller_event("inbound.caller", &record, identified.found, identified.error.as_deref(), now);
    state.store.record_event(event).await.map_err(unavailable)?;
    metrics::counter!("mangwale_inbound_callers_total", "kind" => record.kind.name(), "found" => identified.found.name())
        .increment(1);
    if let Some(error) = &identified.error {
        tracing::warn!(call_sid, error = %error, "caller lookup failed; the call goes on as an unknown caller");
    }
    if let Some(pending) = identified.pending {
        tokio::spawn(settle_later(state.clone(), record.clone(), pending));
    }
    Ok(record)
}

/// Waits for a lookup that ran past the Passthru's answer and records what
/// it found (or that it failed) on the call and its timeline.
async fn settle_later(state: AppState, answered: InboundCall, pending: JoinHandle<Result<Caller, String>>) {
    let result = pending.await.unwrap_or_else(|e| Err(format!("the lookup task failed: {e}")));
    let now = state.clock.now();
    let outcome = match result {
        Ok(caller) => {
            let record = InboundCall {
                started_at: answered.started_at,
                ..record_for(&answered.call_sid, answered.phone.as_ref(), &caller, true, now)
            };
            let saved = state.store.save_inbound_call(&record).await;
            let event = caller_event("inbound.caller_settled", &record, Found::LookedUp, None, now);
            saved.and(state.store.record_event(event).await.map(|_| ()))
        }
        Err(error) => {
            metrics::counter!("mangwale_inbound_caller_lookup_failures_total").increment(1);
            tracing::warn!(call_sid = %answered.call_sid, error = %error, "background caller lookup failed");
            let event = caller_event("inbound.caller_lookup_failed", &answered, Found::Failed, Some(&error), now);
            state.store.record_event(event).await.map(|_| ())
        }
    };
    if let Err(e) = outcome {
        metrics::counter!("mangwale_inbound_caller_record_failures_total").increment(1);
        tracing::error!(call_sid = %answered.call_sid, error = %e, "recording a late caller identification failed");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn vendor() -> Caller {
        Caller {
            kind: CallerKind::Vendor,
            party_id: Some(7),
            language: Language::Hi,
            orders: vec![
                ActiveOrder { id: OrderId::parse("100004").unwrap(), status: "confirmed".into() },
                ActiveOrder { id: OrderId::parse("100001").unwrap(), status: "pending".into() },
            ],
        }
    }

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_repeat_caller_costs_no_lookup() {
        let cache = CallerCache::default();
        let phone = E164::parse("+919876543210").unwrap();
        let lookups = Arc::new(AtomicU32::new(0));
        let lookup = |n: Arc<AtomicU32>| async move {
            n.fetch_add(1, Ordering::SeqCst);
            Ok(vendor())
        };
        let first = cache.identify(&phone, t0(), Duration::from_millis(1500), lookup(lookups.clone())).await;
        assert_eq!((first.found, first.caller.kind), (Found::LookedUp, CallerKind::Vendor));
        assert_eq!(first.caller.menu_order().map(OrderId::as_str), Some("100001"), "the oldest pending order");
        let again =
            cache.identify(&phone, t0() + chrono::Duration::seconds(30), Duration::ZERO, lookup(lookups.clone())).await;
        assert_eq!((again.found, again.caller), (Found::Cached, vendor()));
        assert_eq!(lookups.load(Ordering::SeqCst), 1, "the second call asked nobody");

        // An hour later: answered at once from what is known, refreshed behind.
        let later = t0() + chrono::Duration::hours(1);
        let stale = cache.identify(&phone, later, Duration::ZERO, lookup(lookups.clone())).await;
        assert_eq!((stale.found, stale.caller.kind), (Found::Stale, CallerKind::Vendor));
        stale.pending.unwrap().await.unwrap().unwrap();
        assert_eq!(lookups.load(Ordering::SeqCst), 2);
        let refreshed = cache.identify(&phone, later, Duration::ZERO, lookup(lookups.clone())).await;
        assert_eq!(refreshed.found, Found::Cached);
    }

    #[tokio::test(start_paused = true)]
    async fn past_the_deadline_the_caller_is_unknown_and_the_lookup_finishes_behind() {
        let cache = CallerCache::default();
        let phone = E164::parse("+919876543211").unwrap();
        let slow = async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(vendor())
        };
        let answer = cache.identify(&phone, t0(), Duration::from_millis(1500), slow).await;
        assert_eq!((answer.found, answer.caller.kind), (Found::Deadline, CallerKind::Unknown));
        let finished = answer.pending.expect("still running").await.unwrap().unwrap();
        assert_eq!(finished, vendor());
        let next = cache.identify(&phone, t0(), Duration::ZERO, async { Err("not asked".to_string()) }).await;
        assert_eq!((next.found, next.caller), (Found::Cached, vendor()), "the late answer was kept");

        let failing = cache
            .identify(&E164::parse("+919876543212").unwrap(), t0(), Duration::from_secs(1), async {
                Err("Jupiter: HTTP 503".to_string())
            })
            .await;
        assert_eq!((failing.found, failing.caller.kind), (Found::Failed, CallerKind::Unknown));
        assert_eq!(failing.error.as_deref(), Some("Jupiter: HTTP 503"));
    }
}
