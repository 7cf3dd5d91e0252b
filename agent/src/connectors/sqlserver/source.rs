use async_trait::async_trait;
use futures::TryStreamExt;
use idra_core::model::Cursor;
use tiberius::{Query, QueryItem, Row};
use tokio::sync::Mutex;

use super::config::{tds_error, Connection, SqlServerConfig};
use super::tsql::{describe_sql, map_type, D};
use super::values::{bind, value_of};
use crate::connectors::sql::{from_clause, read_query, ReadQuery};
use crate::connectors::types::{Column, ColumnType};
use crate::connectors::values::{BatchBuilder, Value};
use crate::connectors::{ConnectionSpec, ConnectorError, ReadBatch, ReadSpec, Source, TableInfo};

pub struct SqlServerSource {
    config: SqlServerConfig,
    conn: Mutex<Option<Connection>>,
}

/// All rows of a query's first result set.
pub(super) async fn rows(
    conn: &mut Connection,
    q: Query<'_>,
    what: &str,
) -> Result<Vec<Row>, ConnectorError> {
    let mut stream = q.query(conn).await.map_err(|e| tds_error(e, what))?;
    let mut out = Vec::new();
    while let Some(item) = stream.try_next().await.map_err(|e| tds_error(e, what))? {
        if let QueryItem::Row(r) = item {
            out.push(r);
        }
    }
    Ok(out)
}

impl SqlServerSource {
    pub fn new(spec: &ConnectionSpec) -> Result<Self, ConnectorError> {
        Ok(Self {
            config: SqlServerConfig::from_spec(spec)?,
            conn: Mutex::new(None),
        })
    }

    async fn with_conn(
        &self,
    ) -> Result<tokio::sync::MappedMutexGuard<'_, Connection>, ConnectorError> {
        let mut slot = self.conn.lock().await;
        if slot.is_none() {
            *slot = Some(self.config.connect().await?);
        }
        Ok(tokio::sync::MutexGuard::map(slot, |c| {
            c.as_mut().expect("connected")
        }))
    }

    async fn describe(&self, select: &str) -> Result<Vec<Column>, ConnectorError> {
        let mut conn = self.with_conn().await?;
        let mut q = Query::new(describe_sql());
        q.bind(select.to_string());
        let described = rows(&mut conn, q, "describing the source").await?;
        described
            .iter()
            .map(|r| {
                let name: &str = r.get("name").ok_or_else(|| {
                    ConnectorError::fatal("a source column has no name; alias it in the query")
                })?;
                let ty: &str = r.get("system_type_name").unwrap_or("nvarchar(max)");
                let nullable: bool = r.get("is_nullable").unwrap_or(true);
                Ok(Column::new(name, map_type(ty), nullable))
            })
            .collect()
    }
}

#[async_trait]
impl Source for SqlServerSource {
    async fn test_connection(&self) -> Result<(), ConnectorError> {
        let mut conn = self.with_conn().await?;
        rows(&mut conn, Query::new("SELECT 1"), "checking the connection")
            .await
            .map(drop)
    }

    async fn discover(&self) -> Result<Vec<TableInfo>, ConnectorError> {
        let list = {
            let mut conn = self.with_conn().await?;
            rows(
                &mut conn,
                Query::new("SELECT TABLE_SCHEMA, TABLE_NAME FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_NAME <> '_idra_fence' ORDER BY TABLE_SCHEMA, TABLE_NAME"),
                "listing tables",
            )
            .await?
        };
        let mut out = Vec::new();
        for r in list {
            let schema: &str = r.get(0).unwrap_or("dbo");
            let table: &str = r.get(1).unwrap_or_default();
            let name = if schema == "dbo" {
                table.to_string()
            } else {
                format!("{schema}.{table}")
            };
            let Ok(quoted) = D.quote(&name) else { continue };
            out.push(TableInfo {
                columns: self.describe(&format!("SELECT * FROM {quoted}")).await?,
                name,
            });
        }
        Ok(out)
    }

    async fn columns(&self, spec: &ReadSpec) -> Result<Vec<Column>, ConnectorError> {
        let columns = self
            .describe(&format!("SELECT * FROM {}", from_clause(D, spec)?))
            .await?;
        spec.cursor_columns(&columns)?;
        Ok(columns)
    }

    async fn read(
        &self,
        spec: &ReadSpec,
        columns: &[Column],
        after: &Cursor,
        limit: usize,
    ) -> Result<ReadBatch, ConnectorError> {
        let names: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
        let first = matches!(after, Cursor::Start);
        let sql = read_query(
            D,
            &ReadQuery {
                select: &D.quote_all(&names)?.join(", "),
                inner: &from_clause(D, spec)?,
                key: &spec.key,
                ts: spec.timestamp.as_deref(),
                first,
                extra: None,
                settle: spec.settle_before.is_some(),
            },
        )?;
        let (key, ts) = spec.cursor_columns(columns)?;
        let mut q = Query::new(sql);
        match (after, ts) {
            (Cursor::Start, _) => {}
            (Cursor::Id { last_id }, None) => bind(&mut q, Value::Int(*last_id), key.ty)?,
            (Cursor::Timestamp { last_ts, last_key }, Some(t)) => {
                let at = match t.ty {
                    ColumnType::TimestampTz => Value::TimestampTz(*last_ts),
                    ColumnType::Date => Value::Date(last_ts.date_naive()),
                    _ => Value::Timestamp(last_ts.naive_utc()),
                };
                bind(&mut q, at.clone(), t.ty)?;
                bind(&mut q, at, t.ty)?;
                let k = match key.ty {
                    ty if ty.is_integer() => Value::Int(last_key.parse().map_err(|_| {
                        ConnectorError::fatal(format!("the stored key `{last_key}` is not an integer; reset the sync's offset"))
                    })?),
                    _ => Value::Text(last_key.clone()),
                };
                bind(&mut q, k, key.ty)?;
            }
            (other, _) => {
                return Err(ConnectorError::fatal(format!(
                    "the offset ({}) does not fit this sync's mode; reset the sync's offset",
                    other.describe()
                )))
            }
        }
        if let (Some(cutoff), Some(t)) = (spec.settle_before, ts) {
            bind(&mut q, Value::TimestampTz(cutoff), t.ty)?;
        }
        q.bind(limit as i64);
        let mut conn = self.with_conn().await?;
        let got = rows(&mut conn, q, &format!("reading {}", spec.describe())).await?;
        let mut b = BatchBuilder::new(columns, got.len());
        for r in got {
            for (i, (cd, col)) in r.into_iter().zip(columns).enumerate() {
                b.push(i, value_of(&cd, col)?)?;
            }
            b.end_row();
        }
        Ok(ReadBatch::keyed(b.finish()?, limit))
    }
}
