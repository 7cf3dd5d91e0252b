//! The original Idra's sync JSON: an array of syncs, each with its own source and
//! destination connector (connection details inline). Accepted as is.

use std::collections::BTreeMap;

use crate::model::{ConnectorKind, Cursor, Endpoint, SyncConfig, SyncMode, WriteMode};
use crate::secret::Secret;
use chrono::Utc;
use serde::Deserialize;

use super::{sync_id, ConfigError, FileConfig, FileDataSource};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LegacySync {
    /// The sync's id in the original Idra (a UUID): kept as Idra's sync id.
    #[serde(default)]
    id: String,
    sync_name: String,
    mode: String,
    #[serde(default)]
    disabled: bool,
    source_connector: LegacyConnector,
    destination_connector: LegacyConnector,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LegacyConnector {
    #[serde(default)]
    id: String,
    #[serde(default)]
    connector_name: String,
    connector_source_type: String,
    connection_string: String,
    #[serde(default)]
    database: String,
    #[serde(default)]
    table: String,
    #[serde(default)]
    query: String,
    #[serde(default)]
    polling_time: Option<u32>,
    #[serde(default)]
    timestamp_field: String,
    #[serde(default)]
    max_record_batch_size: Option<u32>,
    #[serde(default)]
    save_mode: Option<String>,
    #[serde(default)]
    attributes: Option<serde_json::Value>,
    /// A Go time layout for text timestamps; Idra reads timestamp columns natively.
    #[serde(default)]
    timestamp_field_format: String,
    /// The id to start after (by-id syncs).
    #[serde(default)]
    start_offset: i64,
    /// An API token (HTTP connectors).
    #[serde(default)]
    token: String,
}

fn kind(t: &str) -> Option<ConnectorKind> {
    let t = t.to_ascii_lowercase();
    let t = t.trim_end_matches("gorm");
    Some(match t {
        "postgres" | "postgresql" | "pg" => ConnectorKind::Postgres,
        "mysql" | "mariadb" => ConnectorKind::Mysql,
        "sqlite" | "sqlite3" => ConnectorKind::Sqlite,
        "sqlserver" | "mssql" => ConnectorKind::SqlServer,
        "mongodb" | "mongo" => ConnectorKind::MongoDb,
        "kafka" => ConnectorKind::Kafka,
        "s3" => ConnectorKind::S3,
        "http" | "httpapi" | "api" => ConnectorKind::Http,
        "rabbitmq" | "rabbit" => ConnectorKind::RabbitMq,
        _ => return None,
    })
}

fn mode(m: &str) -> Option<SyncMode> {
    Some(match m {
        "IdField" => SyncMode::ById,
        "Timestamp" => SyncMode::ByTimestamp,
        "LastDestinationId" => SyncMode::LastDestinationId,
        "LastDestinationTimestamp" => SyncMode::LastDestinationTimestamp,
        // Idra's full mode re-reads the whole table paging by id.
        "FullWithId" => SyncMode::FullRefreshOverwrite,
        _ => return None,
    })
}

/// Adds `database` to a URL-style connection string that names none.
fn with_database(cs: &str, database: &str) -> String {
    if database.is_empty() {
        return cs.to_string();
    }
    match url::Url::parse(cs) {
        Ok(mut u) if u.path().trim_matches('/').is_empty() && u.has_host() => {
            u.set_path(&format!("/{database}"));
            u.to_string()
        }
        _ => cs.to_string(),
    }
}

fn datasource(c: &LegacyConnector, sync: &str, side: &str) -> Result<FileDataSource, ConfigError> {
    let kind = kind(&c.connector_source_type).ok_or_else(|| {
        ConfigError(format!(
            "sync `{sync}`: field `{side}.connector_source_type`: `{}` is not a known type (PostgresGORM, MysqlGORM, SqliteGORM, SqlServerGORM, MongoDB, Kafka, S3, HTTP, RabbitMQ)",
            c.connector_source_type
        ))
    })?;
    let mut cs = with_database(&c.connection_string, &c.database);
    let mut secrets = BTreeMap::new();
    if let Some((without, pw)) = crate::model::split_password(&cs) {
        cs = without;
        secrets.insert("password".to_string(), Secret::new(pw));
    }
    if !c.token.is_empty() {
        if !kind.secret_fields().contains(&"token") {
            return Err(ConfigError(format!(
                "sync `{sync}`: field `{side}.token`: a {} connector takes no token; remove it or set it to \"\"",
                kind.label()
            )));
        }
        secrets.insert("token".to_string(), Secret::new(c.token.clone()));
    }
    if !c.timestamp_field_format.is_empty() {
        return Err(ConfigError(format!(
            "sync `{sync}`: field `{side}.timestamp_field_format`: Idra reads the timestamp column's own date/time type and does not parse text timestamps; set it to \"\", or read the column through a custom query that converts it (Postgres: to_timestamp(col, 'YYYY-MM-DD HH24:MI:SS'); MySQL: STR_TO_DATE(col, '%Y-%m-%d %H:%i:%s'))"
        )));
    }
    let mut options = BTreeMap::new();
    if let Some(serde_json::Value::Object(attrs)) = &c.attributes {
        for (k, v) in attrs {
            options.insert(
                k.clone(),
                v.as_str()
                    .map(String::from)
                    .unwrap_or_else(|| v.to_string()),
            );
        }
    }
    let name = if c.connector_name.is_empty() {
        format!("{sync}-{side}")
    } else {
        format!("{sync}-{side}-{}", c.connector_name)
    };
    Ok(FileDataSource {
        name,
        kind,
        connection_string: cs,
        options,
        secrets,
    })
}

pub fn parse(items: Vec<serde_json::Value>) -> Result<FileConfig, ConfigError> {
    let mut datasources = Vec::new();
    let mut syncs = Vec::new();
    let mut start_offsets = BTreeMap::new();
    for (i, v) in items.iter().enumerate() {
        let label = v
            .get("sync_name")
            .and_then(|n| n.as_str())
            .map(String::from)
            .unwrap_or_else(|| format!("#{}", i + 1));
        let s: LegacySync = serde_json::from_value(v.clone())
            .map_err(|e| ConfigError(format!("sync `{label}`: {e}")))?;
        let mode = mode(&s.mode).ok_or_else(|| {
            ConfigError(format!("sync `{label}`: field `mode`: `{}` is not a mode (IdField, Timestamp, LastDestinationId, LastDestinationTimestamp, FullWithId)", s.mode))
        })?;
        let src = datasource(&s.source_connector, &s.sync_name, "source_connector")?;
        let dst = datasource(
            &s.destination_connector,
            &s.sync_name,
            "destination_connector",
        )?;
        let write_mode = match s.destination_connector.save_mode.as_deref().or(s.source_connector.save_mode.as_deref()) {
            None | Some("Insert") | Some("") => WriteMode::Insert,
            Some("Upsert") => WriteMode::Upsert,
            Some(other) => return Err(ConfigError(format!("sync `{label}`: field `destination_connector.save_mode`: `{other}` is not Insert or Upsert"))),
        };
        let key = if s.source_connector.id.is_empty() {
            s.destination_connector.id.clone()
        } else {
            s.source_connector.id.clone()
        };
        if key.is_empty() {
            return Err(ConfigError(format!(
                "sync `{label}`: field `source_connector.id`: name the key/offset column"
            )));
        }
        let ts = Some(s.source_connector.timestamp_field.clone()).filter(|t| !t.is_empty());
        let now = Utc::now();
        let id = if s.id.trim().is_empty() {
            sync_id(&s.sync_name)
        } else {
            sync_id(s.id.trim())
        };
        match (s.source_connector.start_offset, mode) {
            (0, _) => {}
            (n, SyncMode::ById) if n > 0 => {
                start_offsets.insert(id.clone(), Cursor::Id { last_id: n });
            }
            (n, _) => {
                return Err(ConfigError(format!(
                    "sync `{label}`: field `source_connector.start_offset`: {n} applies only to the IdField mode (the id to start after, 0 or more); set it to 0, or set the offset on the Offsets page after importing"
                )))
            }
        }
        syncs.push(SyncConfig {
            id,
            name: s.sync_name.clone(),
            source: Endpoint {
                datasource_id: src.name.clone(),
                table: s.source_connector.table.clone(),
                query: Some(s.source_connector.query.clone()).filter(|q| !q.trim().is_empty()),
            },
            destination: Endpoint {
                datasource_id: dst.name.clone(),
                table: s.destination_connector.table.clone(),
                query: None,
            },
            mode,
            write_mode,
            key_columns: vec![key],
            timestamp_column: ts,
            batch_size: s
                .source_connector
                .max_record_batch_size
                .filter(|n| *n > 0)
                .unwrap_or(10_000),
            poll_interval_secs: s
                .source_connector
                .polling_time
                .filter(|n| *n > 0)
                .unwrap_or(5),
            settle_secs: 0,
            enabled: !s.disabled,
            created_at: now,
            updated_at: now,
        });
        datasources.push(src);
        datasources.push(dst);
    }
    Ok(FileConfig {
        datasources,
        syncs,
        start_offsets,
    })
}

#[cfg(test)]
mod tests {
    use super::super::parse as parse_file;
    use crate::model::{SyncMode, WriteMode};

    const IDRA: &str = r#"[{
        "sync_name": "orders",
        "mode": "Timestamp",
        "disabled": false,
        "source_connector": {"id": "id", "connector_name": "pg", "connector_source_type": "PostgresGORM",
            "connection_string": "postgres://app:secret-pw@127.0.0.1:5432/", "database": "shop", "table": "orders",
            "query": "", "polling_time": 3, "timestamp_field": "updated_at", "max_record_batch_size": 500,
            "save_mode": "Insert", "attributes": {}},
        "destination_connector": {"id": "id", "connector_name": "my", "connector_source_type": "MysqlGORM",
            "connection_string": "mysql://root@127.0.0.1:3306/test", "database": "", "table": "orders_copy",
            "query": "", "polling_time": 3, "timestamp_field": "", "max_record_batch_size": 500,
            "save_mode": "Upsert", "attributes": {}}
    }]"#;

    #[test]
    fn idra_format_is_accepted() {
        let c = parse_file(IDRA).unwrap();
        let s = &c.syncs[0];
        assert_eq!(s.mode, SyncMode::ByTimestamp);
        assert_eq!(s.write_mode, WriteMode::Upsert);
        assert_eq!(s.timestamp_column.as_deref(), Some("updated_at"));
        assert_eq!((s.batch_size, s.poll_interval_secs), (500, 3));
        let src = c.datasource(&s.source.datasource_id).unwrap();
        assert_eq!(
            src.connection_string, "postgres://app@127.0.0.1:5432/shop",
            "database added, password moved out"
        );
        assert_eq!(src.secrets["password"].expose(), "secret-pw");
    }

    /// A sync exactly as the original Idra writes it (its documentation's example, with
    /// `id`, `timestamp_field_format`, `start_offset` and `token`).
    const IDRA_EXPORT: &str = r#"[{"id":"28955df5-3f4a-48f5-b60e-cf898d01cbe6","sync_name":"Sincro_postgres_mysql",
"source_connector":
    {"id":"id","connector_name":"con1","connector_source_type":"PostgresGORM","connection_string":"postgres://postgres:postgres@localhost:5432/school","database":"","query":"","table":"bimbi","polling_time":60,"timestamp_field":"ts","timestamp_field_format":"","max_record_batch_size":50000,"save_mode":"Insert","start_offset":41,"token":""},
"destination_connector":
    {"id":"id","connector_name":"con2","connector_source_type":"MysqlGORM","connection_string":"mysql://root@127.0.0.1:3306/school","database":"school","query":"","table":"bimbi","polling_time":60,"timestamp_field":"ts","timestamp_field_format":"","max_record_batch_size":50000,"save_mode":"Insert","start_offset":0,"token":""},
"mode":"IdField","disabled":false}]"#;

    #[test]
    fn an_export_of_the_original_idra_loads_with_its_id_and_start_offset() {
        let c = parse_file(IDRA_EXPORT).unwrap();
        let s = &c.syncs[0];
        assert_eq!(s.id, "28955df5-3f4a-48f5-b60e-cf898d01cbe6");
        assert_eq!(s.mode, SyncMode::ById);
        assert_eq!(
            c.start_offsets.get(&s.id),
            Some(&crate::model::Cursor::Id { last_id: 41 })
        );
    }

    #[test]
    fn idra_fields_idra_cannot_honour_are_refused_by_name() {
        let with_format = IDRA_EXPORT.replacen(
            "\"timestamp_field_format\":\"\"",
            "\"timestamp_field_format\":\"2006-01-02\"",
            1,
        );
        let e = parse_file(&with_format).unwrap_err().to_string();
        assert!(e.contains("source_connector.timestamp_field_format"), "{e}");
        let token_on_pg = IDRA_EXPORT.replacen("\"token\":\"\"", "\"token\":\"t\"", 1);
        let e = parse_file(&token_on_pg).unwrap_err().to_string();
        assert!(e.contains("source_connector.token"), "{e}");
    }

    #[test]
    fn idra_format_errors_name_sync_and_field() {
        let bad_mode = IDRA.replace("\"Timestamp\"", "\"Sometimes\"");
        let e = parse_file(&bad_mode).unwrap_err().to_string();
        assert!(e.contains("sync `orders`") && e.contains("`mode`"), "{e}");
        let unknown = IDRA.replace("\"disabled\": false", "\"disabled\": false, \"colour\": 1");
        let e = parse_file(&unknown).unwrap_err().to_string();
        assert!(e.contains("sync `orders`") && e.contains("colour"), "{e}");
        let bad_type = IDRA.replace("MysqlGORM", "OracleGORM");
        let e = parse_file(&bad_type).unwrap_err().to_string();
        assert!(
            e.contains("destination_connector.connector_source_type"),
            "{e}"
        );
        let bad_table = IDRA.replace("\"orders_copy\"", "\"t\\\"; DROP TABLE x; --\"");
        let e = parse_file(&bad_table).unwrap_err().to_string();
        assert!(
            e.contains("sync `orders`: field `destination.table`"),
            "{e}"
        );
    }

    #[test]
    fn native_format_errors_name_sync_and_field() {
        let native = r#"{"datasources": [{"name": "a", "kind": "postgres", "connection_string": "postgres://x@h/db"}],
            "syncs": [{"name": "s", "source": {"datasource": "a", "table": "t"}, "destination": {"datasource": "a", "table": "u"},
                       "mode": "by_id", "key_columns": ["id"], "batch_size": 0}]}"#;
        let e = parse_file(native).unwrap_err().to_string();
        assert!(e.contains("sync `s`: field `batch_size`"), "{e}");
        let e =
            parse_file(&native.replace("\"mode\": \"by_id\"", "\"mode\": \"by_id\", \"bogus\": 1"))
                .unwrap_err()
                .to_string();
        assert!(e.contains("sync `s`") && e.contains("bogus"), "{e}");
        let e = parse_file(
            &native
                .replace(
                    "\"datasource\": \"a\", \"table\": \"u\"",
                    "\"datasource\": \"zz\", \"table\": \"u\"",
                )
                .replace("\"batch_size\": 0", "\"batch_size\": 5"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("field `destination.datasource`") && e.contains("zz"),
            "{e}"
        );
    }
}
