//! The step-up policy from the file's `[[step_up]]` tables; without any, the defaults.

use anyhow::bail;
use serde::Deserialize;
use tessera_core::ids::Role;
use tessera_core::policy::{ActionPolicy, StepUpPolicy};

/// One `[[step_up]]` rule of the settings file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StepUpRule {
    action: String,
    role: String,
    max_age: i64,
    #[serde(default = "yes")]
    require_enrollment: bool,
}

fn yes() -> bool {
    true
}

/// Given rules replace the whole `default`, so the file lists every action.
pub(super) fn resolve(
    from_file: Option<Vec<StepUpRule>>,
    default: &StepUpPolicy,
) -> anyhow::Result<StepUpPolicy> {
    let Some(rules) = from_file else {
        return Ok(default.clone());
    };
    let rules = rules
        .into_iter()
        .map(|r| {
            let role = Role::parse(&r.role)
                .map_err(|e| anyhow::anyhow!("step_up role {:?}: {e}", r.role))?;
            if r.max_age < 1 {
                bail!(
                    "step_up max_age for {:?} must be at least 1 second",
                    r.action
                );
            }
            let policy = ActionPolicy {
                role,
                max_age: time::Duration::seconds(r.max_age),
                require_enrollment: r.require_enrollment,
            };
            Ok((r.action, policy))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    StepUpPolicy::new(rules).map_err(|e| anyhow::anyhow!("step_up: {e}"))
}
