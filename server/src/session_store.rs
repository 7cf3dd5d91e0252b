//! tower-sessions on top of our Store: each session is a key on its own lease, so it expires
//! in the store by itself and any server replica can serve any user.

use std::sync::Arc;

use async_trait::async_trait;
use idra_core::store::{decode, encode, Compare, Keys, Op, Store, StoreError, Txn};
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{Error, Result, SessionStore};

#[derive(Clone)]
pub struct StoreSessions {
    store: Arc<dyn Store>,
    keys: Keys,
}

impl std::fmt::Debug for StoreSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreSessions")
            .field("backend", &self.store.backend())
            .finish()
    }
}

fn backend(e: StoreError) -> Error {
    Error::Backend(e.to_string())
}

/// The layer saves on every request (`always_save`), so that using the app extends the session.
/// Rewriting it each time would cost a lease and two writes per request (the dashboard polls
/// every second); the stored expiry is moved forward at most this often instead.
pub const TOUCH_EVERY: time::Duration = time::Duration::minutes(10);

/// The new record differs from the stored one only by an expiry less than [`TOUCH_EVERY`] later.
fn only_touched(key: &str, stored: &[u8], record: &Record) -> bool {
    let Ok(stored) = decode::<Record>(key, stored) else {
        return false;
    };
    let moved = record.expiry_date - stored.expiry_date;
    stored.data == record.data && moved >= time::Duration::ZERO && moved < TOUCH_EVERY
}

fn ttl_secs(record: &Record) -> i64 {
    (record.expiry_date - time::OffsetDateTime::now_utc())
        .whole_seconds()
        .max(1)
}

impl StoreSessions {
    pub fn new(store: Arc<dyn Store>, keys: Keys) -> Self {
        Self { store, keys }
    }

    fn key(&self, id: &Id) -> String {
        self.keys.session(&id.to_string())
    }
}

#[async_trait]
impl SessionStore for StoreSessions {
    async fn create(&self, record: &mut Record) -> Result<()> {
        loop {
            let key = self.key(&record.id);
            let lease = self
                .store
                .grant_lease(ttl_secs(record))
                .await
                .map_err(backend)?;
            let resp = self
                .store
                .txn(
                    Txn::new()
                        .when(vec![Compare::missing(&key)])
                        .and_then(vec![Op::put(&key, encode(record), Some(lease))]),
                )
                .await
                .map_err(backend)?;
            if resp.succeeded {
                return Ok(());
            }
            // An id collision (astronomically rare): drop the lease and draw a new id.
            let _ = self.store.revoke_lease(lease).await;
            record.id = Id::default();
        }
    }

    async fn save(&self, record: &Record) -> Result<()> {
        let key = self.key(&record.id);
        let previous = self.store.get(&key).await.map_err(backend)?;
        if previous
            .as_ref()
            .is_some_and(|kv| only_touched(&key, &kv.value, record))
        {
            return Ok(());
        }
        let lease = self
            .store
            .grant_lease(ttl_secs(record))
            .await
            .map_err(backend)?;
        self.store
            .put(&key, encode(record), Some(lease))
            .await
            .map_err(backend)?;
        if let Some(prev) = previous.filter(|p| p.lease != 0 && p.lease != lease) {
            // The old lease now holds nothing; ending it keeps etcd's lease table small.
            match self.store.revoke_lease(prev.lease).await {
                Ok(()) | Err(StoreError::LeaseNotFound(_)) => {}
                Err(e) => tracing::warn!(error = %e, "could not revoke a replaced session lease"),
            }
        }
        Ok(())
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let key = self.key(id);
        let Some(kv) = self.store.get(&key).await.map_err(backend)? else {
            return Ok(None);
        };
        let record: Record = decode(&key, &kv.value).map_err(|e| Error::Decode(e.to_string()))?;
        Ok((record.expiry_date > time::OffsetDateTime::now_utc()).then_some(record))
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        let key = self.key(id);
        if let Some(kv) = self.store.get(&key).await.map_err(backend)? {
            if kv.lease != 0 {
                match self.store.revoke_lease(kv.lease).await {
                    Ok(()) | Err(StoreError::LeaseNotFound(_)) => {}
                    Err(e) => return Err(backend(e)),
                }
            }
            self.store.delete(&key).await.map_err(backend)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use idra_core::store::EmbeddedStore;
    use time::OffsetDateTime;

    async fn sessions() -> (StoreSessions, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).await.unwrap();
        (StoreSessions::new(Arc::new(store), Keys::default()), dir)
    }

    async fn revision(s: &StoreSessions, id: &Id) -> i64 {
        s.store.get(&s.key(id)).await.unwrap().unwrap().mod_revision
    }

    #[tokio::test]
    async fn activity_extends_a_session_with_one_write_per_touch_interval() {
        let (s, _dir) = sessions().await;
        let start = OffsetDateTime::now_utc() + time::Duration::hours(12);
        let mut record = Record {
            id: Id::default(),
            data: [("user".to_string(), serde_json::json!("admin"))].into(),
            expiry_date: start,
        };
        s.create(&mut record).await.unwrap();
        let created = revision(&s, &record.id).await;

        record.expiry_date = start + time::Duration::minutes(1);
        s.save(&record).await.unwrap();
        assert_eq!(
            revision(&s, &record.id).await,
            created,
            "a small move is not written"
        );

        record.expiry_date = start + TOUCH_EVERY;
        s.save(&record).await.unwrap();
        let touched = revision(&s, &record.id).await;
        assert!(touched > created, "a move of TOUCH_EVERY is written");
        let loaded = s.load(&record.id).await.unwrap().unwrap();
        assert_eq!(loaded.expiry_date, record.expiry_date);

        record.data.insert("note".into(), serde_json::json!(1));
        s.save(&record).await.unwrap();
        assert!(
            revision(&s, &record.id).await > touched,
            "changed data is always written"
        );
        assert_eq!(s.load(&record.id).await.unwrap().unwrap().data, record.data);
    }
}
