//! When a page rotates the browser's refresh cookie: only on a request the browser says
//! is not cross-site, and so that a rotation whose response never arrived still reaches
//! the browser (docs/security.md, "Browser session").

use reqwest::StatusCode;
use reqwest::header::SET_COOKIE;
use tessera_app::BROWSER_RETRY_WINDOW;
use tokio::io::AsyncWriteExt;

use crate::both_backends;
use crate::helpers::Browser;
use crate::helpers::{Backend, FormClient, PASSWORD, TestApp, new_user, s};

const ACCESS_LIFETIME: time::Duration = time::Duration::seconds(900);

/// A signed-in form client whose access cookie has just expired.
async fn signed_in_then_expired(app: &TestApp) -> FormClient {
    let email = new_user(app).await;
    let mut web = FormClient::new(app);
    web.sign_in(&email).await;
    assert!(web.cookie("__Host-tessera_refresh").is_some());
    app.clock
        .advance(ACCESS_LIFETIME + time::Duration::seconds(1));
    web
}

/// How many refresh tokens have been exchanged for a successor, straight from the store.
async fn rotations(app: &TestApp) -> i64 {
    app.count_rows("refresh_tokens WHERE used_at IS NOT NULL")
        .await
}

/// The session cookies a response sets (name and value), deletions included.
fn session_cookies_set(res: &reqwest::Response) -> Vec<String> {
    res.headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .filter(|c| {
            c.starts_with("__Host-tessera_refresh=") || c.starts_with("__Host-tessera_session=")
        })
        .collect()
}

/// Asserts `res` is the continue page on to `path`, then returns nothing set.
async fn assert_continue_page(res: reqwest::Response, path: &str) {
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(session_cookies_set(&res), Vec::<String>::new());
    let headers = res.headers().clone();
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["cross-origin-opener-policy"], "same-origin");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let html = res.text().await.unwrap();
    assert!(
        html.contains(&format!(
            "<meta http-equiv=\"refresh\" content=\"0; url={path}\">"
        )),
        "{html}"
    );
    assert!(
        html.contains(&format!("<a id=\"continue\" href=\"{path}\">")),
        "{html}"
    );
    assert!(
        !html.contains("<script"),
        "no script, inline or not: {html}"
    );
}

#[tokio::test]
async fn a_cross_site_arrival_with_an_expired_access_cookie_rotates_nothing_and_continues_same_origin()
 {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let mut web = signed_in_then_expired(&app).await;
    let refresh = web.cookie("__Host-tessera_refresh").unwrap();
    for site in ["cross-site", "same-site"] {
        let res = web
            .get_with("/account/security", &[("sec-fetch-site", site)])
            .await;
        assert_continue_page(res, "/account/security").await;
        assert_eq!(
            rotations(&app).await,
            0,
            "{site}: the stored token is unchanged"
        );
        assert_eq!(web.cookie("__Host-tessera_refresh"), Some(refresh.clone()));
    }
    // The sign-in page does not rotate for another site either.
    let res = web
        .get_with("/login", &[("sec-fetch-site", "cross-site")])
        .await;
    assert_continue_page(res, "/login").await;
    assert_eq!(rotations(&app).await, 0);

    // The continue page's own request is same-origin: it rotates and shows the page.
    let res = web
        .get_with("/account/security", &[("sec-fetch-site", "same-origin")])
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(rotations(&app).await, 1);
    assert_ne!(web.cookie("__Host-tessera_refresh"), Some(refresh));
    assert!(res.text().await.unwrap().contains("Account security"));
    assert_eq!(app.count_events("refresh_token_reused").await, 0);
}

#[tokio::test]
async fn a_same_origin_typed_or_unlabelled_visit_with_an_expired_access_cookie_rotates() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let mut web = signed_in_then_expired(&app).await;
    let sites: [&[(&str, &str)]; 3] = [
        &[("sec-fetch-site", "same-origin")],
        &[("sec-fetch-site", "none")],
        // An older browser: no Fetch Metadata at all.
        &[],
    ];
    for (n, headers) in (1..).zip(sites) {
        let before = web.cookie("__Host-tessera_refresh");
        let res = web.get_with("/account/security", headers).await;
        assert_eq!(res.status(), StatusCode::OK, "{headers:?}");
        assert_eq!(session_cookies_set(&res).len(), 2, "{headers:?}");
        assert_eq!(rotations(&app).await, n, "{headers:?}");
        assert_ne!(web.cookie("__Host-tessera_refresh"), before);
        app.clock
            .advance(ACCESS_LIFETIME + time::Duration::seconds(1));
    }
}

#[tokio::test]
async fn a_live_access_cookie_still_opens_the_page_from_another_site() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let email = new_user(&app).await;
    let mut web = FormClient::new(&app);
    web.sign_in(&email).await;
    // A link in a notification email: nothing needs rotating, so nothing is deferred.
    let res = web
        .get_with("/account/security", &[("sec-fetch-site", "cross-site")])
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("Account security"));
}

/// Sends a page request over a raw connection and returns the connection unread.
async fn send_page_request(app: &TestApp, cookie: &str) -> tokio::net::TcpStream {
    let mut conn = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let request = format!(
        "GET /account/security HTTP/1.1\r\nHost: {}\r\nCookie: {cookie}\r\n\
         Sec-Fetch-Site: same-origin\r\n\r\n",
        app.addr
    );
    conn.write_all(request.as_bytes()).await.unwrap();
    conn.flush().await.unwrap();
    conn
}

/// The browser that never got a rotation's answer comes back with its old cookies.
async fn the_old_cookies_still_sign_in(app: &TestApp, web: &mut FormClient, old: &str) {
    let res = web.get_with("/account/security", &[]).await;
    assert_eq!(res.status(), StatusCode::OK, "still signed in");
    let renewed = web.cookie("__Host-tessera_refresh").unwrap();
    assert_ne!(renewed, old, "the successor is delivered");
    assert_eq!(app.count_events("refresh_token_reused").await, 0);
    assert_eq!(rotations(app).await, 1, "one rotation, not two");
    // And it is the live token: the session goes on past the next expiry.
    app.clock
        .advance(ACCESS_LIFETIME + time::Duration::seconds(1));
    let res = web.get_with("/account/security", &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(rotations(app).await, 2);
    assert_eq!(app.count_events("refresh_token_reused").await, 0);
}

async fn a_page_load_abandoned_after_the_rotation_keeps_the_session(app: TestApp) {
    let mut web = signed_in_then_expired(&app).await;
    let old = web.cookie("__Host-tessera_refresh").unwrap();
    let conn = send_page_request(&app, &web.cookie_header()).await;
    // The server rotates; the browser goes away without reading the answer.
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while rotations(&app).await == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the page request rotated the refresh token");
    drop(conn);
    the_old_cookies_still_sign_in(&app, &mut web, &old).await;
}

both_backends!(
    a_page_load_abandoned_after_the_rotation_keeps_the_session_on,
    a_page_load_abandoned_after_the_rotation_keeps_the_session
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_load_dropped_right_after_sending_keeps_the_session() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let mut web = signed_in_then_expired(&app).await;
    let old = web.cookie("__Host-tessera_refresh").unwrap();
    // Dropped at once: the server may drop the handler mid-rotation, or never start one.
    drop(send_page_request(&app, &web.cookie_header()).await);
    let res = web.get_with("/account/security", &[]).await;
    assert_eq!(res.status(), StatusCode::OK, "still signed in");
    assert_ne!(web.cookie("__Host-tessera_refresh").unwrap(), old);
    assert_eq!(app.count_events("refresh_token_reused").await, 0);
}

/// Another browser presenting a copy of `cookie` (redirects not followed).
async fn replay(app: &TestApp, cookie: &str) -> reqwest::Response {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    http.get(app.url("/account/security"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_old_refresh_cookie_within_the_window_gets_the_same_successor_and_nothing_more() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let mut web = signed_in_then_expired(&app).await;
    let copy = web.cookie_header();
    assert_eq!(
        web.get_with("/account/security", &[]).await.status(),
        StatusCode::OK
    );
    let successor = web.cookie("__Host-tessera_refresh").unwrap();
    // Within the window, while the successor is unused: that very successor, every time.
    for _ in 0..2 {
        let res = replay(&app, &copy).await;
        assert_eq!(res.status(), StatusCode::OK);
        let refresh: Vec<_> = session_cookies_set(&res)
            .into_iter()
            .filter_map(|c| c.strip_prefix("__Host-tessera_refresh=").map(str::to_owned))
            .collect();
        assert_eq!(refresh, vec![successor.clone()]);
    }
    assert_eq!(rotations(&app).await, 1);
    assert_eq!(app.count_events("refresh_token_reused").await, 0);
}

#[tokio::test]
async fn an_old_refresh_cookie_is_reuse_once_its_successor_was_used_or_the_window_passed() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    // The successor was used (here by the API, at once): a copy of the old cookie is reuse.
    let mut web = signed_in_then_expired(&app).await;
    let copy = web.cookie_header();
    assert_eq!(
        web.get_with("/account/security", &[]).await.status(),
        StatusCode::OK
    );
    let successor = web.cookie("__Host-tessera_refresh").unwrap();
    assert_eq!(app.refresh(&successor).await.status(), StatusCode::OK);
    assert_eq!(replay(&app, &copy).await.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.count_events("refresh_token_reused").await, 1);

    // The successor is unused but the window has passed: reuse too.
    let mut web = signed_in_then_expired(&app).await;
    let copy = web.cookie_header();
    assert_eq!(
        web.get_with("/account/security", &[]).await.status(),
        StatusCode::OK
    );
    app.clock
        .advance(BROWSER_RETRY_WINDOW + time::Duration::seconds(1));
    assert_eq!(replay(&app, &copy).await.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.count_events("refresh_token_reused").await, 2);
}

#[tokio::test]
async fn another_clients_rotation_does_not_clear_the_seal_a_browser_still_needs() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let (_, api) = app.signed_in_user("laptop-cli").await;
    let mut web = signed_in_then_expired(&app).await;
    let copy = web.cookie_header();
    assert_eq!(
        web.get_with("/account/security", &[]).await.status(),
        StatusCode::OK
    );
    // An API client (no retry window by default) rotates while the browser's seal is
    // still within the browser's window.
    app.clock.advance(time::Duration::seconds(1));
    let res = app.refresh(&s(&api, "refresh_token")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(replay(&app, &copy).await.status(), StatusCode::OK);
    assert_eq!(app.count_events("refresh_token_reused").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_browser_arriving_from_another_site_goes_on_by_itself_and_rotates_once() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let email = new_user(&app).await;
    let Some(browser) = Browser::start().await else {
        return;
    };
    browser.open(&app, "/login").await;
    browser.fill("#email", &email).await;
    browser.fill("#password", PASSWORD).await;
    browser.click_and_wait("#sign-in").await;
    assert_eq!(browser.path().await, "/account/security");
    app.clock
        .advance(ACCESS_LIFETIME + time::Duration::seconds(1));
    // Another site (here an opaque `data:` origin) links to the account page. Chromium
    // labels that navigation cross-site, and the continue page's own request (the meta
    // refresh) same-origin: were it not, the page would loop and never show the account.
    let other_site = format!(
        "data:text/html,%3Ca%20id%3D%22go%22%20href%3D%22{}%22%3Eopen%3C%2Fa%3E",
        app.url("/account/security")
    );
    browser.goto(&other_site).await;
    browser.click_and_wait("#go").await;
    browser.find("section#devices").await;
    assert_eq!(browser.path().await, "/account/security");
    assert_eq!(rotations(&app).await, 1);
    assert_eq!(app.count_events("refresh_token_reused").await, 0);
    browser.close().await;
}
