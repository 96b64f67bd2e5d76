//! `tessera admin verify-audit`: walks every user's event chain (see
//! `tessera_app::audit_verify`) and says what it found. An intact trail is the command's
//! output (exit 0); a break is its error (exit 1, as ../API.md fixes), naming the user,
//! the event and what failed, never the event's contents. A trail that cannot be read
//! exits `UNREADABLE_EXIT` instead: a monitor must tell tampering from an outage.

use anyhow::Context;
use tessera_app::audit_verify::{AuditReport, verify_audit};
use tessera_app::ports::AuditStore;

/// The exit status of a trail that could not be read (database down, unmigrated, a wrong
/// URL), distinct from a break's 1 and from clap's 2 for a malformed command line.
pub const UNREADABLE_EXIT: u8 = 3;

/// `verify-audit`'s exit status for the error it ended with.
pub fn exit_status(error: &anyhow::Error) -> u8 {
    if error.downcast_ref::<AuditBroken>().is_some() {
        1
    } else {
        UNREADABLE_EXIT
    }
}

/// A chain does not verify: rows were changed or deleted outside Tessera.
#[derive(Debug)]
pub struct AuditBroken(String);

impl std::fmt::Display for AuditBroken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "audit trail broken: {}", self.0)
    }
}

impl std::error::Error for AuditBroken {}

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
        AuditReport::Broken(at) => Err(AuditBroken(at.to_string()).into()),
    }
}
