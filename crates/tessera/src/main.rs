use clap::Parser;
use tessera::cli::{Cli, Command};
use tessera::config::Config;
use tessera::startup::{Application, Backend, run_admin, shutdown_signal};
use tessera::telemetry;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref())?;
    telemetry::init(config.log_format);
    match cli.command {
        Command::Serve { no_migrate } => {
            let app = Application::build_with_clock(
                &config,
                std::sync::Arc::new(tessera_adapters::SystemClock),
                !no_migrate,
            )
            .await?;
            tracing::info!(addr = %app.local_addr()?, database = %redact_url(&config.database_url), "tessera listening");
            app.run_until(shutdown_signal()).await?;
        }
        Command::Admin { operator, action } => {
            let operator = operator
                .or_else(|| std::env::var("SUDO_USER").ok())
                .or_else(|| std::env::var("USER").ok())
                .unwrap_or_else(|| "unknown-operator".into());
            println!("{}", run_admin(&config, operator, action).await?);
        }
        Command::Migrate => {
            Backend::connect(&config.database_url)
                .await?
                .migrate()
                .await?;
            tracing::info!("migrations applied");
        }
    }
    Ok(())
}

/// Drops any password from a database URL before it is logged.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}://[redacted]@{}", &url[..scheme_end], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}
