use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_sessions=warn".into()),
        )
        .init();
    let cli = idra_server::cli::Cli::parse();
    match idra_server::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("idra-server: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
