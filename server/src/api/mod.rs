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

mod openapi;

use axum::routing::get;
use axum::{Json, Router};
use idra_core::service::Services;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use auth::Actor;
pub use error::ApiError;

/// The API's routes and their OpenAPI document come from the same handler annotations
/// (`routes!`), so the document served at `/openapi.json` cannot drift from the handlers.
pub fn router(services: Services) -> Router {
    let (router, doc) = documented_routes().with_state(services).split_for_parts();
    let doc = openapi::finish(doc);
    router
        .route("/openapi.json", get(move || async move { Json(doc) }))
        .fallback(|| async {
            ApiError::not_found("no such API endpoint; see /api/v1/openapi.json")
        })
}

fn documented_routes() -> OpenApiRouter<Services> {
    OpenApiRouter::new()
        .routes(routes!(health::health))
        .routes(routes!(cluster::agents))
        .routes(routes!(cluster::assignments))
        .routes(routes!(cluster::cluster))
        .routes(routes!(
            session::whoami,
            session::sign_in,
            session::sign_out
        ))
        .routes(routes!(users::list, users::create))
        .routes(routes!(users::update, users::delete))
        .routes(routes!(datasources::list, datasources::create))
        .routes(routes!(
            datasources::get,
            datasources::update,
            datasources::delete
        ))
        .routes(routes!(datasources::test))
        .routes(routes!(datasources::discover))
        .routes(routes!(syncs::list, syncs::create))
        .routes(routes!(syncs::get, syncs::update, syncs::delete))
        .routes(routes!(syncs::import))
        .routes(routes!(syncs::export))
        .routes(routes!(syncs::pause))
        .routes(routes!(syncs::run))
        .routes(routes!(syncs::resume))
        .routes(routes!(syncs::status))
        .routes(routes!(syncs::offset, syncs::set_offset))
        .routes(routes!(syncs::offset_changes))
}
