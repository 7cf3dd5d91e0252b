//! `/locks/<name>`: the lock service for other programs, compatible with the Metaparticle
//! sync sidecar protocol. GET 200 while held (404 when free); PUT takes or heartbeats (200)
//! or answers 409 when someone else holds it; DELETE releases. The holder comes from the
//! `X-Lock-Holder` header or `?holder=`; `?ttl=` seconds (default 30); `?mode=shared` for
//! shared holds. With `--lock-token`, requests need `Authorization: Bearer <token>`.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use idra_core::service::locks::{self, Acquire, LockMode, DEFAULT_TTL_SECS};
use idra_core::service::Services;
use serde_json::json;

use crate::api::ApiError;

#[derive(Clone)]
struct LockState {
    services: Services,
    token: Option<String>,
}

pub fn router(services: Services, token: Option<String>) -> Router {
    Router::new()
        .route("/{name}", get(status).put(acquire).delete(release))
        .with_state(LockState { services, token })
}

fn authorize(state: &LockState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = &state.token else {
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if given == Some(token.as_str()) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "send the lock service token as `Authorization: Bearer <token>`",
        ))
    }
}

fn holder(headers: &HeaderMap, query: &HashMap<String, String>) -> String {
    headers
        .get("x-lock-holder")
        .and_then(|v| v.to_str().ok())
        .map(String::from)
        .or_else(|| query.get("holder").cloned())
        .unwrap_or_default()
}

fn body(state: &locks::LockState) -> serde_json::Value {
    json!({
        "mode": state.mode,
        "holders": state.holders.iter().map(|(h, until)| json!({"holder": h, "expires_at": until})).collect::<Vec<_>>(),
    })
}

async fn status(
    State(s): State<LockState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&s, &headers)?;
    Ok(
        match locks::status(s.services.store.as_ref(), &s.services.keys, &name).await? {
            Some(state) => (StatusCode::OK, Json(body(&state))).into_response(),
            None => ApiError::not_found(format!("lock `{name}` is free")).into_response(),
        },
    )
}

async fn acquire(
    State(s): State<LockState>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&s, &headers)?;
    let mode = match query.get("mode").map(String::as_str) {
        None | Some("exclusive") => LockMode::Exclusive,
        Some("shared") => LockMode::Shared,
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("mode `{other}` is not exclusive or shared"),
            )
            .with_field("mode"))
        }
    };
    let ttl = match query.get("ttl") {
        None => DEFAULT_TTL_SECS,
        Some(t) => t.parse().map_err(|_| {
            ApiError::new(StatusCode::BAD_REQUEST, "ttl must be whole seconds").with_field("ttl")
        })?,
    };
    let who = holder(&headers, &query);
    Ok(
        match locks::acquire(
            s.services.store.as_ref(),
            &s.services.keys,
            &name,
            &who,
            mode,
            ttl,
        )
        .await?
        {
            Acquire::Held(state) => (StatusCode::OK, Json(body(&state))).into_response(),
            Acquire::Conflict(state) => {
                let mut b = body(&state);
                b["error"] = json!(format!("lock `{name}` is held by someone else"));
                (StatusCode::CONFLICT, Json(b)).into_response()
            }
        },
    )
}

async fn release(
    State(s): State<LockState>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&s, &headers)?;
    let who = holder(&headers, &query);
    Ok(
        if locks::release(s.services.store.as_ref(), &s.services.keys, &name, &who).await? {
            StatusCode::OK.into_response()
        } else {
            ApiError::not_found(format!("`{who}` holds no lock `{name}`")).into_response()
        },
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use idra_core::secret::Cipher;
    use idra_core::store::{EmbeddedStore, Keys, Store};
    use tower::ServiceExt;

    use super::*;

    async fn call(
        app: &Router,
        method: &str,
        uri: &str,
        holder: Option<&str>,
        token: Option<&str>,
    ) -> (StatusCode, serde_json::Value) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(h) = holder {
            req = req.header("X-Lock-Holder", h);
        }
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let resp = app
            .clone()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    }

    async fn app(token: Option<&str>) -> (Router, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(EmbeddedStore::open(&dir.path().join("s")).await.unwrap());
        let services = Services::new(
            store,
            Keys::default(),
            Cipher::from_key_file(&dir.path().join("k")).unwrap(),
        );
        (router(services, token.map(String::from)), dir)
    }

    #[tokio::test]
    async fn metaparticle_protocol() {
        let (app, _dir) = app(None).await;
        assert_eq!(
            call(&app, "GET", "/leader", None, None).await.0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            call(&app, "PUT", "/leader?ttl=10", Some("pod-a"), None)
                .await
                .0,
            StatusCode::OK
        );
        let (st, b) = call(&app, "GET", "/leader", None, None).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(b["holders"][0]["holder"], "pod-a");
        assert_eq!(
            call(&app, "PUT", "/leader", Some("pod-a"), None).await.0,
            StatusCode::OK,
            "heartbeat"
        );
        assert_eq!(
            call(&app, "PUT", "/leader?holder=pod-b", None, None)
                .await
                .0,
            StatusCode::CONFLICT
        );
        assert_eq!(
            call(&app, "DELETE", "/leader?holder=pod-b", None, None)
                .await
                .0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            call(&app, "DELETE", "/leader", Some("pod-a"), None).await.0,
            StatusCode::OK
        );
        assert_eq!(
            call(&app, "PUT", "/leader", Some("pod-b"), None).await.0,
            StatusCode::OK
        );
        // Shared holds coexist; an exclusive one waits for none.
        assert_eq!(
            call(&app, "PUT", "/cache?mode=shared", Some("r1"), None)
                .await
                .0,
            StatusCode::OK
        );
        assert_eq!(
            call(&app, "PUT", "/cache?mode=shared", Some("r2"), None)
                .await
                .0,
            StatusCode::OK
        );
        assert_eq!(
            call(&app, "PUT", "/cache", Some("w"), None).await.0,
            StatusCode::CONFLICT
        );
        let (st, b) = call(&app, "PUT", "/x", None, None).await;
        assert_eq!(
            (st, b["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("holder"))
        );
        assert_eq!(
            call(&app, "PUT", "/x?mode=sometimes", Some("a"), None)
                .await
                .0,
            StatusCode::BAD_REQUEST
        );
    }

    #[tokio::test]
    async fn a_token_is_required_when_configured() {
        let (app, _dir) = app(Some("s3cret")).await;
        assert_eq!(
            call(&app, "PUT", "/l", Some("a"), None).await.0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            call(&app, "PUT", "/l", Some("a"), Some("wrong")).await.0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            call(&app, "PUT", "/l", Some("a"), Some("s3cret")).await.0,
            StatusCode::OK
        );
    }
}
