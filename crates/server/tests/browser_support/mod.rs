//! Headless Chromium for the browser tests: Debian's `chromedriver` driving
//! `/usr/bin/chromium`, through fantoccini.
//!
//! [`Browser::start`] gives `None` (and the test returns early) when either
//! is missing, except under CI (env `CI` set), where it panics: CI installs
//! them (`.ci/run`). Waits poll the page for a condition; none sleeps for a
//! fixed time.
#![allow(dead_code)]

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// How often a wait looks at the page again.
const POLL: Duration = Duration::from_millis(100);
/// The default of [`Browser::wait_for`] and friends.
pub const WAIT: Duration = Duration::from_secs(15);

/// The window sizes the tests use.
pub const DESKTOP: (u32, u32) = (1280, 900);
/// An iPhone 12-14's CSS width.
pub const PHONE: (u32, u32) = (390, 844);

pub struct Browser {
    client: Client,
    driver: Child,
    /// chromedriver's own log, kept for a failing test to read.
    pub driver_log: PathBuf,
    _profile: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

fn missing(what: &str) -> Option<Browser> {
    if std::env::var_os("CI").is_some() {
        panic!("{what} is missing: CI installs chromium and chromium-driver (.ci/run)");
    }
    eprintln!("note: {what} is missing; the browser test is skipped (apt-get install chromium chromium-driver)");
    None
}

/// Where screenshots go: `<target>/screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("screenshots")
}

impl Browser {
    /// Starts chromedriver on a free port and opens a headless Chromium
    /// session at the desktop size.
    pub async fn start() -> Option<Browser> {
        if !Path::new(CHROMEDRIVER).exists() {
            return missing(CHROMEDRIVER);
        }
        if !Path::new(CHROMIUM).exists() {
            return missing(CHROMIUM);
        }
        let port = free_port();
        let profile = tempfile::tempdir().expect("a profile directory");
        let driver_log = profile.path().join("chromedriver.log");
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", driver_log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group, with the Chromium it starts: dropping
            // the Browser ends them all, even when a failing test never
            // closed its session.
            .process_group(0)
            .spawn()
            .expect("chromedriver starts");
        let mut browser_driver = Some(driver);
        let url = format!("http://127.0.0.1:{port}");
        let ready = wait_until_listening(port, Duration::from_secs(20)).await;
        if !ready {
            if let Some(mut d) = browser_driver.take() {
                kill_group(&mut d);
            }
            panic!("chromedriver did not listen on port {port}");
        }
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900",
                    "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
                    "--disable-extensions", "--lang=en-US",
                    format!("--user-data-dir={}", profile.path().join("chrome").display()),
                ],
            }),
        );
        let connected = ClientBuilder::rustls().expect("TLS roots").capabilities(caps).connect(&url).await;
        let client = match connected {
            Ok(client) => client,
            Err(e) => {
                let mut d = browser_driver.take().unwrap();
                kill_group(&mut d);
                let log = std::fs::read_to_string(&driver_log).unwrap_or_default();
                panic!("no browser session: {e}\nchromedriver log:\n{log}");
            }
        };
        Some(Browser { client, driver: browser_driver.take().unwrap(), driver_log, _profile: profile })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|e| panic!("goto {url}: {e}"));
    }

    pub async fn set_size(&self, (width, height): (u32, u32)) {
        self.client.set_window_size(width, height).await.expect("window size");
    }

    /// The first element matching `css`, once there is one.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> Element {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(el) = self.client.find(Locator::Css(css)).await {
                return el;
            }
            if Instant::now() > deadline {
                self.fail(&format!("no element matches {css} after {timeout:?}")).await;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The first element matching `css` whose text contains `text`.
    pub async fn wait_for_text(&self, css: &str, text: &str, timeout: Duration) -> Element {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(found) = self.client.find_all(Locator::Css(css)).await {
                for el in found {
                    if el.text().await.is_ok_and(|t| t.contains(text)) {
                        return el;
                    }
                }
            }
            if Instant::now() > deadline {
                self.fail(&format!("no {css} shows \"{text}\" after {timeout:?}")).await;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until no element matches `css`.
    pub async fn wait_gone(&self, css: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            match self.client.find_all(Locator::Css(css)).await {
                Ok(found) if found.is_empty() => return,
                _ => {}
            }
            if Instant::now() > deadline {
                self.fail(&format!("{css} is still there after {timeout:?}")).await;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until the script (a function body returning a value) returns
    /// something truthy, and gives it back.
    pub async fn wait_until(&self, script: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(v) = self.client.execute(script, vec![]).await
                && !matches!(v, Value::Null | Value::Bool(false))
                && v != json!(0)
                && v != json!("")
            {
                return v;
            }
            if Instant::now() > deadline {
                self.fail(&format!("`{script}` stayed false after {timeout:?}")).await;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Clicks the element, finding it again if the page re-rendered it in
    /// between (a live page redraws on every event of its feed).
    pub async fn click(&self, css: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.wait_for(css, WAIT).await.click().await {
                Ok(()) => return,
                Err(e) if Instant::now() > deadline => panic!("click {css}: {e}"),
                Err(_) => tokio::time::sleep(POLL).await,
            }
        }
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let el = self.wait_for(css, WAIT).await;
        el.clear().await.unwrap_or_else(|e| panic!("clear {css}: {e}"));
        el.send_keys(text).await.unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    pub async fn text(&self, css: &str) -> String {
        self.wait_for(css, WAIT).await.text().await.unwrap_or_default()
    }

    /// Runs a script (a function body) in the page.
    pub async fn eval(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Writes `target/screenshots/<name>.png`; returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("a screenshot");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("the screenshot directory");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("the screenshot is written");
        path
    }

    /// Fails the test with a screenshot and the page's text.
    async fn fail(&self, what: &str) -> ! {
        let shot = self.screenshot("failure").await;
        let body = match self.client.find(Locator::Css("body")).await {
            Ok(b) => b.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        let url = self.client.current_url().await.map(|u| u.to_string()).unwrap_or_default();
        panic!("{what}\nat {url} (screenshot {})\npage text:\n{body}", shot.display());
    }

    /// Ends the session (Drop stops chromedriver in any case).
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill_group(&mut self.driver);
    }
}

/// Ends chromedriver and everything in its process group (Chromium and its
/// helpers), then reaps it.
fn kill_group(driver: &mut Child) {
    let group = format!("-{}", driver.id());
    let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
    let _ = driver.kill();
    let _ = driver.wait();
}

async fn wait_until_listening(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return true;
        }
        tokio::time::sleep(POLL).await;
    }
    false
}

/// Browser tests take turns (one Chromium at a time on a small machine):
/// hold the guard for the test's length.
pub async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}
