use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use futures::TryStreamExt;
use idra_core::model::Cursor;
use sqlx::mysql::{MySqlArguments, MySqlPool, MySqlRow};
use sqlx::query::Query;
use sqlx::{Column as _, Executor, MySql, Row, TypeInfo, ValueRef};

use super::config::MysqlConfig;
use crate::connectors::sql::{
    cursor_params, from_clause, read_query, subquery, time_param, CursorValue, Dialect, ReadQuery,
};
use crate::connectors::types::{Column, ColumnType, DEFAULT_DECIMAL};
use crate::connectors::values::{format_uuid, parse_decimal, parse_uuid, BatchBuilder, Value};
use crate::connectors::{
    check_cursor_columns, from_sqlx, may_hold_null_timestamps, null_timestamps, ConnectionSpec,
    ConnectorError, ReadBatch, ReadSpec, Source, TableInfo,
};

const D: Dialect = Dialect::MySql;

pub struct MysqlSource {
    /// For connection tests: one direct connection fails at once with the real reason,
    /// where the pool would keep retrying until its timeout.
    options: sqlx::mysql::MySqlConnectOptions,
    pool: MySqlPool,
    display: String,
}

impl MysqlSource {
    pub fn new(spec: &ConnectionSpec) -> Result<Self, ConnectorError> {
        let config = MysqlConfig::from_spec(spec)?;
        Ok(Self {
            options: config.options.clone(),
            pool: config.pool(2),
            display: config.display,
        })
    }
}

/// MySQL type (information_schema DATA_TYPE / COLUMN_TYPE, or a driver type name) → Idra.
pub(super) fn map_type(
    data_type: &str,
    column_type: &str,
    precision: Option<i64>,
    scale: Option<i64>,
) -> ColumnType {
    let column_type = column_type.to_ascii_lowercase();
    match data_type.to_ascii_lowercase().as_str() {
        "tinyint" | "boolean"
            if column_type.starts_with("tinyint(1)") || column_type == "boolean" =>
        {
            ColumnType::Bool
        }
        "tinyint" | "smallint" | "year" => ColumnType::Int16,
        "mediumint" | "int" | "integer" => ColumnType::Int32,
        "bigint" => ColumnType::Int64,
        "float" => ColumnType::Float32,
        "double" | "real" => ColumnType::Float64,
        "decimal" | "numeric" | "newdecimal" => match (precision, scale) {
            (Some(p), Some(s)) if (1..=38).contains(&p) && s <= p => ColumnType::Decimal {
                precision: p as u8,
                scale: s as i8,
            },
            _ => DEFAULT_DECIMAL,
        },
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => {
            ColumnType::Bytes
        }
        "date" => ColumnType::Date,
        "time" => ColumnType::Time,
        "datetime" => ColumnType::Timestamp,
        "timestamp" => ColumnType::TimestampTz,
        "json" => ColumnType::Json,
        "uuid" => ColumnType::Uuid,
        _ => ColumnType::Text,
    }
}

pub(super) async fn table_columns(
    pool: &MySqlPool,
    table: &str,
    what: &str,
) -> Result<Vec<Column>, ConnectorError> {
    D.quote(table)?;
    let (schema, name) = match table.split_once('.') {
        Some((s, n)) => (Some(s), n),
        None => (None, table),
    };
    let rows = sqlx::query(
        "SELECT CAST(COLUMN_NAME AS CHAR), CAST(DATA_TYPE AS CHAR), CAST(COLUMN_TYPE AS CHAR), \
         CAST(NUMERIC_PRECISION AS SIGNED), CAST(NUMERIC_SCALE AS SIGNED), IS_NULLABLE = 'YES' \
         FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
    )
    .bind(schema)
    .bind(name)
    .fetch_all(pool)
    .await
    .map_err(|e| from_sqlx(e, what))?;
    rows.iter()
        .map(|r| {
            let name: String = r.try_get(0).map_err(|e| from_sqlx(e, what))?;
            let dt: String = r.try_get(1).map_err(|e| from_sqlx(e, what))?;
            let ct: String = r.try_get(2).map_err(|e| from_sqlx(e, what))?;
            let p: Option<i64> = r.try_get(3).map_err(|e| from_sqlx(e, what))?;
            let s: Option<i64> = r.try_get(4).map_err(|e| from_sqlx(e, what))?;
            let nullable: bool = r.try_get(5).map_err(|e| from_sqlx(e, what))?;
            Ok(Column::new(name, map_type(&dt, &ct, p, s), nullable))
        })
        .collect()
}

/// Binds a cursor or cutoff value as MySQL compares it with its column (UUIDs are text).
fn bind_value(
    q: Query<'_, MySql, MySqlArguments>,
    v: CursorValue,
) -> Query<'_, MySql, MySqlArguments> {
    match v {
        CursorValue::Int(i) => q.bind(i),
        CursorValue::Text(s) => q.bind(s),
        CursorValue::Uuid(u) => q.bind(format_uuid(&u)),
        CursorValue::Date(d) => q.bind(d),
        CursorValue::Timestamp(t) => q.bind(t),
        CursorValue::TimestampTz(t) => q.bind(t),
    }
}

fn cell(row: &MySqlRow, i: usize, col: &Column) -> Result<Value, ConnectorError> {
    let raw = row
        .try_get_raw(i)
        .map_err(|e| ConnectorError::fatal(format!("column `{}`: {e}", col.name)))?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let bad = |e: sqlx::Error| {
        ConnectorError::fatal(format!("column `{}` ({}): {e}", col.name, col.ty.name()))
    };
    Ok(match col.ty {
        ColumnType::Int16 | ColumnType::Int32 | ColumnType::Int64 => {
            Value::Int(row.try_get_unchecked::<i64, _>(i).map_err(bad)?)
        }
        ColumnType::Bool => Value::Bool(row.try_get_unchecked::<i64, _>(i).map_err(bad)? != 0),
        ColumnType::Float32 => {
            Value::Float(row.try_get_unchecked::<f32, _>(i).map_err(bad)? as f64)
        }
        ColumnType::Float64 => Value::Float(row.try_get_unchecked::<f64, _>(i).map_err(bad)?),
        ColumnType::Text | ColumnType::Json => {
            Value::Text(row.try_get_unchecked::<String, _>(i).map_err(bad)?)
        }
        ColumnType::Bytes => Value::Bytes(row.try_get_unchecked::<Vec<u8>, _>(i).map_err(bad)?),
        ColumnType::Date => Value::Date(row.try_get_unchecked::<NaiveDate, _>(i).map_err(bad)?),
        ColumnType::Time => Value::Time(row.try_get_unchecked::<NaiveTime, _>(i).map_err(bad)?),
        ColumnType::Timestamp => {
            Value::Timestamp(row.try_get_unchecked::<NaiveDateTime, _>(i).map_err(bad)?)
        }
        ColumnType::TimestampTz => {
            Value::TimestampTz(row.try_get_unchecked::<DateTime<Utc>, _>(i).map_err(bad)?)
        }
        ColumnType::Decimal { scale, .. } => {
            let s = row.try_get_unchecked::<String, _>(i).map_err(bad)?;
            Value::Decimal(parse_decimal(&s, scale).ok_or_else(|| {
                ConnectorError::fatal(format!(
                    "column `{}`: `{s}` does not fit decimal(38,{scale})",
                    col.name
                ))
            })?)
        }
        ColumnType::Uuid => {
            let s = row.try_get_unchecked::<String, _>(i).map_err(bad)?;
            Value::Uuid(parse_uuid(&s).ok_or_else(|| {
                ConnectorError::fatal(format!("column `{}`: `{s}` is not a UUID", col.name))
            })?)
        }
    })
}

#[async_trait]
impl Source for MysqlSource {
    async fn test_connection(&self) -> Result<(), ConnectorError> {
        use sqlx::Connection;
        let mut c = sqlx::mysql::MySqlConnection::connect_with(&self.options)
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
        let names: Vec<(String,)> = sqlx::query_as("SELECT CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() ORDER BY 1")
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
                    .map(|c| {
                        let name = c.type_info().name().to_ascii_lowercase();
                        let base = name.split_whitespace().next().unwrap_or("").to_string();
                        Column::new(c.name(), map_type(&base, &name, None, None), true)
                    })
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
        // A custom query runs in a read-only transaction: a stored function with side
        // effects inside it fails instead of writing to the source.
        let mut conn = self.pool.acquire().await.map_err(|e| from_sqlx(e, &what))?;
        let custom = spec.query.is_some();
        if custom {
            sqlx::query("START TRANSACTION READ ONLY")
                .execute(&mut *conn)
                .await
                .map_err(|e| from_sqlx(e, &what))?;
        }
        let read: Result<(), ConnectorError> = async {
            let mut rows = q.fetch(&mut *conn);
            while let Some(row) = rows.try_next().await.map_err(|e| from_sqlx(e, &what))? {
                for (i, col) in columns.iter().enumerate() {
                    b.push(i, cell(&row, i, col)?)?;
                }
                b.end_row();
            }
            Ok(())
        }
        .await;
        if custom {
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
        }
        read?;
        ReadBatch::keyed(b.finish()?, limit, spec, columns, after)
    }
}
