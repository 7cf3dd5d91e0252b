//! Idra's own file format:
//! `{"datasources": [{"name", "kind", "connection_string", "password"?, "secrets"?, "options"?}],
//!   "syncs": [{"name", "source": {"datasource", "table" | "query"}, "destination": {"datasource", "table"},
//!              "mode", "write_mode"?, "key_columns", "timestamp_column"?, "batch_size"?, "poll_interval_secs"?, "enabled"?}]}`

use std::collections::BTreeMap;

use crate::model::{ConnectorKind, Endpoint, SyncConfig, SyncMode, WriteMode};
use crate::secret::Secret;
use chrono::Utc;
use serde::Deserialize;

use super::{sync_id, ConfigError, FileConfig, FileDataSource};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    datasources: Vec<serde_json::Value>,
    #[serde(default)]
    syncs: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DataSourceEntry {
    name: String,
    kind: ConnectorKind,
    connection_string: String,
    #[serde(default)]
    password: Option<String>,
    /// The kind's other secrets by name (`token`, `sasl_password`, …).
    #[serde(default)]
    secrets: BTreeMap<String, String>,
    #[serde(default)]
    options: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EndpointEntry {
    datasource: String,
    #[serde(default)]
    table: String,
    #[serde(default)]
    query: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SyncEntry {
    name: String,
    source: EndpointEntry,
    destination: EndpointEntry,
    mode: SyncMode,
    #[serde(default)]
    write_mode: WriteMode,
    key_columns: Vec<String>,
    #[serde(default)]
    timestamp_column: Option<String>,
    #[serde(default = "default_batch")]
    batch_size: u32,
    #[serde(default = "default_poll")]
    poll_interval_secs: u32,
    #[serde(default)]
    settle_secs: u32,
    #[serde(default = "default_enabled")]
    enabled: bool,
}

fn default_batch() -> u32 {
    10_000
}
fn default_poll() -> u32 {
    5
}
fn default_enabled() -> bool {
    true
}

fn name_of(v: &serde_json::Value, i: usize) -> String {
    v.get("name")
        .and_then(|n| n.as_str())
        .map(String::from)
        .unwrap_or_else(|| format!("#{}", i + 1))
}

pub fn parse(value: serde_json::Value) -> Result<FileConfig, ConfigError> {
    let file: File = serde_json::from_value(value).map_err(|e| {
        ConfigError(format!(
            "top level: {e} (expected `datasources` and `syncs`)"
        ))
    })?;
    let mut datasources = Vec::new();
    for (i, v) in file.datasources.iter().enumerate() {
        let d: DataSourceEntry = serde_json::from_value(v.clone())
            .map_err(|e| ConfigError(format!("data source `{}`: {e}", name_of(v, i))))?;
        let mut secrets = BTreeMap::new();
        let mut connection_string = d.connection_string;
        if let Some((without, pw)) = crate::model::split_password(&connection_string) {
            connection_string = without;
            secrets.insert("password".to_string(), Secret::new(pw));
        }
        if let Some(pw) = d.password {
            secrets.insert("password".to_string(), Secret::new(pw));
        }
        for (name, value) in d.secrets {
            secrets.insert(name, Secret::new(value));
        }
        datasources.push(FileDataSource {
            name: d.name,
            kind: d.kind,
            connection_string,
            options: d.options,
            secrets,
        });
    }
    let mut syncs = Vec::new();
    for (i, v) in file.syncs.iter().enumerate() {
        let s: SyncEntry = serde_json::from_value(v.clone())
            .map_err(|e| ConfigError(format!("sync `{}`: {e}", name_of(v, i))))?;
        let now = Utc::now();
        syncs.push(SyncConfig {
            id: sync_id(&s.name),
            name: s.name,
            source: Endpoint {
                datasource_id: s.source.datasource,
                table: s.source.table,
                query: s.source.query.filter(|q| !q.trim().is_empty()),
            },
            destination: Endpoint {
                datasource_id: s.destination.datasource,
                table: s.destination.table,
                query: None,
            },
            mode: s.mode,
            write_mode: s.write_mode,
            key_columns: s.key_columns,
            timestamp_column: s.timestamp_column.filter(|t| !t.is_empty()),
            batch_size: s.batch_size,
            poll_interval_secs: s.poll_interval_secs,
            settle_secs: s.settle_secs,
            enabled: s.enabled,
            created_at: now,
            updated_at: now,
        });
    }
    Ok(FileConfig {
        datasources,
        syncs,
        start_offsets: BTreeMap::new(),
    })
}
