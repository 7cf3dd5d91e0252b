use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use idra_core::store::{self, EtcdOptions, Keys};

/// Idra's agent.
///
/// Single mode: `idra-agent --config syncs.json --state-dir ./state [--once]` runs the syncs
/// of a JSON file (Idra's format, or the original Idra's array of syncs) with offsets in a
/// local state file — no etcd and no server.
///
/// Otherwise the agent joins the cluster in the store (`--etcd`, or the embedded store in
/// `--data-dir`): it registers on a lease, takes part in the leader election, and runs the
/// syncs the leader assigns to it until stopped.
// Every option is `global`: accepted before or after the subcommand, so the README's
// `idra-agent import syncs.json --etcd …` works as written.
#[derive(Debug, Parser)]
#[command(name = "idra-agent", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Run the syncs of this JSON file (single mode).
    #[arg(global = true, long, env = "IDRA_CONFIG")]
    config: Option<PathBuf>,
    /// Where single mode keeps offsets and status (state.json, replaced atomically).
    #[arg(global = true, long, env = "IDRA_STATE_DIR", default_value = "./state")]
    state_dir: PathBuf,
    /// Run every enabled sync until it has caught up, then exit (0 on success).
    #[arg(global = true, long)]
    once: bool,
    /// etcd endpoints, comma-separated (cluster mode).
    #[arg(global = true, long, env = "IDRA_ETCD", value_delimiter = ',')]
    etcd: Vec<String>,
    #[arg(global = true, long, env = "IDRA_ETCD_USER")]
    etcd_user: Option<String>,
    #[arg(
        global = true,
        long,
        env = "IDRA_ETCD_PASSWORD",
        hide_env_values = true
    )]
    etcd_password: Option<String>,

    /// TLS: CA certificate (PEM) that signed etcd's certificate; use https:// endpoints.
    #[arg(global = true, long, env = "IDRA_ETCD_CA")]
    etcd_ca: Option<PathBuf>,

    /// TLS client certificate (PEM), for etcd's --client-cert-auth.
    #[arg(global = true, long, env = "IDRA_ETCD_CERT")]
    etcd_cert: Option<PathBuf>,

    /// TLS client key (PEM).
    #[arg(global = true, long, env = "IDRA_ETCD_KEY")]
    etcd_key: Option<PathBuf>,
    /// Embedded store directory, when not using etcd (must not be open by a server).
    #[arg(global = true, long, env = "IDRA_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    #[arg(
        global = true,
        long,
        env = "IDRA_STORE_PREFIX",
        default_value = "/idra/"
    )]
    store_prefix: String,
    /// The directory SQLite data sources' files must be under (after resolving symlinks;
    /// `..` is refused); a relative path in a connection string is taken from it.
    /// `--sqlite-dir /` allows any file the agent can open. [default: --data-dir; with
    /// --config, the current directory]
    #[arg(global = true, long, env = "IDRA_SQLITE_DIR")]
    sqlite_dir: Option<PathBuf>,
    /// Lease TTL in seconds: how long after a crash the agent is considered gone.
    #[arg(global = true, long, env = "IDRA_LEASE_TTL", default_value_t = 3)]
    lease_ttl: i64,
}

impl Cli {
    /// `--sqlite-dir`, or its default. With `--config` the file's author (whoever runs the
    /// agent) names the files, and relative paths keep meaning the current directory;
    /// otherwise data sources come from the store, where any editor can save one, so files
    /// stay under the data dir (on a cluster agent that has none, SQLite is refused until
    /// an admin names a directory).
    fn sqlite_dir(&self) -> PathBuf {
        match (&self.sqlite_dir, &self.config) {
            (Some(dir), _) => dir.clone(),
            (None, Some(_)) => PathBuf::from("."),
            (None, None) => self.data_dir.clone(),
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load the syncs and data sources of a JSON file (Idra's format or the original Idra's)
    /// into the store given by --etcd or --data-dir, replacing those with the same names.
    Import { file: PathBuf },
    /// Print the store's syncs and data sources as JSON in Idra's format.
    Export {
        /// Include data source passwords in clear (they are left out by default).
        #[arg(long)]
        with_secrets: bool,
    },
}

fn fail(message: impl std::fmt::Display) -> std::process::ExitCode {
    eprintln!("idra-agent: {message}");
    std::process::ExitCode::FAILURE
}

/// Ctrl-C or SIGTERM flips the returned flag: syncs finish their batch and stop.
fn shutdown_signal() -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
        }
        tracing::info!("stopping: finishing the current batches");
        let _ = tx.send(true);
    });
    rx
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if let Err(e) = idra_agent::connectors::sqlite::set_dir(&cli.sqlite_dir()) {
        return fail(e);
    }

    if let Some(path) = &cli.config {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => return fail(format!("cannot read {}: {e}", path.display())),
        };
        let config = match idra_agent::config::parse(&text) {
            Ok(c) => c,
            Err(e) => return fail(format!("{}: {e}", path.display())),
        };
        return match idra_agent::engine::single::run(
            config,
            &cli.state_dir,
            cli.once,
            shutdown_signal(),
        )
        .await
        {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => fail(e),
        };
    }

    let cluster = !cli.etcd.is_empty();
    let etcd = cluster.then(|| EtcdOptions {
        endpoints: cli.etcd.clone(),
        user: cli.etcd_user.clone(),
        password: cli.etcd_password.clone(),
        ca: cli.etcd_ca.clone(),
        cert: cli.etcd_cert.clone(),
        key: cli.etcd_key.clone(),
    });
    let store = match store::open(etcd, &cli.data_dir).await {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    // Secrets: IDRA_SECRET_KEY (required with etcd), else the data dir's key file.
    let cipher = match idra_core::secret::Cipher::load((!cluster).then_some(cli.data_dir.as_path()))
    {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let keys = Keys::new(&cli.store_prefix);
    match &cli.command {
        Some(Command::Import { file }) => {
            let text = match std::fs::read_to_string(file) {
                Ok(t) => t,
                Err(e) => return fail(format!("cannot read {}: {e}", file.display())),
            };
            let config = match idra_agent::config::parse(&text) {
                Ok(c) => c,
                Err(e) => return fail(format!("{}: {e}", file.display())),
            };
            return match idra_agent::config::store_io::import(
                store.as_ref(),
                &keys,
                &cipher,
                &config,
            )
            .await
            {
                Ok(n) => {
                    println!(
                        "imported {} data sources and {} syncs",
                        n.datasources, n.syncs
                    );
                    std::process::ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            };
        }
        Some(Command::Export { with_secrets }) => {
            return match idra_agent::config::store_io::export(
                store.as_ref(),
                &keys,
                &cipher,
                *with_secrets,
            )
            .await
            {
                Ok(v) => {
                    println!("{}", serde_json::to_string_pretty(&v).expect("JSON"));
                    std::process::ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            };
        }
        None => {}
    }
    let agent = idra_agent::cluster::ClusterAgent {
        store: Arc::clone(&store),
        keys,
        cipher,
        lease_ttl: cli.lease_ttl,
        address: String::new(),
    };
    match agent.run(shutdown_signal()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_accepted_after_the_subcommand_too() {
        let cli = Cli::try_parse_from([
            "idra-agent",
            "import",
            "syncs.json",
            "--etcd",
            "http://h1:2379,http://h2:2379",
        ])
        .unwrap();
        assert_eq!(cli.etcd.len(), 2);
        assert!(matches!(cli.command, Some(Command::Import { .. })));
    }

    #[test]
    fn sqlite_files_default_to_the_data_dir_or_with_config_the_current_dir() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(["idra-agent"].iter().chain(args))
                .unwrap()
                .sqlite_dir()
        };
        assert_eq!(
            parse(&["--data-dir", "/srv/idra"]),
            PathBuf::from("/srv/idra")
        );
        assert_eq!(parse(&["--config", "syncs.json"]), PathBuf::from("."));
        assert_eq!(
            parse(&["--config", "syncs.json", "--sqlite-dir", "/srv/lite"]),
            PathBuf::from("/srv/lite")
        );
        assert_eq!(
            parse(&["--etcd", "http://h:2379", "--sqlite-dir", "/"]),
            PathBuf::from("/")
        );
    }
}
