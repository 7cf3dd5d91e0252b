//! Where a sync's offset and status are kept: a state file in single mode, the Store
//! (guarded by the sync's lock) when a server or cluster runs the agent.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use idra_core::model::{Offset, SyncStatus};
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
}

#[derive(Default, Serialize, Deserialize)]
struct StateFile {
    #[serde(default)]
    offsets: BTreeMap<String, Offset>,
    #[serde(default)]
    status: BTreeMap<String, SyncStatus>,
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
