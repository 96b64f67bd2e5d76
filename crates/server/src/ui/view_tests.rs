//! Component tests: each page template rendered with fixture data, asserting on the HTML.

use askama::Template;
use tessera_app::ports::SessionRecord;
use tessera_app::{DeviceSession, TotpSetup};
use tessera_core::ids::{DeviceId, DeviceName, SessionId, UserId};
use tessera_core::jwt::Assurance;
use tessera_core::mfa::qr::qr_svg;
use tessera_core::mfa::totp::TotpSecret;
use tessera_core::session::SessionState;
use time::macros::datetime;

use super::views::{
    AccountSecurityPage, DeviceRow, LoginMfaPage, LoginPage, MfaSetupPage, RecoveryCodesPage,
};

const CSRF: &str = "csrf-token-fixture";
const RECOVERY: [&str; 2] = [
    "abcd-efgh-ijkl-mnop-qrst-uvwx",
    "yz23-4567-abcd-efgh-ijkl-mnop",
];

fn session(n: u8, name: Option<&str>, ua: &str, current: bool) -> DeviceRow {
    let at = datetime!(2026-11-29 10:00 UTC);
    let record = SessionRecord {
        state: SessionState {
            id: SessionId::from_random([n; 16]),
            user_id: UserId::from_random([9; 16]),
            idle_expires_at: at + time::Duration::days(7),
            absolute_expires_at: at + time::Duration::days(30),
            revoked: None,
        },
        device_id: DeviceId::parse(&format!("device-{n}")).unwrap(),
        device_name: name.map(|n| DeviceName::parse(n).unwrap()),
        user_agent: Some(ua.to_owned()),
        ip: Some(format!("203.0.113.{n}").parse().unwrap()),
        created_at: at,
        last_seen_at: at + time::Duration::minutes(i64::from(n)),
        assurance: Assurance::Password,
        auth_time: at,
        mfa_verified_at: None,
        refresh_generation: 0,
    };
    DeviceRow::from(DeviceSession {
        label: tessera_core::device::label(Some(ua)),
        current,
        session: record,
    })
}

const FIREFOX_MAC: &str =
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:133.0) Gecko/20100101 Firefox/133.0";
const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";

fn account(devices: Vec<DeviceRow>, mfa_on: bool) -> String {
    account_with_codes(devices, mfa_on, 10)
}

fn account_with_codes(devices: Vec<DeviceRow>, mfa_on: bool, left: u32) -> String {
    AccountSecurityPage {
        csrf: CSRF.into(),
        email: "ana@example.com".into(),
        mfa_on,
        recovery_codes_left: left,
        devices,
        events: Vec::new(),
        notice: None,
        error: None,
    }
    .render()
    .unwrap()
}

/// The HTML of each `<li class="device…">` element, in order.
fn device_items(html: &str) -> Vec<&str> {
    html.split("<li class=\"device")
        .skip(1)
        .map(|rest| &rest[..rest.find("</li>").unwrap()])
        .collect()
}

#[test]
fn the_current_device_is_marked_and_only_the_others_can_be_revoked() {
    let html = account(
        vec![
            session(1, None, FIREFOX_MAC, true),
            session(2, Some("Ana's phone"), SAFARI_IPHONE, false),
            session(3, None, SAFARI_IPHONE, false),
        ],
        false,
    );
    let items = device_items(&html);
    assert_eq!(items.len(), 3);
    assert!(items[0].contains("This device"), "{}", items[0]);
    assert!(items[0].contains("Firefox on macOS"));
    assert!(
        !items[0].contains("revoke"),
        "the current device has no Revoke: {}",
        items[0]
    );
    for other in &items[1..] {
        assert!(!other.contains("This device"));
        assert!(other.contains("class=\"revoke danger\""), "{other}");
        assert!(other.contains(&format!("name=\"csrf\" value=\"{CSRF}\"")));
    }
    let second = SessionId::from_random([2; 16]);
    assert!(items[1].contains(&format!(
        "action=\"/account/security/sessions/{second}/revoke\""
    )));
    assert!(items[1].contains("Ana&#39;s phone"));
    assert!(items[1].contains("Safari on iPhone"), "{}", items[1]);
    assert!(items[1].contains("203.0.113.2"));
    assert!(html.contains("id=\"revoke-others\""));
}

#[test]
fn a_lone_device_is_not_offered_to_sign_out_the_others() {
    let html = account(vec![session(1, None, FIREFOX_MAC, true)], false);
    assert!(!html.contains("revoke-others"));
}

#[test]
fn a_hostile_device_name_and_user_agent_come_out_escaped() {
    let html = account(
        vec![
            session(1, None, FIREFOX_MAC, true),
            session(
                2,
                Some("<script>alert(1)</script>"),
                "<img src=x onerror=alert(2)>",
                false,
            ),
        ],
        false,
    );
    assert!(!html.contains("<script>alert(1)</script>"), "{html}");
    assert!(
        html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "{html}"
    );
    assert!(!html.contains("<img src=x"));
    assert!(
        !html.contains("<script"),
        "no script element at all on the account page"
    );
}

fn setup() -> TotpSetup {
    let secret = TotpSecret::from_random([7; 20]);
    let otpauth_uri = secret.otpauth_uri("Tessera", "ana@example.com");
    TotpSetup {
        secret: secret.to_base32(),
        qr_svg: qr_svg(&otpauth_uri).unwrap(),
        otpauth_uri,
    }
}

#[test]
fn the_setup_page_shows_the_qr_code_inline_and_the_secret_as_text() {
    let fixture = setup();
    let secret = fixture.secret.clone();
    let html = MfaSetupPage::new(CSRF.into(), fixture, None)
        .render()
        .unwrap();
    let qr = html.find("id=\"totp-qr\"").expect("the QR figure");
    assert!(
        html[qr..]
            .trim_start_matches("id=\"totp-qr\" class=\"qr\">")
            .starts_with("<svg")
    );
    assert!(!html.contains("<?xml"), "an XML declaration inside HTML");
    assert!(html.contains("aria-label=\"QR code to scan with your authenticator app\""));
    assert!(html.contains(&format!(
        "<code id=\"totp-secret\" aria-describedby=\"secret-grouped\">{secret}</code>"
    )));
    assert!(html.contains("id=\"confirm-code\""));
    assert!(html.contains(&format!("value=\"{CSRF}\"")));
    for code in RECOVERY {
        assert!(!html.contains(code));
    }
}

#[test]
fn recovery_codes_appear_only_on_the_confirm_page() {
    let codes: Vec<String> = RECOVERY.iter().map(|c| (*c).to_owned()).collect();
    let confirm = RecoveryCodesPage {
        regenerated: false,
        codes: codes.clone(),
    };
    let html = confirm.render().unwrap();
    for code in &codes {
        assert!(
            html.contains(&format!("<li><code>{code}</code></li>")),
            "{code}"
        );
    }
    assert!(html.contains("shown only once"));
    let href = confirm.download_href();
    assert!(href.starts_with("data:text/plain;charset=utf-8,"));
    assert!(
        href.contains("abcd-efgh-ijkl-mnop-qrst-uvwx%0Ayz23-4567-abcd-efgh-ijkl-mnop%0A"),
        "{href}"
    );
    assert!(html.contains("download=\"tessera-recovery-codes.txt\""));
    // Nowhere else: not on the account page (TOTP on), the setup page or the login page.
    let others = [
        account(vec![session(1, None, FIREFOX_MAC, true)], true),
        MfaSetupPage::new(CSRF.into(), setup(), None)
            .render()
            .unwrap(),
        LoginPage {
            csrf: CSRF.into(),
            email: String::new(),
            error: None,
            notice: None,
        }
        .render()
        .unwrap(),
    ];
    for page in others {
        assert!(!page.contains("recovery-codes\" class=\"codes"));
        for code in &codes {
            assert!(!page.contains(code.as_str()));
        }
    }
}

#[test]
fn every_form_on_the_account_page_carries_the_csrf_token() {
    let html = account(
        vec![
            session(1, None, FIREFOX_MAC, true),
            session(2, None, SAFARI_IPHONE, false),
        ],
        true,
    );
    let forms = html.matches("<form").count();
    assert_eq!(
        forms, 5,
        "sign out, regenerate, disable, revoke, revoke others"
    );
    assert_eq!(
        html.matches(&format!(
            "<input type=\"hidden\" name=\"csrf\" value=\"{CSRF}\">"
        ))
        .count(),
        forms
    );
    for id in ["regenerate-code", "disable-code"] {
        assert!(
            html.contains(&format!("<label for=\"{id}\">")),
            "{id} has a label"
        );
    }
}

#[test]
fn a_login_error_is_announced_and_the_email_is_kept() {
    let html = LoginPage {
        csrf: CSRF.into(),
        email: "ana\"@example.com".into(),
        error: Some("Too many failed attempts. Try again in 10 minutes.".into()),
        notice: None,
    }
    .render()
    .unwrap();
    assert!(html.contains("role=\"alert\">Too many failed attempts. Try again in 10 minutes."));
    assert!(html.contains("value=\"ana&#34;@example.com\""), "{html}");
}

/// The second step takes a recovery code too, which holds letters: a phone must offer a
/// keyboard that can type them (a numeric one cannot), and must not capitalise or
/// "correct" them.
#[test]
fn the_second_step_field_lets_a_phone_type_a_recovery_code() {
    let html = LoginMfaPage {
        csrf: CSRF.into(),
        error: None,
    }
    .render()
    .unwrap();
    let field = html
        .lines()
        .find(|l| l.contains("id=\"code\""))
        .expect("the code field");
    assert!(!field.contains("inputmode=\"numeric\""), "{field}");
    assert!(field.contains("autocapitalize=\"none\""), "{field}");
    assert!(field.contains("spellcheck=\"false\""), "{field}");
}

#[test]
fn waits_are_rounded_up_for_people() {
    use super::views::wait;
    assert_eq!(wait(0), "1 second");
    assert_eq!(wait(45), "45 seconds");
    assert_eq!(wait(60), "1 minute");
    assert_eq!(wait(61), "2 minutes");
    assert_eq!(wait(600), "10 minutes");
}

#[test]
fn running_out_of_recovery_codes_is_called_out() {
    let me = || vec![session(1, None, FIREFOX_MAC, true)];
    assert!(!account_with_codes(me(), true, 3).contains("codes-low"));
    let low = account_with_codes(me(), true, 2);
    assert!(low.contains("id=\"codes-low\""));
    assert!(low.contains("2 unused recovery codes left."));
    assert!(account_with_codes(me(), true, 1).contains("1 unused recovery code left."));
}

#[test]
fn the_continue_page_goes_on_to_its_own_path_without_script() {
    use super::session::continue_page;
    let body = |res: axum::response::Response| {
        let bytes = body_bytes(res);
        String::from_utf8(bytes).unwrap()
    };
    let html = body(continue_page("/account/security"));
    assert!(html.contains("<meta http-equiv=\"refresh\" content=\"0; url=/account/security\">"));
    assert!(html.contains("<a id=\"continue\" href=\"/account/security\">"));
    assert!(!html.contains("<script"), "{html}");
    // Never to another origin, whatever path it is handed.
    for other in [
        "//evil.example/x",
        "/\\evil.example",
        "https://evil.example/",
    ] {
        let html = body(continue_page(other));
        assert!(!html.contains("evil"), "{other}: {html}");
        assert!(html.contains("url=/account/security\""), "{other}: {html}");
    }
    // Escaped like every value.
    let html = body(continue_page("/a\"><b>"));
    assert!(!html.contains("\"><b>"), "{html}");
}

#[test]
fn only_a_request_the_browser_calls_same_origin_or_typed_may_rotate() {
    use super::session::may_rotate;
    use axum::http::{HeaderMap, HeaderValue};
    let with = |site: Option<&'static str>| {
        let mut headers = HeaderMap::new();
        if let Some(site) = site {
            headers.insert("sec-fetch-site", HeaderValue::from_static(site));
        }
        may_rotate(&headers)
    };
    assert!(with(Some("same-origin")));
    assert!(with(Some("none")));
    assert!(with(None), "an older browser, without Fetch Metadata");
    for site in ["cross-site", "same-site", "Same-Origin", "garbage"] {
        assert!(!with(Some(site)), "{site}");
    }
}

/// The body of a response built in memory (a page is a single chunk).
fn body_bytes(res: axum::response::Response) -> Vec<u8> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec()
    })
}
