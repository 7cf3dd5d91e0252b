use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use idra_core::model::{Cursor, Offset, OffsetChange, SyncConfig, SyncInput, SyncStatus};
use idra_core::service::Services;
use serde::{Deserialize, Serialize};

use super::error::ErrorBody;
use super::json::ApiJson;
use super::{Actor, ApiError};

#[utoipa::path(get, path = "/syncs", tag = "syncs", responses((status = 200, body = Vec<SyncConfig>), (status = 401, description = "not signed in", body = ErrorBody), (status = 403, description = "the role lacks the right", body = ErrorBody)))]
pub async fn list(
    State(s): State<Services>,
    Actor(a): Actor,
) -> Result<Json<Vec<SyncConfig>>, ApiError> {
    Ok(Json(s.list_syncs(&a).await?))
}

#[utoipa::path(post, path = "/syncs", tag = "syncs", request_body = SyncInput, responses((status = 201, body = SyncConfig), (status = 400, description = "malformed body", body = ErrorBody), (status = 422, description = "invalid field", body = ErrorBody), (status = 401, description = "not signed in", body = ErrorBody), (status = 403, description = "the role lacks the right", body = ErrorBody)))]
pub async fn create(
    State(s): State<Services>,
    Actor(a): Actor,
    ApiJson(input): ApiJson<SyncInput>,
) -> Result<(StatusCode, Json<SyncConfig>), ApiError> {
    Ok((StatusCode::CREATED, Json(s.create_sync(&a, input).await?)))
}

#[utoipa::path(get, path = "/syncs/{id}", tag = "syncs", params(("id" = String, Path, description = "the id")), responses((status = 200, body = SyncConfig), (status = 404, body = ErrorBody), (status = 401, description = "not signed in", body = ErrorBody), (status = 403, description = "the role lacks the right", body = ErrorBody)))]
pub async fn get(
    State(s): State<Services>,
    Actor(a): Actor,
    Path(id): Path<String>,
) -> Result<Json<SyncConfig>, ApiError> {
    Ok(Json(s.sync(&a, &id).await?))
}

#[utoipa::path(put, path = "/syncs/{id}", tag = "syncs", params(("id" = String, Path, description = "the id")), request_body = SyncInput, responses((status = 200, body = SyncConfig), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 401, description = "not signed in", body = ErrorBody), (status = 403, description = "the role lacks the right", body = ErrorBody)))]
pub async fn update(
    State(s): State<Services>,
    Actor(a): Actor,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<SyncInput>,
) -> Result<Json<SyncConfig>, ApiError> {
    Ok(Json(s.update_sync(&a, &id, input).await?))
}

#[utoipa::path(delete, path = "/syncs/{id}", tag = "syncs", params(("id" = String, Path, description = "the id")), responses((status = 204, description = "deleted, with its offset, status and history"), (status = 404, body = ErrorBody), (status = 401, description = "not signed in", body = ErrorBody), (status = 403, description = "the role lacks the right", body = ErrorBody)))]
pub async fn delete(
    State(s): State<Services>,
    Actor(a): Actor,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.delete_sync(&a, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/syncs/{id}/pause", tag = "syncs", params(("id" = String, Path, description = "the id")), responses((status = 200, body = SyncConfig), (status = 404, body = ErrorBody), (status = 401, description = "not signed in", body = ErrorBody), (status = 403, description = "the role lacks the right", body = ErrorBody)))]
pub async fn pause(
    State(s): State<Services>,
    Actor(a): Actor,
    Path(id): Path<String>,
) -> Result<Json<SyncConfig>, ApiError> {
    Ok(Json(s.set_sync_enabled(&a, &id, false).await?))
}

#[utoipa::path(post, path = "/syncs/{id}/resume", tag = "syncs", params(("id" = String, Path, description = "the id")), responses((status = 200, body = SyncConfig), (status = 404, body = ErrorBody), (status = 401, description = "not signed in", body = ErrorBody), (status = 403, description = "the role lacks the right", body = ErrorBody)))]
pub async fn resume(
    State(s): State<Services>,
    Actor(a): Actor,
    Path(id): Path<String>,
) -> Result<Json<SyncConfig>, ApiError> {
    Ok(Json(s.set_sync_enabled(&a, &id, true).await?))
}

#[utoipa::path(get, path = "/syncs/{id}/status", tag = "syncs", params(("id" = String, Path, description = "the id")), responses((status = 200, body = SyncStatus), (status = 404, body = ErrorBody), (status = 401, description = "not signed in", body = ErrorBody), (status = 403, description = "the role lacks the right", body = ErrorBody)))]
pub async fn status(
    State(s): State<Services>,
    Actor(a): Actor,
    Path(id): Path<String>,
) -> Result<Json<SyncStatus>, ApiError> {
    Ok(Json(s.sync_status(&a, &id).await?))
}

#[utoipa::path(get, path = "/syncs/{id}/offset", tag = "offsets", params(("id" = String, Path, description = "the id")), responses((status = 200, description = "the offset, or null before the first commit", body = Option<Offset>), (status = 404, body = ErrorBody), (status = 401, description = "not signed in", body = ErrorBody), (status = 403, description = "the role lacks the right", body = ErrorBody)))]
pub async fn offset(
    State(s): State<Services>,
    Actor(a): Actor,
    Path(id): Path<String>,
) -> Result<Json<Option<Offset>>, ApiError> {
    Ok(Json(s.sync_offset(&a, &id).await?))
}

/// `{"expected": <the cursor you saw, or null>, "cursor": <the new cursor>}`
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OffsetEdit {
    expected: Option<Cursor>,
    cursor: Cursor,
}

#[utoipa::path(put, path = "/syncs/{id}/offset", tag = "offsets", params(("id" = String, Path, description = "the id")), request_body = OffsetEdit, responses((status = 200, body = Offset), (status = 400, body = ErrorBody), (status = 409, description = "the sync is running or the offset changed since `expected`", body = ErrorBody), (status = 404, body = ErrorBody), (status = 401, description = "not signed in", body = ErrorBody), (status = 403, description = "the role lacks the right", body = ErrorBody)))]
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

#[utoipa::path(get, path = "/syncs/{id}/offset/changes", tag = "offsets", params(("id" = String, Path, description = "the id")), responses((status = 200, body = Vec<OffsetChange>), (status = 404, body = ErrorBody), (status = 401, description = "not signed in", body = ErrorBody), (status = 403, description = "the role lacks the right", body = ErrorBody)))]
pub async fn offset_changes(
    State(s): State<Services>,
    Actor(a): Actor,
    Path(id): Path<String>,
) -> Result<Json<Vec<OffsetChange>>, ApiError> {
    Ok(Json(s.offset_changes(&a, &id).await?))
}

#[utoipa::path(post, path = "/syncs/{id}/run", tag = "syncs", params(("id" = String, Path, description = "the id")), responses((status = 202, description = "a run was requested"), (status = 404, body = ErrorBody), (status = 401, description = "not signed in", body = ErrorBody), (status = 403, description = "the role lacks the right", body = ErrorBody)))]
pub async fn run(
    State(s): State<Services>,
    Actor(a): Actor,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.request_run(&a, &id).await?;
    Ok(StatusCode::ACCEPTED)
}

#[utoipa::path(post, path = "/syncs/import", tag = "syncs", request_body(content = String, description = "a sync file: Idra's format or the original Idra's JSON array", content_type = "application/json"), responses((status = 200, description = "how many data sources and syncs were imported", body = ImportCounts), (status = 422, body = ErrorBody), (status = 401, description = "not signed in", body = ErrorBody), (status = 403, description = "the role lacks the right", body = ErrorBody)))]
/// The body is a sync file: Idra's format or the original Idra's array of syncs.
pub async fn import(
    State(s): State<Services>,
    Actor(a): Actor,
    body: String,
) -> Result<Json<ImportCounts>, ApiError> {
    let n = s.import_file(&a, &body).await?;
    Ok(Json(ImportCounts {
        datasources: n.datasources,
        syncs: n.syncs,
    }))
}

/// What an import created or replaced.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ImportCounts {
    datasources: usize,
    syncs: usize,
}

#[utoipa::path(get, path = "/syncs/export", tag = "syncs", responses((status = 200, description = "every data source (without secrets) and sync, in Idra's file format", body = Object), (status = 401, description = "not signed in", body = ErrorBody), (status = 403, description = "the role lacks the right", body = ErrorBody)))]
pub async fn export(
    State(s): State<Services>,
    Actor(a): Actor,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(s.export_file(&a).await?))
}
