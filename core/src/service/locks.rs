//! Named locks for other programs (the Metaparticle sync sidecar protocol): exclusive or
//! shared, held for a TTL and renewed by heartbeats. One Store key per lock holds its
//! holders and is only changed by compare-and-swap, so any number of server replicas agree.
//!
//! A holder's name is only a claim anyone can make, so each hold also records who took it:
//! a secret issued to that acquisition (stored as a hash) and the client's address. Renewing
//! or releasing a hold takes the secret, or — for clients that know nothing of secrets, like
//! Metaparticle's — the same address. Once a holder has presented its secret, the hold
//! answers to the secret alone. An address proves something only when it is the client's
//! own: a request forwarded by a proxy the server does not trust has the proxy's address,
//! shared by every client behind it ([`Caller::address_believed`]), and proves a holder only
//! by the secret.
//!
//! The store is shared with everything else (on etcd a full space quota stops every write,
//! sign-ins included), so a lock's key lives on a lease that ends just after its last hold,
//! holds last at most [`MAX_TTL_SECS`], and the number of locks, of holders per lock and of
//! holds per client address is capped ([`Limits`]). Each hold has a key of its own under
//! `locks/holds/<address>/`, on its lock's lease, so that an address's holds are counted
//! without reading every lock.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::ServiceError;
use crate::model::ValidationError;
use crate::store::{decode, encode, Compare, KeyValue, Keys, LeaseId, Op, Store, StoreError, Txn};

pub const DEFAULT_TTL_SECS: i64 = 30;
/// The longest a hold lasts without a heartbeat; a longer TTL is cut to it, so that one
/// client cannot keep locks from everyone for long.
pub const MAX_TTL_SECS: i64 = 3_600;
/// Lock names and holder names, in bytes.
pub const MAX_NAME_LEN: usize = 128;
pub const MAX_HOLDER_LEN: usize = 128;

/// How much of the store the lock service may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Locks held at once. Counted before a new lock is written, so replicas taking new
    /// locks at the same moment can pass it by a few.
    pub max_locks: usize,
    /// Holders of one (shared) lock.
    pub max_holders: usize,
    /// Holds taken from one client address (an IPv6 /64), over all locks: one client cannot
    /// take every lock. Counted like `max_locks`.
    pub max_holds_per_address: usize,
}

impl Default for Limits {
    /// At most about 10,000 locks × 32 holders × ~600 bytes (a hold with 128-byte names and
    /// its key under `locks/holds/`), some 200 MB: well inside etcd's 2 GB quota.
    fn default() -> Self {
        Self {
            max_locks: 10_000,
            max_holders: 32,
            max_holds_per_address: 1_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockMode {
    Exclusive,
    Shared,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockState {
    pub mode: LockMode,
    /// Holder name → its hold.
    pub holders: BTreeMap<String, Hold>,
}

/// One holder's hold. What proves the holder (the secret's hash, the address) stays inside
/// this module: callers see only the expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// When the hold ends without a heartbeat.
    pub expires_at: DateTime<Utc>,
    /// SHA-256 of the acquisition's secret: whoever can read the store (a backup, a
    /// monitoring account) still cannot act as the holder. Stored as URL-safe base64;
    /// holds written before were an array of numbers, and are still read.
    #[serde(with = "hash_text")]
    secret_sha256: [u8; 32],
    /// The client that took the hold, for clients that never send the secret; `None` when
    /// its address was not believed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    address: Option<IpAddr>,
    /// The address a hold came from when it was not believed (an untrusted proxy's): it
    /// proves nothing, but the hold counts against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    proxy: Option<IpAddr>,
    /// The secret has been presented: from then on the address alone proves nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    secret_used: bool,
}

/// A SHA-256 as text in the store; an array of 32 numbers (the first format) is read too.
mod hash_text {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(hash: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&URL_SAFE_NO_PAD.encode(hash))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Stored {
            Text(String),
            Numbers([u8; 32]),
        }
        match Stored::deserialize(d)? {
            Stored::Numbers(hash) => Ok(hash),
            Stored::Text(text) => URL_SAFE_NO_PAD
                .decode(text)
                .ok()
                .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                .ok_or_else(|| D::Error::custom("not a SHA-256 in URL-safe base64")),
        }
    }
}

/// Who asks: the holder's name and what proves it is that holder.
#[derive(Clone, Copy)]
pub struct Caller<'a> {
    pub holder: &'a str,
    /// The secret of the holder's acquisition, when the client sends one.
    pub secret: Option<&'a str>,
    /// The client's address as the server determined it: the client's own, or, for a
    /// request forwarded by a proxy the server does not trust, the proxy's.
    pub address: Option<IpAddr>,
    /// `address` is the client's own (no forwarding, or forwarded by trusted proxies), so
    /// that it may stand in for the secret. When false, the address is shared by every
    /// client behind the proxy: the request proves a holder only by its secret, and its new
    /// holds answer only to their secret. Either way, holds count against `address`.
    pub address_believed: bool,
}

impl Caller<'_> {
    /// The address the caller's holds count against.
    fn counted_as(&self) -> Option<IpAddr> {
        self.address.map(client_source)
    }

    /// Why a hold that does not answer to this caller stays closed to it.
    fn not_yours(&self, name: &str) -> Refusal {
        let (name, holder) = (name.to_string(), self.holder.to_string());
        if self.secret.is_none() && !self.address_believed {
            Refusal::AddressUnknown { name, holder }
        } else {
            Refusal::NotYours { name, holder }
        }
    }
}

/// Whom holds (and requests) are counted against: the address, or for IPv6 its /64, which a
/// client usually owns whole and can pick any address in.
pub fn client_source(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        v4 => v4,
    }
}

impl Hold {
    /// Whether `caller` is the client that took this hold.
    fn answers_to(&self, caller: &Caller) -> bool {
        match caller.secret {
            Some(secret) => bool::from(sha256(secret).ct_eq(&self.secret_sha256)),
            // No secret: the address decides, when it is the client's own and the holder
            // never showed it uses the secret (then an address shared with others, a NAT or
            // a proxy, proves too little).
            None => {
                caller.address_believed
                    && !self.secret_used
                    && self.address.is_some()
                    && self.address == caller.address
            }
        }
    }

    /// The address this hold counts against.
    fn counted_as(&self) -> Option<IpAddr> {
        self.address.or(self.proxy).map(client_source)
    }
}

impl LockState {
    fn live(mut self, now: DateTime<Utc>) -> Option<Self> {
        self.holders.retain(|_, hold| hold.expires_at > now);
        (!self.holders.is_empty()).then_some(self)
    }

    fn last_expiry(&self) -> Option<DateTime<Utc>> {
        self.holders.values().map(|h| h.expires_at).max()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquire {
    /// Taken, with the new acquisition's `secret`, or renewed (`secret` is `None`: the
    /// holder has it already).
    Held {
        state: LockState,
        secret: Option<String>,
    },
    /// Not taken; `state` is the lock as it is, when it is held.
    Refused {
        reason: Refusal,
        state: Option<LockState>,
    },
}

/// Why a lock was not taken or renewed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("lock `{name}` is held by someone else")]
    HeldByOthers { name: String },
    #[error(
        "`{holder}` holds lock `{name}` under an acquisition this request does not prove: \
         send that acquisition's secret (X-Lock-Secret or ?secret=), or, if it was never \
         sent, renew from the address that took the lock"
    )]
    NotYours { name: String, holder: String },
    #[error(
        "`{holder}` holds lock `{name}`, and this request's client address is not known, so \
         it cannot stand in for the acquisition's secret: the request carries \
         X-Forwarded-For, Forwarded or X-Real-IP from a proxy the server does not trust, \
         or in a form it does not read. Send the acquisition's secret (X-Lock-Secret or \
         ?secret=), or have the operator start idra-server with --trusted-proxy <proxy \
         address> for a proxy that sends X-Forwarded-For"
    )]
    AddressUnknown { name: String, holder: String },
    #[error(
        "`{holder}` has no hold on lock `{name}` with this secret (it ended or was \
         released): take the lock again without a secret"
    )]
    Ended { name: String, holder: String },
    #[error("lock `{name}` already has {max} holders, the most one lock takes")]
    TooManyHolders { name: String, max: usize },
    #[error("the lock service already keeps {max} locks, the most it takes: wait for some to be released or expire")]
    TooManyLocks { max: usize },
    #[error(
        "this client address already has {max} holds, the most one address takes: release \
         some or let them expire (clients behind a proxy share its address unless the \
         server is started with --trusted-proxy <proxy address>)"
    )]
    TooManyHoldsFromAddress { max: usize },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Release {
    Released,
    /// The holder holds nothing on this lock.
    NotHeld,
    /// The holder holds it, but the request does not prove to be that holder: why.
    Refused(Refusal),
}

/// Whether `given` equals `expected`, in a time that says nothing about how much of it was
/// right: both are hashed first, so even their lengths stay hidden.
pub fn secrets_match(given: &str, expected: &str) -> bool {
    sha256(given).ct_eq(&sha256(expected)).into()
}

fn sha256(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// 256 random bits, URL-safe so that clients can send it as `?secret=`.
fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn validate(name: &str, holder: &str) -> Result<(), ServiceError> {
    if name.is_empty()
        || name.len() > MAX_NAME_LEN
        || name.chars().any(|c| c.is_control() || c == '/')
    {
        return Err(ValidationError::new(
            "name",
            format!("a lock name has 1–{MAX_NAME_LEN} bytes, no `/` or control characters"),
        )
        .into());
    }
    if holder.trim().is_empty() {
        return Err(ValidationError::new(
            "holder",
            "say who holds the lock: header X-Lock-Holder or ?holder=",
        )
        .into());
    }
    if holder.len() > MAX_HOLDER_LEN || holder.chars().any(char::is_control) {
        return Err(ValidationError::new(
            "holder",
            format!("a holder name has at most {MAX_HOLDER_LEN} bytes and no control characters"),
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
        // A value that does not decode (an older format) counts as no hold.
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

/// Seconds of lease a lock needs: until its last hold ends, and one more so that the lease
/// never ends before the hold it carries.
fn lease_secs(state: &LockState, now: DateTime<Utc>) -> i64 {
    let until = state.last_expiry().unwrap_or(now);
    let millis = (until - now).num_milliseconds().max(0);
    (millis + 999) / 1000 + 1
}

/// The prefix of the keys of the holds counted against `address` (see [`client_source`]).
fn holds_of(keys: &Keys, address: Option<IpAddr>) -> String {
    let address = address.map_or_else(|| "unknown".into(), |ip| client_source(ip).to_string());
    format!("{}locks/holds/{address}/", keys.prefix())
}

/// A hold's own key, which only counts it (a lock name has no `/`).
fn hold_key(keys: &Keys, name: &str, holder: &str, hold: &Hold) -> String {
    format!("{}{name}/{holder}", holds_of(keys, hold.counted_as()))
}

/// Whether `caller`'s address may take another hold.
async fn address_full(
    store: &dyn Store,
    keys: &Keys,
    caller: &Caller<'_>,
    limits: Limits,
) -> Result<Option<Refusal>, ServiceError> {
    let held = store.count(&holds_of(keys, caller.counted_as())).await?;
    Ok(
        (held >= limits.max_holds_per_address).then_some(Refusal::TooManyHoldsFromAddress {
            max: limits.max_holds_per_address,
        }),
    )
}

/// Writes `next` (or deletes the lock's key when `None`) if the key is still as `kv` was
/// read, with a key per hold, and deletes the key of the `released` hold. Each write puts
/// the keys on a new lease sized to the holds, then ends the old lease, and with it the
/// keys of holds that ended meanwhile.
async fn write(
    store: &dyn Store,
    keys: &Keys,
    name: &str,
    kv: &Option<KeyValue>,
    next: Option<&LockState>,
    released: Option<(&str, &Hold)>,
    now: DateTime<Utc>,
) -> Result<bool, ServiceError> {
    let key = keys.named_lock(name);
    let mut ops = Vec::new();
    let lease = match next {
        Some(state) => {
            let lease = store.grant_lease(lease_secs(state, now)).await?;
            ops.push(Op::put(&key, encode(state), Some(lease)));
            for (holder, hold) in &state.holders {
                let key = hold_key(keys, name, holder, hold);
                ops.push(Op::put(&key, Vec::new(), Some(lease)));
            }
            Some(lease)
        }
        None => {
            ops.push(Op::delete(&key));
            None
        }
    };
    if let Some((holder, hold)) = released {
        ops.push(Op::delete(&hold_key(keys, name, holder, hold)));
    }
    // An error here may hide a write that landed: the new lease then carries the key and
    // must stay; unused, it ends by itself.
    let resp = store
        .txn(Txn::new().when(vec![guard(&key, kv)]).and_then(ops))
        .await?;
    let unused = if resp.succeeded {
        kv.as_ref().map(|kv| kv.lease)
    } else {
        lease
    };
    if let Some(lease) = unused.filter(|l| *l != 0) {
        end_lease(store, lease).await;
    }
    Ok(resp.succeeded)
}

/// Ends a lease that carries no key any more. Failing only leaves it to expire by itself.
async fn end_lease(store: &dyn Store, lease: LeaseId) {
    match store.revoke_lease(lease).await {
        Ok(()) | Err(StoreError::LeaseNotFound(_)) => {}
        Err(e) => tracing::debug!(lease, error = %e, "could not end a lock's old lease"),
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

/// Takes the lock, or renews `caller`'s hold when it proves to be its holder.
pub async fn acquire(
    store: &dyn Store,
    keys: &Keys,
    name: &str,
    caller: Caller<'_>,
    mode: LockMode,
    ttl_secs: i64,
    limits: Limits,
) -> Result<Acquire, ServiceError> {
    validate(name, caller.holder)?;
    if ttl_secs < 1 {
        return Err(ValidationError::new(
            "ttl",
            format!("must be at least 1 second (at most {MAX_TTL_SECS} are granted)"),
        )
        .into());
    }
    let ttl_secs = ttl_secs.min(MAX_TTL_SECS);
    let key = keys.named_lock(name);
    let refuse = |reason: Refusal, state: Option<LockState>| Ok(Acquire::Refused { reason, state });
    loop {
        let (state, kv) = read(store, &key).await?;
        let now = Utc::now();
        let until = now + Duration::seconds(ttl_secs);
        let live = state.and_then(|s| s.live(now));
        let ended = || Refusal::Ended {
            name: name.to_string(),
            holder: caller.holder.to_string(),
        };
        let held_by_others = || Refusal::HeldByOthers {
            name: name.to_string(),
        };
        let mut secret = None;
        let next = match live {
            // A secret renews an existing hold; it never starts one.
            None if caller.secret.is_some() => return refuse(ended(), None),
            None => {
                // Only a lock without a key adds to the count (an expired one is reused).
                if kv.is_none() && store.count(&keys.named_locks()).await? >= limits.max_locks {
                    return refuse(
                        Refusal::TooManyLocks {
                            max: limits.max_locks,
                        },
                        None,
                    );
                }
                if let Some(full) = address_full(store, keys, &caller, limits).await? {
                    return refuse(full, None);
                }
                let (hold, s) = new_hold(caller, until);
                secret = Some(s);
                LockState {
                    mode,
                    holders: BTreeMap::from([(caller.holder.to_string(), hold)]),
                }
            }
            Some(mut s) => {
                match s.holders.get(caller.holder) {
                    Some(hold) if !hold.answers_to(&caller) => {
                        return refuse(caller.not_yours(name), Some(s));
                    }
                    Some(_) if s.mode != mode => return refuse(held_by_others(), Some(s)),
                    Some(_) => {}
                    None if caller.secret.is_some() => return refuse(ended(), Some(s)),
                    None if mode == LockMode::Exclusive || s.mode == LockMode::Exclusive => {
                        return refuse(held_by_others(), Some(s))
                    }
                    None if s.holders.len() >= limits.max_holders => {
                        let reason = Refusal::TooManyHolders {
                            name: name.to_string(),
                            max: limits.max_holders,
                        };
                        return refuse(reason, Some(s));
                    }
                    None => {
                        if let Some(full) = address_full(store, keys, &caller, limits).await? {
                            return refuse(full, Some(s));
                        }
                    }
                }
                match s.holders.get_mut(caller.holder) {
                    Some(hold) => {
                        hold.expires_at = until;
                        hold.secret_used |= caller.secret.is_some();
                    }
                    None => {
                        let (hold, new) = new_hold(caller, until);
                        secret = Some(new);
                        s.holders.insert(caller.holder.to_string(), hold);
                    }
                }
                s
            }
        };
        if write(store, keys, name, &kv, Some(&next), None, now).await? {
            return Ok(Acquire::Held {
                state: next,
                secret,
            });
        }
        // Someone changed the lock meanwhile: decide again on what is there now.
    }
}

fn new_hold(caller: Caller, until: DateTime<Utc>) -> (Hold, String) {
    let secret = new_secret();
    // An address that is not the client's own proves nothing: the hold answers only to
    // its secret, and counts against that address.
    let (address, proxy) = if caller.address_believed {
        (caller.address, None)
    } else {
        (None, caller.address)
    };
    let hold = Hold {
        expires_at: until,
        secret_sha256: sha256(&secret),
        address,
        proxy,
        secret_used: false,
    };
    (hold, secret)
}

/// Releases `caller`'s hold when it proves to be its holder.
pub async fn release(
    store: &dyn Store,
    keys: &Keys,
    name: &str,
    caller: Caller<'_>,
) -> Result<Release, ServiceError> {
    validate(name, caller.holder)?;
    let key = keys.named_lock(name);
    loop {
        let (state, kv) = read(store, &key).await?;
        let now = Utc::now();
        let Some(mut state) = state.and_then(|s| s.live(now)) else {
            return Ok(Release::NotHeld);
        };
        let gone = match state.holders.remove(caller.holder) {
            None => return Ok(Release::NotHeld),
            Some(hold) if !hold.answers_to(&caller) => {
                return Ok(Release::Refused(caller.not_yours(name)))
            }
            Some(hold) => hold,
        };
        let next = (!state.holders.is_empty()).then_some(&state);
        let released = Some((caller.holder, &gone));
        if write(store, keys, name, &kv, next, released, now).await? {
            return Ok(Release::Released);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::store::{EmbeddedStore, EtcdOptions, EtcdStore};

    const LIMITS: Limits = Limits {
        max_locks: 10_000,
        max_holders: 32,
        max_holds_per_address: 1_000,
    };

    /// A client without a secret, at `ip`.
    fn at<'a>(holder: &'a str, ip: &str) -> Caller<'a> {
        Caller {
            holder,
            secret: None,
            address: Some(ip.parse().unwrap()),
            address_believed: true,
        }
    }

    /// A client without a secret behind a proxy at `ip` that the server does not trust.
    fn behind<'a>(holder: &'a str, ip: &str) -> Caller<'a> {
        Caller {
            address_believed: false,
            ..at(holder, ip)
        }
    }

    fn with<'a>(holder: &'a str, ip: &str, secret: &'a str) -> Caller<'a> {
        Caller {
            secret: Some(secret),
            ..at(holder, ip)
        }
    }

    async fn take(store: &dyn Store, name: &str, caller: Caller<'_>, mode: LockMode) -> Acquire {
        acquire(store, &Keys::default(), name, caller, mode, 30, LIMITS)
            .await
            .unwrap()
    }

    fn held(a: &Acquire) -> bool {
        matches!(a, Acquire::Held { .. })
    }

    fn refusal(a: Acquire) -> Refusal {
        match a {
            Acquire::Refused { reason, .. } => reason,
            held => panic!("expected a refusal, got {held:?}"),
        }
    }

    fn secret_of(a: Acquire) -> String {
        match a {
            Acquire::Held {
                secret: Some(s), ..
            } => s,
            other => panic!("expected a new hold, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn exclusive_shared_heartbeat_and_release() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).await.unwrap();
        let keys = Keys::default();
        let (a, b) = (at("a", "10.0.0.1"), at("b", "10.0.0.2"));
        assert!(status(&store, &keys, "db-migrate").await.unwrap().is_none());
        let first = take(&store, "db-migrate", a, LockMode::Exclusive).await;
        assert!(held(&first));
        // Heartbeat by the holder: still held, and no new secret; anyone else: conflict.
        assert_eq!(
            take(&store, "db-migrate", a, LockMode::Exclusive).await,
            Acquire::Held {
                state: status(&store, &keys, "db-migrate").await.unwrap().unwrap(),
                secret: None
            }
        );
        for mode in [LockMode::Exclusive, LockMode::Shared] {
            assert!(matches!(
                refusal(take(&store, "db-migrate", b, mode).await),
                Refusal::HeldByOthers { .. }
            ));
        }
        let r = |c| release(&store, &keys, "db-migrate", c);
        assert_eq!(r(b).await.unwrap(), Release::NotHeld);
        assert_eq!(r(a).await.unwrap(), Release::Released);
        assert_eq!(r(a).await.unwrap(), Release::NotHeld);
        assert!(status(&store, &keys, "db-migrate").await.unwrap().is_none());

        // Shared: many at once; exclusive waits until none is left.
        let readers = ["r1", "r2", "r3"].map(|h| at(h, "10.0.0.3"));
        for reader in readers {
            assert!(held(&take(&store, "cache", reader, LockMode::Shared).await));
        }
        let state = status(&store, &keys, "cache").await.unwrap().unwrap();
        assert_eq!(state.holders.len(), 3);
        assert!(!held(
            &take(&store, "cache", at("w", "10.0.0.4"), LockMode::Exclusive).await
        ));
        for reader in readers {
            release(&store, &keys, "cache", reader).await.unwrap();
        }
        assert!(held(
            &take(&store, "cache", at("w", "10.0.0.4"), LockMode::Exclusive).await
        ));
    }

    /// (c) A hold answers to its acquisition's secret from anywhere, or without the secret
    /// to its holder's address; once the secret was used, only to the secret.
    #[tokio::test]
    async fn the_secret_or_the_address_proves_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).await.unwrap();
        let keys = Keys::default();
        let x = LockMode::Exclusive;

        let secret = secret_of(take(&store, "l", at("a", "10.0.0.1"), x).await);
        assert_eq!(secret.len(), 43, "256 bits in URL-safe base64: {secret}");
        // Nobody else naming `a`: not from another address, not with a wrong secret.
        for caller in [at("a", "10.0.0.2"), with("a", "10.0.0.1", "guess")] {
            assert!(matches!(
                refusal(take(&store, "l", caller, x).await),
                Refusal::NotYours { .. }
            ));
            assert_eq!(
                release(&store, &keys, "l", caller).await.unwrap(),
                Release::Refused(Refusal::NotYours {
                    name: "l".into(),
                    holder: "a".into()
                })
            );
        }
        // A client without an address (none could be determined) proves nothing by it.
        let nowhere = Caller {
            holder: "a",
            secret: None,
            address: None,
            address_believed: true,
        };
        assert!(!held(&take(&store, "l", nowhere, x).await));
        // Its own address, without the secret (a Metaparticle client): renewed.
        assert!(held(&take(&store, "l", at("a", "10.0.0.1"), x).await));
        // The secret, from a new address: renewed, and from now on the secret is needed.
        assert!(held(
            &take(&store, "l", with("a", "10.0.0.9", &secret), x).await
        ));
        assert!(!held(&take(&store, "l", at("a", "10.0.0.1"), x).await));
        assert_eq!(
            release(&store, &keys, "l", at("a", "10.0.0.1"))
                .await
                .unwrap(),
            Release::Refused(Refusal::NotYours {
                name: "l".into(),
                holder: "a".into()
            })
        );
        assert_eq!(
            release(&store, &keys, "l", with("a", "10.0.0.1", &secret))
                .await
                .unwrap(),
            Release::Released
        );
        // A secret only renews: once its hold is gone it takes nothing.
        assert!(matches!(
            refusal(take(&store, "l", with("a", "10.0.0.1", &secret), x).await),
            Refusal::Ended { .. }
        ));
        // Each acquisition has its own secret.
        let again = secret_of(take(&store, "l", at("a", "10.0.0.1"), x).await);
        assert_ne!(again, secret);
        // Shared holders each have theirs.
        let s1 = secret_of(take(&store, "s", at("r1", "10.0.0.1"), LockMode::Shared).await);
        let s2 = secret_of(take(&store, "s", at("r2", "10.0.0.1"), LockMode::Shared).await);
        assert!(!held(
            &take(&store, "s", with("r1", "10.0.0.1", &s2), LockMode::Shared).await
        ));
        assert!(held(
            &take(&store, "s", with("r1", "10.0.0.1", &s1), LockMode::Shared).await
        ));
    }

    /// (d) What is stored and shown never holds a secret: only its hash.
    #[tokio::test]
    async fn secrets_are_stored_only_as_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).await.unwrap();
        let keys = Keys::default();
        let secret = secret_of(take(&store, "l", at("a", "10.0.0.1"), LockMode::Exclusive).await);
        let kv = store.get(&keys.named_lock("l")).await.unwrap().unwrap();
        assert!(!String::from_utf8_lossy(&kv.value).contains(&secret));
        let state = status(&store, &keys, "l").await.unwrap().unwrap();
        assert!(!format!("{state:?}").contains(&secret));
    }

    #[test]
    fn secrets_match_only_when_equal() {
        assert!(secrets_match("abc", "abc"));
        assert!(!secrets_match("abd", "abc"));
        assert!(!secrets_match("ab", "abc"));
        assert!(!secrets_match("", "abc"));
    }

    /// (e) The number of locks and of holders per lock is capped; expired locks make room.
    #[tokio::test]
    async fn locks_and_holders_are_capped() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).await.unwrap();
        let keys = Keys::default();
        let limits = Limits {
            max_locks: 2,
            max_holders: 2,
            max_holds_per_address: 100,
        };
        let take = |name: &'static str, holder: &'static str, ttl: i64| {
            let keys = keys.clone();
            let store = &store;
            async move {
                acquire(
                    store,
                    &keys,
                    name,
                    at(holder, "10.0.0.1"),
                    LockMode::Shared,
                    ttl,
                    limits,
                )
                .await
                .unwrap()
            }
        };
        assert!(held(&take("one", "a", 30).await));
        assert!(held(&take("two", "a", 1).await));
        assert_eq!(
            refusal(take("three", "a", 30).await),
            Refusal::TooManyLocks { max: 2 }
        );
        // Renewals and new holders of existing locks are not new locks.
        assert!(held(&take("one", "a", 30).await));
        assert!(held(&take("one", "b", 30).await));
        assert_eq!(
            refusal(take("one", "c", 30).await),
            Refusal::TooManyHolders {
                name: "one".into(),
                max: 2
            }
        );
        // `two` expires and its key goes with its lease: room for another lock.
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match take("three", "a", 30).await {
                Acquire::Held { .. } => break,
                refused => assert!(Instant::now() < deadline, "{refused:?}"),
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    #[tokio::test]
    async fn a_hold_without_heartbeat_expires() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).await.unwrap();
        let keys = Keys::default();
        let a = at("a", "10.0.0.1");
        acquire(&store, &keys, "job", a, LockMode::Exclusive, 1, LIMITS)
            .await
            .unwrap();
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        while status(&store, &keys, "job").await.unwrap().is_some() {
            assert!(Instant::now() < deadline, "the hold never expired");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(held(
            &take(&store, "job", at("b", "10.0.0.2"), LockMode::Exclusive).await
        ));
    }

    /// (f) A lock's key lives on a lease that outlasts its holds by little, so an abandoned
    /// lock leaves nothing in the store (on etcd, keys that were never cleaned up would fill
    /// the space quota). Each write moves the key to a new lease and ends the old one.
    async fn lock_keys_live_on_leases(store: &dyn Store, keys: &Keys) {
        let key = keys.named_lock("job");
        let a = at("a", "10.0.0.1");
        let take = |ttl| acquire(store, keys, "job", a, LockMode::Shared, ttl, LIMITS);
        take(30).await.unwrap();
        let first = store.get(&key).await.unwrap().unwrap().lease;
        assert_ne!(first, 0, "the lock key has no lease");
        take(1).await.unwrap();
        let second = store.get(&key).await.unwrap().unwrap().lease;
        assert_ne!(second, first);
        assert!(
            matches!(
                store.keep_alive(first).await,
                Err(StoreError::LeaseNotFound(_))
            ),
            "the old lease was left behind"
        );
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        while store.get(&key).await.unwrap().is_some() {
            assert!(
                Instant::now() < deadline,
                "the key of an expired lock stayed in the store"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        // Each hold's own key (which counts it against its address) went with the lock's.
        let holds = format!("{}locks/holds/", keys.prefix());
        let count = |prefix: String| async move { store.count(&prefix).await.unwrap() };
        assert_eq!(count(holds.clone()).await, 0, "a hold's key outlived it");
        // Releasing the last hold deletes the key and ends its lease.
        take(30).await.unwrap();
        assert_eq!(count(format!("{holds}10.0.0.1/")).await, 1);
        let lease = store.get(&key).await.unwrap().unwrap().lease;
        release(store, keys, "job", a).await.unwrap();
        assert!(store.get(&key).await.unwrap().is_none());
        assert!(matches!(
            store.keep_alive(lease).await,
            Err(StoreError::LeaseNotFound(_))
        ));
        assert_eq!(
            count(holds.clone()).await,
            0,
            "a released hold's key stayed"
        );
        // A hold that ends while others go on: its key goes with the next write.
        take(30).await.unwrap();
        let b = at("b", "10.0.0.2");
        acquire(store, keys, "job", b, LockMode::Shared, 1, LIMITS)
            .await
            .unwrap();
        assert_eq!(count(format!("{holds}10.0.0.2/")).await, 1);
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        take(30).await.unwrap();
        assert_eq!(count(format!("{holds}10.0.0.2/")).await, 0, "an ended hold");
        assert_eq!(count(format!("{holds}10.0.0.1/")).await, 1, "a live hold");
        release(store, keys, "job", a).await.unwrap();
        assert_eq!(count(holds).await, 0);
    }

    #[tokio::test]
    async fn lock_keys_live_on_leases_in_the_embedded_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).await.unwrap();
        lock_keys_live_on_leases(&store, &Keys::default()).await;
    }

    #[tokio::test]
    async fn lock_keys_live_on_leases_in_etcd() {
        let Ok(endpoints) = std::env::var("IDRA_TEST_ETCD") else {
            if std::env::var("IDRA_REQUIRE_ETCD").as_deref() == Ok("1") {
                panic!("IDRA_REQUIRE_ETCD=1 but IDRA_TEST_ETCD is not set");
            }
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr().lock(),
                "skipped: lock service keys on etcd leases: IDRA_TEST_ETCD is not set"
            );
            return;
        };
        let store = EtcdStore::connect(EtcdOptions::from_list(&endpoints))
            .await
            .unwrap();
        let keys = Keys::new(&format!("/idra-test/locks-{}/", uuid::Uuid::new_v4()));
        lock_keys_live_on_leases(&store, &keys).await;
    }

    /// One address takes at most 1,000 holds (a client with the token could otherwise take
    /// every lock for itself); its renewals and other addresses go on.
    #[tokio::test]
    async fn one_address_takes_at_most_1000_holds() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).await.unwrap();
        let keys = Keys::default();
        let limits = Limits::default();
        let take = |name: String, caller: Caller<'static>| {
            let keys = keys.clone();
            let store = &store;
            async move {
                acquire(store, &keys, &name, caller, LockMode::Shared, 60, limits)
                    .await
                    .unwrap()
            }
        };
        let hog = at("hog", "10.0.0.1");
        for i in 0..1000 {
            let r = take(format!("l{i}"), hog).await;
            assert!(held(&r), "hold {i}: {r:?}");
        }
        let e = refusal(take("l1000".into(), hog).await).to_string();
        assert!(e.contains("1000 holds") && e.contains("address"), "{e}");
        // Not as another holder of a lock it has, either.
        let e = refusal(take("l0".into(), at("hog-2", "10.0.0.1")).await).to_string();
        assert!(e.contains("1000 holds"), "{e}");
        assert!(held(&take("l0".into(), hog).await), "a renewal");
        assert!(held(&take("l1000".into(), at("b", "10.0.0.2")).await));
        assert!(held(&take("l0".into(), at("b", "10.0.0.2")).await));
    }

    /// Behind a proxy the server does not trust, the address is the proxy's, shared by
    /// everyone behind it: it proves no holder, neither for holds taken from it (they answer
    /// to their secret alone) nor for holds taken from the same address when it was believed.
    #[tokio::test]
    async fn an_address_that_is_not_the_clients_own_proves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).await.unwrap();
        let keys = Keys::default();
        let x = LockMode::Exclusive;
        let unknown = |holder: &str| Refusal::AddressUnknown {
            name: "l".into(),
            holder: holder.into(),
        };
        let secret = secret_of(take(&store, "l", behind("a", "10.0.0.5"), x).await);
        let kv = store.get(&keys.named_lock("l")).await.unwrap().unwrap();
        let stored = String::from_utf8_lossy(&kv.value).to_string();
        assert!(
            stored.contains(r#""proxy":"10.0.0.5""#) && !stored.contains("address"),
            "{stored}"
        );
        // Anyone behind the proxy, pod `a` itself included, renews and releases nothing
        // by the name, and is told why.
        assert_eq!(
            refusal(take(&store, "l", behind("a", "10.0.0.5"), x).await),
            unknown("a")
        );
        assert_eq!(
            release(&store, &keys, "l", behind("a", "10.0.0.5"))
                .await
                .unwrap(),
            Release::Refused(unknown("a"))
        );
        // Nor does the proxy's machine itself: the hold has no address.
        assert!(matches!(
            refusal(take(&store, "l", at("a", "10.0.0.5"), x).await),
            Refusal::NotYours { .. }
        ));
        assert!(matches!(
            release(&store, &keys, "l", at("a", "10.0.0.5"))
                .await
                .unwrap(),
            Release::Refused(Refusal::NotYours { .. })
        ));
        // The secret does, from anywhere.
        let proven = Caller {
            secret: Some(&secret),
            ..behind("a", "10.0.0.5")
        };
        assert!(held(&take(&store, "l", proven, x).await));
        assert_eq!(
            release(&store, &keys, "l", proven).await.unwrap(),
            Release::Released
        );

        // A hold taken from a believed address does not answer to a request that merely
        // shows the same address through an untrusted proxy.
        assert!(held(&take(&store, "l", at("m", "10.0.0.6"), x).await));
        assert_eq!(
            refusal(take(&store, "l", behind("m", "10.0.0.6"), x).await),
            unknown("m")
        );
        assert_eq!(
            release(&store, &keys, "l", behind("m", "10.0.0.6"))
                .await
                .unwrap(),
            Release::Refused(unknown("m"))
        );
        assert!(held(&take(&store, "l", at("m", "10.0.0.6"), x).await));
    }

    /// Holds are counted per client address (an IPv6 /64; behind an untrusted proxy, the
    /// proxy's); releases and expiries make room.
    #[tokio::test]
    async fn holds_are_counted_per_address() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).await.unwrap();
        let keys = Keys::default();
        let limits = Limits {
            max_holds_per_address: 2,
            ..Limits::default()
        };
        let take = |name: &'static str, caller: Caller<'static>, ttl: i64| {
            let keys = keys.clone();
            let store = &store;
            async move {
                acquire(store, &keys, name, caller, LockMode::Shared, ttl, limits)
                    .await
                    .unwrap()
            }
        };
        let full = Refusal::TooManyHoldsFromAddress { max: 2 };
        assert!(held(&take("x", at("a", "10.0.0.1"), 30).await));
        assert!(held(&take("y", at("a", "10.0.0.1"), 30).await));
        assert_eq!(refusal(take("z", at("a", "10.0.0.1"), 30).await), full);
        assert_eq!(refusal(take("x", at("b", "10.0.0.1"), 30).await), full);
        assert_eq!(refusal(take("z", behind("c", "10.0.0.1"), 30).await), full);
        assert!(held(&take("x", at("a", "10.0.0.1"), 30).await), "renewal");
        assert!(held(&take("z", at("d", "10.0.0.2"), 30).await));
        // Untrusted proxies' clients count against the proxy.
        assert!(held(&take("p1", behind("a", "10.0.0.3"), 30).await));
        assert!(held(&take("p2", behind("b", "10.0.0.3"), 30).await));
        assert_eq!(refusal(take("p3", behind("c", "10.0.0.3"), 30).await), full);
        // One IPv6 /64 is one client.
        assert!(held(&take("v", at("a", "2001:db8:1:2::1"), 30).await));
        assert!(held(&take("v", at("b", "2001:db8:1:2::ffff"), 30).await));
        assert_eq!(
            refusal(take("v", at("c", "2001:db8:1:2:abcd::1"), 30).await),
            full
        );
        assert!(held(&take("v", at("c", "2001:db8:1:3::1"), 30).await));
        // A release makes room.
        let a = at("a", "10.0.0.1");
        assert_eq!(
            release(&store, &keys, "y", a).await.unwrap(),
            Release::Released
        );
        assert!(held(&take("y", a, 1).await));
        // So does an expiry.
        assert_eq!(refusal(take("w", a, 30).await), full);
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match take("w", a, 30).await {
                Acquire::Held { .. } => break,
                refused => assert!(Instant::now() < deadline, "{refused:?}"),
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// A hold lasts at most an hour: a longer TTL is cut to [`MAX_TTL_SECS`].
    #[tokio::test]
    async fn a_hold_lasts_at_most_an_hour() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).await.unwrap();
        let keys = Keys::default();
        for ttl in [3601, 86_400, i64::MAX] {
            let name = format!("l{ttl}");
            let r = acquire(
                &store,
                &keys,
                &name,
                at("a", "10.0.0.1"),
                LockMode::Exclusive,
                ttl,
                LIMITS,
            )
            .await
            .unwrap();
            let Acquire::Held { state, .. } = r else {
                panic!("ttl {ttl}: {r:?}")
            };
            let expires = state.holders["a"].expires_at;
            assert!(
                expires <= Utc::now() + Duration::seconds(3600)
                    && expires > Utc::now() + Duration::seconds(3590),
                "ttl {ttl}: {expires}"
            );
        }
        assert_eq!(MAX_TTL_SECS, 3600);
    }

    /// A hold takes little room in the store: the secret's hash is text, not an array of
    /// numbers.
    #[tokio::test]
    async fn a_stored_hold_is_small() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).await.unwrap();
        let keys = Keys::default();
        take(&store, "l", at("a", "10.0.0.1"), LockMode::Exclusive).await;
        let kv = store.get(&keys.named_lock("l")).await.unwrap().unwrap();
        let json: serde_json::Value = serde_json::from_slice(&kv.value).unwrap();
        let hash = &json["data"]["holders"]["a"]["secret_sha256"];
        assert_eq!(
            hash.as_str().map(str::len),
            Some(43),
            "SHA-256 in URL-safe base64: {json}"
        );
        assert!(
            kv.value.len() < 220,
            "{}",
            String::from_utf8_lossy(&kv.value)
        );
    }

    /// Holds written by the previous release (the hash as an array of numbers) still
    /// answer to their secret and address: a server upgraded while locks are held does not
    /// hand them to others.
    #[tokio::test]
    async fn holds_in_the_earlier_format_still_count() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).await.unwrap();
        let keys = Keys::default();
        let hash: Vec<u8> = sha256("the-secret").to_vec();
        let expires = Utc::now() + Duration::seconds(60);
        let old = serde_json::json!({"schema": 1, "data": {"mode": "exclusive", "holders": {
            "a": {"expires_at": expires, "secret_sha256": hash, "address": "10.0.0.1",
                  "secret_used": false},
            "b": {"expires_at": expires, "secret_sha256": hash, "address": "10.0.0.1",
                  "secret_used": true},
        }}});
        let lease = store.grant_lease(60).await.unwrap();
        store
            .put(
                &keys.named_lock("l"),
                old.to_string().into_bytes(),
                Some(lease),
            )
            .await
            .unwrap();
        let x = LockMode::Exclusive;
        assert!(matches!(
            refusal(take(&store, "l", at("c", "10.0.0.2"), x).await),
            Refusal::HeldByOthers { .. }
        ));
        assert!(!held(&take(&store, "l", at("b", "10.0.0.1"), x).await));
        assert!(held(&take(&store, "l", at("a", "10.0.0.1"), x).await));
        assert!(held(
            &take(&store, "l", with("b", "10.0.0.2", "the-secret"), x).await
        ));
    }

    #[tokio::test]
    async fn bad_input_names_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).await.unwrap();
        let keys = Keys::default();
        let long = "n".repeat(MAX_NAME_LEN + 1);
        let fits = "n".repeat(MAX_NAME_LEN);
        for (name, holder, ttl, field) in [
            ("x", " ", 30, "holder"),
            ("x", long.as_str(), 30, "holder"),
            ("x", "a\nb", 30, "holder"),
            (long.as_str(), "a", 30, "name"),
            ("a/b", "a", 30, "name"),
            ("", "a", 30, "name"),
            ("x", "a", 0, "ttl"),
            ("x", "a", -1, "ttl"),
        ] {
            let caller = at(holder, "10.0.0.1");
            let e = acquire(
                &store,
                &keys,
                name,
                caller,
                LockMode::Exclusive,
                ttl,
                LIMITS,
            )
            .await
            .unwrap_err();
            assert_eq!(e.field(), Some(field), "{name:?} {holder:?} {ttl}");
        }
        let caller = at(&fits, "10.0.0.1");
        assert!(held(
            &acquire(
                &store,
                &keys,
                &fits,
                caller,
                LockMode::Exclusive,
                30,
                LIMITS
            )
            .await
            .unwrap()
        ));
    }
}
