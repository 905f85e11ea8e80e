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
use mangwale_speech::hints::{Script, catalog_hints, closed_words};
use mangwale_voice::dialog::Ports;
use mangwale_voice::speech::RecognitionHints;
use mangwale_voice::{Catalog, Lang};

use crate::state::AppState;

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

/// What the recogniser should expect in a turn of `call_sid`, for the
/// Voicebot stream and the record path alike: with a store chosen, its
/// catalog's hints (`mangwale_speech::hints`: numbers, yes and no, then item
/// names, variants and aliases); before that, the closed words and the
/// names of the stores on offer. A catalog or store list that cannot be
/// read leaves the names out (logged); the turn goes on.
pub async fn recognition_hints(
    state: &AppState,
    call_sid: &str,
    language: Option<Lang>,
    store_id: Option<&str>,
) -> RecognitionHints {
    let lang = language.unwrap_or(Lang::HiEn);
    let ports = ports::ServerPorts::new(state.clone(), call_sid, None);
    let mut phrases: Vec<String> = closed_words(lang, Script::Latin).iter().map(|w| w.to_string()).collect();
    match store_id {
        Some(store) => match ports.catalog(store).await {
            Ok(catalog) => return RecognitionHints { language, ..catalog_hints(&catalog, lang) },
            Err(e) => tracing::warn!(call_sid, store_id = store, error = %e, "no catalog for the recogniser's hints"),
        },
        None => match ports.stores().await {
            Ok(stores) => phrases.extend(stores.into_iter().map(|s| s.name)),
            Err(e) => tracing::warn!(call_sid, error = %e, "no stores for the recogniser's hints"),
        },
    }
    RecognitionHints { language, phrases }
}
