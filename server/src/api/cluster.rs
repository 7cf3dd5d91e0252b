use axum::extract::State;
use axum::Json;
use idra_core::model::{AgentInfo, AssignmentRow, ClusterView};
use idra_core::service::Services;

use super::error::ErrorBody;
use super::{Actor, ApiError};

#[utoipa::path(get, path = "/agents", tag = "cluster", responses((status = 200, body = Vec<AgentInfo>), (status = 401, description = "not signed in", body = ErrorBody), (status = 403, description = "the role lacks the right", body = ErrorBody)))]
pub async fn agents(
    State(s): State<Services>,
    Actor(a): Actor,
) -> Result<Json<Vec<AgentInfo>>, ApiError> {
    Ok(Json(s.list_agents(&a).await?))
}

#[utoipa::path(get, path = "/assignments", tag = "cluster", responses((status = 200, body = Vec<AssignmentRow>), (status = 401, description = "not signed in", body = ErrorBody), (status = 403, description = "the role lacks the right", body = ErrorBody)))]
pub async fn assignments(
    State(s): State<Services>,
    Actor(a): Actor,
) -> Result<Json<Vec<AssignmentRow>>, ApiError> {
    Ok(Json(s.cluster_view(&a).await?.assignments))
}

#[utoipa::path(get, path = "/cluster", tag = "cluster", responses((status = 200, body = ClusterView), (status = 401, description = "not signed in", body = ErrorBody), (status = 403, description = "the role lacks the right", body = ErrorBody)))]
/// Agents, leader, generation and assignments in one answer.
pub async fn cluster(
    State(s): State<Services>,
    Actor(a): Actor,
) -> Result<Json<ClusterView>, ApiError> {
    Ok(Json(s.cluster_view(&a).await?))
}
