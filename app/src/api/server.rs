//! Server-side helpers for server functions: services, the session and the acting user.

use idra_core::model::User;
use idra_core::service::{ClientAddr, ServiceError, Services, SignedIn};
use leptos::prelude::*;
use tower_sessions::Session;

use super::{UiError, SESSION_EPOCH_KEY, SESSION_SIGNED_IN_AT_KEY, SESSION_USER_KEY};

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

/// The client as the server's middleware determined it (peer address, trusted proxies).
pub async fn client_addr() -> ClientAddr {
    leptos_axum::extract::<axum::Extension<ClientAddr>>()
        .await
        .map(|e| e.0)
        .unwrap_or_default()
}

/// Makes `session` the signed-in session of `signed_in` (the UI and the REST API alike): a
/// new id (no session fixation), the user, the user's session epoch and the sign-in time,
/// which the session store checks on every load.
pub async fn start_session(
    session: &Session,
    signed_in: &SignedIn,
) -> Result<(), tower_sessions::session::Error> {
    session.cycle_id().await?;
    session
        .insert(SESSION_USER_KEY, signed_in.user.username.clone())
        .await?;
    session
        .insert(SESSION_EPOCH_KEY, signed_in.session_epoch.clone())
        .await?;
    session
        .insert(SESSION_SIGNED_IN_AT_KEY, chrono::Utc::now().timestamp())
        .await
}

pub async fn sign_in(session: &Session, signed_in: &SignedIn) -> Result<(), UiError> {
    start_session(session, signed_in).await.map_err(session_err)
}

pub async fn sign_out(session: &Session) -> Result<(), UiError> {
    session.flush().await.map_err(session_err)
}
