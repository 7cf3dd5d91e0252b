use idra_core::model::{
    AgentInfo, ClusterView, Counts, DataSource, MemberHealth, OffsetRow, SyncConfig,
};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::UiError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverviewData {
    pub backend: String,
    pub members: Vec<MemberHealth>,
    pub counts: Counts,
}

#[server(endpoint = "overview")]
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

#[server(endpoint = "syncs/list")]
pub async fn list_syncs() -> Result<Vec<SyncConfig>, UiError> {
    use super::server;
    let actor = server::actor().await?;
    Ok(server::services()?.list_syncs(&actor).await?)
}

#[server(endpoint = "datasources/list")]
pub async fn list_datasources() -> Result<Vec<DataSource>, UiError> {
    use super::server;
    let actor = server::actor().await?;
    Ok(server::services()?.list_datasources(&actor).await?)
}

#[server(endpoint = "offsets/list")]
pub async fn list_offsets() -> Result<Vec<OffsetRow>, UiError> {
    use super::server;
    let actor = server::actor().await?;
    Ok(server::services()?.list_offsets(&actor).await?)
}

#[server(endpoint = "agents/list")]
pub async fn list_agents() -> Result<Vec<AgentInfo>, UiError> {
    use super::server;
    let actor = server::actor().await?;
    Ok(server::services()?.list_agents(&actor).await?)
}

#[server(endpoint = "cluster")]
pub async fn cluster_status() -> Result<ClusterView, UiError> {
    use super::server;
    let actor = server::actor().await?;
    Ok(server::services()?.cluster_view(&actor).await?)
}
