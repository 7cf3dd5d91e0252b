use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use idra_core::model::{DataSource, DataSourceInput, TableView};
use idra_core::service::Services;
use serde::Serialize;

use super::error::ErrorBody;
use super::json::ApiJson;
use super::{Actor, ApiError};

#[utoipa::path(get, path = "/datasources", tag = "datasources", responses((status = 200, body = Vec<DataSource>), (status = 401, description = "not signed in", body = ErrorBody), (status = 403, description = "the role lacks the right", body = ErrorBody)))]
pub async fn list(
    State(s): State<Services>,
    Actor(a): Actor,
) -> Result<Json<Vec<DataSource>>, ApiError> {
    Ok(Json(s.list_datasources(&a).await?))
}

#[utoipa::path(post, path = "/datasources", tag = "datasources", request_body = DataSourceInput, responses((status = 201, body = DataSource), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody), (status = 401, description = "not signed in", body = ErrorBody), (status = 403, description = "the role lacks the right", body = ErrorBody)))]
pub async fn create(
    State(s): State<Services>,
    Actor(a): Actor,
    ApiJson(input): ApiJson<DataSourceInput>,
) -> Result<(StatusCode, Json<DataSource>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.create_datasource(&a, input).await?),
    ))
}

#[utoipa::path(get, path = "/datasources/{id}", tag = "datasources", params(("id" = String, Path, description = "the id")), responses((status = 200, body = DataSource), (status = 404, body = ErrorBody), (status = 401, description = "not signed in", body = ErrorBody), (status = 403, description = "the role lacks the right", body = ErrorBody)))]
pub async fn get(
    State(s): State<Services>,
    Actor(a): Actor,
    Path(id): Path<String>,
) -> Result<Json<DataSource>, ApiError> {
    Ok(Json(s.datasource(&a, &id).await?))
}

#[utoipa::path(put, path = "/datasources/{id}", tag = "datasources", params(("id" = String, Path, description = "the id")), request_body = DataSourceInput, responses((status = 200, body = DataSource), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 401, description = "not signed in", body = ErrorBody), (status = 403, description = "the role lacks the right", body = ErrorBody)))]
pub async fn update(
    State(s): State<Services>,
    Actor(a): Actor,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<DataSourceInput>,
) -> Result<Json<DataSource>, ApiError> {
    Ok(Json(s.update_datasource(&a, &id, input).await?))
}

#[utoipa::path(delete, path = "/datasources/{id}", tag = "datasources", params(("id" = String, Path, description = "the id")), responses((status = 204, description = "deleted"), (status = 404, body = ErrorBody), (status = 409, description = "used by syncs, which are named", body = ErrorBody), (status = 401, description = "not signed in", body = ErrorBody), (status = 403, description = "the role lacks the right", body = ErrorBody)))]
pub async fn delete(
    State(s): State<Services>,
    Actor(a): Actor,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.delete_datasource(&a, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/datasources/{id}/test", tag = "datasources", params(("id" = String, Path, description = "the id")), responses((status = 200, body = TestResult), (status = 422, description = "the connector's error", body = ErrorBody), (status = 404, body = ErrorBody), (status = 401, description = "not signed in", body = ErrorBody), (status = 403, description = "the role lacks the right", body = ErrorBody)))]
/// Runs the connector's own check (connect and a trivial query).
pub async fn test(
    State(s): State<Services>,
    Actor(a): Actor,
    Path(id): Path<String>,
) -> Result<Json<TestResult>, ApiError> {
    match s.test_datasource(&a, &id).await? {
        Ok(()) => Ok(Json(TestResult { ok: true })),
        Err(message) => Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message)),
    }
}

/// A passed check (a failed one is an error answer carrying the connector's message).
#[derive(Serialize, utoipa::ToSchema)]
pub struct TestResult {
    ok: bool,
}

/// Tables and their columns, for the sync editor.
#[utoipa::path(get, path = "/datasources/{id}/discover", tag = "datasources", params(("id" = String, Path, description = "the id")), responses((status = 200, body = Vec<TableView>), (status = 422, description = "the connector's error", body = ErrorBody), (status = 404, body = ErrorBody), (status = 401, description = "not signed in", body = ErrorBody), (status = 403, description = "the role lacks the right", body = ErrorBody)))]
pub async fn discover(
    State(s): State<Services>,
    Actor(a): Actor,
    Path(id): Path<String>,
) -> Result<Json<Vec<TableView>>, ApiError> {
    match s.discover_datasource(&a, &id).await? {
        Ok(tables) => Ok(Json(tables)),
        Err(message) => Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message)),
    }
}
