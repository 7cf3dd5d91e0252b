use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use idra_core::service::Services;
use serde::Serialize;

#[utoipa::path(get, path = "/health", tag = "health", security(()), responses((status = 200, description = "the store answers", body = Health), (status = 503, description = "the store is unreachable", body = Health)))]
/// Unauthenticated liveness: is the store reachable? (Member details need a sign-in.)
pub async fn health(State(s): State<Services>) -> (StatusCode, Json<Health>) {
    let members = s.store.health().await;
    let healthy = members.iter().any(|m| m.healthy);
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Health {
            status: if healthy { "ok" } else { "store unreachable" },
            store: s.store.backend(),
        }),
    )
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok` or `store unreachable`.
    status: &'static str,
    /// `embedded` or `etcd`.
    store: &'static str,
}
