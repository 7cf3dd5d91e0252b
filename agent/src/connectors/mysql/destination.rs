use async_trait::async_trait;
use idra_core::model::{ConnectorKind, Cursor, WriteMode};
use sqlx::mysql::{MySqlArguments, MySqlPool};
use sqlx::query::Query;
use sqlx::{MySql, Row, Transaction};

use super::config::MysqlConfig;
use super::source::table_columns;
use crate::connectors::sql::{
    check_existing_columns, commit_record, fenced_off, load_table, old_table, FENCE_TABLE,
};
use crate::connectors::sql::{insert_sql, rows_per_insert, Dialect};
use crate::connectors::types::{columns_of, Column, ColumnType};
use crate::connectors::values::{format_decimal, format_uuid, value_at, Value};
use crate::connectors::{
    from_sqlx, Commit, ConnectionSpec, ConnectorError, Destination, TableInfo, WriteRequest,
};

const D: Dialect = Dialect::MySql;

pub struct MysqlDestination {
    pool: MySqlPool,
    display: String,
}

impl MysqlDestination {
    pub fn new(spec: &ConnectionSpec) -> Result<Self, ConnectorError> {
        let config = MysqlConfig::from_spec(spec)?;
        Ok(Self {
            pool: config.pool(2),
            display: config.display,
        })
    }

    fn err(&self, what: &str) -> impl Fn(sqlx::Error) -> ConnectorError + '_ {
        let what = format!("{what} in {}", self.display);
        move |e| from_sqlx(e, &what)
    }
}

/// Idra type → MySQL column type when Idra creates a table. Key columns that are text
/// become VARCHAR(255): MySQL cannot index an unbounded TEXT.
pub(super) fn mysql_type(ty: ColumnType, is_key: bool) -> String {
    match ty {
        ColumnType::Int16 => "SMALLINT".into(),
        ColumnType::Int32 => "INT".into(),
        ColumnType::Int64 => "BIGINT".into(),
        ColumnType::Float32 => "FLOAT".into(),
        ColumnType::Float64 => "DOUBLE".into(),
        ColumnType::Bool => "BOOLEAN".into(),
        ColumnType::Text if is_key => "VARCHAR(255)".into(),
        ColumnType::Text => "LONGTEXT".into(),
        ColumnType::Bytes if is_key => "VARBINARY(255)".into(),
        ColumnType::Bytes => "LONGBLOB".into(),
        ColumnType::Date => "DATE".into(),
        ColumnType::Time => "TIME(6)".into(),
        ColumnType::Timestamp | ColumnType::TimestampTz => "DATETIME(6)".into(),
        ColumnType::Decimal { precision, scale } => {
            format!("DECIMAL({precision},{})", scale.clamp(0, 30))
        }
        ColumnType::Json => "JSON".into(),
        ColumnType::Uuid => "CHAR(36)".into(),
    }
}

fn create_table_sql(
    table: &str,
    columns: &[Column],
    keys: &[String],
) -> Result<String, ConnectorError> {
    let mut defs = Vec::new();
    for c in columns {
        let is_key = keys.contains(&c.name);
        let not_null = if is_key || !c.nullable {
            " NOT NULL"
        } else {
            ""
        };
        defs.push(format!(
            "{} {}{not_null}",
            D.quote(&c.name)?,
            mysql_type(c.ty, is_key)
        ));
    }
    if !keys.is_empty() {
        defs.push(format!("PRIMARY KEY ({})", D.quote_all(keys)?.join(", ")));
    }
    Ok(format!(
        "CREATE TABLE IF NOT EXISTS {} ({}) DEFAULT CHARSET=utf8mb4",
        D.quote(table)?,
        defs.join(", ")
    ))
}

pub(super) fn bind_value(
    q: Query<'_, MySql, MySqlArguments>,
    v: Value,
    ty: ColumnType,
) -> Query<'_, MySql, MySqlArguments> {
    match v {
        Value::Null => q.bind(Option::<String>::None),
        Value::Int(i) => q.bind(i),
        Value::Float(f) => q.bind(f),
        Value::Bool(b) => q.bind(b),
        Value::Text(s) => q.bind(s),
        Value::Bytes(b) => q.bind(b),
        Value::Date(d) => q.bind(d),
        Value::Time(t) => q.bind(t),
        Value::Timestamp(t) => q.bind(t),
        Value::TimestampTz(t) => q.bind(t.naive_utc()),
        Value::Decimal(d) => {
            let ColumnType::Decimal { scale, .. } = ty else {
                return q.bind(d.to_string());
            };
            q.bind(format_decimal(d, scale))
        }
        Value::Uuid(u) => q.bind(format_uuid(&u)),
    }
}

async fn check_fence(
    tx: &mut Transaction<'_, MySql>,
    commit: &Commit,
) -> Result<(), ConnectorError> {
    let fences: Vec<i64> = sqlx::query_scalar(&format!(
        "SELECT fence FROM {FENCE_TABLE} WHERE sync_id = ? FOR UPDATE"
    ))
    .bind(&commit.sync_id)
    .fetch_all(&mut **tx)
    .await
    .map_err(|e| from_sqlx(e, "checking the fencing token"))?;
    if let Some(stored) = fences.into_iter().max() {
        if stored > commit.fence {
            return Err(fenced_off(&commit.sync_id, stored, commit.fence));
        }
    }
    Ok(())
}

#[async_trait]
impl Destination for MysqlDestination {
    fn keeps_commit_records(&self) -> bool {
        true
    }

    fn kind(&self) -> ConnectorKind {
        ConnectorKind::Mysql
    }

    async fn test_connection(&self) -> Result<(), ConnectorError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(self.err("connecting"))?;
        Ok(())
    }

    async fn discover(&self) -> Result<Vec<TableInfo>, ConnectorError> {
        let names: Vec<(String,)> = sqlx::query_as("SELECT CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() ORDER BY 1")
            .fetch_all(&self.pool)
            .await
            .map_err(self.err("listing tables"))?;
        let mut out = Vec::new();
        for (name,) in names {
            if D.quote(&name).is_ok() {
                let columns = table_columns(&self.pool, &name, &self.display).await?;
                out.push(TableInfo { name, columns });
            }
        }
        Ok(out)
    }

    async fn ensure_table(
        &self,
        table: &str,
        columns: &[Column],
        keys: &[String],
        _defer_keys: bool,
    ) -> Result<bool, ConnectorError> {
        self.ensure_fence_table().await?;
        let existing = table_columns(&self.pool, table, &self.display).await?;
        if existing.is_empty() {
            sqlx::query(&create_table_sql(table, columns, keys)?)
                .execute(&self.pool)
                .await
                .map_err(self.err(&format!("creating table {table}")))?;
            return Ok(true);
        }
        check_existing_columns(table, columns, &existing)?;
        Ok(false)
    }

    async fn write(&self, req: WriteRequest<'_>) -> Result<(), ConnectorError> {
        let columns = columns_of(&req.rows.schema())?;
        let names: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
        let per_insert = rows_per_insert(D, names.len());
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(self.err("starting a transaction"))?;
        check_fence(&mut tx, req.commit).await?;
        let total = req.rows.num_rows();
        let upsert = matches!(req.mode, WriteMode::Upsert).then_some(req.keys);
        let mut start = 0;
        while start < total {
            let n = per_insert.min(total - start);
            let sql = insert_sql(D, req.table, &names, n, upsert)?;
            let mut q = sqlx::query(&sql);
            for row in start..start + n {
                for (i, col) in columns.iter().enumerate() {
                    q = bind_value(q, value_at(req.rows.column(i), col.ty, row), col.ty);
                }
            }
            q.execute(&mut *tx)
                .await
                .map_err(self.err(&format!("inserting into {}", req.table)))?;
            start += n;
        }
        let cursor = serde_json::to_string(&req.commit.cursor).expect("cursors serialise");
        sqlx::query(&format!(
            "INSERT INTO {FENCE_TABLE} (sync_id, table_name, fence, cursor_json, updated_at) VALUES (?, ?, ?, ?, UTC_TIMESTAMP(6)) \
             ON DUPLICATE KEY UPDATE fence = VALUES(fence), cursor_json = VALUES(cursor_json), updated_at = VALUES(updated_at)"
        ))
        .bind(&req.commit.sync_id)
        .bind(req.table)
        .bind(req.commit.fence)
        .bind(cursor)
        .execute(&mut *tx)
        .await
        .map_err(self.err("recording the commit"))?;
        tx.commit().await.map_err(self.err("committing"))?;
        Ok(())
    }

    async fn claim(
        &self,
        sync_id: &str,
        table: &str,
        fence: i64,
        cursor: &Cursor,
    ) -> Result<(), ConnectorError> {
        // A full refresh claims before any table exists.
        self.ensure_fence_table().await?;
        let mut conn = self.pool.acquire().await.map_err(self.err("opening"))?;
        let locked = swap_lock(&mut conn, sync_id).await?;
        let result = self
            .raise_fence(&mut conn, sync_id, table, fence, cursor)
            .await;
        swap_unlock(&mut conn, &locked).await;
        result
    }

    async fn committed(
        &self,
        sync_id: &str,
        table: &str,
    ) -> Result<Option<Commit>, ConnectorError> {
        let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?")
            .bind(FENCE_TABLE)
            .fetch_optional(&self.pool)
            .await
            .map_err(self.err("looking for _idra_fence"))?;
        if exists.is_none() {
            return Ok(None);
        }
        let row = sqlx::query(&format!(
            "SELECT fence, cursor_json FROM {FENCE_TABLE} WHERE sync_id = ? AND table_name = ?"
        ))
        .bind(sync_id)
        .bind(table)
        .fetch_optional(&self.pool)
        .await
        .map_err(self.err("reading the commit record"))?;
        row.map(|r| {
            let fence: i64 = r
                .try_get(0)
                .map_err(self.err("reading the commit record"))?;
            let cursor: String = r
                .try_get(1)
                .map_err(self.err("reading the commit record"))?;
            commit_record(sync_id, fence, &cursor)
        })
        .transpose()
    }

    async fn max_position(
        &self,
        table: &str,
        key: &str,
        timestamp: Option<&str>,
        key_is_integer: bool,
    ) -> Result<Cursor, ConnectorError> {
        let k = D.quote(key)?;
        let key_sel = if key_is_integer {
            format!("CAST({k} AS SIGNED)")
        } else {
            format!("CAST({k} AS CHAR)")
        };
        let sql = match timestamp {
            None => format!(
                "SELECT {key_sel} FROM {} ORDER BY {k} DESC LIMIT 1",
                D.quote(table)?
            ),
            Some(ts) => {
                let t = D.quote(ts)?;
                format!("SELECT {key_sel}, CAST({t} AS DATETIME(6)) FROM {} WHERE {t} IS NOT NULL ORDER BY {t} DESC, {k} DESC LIMIT 1", D.quote(table)?)
            }
        };
        let row = sqlx::query(&sql)
            .fetch_optional(&self.pool)
            .await
            .map_err(self.err(&format!("reading the last position of {table}")))?;
        let Some(row) = row else {
            return Ok(Cursor::Start);
        };
        let what = format!("reading the last position of {table}");
        let last_key = if key_is_integer {
            Value::Int(row.try_get::<i64, _>(0).map_err(self.err(&what))?)
        } else {
            Value::Text(
                row.try_get_unchecked::<String, _>(0)
                    .map_err(self.err(&what))?,
            )
        };
        Ok(match (timestamp, last_key) {
            (None, Value::Int(last_id)) => Cursor::Id { last_id },
            (None, _) => {
                return Err(ConnectorError::fatal(format!(
                    "key column `{key}` must be an integer for the last-destination-id mode"
                )))
            }
            (Some(_), key) => {
                let ts: chrono::NaiveDateTime =
                    row.try_get_unchecked(1).map_err(self.err(&what))?;
                let last_key = match key {
                    Value::Int(i) => i.to_string(),
                    Value::Text(s) => s,
                    _ => String::new(),
                };
                Cursor::Timestamp {
                    last_ts: ts.and_utc(),
                    last_key,
                }
            }
        })
    }

    async fn begin_overwrite(
        &self,
        table: &str,
        columns: &[Column],
        keys: &[String],
    ) -> Result<String, ConnectorError> {
        let load = load_table(table);
        sqlx::query(&format!("DROP TABLE IF EXISTS {}", D.quote(&load)?))
            .execute(&self.pool)
            .await
            .map_err(self.err("dropping an old load table"))?;
        self.ensure_table(&load, columns, keys, false).await?;
        Ok(load)
    }

    async fn finish_overwrite(
        &self,
        table: &str,
        load_table: &str,
        commit: &Commit,
    ) -> Result<(), ConnectorError> {
        let old = old_table(table);
        // Left behind by a crash between the swap and the drop below; it would make every
        // later swap fail.
        sqlx::query(&format!("DROP TABLE IF EXISTS {}", D.quote(&old)?))
            .execute(&self.pool)
            .await
            .map_err(self.err("dropping a replaced table left by an earlier run"))?;
        let exists = !table_columns(&self.pool, table, &self.display)
            .await?
            .is_empty();
        // RENAME TABLE swaps atomically: readers see the old table or the new one.
        let sql = if exists {
            format!(
                "RENAME TABLE {t} TO {o}, {l} TO {t}",
                t = D.quote(table)?,
                o = D.quote(&old)?,
                l = D.quote(load_table)?
            )
        } else {
            format!(
                "RENAME TABLE {} TO {}",
                D.quote(load_table)?,
                D.quote(table)?
            )
        };
        // See `swap_lock`: the check and the rename hold the sync's swap lock together.
        let mut conn = self.pool.acquire().await.map_err(self.err("opening"))?;
        let locked = swap_lock(&mut conn, &commit.sync_id).await?;
        let swapped = self.check_and_swap(&mut conn, commit, &sql, table).await;
        swap_unlock(&mut conn, &locked).await;
        swapped?;
        sqlx::query(&format!("DROP TABLE IF EXISTS {}", D.quote(&old)?))
            .execute(&mut *conn)
            .await
            .map_err(self.err("dropping the replaced table"))?;
        Ok(())
    }
}

impl MysqlDestination {
    async fn ensure_fence_table(&self) -> Result<(), ConnectorError> {
        sqlx::query(&format!(
            "CREATE TABLE IF NOT EXISTS {FENCE_TABLE} (sync_id VARCHAR(255) NOT NULL, table_name VARCHAR(255) NOT NULL, fence BIGINT NOT NULL, cursor_json TEXT NOT NULL, updated_at DATETIME(6) NOT NULL, PRIMARY KEY (sync_id, table_name)) DEFAULT CHARSET=utf8mb4"
        ))
        .execute(&self.pool)
        .await
        .map_err(self.err("creating the _idra_fence table"))?;
        Ok(())
    }

    async fn check_and_swap(
        &self,
        conn: &mut sqlx::pool::PoolConnection<MySql>,
        commit: &Commit,
        rename: &str,
        table: &str,
    ) -> Result<(), ConnectorError> {
        let mut tx = sqlx::Connection::begin(&mut **conn)
            .await
            .map_err(self.err("starting a transaction"))?;
        check_fence(&mut tx, commit).await?;
        tx.commit()
            .await
            .map_err(self.err("checking the fencing token"))?;
        sqlx::query(rename)
            .execute(&mut **conn)
            .await
            .map_err(self.err(&format!("replacing {table}")))?;
        Ok(())
    }

    /// `claim`'s work, under the sync's swap lock.
    async fn raise_fence(
        &self,
        conn: &mut sqlx::pool::PoolConnection<MySql>,
        sync_id: &str,
        table: &str,
        fence: i64,
        cursor: &Cursor,
    ) -> Result<(), ConnectorError> {
        let mut tx = sqlx::Connection::begin(&mut **conn)
            .await
            .map_err(self.err("starting a transaction"))?;
        let fences: Vec<i64> = sqlx::query_scalar(&format!(
            "SELECT fence FROM {FENCE_TABLE} WHERE sync_id = ? FOR UPDATE"
        ))
        .bind(sync_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(self.err("checking the fencing token"))?;
        if let Some(stored) = fences.into_iter().max().filter(|s| *s > fence) {
            return Err(fenced_off(sync_id, stored, fence));
        }
        sqlx::query(&format!(
            "INSERT INTO {FENCE_TABLE} (sync_id, table_name, fence, cursor_json, updated_at) VALUES (?, ?, ?, ?, UTC_TIMESTAMP(6)) \
             ON DUPLICATE KEY UPDATE fence = GREATEST(fence, VALUES(fence))"
        ))
        .bind(sync_id)
        .bind(table)
        .bind(fence)
        .bind(serde_json::to_string(cursor).expect("cursors serialise"))
        .execute(&mut *tx)
        .await
        .map_err(self.err("raising the fencing token"))?;
        tx.commit()
            .await
            .map_err(self.err("committing the claim"))?;
        Ok(())
    }
}

/// MySQL commits before any DDL, so a full refresh's swap (RENAME TABLE) cannot share a
/// transaction with its fence check. Instead the check and the swap, and every claim that
/// raises the sync's token, run under one named lock per sync: a newer holder's claim
/// either lands before the check (which then refuses) or waits until the swap is done.
async fn swap_lock(
    conn: &mut sqlx::pool::PoolConnection<MySql>,
    sync_id: &str,
) -> Result<String, ConnectorError> {
    // MySQL lock names are at most 64 characters.
    let name: String = format!("idra_fence/{sync_id}").chars().take(64).collect();
    let got: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(?, 30)")
        .bind(&name)
        .fetch_one(&mut **conn)
        .await
        .map_err(|e| from_sqlx(e, "taking the sync's swap lock"))?;
    if got != Some(1) {
        return Err(ConnectorError::retryable(format!(
            "timed out waiting for the swap lock `{name}` on MySQL (another run of this sync holds it); retrying"
        )));
    }
    Ok(name)
}

async fn swap_unlock(conn: &mut sqlx::pool::PoolConnection<MySql>, name: &str) {
    let _ = sqlx::query("SELECT RELEASE_LOCK(?)")
        .bind(name)
        .execute(&mut **conn)
        .await;
}
