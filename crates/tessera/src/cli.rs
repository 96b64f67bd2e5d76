//! The command line: `tessera serve`, `tessera migrate`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "tessera",
    version,
    about = "Sessions, refresh-token rotation and MFA as a service"
)]
pub struct Cli {
    /// Settings file (default: ./tessera.toml when it exists). Environment variables override it.
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server.
    Serve {
        /// Do not apply pending migrations at start (run `tessera migrate` yourself).
        #[arg(long)]
        no_migrate: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate,
}
