use async_trait::async_trait;
use idra_core::model::{ConnectorKind, Cursor, WriteMode};
use sqlx::postgres::PgPool;
use sqlx::{Postgres, Row, Transaction};

use super::binary::{decode_value, encode_rows, COPY_HEADER, COPY_TRAILER};
use super::config::PostgresConfig;
use super::source::{split_table, table_columns};
use crate::connectors::sql::Dialect;
use crate::connectors::sql::{
    check_existing_columns, commit_record, fenced_off, load_table, FENCE_TABLE,
};
use crate::connectors::types::{Column, ColumnType};
use crate::connectors::values::Value;
use crate::connectors::{
    from_sqlx, Commit, ConnectionSpec, ConnectorError, Destination, TableInfo, WriteRequest,
};

const D: Dialect = Dialect::Postgres;
/// Commit records: which cursor the destination's rows correspond to, and the fencing
/// token of the last writer. Written in the same transaction as the rows.
const COPY_CHUNK: usize = 1 << 20;
const COPY_ROWS_PER_CHUNK: usize = 8192;

pub struct PostgresDestination {
    pool: PgPool,
    display: String,
    /// Tables whose column types equal Idra's mapping exactly: COPY goes straight in.
    /// Others are loaded through a staging table so Postgres casts on INSERT.
    exact: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl PostgresDestination {
    pub fn new(spec: &ConnectionSpec) -> Result<Self, ConnectorError> {
        let config = PostgresConfig::from_spec(spec)?;
        Ok(Self {
            pool: config.pool(2),
            display: config.display,
            exact: Default::default(),
        })
    }

    fn is_exact(&self, table: &str) -> bool {
        self.exact
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(table)
    }

    fn err(&self, what: &str) -> impl Fn(sqlx::Error) -> ConnectorError + '_ {
        let what = format!("{what} in {}", self.display);
        move |e| from_sqlx(e, &what)
    }

    async fn ensure_fence_table(&self) -> Result<(), ConnectorError> {
        self.create_if_missing(&format!(
            "CREATE TABLE IF NOT EXISTS {FENCE_TABLE} (sync_id text NOT NULL, table_name text NOT NULL, fence bigint NOT NULL, \"cursor\" text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (sync_id, table_name))"
        ), "creating the _idra_fence table")
        .await
    }

    /// `CREATE TABLE IF NOT EXISTS` is not atomic in Postgres: two sessions creating the same
    /// table at once can fail with a duplicate in the catalog. Losing that race is fine.
    async fn create_if_missing(&self, sql: &str, what: &str) -> Result<(), ConnectorError> {
        match sqlx::query(sql).execute(&self.pool).await {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(db))
                if matches!(db.code().as_deref(), Some("23505") | Some("42P07")) =>
            {
                Ok(())
            }
            Err(e) => Err(self.err(what)(e)),
        }
    }
}

/// Idra type → Postgres column type when Idra creates a table.
pub(super) fn pg_type(ty: ColumnType) -> String {
    match ty {
        ColumnType::Int16 => "smallint".into(),
        ColumnType::Int32 => "integer".into(),
        ColumnType::Int64 => "bigint".into(),
        ColumnType::Float32 => "real".into(),
        ColumnType::Float64 => "double precision".into(),
        ColumnType::Bool => "boolean".into(),
        ColumnType::Text => "text".into(),
        ColumnType::Bytes => "bytea".into(),
        ColumnType::Date => "date".into(),
        ColumnType::Time => "time".into(),
        ColumnType::Timestamp => "timestamp".into(),
        ColumnType::TimestampTz => "timestamptz".into(),
        ColumnType::Decimal { precision, scale } => format!("numeric({precision},{scale})"),
        ColumnType::Json => "jsonb".into(),
        ColumnType::Uuid => "uuid".into(),
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
        defs.push(format!("{} {}{not_null}", D.quote(&c.name)?, pg_type(c.ty)));
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

/// Tags the writing session so a newer holder can find and end it (see `claim`).
fn session_tag(sync_id: &str, fence: i64) -> String {
    let id: String = sync_id
        .chars()
        .take(40)
        .map(|c| if c == '/' { '_' } else { c })
        .collect();
    format!("idra/{id}/{fence}")
}

fn session_prefix(sync_id: &str) -> String {
    let tag = session_tag(sync_id, 0);
    tag[..tag.len() - 1].to_string()
}

async fn check_fence(
    tx: &mut Transaction<'_, Postgres>,
    commit: &Commit,
) -> Result<(), ConnectorError> {
    // Every record of the sync (one per destination table), locked until commit.
    let fences: Vec<i64> = sqlx::query_scalar(&format!(
        "SELECT fence FROM {FENCE_TABLE} WHERE sync_id = $1 FOR UPDATE"
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

async fn record_commit(
    tx: &mut Transaction<'_, Postgres>,
    commit: &Commit,
    table: &str,
) -> Result<(), ConnectorError> {
    let cursor = serde_json::to_string(&commit.cursor).expect("cursors serialise");
    sqlx::query(&format!(
        "INSERT INTO {FENCE_TABLE} (sync_id, table_name, fence, \"cursor\", updated_at) VALUES ($1, $2, $3, $4, now()) \
         ON CONFLICT (sync_id, table_name) DO UPDATE SET fence = EXCLUDED.fence, \"cursor\" = EXCLUDED.\"cursor\", updated_at = now()"
    ))
    .bind(&commit.sync_id)
    .bind(table)
    .bind(commit.fence)
    .bind(cursor)
    .execute(&mut **tx)
    .await
    .map_err(|e| from_sqlx(e, "recording the commit"))?;
    Ok(())
}

async fn copy_in(
    tx: &mut Transaction<'_, Postgres>,
    target: &str,
    req: &WriteRequest<'_>,
    columns: &[Column],
) -> Result<(), ConnectorError> {
    let names: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
    let sql = format!(
        "COPY {target} ({}) FROM STDIN (FORMAT binary)",
        D.quote_all(&names)?.join(", ")
    );
    let mut copy = tx
        .copy_in_raw(&sql)
        .await
        .map_err(|e| from_sqlx(e, &format!("starting COPY into {}", req.table)))?;
    // Encode and send in chunks, so Postgres ingests one chunk while the next is encoded.
    let total = req.rows.num_rows();
    let mut buf = Vec::with_capacity(COPY_CHUNK);
    buf.extend_from_slice(COPY_HEADER);
    let mut start = 0;
    loop {
        let end = (start + COPY_ROWS_PER_CHUNK).min(total);
        encode_rows(req.rows, columns, start..end, &mut buf)?;
        if end == total {
            buf.extend_from_slice(COPY_TRAILER);
        }
        copy.send(buf.as_slice())
            .await
            .map_err(|e| from_sqlx(e, &format!("COPY into {}", req.table)))?;
        buf.clear();
        if end == total {
            break;
        }
        start = end;
    }
    copy.finish()
        .await
        .map_err(|e| from_sqlx(e, &format!("COPY into {}", req.table)))?;
    Ok(())
}

#[async_trait]
impl Destination for PostgresDestination {
    fn keeps_commit_records(&self) -> bool {
        true
    }

    fn kind(&self) -> ConnectorKind {
        ConnectorKind::Postgres
    }

    async fn test_connection(&self) -> Result<(), ConnectorError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(self.err("connecting"))?;
        Ok(())
    }

    async fn discover(&self) -> Result<Vec<TableInfo>, ConnectorError> {
        let tables: Vec<(String,)> = sqlx::query_as(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables \
             WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(self.err("listing tables"))?;
        let mut out = Vec::new();
        for (name,) in tables {
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
        defer_keys: bool,
    ) -> Result<bool, ConnectorError> {
        self.ensure_fence_table().await?;
        let existing = table_columns(&self.pool, table, &self.display).await?;
        let mut exact = self.exact.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if existing.is_empty() {
            let keys = if defer_keys { &[][..] } else { keys };
            self.create_if_missing(
                &create_table_sql(table, columns, keys)?,
                &format!("creating table {table}"),
            )
            .await?;
            exact.insert(table.to_string());
            *self.exact.lock().unwrap_or_else(|p| p.into_inner()) = exact;
            return Ok(true);
        }
        // json and jsonb both map to Json; only jsonb takes Idra's binary form, so a json
        // column never counts as exact.
        let json_columns: Vec<(String,)> = {
            let (schema, name) = split_table(table);
            sqlx::query_as("SELECT column_name::text FROM information_schema.columns WHERE table_schema = COALESCE($1, current_schema()) AND table_name = $2 AND data_type = 'json'")
                .bind(schema)
                .bind(name)
                .fetch_all(&self.pool)
                .await
                .map_err(self.err("reading column types"))?
        };
        let same = columns.len() == existing.len()
            && json_columns.is_empty()
            && columns
                .iter()
                .all(|c| existing.iter().any(|e| e.name == c.name && e.ty == c.ty));
        if same {
            exact.insert(table.to_string());
        } else {
            exact.remove(table);
        }
        *self.exact.lock().unwrap_or_else(|p| p.into_inner()) = exact;
        check_existing_columns(table, columns, &existing)?;
        Ok(false)
    }

    async fn write(&self, req: WriteRequest<'_>) -> Result<(), ConnectorError> {
        let columns = crate::connectors::types::columns_of(&req.rows.schema())?;
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(self.err("starting a transaction"))?;
        sqlx::query("SELECT set_config('application_name', $1, true)")
            .bind(session_tag(&req.commit.sync_id, req.commit.fence))
            .execute(&mut *tx)
            .await
            .map_err(self.err("tagging the session"))?;
        check_fence(&mut tx, req.commit).await?;
        if req.rows.num_rows() > 0 {
            let target = D.quote(req.table)?;
            match req.mode {
                WriteMode::Insert if self.is_exact(req.table) => {
                    copy_in(&mut tx, &target, &req, &columns).await?
                }
                mode => {
                    let stage = "_idra_stage";
                    sqlx::query(&format!(
                        "{} ON COMMIT DROP",
                        create_table_sql(stage, &columns, &[])?
                            .replace("CREATE TABLE IF NOT EXISTS", "CREATE TEMP TABLE")
                    ))
                    .execute(&mut *tx)
                    .await
                    .map_err(self.err("creating the staging table"))?;
                    copy_in(&mut tx, stage, &req, &columns).await?;
                    let names: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
                    let cols = D.quote_all(&names)?.join(", ");
                    let keys = D.quote_all(req.keys)?.join(", ");
                    let updates: Vec<String> = names
                        .iter()
                        .filter(|n| !req.keys.contains(n))
                        .map(|n| D.quote(n).map(|q| format!("{q} = EXCLUDED.{q}")))
                        .collect::<Result<_, _>>()?;
                    let action = if updates.is_empty() {
                        "DO NOTHING".to_string()
                    } else {
                        format!("DO UPDATE SET {}", updates.join(", "))
                    };
                    let conflict = match mode {
                        WriteMode::Upsert => format!(" ON CONFLICT ({keys}) {action}"),
                        WriteMode::Insert => String::new(),
                    };
                    sqlx::query(&format!(
                        "INSERT INTO {target} ({cols}) SELECT {cols} FROM {stage}{conflict}"
                    ))
                    .execute(&mut *tx)
                    .await
                    .map_err(self.err(&format!("upserting into {}", req.table)))?;
                }
            }
        }
        record_commit(&mut tx, req.commit, req.table).await?;
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
        self.ensure_fence_table().await?;
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(self.err("starting a transaction"))?;
        // A paused agent may still have a write transaction open under an older token:
        // end its session, so that transaction can never commit.
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE pid <> pg_backend_pid() AND starts_with(application_name, $1) \
             AND split_part(application_name, '/', 3) ~ '^[0-9]+$' AND split_part(application_name, '/', 3)::bigint < $2",
        )
        .bind(session_prefix(sync_id))
        .bind(fence)
        .execute(&mut *tx)
        .await
        .map_err(self.err("ending an older holder's session"))?;
        let fences: Vec<i64> = sqlx::query_scalar(&format!(
            "SELECT fence FROM {FENCE_TABLE} WHERE sync_id = $1 FOR UPDATE"
        ))
        .bind(sync_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(self.err("checking the fencing token"))?;
        if let Some(stored) = fences.into_iter().max().filter(|s| *s > fence) {
            return Err(fenced_off(sync_id, stored, fence));
        }
        sqlx::query(&format!(
            "INSERT INTO {FENCE_TABLE} (sync_id, table_name, fence, \"cursor\", updated_at) VALUES ($1, $2, $3, $4, now()) \
             ON CONFLICT (sync_id, table_name) DO UPDATE SET fence = GREATEST({FENCE_TABLE}.fence, EXCLUDED.fence)"
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

    async fn finish_load(&self, table: &str, keys: &[String]) -> Result<(), ConnectorError> {
        if keys.is_empty() {
            return Ok(());
        }
        let has_primary: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_index WHERE indrelid = to_regclass($1) AND indisprimary)",
        )
        .bind(D.quote(table)?)
        .fetch_one(&self.pool)
        .await
        .map_err(self.err(&format!("looking for the primary key of {table}")))?;
        if !has_primary {
            // One sorted build after the load is much cheaper than maintaining the index
            // row by row during it.
            sqlx::query(&format!(
                "ALTER TABLE {} ADD PRIMARY KEY ({})",
                D.quote(table)?,
                D.quote_all(keys)?.join(", ")
            ))
            .execute(&self.pool)
            .await
            .map_err(self.err(&format!("adding the primary key of {table}")))?;
        }
        Ok(())
    }

    async fn committed(
        &self,
        sync_id: &str,
        table: &str,
    ) -> Result<Option<Commit>, ConnectorError> {
        let exists: Option<String> =
            sqlx::query_scalar(&format!("SELECT to_regclass('{FENCE_TABLE}')::text"))
                .fetch_one(&self.pool)
                .await
                .map_err(self.err("looking for _idra_fence"))?;
        if exists.is_none() {
            return Ok(None);
        }
        let row = sqlx::query(&format!(
            "SELECT fence, \"cursor\" FROM {FENCE_TABLE} WHERE sync_id = $1 AND table_name = $2"
        ))
        .bind(sync_id)
        .bind(table)
        .fetch_optional(&self.pool)
        .await
        .map_err(self.err("reading the commit record"))?;
        row.map(|r| {
            let cursor: String = r.get(1);
            commit_record(sync_id, r.get(0), &cursor)
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
            format!("{k}::bigint")
        } else {
            format!("{k}::text")
        };
        let sql = match timestamp {
            None => format!(
                "SELECT {key_sel} FROM {} ORDER BY {k} DESC LIMIT 1",
                D.quote(table)?
            ),
            Some(ts) => {
                let t = D.quote(ts)?;
                format!("SELECT {key_sel}, {t}::timestamptz FROM {} WHERE {t} IS NOT NULL ORDER BY {t} DESC, {k} DESC LIMIT 1", D.quote(table)?)
            }
        };
        let row = sqlx::query(&sql)
            .fetch_optional(&self.pool)
            .await
            .map_err(self.err(&format!("reading the last position of {table}")))?;
        let Some(row) = row else {
            return Ok(Cursor::Start);
        };
        let key_value = if key_is_integer {
            Value::Int(row.get::<i64, _>(0))
        } else {
            Value::Text(row.get::<String, _>(0))
        };
        Ok(match (timestamp, key_value) {
            (None, Value::Int(last_id)) => Cursor::Id { last_id },
            (None, _) => {
                return Err(ConnectorError::fatal(format!(
                    "key column `{key}` must be an integer for the last-destination-id mode"
                )))
            }
            (Some(_), key) => {
                let ts_col = Column::new("ts", ColumnType::TimestampTz, true);
                let raw = sqlx::Row::try_get_raw(&row, 1)
                    .map_err(|e| ConnectorError::fatal(e.to_string()))?;
                let bytes = if sqlx::ValueRef::is_null(&raw) {
                    None
                } else {
                    raw.as_bytes().ok()
                };
                let Value::TimestampTz(last_ts) = decode_value(&ts_col, bytes)? else {
                    return Ok(Cursor::Start);
                };
                let last_key = match key {
                    Value::Int(i) => i.to_string(),
                    Value::Text(s) => s,
                    _ => String::new(),
                };
                Cursor::Timestamp { last_ts, last_key }
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
        let (_, bare) = split_table(table);
        self.ensure_fence_table().await?;
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(self.err("starting a transaction"))?;
        check_fence(&mut tx, commit).await?;
        sqlx::query(&format!("DROP TABLE IF EXISTS {}", D.quote(table)?))
            .execute(&mut *tx)
            .await
            .map_err(self.err(&format!("replacing {table}")))?;
        sqlx::query(&format!(
            "ALTER TABLE {} RENAME TO {}",
            D.quote(load_table)?,
            D.quote(bare)?
        ))
        .execute(&mut *tx)
        .await
        .map_err(self.err(&format!("replacing {table}")))?;
        tx.commit()
            .await
            .map_err(self.err("committing the replacement"))?;
        Ok(())
    }
}
