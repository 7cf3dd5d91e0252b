use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use idra_agent::connectors::{self, ConnectionSpec};
use idra_core::model::{DataSource, DataSourceInput};
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

async fn spec(
    s: &Services,
    a: &idra_core::model::User,
    id: &str,
) -> Result<ConnectionSpec, ApiError> {
    let record = s.datasource_for_connecting(a, id).await?;
    let secrets = record
        .open_secrets(&s.cipher)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(ConnectionSpec {
        kind: record.source.kind,
        connection_string: record.source.connection_string,
        options: record.source.options,
        secrets,
    })
}

fn connector_error(e: connectors::ConnectorError) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.message)
}

/// Runs the connector's own check (connect and a trivial query).
pub async fn test(
    State(s): State<Services>,
    Actor(a): Actor,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let spec = spec(&s, &a, &id).await?;
    let source = connectors::open_source(&spec).map_err(connector_error)?;
    source.test_connection().await.map_err(connector_error)?;
    Ok(Json(json!({"ok": true})))
}

/// Tables and their columns, for the sync editor.
pub async fn discover(
    State(s): State<Services>,
    Actor(a): Actor,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let spec = spec(&s, &a, &id).await?;
    let source = connectors::open_source(&spec).map_err(connector_error)?;
    let tables = source.discover().await.map_err(connector_error)?;
    Ok(Json(json!(tables
        .into_iter()
        .map(|t| json!({
            "name": t.name,
            "columns": t.columns.iter().map(|c| json!({"name": c.name, "type": c.ty.name(), "nullable": c.nullable})).collect::<Vec<_>>(),
        }))
        .collect::<Vec<_>>())))
}
