//! An agent's registration: `agents/<id>` written on a kept-alive lease. If the lease is
//! lost (store unreachable past the TTL), the agent registers again with a new lease.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use idra_core::model::AgentInfo;
use idra_core::store::{encode, KeepAlive, Keys, Store, StoreError};
use tokio::sync::oneshot;

pub struct Membership {
    pub info: AgentInfo,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

/// Unique per process: host, pid and a random suffix (two agents on one machine differ).
pub fn new_agent_id() -> String {
    let host = hostname();
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
    format!("{host}-{}-{suffix}", std::process::id())
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

async fn register(
    store: &Arc<dyn Store>,
    keys: &Keys,
    info: &AgentInfo,
    ttl: i64,
) -> Result<KeepAlive, StoreError> {
    let lease = KeepAlive::start(store.clone(), ttl).await?;
    store
        .put(&keys.agent(&info.id), encode(info), Some(lease.lease))
        .await?;
    Ok(lease)
}

impl Membership {
    /// Registers now (so a store problem is reported at start-up) and keeps registered.
    pub async fn start(
        store: Arc<dyn Store>,
        keys: Keys,
        ttl_secs: i64,
        address: String,
    ) -> Result<Self, StoreError> {
        let info = AgentInfo {
            id: new_agent_id(),
            host: hostname(),
            address,
            version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: Utc::now(),
        };
        let first = register(&store, &keys, &info, ttl_secs).await?;
        let (stop_tx, mut stop_rx) = oneshot::channel();
        let task_info = info.clone();
        let task = tokio::spawn(async move {
            let mut lease = first;
            loop {
                tokio::select! {
                    _ = &mut stop_rx => {
                        let _ = lease.revoke(store.as_ref()).await;
                        return;
                    }
                    _ = lease.lost() => {
                        tracing::warn!(agent = %task_info.id, "agent lease lost; registering again");
                        loop {
                            match register(&store, &keys, &task_info, ttl_secs).await {
                                Ok(l) => { lease = l; break; }
                                Err(e) => {
                                    tracing::warn!(error = %e, "agent registration failed; retrying");
                                    tokio::time::sleep(Duration::from_secs(1)).await;
                                }
                            }
                        }
                    }
                }
            }
        });
        Ok(Self {
            info,
            stop: Some(stop_tx),
            task,
        })
    }

    /// Deregisters (revokes the lease) and waits for that to finish.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}
