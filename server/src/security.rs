//! Request guards that apply to every route: cross-origin writes are refused, and pages
//! need a signed-in user.

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use idra_app::api::SESSION_USER_KEY;
use idra_core::service::Services;
use tower_sessions::Session;

use crate::api::ApiError;

/// A state-changing request whose `Origin` is another site is refused (CSRF defence on top
/// of SameSite=Lax cookies). Requests without `Origin` (curl, scripts) pass.
pub async fn refuse_foreign_origin(req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let headers = req.headers();
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let origin_host = origin
            .split_once("://")
            .map(|(_, rest)| rest.trim_end_matches('/'));
        if origin_host.is_none() || origin_host != host {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "cross-origin request refused: Origin `{origin}` is not this server ({})",
                    host.unwrap_or("unknown host")
                ),
            )
            .with_field("Origin")
            .into_response();
        }
    } else if headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site")
    {
        return ApiError::new(StatusCode::FORBIDDEN, "cross-site request refused")
            .with_field("Origin")
            .into_response();
    }
    next.run(req).await
}

/// The UI's page paths (server functions, the API and assets answer for themselves).
fn is_page(path: &str) -> bool {
    matches!(
        path.trim_end_matches('/'),
        "" | "/syncs" | "/datasources" | "/offsets" | "/agents" | "/users" | "/account" | "/errors"
    )
}

/// Unauthenticated page loads go to /login; a signed-in user asking for /login goes home.
pub async fn require_login_for_pages(
    State(services): State<Services>,
    session: Session,
    req: Request,
    next: Next,
) -> Response {
    if req.method() != Method::GET {
        return next.run(req).await;
    }
    let path = req.uri().path().to_string();
    let login = path == "/login";
    if !login && !is_page(&path) {
        return next.run(req).await;
    }
    let username = session.get::<String>(SESSION_USER_KEY).await.ok().flatten();
    let signed_in = match username {
        Some(name) => matches!(services.user(&name).await, Ok(Some(_))),
        None => false,
    };
    match (signed_in, login) {
        (false, false) => Redirect::to("/login").into_response(),
        (true, true) => Redirect::to("/").into_response(),
        _ => next.run(req).await,
    }
}
