use async_trait::async_trait;
use idra_core::model::{ConnectorKind, Cursor};
use tiberius::Query;
use tokio::sync::Mutex;

use super::config::{tds_error, Connection, SqlServerConfig};
use super::source::{rows, SqlServerSource};
use super::tsql::{
    create_table_sql, max_position_sql, merge_sql, object_name, D, FENCE_DDL, FENCE_LOCK,
    FENCE_RAISE, FENCE_READ, FENCE_RECORD,
};
use super::values::{bind, value_of};
use crate::connectors::sql::{
    check_existing_columns, commit_record, fenced_off, insert_sql, load_table, rows_per_insert,
};
use crate::connectors::types::{columns_of, Column};
use crate::connectors::values::{value_at, Value};
use crate::connectors::{
    Commit, ConnectionSpec, ConnectorError, Destination, Source, TableInfo, WriteRequest,
};

/// Each batch is one transaction: the fence check (the sync's highest token, locked), the
/// rows as bound multi-row INSERTs or MERGEs, and the commit record. Exactly once and
/// fenced, like the other SQL destinations.
pub struct SqlServerDestination {
    config: SqlServerConfig,
    conn: Mutex<Option<Connection>>,
    probe: SqlServerSource,
}

async fn exec(conn: &mut Connection, q: Query<'_>, what: &str) -> Result<u64, ConnectorError> {
    q.execute(conn)
        .await
        .map(|r| r.total())
        .map_err(|e| tds_error(e, what))
}

async fn simple(conn: &mut Connection, sql: &str, what: &str) -> Result<(), ConnectorError> {
    exec(conn, Query::new(sql.to_string()), what)
        .await
        .map(drop)
}

impl SqlServerDestination {
    pub fn new(spec: &ConnectionSpec) -> Result<Self, ConnectorError> {
        Ok(Self {
            config: SqlServerConfig::from_spec(spec)?,
            conn: Mutex::new(None),
            probe: SqlServerSource::new(spec)?,
        })
    }

    async fn with_conn(
        &self,
    ) -> Result<tokio::sync::MappedMutexGuard<'_, Connection>, ConnectorError> {
        let mut slot = self.conn.lock().await;
        if slot.is_none() {
            let mut c = self.config.connect().await?;
            simple(&mut c, FENCE_DDL, "creating _idra_fence").await?;
            *slot = Some(c);
        }
        Ok(tokio::sync::MutexGuard::map(slot, |c| {
            c.as_mut().expect("connected")
        }))
    }

    /// Runs `body` inside a transaction, rolling back on any error.
    async fn in_transaction(
        &self,
        conn: &mut Connection,
        body: impl AsyncFnOnce(&mut Connection) -> Result<(), ConnectorError>,
    ) -> Result<(), ConnectorError> {
        simple(conn, "BEGIN TRANSACTION", "starting a transaction").await?;
        match body(conn).await {
            Ok(()) => simple(conn, "COMMIT", "committing").await,
            Err(e) => {
                let _ = simple(conn, "IF @@TRANCOUNT > 0 ROLLBACK", "rolling back").await;
                Err(e)
            }
        }
    }

    async fn table_exists(conn: &mut Connection, table: &str) -> Result<bool, ConnectorError> {
        let mut q = Query::new("SELECT OBJECT_ID(@P1, N'U')");
        q.bind(object_name(table)?);
        let r = rows(conn, q, &format!("looking up {table}")).await?;
        Ok(r.first().and_then(|r| r.get::<i32, _>(0)).is_some())
    }
}

#[async_trait]
impl Destination for SqlServerDestination {
    fn keeps_commit_records(&self) -> bool {
        true
    }

    fn kind(&self) -> ConnectorKind {
        ConnectorKind::SqlServer
    }

    async fn test_connection(&self) -> Result<(), ConnectorError> {
        self.probe.test_connection().await
    }

    async fn discover(&self) -> Result<Vec<TableInfo>, ConnectorError> {
        self.probe.discover().await
    }

    async fn ensure_table(
        &self,
        table: &str,
        columns: &[Column],
        keys: &[String],
        _defer_keys: bool,
    ) -> Result<bool, ConnectorError> {
        let mut conn = self.with_conn().await?;
        if Self::table_exists(&mut conn, table).await? {
            drop(conn);
            let spec = crate::connectors::ReadSpec {
                table: Some(table.to_string()),
                query: None,
                key: keys.first().cloned().unwrap_or_default(),
                timestamp: None,
                settle_before: None,
                snapshot: false,
            };
            let existing = self
                .probe
                .columns(&spec)
                .await
                .or_else(|_| Ok::<_, ConnectorError>(Vec::new()))?;
            check_existing_columns(table, columns, &existing)?;
            return Ok(false);
        }
        simple(
            &mut conn,
            &create_table_sql(table, columns, keys)?,
            &format!("creating {table}"),
        )
        .await?;
        Ok(true)
    }

    async fn write(&self, req: WriteRequest<'_>) -> Result<(), ConnectorError> {
        let columns = columns_of(&req.rows.schema())?;
        let names: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
        let cursor = serde_json::to_string(&req.commit.cursor)
            .map_err(|e| ConnectorError::fatal(format!("encoding the cursor: {e}")))?;
        let what = format!("writing {}", req.table);
        let mut conn = self.with_conn().await?;
        self.in_transaction(&mut conn, async |conn| {
            let mut q = Query::new(FENCE_LOCK);
            q.bind(req.commit.sync_id.clone());
            let stored = rows(conn, q, "checking the fence")
                .await?
                .first()
                .and_then(|r| r.get::<i64, _>(0));
            if let Some(stored) = stored.filter(|s| *s > req.commit.fence) {
                return Err(fenced_off(&req.commit.sync_id, stored, req.commit.fence));
            }
            let per = rows_per_insert(D, columns.len());
            let n = req.rows.num_rows();
            let mut start = 0;
            while start < n {
                let count = per.min(n - start);
                let sql = match req.mode {
                    idra_core::model::WriteMode::Insert => {
                        insert_sql(D, req.table, &names, count, None)?
                    }
                    idra_core::model::WriteMode::Upsert => {
                        merge_sql(req.table, &names, count, req.keys)?
                    }
                };
                let mut q = Query::new(sql);
                for row in start..start + count {
                    for (i, c) in columns.iter().enumerate() {
                        bind(&mut q, value_at(req.rows.column(i), c.ty, row), c.ty)?;
                    }
                }
                exec(conn, q, &what).await?;
                start += count;
            }
            let mut q = Query::new(FENCE_RECORD);
            q.bind(req.commit.sync_id.clone());
            q.bind(req.table.to_string());
            q.bind(req.commit.fence);
            q.bind(cursor.clone());
            exec(conn, q, "writing the commit record").await.map(drop)
        })
        .await
    }

    async fn claim(
        &self,
        sync_id: &str,
        table: &str,
        fence: i64,
        cursor: &Cursor,
    ) -> Result<(), ConnectorError> {
        let cursor = serde_json::to_string(cursor)
            .map_err(|e| ConnectorError::fatal(format!("encoding the cursor: {e}")))?;
        let mut conn = self.with_conn().await?;
        let existing = self.committed_on(&mut conn, sync_id, table).await?;
        self.in_transaction(&mut conn, async |conn| {
            let mut q = Query::new(FENCE_LOCK);
            q.bind(sync_id.to_string());
            let stored = rows(conn, q, "checking the fence")
                .await?
                .first()
                .and_then(|r| r.get::<i64, _>(0));
            if let Some(stored) = stored.filter(|s| *s > fence) {
                return Err(fenced_off(sync_id, stored, fence));
            }
            let mut q = Query::new(FENCE_RAISE);
            q.bind(sync_id.to_string());
            q.bind(fence);
            exec(conn, q, "raising the fence").await?;
            if existing.is_none() {
                let mut q = Query::new(FENCE_RECORD);
                q.bind(sync_id.to_string());
                q.bind(table.to_string());
                q.bind(fence);
                q.bind(cursor.clone());
                exec(conn, q, "writing the commit record").await?;
            }
            Ok(())
        })
        .await
    }

    async fn committed(
        &self,
        sync_id: &str,
        table: &str,
    ) -> Result<Option<Commit>, ConnectorError> {
        let mut conn = self.with_conn().await?;
        self.committed_on(&mut conn, sync_id, table).await
    }

    async fn max_position(
        &self,
        table: &str,
        key: &str,
        timestamp: Option<&str>,
        key_is_integer: bool,
    ) -> Result<Cursor, ConnectorError> {
        let spec = crate::connectors::ReadSpec {
            table: Some(table.to_string()),
            query: None,
            key: key.to_string(),
            timestamp: timestamp.map(String::from),
            settle_before: None,
            snapshot: false,
        };
        let columns = self.probe.columns(&spec).await?;
        let find = |name: &str| columns.iter().find(|c| c.name == name).cloned();
        let mut conn = self.with_conn().await?;
        let got = rows(
            &mut conn,
            Query::new(max_position_sql(table, key, timestamp)?),
            &format!("reading the last position of {table}"),
        )
        .await?;
        let Some(row) = got.into_iter().next() else {
            return Ok(Cursor::Start);
        };
        let cells: Vec<_> = row.into_iter().collect();
        match timestamp {
            None => {
                let k = find(key).ok_or_else(|| {
                    ConnectorError::fatal(format!("{table} has no column `{key}`"))
                })?;
                match value_of(&cells[0], &k)? {
                    Value::Int(last_id) if key_is_integer => Ok(Cursor::Id { last_id }),
                    other => Err(ConnectorError::fatal(format!(
                        "key column `{key}` must be an integer for this mode (found {other:?})"
                    ))),
                }
            }
            Some(ts) => {
                let t = find(ts).ok_or_else(|| {
                    ConnectorError::fatal(format!("{table} has no column `{ts}`"))
                })?;
                let k = find(key).ok_or_else(|| {
                    ConnectorError::fatal(format!("{table} has no column `{key}`"))
                })?;
                let last_ts = match value_of(&cells[0], &t)? {
                    Value::TimestampTz(x) => x,
                    Value::Timestamp(x) => x.and_utc(),
                    Value::Date(d) => d.and_hms_opt(0, 0, 0).expect("midnight").and_utc(),
                    other => {
                        return Err(ConnectorError::fatal(format!(
                            "timestamp column `{ts}` holds {other:?}"
                        )))
                    }
                };
                let last_key = match value_of(&cells[1], &k)? {
                    Value::Int(i) => i.to_string(),
                    Value::Text(s) => s,
                    other => format!("{other:?}"),
                };
                Ok(Cursor::Timestamp { last_ts, last_key })
            }
        }
    }

    async fn begin_overwrite(
        &self,
        table: &str,
        columns: &[Column],
        keys: &[String],
    ) -> Result<String, ConnectorError> {
        let load = load_table(table);
        let mut conn = self.with_conn().await?;
        let mut q = Query::new(format!(
            "IF OBJECT_ID(@P1, N'U') IS NOT NULL DROP TABLE {}",
            D.quote(&load)?
        ));
        q.bind(object_name(&load)?);
        exec(&mut conn, q, &format!("emptying {load}")).await?;
        simple(
            &mut conn,
            &create_table_sql(&load, columns, keys)?,
            &format!("creating {load}"),
        )
        .await?;
        Ok(load)
    }

    async fn finish_overwrite(
        &self,
        table: &str,
        load_table: &str,
        commit: &Commit,
    ) -> Result<(), ConnectorError> {
        let mut conn = self.with_conn().await?;
        let target = table.rsplit('.').next().unwrap_or(table).to_string();
        self.in_transaction(&mut conn, async |conn| {
            let mut q = Query::new(FENCE_LOCK);
            q.bind(commit.sync_id.clone());
            let stored = rows(conn, q, "checking the fence")
                .await?
                .first()
                .and_then(|r| r.get::<i64, _>(0));
            if let Some(stored) = stored.filter(|s| *s > commit.fence) {
                return Err(fenced_off(&commit.sync_id, stored, commit.fence));
            }
            let mut q = Query::new(format!(
                "IF OBJECT_ID(@P1, N'U') IS NOT NULL DROP TABLE {}",
                D.quote(table)?
            ));
            q.bind(object_name(table)?);
            exec(conn, q, &format!("replacing {table}")).await?;
            let mut q = Query::new("EXEC sp_rename @P1, @P2");
            q.bind(load_table.to_string());
            q.bind(target.clone());
            exec(conn, q, &format!("renaming {load_table}"))
                .await
                .map(drop)
        })
        .await
    }
}

impl SqlServerDestination {
    async fn committed_on(
        &self,
        conn: &mut Connection,
        sync_id: &str,
        table: &str,
    ) -> Result<Option<Commit>, ConnectorError> {
        let mut q = Query::new(FENCE_READ);
        q.bind(sync_id.to_string());
        q.bind(table.to_string());
        let got = rows(conn, q, "reading the commit record").await?;
        let Some(r) = got.first() else {
            return Ok(None);
        };
        let token: i64 = r.get(0).unwrap_or_default();
        let cursor: &str = r.get(1).unwrap_or("null");
        commit_record(sync_id, token, cursor).map(Some)
    }
}
