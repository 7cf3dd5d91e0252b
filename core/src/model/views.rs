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

impl ClusterView {
    /// How many syncs are assigned to `agent_id`.
    pub fn syncs_of(&self, agent_id: &str) -> usize {
        self.assignments
            .iter()
            .filter(|a| a.agent.as_deref() == Some(agent_id))
            .count()
    }

    pub fn is_leader(&self, agent_id: &str) -> bool {
        self.leader.as_deref() == Some(agent_id)
    }
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

/// One page of a list searched and paged on the server (fast with thousands of syncs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub rows: Vec<T>,
    /// Rows that matched the search, on every page.
    pub total: usize,
    pub page: usize,
    pub page_size: usize,
}

impl<T> Page<T> {
    /// How many pages the matching rows fill; at least one, so "Page 1 of 1" when empty.
    pub fn pages(&self) -> usize {
        self.total.div_ceil(self.page_size.max(1)).max(1)
    }
}

/// The Syncs page's list.
pub type SyncPage = Page<SyncRow>;
/// The Offsets page's list.
pub type OffsetPage = Page<OffsetRow>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_each_agents_syncs_and_names_the_leader() {
        let row = |sync: &str, agent: Option<&str>| AssignmentRow {
            sync_id: sync.into(),
            sync_name: sync.into(),
            agent: agent.map(String::from),
            generation: 1,
        };
        let view = ClusterView {
            agents: vec![],
            leader: Some("a".into()),
            generation: 1,
            assignments: vec![
                row("s1", Some("a")),
                row("s2", Some("b")),
                row("s3", Some("a")),
                row("s4", None),
            ],
        };
        assert_eq!(
            (view.syncs_of("a"), view.syncs_of("b"), view.syncs_of("c")),
            (2, 1, 0)
        );
        assert!(view.is_leader("a") && !view.is_leader("b"));
    }
}
