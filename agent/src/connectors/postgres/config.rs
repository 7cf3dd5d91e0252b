use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::connectors::{ConnectionSpec, ConnectorError};

/// Which data source fields are secret for Postgres.
pub const SECRET_FIELDS: &[&str] = &["password"];

pub struct PostgresConfig {
    pub options: PgConnectOptions,
    /// Where the data lives, for messages: host:port/database.
    pub display: String,
}

impl PostgresConfig {
    pub fn from_spec(spec: &ConnectionSpec) -> Result<Self, ConnectorError> {
        let mut options = PgConnectOptions::from_str(&spec.connection_string).map_err(|e| {
            ConnectorError::fatal(format!(
                "connection_string: not a Postgres URL ({e}); expected postgres://user@host:5432/database"
            ))
        })?;
        if let Some(password) = spec.secret("password") {
            options = options.password(password);
        }
        // UTC sessions: timestamps without time zone are read and compared as UTC. The data
        // source's options are Postgres session parameters (e.g. statement_timeout = 60s).
        options = options
            .application_name("idra")
            .options([("timezone", "UTC")]);
        for (k, v) in &spec.options {
            if !k
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
            {
                return Err(ConnectorError::fatal(format!(
                    "options: `{k}` is not a Postgres setting name"
                )));
            }
            options = options.options([(k.as_str(), v.as_str())]);
        }
        let display = format!(
            "Postgres at {}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or("(default database)")
        );
        Ok(Self { options, display })
    }

    pub fn pool(&self, connections: u32) -> PgPool {
        PgPoolOptions::new()
            .max_connections(connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with(self.options.clone())
    }
}
