//! REST API under /api/v1, with the same rules as the UI (both call `idra_core::service`).

mod auth;
mod error;
mod health;
mod json;
mod session;
mod users;

#[cfg(test)]
mod tests;

use axum::routing::{get, patch};
use axum::Router;
use idra_core::service::Services;

pub use auth::Actor;
pub use error::ApiError;

pub fn router(services: Services) -> Router {
    Router::new()
        .route("/health", get(health::health))
        .route(
            "/session",
            get(session::whoami)
                .post(session::sign_in)
                .delete(session::sign_out),
        )
        .route("/users", get(users::list).post(users::create))
        .route("/users/{name}", patch(users::update).delete(users::delete))
        .fallback(|| async { ApiError::not_found("no such API endpoint; see /api/v1/health") })
        .with_state(services)
}
