use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use idra_app::api::SESSION_USER_KEY;
use idra_core::model::User;
use idra_core::service::Services;
use serde::Deserialize;
use tower_sessions::Session;

use super::auth::ClientIp;
use super::json::ApiJson;
use super::{Actor, ApiError};

#[derive(Deserialize)]
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

pub async fn sign_in(
    State(services): State<Services>,
    ClientIp(ip): ClientIp,
    session: Session,
    ApiJson(c): ApiJson<Credentials>,
) -> Result<Json<User>, ApiError> {
    let user = services.login(c.username.trim(), &c.password, ip).await?;
    session.cycle_id().await.map_err(session_failed)?;
    session
        .insert(SESSION_USER_KEY, user.username.clone())
        .await
        .map_err(session_failed)?;
    Ok(Json(user))
}

pub async fn sign_out(session: Session) -> Result<StatusCode, ApiError> {
    session.flush().await.map_err(session_failed)?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn whoami(Actor(user): Actor) -> Json<User> {
    Json(user)
}
