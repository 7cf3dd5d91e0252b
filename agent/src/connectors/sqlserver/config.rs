use tiberius::{AuthMethod, Client, Config, EncryptionLevel};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

use crate::connectors::{options, ConnectionSpec, ConnectorError};

pub const SECRET_FIELDS: &[&str] = &["password"];

pub type Connection = Client<Compat<TcpStream>>;

#[derive(Clone)]
pub struct SqlServerConfig {
    config: Config,
    /// Host and port, for messages.
    pub display: String,
}

/// The `user` of an ADO.NET connection string (`user id`, `uid` or `user`).
fn ado_user(cs: &str) -> Option<String> {
    cs.split(';').find_map(|part| {
        let (k, v) = part.split_once('=')?;
        matches!(
            k.trim().to_ascii_lowercase().as_str(),
            "user id" | "uid" | "user" | "username"
        )
        .then(|| v.trim().trim_matches(|c| c == '\'' || c == '"').to_string())
    })
}

impl SqlServerConfig {
    /// An ADO.NET connection string, e.g. `server=tcp:db,1433;user=sa;database=app`; the
    /// password comes from the data source's secret, never the string.
    pub fn from_spec(spec: &ConnectionSpec) -> Result<Self, ConnectorError> {
        let cs = spec.connection_string.trim();
        if cs
            .to_ascii_lowercase()
            .split(';')
            .any(|p| p.trim_start().starts_with("password") || p.trim_start().starts_with("pwd"))
        {
            return Err(ConnectorError::fatal(
                "connection_string: remove the password from it and type it in the data source's Password",
            ));
        }
        options::only_known(
            spec,
            &[],
            "an option SQL Server data sources take (they take none: settings go in the connection string, e.g. ;ApplicationIntent=ReadOnly)",
        )?;
        let mut config = Config::from_ado_string(cs).map_err(|e| {
            ConnectorError::fatal(format!(
                "connection_string: {e}; expected e.g. server=tcp:host,1433;user=sa;database=app"
            ))
        })?;
        if let (Some(user), Some(password)) = (ado_user(cs), spec.secret("password")) {
            config.authentication(AuthMethod::sql_server(user, password));
        }
        // This build has no TLS for TDS: the server must accept unencrypted connections.
        config.encryption(EncryptionLevel::NotSupported);
        let display = config.get_addr();
        Ok(Self { config, display })
    }

    pub async fn connect(&self) -> Result<Connection, ConnectorError> {
        let tcp = TcpStream::connect(self.config.get_addr()).await.map_err(|e| {
            ConnectorError::retryable(format!(
                "cannot reach SQL Server at {}: {e}. Check the server in the connection string and that it is up",
                self.display
            ))
        })?;
        tcp.set_nodelay(true).ok();
        Client::connect(self.config.clone(), tcp.compat_write())
            .await
            .map_err(|e| tds_error(e, &format!("connecting to {}", self.display)))
    }
}

/// Classifies a tiberius error: logins, missing objects and bad SQL need the user;
/// network trouble and deadlocks are retried.
pub fn tds_error(e: tiberius::error::Error, what: &str) -> ConnectorError {
    use tiberius::error::Error as E;
    match &e {
        E::Io { .. } => ConnectorError::retryable(format!("{what}: {e}")),
        E::Server(t) => {
            let code = t.code();
            let hint = match code {
                18456 | 18452 => {
                    " Check the user in the connection string and the data source's password."
                }
                4060 => " Check the database in the connection string.",
                208 => " Check the table name (and schema) of the sync.",
                207 => " Check the column names of the sync (key and timestamp columns).",
                _ => "",
            };
            let text = format!("{what}: {} (error {code}).{hint}", t.message());
            // 1205 deadlock victim, 1222 lock timeout, 40613/40501 Azure busy.
            if matches!(code, 1205 | 1222 | 40613 | 40501 | 49918) {
                ConnectorError::retryable(text)
            } else {
                ConnectorError::fatal(text)
            }
        }
        _ => ConnectorError::fatal(format!("{what}: {e}")),
    }
}
