//! REST API under /api/v1, with the same rules as the UI (both call `idra_core::service`).

mod auth;
mod cluster;
mod datasources;
mod error;
mod health;
mod json;
mod session;
mod syncs;
mod users;

#[cfg(test)]
mod tests;

use axum::routing::{get, patch, post};
use axum::Router;
use idra_core::service::Services;

pub use auth::Actor;
pub use error::ApiError;

pub fn router(services: Services) -> Router {
    Router::new()
        .route("/health", get(health::health))
        .route("/agents", get(cluster::agents))
        .route("/assignments", get(cluster::assignments))
        .route("/cluster", get(cluster::cluster))
        .route(
            "/session",
            get(session::whoami)
                .post(session::sign_in)
                .delete(session::sign_out),
        )
        .route("/users", get(users::list).post(users::create))
        .route("/users/{name}", patch(users::update).delete(users::delete))
        .route(
            "/datasources",
            get(datasources::list).post(datasources::create),
        )
        .route(
            "/datasources/{id}",
            get(datasources::get)
                .put(datasources::update)
                .delete(datasources::delete),
        )
        .route("/datasources/{id}/test", post(datasources::test))
        .route("/datasources/{id}/discover", get(datasources::discover))
        .route("/syncs", get(syncs::list).post(syncs::create))
        .route(
            "/syncs/{id}",
            get(syncs::get).put(syncs::update).delete(syncs::delete),
        )
        .route("/syncs/import", post(syncs::import))
        .route("/syncs/export", get(syncs::export))
        .route("/syncs/{id}/pause", post(syncs::pause))
        .route("/syncs/{id}/run", post(syncs::run))
        .route("/syncs/{id}/resume", post(syncs::resume))
        .route("/syncs/{id}/status", get(syncs::status))
        .route(
            "/syncs/{id}/offset",
            get(syncs::offset).put(syncs::set_offset),
        )
        .route("/syncs/{id}/offset/changes", get(syncs::offset_changes))
        .fallback(|| async { ApiError::not_found("no such API endpoint; see /api/v1/health") })
        .with_state(services)
}
