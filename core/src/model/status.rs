use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SyncState {
    #[default]
    Idle,
    Running,
    /// A retryable error; the agent backs off and tries again.
    Retrying,
    /// A fatal error; the sync waits for the user to fix its configuration.
    Failed,
    Paused,
}

/// `status/<sync-id>`, written by the agent running the sync.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SyncStatus {
    pub state: SyncState,
    #[serde(default)]
    pub agent: Option<String>,
    #[serde(default)]
    pub last_run: Option<DateTime<Utc>>,
    /// Rows copied since the sync was created.
    #[serde(default)]
    pub rows: u64,
    /// Rows per second over the last batch.
    #[serde(default)]
    pub rate: f64,
    /// Seconds between the newest source row and the newest copied row, when known.
    #[serde(default)]
    pub lag: Option<f64>,
    #[serde(default)]
    pub error: Option<String>,
    /// Duration of the last batch (destination write and offset commit), seconds.
    #[serde(default)]
    pub batch_seconds: Option<f64>,
}

/// One run of a sync: from start until caught up, stopped, or failed.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub sync_id: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    pub rows: u64,
    /// "ok", "retrying" or "failed".
    pub outcome: String,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub agent: Option<String>,
}
