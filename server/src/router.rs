//! The whole HTTP surface, built by a function so tests drive it without a socket.

use axum::Router;
use idra_app::{shell, App};
use idra_core::service::Services;
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::security::{refuse_foreign_origin, require_login_for_pages};
use crate::session_store::StoreSessions;

pub struct RouterConfig {
    pub leptos: LeptosOptions,
    /// Marks the session cookie `Secure`: set when users reach the server over https.
    pub secure_cookies: bool,
    /// Bearer token the lock service requires, if any.
    pub lock_token: Option<String>,
}

/// Leptos options from the environment cargo-leptos sets, with our defaults, so the binary
/// also runs on its own (`make run`) without a Cargo.toml at hand.
pub fn leptos_options(site_root: &str, listen: std::net::SocketAddr) -> LeptosOptions {
    let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_string());
    LeptosOptions::builder()
        .output_name(env("LEPTOS_OUTPUT_NAME", "idra"))
        .site_root(site_root.to_string())
        .site_pkg_dir(env("LEPTOS_SITE_PKG_DIR", "pkg"))
        .site_addr(listen)
        .reload_port(env("LEPTOS_RELOAD_PORT", "3001").parse().unwrap_or(3001))
        .build()
}

pub fn router(services: Services, config: RouterConfig) -> Router {
    let routes = generate_route_list(App);
    let leptos = config.leptos;
    let context = services.clone();
    let ui = Router::new()
        .leptos_routes_with_context(&leptos, routes, move || provide_context(context.clone()), {
            let leptos = leptos.clone();
            move || shell(leptos.clone())
        })
        .fallback(leptos_axum::file_and_error_handler(shell))
        .with_state(leptos);

    let sessions = SessionManagerLayer::new(StoreSessions::new(
        services.store.clone(),
        services.keys.clone(),
    ))
    .with_name("idra_session")
    .with_http_only(true)
    .with_same_site(SameSite::Lax)
    .with_secure(config.secure_cookies)
    .with_expiry(Expiry::OnInactivity(time::Duration::hours(12)))
    // Without it a session is saved only when changed, so "inactivity" would count from
    // sign-in. The store writes at most one touch per `TOUCH_EVERY` (session_store.rs).
    .with_always_save(true);

    Router::new()
        .nest("/api/v1", crate::api::router(services.clone()))
        .nest(
            "/locks",
            crate::locks::router(services.clone(), config.lock_token),
        )
        .route(
            "/metrics",
            axum::routing::get(crate::metrics::metrics).with_state(services.clone()),
        )
        .merge(ui)
        .layer(axum::middleware::from_fn_with_state(
            services,
            require_login_for_pages,
        ))
        .layer(axum::middleware::from_fn(refuse_foreign_origin))
        .layer(sessions)
}
