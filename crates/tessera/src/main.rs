use clap::Parser;
use tessera::cli::{AdminCommand, Cli, Command};
use tessera::config::Config;
use tessera::startup::{Application, Backend, shutdown_signal};
use tessera::telemetry;

/// mimalloc, not glibc's malloc: Argon2 asks for 19 MiB aligned blocks, and glibc serves
/// aligned requests past its (self-raising) mmap threshold from the heap in a way that
/// fragments it, so resident memory grew by ~15 MB per hash and was never returned.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let verifying_audit = matches!(
        cli.command,
        Command::Admin {
            action: AdminCommand::VerifyAudit,
            ..
        }
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("Error: starting the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // anyhow's own `main` format: the message and its causes.
            eprintln!("Error: {e:?}");
            if verifying_audit {
                std::process::ExitCode::from(tessera::audit::exit_status(&e))
            } else {
                std::process::ExitCode::FAILURE
            }
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    // Before anything opens a TLS connection (Postgres, rediss://).
    tessera_adapters::install_tls_provider();
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
            println!("{}", tessera::admin::run(&config, operator, action).await?);
        }
        Command::Migrate => {
            Backend::connect_with(&config.database_url, config.database)
                .await?
                .migrate()
                .await?;
            tracing::info!("migrations applied");
        }
    }
    Ok(())
}

/// Drops every password from a database URL before it is logged: the user-info part
/// (`user:pw@`) and any query parameter naming one (`?password=…`, `sslpassword=…`).
fn redact_url(url: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (url, None),
    };
    // The last '@' before the query ends the user-info, even when a password holds an
    // unencoded '/' or '@'.
    let head = match (head.find("://"), head.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}://[redacted]@{}", &head[..scheme_end], &head[at + 1..])
        }
        _ => head.to_owned(),
    };
    let Some(query) = query else {
        return head;
    };
    let params: Vec<String> = query
        .split('&')
        .map(|param| match param.split_once('=') {
            Some((key, _)) if key.to_ascii_lowercase().contains("password") => {
                format!("{key}=[redacted]")
            }
            _ => param.to_owned(),
        })
        .collect();
    format!("{head}?{}", params.join("&"))
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn a_logged_database_url_shows_no_password_wherever_it_was_written() {
        let cases = [
            (
                "postgres://app:s3cret@db:5432/tessera",
                "postgres://[redacted]@db:5432/tessera",
            ),
            (
                "postgres://db:5432/tessera?user=app&password=s3cret&sslmode=require",
                "postgres://db:5432/tessera?user=app&password=[redacted]&sslmode=require",
            ),
            (
                "postgres://db/tessera?sslpassword=s3cret&PASSWORD=s3cret",
                "postgres://db/tessera?sslpassword=[redacted]&PASSWORD=[redacted]",
            ),
            (
                "postgres://app:s3/cr@et@db/tessera?password=s3cret@db",
                "postgres://[redacted]@db/tessera?password=[redacted]",
            ),
            (
                "sqlite://tessera.db?mode=rwc",
                "sqlite://tessera.db?mode=rwc",
            ),
            ("sqlite:tessera.db", "sqlite:tessera.db"),
        ];
        for (url, shown) in cases {
            assert_eq!(redact_url(url), shown, "{url}");
            assert!(!redact_url(url).contains("s3"), "{url}");
        }
    }
}
