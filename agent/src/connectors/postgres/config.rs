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
        refuse_startup_options_in_url(&spec.connection_string)?;
        for (k, v) in &spec.options {
            check_setting(k, v)?;
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

/// Settings that load code into the database server (when Idra's role may set them).
const CODE_LOADING_SETTINGS: &[&str] = &[
    "session_preload_libraries",
    "local_preload_libraries",
    "shared_preload_libraries",
    "dynamic_library_path",
];

/// A data source option becomes `-c name=value` in the startup packet, which Postgres
/// splits at spaces: a value with a space (or a backslash, its escape) could add settings
/// the name check never saw, so both are refused, as are settings that load code.
fn check_setting(name: &str, value: &str) -> Result<(), ConnectorError> {
    let field = |why: String| ConnectorError::fatal(format!("options.{name}: {why}"));
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
    {
        return Err(field("is not a Postgres setting name".into()));
    }
    if CODE_LOADING_SETTINGS.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(field(
            "loads code into the database server; Idra does not set it".into(),
        ));
    }
    if value.chars().any(|c| c.is_whitespace() || c == '\\') {
        return Err(field(format!(
            "`{value}` has a space or a backslash, which would end the setting in Postgres's startup options; give a value without them (e.g. 60s rather than 60 s)"
        )));
    }
    Ok(())
}

/// `?options=` in the URL would pass startup switches past the data source's options and
/// their checks.
fn refuse_startup_options_in_url(connection_string: &str) -> Result<(), ConnectorError> {
    let Ok(url) = url::Url::parse(connection_string) else {
        return Ok(());
    };
    match url.query_pairs().find(|(k, _)| k.starts_with("options")) {
        Some((k, _)) => Err(ConnectorError::fatal(format!(
            "connection_string: `{k}` is not accepted; give Postgres settings as the data source's options (name = value), where they are checked"
        ))),
        None => Ok(()),
    }
}
