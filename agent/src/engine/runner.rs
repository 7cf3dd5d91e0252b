//! One sync, one run: resolve where to start, then read the next batch while the current
//! one is written, committing the offset only after the destination committed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use chrono::Utc;
use idra_core::model::{
    Cursor, Offset, RunOutcome, SyncConfig, SyncMode, SyncState, SyncStatus, WriteMode,
};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::last_per_key::last_per_key;
use super::offsets::OffsetStore;
use crate::connectors::types::Column;
use crate::connectors::{
    self, Commit, ConnectionSpec, ConnectorError, Destination, ReadSpec, Source, WriteRequest,
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

/// An idle sync's status is written at least this often, so its `last_run` stays roughly
/// current; in between, a run that copied nothing and changed nothing writes nothing.
pub const STATUS_HEARTBEAT: Duration = Duration::from_secs(60);

/// A sync's status as this runner knows it, kept across its runs: read from the offset
/// store once, then written only when it says something new (see [`Runner::run_once`]).
struct Reported {
    /// The status as of the latest run (`last_run` is when it last checked).
    current: SyncStatus,
    /// What this runner last wrote, and when; `None` until its first write.
    written: Option<(SyncStatus, Instant)>,
}

impl Reported {
    /// Rows were copied, the state, error or agent changed, or the last write is a
    /// heartbeat old (or there was none yet).
    fn write_due(&self, now: Instant) -> bool {
        let Some((last, at)) = &self.written else {
            return true;
        };
        let s = &self.current;
        last.rows != s.rows
            || last.state != s.state
            || last.error != s.error
            || last.agent != s.agent
            || now.duration_since(*at) >= STATUS_HEARTBEAT
    }
}

pub struct Runner {
    pub job: SyncJob,
    pub offsets: Arc<dyn OffsetStore>,
    pub shutdown: watch::Receiver<bool>,
    commits: u64,
    /// Loaded by the first run; kept for the next ones.
    status: Option<Reported>,
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
            status: None,
        }
    }

    fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Where this run starts (the Store's offset read once, twice when claiming). The
    /// destination's own commit record wins when it
    /// exists: it was written in the same transaction as the rows, so it is exactly what is
    /// there (after a crash between the destination commit and the offset commit, the
    /// Store's offset is one batch behind; resuming from it would copy that batch twice).
    async fn resolve_start(
        &self,
        dest: &dyn Destination,
        target: &Target,
        columns: &[Column],
        spec: &ReadSpec,
    ) -> Result<Cursor, ConnectorError> {
        let sync = &self.job.sync;
        let by_offset = matches!(sync.mode, SyncMode::ById | SyncMode::ByTimestamp);
        if self.job.fence > 0 && !target.overwrite {
            // Take the destination over before reading where it stands: a paused former
            // holder can commit nothing from here on, so what we read next is final.
            let fallback = match self.offsets.load(&sync.id).await? {
                Some(o) if by_offset && !target.created => o.cursor,
                _ => Cursor::Start,
            };
            dest.claim(&sync.id, &target.table, self.job.fence, &fallback)
                .await?;
        }
        // Read after the claim, so an offset edited before it (while no one held the lock)
        // is seen.
        let stored = self.offsets.load(&sync.id).await?;
        match sync.mode {
            SyncMode::ById | SyncMode::ByTimestamp => {
                // A person set the offset by hand (the sync was paused): start there.
                if let Some(o) = stored.as_ref().filter(|o| o.edited) {
                    self.adopt_edited_offset(dest, columns, &o.cursor).await?;
                    return Ok(o.cursor.clone());
                }
                // A table Idra has just created holds nothing, whatever an old record says.
                if !target.created {
                    if let Some(commit) = dest.committed(&sync.id, &sync.destination.table).await? {
                        return Ok(commit.cursor);
                    }
                }
                Ok(stored.map(|o| o.cursor).unwrap_or_default())
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
        let empty = RecordBatch::new_empty(connectors::types::schema_of(columns));
        dest.write(WriteRequest {
            table: &sync.destination.table,
            keys: &sync.key_columns,
            mode: sync.write_mode,
            rows: &empty,
            commit: &self.commit_at(cursor),
        })
        .await?;
        self.offsets.commit(&sync.id, &self.offset_at(cursor)).await
    }

    /// Sets the state in memory, and writes the status when that says something new.
    async fn report(&self, reported: &mut Reported, state: SyncState, error: Option<String>) {
        let status = &mut reported.current;
        status.state = state;
        status.error = error;
        status.agent = self.job.agent.clone();
        status.last_run = Some(Utc::now());
        let now = Instant::now();
        if !reported.write_due(now) {
            return;
        }
        let status = &reported.current;
        match self.offsets.set_status(&self.job.sync.id, status).await {
            Ok(()) => reported.written = Some((status.clone(), now)),
            // Left as it was written: the next run tries again.
            Err(e) => {
                tracing::warn!(sync = %self.job.sync.name, error = %e, "could not record the sync status")
            }
        }
    }

    /// Copies until the source is caught up (or shutdown is requested between batches).
    ///
    /// Idle costs nothing: the status is read once (by the first run) and kept; a run that
    /// copied nothing and ends in the state it began writes nothing, except a heartbeat at
    /// most every [`STATUS_HEARTBEAT`]. "Running" is written when the first batch is about
    /// to be written, so a long copy shows it; the outcome at the end when it differs.
    pub async fn run_once(&mut self) -> Result<RunReport, ConnectorError> {
        let mut reported = match self.status.take() {
            Some(r) => r,
            None => Reported {
                current: self
                    .offsets
                    .load_status(&self.job.sync.id)
                    .await?
                    .unwrap_or_default(),
                written: None,
            },
        };
        let result = self.run_reported(&mut reported).await;
        self.status = Some(reported);
        result
    }

    async fn run_reported(&mut self, reported: &mut Reported) -> Result<RunReport, ConnectorError> {
        let started_at = Utc::now();
        let rows_before = reported.current.rows;
        let result = self.copy(reported).await;
        let (outcome, message) = match &result {
            Ok(_) => (RunOutcome::Ok, None),
            Err(e) if e.is_retryable() => (RunOutcome::Retrying, Some(e.message.clone())),
            Err(e) => (RunOutcome::Failed, Some(e.message.clone())),
        };
        let run = idra_core::model::RunRecord {
            sync_id: self.job.sync.id.clone(),
            started_at,
            ended_at: Utc::now(),
            rows: reported.current.rows.saturating_sub(rows_before),
            outcome,
            message,
            agent: self.job.agent.clone(),
        };
        // Only runs that did something or failed: an idle poll is not history.
        if run.rows > 0 || run.outcome != RunOutcome::Ok {
            if let Err(e) = self.offsets.record_run(&run).await {
                tracing::warn!(sync = %self.job.sync.name, error = %e, "could not record the run");
            }
        }
        let state = match outcome {
            RunOutcome::Ok => SyncState::Idle,
            RunOutcome::Retrying => SyncState::Retrying,
            RunOutcome::Failed => SyncState::Failed,
        };
        self.report(reported, state, run.message).await;
        result
    }

    /// One run as a sequence of named steps: check the sync, open both ends, prepare the
    /// destination, resolve the start once, then read and write batches until caught up,
    /// and finish the load.
    async fn copy(&mut self, reported: &mut Reported) -> Result<RunReport, ConnectorError> {
        self.check_sync()?;
        let source: Arc<dyn Source> = Arc::from(connectors::open_source(&self.job.source)?);
        let dest = connectors::open_destination(&self.job.destination)?;
        let spec = read_spec(&self.job.sync);
        let columns = self.source_columns(source.as_ref(), &spec).await?;
        let target = self.prepare_destination(dest.as_ref(), &columns).await?;
        let start = self
            .resolve_start(dest.as_ref(), &target, &columns, &spec)
            .await?;
        let (reader, batches) = spawn_reader(
            source.clone(),
            spec,
            columns,
            start.clone(),
            self.job.sync.batch_size as usize,
        );
        let mut report = RunReport {
            rows: 0,
            batches: 0,
            cursor: start,
        };
        let written = self
            .write_batches(
                source.as_ref(),
                dest.as_ref(),
                &target,
                batches,
                reported,
                &mut report,
            )
            .await;
        reader.abort();
        if written? == Written::CaughtUp {
            self.finish(dest.as_ref(), &target, &report.cursor).await?;
        }
        Ok(report)
    }

    /// Syncs saved before a rule existed (or edited in the store by hand) are checked again:
    /// running one that breaks a rule could skip rows.
    fn check_sync(&self) -> Result<(), ConnectorError> {
        let sync = &self.job.sync;
        sync.validate()
            .and_then(|()| sync.validate_keys_for(self.job.source.kind))
            .map_err(|e| {
                ConnectorError::fatal(format!(
                    "sync `{}`: {}: {}; edit the sync",
                    sync.name, e.field, e.message
                ))
            })
    }

    /// The source's columns for this read, with every key column among them.
    async fn source_columns(
        &self,
        source: &dyn Source,
        spec: &ReadSpec,
    ) -> Result<Vec<Column>, ConnectorError> {
        let sync = &self.job.sync;
        let columns = source
            .columns(spec)
            .await
            .map_err(|e| e.context(format!("sync `{}`: source", sync.name)))?;
        for k in &sync.key_columns {
            connectors::types::find(&columns, k, "key")
                .map_err(|e| e.context(format!("sync `{}`", sync.name)))?;
        }
        Ok(columns)
    }

    /// The table this run writes into: the destination table (created when missing), or for
    /// an overwrite a fresh load table, claimed first.
    async fn prepare_destination(
        &self,
        dest: &dyn Destination,
        columns: &[Column],
    ) -> Result<Target, ConnectorError> {
        let sync = &self.job.sync;
        if sync.mode != SyncMode::FullRefreshOverwrite {
            // Insert-mode loads into a new table may build the primary key at the end.
            let defer_keys = sync.write_mode == WriteMode::Insert;
            let created = dest
                .ensure_table(
                    &sync.destination.table,
                    columns,
                    &sync.key_columns,
                    defer_keys,
                )
                .await?;
            return Ok(Target {
                table: sync.destination.table.clone(),
                created,
                overwrite: false,
            });
        }
        if self.job.fence > 0 {
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
        let load = dest
            .begin_overwrite(&sync.destination.table, columns, &sync.key_columns)
            .await?;
        Ok(Target {
            table: load,
            created: true,
            overwrite: true,
        })
    }

    /// Writes each batch with its commit record, then commits the offset and acknowledges
    /// the source; stops between batches when shutdown is requested. Reports "Running"
    /// before the first batch is written.
    async fn write_batches(
        &mut self,
        source: &dyn Source,
        dest: &dyn Destination,
        target: &Target,
        mut batches: mpsc::Receiver<Result<(RecordBatch, Cursor), ConnectorError>>,
        reported: &mut Reported,
        report: &mut RunReport,
    ) -> Result<Written, ConnectorError> {
        let mut pending: Option<PendingCommit> = None;
        while let Some(item) = batches.recv().await {
            let (batch, cursor) = match item {
                Ok(item) => item,
                Err(e) => {
                    settle(source, pending.take()).await?;
                    return Err(e);
                }
            };
            if report.batches == 0 {
                self.report(reported, SyncState::Running, None).await;
            }
            let began = Instant::now();
            let written = self.write_batch(dest, target, batch, &cursor).await;
            // The previous batch's offset commit ran while this batch was written.
            let settled = settle(source, pending.take()).await;
            let batch = written?;
            settled?;
            self.abort_if_fault_injected();
            let commit = self.commit_offset(target, &cursor);
            if dest.keeps_commit_records() && !source.acknowledges_deliveries() {
                // The destination's record says where to resume, so the offset (what the
                // UI shows, and the fence check of the store) may complete during the next
                // write. It is awaited before the next one starts, and before the
                // acknowledgement, which stays after both commits.
                pending = Some((tokio::spawn(commit), cursor.clone()));
            } else {
                commit.await?;
                source.acknowledge(&cursor).await?;
            }
            record_batch(
                report,
                &mut reported.current,
                batch.num_rows() as u64,
                cursor,
                began,
            );
            if self.stopping() {
                // Shutdown between batches: everything written so far is committed.
                settle(source, pending.take()).await?;
                return Ok(Written::Stopped);
            }
        }
        settle(source, pending.take()).await?;
        Ok(Written::CaughtUp)
    }

    /// The offset commit after a batch (none while loading a full refresh's load table),
    /// as a task of its own.
    fn commit_offset(
        &self,
        target: &Target,
        cursor: &Cursor,
    ) -> impl std::future::Future<Output = Result<(), ConnectorError>> + Send + 'static {
        let offsets = self.offsets.clone();
        let sync_id = self.job.sync.id.clone();
        let offset = (!target.overwrite).then(|| self.offset_at(cursor));
        async move {
            match offset {
                Some(offset) => offsets.commit(&sync_id, &offset).await,
                None => Ok(()),
            }
        }
    }

    /// One destination transaction: the rows (the last version of each key when
    /// upserting) and the commit record at `cursor`.
    async fn write_batch(
        &mut self,
        dest: &dyn Destination,
        target: &Target,
        batch: RecordBatch,
        cursor: &Cursor,
    ) -> Result<RecordBatch, ConnectorError> {
        let sync = &self.job.sync;
        let batch = match sync.write_mode {
            WriteMode::Upsert => last_per_key(&batch, &sync.key_columns)?,
            WriteMode::Insert => batch,
        };
        dest.write(WriteRequest {
            table: &target.table,
            keys: &sync.key_columns,
            mode: sync.write_mode,
            rows: &batch,
            commit: &self.commit_at(cursor),
        })
        .await
        .map_err(|e| {
            e.context(format!(
                "sync `{}`: writing {}",
                sync.name, sync.destination.table
            ))
        })?;
        self.commits += 1;
        Ok(batch)
    }

    /// The crash tests' hook (see [`FAULT_ENV`]).
    fn abort_if_fault_injected(&self) {
        let at = std::env::var(FAULT_ENV)
            .ok()
            .and_then(|v| v.parse::<u64>().ok());
        if at == Some(self.commits) {
            eprintln!(
                "{FAULT_ENV}: aborting after destination commit {}",
                self.commits
            );
            std::process::abort();
        }
    }

    /// After the last batch: build the deferred primary key, and for an overwrite swap the
    /// load table into place (fenced, in one transaction).
    async fn finish(
        &self,
        dest: &dyn Destination,
        target: &Target,
        cursor: &Cursor,
    ) -> Result<(), ConnectorError> {
        let sync = &self.job.sync;
        dest.finish_load(&target.table, &sync.key_columns).await?;
        if target.overwrite {
            dest.finish_overwrite(
                &sync.destination.table,
                &target.table,
                &self.commit_at(cursor),
            )
            .await?;
        }
        Ok(())
    }

    fn commit_at(&self, cursor: &Cursor) -> Commit {
        Commit {
            sync_id: self.job.sync.id.clone(),
            fence: self.job.fence,
            cursor: cursor.clone(),
        }
    }

    fn offset_at(&self, cursor: &Cursor) -> Offset {
        Offset {
            cursor: cursor.clone(),
            fence: self.job.fence,
            updated_at: Utc::now(),
            edited: false,
        }
    }
}

/// A batch's offset commit still running, with the cursor to acknowledge once it is done.
type PendingCommit = (JoinHandle<Result<(), ConnectorError>>, Cursor);

/// Waits for a pending offset commit, then acknowledges its batch to the source.
async fn settle(source: &dyn Source, pending: Option<PendingCommit>) -> Result<(), ConnectorError> {
    let Some((commit, cursor)) = pending else {
        return Ok(());
    };
    commit
        .await
        .map_err(|e| ConnectorError::retryable(format!("the offset commit stopped: {e}")))??;
    source.acknowledge(&cursor).await
}

/// The table a run writes into.
struct Target {
    table: String,
    /// Idra created it in this run (so it holds nothing yet).
    created: bool,
    /// A full refresh's load table, swapped into place at the end.
    overwrite: bool,
}

/// How the batch loop ended.
#[derive(Debug, PartialEq)]
enum Written {
    CaughtUp,
    Stopped,
}

type BatchResult = Result<(RecordBatch, Cursor), ConnectorError>;

/// Batch sizes below this are used as given (tests and small syncs).
const RAMP_FROM: usize = 8192;

/// The rows each read of a run asks for: a run's first batch is an eighth of the batch size,
/// and each next one twice the last until the batch size, so the destination starts
/// writing while the source is still reading instead of waiting for one whole batch.
struct BatchSizes {
    next: usize,
    max: usize,
}

impl BatchSizes {
    fn new(max: usize) -> Self {
        let next = if max >= RAMP_FROM { max / 8 } else { max };
        Self { next, max }
    }

    /// Every read asks for `size`.
    fn fixed(size: usize) -> Self {
        Self {
            next: size,
            max: size,
        }
    }

    fn next(&mut self) -> usize {
        let size = self.next;
        self.next = (size * 2).min(self.max);
        size
    }
}

/// Reads batches from `start` on a task of its own, each with the cursor where it ends. It
/// runs ahead of the writer by at most one batch (a channel of one): a bounded pipeline, so
/// memory stays at about three batches.
fn spawn_reader(
    source: Arc<dyn Source>,
    spec: ReadSpec,
    columns: Vec<Column>,
    start: Cursor,
    limit: usize,
) -> (JoinHandle<()>, mpsc::Receiver<BatchResult>) {
    let (tx, rx) = mpsc::channel::<BatchResult>(1);
    let task = tokio::spawn(async move {
        let mut cursor = start;
        let mut sizes = match source.acknowledges_deliveries() {
            true => BatchSizes::fixed(limit),
            false => BatchSizes::new(limit),
        };
        loop {
            let read_began = Instant::now();
            let read = match source.read(&spec, &columns, &cursor, sizes.next()).await {
                Ok(read) => read,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            tracing::debug!(
                rows = read.rows.num_rows(),
                ms = read_began.elapsed().as_millis() as u64,
                "read batch"
            );
            // A batch without rows still counts when the source says it ended further on
            // (tombstones, a delete-only change-stream batch): otherwise the next read
            // starts at the old position again, forever.
            if read.rows.num_rows() > 0 || read.end != cursor {
                cursor = read.end.clone();
                if tx.send(Ok((read.rows, read.end))).await.is_err() {
                    return;
                }
            }
            if !read.more {
                return;
            }
        }
    });
    (task, rx)
}

/// Counts a written batch in the run's report and the sync's status.
fn record_batch(
    report: &mut RunReport,
    status: &mut SyncStatus,
    rows: u64,
    cursor: Cursor,
    began: Instant,
) {
    let seconds = began.elapsed().as_secs_f64();
    tracing::debug!(rows, ms = (seconds * 1000.0) as u64, "wrote batch");
    report.rows += rows;
    report.batches += 1;
    status.rows += rows;
    status.batch_seconds = Some(seconds);
    // How far behind the newest copied row is, when rows carry a timestamp.
    status.lag = match &cursor {
        Cursor::Timestamp { last_ts, .. } => {
            Some((Utc::now() - *last_ts).num_milliseconds() as f64 / 1000.0)
        }
        _ => None,
    };
    status.rate = rows as f64 / seconds.max(1e-6);
    report.cursor = cursor;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(state: SyncState, rows: u64, ago: Duration) -> Reported {
        let status = SyncStatus {
            state,
            rows,
            agent: Some("a".into()),
            ..SyncStatus::default()
        };
        Reported {
            current: status.clone(),
            written: Some((status, Instant::now() - ago)),
        }
    }

    #[test]
    fn a_run_starts_with_small_batches_and_doubles_up_to_the_batch_size() {
        let mut sizes = BatchSizes::new(100_000);
        let first: Vec<usize> = (0..6).map(|_| sizes.next()).collect();
        assert_eq!(first, [12_500, 25_000, 50_000, 100_000, 100_000, 100_000]);
        let mut small = BatchSizes::new(64);
        assert_eq!([small.next(), small.next()], [64, 64]);
    }

    #[test]
    fn an_unchanged_status_is_written_only_as_a_heartbeat() {
        let now = Instant::now();
        let mut r = written(SyncState::Idle, 10, Duration::from_secs(5));
        r.current.last_run = Some(Utc::now());
        assert!(!r.write_due(now), "an idle run writes nothing");
        let old = written(SyncState::Idle, 10, STATUS_HEARTBEAT);
        assert!(old.write_due(Instant::now()), "a heartbeat a minute on");
    }

    #[test]
    fn rows_state_error_and_agent_changes_are_written() {
        let now = Instant::now();
        let fresh = Duration::from_secs(1);
        let mut r = written(SyncState::Idle, 10, fresh);
        r.current.rows = 11;
        assert!(r.write_due(now));
        let mut r = written(SyncState::Idle, 10, fresh);
        r.current.state = SyncState::Running;
        assert!(r.write_due(now));
        let mut r = written(SyncState::Retrying, 10, fresh);
        r.current.error = Some("down".into());
        assert!(r.write_due(now));
        let mut r = written(SyncState::Idle, 10, fresh);
        r.current.agent = Some("b".into());
        assert!(r.write_due(now));
        let first = Reported {
            current: SyncStatus::default(),
            written: None,
        };
        assert!(first.write_due(now), "a runner's first outcome is written");
    }
}
