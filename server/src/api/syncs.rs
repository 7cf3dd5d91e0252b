use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use idra_core::model::{Cursor, Offset, OffsetChange, SyncConfig, SyncInput, SyncStatus};
use idra_core::service::Services;
use serde::Deserialize;

use super::json::ApiJson;
use super::{Actor, ApiError};

pub async fn list(
    State(s): State<Services>,
    Actor(a): Actor,
) -> Result<Json<Vec<SyncConfig>>, ApiError> {
    Ok(Json(s.list_syncs(&a).await?))
}

pub async fn create(
    State(s): State<Services>,
    Actor(a): Actor,
    ApiJson(input): ApiJson<SyncInput>,
) -> Result<(StatusCode, Json<SyncConfig>), ApiError> {
    Ok((StatusCode::CREATED, Json(s.create_sync(&a, input).await?)))
}

pub async fn get(
    State(s): State<Services>,
    Actor(a): Actor,
    Path(id): Path<String>,
) -> Result<Json<SyncConfig>, ApiError> {
    Ok(Json(s.sync(&a, &id).await?))
}

pub async fn update(
    State(s): State<Services>,
    Actor(a): Actor,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<SyncInput>,
) -> Result<Json<SyncConfig>, ApiError> {
    Ok(Json(s.update_sync(&a, &id, input).await?))
}

pub async fn delete(
    State(s): State<Services>,
    Actor(a): Actor,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.delete_sync(&a, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn pause(
    State(s): State<Services>,
    Actor(a): Actor,
    Path(id): Path<String>,
) -> Result<Json<SyncConfig>, ApiError> {
    Ok(Json(s.set_sync_enabled(&a, &id, false).await?))
}

pub async fn resume(
    State(s): State<Services>,
    Actor(a): Actor,
    Path(id): Path<String>,
) -> Result<Json<SyncConfig>, ApiError> {
    Ok(Json(s.set_sync_enabled(&a, &id, true).await?))
}

pub async fn status(
    State(s): State<Services>,
    Actor(a): Actor,
    Path(id): Path<String>,
) -> Result<Json<SyncStatus>, ApiError> {
    Ok(Json(s.sync_status(&a, &id).await?))
}

pub async fn offset(
    State(s): State<Services>,
    Actor(a): Actor,
    Path(id): Path<String>,
) -> Result<Json<Option<Offset>>, ApiError> {
    Ok(Json(s.sync_offset(&a, &id).await?))
}

/// `{"expected": <the cursor you saw, or null>, "cursor": <the new cursor>}`
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OffsetEdit {
    expected: Option<Cursor>,
    cursor: Cursor,
}

pub async fn set_offset(
    State(s): State<Services>,
    Actor(a): Actor,
    Path(id): Path<String>,
    ApiJson(edit): ApiJson<OffsetEdit>,
) -> Result<Json<Offset>, ApiError> {
    Ok(Json(
        s.set_sync_offset(&a, &id, edit.expected, edit.cursor)
            .await?,
    ))
}

pub async fn offset_changes(
    State(s): State<Services>,
    Actor(a): Actor,
    Path(id): Path<String>,
) -> Result<Json<Vec<OffsetChange>>, ApiError> {
    Ok(Json(s.offset_changes(&a, &id).await?))
}

pub async fn run(
    State(s): State<Services>,
    Actor(a): Actor,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.request_run(&a, &id).await?;
    Ok(StatusCode::ACCEPTED)
}

/// The body is a sync file: Idra's format or the original Idra's array of syncs.
pub async fn import(
    State(s): State<Services>,
    Actor(a): Actor,
    body: String,
) -> Result<Json<serde_json::Value>, ApiError> {
    let n = s.import_file(&a, &body).await?;
    Ok(Json(
        serde_json::json!({"datasources": n.datasources, "syncs": n.syncs}),
    ))
}

pub async fn export(
    State(s): State<Services>,
    Actor(a): Actor,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(s.export_file(&a).await?))
}
