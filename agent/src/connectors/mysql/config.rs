use std::str::FromStr;
use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};

use crate::connectors::{options, ConnectionSpec, ConnectorError};

/// Which data source fields are secret for MySQL/MariaDB.
pub const SECRET_FIELDS: &[&str] = &["password"];

pub struct MysqlConfig {
    pub options: MySqlConnectOptions,
    pub display: String,
}

impl MysqlConfig {
    pub fn from_spec(spec: &ConnectionSpec) -> Result<Self, ConnectorError> {
        let mut options = MySqlConnectOptions::from_str(&spec.connection_string).map_err(|e| {
            ConnectorError::fatal(format!(
                "connection_string: not a MySQL URL ({e}); expected mysql://user@host:3306/database"
            ))
        })?;
        if let Some(password) = spec.secret("password") {
            options = options.password(password);
        }
        options::only_known(
            spec,
            &[],
            "an option MySQL data sources take (they take none: settings go in the connection string, e.g. ?ssl-mode=REQUIRED)",
        )?;
        // Sessions in UTC, so DATETIME values are read and compared as UTC.
        options = options.timezone(Some("+00:00".to_string()));
        let display = format!(
            "MySQL at {}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or("(no database)")
        );
        Ok(Self { options, display })
    }

    pub fn pool(&self, connections: u32) -> MySqlPool {
        MySqlPoolOptions::new()
            .max_connections(connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with(self.options.clone())
    }
}
