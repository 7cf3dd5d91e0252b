use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use futures::TryStreamExt;
use idra_core::model::Cursor;
use sqlx::query::Query;
use sqlx::sqlite::{SqliteArguments, SqlitePool, SqliteRow};
use sqlx::{Column as _, Executor, Row, Sqlite, TypeInfo, ValueRef};

use super::config::SqliteConfig;
use crate::connectors::sql::{
    cursor_params, from_clause, read_query, subquery, time_param, CursorValue, Dialect, ReadQuery,
};
use crate::connectors::types::{Column, ColumnType, DEFAULT_DECIMAL};
use crate::connectors::values::{format_uuid, parse_decimal, parse_uuid, BatchBuilder, Value};
use crate::connectors::{
    check_cursor_columns, from_sqlx, may_hold_null_timestamps, null_timestamps, ConnectionSpec,
    ConnectorError, ReadBatch, ReadSpec, Source, TableInfo,
};

const D: Dialect = Dialect::Sqlite;

pub struct SqliteSource {
    /// For connection tests: one direct connection fails at once with the real reason,
    /// where the pool would keep retrying until its timeout.
    options: sqlx::sqlite::SqliteConnectOptions,
    pool: SqlitePool,
    display: String,
}

impl SqliteSource {
    pub fn new(spec: &ConnectionSpec) -> Result<Self, ConnectorError> {
        let config = SqliteConfig::from_spec(spec, false)?;
        Ok(Self {
            options: config.options.clone(),
            pool: config.pool(),
            display: config.display,
        })
    }
}

fn precision_scale(decl: &str) -> Option<(u8, i8)> {
    let inner = decl.split_once('(')?.1.trim_end_matches(')');
    let (p, s) = inner.split_once(',').unwrap_or((inner, "0"));
    let p: u8 = p.trim().parse().ok()?;
    let s: i8 = s.trim().parse().ok()?;
    ((1..=38).contains(&p) && s >= 0 && s as u8 <= p).then_some((p, s))
}

/// Declared column type → Idra type (SQLite keeps the declared name verbatim).
pub(super) fn map_type(declared: &str) -> ColumnType {
    let d = declared.trim().to_ascii_uppercase();
    let base = d.split('(').next().unwrap_or("").trim();
    match base {
        "SMALLINT" | "INT2" | "TINYINT" => ColumnType::Int16,
        "INT" | "INT4" | "MEDIUMINT" => ColumnType::Int32,
        "INTEGER" | "BIGINT" | "INT8" => ColumnType::Int64,
        "FLOAT" | "FLOAT4" => ColumnType::Float32,
        "REAL" | "DOUBLE" | "DOUBLE PRECISION" | "FLOAT8" => ColumnType::Float64,
        "BOOLEAN" | "BOOL" => ColumnType::Bool,
        "BLOB" | "BYTEA" => ColumnType::Bytes,
        "DATE" => ColumnType::Date,
        "TIME" => ColumnType::Time,
        "TIMESTAMP" | "DATETIME" => ColumnType::Timestamp,
        "TIMESTAMPTZ" => ColumnType::TimestampTz,
        "DECIMAL" | "NUMERIC" | "DECIMAL_TEXT" => match precision_scale(&d) {
            Some((precision, scale)) => ColumnType::Decimal { precision, scale },
            None => DEFAULT_DECIMAL,
        },
        "JSON" | "JSONB" => ColumnType::Json,
        "UUID" => ColumnType::Uuid,
        _ if base.contains("INT") => ColumnType::Int64,
        _ => ColumnType::Text,
    }
}

pub(super) async fn table_columns(
    pool: &SqlitePool,
    table: &str,
    what: &str,
) -> Result<Vec<Column>, ConnectorError> {
    D.quote(table)?;
    let rows = sqlx::query("SELECT name, type, \"notnull\", pk FROM pragma_table_info(?)")
        .bind(table)
        .fetch_all(pool)
        .await
        .map_err(|e| from_sqlx(e, what))?;
    rows.iter()
        .map(|r| {
            let name: String = r.try_get(0).map_err(|e| from_sqlx(e, what))?;
            let declared: String = r.try_get(1).map_err(|e| from_sqlx(e, what))?;
            let not_null: i64 = r.try_get(2).map_err(|e| from_sqlx(e, what))?;
            Ok(Column::new(name, map_type(&declared), not_null == 0))
        })
        .collect()
}

pub(super) fn format_ts(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
}

pub(super) fn format_tstz(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

pub(super) fn format_time(t: NaiveTime) -> String {
    t.format("%H:%M:%S%.6f").to_string()
}

/// Binds a cursor or cutoff value as SQLite stores it: times as text in one fixed format
/// (so text order is time order), UUIDs as text.
fn bind_value<'q>(
    q: Query<'q, Sqlite, SqliteArguments<'q>>,
    v: CursorValue,
) -> Query<'q, Sqlite, SqliteArguments<'q>> {
    match v {
        CursorValue::Int(i) => q.bind(i),
        CursorValue::Text(s) => q.bind(s),
        CursorValue::Uuid(u) => q.bind(format_uuid(&u)),
        CursorValue::Date(d) => q.bind(d.to_string()),
        CursorValue::Timestamp(t) => q.bind(format_ts(t)),
        CursorValue::TimestampTz(t) => q.bind(format_tstz(t)),
    }
}

fn parse_ts(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim().trim_end_matches('Z');
    [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%d",
    ]
    .iter()
    .find_map(|f| {
        NaiveDateTime::parse_from_str(s, f).ok().or_else(|| {
            NaiveDate::parse_from_str(s, f)
                .ok()
                .map(|d| d.and_hms_opt(0, 0, 0).unwrap())
        })
    })
}

fn cell(row: &SqliteRow, i: usize, col: &Column) -> Result<Value, ConnectorError> {
    let raw = row
        .try_get_raw(i)
        .map_err(|e| ConnectorError::fatal(format!("column `{}`: {e}", col.name)))?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let storage = raw.type_info().name().to_string();
    let bad = |what: &dyn std::fmt::Display| {
        ConnectorError::fatal(format!(
            "column `{}` ({}): cannot read {what}",
            col.name,
            col.ty.name()
        ))
    };
    let text = || row.try_get_unchecked::<String, _>(i).map_err(|e| bad(&e));
    Ok(match (col.ty, storage.as_str()) {
        (ColumnType::Int16 | ColumnType::Int32 | ColumnType::Int64, "INTEGER") => {
            Value::Int(row.try_get_unchecked::<i64, _>(i).map_err(|e| bad(&e))?)
        }
        (ColumnType::Int16 | ColumnType::Int32 | ColumnType::Int64, _) => {
            Value::Int(text()?.trim().parse().map_err(|e| bad(&e))?)
        }
        (ColumnType::Bool, "INTEGER") => {
            Value::Bool(row.try_get_unchecked::<i64, _>(i).map_err(|e| bad(&e))? != 0)
        }
        (ColumnType::Bool, _) => Value::Bool(matches!(
            text()?.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "t" | "yes"
        )),
        (ColumnType::Float32 | ColumnType::Float64, "INTEGER" | "REAL") => {
            Value::Float(row.try_get_unchecked::<f64, _>(i).map_err(|e| bad(&e))?)
        }
        (ColumnType::Float32 | ColumnType::Float64, _) => {
            Value::Float(text()?.trim().parse().map_err(|e| bad(&e))?)
        }
        (ColumnType::Bytes, "BLOB") => Value::Bytes(
            row.try_get_unchecked::<Vec<u8>, _>(i)
                .map_err(|e| bad(&e))?,
        ),
        (ColumnType::Bytes, _) => Value::Bytes(text()?.into_bytes()),
        (ColumnType::Text | ColumnType::Json, "INTEGER") => {
            Value::Int(row.try_get_unchecked::<i64, _>(i).map_err(|e| bad(&e))?)
        }
        (ColumnType::Text | ColumnType::Json, "REAL") => {
            Value::Float(row.try_get_unchecked::<f64, _>(i).map_err(|e| bad(&e))?)
        }
        (ColumnType::Text | ColumnType::Json, _) => Value::Text(text()?),
        (ColumnType::Date, _) => {
            let s = text()?;
            Value::Date(
                NaiveDate::parse_from_str(s.trim().get(..10).unwrap_or(""), "%Y-%m-%d")
                    .map_err(|_| bad(&s))?,
            )
        }
        (ColumnType::Time, _) => {
            let s = text()?;
            Value::Time(NaiveTime::parse_from_str(s.trim(), "%H:%M:%S%.f").map_err(|_| bad(&s))?)
        }
        (ColumnType::Timestamp, _) => {
            let s = text()?;
            Value::Timestamp(parse_ts(&s).ok_or_else(|| bad(&s))?)
        }
        (ColumnType::TimestampTz, _) => {
            let s = text()?;
            let t = DateTime::parse_from_rfc3339(s.trim())
                .map(|t| t.with_timezone(&Utc))
                .ok()
                .or_else(|| parse_ts(&s).map(|n| n.and_utc()));
            Value::TimestampTz(t.ok_or_else(|| bad(&s))?)
        }
        (ColumnType::Decimal { scale, .. }, "INTEGER") => Value::Decimal(
            crate::connectors::values::rescale(
                row.try_get_unchecked::<i64, _>(i).map_err(|e| bad(&e))? as i128,
                0,
                scale,
            )
            .ok_or_else(|| bad(&"an integer too large"))?,
        ),
        (ColumnType::Decimal { scale, .. }, "REAL") => {
            let f: f64 = row.try_get_unchecked(i).map_err(|e| bad(&e))?;
            Value::Decimal(
                parse_decimal(&format!("{f:.*}", scale.max(0) as usize), scale)
                    .ok_or_else(|| bad(&f))?,
            )
        }
        (ColumnType::Decimal { scale, .. }, _) => {
            let s = text()?;
            Value::Decimal(parse_decimal(&s, scale).ok_or_else(|| bad(&s))?)
        }
        (ColumnType::Uuid, "BLOB") => {
            let b: Vec<u8> = row.try_get_unchecked(i).map_err(|e| bad(&e))?;
            Value::Uuid(
                b.try_into()
                    .map_err(|_| bad(&"a blob that is not 16 bytes"))?,
            )
        }
        (ColumnType::Uuid, _) => {
            let s = text()?;
            Value::Uuid(parse_uuid(&s).ok_or_else(|| bad(&s))?)
        }
    })
}

#[async_trait]
impl Source for SqliteSource {
    async fn test_connection(&self) -> Result<(), ConnectorError> {
        use sqlx::Connection;
        let mut c = sqlx::sqlite::SqliteConnection::connect_with(&self.options)
            .await
            .map_err(|e| from_sqlx(e, &self.display))?;
        sqlx::query("SELECT 1")
            .execute(&mut c)
            .await
            .map_err(|e| from_sqlx(e, &self.display))?;
        let _ = c.close().await;
        Ok(())
    }

    async fn discover(&self) -> Result<Vec<TableInfo>, ConnectorError> {
        let names: Vec<(String,)> = sqlx::query_as("SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' ORDER BY 1")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| from_sqlx(e, &self.display))?;
        let mut out = Vec::new();
        for (name,) in names {
            if D.quote(&name).is_ok() {
                let columns = table_columns(&self.pool, &name, &self.display).await?;
                out.push(TableInfo { name, columns });
            }
        }
        Ok(out)
    }

    async fn columns(&self, spec: &ReadSpec) -> Result<Vec<Column>, ConnectorError> {
        let columns = match (&spec.table, &spec.query) {
            (_, Some(query)) => {
                let sql = format!("SELECT * FROM {} LIMIT 0", subquery(query)?);
                let described = (&self.pool)
                    .describe(&sql)
                    .await
                    .map_err(|e| from_sqlx(e, "checking the custom query"))?;
                described
                    .columns()
                    .iter()
                    .map(|c| Column::new(c.name(), map_type(c.type_info().name()), true))
                    .collect()
            }
            (Some(table), None) => {
                let cols = table_columns(&self.pool, table, &self.display).await?;
                if cols.is_empty() {
                    return Err(ConnectorError::fatal(format!(
                        "source table `{table}` does not exist in {}; check the table name",
                        self.display
                    )));
                }
                cols
            }
            (None, None) => {
                return Err(ConnectorError::fatal(
                    "the sync names neither a source table nor a query",
                ))
            }
        };
        check_cursor_columns(&columns, &spec.key, spec.timestamp.as_deref())?;
        if let Some((table, ts)) = may_hold_null_timestamps(spec, &columns) {
            let found: i64 = sqlx::query_scalar(&format!(
                "SELECT EXISTS (SELECT 1 FROM {} WHERE {} IS NULL)",
                D.quote(table)?,
                D.quote(ts)?
            ))
            .fetch_one(&self.pool)
            .await
            .map_err(|e| from_sqlx(e, "checking the timestamp column for NULLs"))?;
            if found != 0 {
                return Err(null_timestamps(ts));
            }
        }
        Ok(columns)
    }

    async fn read(
        &self,
        spec: &ReadSpec,
        columns: &[Column],
        after: &Cursor,
        limit: usize,
    ) -> Result<ReadBatch, ConnectorError> {
        let inner = from_clause(D, spec)?;
        let names: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
        let sql = read_query(
            D,
            &ReadQuery {
                select: &D.quote_all(&names)?.join(", "),
                inner: &inner,
                key: &spec.key,
                ts: spec.timestamp.as_deref(),
                first: matches!(after, Cursor::Start),
                extra: None,
                settle: spec.settle_before.is_some(),
                literals: None,
            },
        )?;
        let (key, ts) = spec.cursor_columns(columns)?;
        let mut q = sqlx::query(&sql);
        for p in cursor_params(after, key, ts)? {
            q = bind_value(q, p.value);
        }
        if let (Some(cutoff), Some(ts)) = (spec.settle_before, ts) {
            q = bind_value(q, time_param(cutoff, ts.ty));
        }
        let q = q.bind(limit as i64);
        let what = format!("reading {}", spec.describe());
        let mut b = BatchBuilder::new(columns, limit.min(1 << 16));
        let mut conn = self.pool.acquire().await.map_err(|e| from_sqlx(e, &what))?;
        // The source's connections only read: `query_only` makes SQLite refuse any write
        // a custom query could smuggle in.
        sqlx::query("PRAGMA query_only = ON")
            .execute(&mut *conn)
            .await
            .map_err(|e| from_sqlx(e, &what))?;
        let mut rows = q.fetch(&mut *conn);
        while let Some(row) = rows.try_next().await.map_err(|e| from_sqlx(e, &what))? {
            for (i, col) in columns.iter().enumerate() {
                b.push(i, cell(&row, i, col)?)?;
            }
            b.end_row();
        }
        ReadBatch::keyed(b.finish()?, limit, spec, columns, after)
    }
}
