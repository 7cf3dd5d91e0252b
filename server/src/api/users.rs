use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use idra_core::model::{NewUser, Role, User};
use idra_core::service::Services;
use serde::Deserialize;

use super::error::ErrorBody;
use super::json::ApiJson;
use super::{Actor, ApiError};

#[utoipa::path(get, path = "/users", tag = "users", responses((status = 200, body = Vec<User>), (status = 401, description = "not signed in", body = ErrorBody), (status = 403, description = "the role lacks the right", body = ErrorBody)))]
pub async fn list(
    State(s): State<Services>,
    Actor(actor): Actor,
) -> Result<Json<Vec<User>>, ApiError> {
    Ok(Json(s.list_users(&actor).await?))
}

#[utoipa::path(post, path = "/users", tag = "users", request_body = NewUser, responses((status = 201, body = User), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 401, description = "not signed in", body = ErrorBody), (status = 403, description = "the role lacks the right", body = ErrorBody)))]
pub async fn create(
    State(s): State<Services>,
    Actor(actor): Actor,
    ApiJson(new): ApiJson<NewUser>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    Ok((StatusCode::CREATED, Json(s.create_user(&actor, new).await?)))
}

/// Any subset of the fields; each is applied (and checked) in turn.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    role: Option<Role>,
    email: Option<String>,
    password: Option<String>,
}

#[utoipa::path(patch, path = "/users/{name}", tag = "users", params(("name" = String, Path, description = "the username")), request_body = UserUpdate, responses((status = 200, body = User), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 401, description = "not signed in", body = ErrorBody), (status = 403, description = "the role lacks the right", body = ErrorBody)))]
pub async fn update(
    State(s): State<Services>,
    Actor(actor): Actor,
    Path(name): Path<String>,
    ApiJson(u): ApiJson<UserUpdate>,
) -> Result<Json<User>, ApiError> {
    if u.role.is_none() && u.email.is_none() && u.password.is_none() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "nothing to change: send role, email and/or password",
        ));
    }
    // Check the role first so a viewer learns nothing about which users exist.
    idra_core::service::require(&actor, Role::Admin)?;
    let mut user = None;
    if let Some(role) = u.role {
        user = Some(s.set_role(&actor, &name, role).await?);
    }
    if let Some(email) = u.email {
        user = Some(s.set_email(&actor, &name, email).await?);
    }
    if let Some(password) = u.password {
        user = Some(s.reset_password(&actor, &name, password).await?);
    }
    Ok(Json(user.expect("at least one field was applied")))
}

#[utoipa::path(delete, path = "/users/{name}", tag = "users", params(("name" = String, Path, description = "the username")), responses((status = 204, description = "deleted"), (status = 404, body = ErrorBody), (status = 409, description = "the last admin", body = ErrorBody), (status = 401, description = "not signed in", body = ErrorBody), (status = 403, description = "the role lacks the right", body = ErrorBody)))]
pub async fn delete(
    State(s): State<Services>,
    Actor(actor): Actor,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.delete_user(&actor, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
