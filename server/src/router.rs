//! The whole HTTP surface, built by a function so tests drive it without a socket.

use std::sync::Arc;

use axum::Router;
use idra_app::{shell, App};
use idra_core::service::Services;
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::locks::LockAccess;
use crate::security::{
    refuse_foreign_origin, refuse_unknown_host, require_login_for_pages, resolve_client,
    AllowedHosts, TrustedProxies,
};
use crate::session_store::StoreSessions;

pub struct RouterConfig {
    /// Leptos' options; their `site_addr` is the address the server listens on.
    pub leptos: LeptosOptions,
    /// Where users reach the server (`--public-url`): its host is one of the server's names,
    /// and https there marks the session cookie `Secure`.
    pub public_url: Option<String>,
    /// Further names the server answers to (`--allowed-host`).
    pub allowed_hosts: Vec<String>,
    /// Proxies whose `X-Forwarded-For` is believed (`--trusted-proxy`).
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Who may use the lock service at /locks (off unless given).
    pub locks: LockAccess,
}

impl RouterConfig {
    /// No public URL, no extra names, no trusted proxy, the lock service off.
    pub fn new(leptos: LeptosOptions) -> Self {
        Self {
            leptos,
            public_url: None,
            allowed_hosts: Vec::new(),
            trusted_proxies: Vec::new(),
            locks: LockAccess::Off,
        }
    }

    /// Users reach the server over https.
    pub fn https(&self) -> bool {
        self.public_url.as_deref().is_some_and(|u| {
            u.get(..8)
                .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
        })
    }

    /// The names the server answers to; `Err` when `--public-url` is no http(s) URL.
    pub fn allowed_hosts(&self) -> Result<AllowedHosts, String> {
        AllowedHosts::new(
            self.leptos.site_addr,
            self.public_url.as_deref(),
            &self.allowed_hosts,
        )
    }
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

/// Panics when `config.public_url` is not an http(s) URL: check with
/// [`RouterConfig::allowed_hosts`] first (as `run` does).
pub fn router(services: Services, config: RouterConfig) -> Router {
    let allowed_hosts = Arc::new(
        config
            .allowed_hosts()
            .unwrap_or_else(|e| panic!("invalid router configuration: {e}")),
    );
    let trusted_proxies = Arc::new(TrustedProxies(config.trusted_proxies.clone()));
    let secure_cookies = config.https();
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

    let sessions = SessionManagerLayer::new(StoreSessions::new(services.clone()))
        .with_name("idra_session")
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(secure_cookies)
        .with_expiry(Expiry::OnInactivity(time::Duration::hours(12)))
        // Without it a session is saved only when changed, so "inactivity" would count from
        // sign-in. The store writes at most one touch per `TOUCH_EVERY` (session_store.rs).
        .with_always_save(true);

    Router::new()
        .nest("/api/v1", crate::api::router(services.clone()))
        .nest(
            "/locks",
            crate::locks::router(services.clone(), config.locks),
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
        .layer(axum::middleware::from_fn_with_state(
            trusted_proxies,
            resolve_client,
        ))
        // Outermost: a request for another name touches nothing, sessions included.
        .layer(axum::middleware::from_fn_with_state(
            allowed_hosts,
            refuse_unknown_host,
        ))
}
