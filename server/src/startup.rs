use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::serve::ListenerExt;
use axum::Router;

use idra_core::secret::Cipher;
use idra_core::service::Services;
use idra_core::store::{self, EtcdOptions, Keys};

use crate::cli::Cli;
use crate::{leptos_options, router, LockAccess, RouterConfig};

/// Opens the store, seeds the first admin, starts the in-process agent and serves until
/// Ctrl-C or SIGTERM.
pub async fn run(cli: Cli) -> Result<(), String> {
    let listen = cli
        .listen
        .or_else(|| std::env::var("LEPTOS_SITE_ADDR").ok()?.parse().ok())
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 3000)));
    let site_root = cli
        .site_root
        .clone()
        .or_else(|| std::env::var("LEPTOS_SITE_ROOT").ok())
        .unwrap_or_else(|| "target/site".into());
    let config = RouterConfig {
        leptos: leptos_options(&site_root, listen),
        public_url: cli.public_url.clone(),
        allowed_hosts: cli.allowed_host.clone(),
        trusted_proxies: cli.trusted_proxy.clone(),
        locks: LockAccess::from_flags(cli.lock_token.clone(), cli.locks_open)
            .map_err(|e| e.to_string())?,
    };
    // A bad --public-url stops the start here, before anything is opened.
    config.allowed_hosts()?;
    match config.locks {
        LockAccess::Off => tracing::info!(
            "the lock service at /locks is off; --lock-token or --locks-open turns it on"
        ),
        LockAccess::Open => tracing::warn!(
            "the lock service at /locks is open to anyone who can reach this server (--locks-open)"
        ),
        LockAccess::Token(_) => {}
    }
    if !Path::new(&site_root).join("pkg").exists() {
        tracing::warn!(
            "no UI assets in {site_root}/pkg: pages will render but not hydrate; build them with `make run` (or `cargo leptos build`)"
        );
    }

    // Before any connector can be opened (the agent, "Test connection").
    let sqlite_dir = cli.sqlite_dir();
    idra_agent::connectors::sqlite::set_dir(sqlite_dir)?;

    let cluster = !cli.etcd.is_empty();
    let etcd = cluster.then(|| EtcdOptions {
        endpoints: cli.etcd.clone(),
        user: cli.etcd_user.clone(),
        password: cli.etcd_password.clone(),
        ca: cli.etcd_ca.clone(),
        cert: cli.etcd_cert.clone(),
        key: cli.etcd_key.clone(),
    });
    let store = store::open(etcd, &cli.data_dir)
        .await
        .map_err(|e| e.to_string())?;
    let cipher =
        Cipher::load((!cluster).then_some(cli.data_dir.as_path())).map_err(|e| e.to_string())?;
    let keys = Keys::new(&cli.store_prefix);
    tracing::info!(
        "SQLite data sources: files under {} (--sqlite-dir)",
        sqlite_dir
            .canonicalize()
            .as_deref()
            .unwrap_or(sqlite_dir)
            .display()
    );
    let services = Services::new(store.clone(), keys.clone(), cipher)
        .with_probe(Arc::new(idra_agent::probe::ConnectorProbe));

    let admin_password = std::env::var(idra_core::service::ADMIN_PASSWORD_ENV).ok();
    if services
        .bootstrap(admin_password.clone())
        .await
        .map_err(|e| e.to_string())?
    {
        match admin_password {
            Some(_) => {
                tracing::info!("created user admin with the password from IDRA_ADMIN_PASSWORD")
            }
            None => {
                tracing::warn!("created user admin with password admin: change it after signing in")
            }
        }
    }

    // Single mode runs an agent in this process (it elects itself and runs every enabled
    // sync); cluster mode only with --with-agent.
    let (stop_agent, agent_stop_rx) = tokio::sync::watch::channel(false);
    let agent = if cli.no_agent || (cluster && !cli.with_agent) {
        None
    } else {
        let agent = idra_agent::cluster::ClusterAgent {
            store: store.clone(),
            keys: keys.clone(),
            cipher: services.cipher.clone(),
            lease_ttl: cli.lease_ttl,
            address: listen.to_string(),
        };
        Some(tokio::spawn(agent.run(agent_stop_rx)))
    };

    let app = app(services, config);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}; pass --listen with a free address"))?
        // Pages stream in several writes (the shell, then each resolved Suspense). With Nagle's
        // algorithm a small write waits for the client's delayed ACK: 40 ms added to about one
        // dashboard load in fifteen, measured.
        .tap_io(|stream| {
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!(error = %e, "could not set TCP_NODELAY on a connection");
            }
        });
    tracing::info!(
        "Idra serving on http://{listen} ({} store)",
        if cluster { "etcd" } else { "embedded" }
    );
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .map_err(|e| e.to_string())?;
    if let Some(agent) = agent {
        let _ = stop_agent.send(true);
        match agent.await {
            Ok(Err(e)) => tracing::error!(error = %e, "the in-process agent stopped with an error"),
            Err(e) => tracing::error!(error = %e, "the in-process agent panicked"),
            Ok(Ok(())) => {}
        }
    }
    Ok(())
}

/// The router `run` serves, built here so tests drive exactly what users reach.
/// An https `public_url` makes the session cookie `Secure` and adds HSTS.
pub(crate) fn app(services: Services, config: RouterConfig) -> Router {
    let https = config.https();
    let routes = router(services, config);
    // Same test as leptos' AutoReload: the page then carries the live-reload script.
    let live_reload = std::env::var("LEPTOS_WATCH").is_ok();
    crate::security_headers::apply(routes, https, live_reload)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
