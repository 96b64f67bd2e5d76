//! TOTP for tests: codes from the real `oathtool` at the server's clock, enrolment, the
//! login's second step, a code that is surely wrong, and the claims of an access token.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera_app::ports::Clock;
use tessera_core::mfa::totp::{DIGITS, SKEW_STEPS, TotpSecret, code_at_step, step_at};
use time::OffsetDateTime;

use super::{PASSWORD, TestApp, s};

/// The TOTP code `oathtool` computes for `secret` at `at` (the server's manual clock).
/// None, after the skip notice, when oathtool is not installed.
pub fn oathtool(secret: &str, at: OffsetDateTime) -> Option<String> {
    let now = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    );
    match std::process::Command::new("oathtool")
        .args(["--totp", "-b", "--now", &now, secret])
        .output()
    {
        Ok(out) if out.status.success() => {
            Some(String::from_utf8(out.stdout).unwrap().trim().to_owned())
        }
        _ => {
            tessera_adapters::testing::skip_or_fail("oathtool", "apt-get install oathtool");
            None
        }
    }
}

/// A signed-in user who enrolled TOTP. Returns (email, login body, secret, recovery codes).
pub async fn enrolled(app: &TestApp, device: &str) -> Option<(String, Value, String, Vec<String>)> {
    let (email, login) = app.signed_in_user(device).await;
    let (secret, codes) = enroll(app, &s(&login, "access_token")).await?;
    Some((email, login, secret, codes))
}

/// Enrols TOTP for the session behind `at` (set-up, then a current code). Returns (secret,
/// recovery codes).
pub async fn enroll(app: &TestApp, at: &str) -> Option<(String, Vec<String>)> {
    let setup: Value = app
        .post_auth("/v1/mfa/totp/setup", at, json!({"password": PASSWORD}))
        .await
        .json()
        .await
        .unwrap();
    let secret = s(&setup, "secret");
    let code = oathtool(&secret, app.clock.now())?;
    let res = app
        .post_auth("/v1/mfa/totp/confirm", at, json!({"code": code}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    Some((secret, issued_codes(&body)))
}

/// The `recovery_codes` of an enrolment's or a regeneration's answer.
pub fn issued_codes(body: &Value) -> Vec<String> {
    body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect()
}

/// Checks recovery codes as issued: 120 random bits each, shown as six dash-separated
/// groups of four lower-case base32 characters (`xxxx-xxxx-xxxx-xxxx-xxxx-xxxx`).
pub fn assert_issued_codes<C: AsRef<str>>(codes: &[C]) {
    for code in codes.iter().map(AsRef::as_ref) {
        let groups: Vec<&str> = code.split('-').collect();
        assert_eq!(groups.len(), 6, "{code}");
        assert!(
            groups.iter().all(|g| g.len() == 4
                && g.bytes()
                    .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))),
            "{code}"
        );
        let bits = data_encoding::BASE32_NOPAD
            .decode(code.replace('-', "").to_ascii_uppercase().as_bytes())
            .unwrap_or_else(|e| panic!("{code}: {e}"));
        assert_eq!(bits.len() * 8, 120, "{code}");
    }
}

/// The login's second step.
pub async fn login_mfa(app: &TestApp, mfa_token: &str, code: &str) -> reqwest::Response {
    app.post(
        "/v1/auth/login/mfa",
        json!({"mfa_token": mfa_token, "code": code}),
    )
    .await
}

/// A six-digit code the server refuses for `secret` (base32) at `at`: one equal to none
/// of the codes it accepts then, the current step's or a neighbour's within the skew. A
/// fixed "000000" would be right about once in 330,000 runs.
pub fn wrong_code(secret: &str, at: OffsetDateTime) -> String {
    let bytes = data_encoding::BASE32_NOPAD
        .decode(secret.as_bytes())
        .unwrap();
    let secret = TotpSecret::from_bytes(&bytes).unwrap();
    let now = step_at(at);
    let accepted: Vec<u32> = (now - SKEW_STEPS..=now + SKEW_STEPS)
        .map(|step| code_at_step(&secret, step, DIGITS))
        .collect();
    (0..=9)
        .map(|d| d * 111_111)
        .find(|code| !accepted.contains(code))
        .map(|code| format!("{code:06}"))
        .unwrap()
}

/// Moves the clock to the next TOTP step, so a fresh code exists.
pub fn next_step(app: &TestApp) {
    app.clock.advance(time::Duration::seconds(30));
}

pub fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &data_encoding::BASE64URL_NOPAD
            .decode(payload.as_bytes())
            .unwrap(),
    )
    .unwrap()
}

/// A user with TOTP on, granted `admin`, signed in with a fresh second factor: their
/// access token. None when the machine lacks `oathtool` (after a skip notice).
pub async fn enrolled_admin(app: &TestApp) -> Option<String> {
    let (_, admin_login, _, _) = enrolled(app, "admin-laptop").await?;
    let admin_at = s(&admin_login, "access_token");
    let admin_me: Value = app
        .get_auth("/v1/me", &admin_at)
        .await
        .json()
        .await
        .unwrap();
    app.grant_role(&s(&admin_me, "user_id"), "admin").await;
    Some(admin_at)
}
