use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What an agent writes under `agents/<id>` on its lease: the key vanishes when it dies.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentInfo {
    /// Unique per process (host, pid and a random suffix), never the machine id.
    pub id: String,
    pub host: String,
    #[serde(default)]
    pub address: String,
    pub version: String,
    pub started_at: DateTime<Utc>,
}

/// `assignments/<sync-id>`: which agent runs a sync, and under which leader generation.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    pub sync_id: String,
    pub agent: String,
    pub generation: u64,
}
