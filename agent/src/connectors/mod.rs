//! Connectors: one folder per kind with the same files (`config.rs`, `source.rs`,
//! `destination.rs`, `tests.rs`, `TYPES.md`), the shared contract, and the registry.

pub mod contract;
mod error;
pub mod http;
pub mod json;
pub mod kafka;
pub mod mongo;
pub mod mysql;
pub mod options;
pub mod postgres;
pub mod rabbitmq;
pub mod s3;
pub mod sql;
pub mod sqlite;
pub mod sqlserver;
pub mod types;
pub mod values;

use std::collections::BTreeMap;

use idra_core::model::{ConnectorKind, Cursor};
use idra_core::secret::Secret;

pub use contract::{Commit, Destination, ReadBatch, ReadSpec, Source, TableInfo, WriteRequest};
pub use error::{from_sqlx, ConnectorError, ErrorKind};
use types::{Column, ColumnType};
use values::Value;

/// How to reach a system: what a data source holds, with its secrets opened.
#[derive(Debug, Clone)]
pub struct ConnectionSpec {
    pub kind: ConnectorKind,
    pub connection_string: String,
    pub options: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, Secret>,
}

impl ConnectionSpec {
    pub fn secret(&self, name: &str) -> Option<&str> {
        self.secrets.get(name).map(Secret::expose)
    }
}

/// One entry of the registry: what the UI lists and what the engine can open.
pub struct ConnectorEntry {
    pub kind: ConnectorKind,
    pub source: bool,
    pub destination: bool,
    /// Data source fields that are secrets (encrypted at rest, never sent to a client).
    pub secret_fields: &'static [&'static str],
}

/// Every connector this build has, in the order the UI lists them.
pub fn registry() -> Vec<ConnectorEntry> {
    vec![
        ConnectorEntry {
            kind: ConnectorKind::Postgres,
            source: true,
            destination: true,
            secret_fields: postgres::SECRET_FIELDS,
        },
        ConnectorEntry {
            kind: ConnectorKind::Mysql,
            source: true,
            destination: true,
            secret_fields: mysql::SECRET_FIELDS,
        },
        ConnectorEntry {
            kind: ConnectorKind::Sqlite,
            source: true,
            destination: true,
            secret_fields: sqlite::SECRET_FIELDS,
        },
        ConnectorEntry {
            kind: ConnectorKind::S3,
            source: true,
            destination: true,
            secret_fields: s3::SECRET_FIELDS,
        },
        ConnectorEntry {
            kind: ConnectorKind::Http,
            source: true,
            destination: true,
            secret_fields: http::SECRET_FIELDS,
        },
        ConnectorEntry {
            kind: ConnectorKind::SqlServer,
            source: true,
            destination: true,
            secret_fields: sqlserver::SECRET_FIELDS,
        },
        ConnectorEntry {
            kind: ConnectorKind::MongoDb,
            source: true,
            destination: true,
            secret_fields: mongo::SECRET_FIELDS,
        },
        ConnectorEntry {
            kind: ConnectorKind::Kafka,
            source: true,
            destination: true,
            secret_fields: kafka::SECRET_FIELDS,
        },
        ConnectorEntry {
            kind: ConnectorKind::RabbitMq,
            source: true,
            destination: true,
            secret_fields: rabbitmq::SECRET_FIELDS,
        },
    ]
}

/// What a destination that delivers messages (an API, a queue, a topic, objects) answers
/// for the operations only a table can do.
pub fn table_only(kind: ConnectorKind, what: &str) -> ConnectorError {
    ConnectorError::fatal(format!(
        "a {} destination cannot {what}; use a database destination for this mode, or an incremental mode (by id, by timestamp) or full refresh append",
        kind.label()
    ))
}

pub fn open_source(spec: &ConnectionSpec) -> Result<Box<dyn Source>, ConnectorError> {
    match spec.kind {
        ConnectorKind::Postgres => Ok(Box::new(postgres::PostgresSource::new(spec)?)),
        ConnectorKind::Mysql => Ok(Box::new(mysql::MysqlSource::new(spec)?)),
        ConnectorKind::Sqlite => Ok(Box::new(sqlite::SqliteSource::new(spec)?)),
        ConnectorKind::Http => Ok(Box::new(http::HttpSource::new(spec)?)),
        ConnectorKind::RabbitMq => Ok(Box::new(rabbitmq::RabbitSource::new(spec)?)),
        ConnectorKind::Kafka => Ok(Box::new(kafka::KafkaSource::new(spec)?)),
        ConnectorKind::MongoDb => Ok(Box::new(mongo::MongoSource::new(spec)?)),
        ConnectorKind::SqlServer => Ok(Box::new(sqlserver::SqlServerSource::new(spec)?)),
        ConnectorKind::S3 => Ok(Box::new(s3::S3Source::new(spec)?)),
    }
}

pub fn open_destination(spec: &ConnectionSpec) -> Result<Box<dyn Destination>, ConnectorError> {
    match spec.kind {
        ConnectorKind::Postgres => Ok(Box::new(postgres::PostgresDestination::new(spec)?)),
        ConnectorKind::Mysql => Ok(Box::new(mysql::MysqlDestination::new(spec)?)),
        ConnectorKind::Sqlite => Ok(Box::new(sqlite::SqliteDestination::new(spec)?)),
        ConnectorKind::Http => Ok(Box::new(http::HttpDestination::new(spec)?)),
        ConnectorKind::RabbitMq => Ok(Box::new(rabbitmq::RabbitDestination::new(spec)?)),
        ConnectorKind::Kafka => Ok(Box::new(kafka::KafkaDestination::new(spec)?)),
        ConnectorKind::MongoDb => Ok(Box::new(mongo::MongoDestination::new(spec)?)),
        ConnectorKind::SqlServer => Ok(Box::new(sqlserver::SqlServerDestination::new(spec)?)),
        ConnectorKind::S3 => Ok(Box::new(s3::S3Destination::new(spec)?)),
    }
}

/// Whether a table source's timestamp cursor must first check the column for NULLs: a
/// cursor comparison never matches NULL, so such rows past the first batch would never be
/// copied. Only nullable columns of tables (a custom query's columns are not checked).
pub fn may_hold_null_timestamps<'a>(
    spec: &'a ReadSpec,
    columns: &[Column],
) -> Option<(&'a str, &'a str)> {
    let (Some(table), None, Some(ts)) = (&spec.table, &spec.query, &spec.timestamp) else {
        return None;
    };
    columns
        .iter()
        .any(|c| &c.name == ts && c.nullable)
        .then_some((table.as_str(), ts.as_str()))
}

/// The error for a timestamp column that is NULL in some rows.
pub fn null_timestamps(ts: &str) -> ConnectorError {
    ConnectorError::fatal(format!(
        "timestamp column `{ts}` is NULL in some rows, and a timestamp cursor never copies those (NULL matches no comparison); set it on every row (e.g. UPDATE … SET {ts} = <creation time> WHERE {ts} IS NULL) and declare it NOT NULL, or read through a custom query with COALESCE({ts}, <a fixed time>) AS {ts}"
    ))
}

/// The cursor just after the row `row` of `batch`: the key alone, or (timestamp, key).
pub fn cursor_at(
    batch: &arrow_array::RecordBatch,
    columns: &[Column],
    row: usize,
    key: &str,
    timestamp: Option<&str>,
) -> Result<Cursor, ConnectorError> {
    let (ki, kc) = types::find(columns, key, "key")?;
    let key_value = values::value_at(batch.column(ki), kc.ty, row);
    match timestamp {
        None => match key_value {
            Value::Int(last_id) => Ok(Cursor::Id { last_id }),
            other => Err(ConnectorError::fatal(format!("key column `{key}` must be an integer for this mode (found {other:?}); use a timestamp mode or full refresh"))),
        },
        Some(ts) => {
            let (ti, tc) = types::find(columns, ts, "timestamp")?;
            let last_ts = match values::value_at(batch.column(ti), tc.ty, row) {
                Value::TimestampTz(t) => t,
                Value::Timestamp(t) => t.and_utc(),
                Value::Date(d) => d.and_hms_opt(0, 0, 0).expect("midnight").and_utc(),
                Value::Null => return Err(ConnectorError::fatal(format!("timestamp column `{ts}` is NULL in a row; a timestamp cursor needs it set on every row (filter NULLs in a custom query)"))),
                other => return Err(ConnectorError::fatal(format!("timestamp column `{ts}` must be a date or timestamp (found {other:?})"))),
            };
            let last_key = match key_value {
                Value::Int(i) => i.to_string(),
                Value::Text(s) => s,
                Value::Uuid(u) => values::format_uuid(&u),
                other => return Err(ConnectorError::fatal(format!("key column `{key}` must be an integer or text for a timestamp cursor (found {other:?})"))),
            };
            Ok(Cursor::Timestamp { last_ts, last_key })
        }
    }
}

/// Checks that the columns fit the mode: an integer key for id cursors, a temporal
/// timestamp column for timestamp cursors.
pub fn check_cursor_columns(
    columns: &[Column],
    key: &str,
    timestamp: Option<&str>,
) -> Result<(), ConnectorError> {
    let (_, k) = types::find(columns, key, "key")?;
    match timestamp {
        None if !k.ty.is_integer() => Err(ConnectorError::fatal(format!(
            "key column `{key}` is {}, but this mode needs an integer key; use a timestamp mode or full refresh",
            k.ty.name()
        ))),
        None => Ok(()),
        Some(ts) => {
            let (_, t) = types::find(columns, ts, "timestamp")?;
            if !t.ty.is_temporal() {
                return Err(ConnectorError::fatal(format!("timestamp column `{ts}` is {}, not a date or timestamp", t.ty.name())));
            }
            if !(k.ty.is_integer() || matches!(k.ty, ColumnType::Text | ColumnType::Uuid)) {
                return Err(ConnectorError::fatal(format!("key column `{key}` is {}; a timestamp cursor needs an integer or text key", k.ty.name())));
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_secrets_are_known_to_the_model() {
        // The model encrypts exactly the fields it knows are secret; a connector must not
        // have a secret the model would store in clear.
        for entry in registry() {
            for field in entry.secret_fields {
                assert!(
                    entry.kind.secret_fields().contains(field),
                    "{:?}: {field}",
                    entry.kind
                );
            }
        }
    }

    /// Every connector's options are names it knows: anything else is refused, naming the
    /// option, before anything is opened. (Postgres takes session settings by name: see
    /// postgres/config.rs.)
    #[tokio::test]
    async fn every_connector_refuses_an_unknown_option_by_name() {
        for (kind, connection_string) in [
            (ConnectorKind::Mysql, "mysql://root@127.0.0.1:3306/test"),
            (ConnectorKind::Sqlite, "sqlite://shop.db"),
            (ConnectorKind::S3, "s3://bucket/prefix"),
            (ConnectorKind::Http, "https://api.example.com/v1"),
            (
                ConnectorKind::SqlServer,
                "server=tcp:127.0.0.1,1433;user=sa;database=app",
            ),
            (ConnectorKind::MongoDb, "mongodb://127.0.0.1:27017/shop"),
            (ConnectorKind::Kafka, "127.0.0.1:9092"),
            (ConnectorKind::RabbitMq, "amqp://guest@127.0.0.1:5672/%2f"),
        ] {
            let spec = ConnectionSpec {
                kind,
                connection_string: connection_string.into(),
                options: BTreeMap::from([("no_such_option".to_string(), "1".to_string())]),
                secrets: BTreeMap::new(),
            };
            for (side, refused) in [
                ("source", open_source(&spec).err()),
                ("destination", open_destination(&spec).err()),
            ] {
                let e = refused.unwrap_or_else(|| panic!("{kind:?} {side}: accepted"));
                assert!(
                    e.message.starts_with("options") && e.message.contains("no_such_option"),
                    "{kind:?} {side}: {e}"
                );
            }
        }
    }

    #[test]
    fn every_kind_has_a_source_and_a_destination() {
        let entries = registry();
        for kind in ConnectorKind::ALL {
            let e = entries.iter().find(|e| e.kind == kind);
            assert!(e.is_some_and(|e| e.source && e.destination), "{kind:?}");
        }
    }
}
