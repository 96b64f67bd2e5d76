//! `tessera admin verify-audit`: walks every user's event chain (see
//! `tessera_app::audit_verify`) and says what it found. An intact trail is the command's
//! output (exit 0); a break is its error (exit 1), naming the user, the event and what
//! failed, never the event's contents.

use anyhow::Context;
use tessera_app::audit_verify::{AuditReport, verify_audit};
use tessera_app::ports::AuditStore;

pub async fn verify<S: AuditStore>(store: &S) -> anyhow::Result<String> {
    let report = verify_audit(store)
        .await
        .context("reading the audit chains (is the schema migrated? run `tessera migrate`)")?;
    match report {
        AuditReport::Intact {
            chains,
            events,
            purged,
        } => Ok(format!(
            "audit trail intact: {chains} chain(s), {events} event(s) verified \
             ({purged} earlier event(s) removed by retention)"
        )),
        AuditReport::Broken(at) => anyhow::bail!("audit trail broken: {at}"),
    }
}
