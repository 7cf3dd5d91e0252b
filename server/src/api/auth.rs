use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use idra_app::api::SESSION_USER_KEY;
use idra_core::model::User;
use idra_core::service::{ClientAddr, ServiceError, Services};
use tower_sessions::Session;

use super::ApiError;

/// The signed-in user of an API request (401 when there is none).
pub struct Actor(pub User);

impl FromRequestParts<Services> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        services: &Services,
    ) -> Result<Self, Self::Rejection> {
        let session = Session::from_request_parts(parts, services)
            .await
            .map_err(|(status, msg)| ApiError::new(status, msg))?;
        let name = session
            .get::<String>(SESSION_USER_KEY)
            .await
            .map_err(|e| {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("session store failed: {e}"),
                )
            })?
            .ok_or(ServiceError::Unauthenticated)?;
        let user = services
            .user(&name)
            .await?
            .ok_or(ServiceError::Unauthenticated)?;
        Ok(Actor(user))
    }
}

/// Where the request comes from, as `security::resolve_client` determined it (the peer
/// address, or what a trusted proxy forwarded). Without connect info (tests that build no
/// socket) the address is unknown and the client is not on this machine.
pub struct Client(pub ClientAddr);

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Client(
            parts
                .extensions
                .get::<ClientAddr>()
                .copied()
                .unwrap_or_default(),
        ))
    }
}
