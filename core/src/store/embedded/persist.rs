//! On-disk layout of the embedded store: `LOCK` (held exclusively while open),
//! `snapshot.json` (atomically replaced) and `wal.jsonl` (appended and fsynced per change).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::store::{KeyValue, LeaseId, StoreError};

/// Records before the log is folded into a new snapshot.
const COMPACT_AFTER: usize = 4096;

#[derive(Serialize, Deserialize)]
pub(super) struct PersistedKv {
    key: String,
    value: String,
    create_revision: i64,
    mod_revision: i64,
    version: i64,
    lease: LeaseId,
}

impl From<&KeyValue> for PersistedKv {
    fn from(kv: &KeyValue) -> Self {
        Self {
            key: kv.key.clone(),
            value: B64.encode(&kv.value),
            create_revision: kv.create_revision,
            mod_revision: kv.mod_revision,
            version: kv.version,
            lease: kv.lease,
        }
    }
}

impl PersistedKv {
    fn into_kv(self, path: &Path) -> Result<KeyValue, StoreError> {
        let value = B64
            .decode(self.value.as_bytes())
            .map_err(|e| StoreError::Corrupt {
                path: path.to_path_buf(),
                message: format!("value of {}: {e}", self.key),
            })?;
        Ok(KeyValue {
            key: self.key,
            value,
            create_revision: self.create_revision,
            mod_revision: self.mod_revision,
            version: self.version,
            lease: self.lease,
        })
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Change {
    Put(PersistedKv),
    Delete { key: String },
}

impl Change {
    pub(super) fn put(kv: &KeyValue) -> Self {
        Change::Put(kv.into())
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Record {
    Changes { revision: i64, changes: Vec<Change> },
    Grant { id: LeaseId, ttl: i64 },
    Revoke { id: LeaseId },
}

#[derive(Serialize, Deserialize, Default)]
struct Snapshot {
    revision: i64,
    next_lease: LeaseId,
    kvs: Vec<PersistedKv>,
    leases: Vec<(LeaseId, i64)>,
}

/// What was on disk: the state to resume from.
#[derive(Default)]
pub(super) struct Recovered {
    pub revision: i64,
    pub next_lease: LeaseId,
    pub kvs: BTreeMap<String, KeyValue>,
    /// Lease id → TTL in seconds.
    pub leases: BTreeMap<LeaseId, i64>,
}

pub(super) struct Persistence {
    dir: PathBuf,
    /// Opened in append mode (see `open`).
    wal: File,
    /// Bytes of whole records in the log.
    wal_len: u64,
    wal_records: usize,
    // Held for the lifetime of the store: the OS releases it if the process dies.
    _lock: File,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Persistence {
    pub(super) fn open(dir: &Path) -> Result<(Self, Recovered), StoreError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        let lock_path = dir.join("LOCK");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(StoreError::InUse {
                    path: dir.to_path_buf(),
                })
            }
            Err(fs::TryLockError::Error(e)) => return Err(io(&lock_path)(e)),
        }

        let mut recovered = Recovered {
            next_lease: 1,
            ..Recovered::default()
        };
        let snap_path = dir.join("snapshot.json");
        if snap_path.exists() {
            let bytes = fs::read(&snap_path).map_err(io(&snap_path))?;
            let snap: Snapshot =
                serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                    path: snap_path.clone(),
                    message: e.to_string(),
                })?;
            recovered.revision = snap.revision;
            recovered.next_lease = snap.next_lease.max(1);
            for pkv in snap.kvs {
                let kv = pkv.into_kv(&snap_path)?;
                recovered.kvs.insert(kv.key.clone(), kv);
            }
            recovered.leases = snap.leases.into_iter().collect();
        }

        let wal_path = dir.join("wal.jsonl");
        if wal_path.exists() {
            let file = File::open(&wal_path).map_err(io(&wal_path))?;
            let lines: Vec<String> = BufReader::new(file)
                .lines()
                .collect::<Result<_, _>>()
                .map_err(io(&wal_path))?;
            let last = lines.len().saturating_sub(1);
            for (n, line) in lines.iter().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<Record>(line) {
                    Ok(record) => apply(&mut recovered, record, &wal_path)?,
                    // A torn final line is a write that never completed (and was never
                    // acknowledged): drop it. Anything earlier is real damage.
                    Err(_) if n == last => break,
                    Err(e) => {
                        return Err(StoreError::Corrupt {
                            path: wal_path.clone(),
                            message: format!("line {}: {e}", n + 1),
                        })
                    }
                }
            }
        }

        write_snapshot(
            dir,
            SnapshotView {
                revision: recovered.revision,
                next_lease: recovered.next_lease,
                kvs: &recovered.kvs,
                leases: &recovered.leases,
            },
        )?;
        // Append mode: every write lands at the current end of the file, wherever the
        // file position was. After `compact` empties the log with `set_len(0)`, a plain
        // write handle would keep its old position and leave a zero-filled hole before the
        // next record, which a reopen reads as damage or drops as a torn line.
        let wal = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&wal_path)
            .map_err(io(&wal_path))?;
        wal.set_len(0).map_err(io(&wal_path))?;
        wal.sync_all().map_err(io(&wal_path))?;
        Ok((
            Self {
                dir: dir.to_path_buf(),
                wal,
                wal_len: 0,
                wal_records: 0,
                _lock: lock,
            },
            recovered,
        ))
    }

    /// Appends records and fsyncs once. Returns true when the log should be compacted.
    pub(super) fn append(&mut self, records: &[Record]) -> Result<bool, StoreError> {
        let path = self.dir.join("wal.jsonl");
        let mut buf = Vec::new();
        for r in records {
            serde_json::to_writer(&mut buf, r).expect("records serialise");
            buf.push(b'\n');
        }
        let written = self.wal.write_all(&buf).and_then(|()| self.wal.sync_data());
        if let Err(e) = written {
            // A partial line must not stay in front of the records that follow it: a
            // reopen would take it for damage. Cut the log back to its last whole record.
            let _ = self.wal.set_len(self.wal_len);
            return Err(io(&path)(e));
        }
        self.wal_len += buf.len() as u64;
        self.wal_records += records.len();
        Ok(self.wal_records >= COMPACT_AFTER)
    }

    /// Writes a snapshot of `state` and empties the log.
    pub(super) fn compact(&mut self, state: SnapshotView<'_>) -> Result<(), StoreError> {
        write_snapshot(&self.dir, state)?;
        let path = self.dir.join("wal.jsonl");
        self.wal.set_len(0).map_err(io(&path))?;
        self.wal.sync_all().map_err(io(&path))?;
        self.wal_len = 0;
        self.wal_records = 0;
        Ok(())
    }
}

fn apply(state: &mut Recovered, record: Record, path: &Path) -> Result<(), StoreError> {
    match record {
        Record::Changes { revision, changes } => {
            state.revision = revision;
            for c in changes {
                match c {
                    Change::Put(pkv) => {
                        let kv = pkv.into_kv(path)?;
                        state.kvs.insert(kv.key.clone(), kv);
                    }
                    Change::Delete { key } => {
                        state.kvs.remove(&key);
                    }
                }
            }
        }
        Record::Grant { id, ttl } => {
            state.leases.insert(id, ttl);
            state.next_lease = state.next_lease.max(id + 1);
        }
        Record::Revoke { id } => {
            state.leases.remove(&id);
        }
    }
    Ok(())
}

/// Borrowed view of the state a snapshot records.
pub(super) struct SnapshotView<'a> {
    pub revision: i64,
    pub next_lease: LeaseId,
    pub kvs: &'a BTreeMap<String, KeyValue>,
    pub leases: &'a BTreeMap<LeaseId, i64>,
}

fn write_snapshot(dir: &Path, state: SnapshotView<'_>) -> Result<(), StoreError> {
    let snap = Snapshot {
        revision: state.revision,
        next_lease: state.next_lease,
        kvs: state.kvs.values().map(PersistedKv::from).collect(),
        leases: state.leases.iter().map(|(id, ttl)| (*id, *ttl)).collect(),
    };
    let tmp = dir.join("snapshot.json.tmp");
    let target = dir.join("snapshot.json");
    let bytes = serde_json::to_vec(&snap).expect("snapshot serialises");
    {
        let mut f = File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(&bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    fs::rename(&tmp, &target).map_err(io(&target))?;
    // The rename is durable only once the directory entry is.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    Ok(())
}
