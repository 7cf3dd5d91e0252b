//! Where a sync's offset and status are kept: a state file in single mode, the Store
//! (guarded by the sync's lock) when a server or cluster runs the agent.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use idra_core::model::{Offset, RunOutcome, RunRecord, SyncStatus};
use idra_core::store::{decode, encode, Keys, LockGuard, Op, Store, Txn};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::connectors::ConnectorError;

#[async_trait]
pub trait OffsetStore: Send + Sync {
    async fn load(&self, sync_id: &str) -> Result<Option<Offset>, ConnectorError>;
    async fn load_status(&self, sync_id: &str) -> Result<Option<SyncStatus>, ConnectorError>;
    /// Records the offset; fails (fatal) when the writer no longer holds the sync.
    async fn commit(&self, sync_id: &str, offset: &Offset) -> Result<(), ConnectorError>;
    async fn set_status(&self, sync_id: &str, status: &SyncStatus) -> Result<(), ConnectorError>;
    /// Keeps a bounded history of runs, and of errors across syncs.
    async fn record_run(&self, run: &RunRecord) -> Result<(), ConnectorError>;
}

/// Runs kept per sync, and errors kept in all.
pub const KEEP_RUNS: usize = 50;
pub const KEEP_ERRORS: usize = 500;

#[derive(Default, Serialize, Deserialize)]
struct StateFile {
    #[serde(default)]
    offsets: BTreeMap<String, Offset>,
    #[serde(default)]
    status: BTreeMap<String, SyncStatus>,
    #[serde(default)]
    runs: BTreeMap<String, Vec<RunRecord>>,
}

/// Single mode: `DIR/state.json`, replaced atomically (write, fsync, rename, fsync dir).
pub struct FileOffsets {
    path: PathBuf,
    state: Mutex<StateFile>,
}

fn io_err(path: &Path, e: std::io::Error) -> ConnectorError {
    ConnectorError::fatal(format!("state file {}: {e}", path.display()))
}

impl FileOffsets {
    pub fn open(dir: &Path) -> Result<Self, ConnectorError> {
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let path = dir.join("state.json");
        let state = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                ConnectorError::fatal(format!("state file {} is damaged ({e}); restore it or delete it to start every sync over", path.display()))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => StateFile::default(),
            Err(e) => return Err(io_err(&path, e)),
        };
        Ok(Self {
            path,
            state: Mutex::new(state),
        })
    }

    fn persist(&self, state: &StateFile) -> Result<(), ConnectorError> {
        let tmp = self.path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(state).expect("state serialises");
        let mut f = std::fs::File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
        f.write_all(&bytes).map_err(|e| io_err(&tmp, e))?;
        f.sync_all().map_err(|e| io_err(&tmp, e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| io_err(&self.path, e))?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| io_err(dir, e))?;
        }
        Ok(())
    }
}

#[async_trait]
impl OffsetStore for FileOffsets {
    async fn load(&self, sync_id: &str) -> Result<Option<Offset>, ConnectorError> {
        Ok(self.state.lock().await.offsets.get(sync_id).cloned())
    }

    async fn load_status(&self, sync_id: &str) -> Result<Option<SyncStatus>, ConnectorError> {
        Ok(self.state.lock().await.status.get(sync_id).cloned())
    }

    async fn commit(&self, sync_id: &str, offset: &Offset) -> Result<(), ConnectorError> {
        let mut state = self.state.lock().await;
        state.offsets.insert(sync_id.to_string(), offset.clone());
        self.persist(&state)
    }

    async fn set_status(&self, sync_id: &str, status: &SyncStatus) -> Result<(), ConnectorError> {
        let mut state = self.state.lock().await;
        state.status.insert(sync_id.to_string(), status.clone());
        self.persist(&state)
    }

    async fn record_run(&self, run: &RunRecord) -> Result<(), ConnectorError> {
        let mut state = self.state.lock().await;
        let runs = state.runs.entry(run.sync_id.clone()).or_default();
        runs.push(run.clone());
        if runs.len() > KEEP_RUNS {
            let excess = runs.len() - KEEP_RUNS;
            runs.drain(..excess);
        }
        self.persist(&state)
    }
}

/// The Store: `offsets/<id>` and `status/<id>`, each write guarded by the sync's lock when
/// there is one (cluster mode), so a holder that lost its lock cannot move the offset.
pub struct StoreOffsets {
    pub store: Arc<dyn Store>,
    pub keys: Keys,
    pub guard: Option<LockGuard>,
}

fn store_err(e: idra_core::store::StoreError) -> ConnectorError {
    ConnectorError::retryable(format!("the Idra store: {e}"))
}

impl StoreOffsets {
    async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), ConnectorError> {
        let txn = Txn::new()
            .when(self.guard.iter().map(LockGuard::still_held).collect())
            .and_then(vec![Op::put(key, value, None)]);
        let resp = self.store.txn(txn).await.map_err(store_err)?;
        if !resp.succeeded {
            return Err(ConnectorError::fatal(
                "fenced off: this agent lost the sync's lock; another agent continues it",
            ));
        }
        Ok(())
    }
}

#[async_trait]
impl OffsetStore for StoreOffsets {
    async fn load(&self, sync_id: &str) -> Result<Option<Offset>, ConnectorError> {
        let key = self.keys.offset(sync_id);
        match self.store.get(&key).await.map_err(store_err)? {
            Some(kv) => Ok(Some(
                decode(&key, &kv.value).map_err(|e| ConnectorError::fatal(e.to_string()))?,
            )),
            None => Ok(None),
        }
    }

    async fn load_status(&self, sync_id: &str) -> Result<Option<SyncStatus>, ConnectorError> {
        let key = self.keys.status(sync_id);
        match self.store.get(&key).await.map_err(store_err)? {
            Some(kv) => Ok(decode(&key, &kv.value).ok()),
            None => Ok(None),
        }
    }

    async fn commit(&self, sync_id: &str, offset: &Offset) -> Result<(), ConnectorError> {
        self.put(&self.keys.offset(sync_id), encode(offset)).await
    }

    async fn set_status(&self, sync_id: &str, status: &SyncStatus) -> Result<(), ConnectorError> {
        self.put(&self.keys.status(sync_id), encode(status)).await
    }

    /// `runs/<sync>/<start>` (the newest 50 per sync) and, for failed runs,
    /// `errors/<time>-<sync>` (the newest 500). Keys sort by time.
    async fn record_run(&self, run: &RunRecord) -> Result<(), ConnectorError> {
        let stamp = run.started_at.format("%Y%m%dT%H%M%S%.6fZ");
        let prefix = self.keys.runs(&run.sync_id);
        self.store
            .put(&format!("{prefix}{stamp}"), encode(run), None)
            .await
            .map_err(store_err)?;
        prune(self.store.as_ref(), &prefix, KEEP_RUNS).await?;
        if run.outcome != RunOutcome::Ok {
            let errors = self.keys.errors();
            self.store
                .put(
                    &format!(
                        "{errors}{}-{}",
                        run.ended_at.format("%Y%m%dT%H%M%S%.6fZ"),
                        run.sync_id
                    ),
                    encode(run),
                    None,
                )
                .await
                .map_err(store_err)?;
            prune(self.store.as_ref(), &errors, KEEP_ERRORS).await?;
        }
        Ok(())
    }
}

/// Deletes the oldest keys under `prefix` beyond `keep`.
async fn prune(store: &dyn Store, prefix: &str, keep: usize) -> Result<(), ConnectorError> {
    let keys = store.list_all(prefix).await.map_err(store_err)?;
    if keys.len() > keep {
        for kv in &keys[..keys.len() - keep] {
            store.delete(&kv.key).await.map_err(store_err)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use idra_core::model::Cursor;

    #[tokio::test]
    async fn file_offsets_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let o = FileOffsets::open(dir.path()).unwrap();
        let offset = Offset {
            cursor: Cursor::Id { last_id: 42 },
            fence: 0,
            updated_at: chrono::Utc::now(),
            edited: false,
        };
        o.commit("s1", &offset).await.unwrap();
        let again = FileOffsets::open(dir.path()).unwrap();
        assert_eq!(again.load("s1").await.unwrap(), Some(offset));
        assert!(!dir.path().join("state.json.tmp").exists());
    }

    #[tokio::test]
    async fn run_history_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let o = FileOffsets::open(dir.path()).unwrap();
        for i in 0..(KEEP_RUNS + 5) {
            let run = RunRecord {
                sync_id: "s1".into(),
                started_at: chrono::Utc::now(),
                ended_at: chrono::Utc::now(),
                rows: i as u64,
                outcome: RunOutcome::Ok,
                message: None,
                agent: None,
            };
            o.record_run(&run).await.unwrap();
        }
        let state = o.state.lock().await;
        let runs = &state.runs["s1"];
        assert_eq!(runs.len(), KEEP_RUNS);
        assert_eq!(
            runs.last().unwrap().rows,
            (KEEP_RUNS + 4) as u64,
            "the newest are kept"
        );
    }

    #[tokio::test]
    async fn a_damaged_state_file_is_refused_with_advice() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("state.json"), b"{nope").unwrap();
        let err = FileOffsets::open(dir.path()).err().unwrap();
        assert!(
            err.message.contains("delete it to start every sync over"),
            "{err}"
        );
    }
}
