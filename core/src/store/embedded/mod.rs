//! The single-node store of single mode. Same semantics as etcd for everything Idra uses;
//! durable through a write-ahead log (one fsynced JSON line per change) compacted into a
//! snapshot at open and every few thousand records.

mod persist;
mod state;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;

use super::{
    ListOptions, ListPage, MemberHealth, Store, StoreError, Txn, TxnResponse, WatchEvent,
    WatchStream,
};
use persist::Persistence;
use state::State;

/// A handle to an embedded store. Clones share the same store (like two etcd clients).
#[derive(Clone)]
pub struct EmbeddedStore {
    shared: Arc<Shared>,
}

struct Shared {
    dir: PathBuf,
    state: Mutex<State>,
    events: broadcast::Sender<Arc<Vec<WatchEvent>>>,
    sweeper: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(handle) = self.sweeper.get_mut().ok().and_then(Option::take) {
            handle.abort();
        }
    }
}

const SWEEP_EVERY: Duration = Duration::from_millis(100);
const WATCH_BUFFER: usize = 8192;

impl EmbeddedStore {
    /// Opens (or creates) the store in `dir`. Fails with [`StoreError::InUse`] when another
    /// process has it open. Must be called inside a Tokio runtime (it starts the lease sweeper).
    pub async fn open(dir: &Path) -> Result<Self, StoreError> {
        let dir_owned = dir.to_path_buf();
        let (persistence, recovered) =
            tokio::task::spawn_blocking(move || Persistence::open(&dir_owned))
                .await
                .expect("store open task panicked")?;
        let state = State::recover(recovered, persistence, Instant::now());
        let (events, _) = broadcast::channel(WATCH_BUFFER);
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            state: Mutex::new(state),
            events,
            sweeper: Mutex::new(None),
        });
        let handle = tokio::spawn(sweep_leases(Arc::downgrade(&shared)));
        *shared.sweeper.lock().expect("sweeper mutex") = Some(handle);
        Ok(Self { shared })
    }

    /// Stops the lease sweeper and waits for it, so the directory can be reopened at once
    /// (tests of persistence across restart use this).
    pub async fn close(self) {
        let handle = self.shared.sweeper.lock().expect("sweeper mutex").take();
        if let Some(handle) = handle {
            handle.abort();
            let _ = handle.await;
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves State consistent in memory (every mutation
        // is validated before it is applied), so keep serving rather than poisoning forever.
        self.shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn publish(&self, events: Vec<WatchEvent>) {
        if !events.is_empty() {
            // No receivers is fine: nobody is watching.
            let _ = self.shared.events.send(Arc::new(events));
        }
    }
}

async fn sweep_leases(shared: Weak<Shared>) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    loop {
        tick.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let store = EmbeddedStore { shared };
        let expired = store.state().expired_leases(Instant::now());
        for lease in expired {
            let result = {
                let mut state = store.state();
                state.revoke(lease)
            };
            match result {
                Ok(events) => store.publish(events),
                Err(StoreError::LeaseNotFound(_)) => {}
                Err(e) => tracing::error!(error = %e, "embedded store: expiring lease failed"),
            }
        }
    }
}

#[async_trait]
impl Store for EmbeddedStore {
    fn backend(&self) -> &'static str {
        "embedded"
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResponse, StoreError> {
        // The state lock is held across the fsync so the log order is the revision order.
        let (resp, events) = {
            let mut state = self.state();
            state.txn(txn)?
        };
        self.publish(events);
        Ok(resp)
    }

    async fn list(&self, prefix: &str, options: ListOptions) -> Result<ListPage, StoreError> {
        Ok(self.state().list(prefix, &options))
    }

    async fn count(&self, prefix: &str) -> Result<usize, StoreError> {
        Ok(self.state().count(prefix))
    }

    async fn watch(&self, prefix: &str, from_revision: i64) -> Result<WatchStream, StoreError> {
        let prefix = prefix.to_string();
        // Backlog and subscription are taken under the state lock, and events are published
        // only after the lock that produced them is released, so an event is either in the
        // backlog or arrives on the channel with a higher revision — never both, never lost.
        let (backlog, receiver, last_backlog) = {
            let state = self.state();
            let backlog = state.history_from(&prefix, from_revision)?;
            let receiver = self.shared.events.subscribe();
            (backlog, receiver, state.revision())
        };
        let live = BroadcastStream::new(receiver)
            .map(move |item| match item {
                Ok(events) => Ok(events),
                Err(_) => Err(StoreError::WatchLagged),
            })
            .scan(false, |failed, item| {
                // After a lag error the stream ends: the caller must re-watch.
                if *failed {
                    return futures::future::ready(None);
                }
                *failed = item.is_err();
                futures::future::ready(Some(item))
            })
            .flat_map(move |item| {
                let out: Vec<Result<WatchEvent, StoreError>> = match item {
                    Ok(events) => events
                        .iter()
                        .filter(|e| {
                            e.kv.key.starts_with(prefix.as_str())
                                && e.kv.mod_revision > last_backlog
                                && e.kv.mod_revision >= from_revision
                        })
                        .cloned()
                        .map(Ok)
                        .collect(),
                    Err(e) => vec![Err(e)],
                };
                futures::stream::iter(out)
            });
        Ok(Box::pin(
            futures::stream::iter(backlog.into_iter().map(Ok)).chain(live),
        ))
    }

    async fn grant_lease(&self, ttl_secs: i64) -> Result<i64, StoreError> {
        self.state().grant(ttl_secs, Instant::now())
    }

    async fn keep_alive(&self, lease: i64) -> Result<(), StoreError> {
        self.state().refresh(lease, Instant::now())
    }

    async fn revoke_lease(&self, lease: i64) -> Result<(), StoreError> {
        let events = self.state().revoke(lease)?;
        self.publish(events);
        Ok(())
    }

    async fn health(&self) -> Vec<MemberHealth> {
        let state = self.state();
        vec![MemberHealth {
            name: format!("embedded ({})", self.shared.dir.display()),
            healthy: true,
            detail: format!("revision {}, {} keys", state.revision(), state.key_count()),
        }]
    }
}
