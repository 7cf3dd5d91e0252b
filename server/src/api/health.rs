use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use idra_core::service::Services;
use serde_json::{json, Value};

/// Unauthenticated liveness: is the store reachable? (Member details need a sign-in.)
pub async fn health(State(s): State<Services>) -> (StatusCode, Json<Value>) {
    let members = s.store.health().await;
    let healthy = members.iter().any(|m| m.healthy);
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "status": if healthy { "ok" } else { "store unreachable" },
            "store": s.store.backend(),
        })),
    )
}
