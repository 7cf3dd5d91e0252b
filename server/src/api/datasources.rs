use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use idra_core::model::{DataSource, DataSourceInput, TableView};
use idra_core::service::Services;
use serde_json::{json, Value};

use super::json::ApiJson;
use super::{Actor, ApiError};

pub async fn list(
    State(s): State<Services>,
    Actor(a): Actor,
) -> Result<Json<Vec<DataSource>>, ApiError> {
    Ok(Json(s.list_datasources(&a).await?))
}

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

pub async fn get(
    State(s): State<Services>,
    Actor(a): Actor,
    Path(id): Path<String>,
) -> Result<Json<DataSource>, ApiError> {
    Ok(Json(s.datasource(&a, &id).await?))
}

pub async fn update(
    State(s): State<Services>,
    Actor(a): Actor,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<DataSourceInput>,
) -> Result<Json<DataSource>, ApiError> {
    Ok(Json(s.update_datasource(&a, &id, input).await?))
}

pub async fn delete(
    State(s): State<Services>,
    Actor(a): Actor,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.delete_datasource(&a, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Runs the connector's own check (connect and a trivial query).
pub async fn test(
    State(s): State<Services>,
    Actor(a): Actor,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    match s.test_datasource(&a, &id).await? {
        Ok(()) => Ok(Json(json!({"ok": true}))),
        Err(message) => Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message)),
    }
}

/// Tables and their columns, for the sync editor.
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
