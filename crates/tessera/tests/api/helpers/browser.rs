//! `Browser`: a headless Debian Chromium driven through its own chromedriver (WebDriver,
//! via fantoccini), with the few verbs the end-to-end tests need. Every helper panics with
//! the page it was on, so a failure says where the browser was.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::error::CmdError;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use super::TestApp;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long a page, an element or a condition may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(50);

/// One Chromium session with a fresh profile and its own chromedriver; both end with it.
pub struct Browser {
    client: Client,
    session_id: String,
    driver_port: u16,
    /// Spawned with `kill_on_drop`.
    _driver: tokio::process::Child,
    profile: PathBuf,
    closed: bool,
}

impl Browser {
    /// A started browser, or None after the skip notice (a failure under
    /// TESSERA_TEST_REQUIRE=all) when Chromium or chromedriver is not installed.
    pub async fn start() -> Option<Self> {
        if !Path::new(CHROMIUM).is_file() || !Path::new(CHROMEDRIVER).is_file() {
            tessera_adapters::testing::skip_or_fail(
                "browser tests",
                "apt-get install chromium chromium-driver",
            );
            return None;
        }
        let driver_port = free_port();
        let mut driver = tokio::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={driver_port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let driver_url = format!("http://127.0.0.1:{driver_port}");
        wait_until_ready(&mut driver, &driver_url).await;

        let profile = std::env::temp_dir().join(format!(
            "tessera-e2e-profile-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&profile).unwrap();
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object literal")
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&driver_url)
            .await
            .unwrap_or_else(|e| panic!("no Chromium session through chromedriver: {e}"));
        let session_id = client
            .session_id()
            .await
            .unwrap()
            .expect("a WebDriver session id");
        Some(Self {
            client,
            session_id,
            driver_port,
            _driver: driver,
            profile,
            closed: false,
        })
    }

    /// Ends the session (Chromium quits), then chromedriver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        self.closed = true;
    }

    /// Opens `url` and waits for its load.
    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("opening {url}: {e}"));
    }

    /// Opens `path` of the test server.
    pub async fn open(&self, app: &TestApp, path: &str) {
        self.goto(&app.url(path)).await;
    }

    /// The path of the current page (`/account/security`).
    pub async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_owned()
    }

    /// The first element matching `css`, waiting for it to appear.
    pub async fn find(&self, css: &str) -> Element {
        match self
            .client
            .wait()
            .at_most(PATIENCE)
            .every(POLL)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => element,
            Err(e) => panic!("no `{css}` on {}: {e}", self.where_am_i().await),
        }
    }

    /// How many elements match `css` now (no waiting).
    pub async fn count(&self, css: &str) -> usize {
        self.client
            .find_all(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("querying `{css}`: {e}"))
            .len()
    }

    /// The rendered text of the first `css` (trimmed), waiting for it to appear.
    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap().trim().to_owned()
    }

    /// The rendered texts of every `css` (trimmed), in document order.
    pub async fn texts(&self, css: &str) -> Vec<String> {
        let mut out = Vec::new();
        for element in self.client.find_all(Locator::Css(css)).await.unwrap() {
            out.push(element.text().await.unwrap().trim().to_owned());
        }
        out
    }

    /// An attribute of the first `css`, waiting for it to appear.
    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        self.find(css).await.attr(name).await.unwrap()
    }

    /// Replaces the value of the field `css` with `text`, typed as keystrokes.
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.unwrap();
        field
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("typing into `{css}`: {e}"));
    }

    /// Clicks `css` and returns at once (for buttons that do not leave the page).
    pub async fn click(&self, css: &str) {
        let element = self.find(css).await;
        if let Err(e) = element.click().await {
            panic!("clicking `{css}` on {}: {e}", self.where_am_i().await);
        }
    }

    /// Clicks `css` and waits until another document has replaced this one and loaded
    /// (a form's POST answered, any redirect followed, or a link followed).
    pub async fn click_and_wait(&self, css: &str) {
        self.then_new_page(&format!("clicking `{css}`"), self.click(css))
            .await;
    }

    /// Types into the focused element (e.g. Enter on a button) and waits for the next page.
    pub async fn keys_and_wait(&self, text: &str) {
        self.then_new_page("typing into the focused element", self.keys(text))
            .await;
    }

    async fn then_new_page(&self, what: &str, action: impl std::future::Future<Output = ()>) {
        let marker = uuid::Uuid::new_v4().simple().to_string();
        self.execute(&format!("window.__e2eMarker = '{marker}'; return null;"))
            .await;
        action.await;
        let check = format!(
            "return window.__e2eMarker !== '{marker}' && document.readyState === 'complete';"
        );
        let ok = self
            .poll(|| async { self.try_execute(&check).await == Some(Value::Bool(true)) })
            .await;
        if !ok {
            panic!(
                "{what} loaded no new page; still on {}",
                self.where_am_i().await
            );
        }
    }

    /// Runs `script` (a function body: `return …;`) in the page and returns its value.
    pub async fn execute(&self, script: &str) -> Value {
        match self.client.execute(script, vec![]).await {
            Ok(value) => value,
            Err(e) => panic!(
                "script failed on {}: {e}\n{script}",
                self.where_am_i().await
            ),
        }
    }

    /// Resizes the browser window (CSS pixels), then reports the viewport's inner width.
    pub async fn set_window_size(&self, width: u32, height: u32) -> u64 {
        self.client
            .set_window_size(width, height)
            .await
            .unwrap_or_else(|e| panic!("resizing the window to {width}x{height}: {e}"));
        self.execute("return window.innerWidth;")
            .await
            .as_u64()
            .unwrap()
    }

    /// Saves a PNG of the whole page to `<workspace>/target/e2e-screenshots/<name>.png`:
    /// the window grows to the document's height for the shot (the user guide shows whole
    /// pages), then returns to its size.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let (width, height) = self.client.get_window_size().await.unwrap();
        let extra = self
            .execute(
                "return Math.max(0, document.documentElement.scrollHeight - window.innerHeight);",
            )
            .await
            .as_u64()
            .unwrap_or(0);
        let grown = u32::try_from(height + extra).unwrap();
        if extra > 0 {
            self.client
                .set_window_size(u32::try_from(width).unwrap(), grown)
                .await
                .unwrap();
        }
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("screenshot `{name}`: {e}"));
        if extra > 0 {
            self.client
                .set_window_size(
                    u32::try_from(width).unwrap(),
                    u32::try_from(height).unwrap(),
                )
                .await
                .unwrap();
        }
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// The current URL, or why there is none, for failure messages.
    async fn where_am_i(&self) -> String {
        match self.client.current_url().await {
            Ok(url) => url.to_string(),
            Err(e) => format!("<no URL: {e}>"),
        }
    }

    /// Types into whatever has the keyboard focus (keys such as `Key::Tab` as their
    /// `char`s), as a keyboard-only user would.
    pub async fn keys(&self, text: &str) {
        let focused = match self.client.active_element().await {
            Ok(el) => el,
            Err(e) => panic!("no focused element on {}: {e}", self.where_am_i().await),
        };
        focused
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("typing into the focused element: {e}"));
    }

    /// The focused element's id (empty when it has none).
    pub async fn focused_id(&self) -> String {
        self.execute("return document.activeElement ? document.activeElement.id : '';")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// A script's value, or None while no document answers (mid-navigation).
    async fn try_execute(&self, script: &str) -> Option<Value> {
        match self.client.execute(script, vec![]).await {
            Ok(value) => Some(value),
            Err(CmdError::Standard(_)) => None,
            Err(e) => panic!("lost the browser: {e}"),
        }
    }

    /// Re-checks `ready` until it holds (true) or PATIENCE runs out (false).
    async fn poll<F, Fut>(&self, mut ready: F) -> bool
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if ready().await {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A test that failed before `close`: end the session synchronously, so Chromium
        // quits before chromedriver is killed (the runtime may be gone, so no await).
        if !self.closed {
            delete_session_blocking(self.driver_port, &self.session_id);
        }
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// `<workspace>/target/e2e-screenshots`.
pub fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/e2e-screenshots")
        .components()
        .collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until chromedriver's `/status` says it is ready.
async fn wait_until_ready(driver: &mut tokio::process::Child, url: &str) {
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(status) = driver.try_wait().unwrap() {
            panic!("chromedriver exited at start: {status}");
        }
        if let Ok(res) = client.get(format!("{url}/status")).send().await
            && let Ok(body) = res.json::<Value>().await
            && body["value"]["ready"] == Value::Bool(true)
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "chromedriver at {url} never became ready"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// `DELETE /session/<id>` with a blocking socket; errors are ignored (best effort).
fn delete_session_blocking(port: u16, session_id: &str) {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(PATIENCE));
    let request = format!(
        "DELETE /session/{session_id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    // chromedriver answers once Chromium has quit; the first bytes are enough (it may keep
    // the connection open, so reading to the end would wait for the timeout).
    if stream.write_all(request.as_bytes()).is_ok() {
        let mut answer = [0u8; 512];
        let _ = stream.read(&mut answer);
    }
}
