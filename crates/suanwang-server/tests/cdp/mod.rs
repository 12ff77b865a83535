//! Just enough of the Chrome DevTools Protocol to drive Debian's headless Chromium from a test:
//! start it, open a page, run JavaScript in it, wait for a condition, collect console errors,
//! take screenshots. Blocking (run it on a blocking thread); every wait has a deadline.
//!
//! Why not a crate: `headless_chrome` downloads the protocol's JSON in its build script (this
//! machine has no internet), and `chromiumoxide` brings ~150 crates and the whole generated
//! protocol for the eight commands used here. `tungstenite` carries the WebSocket.

#![allow(dead_code, reason = "helpers for the browser tests")]

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

/// Where Chromium is: `SUANWANG_CHROMIUM`, else the first of Debian's names found on `PATH`.
pub fn find_chromium() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("SUANWANG_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// A console message or uncaught exception the page produced.
#[derive(Clone, Debug)]
pub struct ConsoleEntry {
    /// `error`, `warning`, `exception`, ….
    pub level: String,
    /// The text.
    pub text: String,
    /// The page's URL when it was seen, if known.
    pub url: String,
}

/// A headless Chromium with one page attached.
pub struct Browser {
    child: Child,
    socket: WebSocket<TcpStream>,
    session: String,
    next_id: u64,
    /// Console errors and exceptions seen since the last [`Browser::take_console`].
    console: Vec<ConsoleEntry>,
    profile: PathBuf,
}

impl Browser {
    /// Starts Chromium headless with a fresh profile and opens a blank page.
    pub fn start(chromium: &Path, profile: &Path) -> Browser {
        std::fs::create_dir_all(profile).unwrap();
        let mut child = Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--window-size=1280,900",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chromium");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(at) = line.find("ws://") {
                    let _ = tx.send(line[at..].trim().to_owned());
                }
            }
        });
        let url = rx.recv_timeout(Duration::from_secs(60)).expect("chromium prints its DevTools address");
        let host = url.trim_start_matches("ws://").split('/').next().unwrap().to_owned();
        let stream = TcpStream::connect(&host).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let (socket, _) = tungstenite::client::client(url.as_str(), stream).expect("DevTools WebSocket");
        let mut browser =
            Browser { child, socket, session: String::new(), next_id: 0, console: Vec::new(), profile: profile.into() };
        let target = browser.call_browser("Target.createTarget", json!({"url": "about:blank"}));
        let target_id = target["targetId"].as_str().unwrap().to_owned();
        let attached = browser.call_browser("Target.attachToTarget", json!({"targetId": target_id, "flatten": true}));
        browser.session = attached["sessionId"].as_str().unwrap().to_owned();
        for domain in ["Page.enable", "Runtime.enable", "Log.enable"] {
            browser.call(domain, json!({}));
        }
        browser
    }

    fn send(&mut self, method: &str, params: Value, session: Option<&str>) -> Value {
        self.try_send(method, params, session).unwrap_or_else(|error| panic!("{method} failed: {error}"))
    }

    fn try_send(&mut self, method: &str, params: Value, session: Option<&str>) -> Result<Value, Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        self.socket.send(Message::text(message.to_string())).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            assert!(Instant::now() < deadline, "no answer to {method}");
            let Message::Text(text) = self.socket.read().unwrap() else { continue };
            let value: Value = serde_json::from_str(text.as_str()).unwrap();
            if value["id"] == id {
                if let Some(error) = value.get("error") {
                    return Err(error.clone());
                }
                return Ok(value["result"].clone());
            }
            self.event(&value);
        }
    }

    fn event(&mut self, value: &Value) {
        let params = &value["params"];
        match value["method"].as_str() {
            Some("Runtime.consoleAPICalled")
                if matches!(params["type"].as_str(), Some("error" | "warning" | "assert")) =>
            {
                let text = params["args"]
                    .as_array()
                    .map(|a| a.iter().map(|x| x["value"].to_string()).collect::<Vec<_>>().join(" "))
                    .unwrap_or_default();
                self.console.push(ConsoleEntry {
                    level: params["type"].as_str().unwrap_or("").to_owned(),
                    text,
                    url: String::new(),
                });
            }
            Some("Runtime.exceptionThrown") => self.console.push(ConsoleEntry {
                level: "exception".to_owned(),
                text: params["exceptionDetails"].to_string(),
                url: params["exceptionDetails"]["url"].as_str().unwrap_or("").to_owned(),
            }),
            Some("Log.entryAdded") if matches!(params["entry"]["level"].as_str(), Some("error" | "warning")) => {
                self.console.push(ConsoleEntry {
                    level: params["entry"]["level"].as_str().unwrap_or("").to_owned(),
                    text: params["entry"]["text"].as_str().unwrap_or("").to_owned(),
                    url: params["entry"]["url"].as_str().unwrap_or("").to_owned(),
                });
            }
            _ => {}
        }
    }

    fn call_browser(&mut self, method: &str, params: Value) -> Value {
        self.send(method, params, None)
    }

    /// A command to the page.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.send(method, params, Some(&session))
    }

    /// Runs `expression` in the page (promises are awaited) and returns its JSON value.
    pub fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .call("Runtime.evaluate", json!({"expression": expression, "returnByValue": true, "awaitPromise": true}));
        if let Some(details) = result.get("exceptionDetails") {
            panic!("{expression} threw: {details}");
        }
        result["result"]["value"].clone()
    }

    /// Waits until `expression` is true in the page (polling every 100 ms, at most 20 s).
    pub fn wait(&mut self, expression: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            // During a navigation the page's context may be gone for a moment ("Inspected target
            // navigated or closed"): that is not an answer, ask again.
            let session = self.session.clone();
            let result = self.try_send(
                "Runtime.evaluate",
                json!({"expression": format!("!!({expression})"), "returnByValue": true}),
                Some(&session),
            );
            if result.is_ok_and(|r| r["result"]["value"] == true) {
                return;
            }
            if Instant::now() > deadline {
                let html = self.eval("document.body ? document.body.innerText.slice(0, 2000) : ''");
                panic!("timed out waiting for {expression}; the page says:\n{}", html.as_str().unwrap_or(""));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Opens `url` and waits until the new document has loaded.
    pub fn goto(&mut self, url: &str) {
        let target = json!(url);
        self.navigate_with(&format!("location.href = {target}"));
    }

    /// Runs `script`, which navigates (a form's submit, a link), and waits until the new document
    /// has loaded: a marker set on the old page must be gone, so the old page never passes.
    pub fn navigate_with(&mut self, script: &str) {
        self.eval("window.__swOld = true");
        self.eval(&format!("setTimeout(() => {{ {script} }}, 0); true"));
        self.wait_loaded();
    }

    /// Waits until the page that replaced the one marked by [`Browser::navigate_with`] has loaded.
    pub fn wait_loaded(&mut self) {
        self.wait("window.__swOld === undefined && document.readyState === 'complete' && document.body !== null");
    }

    /// The page's visible text.
    pub fn text(&mut self, selector: &str) -> String {
        let expression = format!(
            "(() => {{ const e = document.querySelector({}); return e ? e.innerText : null; }})()",
            json!(selector)
        );
        match self.eval(&expression) {
            Value::String(s) => s,
            _ => panic!("no element {selector}"),
        }
    }

    /// Console errors and exceptions since the last call, and forgets them.
    pub fn take_console(&mut self) -> Vec<ConsoleEntry> {
        // Drain events that arrived without a command: a cheap round trip reads them.
        self.eval("1");
        std::mem::take(&mut self.console)
    }

    /// Saves a full-page PNG.
    pub fn screenshot(&mut self, path: &Path) {
        let shot = self.call("Page.captureScreenshot", json!({"format": "png", "captureBeyondViewport": true}));
        let bytes = base64::engine::general_purpose::STANDARD.decode(shot["data"].as_str().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    /// Presses Tab (a real key event, as a keyboard user would).
    pub fn press_tab(&mut self) {
        for kind in ["keyDown", "keyUp"] {
            self.call(
                "Input.dispatchKeyEvent",
                json!({"type": kind, "key": "Tab", "code": "Tab", "windowsVirtualKeyCode": 9}),
            );
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
