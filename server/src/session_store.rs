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
