use axum::extract::State;
use axum::Json;
use idra_core::model::{AgentInfo, AssignmentRow, ClusterView};
use idra_core::service::Services;

use super::{Actor, ApiError};

pub async fn agents(
    State(s): State<Services>,
    Actor(a): Actor,
) -> Result<Json<Vec<AgentInfo>>, ApiError> {
    Ok(Json(s.list_agents(&a).await?))
}

pub async fn assignments(
    State(s): State<Services>,
    Actor(a): Actor,
) -> Result<Json<Vec<AssignmentRow>>, ApiError> {
    Ok(Json(s.cluster_view(&a).await?.assignments))
}

/// Agents, leader, generation and assignments in one answer.
pub async fn cluster(
    State(s): State<Services>,
    Actor(a): Actor,
) -> Result<Json<ClusterView>, ApiError> {
    Ok(Json(s.cluster_view(&a).await?))
}
