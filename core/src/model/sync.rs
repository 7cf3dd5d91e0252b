use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::validation::{validate_identifier, validate_name, ValidationError};

/// How a sync decides which rows are new.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    /// Integer key cursor kept in the offset.
    ById,
    /// (timestamp, key) cursor kept in the offset.
    ByTimestamp,
    /// Cursor read from the destination's max key at each run.
    LastDestinationId,
    /// Cursor read from the destination's max timestamp at each run.
    LastDestinationTimestamp,
    /// Copy everything each run, replacing the destination.
    FullRefreshOverwrite,
    /// Copy everything each run, appending to the destination.
    FullRefreshAppend,
}

impl SyncMode {
    pub const ALL: [SyncMode; 6] = [
        SyncMode::ById,
        SyncMode::ByTimestamp,
        SyncMode::LastDestinationId,
        SyncMode::LastDestinationTimestamp,
        SyncMode::FullRefreshOverwrite,
        SyncMode::FullRefreshAppend,
    ];

    /// The name used in JSON and in forms. Spelled out rather than asked of serde so the
    /// browser's wasm does not carry a JSON serializer just to show a mode.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncMode::ById => "by_id",
            SyncMode::ByTimestamp => "by_timestamp",
            SyncMode::LastDestinationId => "last_destination_id",
            SyncMode::LastDestinationTimestamp => "last_destination_timestamp",
            SyncMode::FullRefreshOverwrite => "full_refresh_overwrite",
            SyncMode::FullRefreshAppend => "full_refresh_append",
        }
    }

    /// What the UI shows.
    pub fn label(self) -> &'static str {
        match self {
            SyncMode::ById => "By id",
            SyncMode::ByTimestamp => "By timestamp",
            SyncMode::LastDestinationId => "Last destination id",
            SyncMode::LastDestinationTimestamp => "Last destination timestamp",
            SyncMode::FullRefreshOverwrite => "Full refresh (overwrite)",
            SyncMode::FullRefreshAppend => "Full refresh (append)",
        }
    }

    /// The mode named `name` (as [`SyncMode::as_str`] spells it).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == name)
    }

    pub fn needs_timestamp(self) -> bool {
        matches!(
            self,
            SyncMode::ByTimestamp | SyncMode::LastDestinationTimestamp
        )
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum WriteMode {
    #[default]
    Insert,
    Upsert,
}

impl WriteMode {
    pub const ALL: [WriteMode; 2] = [WriteMode::Insert, WriteMode::Upsert];

    /// The name used in JSON and in forms (see [`SyncMode::as_str`]).
    pub fn as_str(self) -> &'static str {
        match self {
            WriteMode::Insert => "insert",
            WriteMode::Upsert => "upsert",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            WriteMode::Insert => "Insert",
            WriteMode::Upsert => "Upsert",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == name)
    }
}

/// One side of a sync: a saved data source plus what to read or write there.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub datasource_id: String,
    /// Table, collection, topic, queue, object prefix or path, depending on the kind.
    #[serde(default)]
    pub table: String,
    /// A custom query instead of a table (SQL sources only).
    #[serde(default)]
    pub query: Option<String>,
}

/// `syncs/<id>`. Named `SyncConfig` rather than `Sync` so it never shadows the std marker
/// trait in code that imports the model.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncConfig {
    pub id: String,
    pub name: String,
    pub source: Endpoint,
    pub destination: Endpoint,
    pub mode: SyncMode,
    #[serde(default)]
    pub write_mode: WriteMode,
    /// Key columns: the cursor tiebreaker and the upsert key.
    pub key_columns: Vec<String>,
    #[serde(default)]
    pub timestamp_column: Option<String>,
    pub batch_size: u32,
    pub poll_interval_secs: u32,
    /// Timestamp modes: leave rows newer than this many seconds for a later run, so a
    /// transaction that commits late (with an older timestamp) is still seen. For sources
    /// without Postgres's snapshot-based protection (MySQL, SQLite). 0: off.
    #[serde(default)]
    pub settle_secs: u32,
    #[serde(default = "enabled_default")]
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn enabled_default() -> bool {
    true
}

/// A sync as a user submits it (create or replace); the server assigns id and times.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncInput {
    pub name: String,
    pub source: Endpoint,
    pub destination: Endpoint,
    pub mode: SyncMode,
    #[serde(default)]
    pub write_mode: WriteMode,
    pub key_columns: Vec<String>,
    #[serde(default)]
    pub timestamp_column: Option<String>,
    #[serde(default = "default_batch")]
    pub batch_size: u32,
    #[serde(default = "default_poll")]
    pub poll_interval_secs: u32,
    #[serde(default)]
    pub settle_secs: u32,
    #[serde(default = "enabled_default")]
    pub enabled: bool,
}

fn default_batch() -> u32 {
    10_000
}

fn default_poll() -> u32 {
    5
}

impl SyncInput {
    pub fn into_config(
        self,
        id: String,
        created_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> SyncConfig {
        SyncConfig {
            id,
            name: self.name,
            source: self.source,
            destination: self.destination,
            mode: self.mode,
            write_mode: self.write_mode,
            key_columns: self.key_columns,
            timestamp_column: self.timestamp_column.filter(|t| !t.is_empty()),
            batch_size: self.batch_size,
            poll_interval_secs: self.poll_interval_secs,
            settle_secs: self.settle_secs,
            enabled: self.enabled,
            created_at,
            updated_at: now,
        }
    }
}

pub const MAX_BATCH_SIZE: u32 = 1_000_000;

impl SyncConfig {
    /// Sources that page through rows by the sync's key (every mode, full refreshes too,
    /// within a run) keep one key value in the cursor: with two key columns, a batch ending
    /// inside one value of the first would skip that value's other rows. Sources positioned
    /// otherwise (topic offsets, queues, object keys, API pages) may upsert on several.
    pub fn validate_keys_for(&self, source: super::ConnectorKind) -> Result<(), ValidationError> {
        use super::ConnectorKind as K;
        let pages_by_key = matches!(
            source,
            K::Postgres | K::Mysql | K::Sqlite | K::SqlServer | K::MongoDb
        );
        if pages_by_key && self.key_columns.len() > 1 {
            return Err(ValidationError::new(
                "key_columns",
                format!("name one column: a {} source is read in the order of a single unique key column (composite keys would skip rows); pick a unique column, or expose one from a custom query", source.label()),
            ));
        }
        Ok(())
    }
}

impl SyncConfig {
    pub fn validate(&self) -> Result<(), ValidationError> {
        validate_name("name", &self.name, 128)?;
        if self.source.datasource_id.is_empty() {
            return Err(ValidationError::new(
                "source.datasource_id",
                "pick the source data source",
            ));
        }
        if self.destination.datasource_id.is_empty() {
            return Err(ValidationError::new(
                "destination.datasource_id",
                "pick the destination data source",
            ));
        }
        match &self.source.query {
            Some(q) if q.trim().is_empty() => {
                return Err(ValidationError::new(
                    "source.query",
                    "is empty: enter a query or pick a table",
                ))
            }
            Some(_) => {}
            None => validate_identifier("source.table", &self.source.table)?,
        }
        validate_identifier("destination.table", &self.destination.table)?;
        if self.key_columns.is_empty() {
            return Err(ValidationError::new(
                "key_columns",
                "name at least one key column (the cursor tiebreaker and upsert key)",
            ));
        }
        for k in &self.key_columns {
            validate_identifier("key_columns", k)?;
        }
        match (&self.timestamp_column, self.mode.needs_timestamp()) {
            (None, true) => {
                return Err(ValidationError::new(
                    "timestamp_column",
                    "is required by this mode",
                ))
            }
            (Some(t), _) => validate_identifier("timestamp_column", t)?,
            (None, false) => {}
        }
        if self.batch_size == 0 || self.batch_size > MAX_BATCH_SIZE {
            return Err(ValidationError::new(
                "batch_size",
                format!("must be between 1 and {MAX_BATCH_SIZE}"),
            ));
        }
        if self.settle_secs > 0 && !self.mode.needs_timestamp() {
            return Err(ValidationError::new(
                "settle_secs",
                "only applies to the timestamp modes; set it to 0 or pick a timestamp mode",
            ));
        }
        if self.poll_interval_secs == 0 {
            return Err(ValidationError::new(
                "poll_interval_secs",
                "must be at least 1 second",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
impl SyncConfig {
    /// A valid sync, "orders" from `public.orders` to `orders` by id, for tests to vary.
    pub(crate) fn example() -> SyncConfig {
        SyncConfig {
            id: "s1".into(),
            name: "orders".into(),
            source: Endpoint {
                datasource_id: "a".into(),
                table: "public.orders".into(),
                query: None,
            },
            destination: Endpoint {
                datasource_id: "b".into(),
                table: "orders".into(),
                query: None,
            },
            mode: SyncMode::ById,
            write_mode: WriteMode::Upsert,
            key_columns: vec!["id".into()],
            timestamp_column: None,
            batch_size: 10_000,
            poll_interval_secs: 5,
            settle_secs: 0,
            enabled: true,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_names_are_the_json_names() {
        for mode in SyncMode::ALL {
            assert_eq!(serde_json::to_value(mode).unwrap(), mode.as_str());
            assert_eq!(SyncMode::from_name(mode.as_str()), Some(mode));
        }
        for mode in WriteMode::ALL {
            assert_eq!(serde_json::to_value(mode).unwrap(), mode.as_str());
            assert_eq!(WriteMode::from_name(mode.as_str()), Some(mode));
        }
        assert_eq!(SyncMode::from_name("ById"), None);
    }

    fn sync() -> SyncConfig {
        SyncConfig::example()
    }

    #[test]
    fn valid_sync_passes() {
        sync().validate().unwrap();
    }

    #[test]
    fn errors_name_the_field() {
        let mut s = sync();
        s.mode = SyncMode::ByTimestamp;
        assert_eq!(s.validate().unwrap_err().field, "timestamp_column");
        let mut s = sync();
        s.batch_size = 0;
        assert_eq!(s.validate().unwrap_err().field, "batch_size");
        let mut s = sync();
        s.destination.table = "t\"; DROP TABLE x; --".into();
        assert_eq!(s.validate().unwrap_err().field, "destination.table");
        let mut s = sync();
        s.key_columns.clear();
        assert_eq!(s.validate().unwrap_err().field, "key_columns");
        let mut s = sync();
        s.settle_secs = 30;
        assert_eq!(s.validate().unwrap_err().field, "settle_secs");
    }

    /// A composite key would page by its first column alone and skip rows (defect 5 of the
    /// correctness review): refused in every mode for sources read in key order, allowed
    /// for sources positioned otherwise (a topic upserting on two columns).
    #[test]
    fn composite_keys_are_refused_where_the_source_pages_by_key() {
        use crate::model::ConnectorKind;
        for mode in SyncMode::ALL {
            let mut s = sync();
            s.mode = mode;
            s.timestamp_column = mode.needs_timestamp().then(|| "ts".into());
            s.key_columns = vec!["a".into(), "b".into()];
            s.validate().unwrap();
            let e = s.validate_keys_for(ConnectorKind::Postgres).unwrap_err();
            assert_eq!(e.field, "key_columns", "{mode:?}");
            assert!(e.message.contains("single unique key column"), "{e:?}");
            s.validate_keys_for(ConnectorKind::Kafka).unwrap();
        }
    }
}
