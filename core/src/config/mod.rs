//! The single-mode file: syncs and the data sources they use, in Idra's own JSON format or
//! in the original Idra's format (an array of syncs). Errors name the sync and the field.

mod legacy;
mod native;
pub mod store_io;

use std::collections::BTreeMap;

use crate::model::{ConnectorKind, SyncConfig};
use crate::secret::Secret;

/// A data source as a file gives it: secrets in clear (the file is the user's own).
#[derive(Debug, Clone)]
pub struct FileDataSource {
    pub name: String,
    pub kind: ConnectorKind,
    pub connection_string: String,
    pub options: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, Secret>,
}

/// A parsed file: every sync refers to data sources by id (= name).
#[derive(Debug, Clone)]
pub struct FileConfig {
    pub datasources: Vec<FileDataSource>,
    pub syncs: Vec<SyncConfig>,
    /// Where a sync starts when it has no offset yet, by sync id (the original Idra's
    /// `start_offset`).
    pub start_offsets: std::collections::BTreeMap<String, crate::model::Cursor>,
}

impl FileConfig {
    pub fn datasource(&self, id: &str) -> Option<&FileDataSource> {
        self.datasources.iter().find(|d| d.name == id)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Parses either format: a JSON object is Idra's own, an array is the original Idra's.
pub fn parse(text: &str) -> Result<FileConfig, ConfigError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| ConfigError(format!("not valid JSON: {e}")))?;
    let config = match value {
        serde_json::Value::Array(items) => legacy::parse(items)?,
        serde_json::Value::Object(_) => native::parse(value)?,
        _ => return Err(ConfigError("expected an object {\"datasources\": [...], \"syncs\": [...]} or an array of Idra syncs".into())),
    };
    check(&config)?;
    Ok(config)
}

/// Cross-checks: names unique, every sync valid and pointing at known data sources.
fn check(config: &FileConfig) -> Result<(), ConfigError> {
    let mut seen = std::collections::HashSet::new();
    for d in &config.datasources {
        if !seen.insert(d.name.as_str()) {
            return Err(ConfigError(format!(
                "data source `{}` is defined twice; names must be unique",
                d.name
            )));
        }
    }
    let mut names = std::collections::HashSet::new();
    for s in &config.syncs {
        if !names.insert(s.name.as_str()) {
            return Err(ConfigError(format!(
                "sync `{}` is defined twice; names must be unique",
                s.name
            )));
        }
        s.validate().map_err(|e| {
            ConfigError(format!(
                "sync `{}`: field `{}`: {}",
                s.name, e.field, e.message
            ))
        })?;
        for (field, ds) in [
            ("source.datasource", &s.source.datasource_id),
            ("destination.datasource", &s.destination.datasource_id),
        ] {
            let Some(found) = config.datasource(ds) else {
                return Err(ConfigError(format!(
                    "sync `{}`: field `{field}`: no data source named `{ds}`",
                    s.name
                )));
            };
            if field == "source.datasource" {
                s.validate_keys_for(found.kind).map_err(|e| {
                    ConfigError(format!(
                        "sync `{}`: field `{}`: {}",
                        s.name, e.field, e.message
                    ))
                })?;
            }
        }
    }
    Ok(())
}

/// Stable id for a sync named in a file (state is kept per id).
pub fn sync_id(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}
