//! `tessera admin …`: operator commands run against the configured database, each
//! through the same application `serve` builds, so they are recorded and published alike.

use std::sync::Arc;

use tessera_adapters::SystemClock;
use tessera_app::ports::{Store, UserRecord};
use tessera_app::{Actor, App, AppError, RequestContext};
use tessera_core::Email;
use tessera_core::ids::Role;

use crate::cli::AdminCommand;
use crate::config::Config;
use crate::master_key;
use crate::startup::{Backend, build_app};

/// Runs one operator command against the configured database; the line to print.
pub async fn run(
    config: &Config,
    operator: String,
    action: AdminCommand,
) -> anyhow::Result<String> {
    let backend = Backend::connect_with(&config.database_url, config.database).await?;
    if let AdminCommand::VerifyAudit = action {
        // Only reads, and so never migrates: migrating links into the chains any event
        // row that has none (rows from before the chains existed), which would adopt a
        // row slipped in by hand instead of letting it show. It needs no master key
        // either, nor the application (whose start writes a signing key to an empty
        // database).
        return match &backend {
            Backend::Sqlite(store) => crate::audit::verify(store).await,
            Backend::Postgres(store) => crate::audit::verify(store).await,
        };
    }
    backend.migrate().await?;
    warn_if_notices_go_to_the_log(config, &action);
    match backend {
        Backend::Sqlite(store) => run_with(store, config, operator, action).await,
        Backend::Postgres(store) => run_with(store, config, operator, action).await,
    }
}

async fn run_with<S: Store>(
    store: S,
    config: &Config,
    operator: String,
    action: AdminCommand,
) -> anyhow::Result<String> {
    let master = master_key::load_ring(&config.master_key, &config.master_key_previous)?;
    let current_key_id = master.current().id_hex();
    // Published to, so running nodes drop what this command revokes at once; without
    // Redis there is nothing to publish to (an SQLite server watches its file instead).
    let app = build_app(store, config, Arc::new(SystemClock), master, None).await?;
    let actor = Actor::Operator(operator);
    let ctx = RequestContext::default();
    let out = match action {
        AdminCommand::GrantRole { email, role } => {
            let user = user_by_email(&app, &email).await?;
            let role = Role::parse(&role).map_err(|e| anyhow::anyhow!("--role {e}"))?;
            let roles = app
                .admin_grant_role(&actor, user.id, role, &ctx)
                .await
                .map_err(admin_error)?;
            let names: Vec<&str> = roles.iter().map(Role::as_str).collect();
            format!("{email}: roles now [{}]", names.join(", "))
        }
        AdminCommand::MfaReset { email, reason } => {
            let user = user_by_email(&app, &email).await?;
            let revoked = app
                .admin_mfa_reset(&actor, user.id, &reason, &ctx)
                .await
                .map_err(admin_error)?;
            format!("{email}: TOTP and recovery codes removed, {revoked} session(s) revoked")
        }
        AdminCommand::SendPasswordReset { email, reason } => {
            let user = user_by_email(&app, &email).await?;
            app.admin_send_password_reset(&actor, user.id, &reason, &ctx)
                .await
                .map_err(admin_error)?;
            format!(
                "{email}: password-reset link queued (valid {} minutes; any earlier link void)",
                tessera_app::RESET_TOKEN_TTL.whole_minutes()
            )
        }
        AdminCommand::RotateMasterKey => {
            let report = app.rotate_master_key().await.map_err(admin_error)?;
            let summary = format!(
                "re-sealed under master key {}: {} signing key(s), {} TOTP secret(s), \
                 {} queued notification secret(s)",
                current_key_id, report.signing_keys, report.totp_secrets, report.outbox_secrets
            );
            if !report.is_complete() {
                anyhow::bail!(
                    "{summary}; {} value(s) skipped after concurrent changes and {} value(s) \
                     no configured master key opens (see the log). Keep \
                     TESSERA_MASTER_KEY_PREVIOUS and run this command again.",
                    report.skipped,
                    report.unreadable
                );
            }
            summary
        }
        AdminCommand::RevokeSessions { email } => {
            let user = user_by_email(&app, &email).await?;
            let revoked = app
                .admin_revoke_sessions(&actor, user.id, &ctx)
                .await
                .map_err(admin_error)?;
            format!("{email}: {revoked} session(s) revoked")
        }
        AdminCommand::DisableUser { email, reason } => {
            let user = user_by_email(&app, &email).await?;
            let done = app
                .admin_disable_user(&actor, user.id, &reason, &ctx)
                .await
                .map_err(admin_error)?;
            let state = if done.changed {
                "disabled"
            } else {
                "already disabled, nothing recorded"
            };
            format!(
                "{email}: {state}, {} session(s) revoked",
                done.sessions_revoked
            )
        }
        AdminCommand::EnableUser { email, reason } => {
            let user = user_by_email(&app, &email).await?;
            let done = app
                .admin_enable_user(&actor, user.id, &reason, &ctx)
                .await
                .map_err(admin_error)?;
            let state = if done.changed {
                "enabled"
            } else {
                "not disabled, nothing changed"
            };
            format!("{email}: {state}")
        }
        AdminCommand::Purge { once } => {
            let (report, runs) =
                crate::retention::purge_until_done(&app, once, std::time::Duration::ZERO)
                    .await
                    .map_err(admin_error)?;
            crate::retention::summary(&report, runs)
        }
        AdminCommand::VerifyAudit => crate::audit::verify(app.store()).await?,
    };
    Ok(out)
}

/// Outbox rows are addressed to the channels of the process that queues them, and a
/// server claims only rows for its own: a notice queued by a command run without the
/// server's channel settings goes to the log channel, where it waits for a node that
/// writes to the log (docs/operations.md says how to re-address it), and the user is not
/// told meanwhile. Say so before it happens.
fn warn_if_notices_go_to_the_log(config: &Config, action: &AdminCommand) {
    let notifies = matches!(
        action,
        AdminCommand::MfaReset { .. }
            | AdminCommand::RevokeSessions { .. }
            | AdminCommand::SendPasswordReset { .. }
            | AdminCommand::DisableUser { .. }
            | AdminCommand::EnableUser { .. }
    );
    if notifies && config.notify.smtp.is_none() && config.notify.webhook.is_none() {
        tracing::warn!(
            "no notification channel is configured for this command (TESSERA_SMTP_URL, \
             TESSERA_WEBHOOK_URL): the notice it queues is addressed to the log channel, and \
             a server with SMTP or a webhook will leave it waiting. Run admin commands with \
             the server's settings (the same --config file or environment)."
        );
    }
}

/// The account `--email` names: a malformed address or no such user is the command's error.
async fn user_by_email<S: Store>(app: &App<S>, email: &str) -> anyhow::Result<UserRecord> {
    let email = Email::parse(email).map_err(|e| anyhow::anyhow!("--email {e}"))?;
    app.find_user_by_email(&email).await.map_err(admin_error)
}

fn admin_error(e: AppError) -> anyhow::Error {
    match e {
        AppError::NotFound => anyhow::anyhow!("no user with that email address"),
        other => anyhow::Error::new(other),
    }
}
