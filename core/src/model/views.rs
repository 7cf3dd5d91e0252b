//! Read-only shapes the dashboard and list pages show; shared by server and browser.

use serde::{Deserialize, Serialize};

use super::{AgentInfo, Offset, SyncConfig, SyncStatus};

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub syncs: usize,
    pub datasources: usize,
    pub agents: usize,
    pub assignments: usize,
    pub errors: usize,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OffsetRow {
    pub sync_id: String,
    pub sync_name: String,
    pub offset: Option<Offset>,
    /// Offsets can be edited only while the sync is paused.
    #[serde(default)]
    pub enabled: bool,
}

/// One member of the store: the embedded file, or an etcd member.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberHealth {
    pub name: String,
    pub healthy: bool,
    pub detail: String,
}

/// The cluster as the Agents page shows it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterView {
    pub agents: Vec<AgentInfo>,
    /// The elected leader's agent id.
    pub leader: Option<String>,
    /// Generation of the newest assignments.
    pub generation: u64,
    pub assignments: Vec<AssignmentRow>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignmentRow {
    pub sync_id: String,
    pub sync_name: String,
    /// None: enabled but not assigned yet (no agent alive, or the leader has not run).
    pub agent: Option<String>,
    pub generation: u64,
}

/// A data source as the sync editor lists it: enough to pick one. (The full `DataSource`
/// would make the editor's wasm carry its decoder, maps, sets and dates too.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataSourceChoice {
    pub id: String,
    pub name: String,
}

/// A table a data source offers, for the sync editor.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableView {
    pub name: String,
    pub columns: Vec<ColumnView>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnView {
    pub name: String,
    /// Idra's type name (int64, text, decimal(12,2), …).
    pub ty: String,
    pub nullable: bool,
}

/// One row of the Syncs page.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncRow {
    pub sync: SyncConfig,
    pub source_name: String,
    pub destination_name: String,
    pub status: SyncStatus,
}

/// A page of syncs, searched and paged on the server (fast with thousands of syncs).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncPage {
    pub rows: Vec<SyncRow>,
    pub total: usize,
    pub page: usize,
    pub page_size: usize,
}
