//! `/forgot-password` and `/reset-password` over plain HTTP, the link read from a real
//! SMTP conversation (the in-process sink): the same answer for every address, the 429
//! page, headers that keep the link's token out of caches and `Referer`s, pages for a
//! broken link, and a reset that signs every device out.

use reqwest::StatusCode;

use crate::helpers::notify::{reset_link, spawn_with_sink};
use crate::helpers::{
    Backend, FormClient, PASSWORD, TestApp, alert, assert_cut_off, fresh_address, location,
    new_user, retry_after,
};

const NEW_PASSWORD: &str = "a brand new passphrase";
/// A token with the one spelling a real one has (`pr_` + 43 base64url characters), that
/// no server issued.
const UNKNOWN_TOKEN: &str = "pr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// Opens `/forgot-password` and asks for a link for `email`.
async fn ask_for_link(web: &mut FormClient, email: &str) -> reqwest::Response {
    assert_eq!(web.get("/forgot-password").await.status(), StatusCode::OK);
    web.post("/forgot-password", &[("email", email)]).await
}

/// Sends the reset form for `token`.
async fn reset(web: &mut FormClient, token: &str, new: &str, confirm: &str) -> reqwest::Response {
    web.post(
        "/reset-password",
        &[
            ("token", token),
            ("new_password", new),
            ("confirm_password", confirm),
        ],
    )
    .await
}

/// The page a link that cannot work gets: 400, a way to a new link, nothing echoed.
async fn assert_unusable_link(res: reqwest::Response, echoed: &str) {
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(res.headers()["referrer-policy"], "no-referrer");
    let html = res.text().await.unwrap();
    assert!(html.contains("This link does not work"), "{html}");
    assert!(html.contains("href=\"/forgot-password\""), "{html}");
    assert!(!html.contains("<form"), "no form for a dead link");
    if !echoed.is_empty() {
        assert!(!html.contains(echoed), "{echoed} shown back: {html}");
    }
}

#[tokio::test]
async fn asking_for_a_link_answers_the_same_page_for_a_known_and_an_unknown_address() {
    let Some((app, sink)) = spawn_with_sink(Backend::Sqlite).await else {
        return;
    };
    let known = new_user(&app).await;
    // Same length, so the pages can be compared byte for byte once each is named.
    let unknown = fresh_address("web");
    let mut web = FormClient::new(&app);
    let mut pages = Vec::new();
    for email in [&unknown, &known] {
        let res = ask_for_link(&mut web, email).await;
        assert_eq!(res.status(), StatusCode::OK);
        let html = res.text().await.unwrap();
        assert!(html.contains("If an account exists for"), "{html}");
        pages.push(html.replace(email.as_str(), "ADDRESS"));
    }
    assert_eq!(pages[0], pages[1], "the pages tell the addresses apart");
    // Only the known address gets a mail, with a link to this server's reset page.
    let (token, _) = reset_link(&sink, &known).await;
    assert!(token.starts_with("pr_"), "{token}");
    let mails = sink.mails();
    assert!(
        mails.iter().all(|m| m.rcpt_to == [known.as_str()]),
        "{mails:?}"
    );
}

#[tokio::test]
async fn asking_for_links_too_often_shows_the_wait() {
    // Three per address an hour, known or not alike.
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let mut web = FormClient::new(&app);
    let address = fresh_address("someone");
    for _ in 0..3 {
        assert_eq!(
            ask_for_link(&mut web, &address).await.status(),
            StatusCode::OK
        );
    }
    let res = ask_for_link(&mut web, &address).await;
    retry_after(&res);
    let html = res.text().await.unwrap();
    assert!(
        alert(&html).starts_with("Too many reset requests. Try again in"),
        "{html}"
    );
    assert!(
        html.contains(&format!("value=\"{address}\"")),
        "the address is kept"
    );

    // Ten per network an hour, whatever the addresses.
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let mut web = FormClient::new(&app);
    for n in 1..=10 {
        let other = format!("other-{n}-{}@example.com", uuid::Uuid::new_v4().simple());
        assert_eq!(
            ask_for_link(&mut web, &other).await.status(),
            StatusCode::OK,
            "{n}"
        );
    }
    let res = ask_for_link(&mut web, "last@example.com").await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn the_reset_page_is_never_cached_nor_referred_and_carries_the_token_only_in_its_form() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let mut web = FormClient::new(&app);
    let res = web
        .get(&format!("/reset-password?token={UNKNOWN_TOKEN}"))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(res.headers()["referrer-policy"], "no-referrer");
    let csp = res.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("form-action 'self'"));
    let html = res.text().await.unwrap();
    assert!(html.contains("<meta name=\"referrer\" content=\"no-referrer\">"));
    assert!(
        html.contains(&format!(
            "<input type=\"hidden\" name=\"token\" value=\"{UNKNOWN_TOKEN}\">"
        )),
        "{html}"
    );
    assert!(
        html.contains("action=\"/reset-password\""),
        "the form posts no query"
    );
    assert_eq!(
        html.matches(UNKNOWN_TOKEN).count(),
        1,
        "the token once, in the form"
    );
    assert!(html.contains("name=\"csrf\" value=\""));
    for id in ["new-password", "confirm-password"] {
        assert!(html.contains(&format!("<label for=\"{id}\">")), "#{id}");
    }
}

#[tokio::test]
async fn a_broken_or_unknown_link_shows_a_page_that_offers_a_new_one() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let mut web = FormClient::new(&app);
    let hostile = "pr_<script>alert(1)</script>";
    for query in [
        String::new(),
        "?token=".to_owned(),
        format!("?token={}", urlencode(hostile)),
        format!("?token={UNKNOWN_TOKEN}x"),
        format!("?token={UNKNOWN_TOKEN}&token={UNKNOWN_TOKEN}"),
    ] {
        let res = web.get(&format!("/reset-password{query}")).await;
        assert_unusable_link(res, "<script>").await;
    }
    // Posted (from a form page, for its CSRF cookie): a mangled token is refused before
    // anything else, an unknown one by the store.
    web.get(&format!("/reset-password?token={UNKNOWN_TOKEN}"))
        .await;
    let res = reset(&mut web, hostile, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_unusable_link(res, "<script>").await;
    let res = reset(&mut web, UNKNOWN_TOKEN, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_unusable_link(res, UNKNOWN_TOKEN).await;
    // A post from another site is refused before any page handler, token or not.
    let csrf = web.cookie("__Host-tessera_csrf").unwrap();
    let res = web
        .post_raw(
            "/reset-password",
            &[
                ("csrf", csrf.as_str()),
                ("token", UNKNOWN_TOKEN),
                ("new_password", NEW_PASSWORD),
                ("confirm_password", NEW_PASSWORD),
            ],
            &[
                ("sec-fetch-site", "cross-site"),
                ("origin", "https://evil.example"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
}

fn urlencode(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

async fn resetting_through_the_emailed_link_signs_every_device_out(backend: Backend) {
    let Some((app, sink)) = spawn_with_sink(backend).await else {
        return;
    };
    let email = new_user(&app).await;
    let phone = app.login_ok(&email, PASSWORD, "phone").await;
    // This browser is signed in too, and asks for the link itself.
    let mut web = FormClient::new(&app);
    web.sign_in(&email).await;
    let mut old_browser = web.clone();
    assert_eq!(
        ask_for_link(&mut web, &email).await.status(),
        StatusCode::OK
    );
    let (token, _) = reset_link(&sink, &email).await;
    let link = format!("/reset-password?token={token}");
    assert_eq!(web.get(&link).await.status(), StatusCode::OK);

    // Refusals on the way keep the link usable and change nothing.
    let forged = web
        .post_raw(
            "/reset-password",
            &[
                ("csrf", "forged-but-well-formed-aaaaaaaaaaaaaaaaaaaaaaaaa"),
                ("token", &token),
                ("new_password", NEW_PASSWORD),
                ("confirm_password", NEW_PASSWORD),
            ],
            &[],
        )
        .await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    for (new, confirm, says) in [
        (
            "short77",
            "short77",
            "The new password must be 8 to 256 characters.",
        ),
        (
            NEW_PASSWORD,
            "a different passphrase",
            "The two passwords differ.",
        ),
    ] {
        let res = reset(&mut web, &token, new, confirm).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{says}");
        assert_eq!(res.headers()["cache-control"], "no-store");
        let html = res.text().await.unwrap();
        assert!(alert(&html).starts_with(says), "{html}");
        assert!(
            html.contains(&format!("name=\"token\" value=\"{token}\"")),
            "the form keeps the link's token"
        );
    }
    assert_eq!(app.count_events("password_reset").await, 0);
    assert_eq!(
        app.login(&email, PASSWORD, "d").await.status(),
        StatusCode::OK
    );

    let res = reset(&mut web, &token, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let html = res.text().await.unwrap();
    assert!(html.contains("Your password has been reset"), "{html}");
    assert!(html.contains("href=\"/login\""));
    // Every device is out: the phone, and this browser, whose cookies are gone as well.
    assert_cut_off(&app, &phone).await;
    assert!(web.cookie("__Host-tessera_session").is_none());
    assert!(web.cookie("__Host-tessera_refresh").is_none());
    let res = old_browser.get("/account/security").await;
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "a copy of the old cookies"
    );
    assert_eq!(location(&res), "/login");
    // The new password signs in; the old one and the used link do not.
    assert_eq!(
        app.login(&email, NEW_PASSWORD, "d").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.login(&email, PASSWORD, "d").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let again = reset(
        &mut web,
        &token,
        "yet another passphrase",
        "yet another passphrase",
    )
    .await;
    assert_unusable_link(again, &token).await;
}

mod resetting_through_the_emailed_link {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn signs_every_device_out_sqlite() {
        resetting_through_the_emailed_link_signs_every_device_out(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn signs_every_device_out_postgres() {
        resetting_through_the_emailed_link_signs_every_device_out(Backend::Postgres).await;
    }
}
