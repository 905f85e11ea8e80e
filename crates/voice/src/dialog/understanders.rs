//! The parser's index of a catalog takes milliseconds to build (tens on a
//! big catalog), far more than a parse. A call's turns, and every call to
//! the same store, reuse one: ports hand out the same `Arc<Catalog>` while
//! a catalog is unchanged, so the cache is keyed on that allocation. It
//! holds the `Arc` itself, so a key is never a freed and reused address.

use std::sync::{Arc, Mutex};

use crate::catalog::Catalog;
use crate::understand::Understander;

/// Stores whose index is kept: a replica serves a few dozen stores.
const KEPT: usize = 64;

static CACHE: Mutex<Vec<(Arc<Catalog>, Arc<Understander>)>> = Mutex::new(Vec::new());

/// The understander of this catalog, built once per catalog allocation.
pub fn understander(catalog: &Arc<Catalog>) -> Arc<Understander> {
    {
        let mut cache = CACHE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(i) = cache.iter().position(|(c, _)| Arc::ptr_eq(c, catalog)) {
            let entry = cache.remove(i);
            let found = Arc::clone(&entry.1);
            cache.insert(0, entry);
            return found;
        }
    }
    // Built outside the lock: two turns racing on a new catalog build it
    // twice rather than wait on each other.
    let built = Arc::new(Understander::new(catalog));
    let mut cache = CACHE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if !cache.iter().any(|(c, _)| Arc::ptr_eq(c, catalog)) {
        cache.insert(0, (Arc::clone(catalog), Arc::clone(&built)));
        cache.truncate(KEPT);
    }
    built
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_index_per_catalog_allocation() {
        let json = r#"{"store":{"id":"1","name":"S","language":"hi"},"items":[{"id":"1","name":"Poha","price":30,"unit":"plate","category":"x","available":true}]}"#;
        let a = Arc::new(Catalog::from_json(json).unwrap());
        let b = Arc::new(Catalog::from_json(json).unwrap());
        assert!(Arc::ptr_eq(&understander(&a), &understander(&a)));
        assert!(!Arc::ptr_eq(&understander(&a), &understander(&b)));
    }
}
