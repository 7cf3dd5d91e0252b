use std::fmt;

/// Whether trying again can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Network trouble, a restarting server, a lock timeout: back off and retry.
    Retryable,
    /// Bad configuration or data: stop the sync until the user fixes it.
    Fatal,
}

/// A connector failure, with a message that tells the user what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ConnectorError {
    pub fn fatal(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Fatal,
            message: message.into(),
        }
    }
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Retryable,
            message: message.into(),
        }
    }
    pub fn is_retryable(&self) -> bool {
        self.kind == ErrorKind::Retryable
    }
    /// Adds where it happened: "reading public.orders: …".
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

impl fmt::Display for ConnectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConnectorError {}

/// Classifies a sqlx error: connection-level trouble is retryable, except a refused login,
/// a missing database and SQL errors, which need the user.
pub fn from_sqlx(e: sqlx::Error, what: &str) -> ConnectorError {
    use sqlx::Error as E;
    match &e {
        E::Io(io) => ConnectorError::retryable(format!(
            "cannot reach {what}: {io}. Check the host and port in the connection string and that the server is running"
        )),
        E::PoolTimedOut => ConnectorError::retryable(format!(
            "cannot reach {what}: no connection could be opened in time. Check the host and port in the connection string and that the server is running"
        )),
        E::PoolClosed | E::WorkerCrashed => ConnectorError::retryable(format!("{what}: {e}")),
        E::Tls(t) => ConnectorError::fatal(format!("{what}: TLS failed: {t}")),
        E::Configuration(c) => ConnectorError::fatal(format!(
            "{what}: the connection string is not valid: {c}"
        )),
        E::Database(db) => {
            let code = db.code().map(|c| c.to_string()).unwrap_or_default();
            let msg = db.message();
            // Postgres: 28xxx auth, 3D000 no database, 42xxx syntax/undefined, 40001/40P01 retry.
            // MySQL: 1045 access denied, 1049 unknown db, 1146 no table, 1213 deadlock, 1205 lock wait.
            let retry = matches!(code.as_str(), "40001" | "40P01" | "55P03" | "57P01" | "1213" | "1205");
            let hint = match code.as_str() {
                "28P01" | "28000" | "1045" => " Check the user and password of the data source.",
                "3D000" | "1049" => " Check the database name in the connection string.",
                "42P01" | "1146" => " Check the table name (and schema) of the sync.",
                "42703" | "1054" => " Check the column names of the sync (key and timestamp columns).",
                _ => "",
            };
            let text = format!("{what}: {msg} (code {code}).{hint}");
            if retry {
                ConnectorError::retryable(text)
            } else {
                ConnectorError::fatal(text)
            }
        }
        _ => ConnectorError::fatal(format!("{what}: {e}")),
    }
}
