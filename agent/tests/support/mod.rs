//! Helpers for tests against the real Postgres, MariaDB and SQLite files.
#![allow(dead_code)]

pub mod compliance;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use idra_agent::connectors::types::ColumnType;
use idra_agent::connectors::values::{format_decimal, format_uuid, value_at, Value};
use idra_agent::connectors::{self, ConnectionSpec, ReadSpec};
use idra_agent::engine::{FileOffsets, Runner, SyncJob};
use idra_core::model::{ConnectorKind, Cursor, Endpoint, SyncConfig, SyncMode, WriteMode};
use sqlx::Connection;

pub fn pg_url() -> String {
    std::env::var("IDRA_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub fn mysql_url() -> String {
    std::env::var("IDRA_TEST_MYSQL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())
}

/// `IDRA_SQLITE_DIR` for an agent a test starts: the directory `Db::sqlite()` files are in.
pub fn sqlite_dir_env() -> (&'static str, std::path::PathBuf) {
    ("IDRA_SQLITE_DIR", std::env::temp_dir())
}

pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

/// One test database: Postgres, MariaDB, or a SQLite file.
#[derive(Clone)]
pub struct Db {
    pub kind: ConnectorKind,
    pub url: String,
    _dir: Option<Arc<tempfile::TempDir>>,
}

impl Db {
    pub fn pg() -> Self {
        Self {
            kind: ConnectorKind::Postgres,
            url: pg_url(),
            _dir: None,
        }
    }
    pub fn mysql() -> Self {
        Self {
            kind: ConnectorKind::Mysql,
            url: mysql_url(),
            _dir: None,
        }
    }
    pub fn sqlite() -> Self {
        // The files live in temporary directories: this process keeps SQLite files there,
        // and so do the agents tests start (`sqlite_dir_env`).
        idra_agent::connectors::sqlite::set_dir(&std::env::temp_dir()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        Self {
            kind: ConnectorKind::Sqlite,
            url,
            _dir: Some(Arc::new(dir)),
        }
    }
    pub fn all() -> Vec<Db> {
        vec![Self::pg(), Self::mysql(), Self::sqlite()]
    }
    pub fn label(&self) -> &'static str {
        match self.kind {
            ConnectorKind::Postgres => "pg",
            ConnectorKind::Mysql => "my",
            _ => "lite",
        }
    }

    pub fn spec(&self) -> ConnectionSpec {
        ConnectionSpec {
            kind: self.kind,
            connection_string: self.url.clone(),
            options: BTreeMap::new(),
            secrets: BTreeMap::new(),
        }
    }

    pub async fn exec(&self, sql: &str) {
        match self.kind {
            ConnectorKind::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.url).await.unwrap();
                sqlx::raw_sql(sql)
                    .execute(&mut c)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
            }
            ConnectorKind::Mysql => {
                let mut c = sqlx::MySqlConnection::connect(&self.url).await.unwrap();
                sqlx::raw_sql(sql)
                    .execute(&mut c)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
            }
            _ => {
                let opts: sqlx::sqlite::SqliteConnectOptions = self
                    .url
                    .parse::<sqlx::sqlite::SqliteConnectOptions>()
                    .unwrap()
                    .create_if_missing(true);
                let mut c = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
                sqlx::raw_sql(sql)
                    .execute(&mut c)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
            }
        }
    }

    pub async fn scalar(&self, sql: &str) -> i64 {
        match self.kind {
            ConnectorKind::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.url).await.unwrap();
                sqlx::query_scalar::<_, i64>(sql)
                    .fetch_one(&mut c)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"))
            }
            ConnectorKind::Mysql => {
                let mut c = sqlx::MySqlConnection::connect(&self.url).await.unwrap();
                sqlx::query_scalar::<_, i64>(sql)
                    .fetch_one(&mut c)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"))
            }
            _ => {
                let opts = self
                    .url
                    .parse::<sqlx::sqlite::SqliteConnectOptions>()
                    .unwrap()
                    .create_if_missing(true);
                let mut c = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
                sqlx::query_scalar::<_, i64>(sql)
                    .fetch_one(&mut c)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"))
            }
        }
    }

    pub async fn count(&self, table: &str) -> i64 {
        self.scalar(&format!(
            "SELECT CAST(COUNT(*) AS {}) FROM {table}",
            self.bigint()
        ))
        .await
    }

    /// Rows whose key appears more than once.
    pub async fn duplicates(&self, table: &str) -> i64 {
        self.duplicates_by(table, "id").await
    }

    /// Keys of `table` present more than once.
    pub async fn duplicates_by(&self, table: &str, key: &str) -> i64 {
        self.scalar(&format!("SELECT CAST(COUNT(*) AS {}) FROM (SELECT {key} FROM {table} GROUP BY {key} HAVING COUNT(*) > 1) d", self.bigint())).await
    }

    pub fn bigint(&self) -> &'static str {
        match self.kind {
            ConnectorKind::Mysql => "SIGNED",
            ConnectorKind::Sqlite => "INTEGER",
            _ => "BIGINT",
        }
    }

    pub async fn drop_table(&self, table: &str) {
        self.exec(&format!("DROP TABLE IF EXISTS {table}")).await;
    }

    /// The whole table read through Idra's own source connector, normalised, in key order.
    pub async fn rows(&self, table: &str) -> Vec<Vec<String>> {
        let source = connectors::open_source(&self.spec()).unwrap();
        let spec = ReadSpec {
            table: Some(table.into()),
            query: None,
            key: "id".into(),
            timestamp: None,
            settle_before: None,
            snapshot: false,
        };
        let columns = source.columns(&spec).await.unwrap();
        let batch = source
            .read(&spec, &columns, &Cursor::Start, 1_000_000)
            .await
            .unwrap()
            .rows;
        (0..batch.num_rows())
            .map(|r| {
                columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| normalise(value_at(batch.column(i), c.ty, r), c.ty))
                    .collect()
            })
            .collect()
    }

    pub async fn column_types(&self, table: &str) -> Vec<(String, ColumnType)> {
        let source = connectors::open_source(&self.spec()).unwrap();
        let spec = ReadSpec {
            table: Some(table.into()),
            query: None,
            key: "id".into(),
            timestamp: None,
            settle_before: None,
            snapshot: false,
        };
        source
            .columns(&spec)
            .await
            .unwrap()
            .into_iter()
            .map(|c| (c.name, c.ty))
            .collect()
    }
}

/// A value in a form equal across databases: instants as UTC text, decimals at their
/// scale, JSON re-serialised, CHAR padding dropped.
pub fn normalise(v: Value, ty: ColumnType) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => format!("{f:.6}"),
        Value::Bool(b) => b.to_string(),
        Value::Text(s) => match serde_json::from_str::<serde_json::Value>(&s) {
            Ok(j) if s.trim_start().starts_with(['{', '[']) => j.to_string(),
            _ => s.trim_end().to_string(),
        },
        Value::Bytes(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
        Value::Date(d) => d.to_string(),
        Value::Time(t) => t.format("%H:%M:%S%.6f").to_string(),
        Value::Timestamp(t) => t.format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
        Value::TimestampTz(t) => t.naive_utc().format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
        Value::Decimal(d) => match ty {
            ColumnType::Decimal { scale, .. } => format_decimal(d, scale),
            _ => d.to_string(),
        },
        Value::Uuid(u) => format_uuid(&u),
    }
}

pub struct SyncBuilder {
    pub sync: SyncConfig,
}

pub fn sync(
    name: &str,
    src_table: &str,
    dst_table: &str,
    mode: SyncMode,
    write_mode: WriteMode,
) -> SyncConfig {
    SyncConfig {
        id: unique(name),
        name: name.into(),
        source: Endpoint {
            datasource_id: "src".into(),
            table: src_table.into(),
            query: None,
        },
        destination: Endpoint {
            datasource_id: "dst".into(),
            table: dst_table.into(),
            query: None,
        },
        mode,
        write_mode,
        key_columns: vec!["id".into()],
        timestamp_column: mode.needs_timestamp().then(|| "ts".into()),
        batch_size: 10,
        poll_interval_secs: 1,
        settle_secs: 0,
        enabled: true,
        created_at: Utc::now(),
        updated_at: Utc::now(),
    }
}

pub struct Harness {
    pub runner: Runner,
    _state: tempfile::TempDir,
}

impl Harness {
    pub fn new(sync: SyncConfig, src: &Db, dst: &Db) -> Self {
        let state = tempfile::tempdir().unwrap();
        let offsets = Arc::new(FileOffsets::open(state.path()).unwrap());
        let (_tx, rx) = tokio::sync::watch::channel(false);
        std::mem::forget(_tx);
        let job = SyncJob {
            sync,
            source: src.spec(),
            destination: dst.spec(),
            fence: 0,
            agent: None,
        };
        Self {
            runner: Runner::new(job, offsets, rx),
            _state: state,
        }
    }

    /// Runs until the destination holds `expected` rows (runs can end early while another
    /// transaction on the Postgres server is still open: see the source's settle rule).
    pub async fn sync_until(&mut self, dst: &Db, table: &str, expected: i64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            self.runner
                .run_once()
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", self.runner.job.sync.name));
            let n = dst.count(table).await;
            if n == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}: destination has {n} rows, expected {expected}",
                self.runner.job.sync.name
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A source table `t(id, ts, name, amount, qty)` in the dialect of `db`.
pub async fn create_source(db: &Db, table: &str) {
    db.drop_table(table).await;
    let ddl = match db.kind {
        ConnectorKind::Postgres => format!("CREATE TABLE {table} (id bigint PRIMARY KEY, ts timestamp NOT NULL, name text, amount numeric(12,2), qty integer)"),
        ConnectorKind::Mysql => format!("CREATE TABLE {table} (id BIGINT PRIMARY KEY, ts DATETIME(6) NOT NULL, name LONGTEXT, amount DECIMAL(12,2), qty INT)"),
        _ => format!("CREATE TABLE {table} (id INTEGER PRIMARY KEY, ts TIMESTAMP NOT NULL, name TEXT, amount DECIMAL(12,2), qty INT)"),
    };
    db.exec(&ddl).await;
}

/// Inserts ids `from..=to`; `ts_of(id)` gives each row's timestamp as `YYYY-MM-DD HH:MM:SS`.
pub async fn insert_rows(db: &Db, table: &str, from: i64, to: i64, ts_of: impl Fn(i64) -> String) {
    let values: Vec<String> = (from..=to)
        .map(|id| {
            format!(
                "({id}, '{}', 'name {id}', {}.{:02}, {})",
                ts_of(id),
                id * 3,
                id % 100,
                id % 7
            )
        })
        .collect();
    for chunk in values.chunks(500) {
        db.exec(&format!(
            "INSERT INTO {table} (id, ts, name, amount, qty) VALUES {}",
            chunk.join(", ")
        ))
        .await;
    }
}

pub fn minute(id: i64) -> String {
    format!("2024-01-01 00:{:02}:00", id.min(59))
}

/// The etcd of `IDRA_TEST_ETCD`. Without it the test prints a visible `skipped:` line and
/// returns None, or fails when `IDRA_REQUIRE_ETCD=1` (as `make test` sets).
pub fn etcd_url(test: &str) -> Option<String> {
    use std::io::Write;
    match std::env::var("IDRA_TEST_ETCD") {
        Ok(url) => Some(url),
        Err(_) if std::env::var("IDRA_REQUIRE_ETCD").as_deref() == Ok("1") => {
            panic!("IDRA_REQUIRE_ETCD=1 but IDRA_TEST_ETCD is not set")
        }
        Err(_) => {
            let _ = writeln!(
                std::io::stderr().lock(),
                "skipped: `{test}` on etcd: IDRA_TEST_ETCD is not set (`make test` starts etcd)"
            );
            None
        }
    }
}

/// Saves `db` in `store` as the data source `id` (its URL, no secrets).
pub async fn put_datasource(
    store: &dyn idra_core::store::Store,
    keys: &idra_core::store::Keys,
    cipher: &idra_core::secret::Cipher,
    id: &str,
    db: &Db,
) {
    let input = idra_core::model::DataSourceInput {
        name: id.into(),
        kind: db.kind,
        connection_string: db.url.clone(),
        options: BTreeMap::new(),
        secrets: BTreeMap::new(),
    }
    .normalize()
    .unwrap();
    let record =
        idra_core::secret::DataSourceRecord::from_input(cipher, id, input, None, Utc::now())
            .unwrap();
    store
        .put(
            &keys.datasource(id),
            idra_core::store::encode(&record),
            None,
        )
        .await
        .unwrap();
}
