//! A configured step-up policy (`[[step_up]]`) cannot loosen what the admin API demands.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, Options, TestApp, assert_problem, s};

#[tokio::test]
async fn a_permissive_policy_file_cannot_open_the_admin_api() {
    use tessera_core::ids::Role;
    use tessera_core::policy::{ActionPolicy, StepUpPolicy};
    // A misconfigured policy: support staff, no enrolment, an hour-old MFA is fine.
    let lax = StepUpPolicy::new(vec![(
        "admin.*".to_owned(),
        ActionPolicy {
            role: Role::parse("support").unwrap(),
            max_age: time::Duration::hours(1),
            require_enrollment: false,
        },
    )])
    .unwrap();
    let options = Options {
        step_up: Some(lax),
        ..Default::default()
    };
    let Some(app) = TestApp::spawn_with(Backend::Sqlite, options).await else {
        return;
    };
    let (_, support) = app.signed_in_user("d1").await;
    let at = s(&support, "access_token");
    let me: Value = app.me(&at).await;
    let id = s(&me, "user_id");
    app.grant_role(&id, "support").await;
    // The configured policy alone would allow this action...
    assert_eq!(
        app.post_auth("/v1/authorize", &at, json!({"action": "admin.roles"}))
            .await
            .status(),
        StatusCode::OK
    );
    // ...but the admin API still demands the admin role, enrolment and a fresh MFA.
    let res = app
        .post_auth(
            &format!("/v1/admin/users/{id}/roles"),
            &at,
            json!({"roles": ["admin"]}),
        )
        .await;
    assert_problem(res, 403, "forbidden").await;
    let res = app
        .post_auth(
            &format!("/v1/admin/users/{id}/roles"),
            &at,
            json!({"roles": ["Not A Role"]}),
        )
        .await;
    assert_problem(res, 403, "forbidden").await;
    let me: Value = app.me(&at).await;
    assert_eq!(me["roles"], json!(["support"]));
}
