//! The command line: `tessera serve`, `tessera migrate`, `tessera admin …`.

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
    /// Operator actions on the server host (see docs/sop/mfa-reset.md). Each is recorded
    /// on the user's security events with the operator's name.
    Admin {
        /// Who is acting (recorded); defaults to $SUDO_USER or $USER.
        #[arg(long, global = true)]
        operator: Option<String>,
        #[command(subcommand)]
        action: AdminCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Add a role (e.g. admin, vendor) to a user.
    GrantRole {
        #[arg(long)]
        email: String,
        #[arg(long)]
        role: String,
    },
    /// Remove a user's TOTP factor and recovery codes and end all their sessions.
    MfaReset {
        #[arg(long)]
        email: String,
        /// Why: the ticket and how identity was verified (recorded verbatim).
        #[arg(long)]
        reason: String,
    },
    /// Email a user a password-reset link (valid 30 minutes, replacing any earlier one),
    /// without choosing or seeing the password. A running server's outbox worker sends it.
    SendPasswordReset {
        #[arg(long)]
        email: String,
        /// Why: the ticket and how identity was verified (recorded verbatim).
        #[arg(long)]
        reason: String,
    },
    /// Re-seal every signing key and TOTP secret under the current master key
    /// (TESSERA_MASTER_KEY), opening them with it or with TESSERA_MASTER_KEY_PREVIOUS.
    /// See docs/operations.md, "Rotating the master key".
    RotateMasterKey,
    /// Disable a user's account: every session ends on every node, its password signs
    /// nobody in and no reset link is sent or honoured until enable-user. The user is
    /// notified. See docs/operations.md, "Disabling an account".
    DisableUser {
        #[arg(long)]
        email: String,
        /// Why: the ticket and who asked (recorded verbatim).
        #[arg(long)]
        reason: String,
    },
    /// Enable a disabled account again (its password works again; no session returns).
    EnableUser {
        #[arg(long)]
        email: String,
        /// Why: the ticket and who asked (recorded verbatim).
        #[arg(long)]
        reason: String,
    },
    /// End every session of a user.
    RevokeSessions {
        #[arg(long)]
        email: String,
    },
    /// Delete what retention allows (sessions ended long ago with their refresh-token
    /// history, expired MFA challenges, old security events), a bounded batch per table
    /// at a time until none is left; prints the counts. See docs/operations.md, "Retention".
    Purge {
        /// Run one bounded batch only.
        #[arg(long)]
        once: bool,
    },
    /// Check every user's security-event hash chain: exit 0 with the counts when intact,
    /// exit 1 naming the first event whose stored row no longer matches, exit 3 when the
    /// database cannot be read. Needs only the database (no master key). See
    /// docs/operations.md, "Audit trail".
    VerifyAudit,
}
