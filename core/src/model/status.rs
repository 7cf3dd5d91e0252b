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

/// How a run ended. Stored as "ok", "retrying" or "failed", as the string it replaced.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// Caught up, or stopped between batches with everything committed.
    Ok,
    /// A retryable error (a database restarting, a network timeout): the agent backs off
    /// and runs again.
    Retrying,
    /// A fatal error: the sync waits until its configuration or source is fixed.
    Failed,
}

impl RunOutcome {
    pub fn label(self) -> &'static str {
        match self {
            RunOutcome::Ok => "ok",
            RunOutcome::Retrying => "retrying",
            RunOutcome::Failed => "failed",
        }
    }
}

impl std::fmt::Display for RunOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// One run of a sync: from start until caught up, stopped, or failed.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub sync_id: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    pub rows: u64,
    pub outcome: RunOutcome,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub agent: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_outcomes_read_the_strings_stored_before_the_enum() {
        for (text, outcome) in [
            ("ok", RunOutcome::Ok),
            ("retrying", RunOutcome::Retrying),
            ("failed", RunOutcome::Failed),
        ] {
            let json = format!("\"{text}\"");
            assert_eq!(serde_json::from_str::<RunOutcome>(&json).unwrap(), outcome);
            assert_eq!(serde_json::to_string(&outcome).unwrap(), json);
        }
    }
}
