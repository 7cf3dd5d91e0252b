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

/// Bits of a fencing token that hold the lock's create revision; the store's epoch sits
/// above them. 2^39 revisions is 170 years at 100 writes a second.
const REVISION_BITS: u32 = 39;

/// The epoch of a store: the minute (since 2024) it was first used, written once under
/// `meta/epoch`. A new store, an etcd rebuilt after a disaster or a move from the embedded
/// store to etcd counts revisions from 1 again; with the epoch above the revision, its
/// tokens still beat every token an earlier store issued (and that a destination keeps).
pub async fn fence_epoch(store: &dyn Store, key: &str) -> Result<i64, StoreError> {
    let minutes = (chrono::Utc::now().timestamp() - EPOCH_ORIGIN).max(60) / 60;
    let resp = store
        .txn(
            Txn::new()
                .when(vec![Compare::missing(key)])
                .and_then(vec![Op::put(key, minutes.to_string().into_bytes(), None)])
                .or_else(vec![Op::get(key)]),
        )
        .await?;
    if resp.succeeded {
        return Ok(minutes);
    }
    let kv = resp.into_gets().into_iter().next().flatten();
    kv.and_then(|kv| String::from_utf8_lossy(&kv.value).trim().parse().ok())
        .ok_or_else(|| StoreError::Corrupt {
            path: key.into(),
            message: "the store's epoch is not a number; restore it or delete the key to start a new epoch".into(),
        })
}

/// 2024-01-01T00:00:00Z.
const EPOCH_ORIGIN: i64 = 1_704_067_200;

impl LockGuard {
    /// The fencing token a destination keeps: the store's epoch, then the lock's create
    /// revision. Orders like the revision within one store, and any later store's tokens
    /// above every earlier one's.
    pub fn token(&self, epoch: i64) -> i64 {
        (epoch << REVISION_BITS) | (self.fence & ((1 << REVISION_BITS) - 1))
    }

    /// A compare that holds only while this exact acquisition of the lock is current. Add it
    /// to every transaction that must not land after the lock was lost.
    pub fn still_held(&self) -> Compare {
        Compare::create_revision(&self.key, self.fence)
    }
}

/// Takes the lock if it is free; `None` when it is held — by another holder, or by another
/// acquisition on this same lease. Two acquisitions are never one: each has its own fencing
/// token, so one releasing cannot free the other's lock.
pub async fn try_lock(
    store: &dyn Store,
    key: &str,
    holder: &str,
    lease: LeaseId,
) -> Result<Option<LockGuard>, StoreError> {
    Ok(attempt(store, key, &acquisition_value(holder), lease)
        .await?
        .0)
}

/// What a lock key holds: the holder's name (agents and tests read it), then a space and an
/// id unique to this acquisition, so a retried attempt can recognise its own write.
fn acquisition_value(holder: &str) -> Vec<u8> {
    format!("{holder} {}", uuid::Uuid::new_v4().simple()).into_bytes()
}

/// The holder's name in a lock key's value.
pub fn lock_holder(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    match text.rsplit_once(' ') {
        Some((holder, _)) => holder.to_string(),
        None => text.into_owned(),
    }
}

/// Returns the guard, or the revision at which the lock was seen held by someone else.
async fn attempt(
    store: &dyn Store,
    key: &str,
    value: &[u8],
    lease: LeaseId,
) -> Result<(Option<LockGuard>, i64), StoreError> {
    let resp = store
        .txn(
            Txn::new()
                .when(vec![Compare::missing(key)])
                .and_then(vec![Op::put(key, value.to_vec(), Some(lease))])
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
        // Our own earlier attempt landed although its answer was lost (a retry after a
        // timeout): this acquisition holds it.
        Some(kv) if kv.lease == lease && kv.value == value => Ok((
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

/// Waits until the lock is ours. Cancel by dropping the future. An unavailable store is
/// retried with the same acquisition value, so an attempt that landed although its answer
/// was lost is recognised as ours rather than waited on forever.
pub async fn lock(
    store: &dyn Store,
    key: &str,
    holder: &str,
    lease: LeaseId,
) -> Result<LockGuard, StoreError> {
    let value = acquisition_value(holder);
    loop {
        match wait_turn(store, key, &value, lease).await {
            Ok(Some(guard)) => return Ok(guard),
            Ok(None) => {}
            Err(e) if e.is_retryable() => {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await
            }
            Err(e) => return Err(e),
        }
    }
}

/// One attempt; when the lock is held, waits for its release (then `None`: try again).
async fn wait_turn(
    store: &dyn Store,
    key: &str,
    value: &[u8],
    lease: LeaseId,
) -> Result<Option<LockGuard>, StoreError> {
    let (guard, seen_at) = attempt(store, key, value, lease).await?;
    if guard.is_some() {
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
    Ok(None)
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
