//! `FormClient`: the web pages driven over plain HTTP, as a browser without script would
//! (cookies kept, redirects not followed, every form with its CSRF token).

use std::collections::BTreeMap;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, SET_COOKIE};

use super::{PASSWORD, TestApp};

/// A cookie-keeping form client that does not follow redirects, so every answer is seen.
/// A clone is a copy of the browser's cookies as they are now.
#[derive(Clone)]
pub struct FormClient {
    /// `http://host:port` of the server.
    base: String,
    pub http: reqwest::Client,
    cookies: BTreeMap<String, String>,
    /// Every `Set-Cookie` line received, for inspection.
    pub set_cookies: Vec<String>,
}

impl FormClient {
    pub fn new(app: &TestApp) -> Self {
        Self::at(app.url(""))
    }

    pub fn at(base: String) -> Self {
        Self {
            base,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
            set_cookies: Vec::new(),
        }
    }

    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, headers: &HeaderMap) {
        for line in headers.get_all(SET_COOKIE) {
            let line = line.to_str().unwrap().to_owned();
            let pair = line.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if line.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
            self.set_cookies.push(line);
        }
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.get(name).cloned()
    }

    pub async fn get(&mut self, path: &str) -> reqwest::Response {
        self.get_with(path, &[]).await
    }

    /// A GET with extra headers (say, the `Sec-Fetch-Site` a browser would send).
    pub async fn get_with(&mut self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut req = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await.unwrap();
        self.keep(res.headers());
        res
    }

    /// Posts a form with this client's CSRF token, as the page's own form would.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let csrf = self.cookie("__Host-tessera_csrf").unwrap_or_default();
        let mut form: Vec<(&str, &str)> = vec![("csrf", &csrf)];
        form.extend_from_slice(fields);
        self.post_raw(path, &form, &[]).await
    }

    pub async fn post_raw(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .form(form);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await.unwrap();
        self.keep(res.headers());
        res
    }

    /// Opens the login page and signs in with the tests' password.
    pub async fn sign_in(&mut self, email: &str) -> reqwest::Response {
        self.sign_in_with(email, PASSWORD).await
    }

    pub async fn sign_in_with(&mut self, email: &str, password: &str) -> reqwest::Response {
        assert_eq!(self.get("/login").await.status(), StatusCode::OK);
        self.post("/login", &[("email", email), ("password", password)])
            .await
    }

    /// The value of every cookie set so far, deletions (empty values) left out.
    pub fn values_set(&self) -> Vec<String> {
        self.set_cookies
            .iter()
            .filter_map(|line| line.split(';').next()?.split_once('='))
            .map(|(_, v)| v.to_owned())
            .filter(|v| !v.is_empty())
            .collect()
    }
}

pub fn location(res: &reqwest::Response) -> &str {
    res.headers()["location"].to_str().unwrap()
}

pub async fn new_user(app: &TestApp) -> String {
    let email = fresh_address("web");
    app.register(&email, PASSWORD).await;
    email
}

/// A fresh address nobody has used, `prefix-<random>@example.com`.
pub fn fresh_address(prefix: &str) -> String {
    format!("{prefix}-{}@example.com", uuid::Uuid::new_v4().simple())
}

/// The text of the page's `role="alert"` error.
pub fn alert(html: &str) -> &str {
    html.split("role=\"alert\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap_or_else(|| panic!("no alert on the page: {html}"))
}

/// The `Retry-After` of a 429, checked to be a wait of at most an hour.
pub fn retry_after(res: &reqwest::Response) -> u64 {
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&retry), "{retry}");
    retry
}
