use async_trait::async_trait;
use futures::TryStreamExt;
use idra_core::model::Cursor;
use tiberius::{Query, QueryItem, Row};
use tokio::sync::Mutex;

use super::config::{tds_error, Connection, SqlServerConfig};
use super::tsql::{describe_sql, map_type, D};
use super::values::{bind, value_of};
use crate::connectors::sql::{cursor_params, from_clause, read_query, time_param, ReadQuery};
use crate::connectors::types::Column;
use crate::connectors::values::BatchBuilder;
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
                literals: None,
            },
        )?;
        let (key, ts) = spec.cursor_columns(columns)?;
        let mut q = Query::new(sql);
        for p in cursor_params(after, key, ts)? {
            bind(&mut q, p.value.into(), p.ty)?;
        }
        if let (Some(cutoff), Some(t)) = (spec.settle_before, ts) {
            bind(&mut q, time_param(cutoff, t.ty).into(), t.ty)?;
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
        ReadBatch::keyed(b.finish()?, limit, spec, columns, after)
    }
}
