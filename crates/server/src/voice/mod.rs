//! Voice ordering in the service: the ordering dialog of `mangwale_voice`
//! run for Exotel calls (`POST /exotel/ivr/voice/process`) and for the
//! dashboard's HTTP sessions (`POST /voice/sessions`), durable per call in
//! the store ([`session`]), over Jupiter, the job queue and our channels
//! ([`ports::ServerPorts`]). Accounts without Voicebot order by recordings
//! ([`record`]).

pub mod ports;
pub mod record;
pub mod session;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use mangwale_voice::Catalog;

/// The WhatsApp template that carries a voice order's UPI payment link:
/// body parameters order number, amount, link (see docs/voice.md).
pub const PAYMENT_LINK_TEMPLATE: &str = "order_payment_link";

/// How long a store's voice catalog is kept before Jupiter is asked again:
/// the Jupiter client's catalog lifetime.
const CATALOG_LIFETIME: chrono::Duration = chrono::Duration::minutes(5);

/// What voice ordering keeps for the life of the process (the dialog's
/// fallback is `AppState::voice_fallback`).
#[derive(Default)]
pub struct VoiceServices {
    catalogs: Mutex<HashMap<u64, CachedCatalog>>,
}

/// A store's catalog, and when it was read from Jupiter.
type CachedCatalog = (DateTime<Utc>, Arc<Catalog>);

impl VoiceServices {
    pub fn new() -> Self {
        VoiceServices::default()
    }

    fn cached_catalog(&self, store_id: u64, now: DateTime<Utc>) -> Option<Arc<Catalog>> {
        let catalogs = self.catalogs.lock().unwrap_or_else(|p| p.into_inner());
        catalogs.get(&store_id).filter(|(at, _)| now - *at < CATALOG_LIFETIME).map(|(_, c)| c.clone())
    }

    fn keep_catalog(&self, store_id: u64, catalog: Arc<Catalog>, now: DateTime<Utc>) {
        let mut catalogs = self.catalogs.lock().unwrap_or_else(|p| p.into_inner());
        catalogs.retain(|_, (at, _)| now - *at < CATALOG_LIFETIME);
        catalogs.insert(store_id, (now, catalog));
    }
}
