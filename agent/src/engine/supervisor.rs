//! Runs the enabled syncs the leader assigned to this agent. Reconciles every few hundred
//! milliseconds: starts newly assigned syncs, restarts edited ones, stops revoked,
//! disabled and deleted ones (after their current batch). Each sync runs under its lock on
//! the agent's lease; the lock's fencing token guards its offset commits and its
//! destination writes.
//!
//! Idle costs nothing: "Run now" requests arrive through one watch per agent (not a poll
//! per sync), a run that copied nothing writes nothing (see [`Runner::run_once`]), and first
//! runs are spread over up to 5 s.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use idra_core::model::Assignment;
use idra_core::model::{SyncConfig, SyncState, SyncStatus};
use idra_core::secret::{Cipher, DataSourceRecord};
use idra_core::store::{self, decode, EventKind, Keys, LeaseId, Store, StoreError};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use super::{first_run_delay, Backoff, OffsetStore, Runner, StoreOffsets, SyncJob};
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

/// "Run now" requests (`run_requests/<sync-id>`) seen by the agent's watch, handed to the
/// tasks of the syncs they name. A request for a sync without a task here (yet) waits in
/// `pending` while its key exists: its task takes it when it starts, or the agent running
/// it elsewhere deletes the key.
#[derive(Default)]
struct RunRequests {
    inner: Mutex<Requests>,
}

#[derive(Default)]
struct Requests {
    tasks: HashMap<String, Arc<Notify>>,
    pending: HashSet<String>,
}

impl RunRequests {
    fn lock(&self) -> std::sync::MutexGuard<'_, Requests> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A sync's task starts listening; a request already waiting wakes it at once.
    fn register(self: &Arc<Self>, sync_id: &str) -> Registration {
        let notify = Arc::new(Notify::new());
        let mut r = self.lock();
        if r.pending.remove(sync_id) {
            notify.notify_one();
        }
        r.tasks.insert(sync_id.to_string(), notify.clone());
        Registration {
            requests: self.clone(),
            sync_id: sync_id.to_string(),
            notify,
        }
    }

    /// A request's key was written. (A task busy running keeps it as a permit: it runs
    /// again right after.) It also stays pending until its key is deleted: the task told
    /// may be stopping for an edit and never take it, and then the task that replaces it
    /// does, instead of the request being lost.
    fn requested(&self, sync_id: &str) {
        let mut r = self.lock();
        if let Some(notify) = r.tasks.get(sync_id) {
            notify.notify_one();
        }
        r.pending.insert(sync_id.to_string());
    }

    /// A request's key was deleted (taken by whoever runs the sync).
    fn withdrawn(&self, sync_id: &str) {
        self.lock().pending.remove(sync_id);
    }

    /// The requests present when the watch (re)started: all of them are due, and only they
    /// can still be pending.
    fn present(&self, sync_ids: Vec<String>) {
        self.lock().pending.clear();
        for id in sync_ids {
            self.requested(&id);
        }
    }
}

/// A sync task's place in [`RunRequests`], given up when the task ends (or is aborted).
struct Registration {
    requests: Arc<RunRequests>,
    sync_id: String,
    notify: Arc<Notify>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut r = self.requests.lock();
        if r.tasks
            .get(&self.sync_id)
            .is_some_and(|n| Arc::ptr_eq(n, &self.notify))
        {
            r.tasks.remove(&self.sync_id);
        }
    }
}

/// Follows `run_requests/` for the agent's whole session, reconnecting after a failure:
/// each (re)start reads the requests already there (written before the watch began, or
/// while it was down), then watches from that revision on.
async fn watch_run_requests(store: Arc<dyn Store>, prefix: String, requests: Arc<RunRequests>) {
    loop {
        match follow_run_requests(store.as_ref(), &prefix, &requests).await {
            Ok(()) => tracing::debug!("run-request watch ended; watching again"),
            Err(e) => tracing::warn!(error = %e, "run-request watch failed; watching again"),
        }
        // One agent-wide read a second at worst while the store is down.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn follow_run_requests(
    store: &dyn Store,
    prefix: &str,
    requests: &RunRequests,
) -> Result<(), StoreError> {
    let id_of = |key: &str| key.strip_prefix(prefix).map(str::to_string);
    // A request seen both in the listing and by the watch runs its sync twice: harmless.
    let (present, revision) = store.list_all_at(prefix).await?;
    let ids: Vec<String> = present.iter().filter_map(|kv| id_of(&kv.key)).collect();
    let mut events = store.watch(prefix, revision + 1).await?;
    requests.present(ids);
    while let Some(event) = events.next().await {
        let event = event?;
        let Some(id) = id_of(&event.kv.key) else {
            continue;
        };
        match event.kind {
            EventKind::Put => requests.requested(&id),
            EventKind::Delete => requests.withdrawn(&id),
        }
    }
    Ok(())
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
        // One watch for every sync's "Run now", ended with the supervisor.
        let requests = Arc::new(RunRequests::default());
        let _watch = SyncTask(tokio::spawn(watch_run_requests(
            self.store.clone(),
            self.keys.run_request(""),
            requests.clone(),
        )));
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
                        let started = self.clone().start(sync, requests.clone());
                        running.insert(id, started);
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

    fn start(self: Arc<Self>, sync: SyncConfig, requests: Arc<RunRequests>) -> Running {
        let (stop, stop_rx) = watch::channel(false);
        let updated_at = sync.updated_at;
        let failed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let run_now = requests.register(&sync.id);
        let task = SyncTask(tokio::spawn(self.supervise(
            sync,
            stop_rx,
            failed.clone(),
            run_now,
        )));
        Running {
            updated_at,
            stop,
            task,
            failed,
        }
    }

    /// Makes a sync that stops on a fatal error say so: the run may have ended before its
    /// runner could report (a data source deleted or unreadable), or the runner's one status
    /// write failed; either way the sync would show its last state until someone edits it.
    async fn show_failure(&self, offsets: &dyn OffsetStore, sync_id: &str, e: &ConnectorError) {
        for _ in 0..5 {
            if let Ok(stored) = offsets.load_status(sync_id).await {
                let status = SyncStatus {
                    state: SyncState::Failed,
                    error: Some(e.message.clone()),
                    agent: Some(self.agent_id.clone()),
                    last_run: Some(Utc::now()),
                    ..stored.unwrap_or_default()
                };
                if offsets.set_status(sync_id, &status).await.is_ok() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        tracing::warn!(sync = %sync_id, "could not record the sync's failure in its status");
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

    /// One sync: take its lock, then run it every poll interval until stopped, or at once
    /// on "Run now". A fatal error ends the task; the sync stays failed (its status says
    /// why) until it is edited. The first run waits a random part of the poll interval (at
    /// most 5 s), so syncs started together do not all query their sources at once.
    async fn supervise(
        self: Arc<Self>,
        sync: SyncConfig,
        mut stop: watch::Receiver<bool>,
        failed: Arc<std::sync::atomic::AtomicBool>,
        run_now: Registration,
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
        let run_key = self.keys.run_request(&sync.id);
        let mut backoff = Backoff::default();
        // One runner for the task's life: it keeps the status it last wrote, so a run that
        // copies nothing writes nothing. (The data sources are read again for every run: an
        // edit to one applies from the next run.)
        let mut runner: Option<Runner> = None;
        let mut wait = first_run_delay(poll);
        loop {
            tokio::select! {
                biased;
                _ = stop.changed() => break,
                _ = run_now.notify.notified() => {
                    // Taken: the request's key goes (its watch event is then ignored).
                    if let Err(e) = self.store.delete(&run_key).await {
                        tracing::warn!(sync = %name, error = %e, "cannot delete the run request; running anyway");
                    }
                }
                _ = tokio::time::sleep(wait) => {}
            }
            let result = async {
                let source = self.connection(&sync.source.datasource_id).await?;
                let destination = self.connection(&sync.destination.datasource_id).await?;
                let runner = match runner.as_mut() {
                    Some(r) => {
                        r.job.source = source;
                        r.job.destination = destination;
                        r
                    }
                    None => runner.insert(Runner::new(
                        SyncJob {
                            sync: sync.clone(),
                            source,
                            destination,
                            fence: guard.token(epoch),
                            agent: Some(self.agent_id.clone()),
                        },
                        offsets.clone(),
                        stop.clone(),
                    )),
                };
                runner.run_once().await
            }
            .await;
            wait = match result {
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
                    self.show_failure(offsets.as_ref(), &sync.id, &e).await;
                    failed.store(true, std::sync::atomic::Ordering::SeqCst);
                    break;
                }
            };
        }
        self.release(&guard).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `notify` holds a permit (without waiting for one).
    async fn woken(notify: &Notify) -> bool {
        tokio::time::timeout(Duration::from_millis(1), notify.notified())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn a_run_request_that_reaches_a_stopping_task_goes_to_its_successor() {
        let requests = Arc::new(RunRequests::default());
        let stopping = requests.register("s1");
        // The request arrives while the edited sync's old task stops: it never takes it.
        requests.requested("s1");
        let successor = requests.register("s1");
        drop(stopping);
        assert!(woken(&successor.notify).await, "the request was lost");
    }

    #[tokio::test]
    async fn a_taken_run_request_does_not_run_a_successor_again() {
        let requests = Arc::new(RunRequests::default());
        let task = requests.register("s1");
        requests.requested("s1");
        assert!(woken(&task.notify).await);
        // The task deleted the key; its watch event withdraws the request.
        requests.withdrawn("s1");
        drop(task);
        let successor = requests.register("s1");
        assert!(!woken(&successor.notify).await);
    }
}
