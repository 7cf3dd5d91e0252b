use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use idra_core::model::User;
use idra_core::service::Services;
use serde::Deserialize;
use tower_sessions::Session;

use super::auth::Client;
use super::error::ErrorBody;
use super::json::ApiJson;
use super::{Actor, ApiError};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    username: String,
    password: String,
}

fn session_failed(e: tower_sessions::session::Error) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("session store failed: {e}"),
    )
}

#[utoipa::path(post, path = "/session", tag = "session", request_body = Credentials, security(()), responses((status = 200, description = "signed in; the `idra_session` cookie is set", body = User), (status = 400, body = ErrorBody), (status = 401, description = "wrong username or password", body = ErrorBody), (status = 403, description = "the default password, from another machine than the server's", body = ErrorBody), (status = 429, description = "too many failed attempts; see Retry-After", body = ErrorBody), (status = 503, description = "too many sign-ins at once; see Retry-After", body = ErrorBody)))]
pub async fn sign_in(
    State(services): State<Services>,
    Client(client): Client,
    session: Session,
    ApiJson(c): ApiJson<Credentials>,
) -> Result<Json<User>, ApiError> {
    let signed_in = services
        .login(c.username.trim(), &c.password, client)
        .await?;
    idra_app::api::server::start_session(&session, &signed_in)
        .await
        .map_err(session_failed)?;
    Ok(Json(signed_in.user))
}

#[utoipa::path(delete, path = "/session", tag = "session", security(()), responses((status = 204, description = "signed out")))]
pub async fn sign_out(session: Session) -> Result<StatusCode, ApiError> {
    session.flush().await.map_err(session_failed)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/session", tag = "session", responses((status = 200, body = User), (status = 401, body = ErrorBody)))]
pub async fn whoami(Actor(user): Actor) -> Json<User> {
    Json(user)
}
