use std::path::PathBuf;

/// Everything that can go wrong talking to a store. Messages say what to check.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot reach etcd at {endpoints}: {message}. Check that etcd is running there and that the address, TLS and credentials flags are right")]
    Unavailable { endpoints: String, message: String },

    #[error("etcd refused the request: {0}")]
    Rejected(String),

    #[error(
        "history before revision {revision} has been compacted; watch again from a newer revision"
    )]
    Compacted { revision: i64 },

    #[error("the watch fell behind and was cancelled; watch again from the last revision seen")]
    WatchLagged,

    #[error("lease {0:x} has expired or was revoked")]
    LeaseNotFound(i64),

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("store data in {path} is damaged: {message}. Restore it from a backup or move it aside to start empty")]
    Corrupt { path: PathBuf, message: String },

    #[error("{path} is in use by another Idra process; stop it or pass a different --data-dir")]
    InUse { path: PathBuf },

    #[error("value under {key} is not valid: {message}")]
    Codec { key: String, message: String },
}

impl StoreError {
    /// True for failures that may pass by themselves (network, leader change).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable { .. } | StoreError::WatchLagged
        )
    }
}
