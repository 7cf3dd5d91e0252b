//! Runs the enabled syncs the leader assigned to this agent. Reconciles every few hundred
//! milliseconds: starts newly assigned syncs, restarts edited ones, stops revoked,
//! disabled and deleted ones (after their current batch). Each sync runs under its lock on
//! the agent's lease; the lock's fencing token guards its offset commits and its
//! destination writes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use idra_core::model::Assignment;
use idra_core::model::SyncConfig;
use idra_core::secret::{Cipher, DataSourceRecord};
use idra_core::store::{self, decode, Keys, LeaseId, Store};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{Backoff, OffsetStore, Runner, StoreOffsets, SyncJob};
use crate::connectors::{ConnectionSpec, ConnectorError};

pub struct Supervisor {
    pub store: Arc<dyn Store>,
    pub keys: Keys,
    pub cipher: Cipher,
    pub agent_id: String,
    /// The agent's session lease: the sync locks live on it, so they end with the agent.
    pub lease: LeaseId,
    pub reconcile_every: Duration,
}

struct Running {
    updated_at: DateTime<Utc>,
    stop: watch::Sender<bool>,
    task: SyncTask,
    /// Set when the sync ended on a fatal error: it is not restarted until edited.
    failed: Arc<std::sync::atomic::AtomicBool>,
}

/// A sync's task, aborted when dropped: when the supervisor itself is aborted (the agent
/// lost its lease) every run it started ends with it, instead of running on detached until
/// its next fenced commit (an unfenced destination would take its writes).
struct SyncTask(JoinHandle<()>);

impl SyncTask {
    fn is_finished(&self) -> bool {
        self.0.is_finished()
    }
}

impl Drop for SyncTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Supervisor {
    async fn connection(&self, id: &str) -> Result<ConnectionSpec, ConnectorError> {
        let key = self.keys.datasource(id);
        let kv = self
            .store
            .get(&key)
            .await
            .map_err(|e| ConnectorError::retryable(format!("the Idra store: {e}")))?
            .ok_or_else(|| {
                ConnectorError::fatal(format!(
                    "data source {id} does not exist; edit the sync to pick another"
                ))
            })?;
        let record: DataSourceRecord =
            decode(&key, &kv.value).map_err(|e| ConnectorError::fatal(e.to_string()))?;
        let secrets = record
            .open_secrets(&self.cipher)
            .map_err(|e| ConnectorError::fatal(e.to_string()))?;
        Ok(ConnectionSpec {
            kind: record.source.kind,
            connection_string: record.source.connection_string,
            options: record.source.options,
            secrets,
        })
    }

    async fn enabled_syncs(&self) -> Result<HashMap<String, SyncConfig>, String> {
        let mut mine = std::collections::HashSet::new();
        for kv in self
            .store
            .list_all(&self.keys.assignments())
            .await
            .map_err(|e| e.to_string())?
        {
            if let Ok(a) = decode::<Assignment>(&kv.key, &kv.value) {
                if a.agent == self.agent_id {
                    mine.insert(a.sync_id);
                }
            }
        }
        let mut out = HashMap::new();
        for kv in self
            .store
            .list_all(&self.keys.syncs())
            .await
            .map_err(|e| e.to_string())?
        {
            match decode::<SyncConfig>(&kv.key, &kv.value) {
                Ok(s) if s.enabled && mine.contains(&s.id) => {
                    out.insert(s.id.clone(), s);
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "skipping an unreadable sync"),
            }
        }
        Ok(out)
    }

    /// Runs until `shutdown` flips, then stops every sync after its current batch.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut running: HashMap<String, Running> = HashMap::new();
        // Tasks asked to stop (revoked, disabled, edited) that have not ended yet. An edited
        // sync starts again only once its old task ended and released the lock: two runs of
        // one sync must never overlap.
        let mut stopping: HashMap<String, SyncTask> = HashMap::new();
        loop {
            stopping.retain(|_, task| !task.is_finished());
            match self.enabled_syncs().await {
                Ok(wanted) => {
                    self.stop_unwanted(&wanted, &mut running, &mut stopping);
                    for (id, sync) in wanted {
                        if running.contains_key(&id) || stopping.contains_key(&id) {
                            continue;
                        }
                        running.insert(id, self.clone().start(sync));
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot list syncs; retrying"),
            }
            tokio::select! {
                _ = tokio::time::sleep(self.reconcile_every) => {}
                _ = shutdown.changed() => break,
            }
        }
        let mut ending: Vec<SyncTask> = stopping.into_values().collect();
        for (_, r) in running.drain() {
            let _ = r.stop.send(true);
            ending.push(r.task);
        }
        for mut task in ending {
            let _ = (&mut task.0).await;
        }
    }

    /// Asks every running sync that is no longer wanted as it runs (revoked, disabled,
    /// deleted, edited, or ended without a fatal error) to stop after its batch, and moves
    /// its task to `stopping`.
    fn stop_unwanted(
        &self,
        wanted: &HashMap<String, SyncConfig>,
        running: &mut HashMap<String, Running>,
        stopping: &mut HashMap<String, SyncTask>,
    ) {
        let unwanted: Vec<String> = running
            .iter()
            .filter(|(id, r)| {
                let failed = r.failed.load(std::sync::atomic::Ordering::SeqCst);
                let current = wanted
                    .get(*id)
                    .is_some_and(|s| s.updated_at == r.updated_at);
                !(current && (failed || !r.task.is_finished()))
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in unwanted {
            if let Some(r) = running.remove(&id) {
                let _ = r.stop.send(true);
                stopping.insert(id, r.task);
            }
        }
    }

    fn start(self: Arc<Self>, sync: SyncConfig) -> Running {
        let (stop, stop_rx) = watch::channel(false);
        let updated_at = sync.updated_at;
        let failed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let task = SyncTask(tokio::spawn(self.supervise(sync, stop_rx, failed.clone())));
        Running {
            updated_at,
            stop,
            task,
            failed,
        }
    }

    /// Releases a sync's lock, retrying while the store is unavailable: a lock left held
    /// on this (live) lease would keep every later run of the sync waiting, and its offset
    /// from being edited, until the agent restarts.
    async fn release(&self, guard: &store::LockGuard) {
        for _ in 0..20 {
            match store::unlock(self.store.as_ref(), guard).await {
                Ok(_) => return,
                Err(e) if e.is_retryable() => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot release a sync lock; it ends with the lease");
                    return;
                }
            }
        }
    }

    /// One sync: take its lock, then run it every poll interval until stopped. A fatal
    /// error ends the task; the sync stays failed (its status says why) until it is edited.
    async fn supervise(
        self: Arc<Self>,
        sync: SyncConfig,
        mut stop: watch::Receiver<bool>,
        failed: Arc<std::sync::atomic::AtomicBool>,
    ) {
        let name = sync.name.clone();
        let lock_key = self.keys.sync_lock(&sync.id);
        let guard = tokio::select! {
            g = store::lock(self.store.as_ref(), &lock_key, &self.agent_id, self.lease) => match g {
                Ok(g) => g,
                Err(e) => {
                    tracing::warn!(sync = %name, error = %e, "cannot take the sync lock");
                    return;
                }
            },
            _ = stop.changed() => return,
        };
        let epoch = match store::fence_epoch(self.store.as_ref(), &self.keys.epoch()).await {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(sync = %name, error = %e, "cannot read the store's epoch; retrying");
                self.release(&guard).await;
                return;
            }
        };
        let offsets: Arc<dyn OffsetStore> = Arc::new(StoreOffsets {
            store: self.store.clone(),
            keys: self.keys.clone(),
            guard: Some(guard.clone()),
        });
        let poll = Duration::from_secs(sync.poll_interval_secs.max(1) as u64);
        let mut backoff = Backoff::default();
        loop {
            let result = async {
                let source = self.connection(&sync.source.datasource_id).await?;
                let destination = self.connection(&sync.destination.datasource_id).await?;
                let job = SyncJob {
                    sync: sync.clone(),
                    source,
                    destination,
                    fence: guard.token(epoch),
                    agent: Some(self.agent_id.clone()),
                };
                Runner::new(job, offsets.clone(), stop.clone())
                    .run_once()
                    .await
            }
            .await;
            let wait = match result {
                Ok(_) => {
                    backoff.reset();
                    poll
                }
                Err(e) if e.is_retryable() => {
                    let d = backoff.next_delay();
                    tracing::warn!(sync = %name, error = %e, retry_in = ?d, "retryable error");
                    d
                }
                Err(e) => {
                    tracing::error!(sync = %name, error = %e, "sync failed; fix its configuration");
                    failed.store(true, std::sync::atomic::Ordering::SeqCst);
                    break;
                }
            };
            // "Run now" (a run request in the Store) cuts the wait short.
            let run_key = self.keys.run_request(&sync.id);
            let run_now = async {
                loop {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    if let Ok(Some(_)) = self.store.get(&run_key).await {
                        let _ = self.store.delete(&run_key).await;
                        return;
                    }
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = run_now => {}
                _ = stop.changed() => break,
            }
        }
        self.release(&guard).await;
    }
}
