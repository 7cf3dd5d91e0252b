//! Exclusive locks on one key, held on a lease. The key's create revision is the fencing
//! token: it strictly increases from one holder to the next, and a commit guarded by
//! [`LockGuard::still_held`] fails once the holder lost the lock, whatever it believes.

use futures::StreamExt;

use super::{Compare, EventKind, LeaseId, Op, Store, StoreError, Txn};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockGuard {
    pub key: String,
    /// The lock key's create revision.
    pub fence: i64,
    pub lease: LeaseId,
}

impl LockGuard {
    /// A compare that holds only while this exact acquisition of the lock is current. Add it
    /// to every transaction that must not land after the lock was lost.
    pub fn still_held(&self) -> Compare {
        Compare::create_revision(&self.key, self.fence)
    }
}

/// Takes the lock if it is free (or already ours on this lease); `None` when another
/// holder has it.
pub async fn try_lock(
    store: &dyn Store,
    key: &str,
    holder: &str,
    lease: LeaseId,
) -> Result<Option<LockGuard>, StoreError> {
    Ok(attempt(store, key, holder, lease).await?.0)
}

/// Returns the guard, or the revision at which the lock was seen held by someone else.
async fn attempt(
    store: &dyn Store,
    key: &str,
    holder: &str,
    lease: LeaseId,
) -> Result<(Option<LockGuard>, i64), StoreError> {
    let resp = store
        .txn(
            Txn::new()
                .when(vec![Compare::missing(key)])
                .and_then(vec![Op::put(key, holder.as_bytes().to_vec(), Some(lease))])
                .or_else(vec![Op::get(key)]),
        )
        .await?;
    if resp.succeeded {
        return Ok((
            Some(LockGuard {
                key: key.to_string(),
                fence: resp.revision,
                lease,
            }),
            resp.revision,
        ));
    }
    let revision = resp.revision;
    match resp.into_gets().into_iter().next().flatten() {
        Some(kv) if kv.lease == lease => Ok((
            Some(LockGuard {
                key: key.to_string(),
                fence: kv.create_revision,
                lease,
            }),
            revision,
        )),
        _ => Ok((None, revision)),
    }
}

/// Waits until the lock is ours. Cancel by dropping the future.
pub async fn lock(
    store: &dyn Store,
    key: &str,
    holder: &str,
    lease: LeaseId,
) -> Result<LockGuard, StoreError> {
    loop {
        let (guard, seen_at) = attempt(store, key, holder, lease).await?;
        if let Some(guard) = guard {
            return Ok(guard);
        }
        // Watch from just after the moment we saw it held: a release in between is in the
        // watch's history, so it cannot be missed.
        let mut events = store.watch(key, seen_at + 1).await?;
        while let Some(event) = events.next().await {
            let event = event?;
            if event.kv.key == key && event.kind == EventKind::Delete {
                break;
            }
        }
    }
}

/// Releases the lock if this acquisition still holds it; false when it was already lost.
pub async fn unlock(store: &dyn Store, guard: &LockGuard) -> Result<bool, StoreError> {
    let resp = store
        .txn(
            Txn::new()
                .when(vec![guard.still_held()])
                .and_then(vec![Op::delete(&guard.key)]),
        )
        .await?;
    Ok(resp.succeeded)
}
