//! A small W3C WebDriver client: headless Debian Chromium driven through `/usr/bin/chromedriver`
//! on loopback, for the dashboard's end-to-end tests.
//!
//! Every call panics with the WebDriver error (and, where it helps, the page's URL) when it
//! fails: that is how a test fails. Waits poll every 50 ms up to a deadline, never sleep blind;
//! a wait that times out saves a screenshot to the artifacts directory first.
// A toolkit: not every test uses every helper.
#![allow(dead_code)]

use std::fmt;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};

pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// The key of an element reference in W3C WebDriver JSON.
pub const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// `send_keys` text for the Enter key.
pub const ENTER: &str = "\u{E007}";
/// `send_keys` text for the Tab key.
pub const TAB: &str = "\u{E004}";

const READY_DEADLINE: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(50);
/// Between reloads in [`Browser::wait_for_after_reload`]: each one re-renders the page.
const RELOAD_POLL: Duration = Duration::from_millis(100);
/// Of one WebDriver call; navigation and async scripts have their own, shorter, timeouts
/// inside the browser (page load 300 s is chromedriver's default: we set 60 s).
const CALL_TIMEOUT: Duration = Duration::from_secs(90);

/// Chromium's flags: headless, and nothing that talks to the network on its own (the closed
/// network refuses those connections, and they slow start-up).
const CHROMIUM_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1000",
];

/// An error answer of the WebDriver server (or a failure to reach it).
#[derive(Debug, Clone)]
pub struct WdError {
    /// HTTP status; 0 when the server could not be reached or answered no JSON.
    pub status: u16,
    /// The W3C error code, e.g. `no such element`, `stale element reference`.
    pub error: String,
    pub message: String,
}

impl WdError {
    /// The element belongs to a page that is gone. ChromeDriver mostly says "stale element
    /// reference", but when the page changes during the call its inspector answers "unknown
    /// error ... Node with given id does not belong to the document" (seen once in CI-like
    /// runs of the dashboard test).
    pub fn is_stale(&self) -> bool {
        self.error == "stale element reference"
            || self.message.contains("does not belong to the document")
    }
}

impl fmt::Display for WdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status, self.error, self.message)
    }
}

/// What an element or the browser needs to talk to the session.
#[derive(Clone)]
struct Wire {
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT/session/ID`
    session: String,
}

impl Wire {
    /// One command: `path` is relative to the session (`""` or `/url`, `/element/ID/text`...).
    /// POST commands need a JSON body (`{}` when they take nothing); GET and DELETE none.
    async fn try_call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, WdError> {
        let url = format!("{}{path}", self.session);
        let mut request = self.http.request(method, &url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let reply = request.send().await.map_err(|e| WdError {
            status: 0,
            error: "transport".into(),
            message: format!("{url}: {e}"),
        })?;
        let status = reply.status();
        let text = reply.text().await.unwrap_or_default();
        let mut answer: Value = serde_json::from_str(&text).map_err(|e| WdError {
            status: status.as_u16(),
            error: "bad answer".into(),
            message: format!("{url}: {e}: {text}"),
        })?;
        let value = answer.get_mut("value").map(Value::take).unwrap_or_default();
        if status.is_success() {
            return Ok(value);
        }
        Err(WdError {
            status: status.as_u16(),
            error: value["error"].as_str().unwrap_or("?").to_owned(),
            // Chromedriver appends "\n  (Session info: chrome=...)"; the stacktrace is noise.
            message: value["message"]
                .as_str()
                .unwrap_or(&text)
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned(),
        })
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let what = format!("{method} {path}");
        match self.try_call(method, path, body).await {
            Ok(value) => value,
            Err(e) => panic!("WebDriver {what} failed: {e}"),
        }
    }

    async fn get(&self, path: &str) -> Value {
        self.call(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(Method::POST, path, Some(body)).await
    }
}

/// The element reference in a W3C answer (`{"element-6066-...": "ID"}`).
fn element_id(value: &Value) -> String {
    value[ELEMENT_KEY]
        .as_str()
        .unwrap_or_else(|| panic!("not an element reference: {value}"))
        .to_owned()
}

fn css_query(css: &str) -> Value {
    json!({"using": "css selector", "value": css})
}

/// A file name from free text: letters, digits, `-` and `_` only.
fn file_stem(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// A headless Chromium session, with its own chromedriver and a fresh profile. Dropping it ends
/// the session and kills chromedriver with everything it started.
pub struct Browser {
    wire: Wire,
    port: u16,
    session_id: String,
    artifacts: PathBuf,
    driver: tokio::process::Child,
    /// The chromedriver log and Chromium's profile: removed last, when nothing runs in it.
    dir: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver on a free loopback port and opens a session. Screenshots go to
    /// `artifacts` (created).
    pub async fn start(artifacts: &Path) -> Browser {
        std::fs::create_dir_all(artifacts)
            .unwrap_or_else(|e| panic!("creating {}: {e}", artifacts.display()));
        let dir = tempfile::tempdir().unwrap();
        let profile = dir.path().join("profile");
        std::fs::create_dir(&profile).unwrap();
        let log_path = dir.path().join("chromedriver.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let port = crate::harness::free_port();
        let mut driver = tokio::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            // Its own process group, so that Drop can kill Chromium with it (a killed
            // chromedriver leaves Chromium running otherwise).
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("starting {CHROMEDRIVER}: {e} (scripts/deps.sh test installs it)")
            });
        let driver_log = || std::fs::read_to_string(&log_path).unwrap_or_default();

        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(CALL_TIMEOUT)
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            if let Some(status) = driver.try_wait().unwrap() {
                panic!(
                    "chromedriver exited with {status} before it was ready:\n{}",
                    driver_log()
                );
            }
            let ready = http
                .get(format!("{base}/status"))
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if let Ok(reply) = ready
                && let Ok(status) = reply.json::<Value>().await
                && status["value"]["ready"] == true
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver not ready within {READY_DEADLINE:?}:\n{}",
                driver_log()
            );
            tokio::time::sleep(POLL).await;
        }

        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| (*a).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
            "timeouts": {"pageLoad": 60_000, "script": 30_000, "implicit": 0},
        }}});
        let started = Instant::now();
        let wire = Wire {
            http,
            session: format!("{base}/session"),
        };
        let session = match wire.try_call(Method::POST, "", Some(capabilities)).await {
            Ok(session) => session,
            Err(e) => panic!(
                "creating a WebDriver session: {e}\nchromedriver log:\n{}",
                driver_log()
            ),
        };
        let session_id = session["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no sessionId in {session}"))
            .to_owned();
        eprintln!(
            "webdriver: Chromium {} session in {:?}",
            session["capabilities"]["browserVersion"]
                .as_str()
                .unwrap_or("?"),
            started.elapsed()
        );
        Browser {
            wire: Wire {
                session: format!("{}/{session_id}", wire.session),
                ..wire
            },
            port,
            session_id,
            artifacts: artifacts.to_owned(),
            driver,
            dir,
        }
    }

    pub fn artifacts(&self) -> &Path {
        &self.artifacts
    }

    /// Navigates and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        self.wire.post("/url", json!({"url": url})).await;
    }

    pub async fn current_url(&self) -> String {
        string(self.wire.get("/url").await)
    }

    pub async fn title(&self) -> String {
        string(self.wire.get("/title").await)
    }

    /// The page's current DOM serialised as HTML.
    pub async fn source(&self) -> String {
        string(self.wire.get("/source").await)
    }

    pub async fn refresh(&self) {
        self.wire.post("/refresh", json!({})).await;
    }

    pub async fn back(&self) {
        self.wire.post("/back", json!({})).await;
    }

    /// The first element matching `css`; panics (after a screenshot) when there is none.
    pub async fn find(&self, css: &str) -> Element {
        match self.try_find(css).await {
            Some(element) => element,
            None => {
                let shot = self.try_screenshot(&format!("missing-{css}")).await;
                panic!(
                    "no element matches `{css}` at {} (screenshot: {shot:?})",
                    self.current_url().await
                )
            }
        }
    }

    /// The first element matching `css`, if any.
    pub async fn try_find(&self, css: &str) -> Option<Element> {
        match self
            .wire
            .try_call(Method::POST, "/element", Some(css_query(css)))
            .await
        {
            Ok(found) => Some(self.element(&found, css)),
            Err(e) if e.error == "no such element" => None,
            Err(e) => panic!("WebDriver find `{css}` failed: {e}"),
        }
    }

    /// Every element matching `css`, in document order.
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        match self.wire.post("/elements", css_query(css)).await {
            Value::Array(found) => found.iter().map(|f| self.element(f, css)).collect(),
            other => panic!("find_all `{css}`: not a list: {other}"),
        }
    }

    fn element(&self, reference: &Value, css: &str) -> Element {
        Element {
            wire: self.wire.clone(),
            id: element_id(reference),
            css: css.to_owned(),
        }
    }

    /// Polls every 50 ms until `f` gives a value, and returns it; panics after `deadline`
    /// naming `what`. `f` is an async closure: `b.poll_until("x", d, async || ...).await`.
    pub async fn poll_until<T>(
        &self,
        what: &str,
        deadline: Duration,
        mut f: impl AsyncFnMut() -> Option<T>,
    ) -> T {
        let end = Instant::now() + deadline;
        loop {
            if let Some(value) = f().await {
                return value;
            }
            if Instant::now() >= end {
                panic!("{}", self.timed_out(what, deadline).await);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Polls every 50 ms until `f` is true; panics after `deadline` naming `what`.
    pub async fn wait_until(
        &self,
        what: &str,
        deadline: Duration,
        mut f: impl AsyncFnMut() -> bool,
    ) {
        self.poll_until(what, deadline, async || f().await.then_some(()))
            .await;
    }

    /// Waits until an element matches `css`.
    pub async fn wait_for(&self, css: &str, deadline: Duration) -> Element {
        self.poll_until(
            &format!("an element matching `{css}`"),
            deadline,
            async || self.try_find(css).await,
        )
        .await
    }

    /// Waits until the first element matching `css` has a (visible) text containing `needle`.
    pub async fn wait_until_text(&self, css: &str, needle: &str, deadline: Duration) -> Element {
        self.wait_text(css, needle, deadline, false).await
    }

    /// Like [`Browser::wait_until_text`] for a server-rendered page: reloads it between checks.
    pub async fn wait_for_after_reload(
        &self,
        css: &str,
        needle: &str,
        deadline: Duration,
    ) -> Element {
        self.wait_text(css, needle, deadline, true).await
    }

    async fn wait_text(
        &self,
        css: &str,
        needle: &str,
        deadline: Duration,
        reload: bool,
    ) -> Element {
        let mut last = None;
        let end = Instant::now() + deadline;
        loop {
            if let Some((element, text)) = self.text_of(css).await {
                if text.contains(needle) {
                    return element;
                }
                last = Some(text);
            }
            if Instant::now() >= end {
                let how = if reload { " after reloads" } else { "" };
                let what = format!("`{css}` to contain {needle:?}{how} (last text: {last:?})");
                panic!("{}", self.timed_out(&what, deadline).await);
            }
            if reload {
                tokio::time::sleep(RELOAD_POLL).await;
                self.refresh().await;
            } else {
                tokio::time::sleep(POLL).await;
            }
        }
    }

    /// The first element matching `css` and its text; `None` when there is none or it went
    /// stale in between (the page changed).
    async fn text_of(&self, css: &str) -> Option<(Element, String)> {
        let element = self.try_find(css).await?;
        match element.try_text().await {
            Ok(text) => Some((element, text)),
            Err(e) if e.is_stale() => None,
            Err(e) => panic!("WebDriver text of `{css}` failed: {e}"),
        }
    }

    /// The message of a wait that timed out, after a screenshot.
    async fn timed_out(&self, what: &str, deadline: Duration) -> String {
        let shot = self.try_screenshot(&format!("timeout-{what}")).await;
        format!(
            "timed out after {deadline:?} waiting for {what} at {} (screenshot: {shot:?})",
            self.current_url().await
        )
    }

    /// Runs `script` as a function body in the page (`arguments[i]` are `args`; pass elements
    /// as [`Element::as_arg`]) and returns what it returns.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.wire
            .post("/execute/sync", json!({"script": script, "args": args}))
            .await
    }

    /// Like [`Browser::execute`], but the script finishes by calling its last argument, the
    /// callback: `const done = arguments[arguments.length - 1]; fetch(..).then(r => done(r.status))`.
    /// Times out (an error) after 30 s.
    pub async fn async_execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.wire
            .post("/execute/async", json!({"script": script, "args": args}))
            .await
    }

    /// The page's cookies: `{"name", "value", "domain", "path", "httpOnly", "secure",
    /// "sameSite", "expiry"?}` objects.
    pub async fn cookies(&self) -> Vec<Value> {
        match self.wire.get("/cookie").await {
            Value::Array(cookies) => cookies,
            other => panic!("cookies: not a list: {other}"),
        }
    }

    pub async fn delete_cookies(&self) {
        self.wire.call(Method::DELETE, "/cookie", None).await;
    }

    /// The text of the open `alert`/`confirm`/`prompt`, if one is open. While one is open, any
    /// other command fails with `unexpected alert open` (and the dialog is dismissed).
    pub async fn alert_text(&self) -> Option<String> {
        match self.wire.try_call(Method::GET, "/alert/text", None).await {
            Ok(text) => Some(string(text)),
            Err(e) if e.error == "no such alert" => None,
            Err(e) => panic!("WebDriver alert text failed: {e}"),
        }
    }

    /// OK on the open dialog.
    pub async fn accept_alert(&self) {
        self.wire.post("/alert/accept", json!({})).await;
    }

    /// Cancel on the open dialog.
    pub async fn dismiss_alert(&self) {
        self.wire.post("/alert/dismiss", json!({})).await;
    }

    /// Saves a PNG of the viewport as `<artifacts>/<name>.png` and returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.wire.get("/screenshot").await;
        self.save_png(name, &png).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A screenshot for a failure message: never panics.
    async fn try_screenshot(&self, name: &str) -> Option<PathBuf> {
        let png = self
            .wire
            .try_call(Method::GET, "/screenshot", None)
            .await
            .ok()?;
        self.save_png(name, &png).ok()
    }

    fn save_png(&self, name: &str, base64_png: &Value) -> Result<PathBuf, String> {
        let png = base64::engine::general_purpose::STANDARD
            .decode(base64_png.as_str().unwrap_or_default())
            .map_err(|e| format!("screenshot {name}: not base64: {e}"))?;
        if !png.starts_with(b"\x89PNG") {
            return Err(format!("screenshot {name}: not a PNG"));
        }
        let path = self.artifacts.join(format!("{}.png", file_stem(name)));
        std::fs::write(&path, png).map_err(|e| format!("writing {}: {e}", path.display()))?;
        Ok(path)
    }

    /// What chromedriver printed (it says little unless a session fails to start).
    pub fn driver_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("chromedriver.log")).unwrap_or_default()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ending the session makes chromedriver close Chromium; it answers once it has. Drop
        // can't await, so this is a plain blocking HTTP/1.1 request.
        let _ = delete_session(self.port, &self.session_id);
        // Then chromedriver's process group: chromedriver itself, and Chromium too if the
        // DELETE failed (Chromium outlives a killed chromedriver).
        if let Some(pid) = self.driver.id() {
            let group = format!("-{pid}");
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", group.as_str()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        // `kill_on_drop` reaps chromedriver; `dir` goes once nothing runs in it.
    }
}

/// `DELETE /session/ID`, waiting for the answer's head. Chromedriver keeps the connection open
/// after its answer whatever `Connection: close` says, so this does not read to the end.
fn delete_session(port: u16, session_id: &str) -> std::io::Result<()> {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "DELETE /session/{session_id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = Vec::new();
    let mut chunk = [0_u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    Ok(())
}

fn string(value: Value) -> String {
    match value {
        Value::String(s) => s,
        other => panic!("expected a string from WebDriver, got {other}"),
    }
}

/// An element found by CSS. Its reference goes stale when the page changes (navigation, a
/// reload, the script replacing it): find it again then.
#[derive(Clone)]
pub struct Element {
    wire: Wire,
    id: String,
    /// How it was found, for messages.
    css: String,
}

impl fmt::Debug for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Element(`{}` {})", self.css, self.id)
    }
}

impl Element {
    async fn call(&self, method: Method, what: &str, body: Option<Value>) -> Value {
        let path = format!("/element/{}{what}", self.id);
        match self.wire.try_call(method, &path, body).await {
            Ok(value) => value,
            Err(e) => panic!("WebDriver {what} on `{}` failed: {e}", self.css),
        }
    }

    /// Clicks its centre (scrolling it into view); fails if something else covers it.
    pub async fn click(&self) {
        self.call(Method::POST, "/click", Some(json!({}))).await;
    }

    /// Types `text` (appending to what the field holds; [`ENTER`] and [`TAB`] are keys).
    pub async fn send_keys(&self, text: &str) {
        self.call(Method::POST, "/value", Some(json!({"text": text})))
            .await;
    }

    /// Empties an input or textarea.
    pub async fn clear(&self) {
        self.call(Method::POST, "/clear", Some(json!({}))).await;
    }

    /// Its rendered text (as a person sees it: `""` when hidden).
    pub async fn text(&self) -> String {
        string(self.call(Method::GET, "/text", None).await)
    }

    async fn try_text(&self) -> Result<String, WdError> {
        let path = format!("/element/{}/text", self.id);
        self.wire
            .try_call(Method::GET, &path, None)
            .await
            .map(string)
    }

    /// The HTML attribute `name`, `None` when absent. For an input's `value` this is the value
    /// the page was served with: what was typed since is [`Element::property`]`("value")`.
    pub async fn attr(&self, name: &str) -> Option<String> {
        match self
            .call(Method::GET, &format!("/attribute/{name}"), None)
            .await
        {
            Value::Null => None,
            Value::String(s) => Some(s),
            other => Some(other.to_string()),
        }
    }

    /// The DOM property `name` (`value`, `checked`, ...), `Null` when absent.
    pub async fn property(&self, name: &str) -> Value {
        self.call(Method::GET, &format!("/property/{name}"), None)
            .await
    }

    pub async fn is_displayed(&self) -> bool {
        self.call(Method::GET, "/displayed", None).await == true
    }

    /// The first element inside this one matching `css`; panics when there is none.
    pub async fn find(&self, css: &str) -> Element {
        let found = self
            .call(Method::POST, "/element", Some(css_query(css)))
            .await;
        Element {
            wire: self.wire.clone(),
            id: element_id(&found),
            css: format!("{} {css}", self.css),
        }
    }

    /// This element as an argument of [`Browser::execute`] (`arguments[i]` in the script).
    pub fn as_arg(&self) -> Value {
        json!({ ELEMENT_KEY: self.id })
    }
}
