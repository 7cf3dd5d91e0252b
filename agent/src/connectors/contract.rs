//! What every connector implements: a source reads batches after a cursor, a destination
//! writes one batch per transaction. Both can test their connection and discover tables.

use arrow_array::RecordBatch;
use async_trait::async_trait;
use idra_core::model::{ConnectorKind, Cursor, WriteMode};

use super::types::Column;
use super::ConnectorError;

/// A table (or collection, topic…) and its columns, for the UI's pickers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    pub name: String,
    pub columns: Vec<Column>,
}

/// What to read: a table or a custom query, ordered by key or by (timestamp, key).
#[derive(Debug, Clone)]
pub struct ReadSpec {
    pub table: Option<String>,
    pub query: Option<String>,
    pub key: String,
    /// Set: order and resume by (timestamp, key). Unset: by key alone.
    pub timestamp: Option<String>,
    /// Timestamp modes: read only rows with a timestamp before this instant (settle window).
    pub settle_before: Option<chrono::DateTime<chrono::Utc>>,
    /// Full refresh: every row as of one moment. A source that can (Postgres) reads all of
    /// a run's batches from one snapshot and applies no late-commit filter, since a full
    /// refresh replaces what the destination holds with what it reads.
    pub snapshot: bool,
}

impl ReadSpec {
    /// The key column and, for timestamp cursors, the timestamp column among `columns`.
    pub fn cursor_columns<'a>(
        &self,
        columns: &'a [Column],
    ) -> Result<(&'a Column, Option<&'a Column>), ConnectorError> {
        let key = columns.iter().find(|c| c.name == self.key).ok_or_else(|| {
            ConnectorError::fatal(format!(
                "key column `{}` is not among the source's columns",
                self.key
            ))
        })?;
        let ts = self
            .timestamp
            .as_ref()
            .and_then(|t| columns.iter().find(|c| &c.name == t));
        Ok((key, ts))
    }

    /// The table as the name of what a non-SQL source reads (topic, queue, endpoint path,
    /// collection); such sources take no custom query.
    pub fn named(&self, what: &str, kind: ConnectorKind) -> Result<&str, ConnectorError> {
        match self.table.as_deref().map(str::trim) {
            Some(t) if !t.is_empty() && self.query.is_none() => Ok(t),
            _ => Err(ConnectorError::fatal(format!(
                "table: set it to {what}; custom queries do not apply to {}",
                kind.label()
            ))),
        }
    }

    pub fn describe(&self) -> String {
        match (&self.table, &self.query) {
            (Some(t), _) => t.clone(),
            (None, Some(_)) => "the custom query".into(),
            (None, None) => "nothing".into(),
        }
    }
}

/// One read from a source.
#[derive(Debug, Clone)]
pub struct ReadBatch {
    pub rows: RecordBatch,
    /// Where this batch ends: the last row's (timestamp,) key for keyed sources, else what
    /// positions the source (a queue's deliveries, Kafka partition offsets, a change-stream
    /// resume token, an object key). Where the read began when it did not move.
    pub end: Cursor,
    /// False when the source is caught up (for keyed sources: fewer rows than asked).
    pub more: bool,
}

impl ReadBatch {
    /// A batch of a keyed source: it ends at its last row (where it began when empty), and
    /// more may follow when it is full.
    pub fn keyed(
        rows: RecordBatch,
        limit: usize,
        spec: &ReadSpec,
        columns: &[Column],
        after: &Cursor,
    ) -> Result<Self, ConnectorError> {
        let n = rows.num_rows();
        let end = match n {
            0 => after.clone(),
            n => super::cursor_at(&rows, columns, n - 1, &spec.key, spec.timestamp.as_deref())?,
        };
        Ok(Self {
            more: n >= limit,
            rows,
            end,
        })
    }
}

#[async_trait]
pub trait Source: Send + Sync {
    async fn test_connection(&self) -> Result<(), ConnectorError>;
    async fn discover(&self) -> Result<Vec<TableInfo>, ConnectorError>;
    /// The columns `read` returns for `spec`, checking that key and timestamp exist.
    async fn columns(&self, spec: &ReadSpec) -> Result<Vec<Column>, ConnectorError>;
    /// Up to `limit` rows strictly after `after`, in (timestamp,) key order.
    async fn read(
        &self,
        spec: &ReadSpec,
        columns: &[Column],
        after: &Cursor,
        limit: usize,
    ) -> Result<ReadBatch, ConnectorError>;
    /// Called once the destination and the offset have both committed everything up to
    /// `through` (a cursor `read` returned): a queue acknowledges those deliveries here, so
    /// a crash before this point redelivers them rather than losing them.
    async fn acknowledge(&self, _through: &Cursor) -> Result<(), ConnectorError> {
        Ok(())
    }
    /// Whether `acknowledge` releases deliveries (a queue): then each batch is acknowledged
    /// before the next is written, so a crash redelivers at most one batch, and every read
    /// asks for the whole batch size (the queue's prefetch is sized from it).
    fn acknowledges_deliveries(&self) -> bool {
        false
    }
}

/// Written in the destination's own transaction together with the rows (one record per
/// sync and destination table), so the destination always knows exactly which cursor its
/// contents correspond to, and a holder whose fencing token is older than any stored for
/// the sync is refused.
#[derive(Debug, Clone, PartialEq)]
pub struct Commit {
    pub sync_id: String,
    pub fence: i64,
    pub cursor: Cursor,
}

pub struct WriteRequest<'a> {
    pub table: &'a str,
    pub keys: &'a [String],
    pub mode: WriteMode,
    pub rows: &'a RecordBatch,
    pub commit: &'a Commit,
}

#[async_trait]
pub trait Destination: Send + Sync {
    async fn test_connection(&self) -> Result<(), ConnectorError>;
    async fn discover(&self) -> Result<Vec<TableInfo>, ConnectorError>;
    /// Creates `table` when missing (types mapped per dialect, key columns as primary key);
    /// checks that an existing table has every column. True when it created the table.
    /// With `defer_keys` a destination may create the table without its primary key, for a
    /// faster bulk load; [`Destination::finish_load`] adds it once the load has caught up.
    async fn ensure_table(
        &self,
        table: &str,
        columns: &[Column],
        keys: &[String],
        defer_keys: bool,
    ) -> Result<bool, ConnectorError>;
    /// Adds the primary key on `keys` if `table` has none yet (see `defer_keys`).
    async fn finish_load(&self, _table: &str, _keys: &[String]) -> Result<(), ConnectorError> {
        Ok(())
    }
    /// Writes the rows and the commit record in one transaction.
    async fn write(&self, req: WriteRequest<'_>) -> Result<(), ConnectorError>;
    /// Which connector this is, for messages.
    fn kind(&self) -> ConnectorKind;

    // What follows needs a destination that keeps a commit record next to its rows, as the
    // SQL destinations do. The others (an API, a queue, a topic, objects, documents) keep
    // these defaults: not fenced, nothing committed there (they deliver at least once), and
    // no modes that must read the destination back.

    /// Whether this destination keeps commit records: then its record, not the offset, says
    /// where a run resumes, and every write is fenced there.
    fn keeps_commit_records(&self) -> bool {
        false
    }
    /// Taking a sync over (cluster mode): raises the sync's fencing token in the destination
    /// to `fence` before the first write, so from now on a writer with an older token is
    /// refused. Creates the record for `table` with `cursor` when there is none. Fatal when
    /// a newer token is already stored.
    async fn claim(
        &self,
        _sync_id: &str,
        _table: &str,
        _fence: i64,
        _cursor: &Cursor,
    ) -> Result<(), ConnectorError> {
        Ok(())
    }
    /// The last commit record of `sync_id` for `table` in this destination.
    async fn committed(
        &self,
        _sync_id: &str,
        _table: &str,
    ) -> Result<Option<Commit>, ConnectorError> {
        Ok(None)
    }
    /// The greatest (timestamp,) key already in `table`, for the last-destination modes.
    async fn max_position(
        &self,
        _table: &str,
        _key: &str,
        _timestamp: Option<&str>,
        _key_is_integer: bool,
    ) -> Result<Cursor, ConnectorError> {
        Err(super::table_only(
            self.kind(),
            "say which rows it already holds",
        ))
    }
    /// Full refresh, overwrite: empties the load table `<table>__idra_load` (created like `table`).
    async fn begin_overwrite(
        &self,
        _table: &str,
        _columns: &[Column],
        _keys: &[String],
    ) -> Result<String, ConnectorError> {
        Err(super::table_only(self.kind(), "replace its contents"))
    }
    /// Atomically replaces `table` with the load table, checking `commit.fence` in the same
    /// transaction: a former holder that was paused past its lock must not swap its load
    /// table into place over a newer holder's work.
    async fn finish_overwrite(
        &self,
        _table: &str,
        _load_table: &str,
        _commit: &Commit,
    ) -> Result<(), ConnectorError> {
        Err(super::table_only(self.kind(), "replace its contents"))
    }
}
