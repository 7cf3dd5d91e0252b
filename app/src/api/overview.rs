use idra_core::model::{
    AgentInfo, ClusterView, Counts, DataSource, MemberHealth, OffsetPage, SyncConfig,
};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::{JsonAnswer, UiError};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverviewData {
    pub backend: String,
    pub members: Vec<MemberHealth>,
    pub counts: Counts,
}

#[server(endpoint = "overview", output = JsonAnswer)]
pub async fn overview() -> Result<OverviewData, UiError> {
    use super::server;
    let actor = server::actor().await?;
    let services = server::services()?;
    Ok(OverviewData {
        backend: services.store.backend().to_string(),
        members: services.store_health(&actor).await?,
        counts: services.counts(&actor).await?,
    })
}

#[server(endpoint = "syncs/list", output = JsonAnswer)]
pub async fn list_syncs() -> Result<Vec<SyncConfig>, UiError> {
    use super::server;
    let actor = server::actor().await?;
    Ok(server::services()?.list_syncs(&actor).await?)
}

#[server(endpoint = "datasources/list", output = JsonAnswer)]
pub async fn list_datasources() -> Result<Vec<DataSource>, UiError> {
    use super::server;
    let actor = server::actor().await?;
    Ok(server::services()?.list_datasources(&actor).await?)
}

/// The Offsets page's list: as many rows per page as the Syncs page.
#[server(endpoint = "offsets/page", output = JsonAnswer)]
pub async fn list_offset_page(search: String, page: usize) -> Result<OffsetPage, UiError> {
    use super::server;
    let actor = server::actor().await?;
    Ok(server::services()?
        .offset_page(&actor, &search, page, super::PAGE_SIZE)
        .await?)
}

#[server(endpoint = "agents/list", output = JsonAnswer)]
pub async fn list_agents() -> Result<Vec<AgentInfo>, UiError> {
    use super::server;
    let actor = server::actor().await?;
    Ok(server::services()?.list_agents(&actor).await?)
}

#[server(endpoint = "cluster", output = JsonAnswer)]
pub async fn cluster_status() -> Result<ClusterView, UiError> {
    use super::server;
    let actor = server::actor().await?;
    Ok(server::services()?.cluster_view(&actor).await?)
}

/// An agent on the dashboard: what it is and how many syncs it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentLoad {
    pub agent: AgentInfo,
    pub leader: bool,
    pub syncs: usize,
}

/// The dashboard's agents table. Counted on the server: the full assignment list (one row
/// per sync) would otherwise travel in every dashboard page, 100 KB of it with 1,000 syncs.
#[server(endpoint = "agents/load", output = JsonAnswer)]
pub async fn agent_loads() -> Result<Vec<AgentLoad>, UiError> {
    use super::server;
    let actor = server::actor().await?;
    let view = server::services()?.cluster_view(&actor).await?;
    Ok(view
        .agents
        .iter()
        .map(|agent| AgentLoad {
            leader: view.is_leader(&agent.id),
            syncs: view.syncs_of(&agent.id),
            agent: agent.clone(),
        })
        .collect())
}

/// Sets a paused sync's offset by hand. `expected` is the cursor (JSON) the user saw:
/// if it changed meanwhile the edit is refused. `confirmed` must acknowledge the effect.
#[server(endpoint = "offsets/set", output = JsonAnswer)]
pub async fn set_offset(
    sync_id: String,
    expected: String,
    cursor: String,
    confirmed: bool,
) -> Result<(), UiError> {
    use super::server;
    use idra_core::model::{Cursor, ValidationError};
    use idra_core::service::ServiceError;
    let actor = server::actor().await?;
    if !confirmed {
        return Err(ServiceError::from(ValidationError::new(
            "confirm",
            "tick the box to confirm you understand which rows will be copied or skipped",
        ))
        .into());
    }
    let expected: Option<Cursor> = if expected.trim().is_empty() || expected.trim() == "null" {
        None
    } else {
        Some(
            serde_json::from_str(&expected)
                .map_err(|e| UiError::new(format!("the offset you saw cannot be read: {e}")))?,
        )
    };
    let cursor: Cursor = serde_json::from_str(&cursor).map_err(|e| {
        ServiceError::from(ValidationError::new(
            "cursor",
            format!("not a cursor ({e}); e.g. {{\"kind\": \"id\", \"last_id\": 1000}}"),
        ))
    })?;
    server::services()?
        .set_sync_offset(&actor, &sync_id, expected, cursor)
        .await?;
    Ok(())
}

#[server(endpoint = "offsets/history", output = JsonAnswer)]
pub async fn offset_history(
    sync_id: String,
) -> Result<Vec<idra_core::model::OffsetChange>, UiError> {
    use super::server;
    let actor = server::actor().await?;
    Ok(server::services()?.offset_changes(&actor, &sync_id).await?)
}

#[server(endpoint = "syncs/runs", output = JsonAnswer)]
pub async fn sync_runs(sync_id: String) -> Result<Vec<idra_core::model::RunRecord>, UiError> {
    use super::server;
    let actor = server::actor().await?;
    Ok(server::services()?.sync_runs(&actor, &sync_id).await?)
}

pub const ERRORS_PER_PAGE: usize = 25;

#[server(endpoint = "errors/page", output = JsonAnswer)]
pub async fn errors_page(
    page: usize,
) -> Result<(Vec<idra_core::model::RunRecord>, usize), UiError> {
    use super::server;
    let actor = server::actor().await?;
    Ok(server::services()?
        .errors_page(&actor, page, ERRORS_PER_PAGE)
        .await?)
}
