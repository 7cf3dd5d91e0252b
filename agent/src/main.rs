use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;
use idra_core::store::{self, EtcdOptions, Keys};

/// Idra's agent. Today it registers itself with the store and stays registered until
/// stopped; the sync engine arrives with the engine issue.
#[derive(Debug, Parser)]
#[command(name = "idra-agent", version)]
struct Cli {
    /// etcd endpoints, comma-separated (cluster mode).
    #[arg(long, env = "IDRA_ETCD", value_delimiter = ',')]
    etcd: Vec<String>,
    #[arg(long, env = "IDRA_ETCD_USER")]
    etcd_user: Option<String>,
    #[arg(long, env = "IDRA_ETCD_PASSWORD", hide_env_values = true)]
    etcd_password: Option<String>,
    /// Embedded store directory, when not using etcd (must not be open by a server).
    #[arg(long, env = "IDRA_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    #[arg(long, env = "IDRA_STORE_PREFIX", default_value = "/idra/")]
    store_prefix: String,
    /// Lease TTL in seconds: how long after a crash the agent is considered gone.
    #[arg(long, env = "IDRA_LEASE_TTL", default_value_t = 3)]
    lease_ttl: i64,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let etcd = (!cli.etcd.is_empty()).then(|| EtcdOptions {
        endpoints: cli.etcd.clone(),
        user: cli.etcd_user.clone(),
        password: cli.etcd_password.clone(),
    });
    let store = match store::open(etcd, &cli.data_dir).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("idra-agent: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let member = match idra_agent::membership::Membership::start(
        Arc::clone(&store),
        Keys::new(&cli.store_prefix),
        cli.lease_ttl,
        String::new(),
    )
    .await
    {
        Ok(m) => m,
        Err(e) => {
            eprintln!("idra-agent: cannot register: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    tracing::info!(agent = %member.info.id, "registered; waiting for work (Ctrl-C to stop)");
    let _ = tokio::signal::ctrl_c().await;
    member.stop().await;
    std::process::ExitCode::SUCCESS
}
