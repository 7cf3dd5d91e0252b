//! Cluster mode: agents sharing etcd. Each agent runs a *session*: one kept-alive lease
//! that carries its registration (`agents/<id>`), its election candidacy and the locks of
//! the syncs it runs. The elected leader writes assignments; every agent runs the enabled
//! syncs assigned to it, each under its lock. Losing the lease ends the session at once —
//! every sync stops mid-batch (nothing uncommitted lands: the destination rolls back and
//! the fencing token refuses anything late) — and the agent registers again.

pub mod assign;
pub mod leader;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use idra_core::model::AgentInfo;
use idra_core::secret::Cipher;
use idra_core::store::{encode, KeepAlive, Keys, Store, StoreError};
use tokio::sync::watch;

use crate::engine::Supervisor;
use crate::membership::{hostname, new_agent_id};

pub struct ClusterAgent {
    pub store: Arc<dyn Store>,
    pub keys: Keys,
    pub cipher: Cipher,
    pub lease_ttl: i64,
    pub address: String,
}

impl ClusterAgent {
    /// Runs sessions until `shutdown` flips; then finishes the current batches, resigns and
    /// revokes the lease (so another agent takes over at once instead of after the TTL).
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> Result<(), StoreError> {
        let info = AgentInfo {
            id: new_agent_id(),
            host: hostname(),
            address: self.address.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: Utc::now(),
        };
        tracing::info!(agent = %info.id, "cluster agent starting");
        loop {
            let lease = match KeepAlive::start(self.store.clone(), self.lease_ttl).await {
                Ok(l) => l,
                Err(e) if e.is_retryable() => {
                    tracing::warn!(error = %e, "cannot reach the store; retrying");
                    tokio::select! { _ = tokio::time::sleep(Duration::from_secs(1)) => continue, _ = shutdown.changed() => return Ok(()) }
                }
                Err(e) => return Err(e),
            };
            if let Err(e) = self
                .store
                .put(&self.keys.agent(&info.id), encode(&info), Some(lease.lease))
                .await
            {
                tracing::warn!(error = %e, "cannot register; retrying");
                continue;
            }
            let (session_stop, session_rx) = watch::channel(false);
            let leader = tokio::spawn(leader::run(
                self.store.clone(),
                self.keys.clone(),
                info.id.clone(),
                lease.lease,
                session_rx.clone(),
            ));
            let supervisor = Arc::new(Supervisor {
                store: self.store.clone(),
                keys: self.keys.clone(),
                cipher: self.cipher.clone(),
                agent_id: info.id.clone(),
                lease: lease.lease,
                reconcile_every: leader::RECONCILE_EVERY,
            });
            let worker = tokio::spawn(supervisor.run(session_rx));
            tokio::select! {
                _ = lease.lost() => {
                    tracing::error!(agent = %info.id, "lease lost: stopping every sync now, then registering again");
                    worker.abort();
                    leader.abort();
                    let _ = session_stop.send(true);
                }
                _ = shutdown.changed() => {
                    let _ = session_stop.send(true);
                    let _ = worker.await;
                    let _ = leader.await;
                    let _ = lease.revoke(self.store.as_ref()).await;
                    tracing::info!(agent = %info.id, "stopped");
                    return Ok(());
                }
            }
        }
    }
}
