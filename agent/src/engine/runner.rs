//! One sync, one run: resolve where to start, then read the next batch while the current
//! one is written, committing the offset only after the destination committed.

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use idra_core::model::{Cursor, Offset, SyncConfig, SyncMode, SyncState, SyncStatus, WriteMode};
use tokio::sync::{mpsc, watch};

use super::last_per_key::last_per_key;
use super::offsets::OffsetStore;
use crate::connectors::types::Column;
use crate::connectors::{
    self, cursor_at, Commit, ConnectionSpec, ConnectorError, Destination, ReadSpec, Source,
    WriteRequest,
};

/// Test hook: abort the process right after the N-th destination commit, before the
/// offset commit — the worst moment to crash. Used by the crash-recovery tests.
pub const FAULT_ENV: &str = "IDRA_FAULT_ABORT_AFTER_DESTINATION_COMMIT";

/// Everything needed to run one sync.
pub struct SyncJob {
    pub sync: SyncConfig,
    pub source: ConnectionSpec,
    pub destination: ConnectionSpec,
    /// Fencing token of the lock held for this sync (0 in single mode).
    pub fence: i64,
    pub agent: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunReport {
    pub rows: u64,
    pub batches: u64,
    pub cursor: Cursor,
}

fn read_spec(sync: &SyncConfig) -> ReadSpec {
    ReadSpec {
        table: sync
            .source
            .query
            .is_none()
            .then(|| sync.source.table.clone()),
        query: sync.source.query.clone(),
        key: sync.key_columns[0].clone(),
        timestamp: match sync.mode {
            SyncMode::ByTimestamp | SyncMode::LastDestinationTimestamp => {
                sync.timestamp_column.clone()
            }
            _ => None,
        },
        settle_before: (sync.settle_secs > 0 && sync.mode.needs_timestamp())
            .then(|| Utc::now() - chrono::Duration::seconds(sync.settle_secs as i64)),
        snapshot: matches!(
            sync.mode,
            SyncMode::FullRefreshOverwrite | SyncMode::FullRefreshAppend
        ),
    }
}

pub struct Runner {
    pub job: SyncJob,
    pub offsets: Arc<dyn OffsetStore>,
    pub shutdown: watch::Receiver<bool>,
    commits: u64,
}

impl Runner {
    pub fn new(
        job: SyncJob,
        offsets: Arc<dyn OffsetStore>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Self {
            job,
            offsets,
            shutdown,
            commits: 0,
        }
    }

    fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Where this run starts. The destination's own commit record wins when it exists: it
    /// was written in the same transaction as the rows, so it is exactly what is there
    /// (after a crash between the destination commit and the offset commit, the Store's
    /// offset is one batch behind; resuming from it would copy that batch twice).
    async fn start_cursor(
        &self,
        dest: &dyn Destination,
        created: bool,
        columns: &[Column],
        spec: &ReadSpec,
    ) -> Result<Cursor, ConnectorError> {
        let sync = &self.job.sync;
        match sync.mode {
            SyncMode::ById | SyncMode::ByTimestamp => {
                // A person set the offset by hand (the sync was paused): start there.
                if let Some(o) = self.offsets.load(&sync.id).await?.filter(|o| o.edited) {
                    self.adopt_edited_offset(dest, columns, &o.cursor).await?;
                    return Ok(o.cursor);
                }
                // A table Idra has just created holds nothing, whatever an old record says.
                if !created {
                    if let Some(commit) = dest.committed(&sync.id, &sync.destination.table).await? {
                        return Ok(commit.cursor);
                    }
                }
                Ok(self
                    .offsets
                    .load(&sync.id)
                    .await?
                    .map(|o| o.cursor)
                    .unwrap_or_default())
            }
            SyncMode::LastDestinationId | SyncMode::LastDestinationTimestamp => {
                let key_is_integer = columns
                    .iter()
                    .find(|c| c.name == spec.key)
                    .is_some_and(|c| c.ty.is_integer());
                dest.max_position(
                    &sync.destination.table,
                    &spec.key,
                    spec.timestamp.as_deref(),
                    key_is_integer,
                )
                .await
            }
            SyncMode::FullRefreshOverwrite | SyncMode::FullRefreshAppend => Ok(Cursor::Start),
        }
    }

    /// Makes a hand-set offset the destination's own position before anything is copied
    /// from it, then clears the edit: a crash after the first batch then resumes from the
    /// destination's record, and the edit is applied exactly once. (Starting from the
    /// edited offset until a batch's offset commit cleared it copied that batch twice when
    /// the agent died in between.) A row-less write records the cursor; destinations
    /// without a commit record ignore it.
    async fn adopt_edited_offset(
        &self,
        dest: &dyn Destination,
        columns: &[Column],
        cursor: &Cursor,
    ) -> Result<(), ConnectorError> {
        let sync = &self.job.sync;
        let empty = arrow_array::RecordBatch::new_empty(connectors::types::schema_of(columns));
        dest.write(WriteRequest {
            table: &sync.destination.table,
            keys: &sync.key_columns,
            mode: sync.write_mode,
            rows: &empty,
            commit: &Commit {
                sync_id: sync.id.clone(),
                fence: self.job.fence,
                cursor: cursor.clone(),
            },
        })
        .await?;
        self.offsets
            .commit(
                &sync.id,
                &Offset {
                    cursor: cursor.clone(),
                    fence: self.job.fence,
                    updated_at: Utc::now(),
                    edited: false,
                },
            )
            .await
    }

    async fn report(&self, status: &mut SyncStatus, state: SyncState, error: Option<String>) {
        status.state = state;
        status.error = error;
        status.agent = self.job.agent.clone();
        status.last_run = Some(Utc::now());
        if let Err(e) = self.offsets.set_status(&self.job.sync.id, status).await {
            tracing::warn!(sync = %self.job.sync.name, error = %e, "could not record the sync status");
        }
    }

    /// Copies until the source is caught up (or shutdown is requested between batches).
    pub async fn run_once(&mut self) -> Result<RunReport, ConnectorError> {
        let mut status = self
            .offsets
            .load_status(&self.job.sync.id)
            .await?
            .unwrap_or_default();
        self.report(&mut status, SyncState::Running, None).await;
        let started_at = Utc::now();
        let rows_before = status.rows;
        let result = self.copy(&mut status).await;
        let (outcome, message) = match &result {
            Ok(_) => ("ok", None),
            Err(e) if e.is_retryable() => ("retrying", Some(e.message.clone())),
            Err(e) => ("failed", Some(e.message.clone())),
        };
        let run = idra_core::model::RunRecord {
            sync_id: self.job.sync.id.clone(),
            started_at,
            ended_at: Utc::now(),
            rows: status.rows.saturating_sub(rows_before),
            outcome: outcome.to_string(),
            message,
            agent: self.job.agent.clone(),
        };
        // Only runs that did something or failed: an idle poll is not history.
        if run.rows > 0 || run.outcome != "ok" {
            if let Err(e) = self.offsets.record_run(&run).await {
                tracing::warn!(sync = %self.job.sync.name, error = %e, "could not record the run");
            }
        }
        match &result {
            Ok(_) => self.report(&mut status, SyncState::Idle, None).await,
            Err(e) if e.is_retryable() => {
                self.report(&mut status, SyncState::Retrying, Some(e.message.clone()))
                    .await
            }
            Err(e) => {
                self.report(&mut status, SyncState::Failed, Some(e.message.clone()))
                    .await
            }
        }
        result
    }

    async fn copy(&mut self, status: &mut SyncStatus) -> Result<RunReport, ConnectorError> {
        let sync = self.job.sync.clone();
        // Syncs saved before a rule existed (or edited in the store by hand) are checked
        // again: running one that breaks a rule could skip rows.
        sync.validate()
            .and_then(|()| sync.validate_keys_for(self.job.source.kind))
            .map_err(|e| {
                ConnectorError::fatal(format!(
                    "sync `{}`: {}: {}; edit the sync",
                    sync.name, e.field, e.message
                ))
            })?;
        let source: Arc<dyn Source> = Arc::from(connectors::open_source(&self.job.source)?);
        let dest = connectors::open_destination(&self.job.destination)?;
        let spec = read_spec(&sync);
        let columns = source
            .columns(&spec)
            .await
            .map_err(|e| e.context(format!("sync `{}`: source", sync.name)))?;
        for k in &sync.key_columns {
            connectors::types::find(&columns, k, "key")
                .map_err(|e| e.context(format!("sync `{}`", sync.name)))?;
        }
        let overwrite = sync.mode == SyncMode::FullRefreshOverwrite;
        if overwrite && self.job.fence > 0 {
            // Claim before touching the load table, whose name every holder shares: from
            // here on a former holder's writes and its final swap are refused, so it can
            // neither fill our load table nor swap it (half-loaded or empty) into place.
            dest.claim(
                &sync.id,
                &sync.destination.table,
                self.job.fence,
                &Cursor::Start,
            )
            .await?;
        }
        let (target, created) = if overwrite {
            let load = dest
                .begin_overwrite(&sync.destination.table, &columns, &sync.key_columns)
                .await?;
            (load, true)
        } else {
            // Insert-mode loads into a new table may build the primary key at the end.
            let defer_keys = sync.write_mode == idra_core::model::WriteMode::Insert;
            let created = dest
                .ensure_table(
                    &sync.destination.table,
                    &columns,
                    &sync.key_columns,
                    defer_keys,
                )
                .await?;
            (sync.destination.table.clone(), created)
        };
        if self.job.fence > 0 && !overwrite {
            // Take the destination over before reading where it stands: a paused former
            // holder can commit nothing from here on, so what we read next is final.
            let fallback = match sync.mode {
                SyncMode::ById | SyncMode::ByTimestamp if !created => self
                    .offsets
                    .load(&sync.id)
                    .await?
                    .map(|o| o.cursor)
                    .unwrap_or_default(),
                _ => Cursor::Start,
            };
            dest.claim(&sync.id, &target, self.job.fence, &fallback)
                .await?;
        }
        let start = self
            .start_cursor(dest.as_ref(), created, &columns, &spec)
            .await?;
        // Full refreshes page through the source by key within the run.
        let paging_ts = spec.timestamp.clone();

        // The reader runs ahead by at most one batch (channel of one) while the writer
        // writes: a bounded pipeline, so memory stays at about three batches.
        let (tx, mut rx) =
            mpsc::channel::<Result<(arrow_array::RecordBatch, Cursor), ConnectorError>>(1);
        let limit = sync.batch_size as usize;
        let reader = {
            let source = source.clone();
            let spec = spec.clone();
            let columns = columns.clone();
            let mut cursor = start.clone();
            tokio::spawn(async move {
                loop {
                    let read_began = Instant::now();
                    let read = match source.read(&spec, &columns, &cursor, limit).await {
                        Ok(b) => {
                            tracing::debug!(
                                rows = b.rows.num_rows(),
                                ms = read_began.elapsed().as_millis() as u64,
                                "read batch"
                            );
                            b
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e)).await;
                            return;
                        }
                    };
                    let batch = read.rows;
                    let n = batch.num_rows();
                    // A batch without rows still moves the cursor when the source says it
                    // ended further on (tombstones, a delete-only change-stream batch):
                    // otherwise the next read starts at the old position again, forever.
                    let moved = read.end.as_ref().is_some_and(|end| *end != cursor);
                    if n > 0 || moved {
                        let end = match read.end {
                            Some(end) => Ok(end),
                            None => {
                                cursor_at(&batch, &columns, n - 1, &spec.key, paging_ts.as_deref())
                            }
                        };
                        match end {
                            Ok(c) => cursor = c,
                            Err(e) => {
                                let _ = tx.send(Err(e)).await;
                                return;
                            }
                        }
                        if tx.send(Ok((batch, cursor.clone()))).await.is_err() {
                            return;
                        }
                    }
                    if !read.more {
                        return;
                    }
                }
            })
        };

        let mut report = RunReport {
            rows: 0,
            batches: 0,
            cursor: start,
        };
        let result = async {
            while let Some(item) = rx.recv().await {
                let (batch, cursor) = item?;
                let batch = match sync.write_mode {
                    WriteMode::Upsert => last_per_key(&batch, &sync.key_columns)?,
                    WriteMode::Insert => batch,
                };
                let began = Instant::now();
                let commit = Commit {
                    sync_id: sync.id.clone(),
                    fence: self.job.fence,
                    cursor: cursor.clone(),
                };
                dest.write(WriteRequest {
                    table: &target,
                    keys: &sync.key_columns,
                    mode: sync.write_mode,
                    rows: &batch,
                    commit: &commit,
                })
                .await
                .map_err(|e| {
                    e.context(format!(
                        "sync `{}`: writing {}",
                        sync.name, sync.destination.table
                    ))
                })?;
                let written = began.elapsed();
                self.commits += 1;
                if std::env::var(FAULT_ENV)
                    .ok()
                    .and_then(|v| v.parse::<u64>().ok())
                    == Some(self.commits)
                {
                    eprintln!(
                        "{FAULT_ENV}: aborting after destination commit {}",
                        self.commits
                    );
                    std::process::abort();
                }
                if !overwrite {
                    self.offsets
                        .commit(
                            &sync.id,
                            &Offset {
                                cursor: cursor.clone(),
                                fence: self.job.fence,
                                updated_at: Utc::now(),
                                edited: false,
                            },
                        )
                        .await?;
                }
                source.acknowledge(&cursor).await?;
                tracing::debug!(
                    rows = batch.num_rows(),
                    write_ms = written.as_millis() as u64,
                    offset_ms = (began.elapsed() - written).as_millis() as u64,
                    "wrote batch"
                );
                let n = batch.num_rows() as u64;
                report.rows += n;
                report.batches += 1;
                report.cursor = cursor;
                status.rows += n;
                status.batch_seconds = Some(began.elapsed().as_secs_f64());
                // How far behind the newest copied row is, when rows carry a timestamp.
                status.lag = match &report.cursor {
                    Cursor::Timestamp { last_ts, .. } => {
                        Some((Utc::now() - *last_ts).num_milliseconds() as f64 / 1000.0)
                    }
                    _ => None,
                };
                status.rate = n as f64 / began.elapsed().as_secs_f64().max(1e-6);
                if self.stopping() {
                    // Shutdown between batches: everything written so far is committed.
                    return Ok(true);
                }
            }
            Ok::<bool, ConnectorError>(false)
        }
        .await;
        reader.abort();
        let stopped = result?;
        if !stopped {
            dest.finish_load(&target, &sync.key_columns).await?;
        }
        if overwrite && !stopped {
            let commit = Commit {
                sync_id: sync.id.clone(),
                fence: self.job.fence,
                cursor: report.cursor.clone(),
            };
            dest.finish_overwrite(&sync.destination.table, &target, &commit)
                .await?;
        }
        Ok(report)
    }
}
