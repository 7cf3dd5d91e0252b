use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use crate::connectors::{ConnectionSpec, ConnectorError};

/// SQLite files have no credentials.
pub const SECRET_FIELDS: &[&str] = &[];

pub struct SqliteConfig {
    pub options: SqliteConnectOptions,
    pub display: String,
}

impl SqliteConfig {
    /// `sqlite:///abs/path.db`, `sqlite://rel/path.db` or a bare file path. A destination
    /// file is created when missing; a source file must exist.
    pub fn from_spec(spec: &ConnectionSpec, create: bool) -> Result<Self, ConnectorError> {
        let cs = spec.connection_string.trim();
        let url = if cs.starts_with("sqlite:") {
            cs.to_string()
        } else {
            format!("sqlite://{cs}")
        };
        let options = SqliteConnectOptions::from_str(&url)
            .map_err(|e| ConnectorError::fatal(format!("connection_string: not a SQLite path ({e}); expected sqlite:///path/to/file.db")))?
            .create_if_missing(create)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(10));
        // The data source's options are SQLite pragmas (e.g. synchronous = NORMAL).
        let mut options = options;
        for (k, v) in &spec.options {
            if !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(ConnectorError::fatal(format!(
                    "options: `{k}` is not a SQLite pragma name"
                )));
            }
            options = options.pragma(k.clone(), v.clone());
        }
        let display = format!("SQLite file {}", options.get_filename().display());
        Ok(Self { options, display })
    }

    pub fn pool(&self) -> SqlitePool {
        // One connection: SQLite has one writer at a time anyway.
        SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with(self.options.clone())
    }
}
