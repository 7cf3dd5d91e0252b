//! Decoded syncs, reused while their stored value is unchanged.
//!
//! The dashboard and the Syncs page each read every sync on every request (to count, search,
//! sort and page them). Decoding 1,000 sync values from JSON took most of that time; listing
//! them is cheap. A key's mod revision changes with every write to it (and a deleted and
//! re-created key gets a new one), so a cached value is valid exactly while the listed mod
//! revision is the cached one. Nothing else has to invalidate the cache, which keeps it correct
//! in cluster mode too, where other servers write the same keys.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use crate::model::SyncConfig;
use crate::store::{decode, KeyValue, StoreError};

#[derive(Default)]
pub struct SyncCache {
    /// key → (mod revision, decoded value)
    entries: Mutex<HashMap<String, (i64, Arc<SyncConfig>)>>,
}

impl SyncCache {
    /// The syncs that `kvs` (every key under the syncs prefix, as listed) hold, decoding only
    /// the values written since they were last seen. Keys no longer listed are forgotten.
    pub fn decode_all(&self, kvs: &[KeyValue]) -> Result<Vec<Arc<SyncConfig>>, StoreError> {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = Vec::with_capacity(kvs.len());
        for kv in kvs {
            let cached = entries
                .get(&kv.key)
                .filter(|(revision, _)| *revision == kv.mod_revision);
            let sync = match cached {
                Some((_, sync)) => sync.clone(),
                None => {
                    let sync = Arc::new(decode::<SyncConfig>(&kv.key, &kv.value)?);
                    entries.insert(kv.key.clone(), (kv.mod_revision, sync.clone()));
                    sync
                }
            };
            out.push(sync);
        }
        if entries.len() > kvs.len() {
            let listed: HashSet<&str> = kvs.iter().map(|kv| kv.key.as_str()).collect();
            entries.retain(|key, _| listed.contains(key.as_str()));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::encode;

    fn sync(id: &str, name: &str) -> SyncConfig {
        SyncConfig {
            id: id.into(),
            name: name.into(),
            ..SyncConfig::example()
        }
    }

    fn kv(sync: &SyncConfig, mod_revision: i64) -> KeyValue {
        KeyValue {
            key: format!("/idra/syncs/{}", sync.id),
            value: encode(sync),
            create_revision: 1,
            mod_revision,
            version: 1,
            lease: 0,
        }
    }

    #[test]
    fn reuses_a_value_until_its_revision_changes() {
        let cache = SyncCache::default();
        let a = sync("a", "first");
        let first = cache.decode_all(&[kv(&a, 5)]).unwrap();
        let again = cache.decode_all(&[kv(&a, 5)]).unwrap();
        assert!(
            Arc::ptr_eq(&first[0], &again[0]),
            "same revision: not decoded again"
        );

        let renamed = sync("a", "renamed");
        let after_write = cache.decode_all(&[kv(&renamed, 6)]).unwrap();
        assert_eq!(after_write[0].name, "renamed");
    }

    #[test]
    fn forgets_deleted_keys_and_keeps_listing_order() {
        let cache = SyncCache::default();
        let (a, b) = (sync("a", "a"), sync("b", "b"));
        cache.decode_all(&[kv(&a, 1), kv(&b, 2)]).unwrap();
        let only_b = cache.decode_all(&[kv(&b, 2)]).unwrap();
        assert_eq!(only_b.len(), 1);
        assert_eq!(only_b[0].id, "b");
        assert_eq!(cache.entries.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_value_that_does_not_decode_is_an_error_naming_the_key() {
        let cache = SyncCache::default();
        let mut bad = kv(&sync("a", "a"), 1);
        bad.value = b"{not json".to_vec();
        let err = cache.decode_all(&[bad]).unwrap_err();
        assert!(err.to_string().contains("/idra/syncs/a"), "{err}");
    }
}
