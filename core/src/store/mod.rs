//! The Store contract: one async trait with an etcd backend (cluster mode) and an embedded,
//! file-persisted backend (single mode) that keep the same semantics — revisions,
//! compare-and-swap transactions, watches from a revision, leases that delete their keys on
//! expiry. Locks and leader election are built once, on top of the trait, the way etcd's
//! own concurrency package builds them, so both backends share one implementation.

mod codec;
mod election;
mod embedded;
mod error;
mod etcd;
mod keys;
mod lease;
mod lock;
mod types;

use std::pin::Pin;

use async_trait::async_trait;
use futures::Stream;

pub use codec::{decode, encode, SCHEMA_VERSION};
pub use election::{campaign, leader, resign, Leadership};
pub use embedded::EmbeddedStore;
pub use error::StoreError;
pub use etcd::{EtcdOptions, EtcdStore};
pub use keys::Keys;
pub use lease::KeepAlive;
pub use lock::{fence_epoch, lock, lock_holder, try_lock, unlock, LockGuard};
pub use types::{
    Compare, CompareOp, CompareTarget, EventKind, KeyValue, LeaseId, ListOptions, ListPage,
    MemberHealth, Op, OpResult, Txn, TxnResponse, WatchEvent,
};

/// Operations per transaction when a write spans many keys: etcd refuses more than 128 by
/// default (`--max-txn-ops`), and users run it with its defaults.
pub const MAX_TXN_OPS: usize = 100;

pub type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchEvent, StoreError>> + Send>>;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// "embedded" or "etcd", for the dashboard and logs.
    fn backend(&self) -> &'static str;

    /// Runs the compares; if all hold, the `success` ops, else the `failure` ops — atomically,
    /// as one revision.
    async fn txn(&self, txn: Txn) -> Result<TxnResponse, StoreError>;

    /// Keys under `prefix` in key order, after `start_after`, at most `limit` (0: all).
    async fn list(&self, prefix: &str, options: ListOptions) -> Result<ListPage, StoreError>;

    /// How many keys are under `prefix`, without reading their values: the dashboard counts
    /// thousands of keys on every page load.
    async fn count(&self, prefix: &str) -> Result<usize, StoreError>;

    /// Every change under `prefix` with a revision ≥ `from_revision`, in order.
    /// Fails with [`StoreError::Compacted`] when that history is gone.
    async fn watch(&self, prefix: &str, from_revision: i64) -> Result<WatchStream, StoreError>;

    /// A lease that expires `ttl_secs` after its last keep-alive, deleting its keys.
    async fn grant_lease(&self, ttl_secs: i64) -> Result<LeaseId, StoreError>;

    /// Refreshes a lease; [`StoreError::LeaseNotFound`] once it has expired.
    async fn keep_alive(&self, lease: LeaseId) -> Result<(), StoreError>;

    /// Ends a lease now, deleting its keys.
    async fn revoke_lease(&self, lease: LeaseId) -> Result<(), StoreError>;

    /// Health of the store: the embedded file, or each etcd member.
    async fn health(&self) -> Vec<MemberHealth>;

    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let resp = self.txn(Txn::new().and_then(vec![Op::get(key)])).await?;
        Ok(resp.into_gets().into_iter().next().flatten())
    }

    /// Several keys in one round trip per 100 keys (etcd refuses transactions of more than 128
    /// operations by default); `None` where a key is absent.
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<KeyValue>>, StoreError> {
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(MAX_TXN_OPS) {
            let ops = chunk.iter().map(|key| Op::get(key)).collect();
            out.extend(self.txn(Txn::new().and_then(ops)).await?.into_gets());
        }
        Ok(out)
    }

    /// Puts unconditionally; returns the new revision.
    async fn put(
        &self,
        key: &str,
        value: Vec<u8>,
        lease: Option<LeaseId>,
    ) -> Result<i64, StoreError> {
        let resp = self
            .txn(Txn::new().and_then(vec![Op::put(key, value, lease)]))
            .await?;
        Ok(resp.revision)
    }

    /// Deletes; true when the key existed.
    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let resp = self.txn(Txn::new().and_then(vec![Op::delete(key)])).await?;
        Ok(matches!(resp.results.first(), Some(OpResult::Delete { deleted }) if *deleted > 0))
    }

    /// Every key under `prefix`, paging through the backend.
    async fn list_all(&self, prefix: &str) -> Result<Vec<KeyValue>, StoreError> {
        Ok(self.list_all_at(prefix).await?.0)
    }

    /// Every key under `prefix`, and the store's revision when the first page was read: a
    /// watch from the next revision sees every change the pages may have missed (at worst
    /// some twice).
    async fn list_all_at(&self, prefix: &str) -> Result<(Vec<KeyValue>, i64), StoreError> {
        let mut out = Vec::new();
        let mut revision = None;
        let mut start_after = None;
        loop {
            let page = self
                .list(
                    prefix,
                    ListOptions {
                        start_after: start_after.clone(),
                        limit: 500,
                    },
                )
                .await?;
            revision.get_or_insert(page.revision);
            start_after = page.kvs.last().map(|kv| kv.key.clone());
            out.extend(page.kvs);
            if !page.more {
                return Ok((out, revision.unwrap_or_default()));
            }
        }
    }
}

/// Connects to the store a deployment asked for: etcd when endpoints are given, otherwise
/// the embedded store in `data_dir`.
pub async fn open(
    etcd: Option<EtcdOptions>,
    data_dir: &std::path::Path,
) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    match etcd {
        Some(options) => Ok(std::sync::Arc::new(EtcdStore::connect(options).await?)),
        None => Ok(std::sync::Arc::new(
            EmbeddedStore::open(&data_dir.join("store")).await?,
        )),
    }
}
