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
            ConnectorKind::Sqlite => "sqlite://shop.db (a file under Idra's --sqlite-dir)",
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
            ConnectorKind::Kafka => KAFKA_SECRET_FIELDS,
            _ => &["password"],
        }
    }

    /// Options that carry a secret under the system's own name (librdkafka's `sasl.password`,
    /// …), each with the secret it is moved to when a data source is saved, so it is sealed
    /// and never shown or exported. The connector sets the option from the secret again.
    pub fn secret_options(self) -> &'static [(&'static str, &'static str)] {
        match self {
            ConnectorKind::Kafka => &[
                ("sasl.password", "sasl_password"),
                ("ssl.key.password", "ssl_key_password"),
                ("ssl.keystore.password", "ssl_keystore_password"),
                ("ssl.truststore.password", "ssl_truststore_password"),
                ("ssl.key.pem", "ssl_key_pem"),
                (
                    "sasl.oauthbearer.client.secret",
                    "sasl_oauthbearer_client_secret",
                ),
            ],
            _ => &[],
        }
    }

    /// Whether option `name` decides where this kind's secrets are sent, or how: a saved
    /// secret is used only with the values these options had when it was saved (together
    /// with the kind and the connection string; see `secret::SecretTarget`).
    pub fn option_directs_secrets(self, name: &str) -> bool {
        match self {
            // Every librdkafka property can: brokers, protocols, mechanisms, endpoints.
            ConnectorKind::Kafka => !KAFKA_OWN_OPTIONS.contains(&name),
            // path_style decides whether the bucket goes in the host name.
            ConnectorKind::S3 => {
                matches!(name, "access_key_id" | "endpoint" | "region" | "path_style")
            }
            ConnectorKind::Http => matches!(name, "user" | "auth" | "health_path" | "paths"),
            // The others' options are settings applied after connecting.
            _ => false,
        }
    }
}

/// Kafka's secrets: `password` (or `sasl_password`) is `sasl.password`; the others are the
/// librdkafka properties [`ConnectorKind::secret_options`] names.
pub const KAFKA_SECRET_FIELDS: &[&str] = &[
    "password",
    "sasl_password",
    "ssl_key_password",
    "ssl_keystore_password",
    "ssl_truststore_password",
    "ssl_key_pem",
    "sasl_oauthbearer_client_secret",
];

/// Idra's own Kafka options; every other Kafka option is a librdkafka property (the agent
/// passes on only those on its allow-list, agent/src/connectors/kafka/config.rs).
pub const KAFKA_OWN_OPTIONS: &[&str] = &[
    "partitions",
    "schema",
    "wait_ms",
    "new_topic_partitions",
    "new_topic_replication",
];

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
        self.move_secret_options()?;
        for name in self.options.keys() {
            if self.kind.secret_fields().contains(&name.as_str()) || looks_secret(self.kind, name) {
                return Err(ValidationError::new(
                    format!("options.{name}"),
                    "is a secret: send it under `secrets` so it is encrypted",
                ));
            }
        }
        self.refuse_secrets_in_connection_string()?;
        if self.kind == ConnectorKind::SqlServer {
            if let Some((without, password)) = split_ado_password(&self.connection_string) {
                self.connection_string = without;
                self.secrets
                    .insert("password".into(), SecretInput::Set(password));
            }
        }
        let url_password = split_password(&self.connection_string)
            .or_else(|| split_authority_password(&self.connection_string));
        let had_url_password = url_password.is_some();
        if let Some((without, password)) = url_password {
            self.connection_string = without;
            self.secrets
                .insert("password".into(), SecretInput::Set(password));
        }
        let takes_password_param =
            matches!(self.kind, ConnectorKind::Postgres | ConnectorKind::Mysql);
        let param = split_password_param(&self.connection_string).filter(|_| takes_password_param);
        if let Some((without, password)) = param {
            if had_url_password {
                return Err(ValidationError::new(
                    "connection_string",
                    "gives a password twice (before the @ and as ?password=): keep one",
                ));
            }
            self.connection_string = without;
            self.secrets
                .insert("password".into(), SecretInput::Set(password));
        }
        Ok(self)
    }

    /// Credentials a connection string may carry that have no secret to move to: refused
    /// before anything is stored, naming where they go instead.
    fn refuse_secrets_in_connection_string(&self) -> Result<(), ValidationError> {
        let Ok(url) = url::Url::parse(&self.connection_string) else {
            return Ok(());
        };
        let found = url.query_pairs().find_map(|(k, v)| {
            let k = k.to_ascii_lowercase();
            let secret = match self.kind {
                ConnectorKind::Http => HTTP_CREDENTIAL_PARAMS.contains(&k.as_str()),
                ConnectorKind::MongoDb => {
                    k.contains("password") || v.to_ascii_uppercase().contains("AWS_SESSION_TOKEN")
                }
                _ => false,
            };
            secret.then_some(k)
        });
        match found {
            Some(k) => Err(ValidationError::new(
                "connection_string",
                format!(
                    "the query parameter `{k}` holds a credential, which would be stored and shown in clear: remove it and type the credential in the data source's password"
                ),
            )),
            None => Ok(()),
        }
    }

    /// Moves options that hold secrets under the system's own names into `secrets`.
    fn move_secret_options(&mut self) -> Result<(), ValidationError> {
        for (option, secret) in self.kind.secret_options() {
            if let Some(value) = self.options.remove(*option) {
                if matches!(self.secrets.get(*secret), Some(SecretInput::Set(_))) {
                    return Err(ValidationError::new(
                        format!("options.{option}"),
                        format!("gives the secret `{secret}` a second time: keep one"),
                    ));
                }
                self.secrets
                    .insert((*secret).to_string(), SecretInput::Set(value));
            }
        }
        Ok(())
    }
}

/// Query parameters of an HTTP API URL that look like credentials (they would be stored,
/// shown and logged in clear): the credential goes in the data source's password.
pub const HTTP_CREDENTIAL_PARAMS: &[&str] = &[
    "token",
    "access_token",
    "api_key",
    "apikey",
    "key",
    "password",
    "secret",
];

/// A librdkafka property Idra has no secret for but whose name says it holds one: refused
/// rather than stored in clear.
fn looks_secret(kind: ConnectorKind, name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    kind == ConnectorKind::Kafka
        && ["password", "secret", "passphrase", "private.key"]
            .iter()
            .any(|word| name.contains(word))
}

/// Splits the password out of `scheme://user:password@host1,host2/...` when the string is
/// no URL the `url` crate accepts (MongoDB's lists of hosts): the userinfo is what comes
/// before the authority's last `@`.
fn split_authority_password(connection_string: &str) -> Option<(String, String)> {
    let (scheme, rest) = connection_string.split_once("://")?;
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let (userinfo, hosts) = authority.rsplit_once('@')?;
    let (user, password) = userinfo.split_once(':')?;
    Some((
        format!("{scheme}://{user}@{hosts}{tail}"),
        percent_decode(password),
    ))
}

/// Splits `Password=…` / `Pwd=…` out of a SQL Server (ADO) connection string. Values may be
/// wrapped in `{…}` (with `}}` for a brace) or quotes, and then hold `;`.
pub fn split_ado_password(connection_string: &str) -> Option<(String, String)> {
    let mut kept = Vec::new();
    let mut password = None;
    for part in ado_parts(connection_string) {
        let (key, value) = part.split_once('=').unwrap_or((part.as_str(), ""));
        if matches!(key.trim().to_ascii_lowercase().as_str(), "password" | "pwd") {
            password = Some(ado_unquote(value.trim()));
        } else {
            kept.push(part);
        }
    }
    password.map(|p| (kept.join(";"), p))
}

/// The `;`-separated parts of an ADO string, keeping `;` inside `{…}` and quotes.
fn ado_parts(s: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut closer: Option<char> = None;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match closer {
            Some(end) if c == end => {
                // `}}` (or a doubled quote) is the character itself, not the end.
                if chars.peek() == Some(&end) {
                    current.push(c);
                    current.push(chars.next().unwrap());
                    continue;
                }
                closer = None;
            }
            Some(_) => {}
            None if c == ';' => {
                if !current.trim().is_empty() {
                    parts.push(std::mem::take(&mut current));
                }
                continue;
            }
            None => {
                let starts_value = current.trim_end().ends_with('=');
                closer = match c {
                    '{' if starts_value => Some('}'),
                    '"' | '\'' if starts_value => Some(c),
                    _ => None,
                };
            }
        }
        current.push(c);
    }
    if !current.trim().is_empty() {
        parts.push(current);
    }
    parts
}

fn ado_unquote(value: &str) -> String {
    let inner = |open: char, close: char| {
        value
            .strip_prefix(open)
            .and_then(|v| v.strip_suffix(close))
            .map(|v| v.replace(&format!("{close}{close}"), &close.to_string()))
    };
    inner('{', '}')
        .or_else(|| inner('"', '"'))
        .or_else(|| inner('\'', '\''))
        .unwrap_or_else(|| value.to_string())
}

/// Splits a `?password=` query parameter (Postgres and MySQL URLs accept one) out of a URL
/// connection string. `None` when there is none or the string is not a URL.
pub fn split_password_param(connection_string: &str) -> Option<(String, String)> {
    let mut url = url::Url::parse(connection_string).ok()?;
    let is_password = |k: &str| k.eq_ignore_ascii_case("password");
    let password = url
        .query_pairs()
        .find(|(k, _)| is_password(k))
        .map(|(_, v)| v.into_owned())?;
    let rest: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !is_password(k))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if rest.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(rest);
    }
    Some((url.to_string(), password))
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
    fn password_query_parameter_moves_out_of_the_connection_string() {
        let n = input("postgres://app@db/prod?sslmode=require&password=s%26cret")
            .normalize()
            .unwrap();
        assert_eq!(
            n.connection_string,
            "postgres://app@db/prod?sslmode=require"
        );
        assert_eq!(
            n.secrets.get("password"),
            Some(&SecretInput::Set("s&cret".into()))
        );
        let err = input("postgres://app:one@db/prod?password=two")
            .normalize()
            .unwrap_err();
        assert_eq!(err.field, "connection_string");
    }

    #[test]
    fn kafka_secret_properties_move_into_secrets() {
        let mut i = input("broker:9092");
        i.kind = ConnectorKind::Kafka;
        i.options.insert("sasl.password".into(), "kafka-pw".into());
        i.options
            .insert("sasl.oauthbearer.client.secret".into(), "oauth".into());
        i.options
            .insert("security.protocol".into(), "SASL_SSL".into());
        let n = i.normalize().unwrap();
        assert_eq!(n.options.keys().collect::<Vec<_>>(), ["security.protocol"]);
        assert_eq!(
            n.secrets.get("sasl_password"),
            Some(&SecretInput::Set("kafka-pw".into()))
        );
        assert_eq!(
            n.secrets.get("sasl_oauthbearer_client_secret"),
            Some(&SecretInput::Set("oauth".into()))
        );
    }

    fn input_of(kind: ConnectorKind, cs: &str) -> DataSourceInput {
        DataSourceInput { kind, ..input(cs) }
    }

    #[test]
    fn a_sql_server_password_moves_out_of_the_connection_string() {
        let n = input_of(
            ConnectorKind::SqlServer,
            "server=tcp:db,1433;user=sa;Password={p;w}}d};database=app",
        )
        .normalize()
        .unwrap();
        assert_eq!(
            n.connection_string,
            "server=tcp:db,1433;user=sa;database=app"
        );
        assert_eq!(
            n.secrets.get("password"),
            Some(&SecretInput::Set("p;w}d".into()))
        );
        let n = input_of(ConnectorKind::SqlServer, "server=tcp:db;PWD=plain;user=sa")
            .normalize()
            .unwrap();
        assert_eq!(n.connection_string, "server=tcp:db;user=sa");
        assert_eq!(
            n.secrets.get("password"),
            Some(&SecretInput::Set("plain".into()))
        );
    }

    #[test]
    fn a_password_in_a_list_of_hosts_moves_out() {
        let n = input_of(
            ConnectorKind::MongoDb,
            "mongodb://app:s%40cret@h1:27017,h2:27017/shop?replicaSet=rs0",
        )
        .normalize()
        .unwrap();
        assert_eq!(
            n.connection_string,
            "mongodb://app@h1:27017,h2:27017/shop?replicaSet=rs0"
        );
        assert_eq!(
            n.secrets.get("password"),
            Some(&SecretInput::Set("s@cret".into()))
        );
    }

    #[test]
    fn credentials_in_query_parameters_are_refused_before_they_are_stored() {
        for (kind, cs) in [
            (ConnectorKind::Http, "https://api.example.com/v1?api_key=K"),
            (
                ConnectorKind::MongoDb,
                "mongodb://db/shop?tlsCertificateKeyFilePassword=x",
            ),
            (
                ConnectorKind::MongoDb,
                "mongodb://db/shop?authMechanismProperties=AWS_SESSION_TOKEN:t",
            ),
        ] {
            let err = input_of(kind, cs).normalize().unwrap_err();
            assert_eq!(err.field, "connection_string", "{cs}");
        }
    }

    #[test]
    fn kafka_properties_that_look_secret_are_refused() {
        let mut i = input("broker:9092");
        i.kind = ConnectorKind::Kafka;
        i.options.insert("ssl.engine.password".into(), "x".into());
        assert_eq!(
            i.normalize().unwrap_err().field,
            "options.ssl.engine.password"
        );
    }

    #[test]
    fn unknown_secret_names_the_field() {
        let mut i = input("postgres://db/prod");
        i.secrets
            .insert("token".into(), SecretInput::Set("x".into()));
        assert_eq!(i.normalize().unwrap_err().field, "secrets.token");
    }
}
