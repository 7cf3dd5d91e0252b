//! Leader election the way etcd's concurrency package does it: each candidate writes a key
//! under the election prefix on its lease; the candidate with the lowest create revision
//! leads; the others wait for their predecessor's key to disappear.

use futures::StreamExt;

use super::{Compare, EventKind, KeyValue, LeaseId, ListOptions, Op, Store, StoreError, Txn};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leadership {
    pub key: String,
    pub create_revision: i64,
    pub lease: LeaseId,
}

impl Leadership {
    /// Guards the leader's writes: fails once this leadership ended.
    pub fn still_leader(&self) -> Compare {
        Compare::create_revision(&self.key, self.create_revision)
    }
}

/// Waits until this candidate leads the election under `prefix`. Cancel by dropping.
pub async fn campaign(
    store: &dyn Store,
    prefix: &str,
    lease: LeaseId,
    value: &[u8],
) -> Result<Leadership, StoreError> {
    let key = format!("{prefix}{lease:016x}");
    let resp = store
        .txn(
            Txn::new()
                .when(vec![Compare::missing(&key)])
                .and_then(vec![Op::put(&key, value.to_vec(), Some(lease))])
                .or_else(vec![Op::get(&key)]),
        )
        .await?;
    let create_revision = if resp.succeeded {
        resp.revision
    } else {
        match resp.into_gets().into_iter().next().flatten() {
            Some(kv) => kv.create_revision,
            None => return Err(StoreError::LeaseNotFound(lease)),
        }
    };
    loop {
        let page = store.list(prefix, ListOptions::default()).await?;
        if !page.kvs.iter().any(|kv| kv.key == key) {
            // Our key vanished: the lease died while we waited.
            return Err(StoreError::LeaseNotFound(lease));
        }
        let predecessor = page
            .kvs
            .iter()
            .filter(|kv| kv.create_revision < create_revision)
            .max_by_key(|kv| kv.create_revision);
        let Some(pred) = predecessor else {
            return Ok(Leadership {
                key,
                create_revision,
                lease,
            });
        };
        let mut events = store.watch(&pred.key, page.revision + 1).await?;
        while let Some(event) = events.next().await {
            let event = event?;
            if event.kv.key == pred.key && event.kind == EventKind::Delete {
                break;
            }
        }
    }
}

/// The current leader's key and value, if any.
pub async fn leader(store: &dyn Store, prefix: &str) -> Result<Option<KeyValue>, StoreError> {
    let page = store.list(prefix, ListOptions::default()).await?;
    Ok(page.kvs.into_iter().min_by_key(|kv| kv.create_revision))
}

/// Steps down; false when the leadership had already ended.
pub async fn resign(store: &dyn Store, leadership: &Leadership) -> Result<bool, StoreError> {
    let resp = store
        .txn(
            Txn::new()
                .when(vec![leadership.still_leader()])
                .and_then(vec![Op::delete(&leadership.key)]),
        )
        .await?;
    Ok(resp.succeeded)
}
