use std::time::Duration;

use mongodb::error::{Error as MongoError, ErrorKind};
use mongodb::options::ClientOptions;
use mongodb::Client;

use crate::connectors::types::Column;
use crate::connectors::{options, ConnectionSpec, ConnectorError};

pub const SECRET_FIELDS: &[&str] = &["password"];

const KNOWN_OPTIONS: &[&str] = &["change_stream", "schema", "wait_ms"];

#[derive(Clone)]
pub struct MongoConfig {
    uri: String,
    /// The URI without its password, for messages.
    pub display: String,
    pub database: String,
    /// Source: follow the collection's change stream instead of querying it.
    pub change_stream: bool,
    pub schema: Option<Vec<Column>>,
    /// Change streams: how long to wait for one more event before a batch is complete.
    pub wait: Duration,
}

impl MongoConfig {
    pub fn from_spec(spec: &ConnectionSpec) -> Result<Self, ConnectorError> {
        options::only_known(
            spec,
            KNOWN_OPTIONS,
            "a MongoDB option (driver settings go in the URI's query)",
        )?;
        let mut url = url::Url::parse(spec.connection_string.trim()).map_err(|e| {
            ConnectorError::fatal(format!(
                "connection_string: not a MongoDB URI ({e}); expected mongodb://user@host:27017/database"
            ))
        })?;
        if !matches!(url.scheme(), "mongodb" | "mongodb+srv") {
            return Err(ConnectorError::fatal(format!(
                "connection_string: scheme `{}` is not mongodb or mongodb+srv",
                url.scheme()
            )));
        }
        let database = url.path().trim_matches('/').to_string();
        if database.is_empty() {
            return Err(ConnectorError::fatal(
                "connection_string: name the database in the path, e.g. mongodb://host:27017/shop",
            ));
        }
        let _ = url.set_password(None);
        let display = url.to_string();
        if let Some(p) = spec.secret("password") {
            if url.username().is_empty() {
                return Err(ConnectorError::fatal(
                    "connection_string: put the user in the URI (mongodb://user@host/db) for the password to apply",
                ));
            }
            url.set_password(Some(p))
                .map_err(|_| ConnectorError::fatal("connection_string: cannot hold a password"))?;
        }
        let change_stream = options::flag(spec, "change_stream", false)?;
        let wait: u64 = options::number(spec, "wait_ms", 500)?;
        Ok(Self {
            uri: url.to_string(),
            display,
            database,
            change_stream,
            schema: options::schema(spec)?,
            wait: Duration::from_millis(wait),
        })
    }

    pub async fn client(&self) -> Result<Client, ConnectorError> {
        let mut options = ClientOptions::parse(&self.uri)
            .await
            .map_err(|e| mongo_error(e, &format!("reading the URI {}", self.display)))?;
        options.app_name = Some("idra".into());
        if options.server_selection_timeout.is_none() {
            options.server_selection_timeout = Some(Duration::from_secs(10));
        }
        Client::with_options(options).map_err(|e| mongo_error(e, "creating the client"))
    }
}

/// Classifies a driver error: refused logins, bad URIs and rejected documents need the
/// user; unreachable servers and transient errors are retried.
pub fn mongo_error(e: MongoError, what: &str) -> ConnectorError {
    let text = e.to_string();
    let auth = matches!(*e.kind, ErrorKind::Authentication { .. })
        || matches!(&*e.kind, ErrorKind::Command(c) if matches!(c.code, 13 | 18))
        || text.contains("AuthenticationFailed")
        || text.contains("authentication failed");
    if auth {
        return ConnectorError::fatal(format!(
            "{what}: MongoDB refused the credentials ({text}). Check the user in the URI, the data source's password and authSource"
        ));
    }
    match &*e.kind {
        ErrorKind::InvalidArgument { .. } => ConnectorError::fatal(format!("{what}: {text}")),
        ErrorKind::Write(_) | ErrorKind::InsertMany(_) | ErrorKind::BulkWrite(_) if text.contains("E11000") => {
            ConnectorError::fatal(format!(
                "{what}: {text}. A document with this key already exists: use write mode upsert, or fix the key columns"
            ))
        }
        ErrorKind::ServerSelection { .. } | ErrorKind::Io(_) | ErrorKind::ConnectionPoolCleared { .. } => {
            ConnectorError::retryable(format!(
                "{what}: cannot reach MongoDB ({text}). Check the hosts in the URI and that the server is up"
            ))
        }
        _ if e.contains_label(mongodb::error::RETRYABLE_WRITE_ERROR) => ConnectorError::retryable(format!("{what}: {text}")),
        _ => ConnectorError::fatal(format!("{what}: {text}")),
    }
}
