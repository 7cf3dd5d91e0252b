use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::validation::{validate_name, ValidationError};

/// Every kind of system Idra can read from or write to.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectorKind {
    Postgres,
    Mysql,
    Sqlite,
    SqlServer,
    MongoDb,
    Kafka,
    S3,
    Http,
    RabbitMq,
}

impl ConnectorKind {
    pub const ALL: [ConnectorKind; 9] = [
        ConnectorKind::Postgres,
        ConnectorKind::Mysql,
        ConnectorKind::Sqlite,
        ConnectorKind::SqlServer,
        ConnectorKind::MongoDb,
        ConnectorKind::Kafka,
        ConnectorKind::S3,
        ConnectorKind::Http,
        ConnectorKind::RabbitMq,
    ];

    pub fn label(self) -> &'static str {
        match self {
            ConnectorKind::Postgres => "Postgres",
            ConnectorKind::Mysql => "MySQL/MariaDB",
            ConnectorKind::Sqlite => "SQLite",
            ConnectorKind::SqlServer => "SQL Server",
            ConnectorKind::MongoDb => "MongoDB",
            ConnectorKind::Kafka => "Kafka",
            ConnectorKind::S3 => "S3",
            ConnectorKind::Http => "HTTP API",
            ConnectorKind::RabbitMq => "RabbitMQ",
        }
    }

    /// The name used in JSON and forms (`postgres`, `sql_server`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectorKind::Postgres => "postgres",
            ConnectorKind::Mysql => "mysql",
            ConnectorKind::Sqlite => "sqlite",
            ConnectorKind::SqlServer => "sql_server",
            ConnectorKind::MongoDb => "mongo_db",
            ConnectorKind::Kafka => "kafka",
            ConnectorKind::S3 => "s3",
            ConnectorKind::Http => "http",
            ConnectorKind::RabbitMq => "rabbit_mq",
        }
    }

    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                ValidationError::new(
                    "kind",
                    format!(
                        "`{s}` is not a kind; use one of {}",
                        Self::ALL.map(|k| k.as_str()).join(", ")
                    ),
                )
            })
    }

    /// What a connection string of this kind looks like, for the form's placeholder.
    pub fn connection_example(self) -> &'static str {
        match self {
            ConnectorKind::Postgres => "postgres://user@host:5432/database",
            ConnectorKind::Mysql => "mysql://user@host:3306/database",
            ConnectorKind::Sqlite => "sqlite:///path/to/file.db",
            ConnectorKind::SqlServer => "server=tcp:host,1433;user=sa;database=app",
            ConnectorKind::MongoDb => "mongodb://user@host:27017/database",
            ConnectorKind::Kafka => "broker1:9092,broker2:9092",
            ConnectorKind::S3 => "s3://bucket/prefix",
            ConnectorKind::Http => "https://api.example.com/v1 (the Password is the bearer token)",
            ConnectorKind::RabbitMq => "amqp://user@host:5672/%2f",
        }
    }

    /// The kind's options (`key = value` per line), for the form's placeholder.
    pub fn options_example(self) -> &'static str {
        match self {
            ConnectorKind::Postgres => "Postgres session settings, e.g.\nstatement_timeout = 60000",
            ConnectorKind::Sqlite => "SQLite pragmas, e.g.\nsynchronous = NORMAL",
            ConnectorKind::Http => "records_path = data.items\npagination = key | cursor | page\nafter_param = after  limit_param = limit\nschema = id bigint, name text\nuser = (basic auth)  max_retries = 5  paths = orders, users",
            ConnectorKind::Kafka => "librdkafka properties, e.g.\nsecurity.protocol = SASL_SSL\nsasl.mechanisms = PLAIN\nsasl.username = idra\nand Idra's: partitions = 0,1  schema = id bigint, name text  wait_ms = 10000",
            ConnectorKind::SqlServer => "none: SQL Server settings go in the connection string",
            ConnectorKind::MongoDb => "change_stream = true (follow the collection's changes)\nschema = _id text, name text\nwait_ms = 500\n(driver settings go in the URI's query)",
            ConnectorKind::S3 => "access_key_id = AKIA… (the Password is the secret key)\nendpoint = http://127.0.0.1:9000 (S3-compatible)\nformat = jsonl | csv | parquet  compression = gzip\nregion = us-east-1  schema = id bigint, name text",
            ConnectorKind::RabbitMq => "exchange = (destination; default exchange if empty)\nschema = id bigint, name text\nwait_ms = 200  prefetch = 2000  declare_queue = true",
            _ => "key = value, one per line",
        }
    }

    /// Option names whose values are secrets for this kind: encrypted at rest and never sent
    /// to a client. A password embedded in a connection string is moved to `password`.
    pub fn secret_fields(self) -> &'static [&'static str] {
        match self {
            ConnectorKind::S3 => &["password", "secret_access_key", "session_token"],
            ConnectorKind::Http => &["password", "token"],
            ConnectorKind::Kafka => &["password", "sasl_password", "ssl_key_password"],
            _ => &["password"],
        }
    }
}

/// A saved connection as any client may see it: no secret values, only which are set.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataSource {
    pub id: String,
    pub name: String,
    pub kind: ConnectorKind,
    /// Connection string with any password removed (it lives in the `password` secret).
    pub connection_string: String,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Names of the secrets that have a value; the values never leave the server.
    #[serde(default)]
    pub secrets_set: BTreeSet<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What to do with one secret when a data source is saved.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SecretInput {
    /// Keep the stored value (what the UI sends when the user left "••••" untouched).
    #[default]
    Keep,
    Set(String),
    Clear,
}

/// A data source as submitted by a user (create or edit).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataSourceInput {
    pub name: String,
    pub kind: ConnectorKind,
    pub connection_string: String,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretInput>,
}

impl DataSourceInput {
    /// Validates the input and moves a password typed into the connection string into the
    /// `password` secret, so the stored (and displayed) connection string never carries it.
    pub fn normalize(mut self) -> Result<Self, ValidationError> {
        validate_name("name", &self.name, 128)?;
        if self.connection_string.trim().is_empty() {
            return Err(ValidationError::new(
                "connection_string",
                format!("is required for a {} data source", self.kind.label()),
            ));
        }
        for name in self.secrets.keys() {
            if !self.kind.secret_fields().contains(&name.as_str()) {
                return Err(ValidationError::new(
                    format!("secrets.{name}"),
                    format!(
                        "is not a secret of a {} data source (known: {})",
                        self.kind.label(),
                        self.kind.secret_fields().join(", ")
                    ),
                ));
            }
        }
        for name in self.options.keys() {
            if self.kind.secret_fields().contains(&name.as_str()) {
                return Err(ValidationError::new(
                    format!("options.{name}"),
                    "is a secret: send it under `secrets` so it is encrypted",
                ));
            }
        }
        if let Some((without, password)) = split_password(&self.connection_string) {
            self.connection_string = without;
            self.secrets
                .insert("password".into(), SecretInput::Set(password));
        }
        Ok(self)
    }
}

/// Splits `scheme://user:password@host/...` into the string without the password and the
/// (percent-decoded) password. `None` when there is no URL password.
pub fn split_password(connection_string: &str) -> Option<(String, String)> {
    let mut url = url::Url::parse(connection_string).ok()?;
    let password = url.password()?.to_string();
    let decoded = percent_decode(&password);
    url.set_password(None).ok()?;
    Some((url.to_string(), decoded))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(cs: &str) -> DataSourceInput {
        DataSourceInput {
            name: "warehouse".into(),
            kind: ConnectorKind::Postgres,
            connection_string: cs.into(),
            options: BTreeMap::new(),
            secrets: BTreeMap::new(),
        }
    }

    #[test]
    fn kind_names_match_serde() {
        for k in ConnectorKind::ALL {
            assert_eq!(
                serde_json::to_string(&k).unwrap(),
                format!("\"{}\"", k.as_str())
            );
            assert_eq!(ConnectorKind::parse(k.as_str()).unwrap(), k);
        }
        assert_eq!(ConnectorKind::parse("oracle").unwrap_err().field, "kind");
    }

    #[test]
    fn password_moves_out_of_the_connection_string() {
        let n = input("postgres://app:s3cr%40t@db:5432/prod")
            .normalize()
            .unwrap();
        assert_eq!(n.connection_string, "postgres://app@db:5432/prod");
        assert_eq!(
            n.secrets.get("password"),
            Some(&SecretInput::Set("s3cr@t".into()))
        );
    }

    #[test]
    fn no_password_leaves_string_alone() {
        let n = input("postgres://app@db/prod").normalize().unwrap();
        assert_eq!(n.connection_string, "postgres://app@db/prod");
        assert!(n.secrets.is_empty());
    }

    #[test]
    fn secrets_in_options_are_refused() {
        let mut i = input("postgres://db/prod");
        i.options.insert("password".into(), "x".into());
        assert_eq!(i.normalize().unwrap_err().field, "options.password");
    }

    #[test]
    fn unknown_secret_names_the_field() {
        let mut i = input("postgres://db/prod");
        i.secrets
            .insert("token".into(), SecretInput::Set("x".into()));
        assert_eq!(i.normalize().unwrap_err().field, "secrets.token");
    }
}
