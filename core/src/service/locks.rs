//! Named locks for other programs (the Metaparticle sync sidecar protocol): exclusive or
//! shared, held for a TTL and renewed by heartbeats. One Store key per lock holds its
//! holders and their expiry and is only changed by compare-and-swap, so any number of
//! server replicas agree.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::ServiceError;
use crate::model::ValidationError;
use crate::store::{decode, encode, Compare, KeyValue, Keys, Op, Store, Txn};

pub const DEFAULT_TTL_SECS: i64 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockMode {
    Exclusive,
    Shared,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockState {
    pub mode: LockMode,
    /// Holder → when its hold expires without a heartbeat.
    pub holders: BTreeMap<String, DateTime<Utc>>,
}

impl LockState {
    fn live(mut self, now: DateTime<Utc>) -> Option<Self> {
        self.holders.retain(|_, until| *until > now);
        (!self.holders.is_empty()).then_some(self)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquire {
    /// Taken or renewed.
    Held(LockState),
    /// Someone else holds it in a conflicting mode.
    Conflict(LockState),
}

fn validate(name: &str, holder: &str) -> Result<(), ServiceError> {
    if name.is_empty() || name.len() > 200 || name.chars().any(|c| c.is_control() || c == '/') {
        return Err(ValidationError::new("name", "use 1–200 characters, no `/`").into());
    }
    if holder.trim().is_empty() || holder.len() > 200 {
        return Err(ValidationError::new(
            "holder",
            "say who holds the lock: header X-Lock-Holder or ?holder=",
        )
        .into());
    }
    Ok(())
}

async fn read(
    store: &dyn Store,
    key: &str,
) -> Result<(Option<LockState>, Option<KeyValue>), ServiceError> {
    match store.get(key).await? {
        Some(kv) => Ok((decode::<LockState>(key, &kv.value).ok(), Some(kv))),
        None => Ok((None, None)),
    }
}

fn guard(key: &str, kv: &Option<KeyValue>) -> Compare {
    match kv {
        Some(kv) => Compare::mod_revision(key, kv.mod_revision),
        None => Compare::missing(key),
    }
}

/// The live state of a lock, if anyone holds it.
pub async fn status(
    store: &dyn Store,
    keys: &Keys,
    name: &str,
) -> Result<Option<LockState>, ServiceError> {
    let (state, _) = read(store, &keys.named_lock(name)).await?;
    Ok(state.and_then(|s| s.live(Utc::now())))
}

/// Takes the lock, or renews it when `holder` already has it.
pub async fn acquire(
    store: &dyn Store,
    keys: &Keys,
    name: &str,
    holder: &str,
    mode: LockMode,
    ttl_secs: i64,
) -> Result<Acquire, ServiceError> {
    validate(name, holder)?;
    if !(1..=86_400).contains(&ttl_secs) {
        return Err(ValidationError::new("ttl", "must be between 1 and 86400 seconds").into());
    }
    let key = keys.named_lock(name);
    loop {
        let (state, kv) = read(store, &key).await?;
        let now = Utc::now();
        let live = state.and_then(|s| s.live(now));
        let next = match live {
            None => LockState {
                mode,
                holders: BTreeMap::new(),
            },
            Some(s) if s.holders.contains_key(holder) && s.mode == mode => s,
            Some(s) if mode == LockMode::Shared && s.mode == LockMode::Shared => s,
            Some(s) => return Ok(Acquire::Conflict(s)),
        };
        let mut next = next;
        next.holders
            .insert(holder.to_string(), now + Duration::seconds(ttl_secs));
        let resp = store
            .txn(
                Txn::new()
                    .when(vec![guard(&key, &kv)])
                    .and_then(vec![Op::put(&key, encode(&next), None)]),
            )
            .await?;
        if resp.succeeded {
            return Ok(Acquire::Held(next));
        }
        // Someone changed the lock meanwhile: decide again on what is there now.
    }
}

/// Releases `holder`'s hold; false when it held nothing.
pub async fn release(
    store: &dyn Store,
    keys: &Keys,
    name: &str,
    holder: &str,
) -> Result<bool, ServiceError> {
    validate(name, holder)?;
    let key = keys.named_lock(name);
    loop {
        let (state, kv) = read(store, &key).await?;
        let Some(mut state) = state.and_then(|s| s.live(Utc::now())) else {
            return Ok(false);
        };
        if state.holders.remove(holder).is_none() {
            return Ok(false);
        }
        let op = if state.holders.is_empty() {
            Op::delete(&key)
        } else {
            Op::put(&key, encode(&state), None)
        };
        let resp = store
            .txn(Txn::new().when(vec![guard(&key, &kv)]).and_then(vec![op]))
            .await?;
        if resp.succeeded {
            return Ok(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::EmbeddedStore;

    #[tokio::test]
    async fn exclusive_shared_heartbeat_and_release() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).await.unwrap();
        let keys = Keys::default();
        assert!(status(&store, &keys, "db-migrate").await.unwrap().is_none());
        assert!(matches!(
            acquire(&store, &keys, "db-migrate", "a", LockMode::Exclusive, 30)
                .await
                .unwrap(),
            Acquire::Held(_)
        ));
        // Heartbeat by the holder: still held; anyone else: conflict.
        assert!(matches!(
            acquire(&store, &keys, "db-migrate", "a", LockMode::Exclusive, 30)
                .await
                .unwrap(),
            Acquire::Held(_)
        ));
        assert!(matches!(
            acquire(&store, &keys, "db-migrate", "b", LockMode::Exclusive, 30)
                .await
                .unwrap(),
            Acquire::Conflict(_)
        ));
        assert!(matches!(
            acquire(&store, &keys, "db-migrate", "b", LockMode::Shared, 30)
                .await
                .unwrap(),
            Acquire::Conflict(_)
        ));
        assert!(!release(&store, &keys, "db-migrate", "b").await.unwrap());
        assert!(release(&store, &keys, "db-migrate", "a").await.unwrap());
        assert!(status(&store, &keys, "db-migrate").await.unwrap().is_none());

        // Shared: many at once; exclusive waits until none is left.
        for h in ["r1", "r2", "r3"] {
            assert!(matches!(
                acquire(&store, &keys, "cache", h, LockMode::Shared, 30)
                    .await
                    .unwrap(),
                Acquire::Held(_)
            ));
        }
        assert_eq!(
            status(&store, &keys, "cache")
                .await
                .unwrap()
                .unwrap()
                .holders
                .len(),
            3
        );
        assert!(matches!(
            acquire(&store, &keys, "cache", "w", LockMode::Exclusive, 30)
                .await
                .unwrap(),
            Acquire::Conflict(_)
        ));
        for h in ["r1", "r2", "r3"] {
            release(&store, &keys, "cache", h).await.unwrap();
        }
        assert!(matches!(
            acquire(&store, &keys, "cache", "w", LockMode::Exclusive, 30)
                .await
                .unwrap(),
            Acquire::Held(_)
        ));
    }

    #[tokio::test]
    async fn a_hold_without_heartbeat_expires() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).await.unwrap();
        let keys = Keys::default();
        acquire(&store, &keys, "job", "a", LockMode::Exclusive, 1)
            .await
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while status(&store, &keys, "job").await.unwrap().is_some() {
            assert!(
                std::time::Instant::now() < deadline,
                "the hold never expired"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(matches!(
            acquire(&store, &keys, "job", "b", LockMode::Exclusive, 30)
                .await
                .unwrap(),
            Acquire::Held(_)
        ));
    }

    #[tokio::test]
    async fn bad_input_names_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).await.unwrap();
        let e = acquire(&store, &Keys::default(), "x", " ", LockMode::Exclusive, 30)
            .await
            .unwrap_err();
        assert_eq!(e.field(), Some("holder"));
        let e = acquire(&store, &Keys::default(), "x", "a", LockMode::Exclusive, 0)
            .await
            .unwrap_err();
        assert_eq!(e.field(), Some("ttl"));
    }
}
