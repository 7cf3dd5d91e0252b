//! Server-side helpers for server functions: services, the session and the acting user.

use std::net::{IpAddr, SocketAddr};

use idra_core::model::User;
use idra_core::service::{ServiceError, Services};
use leptos::prelude::*;
use tower_sessions::Session;

use super::{UiError, SESSION_USER_KEY};

pub fn services() -> Result<Services, UiError> {
    use_context::<Services>()
        .ok_or_else(|| UiError::new("server misconfigured: no services in context"))
}

pub async fn session() -> Result<Session, UiError> {
    leptos_axum::extract::<Session>()
        .await
        .map_err(|e| UiError::new(format!("no session: {e}")))
}

fn session_err(e: tower_sessions::session::Error) -> UiError {
    UiError::new(format!("session store failed: {e}"))
}

pub async fn session_username(session: &Session) -> Result<Option<String>, UiError> {
    session
        .get::<String>(SESSION_USER_KEY)
        .await
        .map_err(session_err)
}

/// The signed-in user, loaded afresh so role changes and deletions apply at once.
pub async fn current_user() -> Result<Option<User>, UiError> {
    let session = session().await?;
    let Some(name) = session_username(&session).await? else {
        return Ok(None);
    };
    Ok(services()?.user(&name).await?)
}

pub async fn actor() -> Result<User, UiError> {
    current_user()
        .await?
        .ok_or_else(|| ServiceError::Unauthenticated.into())
}

pub async fn client_ip() -> Option<IpAddr> {
    leptos_axum::extract::<axum::extract::ConnectInfo<SocketAddr>>()
        .await
        .ok()
        .map(|c| c.0.ip())
}

pub async fn sign_in(session: &Session, username: &str) -> Result<(), UiError> {
    // A new session id at sign-in defeats session fixation.
    session.cycle_id().await.map_err(session_err)?;
    session
        .insert(SESSION_USER_KEY, username.to_string())
        .await
        .map_err(session_err)
}

pub async fn sign_out(session: &Session) -> Result<(), UiError> {
    session.flush().await.map_err(session_err)
}
