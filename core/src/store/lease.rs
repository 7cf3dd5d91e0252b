//! Keeping a lease alive in the background, and noticing when it is lost.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::{LeaseId, Store, StoreError};

/// A background task refreshing a lease every third of its TTL. `lost()` resolves when the
/// lease can no longer be kept (expired, revoked, or the store unreachable past the TTL):
/// whoever holds locks on it must stop at once.
pub struct KeepAlive {
    pub lease: LeaseId,
    lost: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl KeepAlive {
    pub async fn start(store: Arc<dyn Store>, ttl_secs: i64) -> Result<Self, StoreError> {
        let lease = store.grant_lease(ttl_secs).await?;
        let (tx, rx) = watch::channel(false);
        let every = Duration::from_millis((ttl_secs.max(1) as u64 * 1000) / 3);
        let deadline_after = Duration::from_secs(ttl_secs.max(1) as u64);
        let task = tokio::spawn(async move {
            let mut last_ok = tokio::time::Instant::now();
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                match store.keep_alive(lease).await {
                    Ok(()) => last_ok = tokio::time::Instant::now(),
                    Err(StoreError::LeaseNotFound(_)) => break,
                    Err(e) => {
                        tracing::warn!(lease, error = %e, "lease keep-alive failed; retrying");
                        if last_ok.elapsed() >= deadline_after {
                            break;
                        }
                    }
                }
            }
            let _ = tx.send(true);
        });
        Ok(Self {
            lease,
            lost: rx,
            task,
        })
    }

    /// Resolves once the lease is lost.
    pub async fn lost(&self) {
        let mut rx = self.lost.clone();
        let _ = rx.wait_for(|lost| *lost).await;
    }

    pub fn is_lost(&self) -> bool {
        *self.lost.borrow()
    }

    /// Stops refreshing and revokes the lease, releasing everything held on it.
    pub async fn revoke(self, store: &dyn Store) -> Result<(), StoreError> {
        self.task.abort();
        match store.revoke_lease(self.lease).await {
            Ok(()) | Err(StoreError::LeaseNotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

impl Drop for KeepAlive {
    fn drop(&mut self) {
        self.task.abort();
    }
}
