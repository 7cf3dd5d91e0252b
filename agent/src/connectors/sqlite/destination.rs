use async_trait::async_trait;
use idra_core::model::{ConnectorKind, Cursor, WriteMode};
use sqlx::query::Query;
use sqlx::sqlite::{SqliteArguments, SqlitePool};
use sqlx::{Row, Sqlite};

use super::config::SqliteConfig;
use super::source::{format_time, format_ts, format_tstz, table_columns};
use crate::connectors::sql::{
    check_existing_columns, commit_record, fenced_off, load_table, FENCE_TABLE,
};
use crate::connectors::sql::{insert_sql, rows_per_insert, Dialect};
use crate::connectors::types::{columns_of, Column, ColumnType};
use crate::connectors::values::{format_decimal, format_uuid, value_at, Value};
use crate::connectors::{
    from_sqlx, Commit, ConnectionSpec, ConnectorError, Destination, TableInfo, WriteRequest,
};

const D: Dialect = Dialect::Sqlite;

pub struct SqliteDestination {
    pool: SqlitePool,
    display: String,
}

impl SqliteDestination {
    pub fn new(spec: &ConnectionSpec) -> Result<Self, ConnectorError> {
        let config = SqliteConfig::from_spec(spec, true)?;
        Ok(Self {
            pool: config.pool(),
            display: config.display,
        })
    }

    fn err(&self, what: &str) -> impl Fn(sqlx::Error) -> ConnectorError + '_ {
        let what = format!("{what} in {}", self.display);
        move |e| from_sqlx(e, &what)
    }
}

/// Idra type → declared SQLite type. The declared name is what maps it back; decimals are
/// declared `DECIMAL_TEXT(p,s)` so SQLite's TEXT affinity keeps every digit.
pub(super) fn sqlite_type(ty: ColumnType) -> String {
    match ty {
        ColumnType::Int16 => "SMALLINT".into(),
        ColumnType::Int32 => "INT".into(),
        ColumnType::Int64 => "INTEGER".into(),
        ColumnType::Float32 => "FLOAT".into(),
        ColumnType::Float64 => "DOUBLE".into(),
        ColumnType::Bool => "BOOLEAN".into(),
        ColumnType::Text => "TEXT".into(),
        ColumnType::Bytes => "BLOB".into(),
        ColumnType::Date => "DATE".into(),
        ColumnType::Time => "TIME".into(),
        ColumnType::Timestamp => "TIMESTAMP".into(),
        ColumnType::TimestampTz => "TIMESTAMPTZ".into(),
        ColumnType::Decimal { precision, scale } => format!("DECIMAL_TEXT({precision},{scale})"),
        ColumnType::Json => "JSON".into(),
        ColumnType::Uuid => "UUID".into(),
    }
}

fn create_table_sql(
    table: &str,
    columns: &[Column],
    keys: &[String],
) -> Result<String, ConnectorError> {
    let mut defs = Vec::new();
    for c in columns {
        let not_null = if keys.contains(&c.name) || !c.nullable {
            " NOT NULL"
        } else {
            ""
        };
        defs.push(format!(
            "{} {}{not_null}",
            D.quote(&c.name)?,
            sqlite_type(c.ty)
        ));
    }
    if !keys.is_empty() {
        defs.push(format!("PRIMARY KEY ({})", D.quote_all(keys)?.join(", ")));
    }
    Ok(format!(
        "CREATE TABLE IF NOT EXISTS {} ({})",
        D.quote(table)?,
        defs.join(", ")
    ))
}

fn bind_value<'q>(
    q: Query<'q, Sqlite, SqliteArguments<'q>>,
    v: Value,
    ty: ColumnType,
) -> Query<'q, Sqlite, SqliteArguments<'q>> {
    match v {
        Value::Null => q.bind(Option::<String>::None),
        Value::Int(i) => q.bind(i),
        Value::Float(f) => q.bind(f),
        Value::Bool(b) => q.bind(b as i64),
        Value::Text(s) => q.bind(s),
        Value::Bytes(b) => q.bind(b),
        Value::Date(d) => q.bind(d.to_string()),
        Value::Time(t) => q.bind(format_time(t)),
        Value::Timestamp(t) => q.bind(format_ts(t)),
        Value::TimestampTz(t) => q.bind(format_tstz(t)),
        Value::Decimal(d) => match ty {
            ColumnType::Decimal { scale, .. } => q.bind(format_decimal(d, scale)),
            _ => q.bind(d.to_string()),
        },
        Value::Uuid(u) => q.bind(format_uuid(&u)),
    }
}

impl SqliteDestination {
    async fn ensure_fence_table(&self) -> Result<(), ConnectorError> {
        sqlx::query(&format!(
            "CREATE TABLE IF NOT EXISTS {FENCE_TABLE} (sync_id TEXT NOT NULL, table_name TEXT NOT NULL, fence INTEGER NOT NULL, cursor TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (sync_id, table_name))"
        ))
        .execute(&self.pool)
        .await
        .map_err(self.err("creating the _idra_fence table"))?;
        Ok(())
    }
}

#[async_trait]
impl Destination for SqliteDestination {
    fn keeps_commit_records(&self) -> bool {
        true
    }

    fn kind(&self) -> ConnectorKind {
        ConnectorKind::Sqlite
    }

    async fn test_connection(&self) -> Result<(), ConnectorError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(self.err("opening"))?;
        Ok(())
    }

    async fn discover(&self) -> Result<Vec<TableInfo>, ConnectorError> {
        let names: Vec<(String,)> = sqlx::query_as("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY 1")
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
        // BEGIN IMMEDIATE takes the write lock up front, so the fence check and the writes
        // cannot interleave with another writer.
        let mut conn = self.pool.acquire().await.map_err(self.err("opening"))?;
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut *conn)
            .await
            .map_err(self.err("starting a transaction"))?;
        let result: Result<(), ConnectorError> = async {
            let stored: Option<i64> = sqlx::query_scalar::<_, Option<i64>>(&format!("SELECT MAX(fence) FROM {FENCE_TABLE} WHERE sync_id = ?"))
                .bind(&req.commit.sync_id)
                .fetch_one(&mut *conn)
                .await
                .map_err(self.err("checking the fencing token"))?;
            if let Some(stored) = stored.filter(|s| *s > req.commit.fence) {
                return Err(fenced_off(&req.commit.sync_id, stored, req.commit.fence));
            }
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
                q.execute(&mut *conn).await.map_err(self.err(&format!("inserting into {}", req.table)))?;
                start += n;
            }
            let cursor = serde_json::to_string(&req.commit.cursor).expect("cursors serialise");
            sqlx::query(&format!(
                "INSERT INTO {FENCE_TABLE} (sync_id, table_name, fence, cursor, updated_at) VALUES (?, ?, ?, ?, strftime('%Y-%m-%dT%H:%M:%fZ')) \
                 ON CONFLICT (sync_id, table_name) DO UPDATE SET fence = excluded.fence, cursor = excluded.cursor, updated_at = excluded.updated_at"
            ))
            .bind(&req.commit.sync_id)
            .bind(req.table)
            .bind(req.commit.fence)
            .bind(cursor)
            .execute(&mut *conn)
            .await
            .map_err(self.err("recording the commit"))?;
            Ok(())
        }
        .await;
        match result {
            Ok(()) => {
                sqlx::query("COMMIT")
                    .execute(&mut *conn)
                    .await
                    .map_err(self.err("committing"))?;
                Ok(())
            }
            Err(e) => {
                let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                Err(e)
            }
        }
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
        let stored: Option<i64> = sqlx::query_scalar::<_, Option<i64>>(&format!(
            "SELECT MAX(fence) FROM {FENCE_TABLE} WHERE sync_id = ?"
        ))
        .bind(sync_id)
        .fetch_one(&self.pool)
        .await
        .map_err(self.err("checking the fencing token"))?;
        if let Some(stored) = stored.filter(|s| *s > fence) {
            return Err(fenced_off(sync_id, stored, fence));
        }
        sqlx::query(&format!(
            "INSERT INTO {FENCE_TABLE} (sync_id, table_name, fence, cursor, updated_at) VALUES (?, ?, ?, ?, strftime('%Y-%m-%dT%H:%M:%fZ')) \
             ON CONFLICT (sync_id, table_name) DO UPDATE SET fence = MAX(fence, excluded.fence)"
        ))
        .bind(sync_id)
        .bind(table)
        .bind(fence)
        .bind(serde_json::to_string(cursor).expect("cursors serialise"))
        .execute(&self.pool)
        .await
        .map_err(self.err("raising the fencing token"))?;
        Ok(())
    }

    async fn committed(
        &self,
        sync_id: &str,
        table: &str,
    ) -> Result<Option<Commit>, ConnectorError> {
        let exists: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?")
                .bind(FENCE_TABLE)
                .fetch_optional(&self.pool)
                .await
                .map_err(self.err("looking for _idra_fence"))?;
        if exists.is_none() {
            return Ok(None);
        }
        let row = sqlx::query(&format!(
            "SELECT fence, cursor FROM {FENCE_TABLE} WHERE sync_id = ? AND table_name = ?"
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
        let sql = match timestamp {
            None => format!(
                "SELECT {k} FROM {} ORDER BY {k} DESC LIMIT 1",
                D.quote(table)?
            ),
            Some(ts) => {
                let t = D.quote(ts)?;
                format!("SELECT {k}, {t} FROM {} WHERE {t} IS NOT NULL ORDER BY {t} DESC, {k} DESC LIMIT 1", D.quote(table)?)
            }
        };
        let what = format!("reading the last position of {table}");
        let row = sqlx::query(&sql)
            .fetch_optional(&self.pool)
            .await
            .map_err(self.err(&what))?;
        let Some(row) = row else {
            return Ok(Cursor::Start);
        };
        let last_key: String = if key_is_integer {
            row.try_get_unchecked::<i64, _>(0)
                .map_err(self.err(&what))?
                .to_string()
        } else {
            row.try_get_unchecked::<String, _>(0)
                .map_err(self.err(&what))?
        };
        match timestamp {
            None => Ok(Cursor::Id {
                last_id: last_key.parse().map_err(|_| {
                    ConnectorError::fatal(format!(
                        "key column `{key}` must be an integer for the last-destination-id mode"
                    ))
                })?,
            }),
            Some(ts) => {
                let cols = table_columns(&self.pool, table, &self.display).await?;
                let ty = cols
                    .iter()
                    .find(|c| c.name == ts)
                    .map(|c| c.ty)
                    .unwrap_or(ColumnType::Timestamp);
                let text: String = row.try_get_unchecked(1).map_err(self.err(&what))?;
                let last_ts = match ty {
                    ColumnType::TimestampTz => chrono::DateTime::parse_from_rfc3339(&text)
                        .map(|t| t.with_timezone(&chrono::Utc))
                        .ok(),
                    ColumnType::Date => chrono::NaiveDate::parse_from_str(&text, "%Y-%m-%d")
                        .ok()
                        .map(|d| d.and_hms_opt(0, 0, 0).unwrap().and_utc()),
                    _ => chrono::NaiveDateTime::parse_from_str(&text, "%Y-%m-%d %H:%M:%S%.f")
                        .ok()
                        .map(|t| t.and_utc()),
                }
                .ok_or_else(|| {
                    ConnectorError::fatal(format!(
                        "column `{ts}` holds `{text}`, which is not a timestamp Idra can read"
                    ))
                })?;
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
        // The fence table exists: begin_overwrite created the load table through ensure_table.
        let mut conn = self.pool.acquire().await.map_err(self.err("opening"))?;
        // BEGIN IMMEDIATE: the fence check and the swap hold the write lock together.
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut *conn)
            .await
            .map_err(self.err("starting a transaction"))?;
        let result: Result<(), ConnectorError> = async {
            let stored: Option<i64> = sqlx::query_scalar::<_, Option<i64>>(&format!(
                "SELECT MAX(fence) FROM {FENCE_TABLE} WHERE sync_id = ?"
            ))
            .bind(&commit.sync_id)
            .fetch_one(&mut *conn)
            .await
            .map_err(self.err("checking the fencing token"))?;
            if let Some(stored) = stored.filter(|s| *s > commit.fence) {
                return Err(fenced_off(&commit.sync_id, stored, commit.fence));
            }
            sqlx::query(&format!("DROP TABLE IF EXISTS {}", D.quote(table)?))
                .execute(&mut *conn)
                .await
                .map_err(self.err(&format!("replacing {table}")))?;
            sqlx::query(&format!(
                "ALTER TABLE {} RENAME TO {}",
                D.quote(load_table)?,
                D.quote(table)?
            ))
            .execute(&mut *conn)
            .await
            .map_err(self.err(&format!("replacing {table}")))?;
            Ok(())
        }
        .await;
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        sqlx::query(end)
            .execute(&mut *conn)
            .await
            .map_err(self.err("committing the replacement"))?;
        result
    }
}
