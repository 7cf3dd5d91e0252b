use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

/// Idra's server: web UI and REST API. Without --etcd it keeps everything in an embedded
/// store under --data-dir and runs an agent in-process (single mode).
#[derive(Debug, Parser)]
#[command(name = "idra-server", version)]
pub struct Cli {
    /// Address to serve on [default: $LEPTOS_SITE_ADDR or 127.0.0.1:3000]
    #[arg(long, env = "IDRA_LISTEN")]
    pub listen: Option<SocketAddr>,

    /// Directory of the embedded store and its secret key (single mode).
    #[arg(long, env = "IDRA_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// The directory SQLite data sources' files must be under (after resolving symlinks;
    /// `..` is refused); a relative path in a connection string is taken from it. An admin
    /// widens it by naming a parent directory (`--sqlite-dir /` allows any file the server
    /// can open). [default: --data-dir]
    #[arg(long, env = "IDRA_SQLITE_DIR")]
    pub sqlite_dir: Option<PathBuf>,

    /// etcd endpoints, comma-separated (cluster mode), e.g. http://10.0.0.1:2379,http://10.0.0.2:2379
    #[arg(long, env = "IDRA_ETCD", value_delimiter = ',')]
    pub etcd: Vec<String>,

    #[arg(long, env = "IDRA_ETCD_USER")]
    pub etcd_user: Option<String>,

    #[arg(long, env = "IDRA_ETCD_PASSWORD", hide_env_values = true)]
    pub etcd_password: Option<String>,

    /// TLS: CA certificate (PEM) that signed etcd's certificate; use https:// endpoints.
    #[arg(long, env = "IDRA_ETCD_CA")]
    pub etcd_ca: Option<PathBuf>,

    /// TLS client certificate (PEM), for etcd's --client-cert-auth.
    #[arg(long, env = "IDRA_ETCD_CERT")]
    pub etcd_cert: Option<PathBuf>,

    /// TLS client key (PEM).
    #[arg(long, env = "IDRA_ETCD_KEY")]
    pub etcd_key: Option<PathBuf>,

    /// Prefix of every key Idra writes in the store.
    #[arg(long, env = "IDRA_STORE_PREFIX", default_value = "/idra/")]
    pub store_prefix: String,

    /// Where the built UI assets are [default: $LEPTOS_SITE_ROOT or target/site]
    #[arg(long, env = "IDRA_SITE_ROOT")]
    pub site_root: Option<String>,

    /// The URL users reach the server at (e.g. https://idra.example.com behind a TLS proxy).
    /// Its host is one of the names the server answers to; https makes session cookies
    /// Secure and adds HSTS.
    #[arg(long, env = "IDRA_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Another name the server answers to, besides the listen address, localhost and the
    /// --public-url host (`name` for any port, `name:port` for one). Repeatable. Requests
    /// for any other Host are refused with 421 (DNS rebinding).
    #[arg(
        long = "allowed-host",
        env = "IDRA_ALLOWED_HOSTS",
        value_delimiter = ','
    )]
    pub allowed_host: Vec<String>,

    /// Address of a reverse proxy whose X-Forwarded-For is believed for the client's address
    /// (sign-in limits, the default password's loopback-only rule). Repeatable. Without it
    /// X-Forwarded-For is ignored.
    #[arg(
        long = "trusted-proxy",
        env = "IDRA_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxy: Vec<std::net::IpAddr>,

    /// Run no agent in this process (single mode runs one by default).
    #[arg(long, env = "IDRA_NO_AGENT")]
    pub no_agent: bool,

    /// Cluster mode: also run an agent in this process.
    #[arg(long, env = "IDRA_WITH_AGENT")]
    pub with_agent: bool,

    /// Turns the lock service at /locks on for programs that send this token (as
    /// `Authorization: Bearer <token>` or `?token=`): at least 16 letters, digits or `-._~`,
    /// e.g. from `openssl rand -hex 32`. Without it or --locks-open the service is off.
    #[arg(long, env = "IDRA_LOCK_TOKEN", hide_env_values = true)]
    pub lock_token: Option<String>,

    /// Turns the lock service at /locks on for anyone who can reach the server, with no
    /// token (only where every client on the network is trusted).
    #[arg(long, env = "IDRA_LOCKS_OPEN")]
    pub locks_open: bool,

    /// Agent lease TTL in seconds.
    #[arg(long, env = "IDRA_LEASE_TTL", default_value_t = 3)]
    pub lease_ttl: i64,
}

impl Cli {
    /// `--sqlite-dir`, or its default, the data dir: data sources come from the store, where
    /// any editor can save one, so their files stay where Idra keeps its own data unless an
    /// admin names another directory.
    pub fn sqlite_dir(&self) -> &std::path::Path {
        self.sqlite_dir.as_deref().unwrap_or(&self.data_dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_files_default_to_the_data_dir() {
        let cli = Cli::try_parse_from(["idra-server", "--data-dir", "/srv/idra"]).unwrap();
        assert_eq!(cli.sqlite_dir(), std::path::Path::new("/srv/idra"));
        let cli = Cli::try_parse_from(["idra-server", "--sqlite-dir", "/"]).unwrap();
        assert_eq!(cli.sqlite_dir(), std::path::Path::new("/"));
    }
}
