use std::time::Duration;

use lapin::{Channel, Connection, ConnectionProperties};

use crate::connectors::types::Column;
use crate::connectors::{options, ConnectionSpec, ConnectorError};

pub const SECRET_FIELDS: &[&str] = &["password"];

const KNOWN_OPTIONS: &[&str] = &["exchange", "declare_queue", "schema", "wait_ms", "prefetch"];

#[derive(Clone)]
pub struct RabbitConfig {
    /// The AMQP URI without the password (shown in messages).
    pub display: String,
    uri: String,
    /// Destination: exchange to publish to; empty is the default exchange, where the sync's
    /// table is the queue name.
    pub exchange: String,
    /// Destination on the default exchange: declare the (durable) queue if missing.
    pub declare_queue: bool,
    pub schema: Option<Vec<Column>>,
    /// Source: how long to wait for another message before calling the queue drained.
    pub wait: Duration,
    /// Source: unacknowledged messages the broker may send ahead (0: twice the batch size).
    pub prefetch: u16,
}

impl RabbitConfig {
    pub fn from_spec(spec: &ConnectionSpec) -> Result<Self, ConnectorError> {
        options::only_known(spec, KNOWN_OPTIONS, "a RabbitMQ option")?;
        let mut url = url::Url::parse(spec.connection_string.trim()).map_err(|e| {
            ConnectorError::fatal(format!(
                "connection_string: not an AMQP URI ({e}); expected amqp://user@host:5672/%2f"
            ))
        })?;
        if !matches!(url.scheme(), "amqp" | "amqps") {
            return Err(ConnectorError::fatal(format!(
                "connection_string: scheme `{}` is not amqp or amqps",
                url.scheme()
            )));
        }
        let _ = url.set_password(None);
        let display = url.to_string();
        if let Some(p) = spec.secret("password") {
            let no_user = || {
                ConnectorError::fatal("connection_string: put a user in the URI (amqp://user@host/vhost) for the password to apply")
            };
            if url.username().is_empty() {
                return Err(no_user());
            }
            url.set_password(Some(p)).map_err(|_| no_user())?;
        }
        let declare_queue = options::flag(spec, "declare_queue", true)?;
        let prefetch: u64 = options::number(spec, "prefetch", 0)?;
        Ok(Self {
            display,
            uri: url.to_string(),
            exchange: spec.options.get("exchange").cloned().unwrap_or_default(),
            declare_queue,
            schema: options::schema(spec)?,
            wait: Duration::from_millis(options::number(spec, "wait_ms", 200)?),
            prefetch: u16::try_from(prefetch)
                .map_err(|_| options::error("prefetch", "must be at most 65535"))?,
        })
    }

    pub async fn connect(&self) -> Result<(Connection, Channel), ConnectorError> {
        let conn = Connection::connect(&self.uri, ConnectionProperties::default())
            .await
            .map_err(|e| amqp_error(e, &format!("connecting to {}", self.display)))?;
        let channel = conn
            .create_channel()
            .await
            .map_err(|e| amqp_error(e, "opening a channel"))?;
        Ok((conn, channel))
    }
}

/// Classifies a lapin error: a refused login or a missing queue/exchange needs the user;
/// network trouble is retried.
pub fn amqp_error(e: lapin::Error, what: &str) -> ConnectorError {
    let text = e.to_string();
    let refused =
        text.contains("ACCESS_REFUSED") || text.contains("access refused") || text.contains("403");
    match e.kind() {
        _ if refused => ConnectorError::fatal(format!(
            "{what}: RabbitMQ refused the credentials ({text}). Check the user in the connection string and the data source's password, and that the user may use the vhost"
        )),
        lapin::ErrorKind::ProtocolError(p) if text.contains("NOT_FOUND") => ConnectorError::fatal(format!(
            "{what}: {p}. Check the queue or exchange name (the sync's table, the `exchange` option) exists"
        )),
        lapin::ErrorKind::ProtocolError(_) => ConnectorError::fatal(format!("{what}: {text}")),
        lapin::ErrorKind::IOError(io)
            if matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::HostUnreachable
                    | std::io::ErrorKind::NetworkUnreachable
            ) =>
        {
            ConnectorError::retryable(format!(
                "{what}: {text}. Check the host and port and that RabbitMQ is running"
            ))
        }
        // RabbitMQ closes the socket right after a failed login: any other IO error while
        // connecting is usually that.
        lapin::ErrorKind::IOError(_) | lapin::ErrorKind::InvalidConnectionState(_) if what.starts_with("connecting") => {
            ConnectorError::fatal(format!(
                "{what}: {text}. Check the host and port, the user and the data source's password (RabbitMQ closes the connection on a wrong password)"
            ))
        }
        _ => ConnectorError::retryable(format!("{what}: {text}")),
    }
}
