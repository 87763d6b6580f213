//! The web playground in a real headless browser (Debian's chromium, driven through
//! chromedriver by the W3C WebDriver protocol — a handful of JSON calls, sent with the
//! serving tests' HTTP client): digits drawn on the canvas as pointer strokes, traced from
//! real MNIST test images, come back as their labels; the FAQ box gives the expected answer;
//! the chat box streams the FAQ bot's reply and a free chat's, each the server's whole reply;
//! a user id gives the top-k list `ember recommend top` prints.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::server::{request, Reply, Server};
use common::{ok, repo_root, Scratch};
use serde_json::{json, Value};

/// W3C WebDriver's key for an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Browser {
    driver: Child,
    addr: String,
    session: String,
}

impl Browser {
    fn start(chromium: &Path, chromedriver: &Path, profile: &Path) -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut browser = Browser {
            driver,
            addr,
            session: String::new(),
        };
        // Without the background-networking flags Chromium keeps calling home on a closed
        // network.
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,1600",
            &format!("--user-data-dir={}", profile.display()),
        ];
        let session = browser.call(
            "POST",
            "/session",
            json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {"binary": chromium, "args": args}
            }}}),
        );
        browser.session = session["sessionId"].as_str().unwrap().to_string();
        browser
    }

    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let path = match self.session.is_empty() {
            true => path.to_string(),
            false => format!("/session/{}{path}", self.session),
        };
        let body = if method == "GET" {
            String::new()
        } else {
            body.to_string()
        };
        let reply: Reply = request(
            &self.addr,
            method,
            &path,
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        );
        let value = reply.json();
        assert_eq!(reply.status, 200, "WebDriver {method} {path}: {value}");
        value["value"].clone()
    }

    fn find(&self, css: &str) -> String {
        let found = self.call(
            "POST",
            "/element",
            json!({"using": "css selector", "value": css}),
        );
        found[ELEMENT].as_str().unwrap().to_string()
    }

    fn click(&self, css: &str) {
        let id = self.find(css);
        self.call("POST", &format!("/element/{id}/click"), json!({}));
    }

    fn script(&self, code: &str) -> Value {
        self.call("POST", "/execute/sync", json!({"script": code, "args": []}))
    }

    /// Waits for a script's value to be true.
    fn wait_for(&self, what: &str, code: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.script(code) != json!(true) {
            assert!(Instant::now() < deadline, "{what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn attribute(&self, css: &str, name: &str) -> Value {
        let id = self.find(css);
        self.call("GET", &format!("/element/{id}/attribute/{name}"), json!({}))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = request(
                &self.addr,
                "DELETE",
                &format!("/session/{}", self.session),
                &[],
                b"",
            );
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Pointer strokes that trace an MNIST image on the 280×280 canvas: one horizontal stroke
/// per run of ink in each pixel row, as (x0, y, x1) in canvas pixels.
fn strokes(image: &[u8]) -> Vec<(f64, f64, f64)> {
    let mut strokes = Vec::new();
    for (y, row) in image.chunks(28).enumerate() {
        let mut x = 0;
        while x < 28 {
            if row[x] < 128 {
                x += 1;
                continue;
            }
            let start = x;
            while x < 28 && row[x] >= 128 {
                x += 1;
            }
            let center = |p: usize| (p as f64 + 0.5) * 10.0;
            strokes.push((center(start), center(y), center(x - 1)));
        }
    }
    strokes
}

/// Sends `text` from the chat box and waits for the answer to end; returns what the page
/// shows of it.
fn chat(browser: &Browser, text: &str) -> String {
    let input = browser.find("#chat-input");
    browser.call(
        "POST",
        &format!("/element/{input}/value"),
        json!({"text": text}),
    );
    browser.click("#chat-send");
    browser.wait_for(
        "the chat's answer",
        "return document.getElementById('chat-log').dataset.state === 'done'",
    );
    let said = browser.script(
        "const all = document.querySelectorAll('#chat-log .msg.assistant .msg-text'); \
         return all[all.length - 1].textContent",
    );
    said.as_str().unwrap().to_string()
}

fn tool(env: &str, default: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os(env).map_or_else(|| default.into(), std::path::PathBuf::from);
    path.is_file().then_some(path)
}

#[test]
fn strokes_questions_chat_and_a_user_id_get_the_right_answers() {
    let (Some(chromium), Some(chromedriver)) = (
        tool("EMBER_CHROMIUM", "/usr/bin/chromium"),
        tool("EMBER_CHROMEDRIVER", "/usr/bin/chromedriver"),
    ) else {
        common::missing("no /usr/bin/chromium and /usr/bin/chromedriver (.ci/run installs them)");
        return;
    };
    let Some(encoder) = common::encoder_dir() else {
        return;
    };
    let scratch = Scratch::new("playground");
    let mnist = scratch.file("mnist.safetensors");
    ok(&[
        "train",
        "models/mnist-mlp.toml",
        "--epochs",
        "3",
        "--output",
        &mnist,
    ]);
    let faq = scratch.file("faq.index");
    let encoder = encoder.display().to_string();
    ok(&[
        "index",
        "--encoder",
        &encoder,
        "data/faq/ember-faq.csv",
        "--output",
        &faq,
    ]);
    let llm = common::llm_model();
    let recommender = common::movielens_als(scratch.file("movies.rec"));
    let mut served = vec![mnist.as_str(), faq.as_str()];
    served.extend(llm.as_deref());
    served.extend(recommender.as_deref());
    let server = Server::start(&served, &[], &scratch.path().join("server.log"));
    let profile = scratch.path().join("profile");
    let browser = Browser::start(&chromium, &chromedriver, &profile);
    browser.call(
        "POST",
        "/url",
        json!({"url": format!("http://{}/", server.addr)}),
    );
    browser.wait_for(
        "the page loads its models",
        "return document.body.dataset.ready === 'true'",
    );

    let images = ember::read_idx(repo_root().join("data/mnist/t10k-images-idx3-ubyte.gz")).unwrap();
    let labels = ember::read_idx(repo_root().join("data/mnist/t10k-labels-idx1-ubyte.gz")).unwrap();
    let canvas = browser.find("#digit-canvas");
    let rect = browser.call("GET", &format!("/element/{canvas}/rect"), json!({}));
    // Canvas pixels to CSS pixels from the element's centre, where WebDriver offsets start.
    let scale = rect["width"].as_f64().unwrap() / 280.0;
    let at = |x: f64, y: f64| {
        json!({"type": "pointerMove", "duration": 0, "origin": {ELEMENT: canvas},
               "x": ((x - 140.0) * scale).round() as i64, "y": ((y - 140.0) * scale).round() as i64})
    };
    for i in 0..6 {
        let image: Vec<u8> = images.data()[i * 784..(i + 1) * 784]
            .iter()
            .map(|&v| v as u8)
            .collect();
        browser.click("#digit-clear");
        let mut actions = Vec::new();
        for (x0, y, x1) in strokes(&image) {
            actions.push(at(x0, y));
            actions.push(json!({"type": "pointerDown", "button": 0}));
            actions.push(at((x0 + x1) / 2.0, y));
            actions.push(at(x1, y));
            actions.push(json!({"type": "pointerUp", "button": 0}));
        }
        browser.call(
            "POST",
            "/actions",
            json!({"actions": [{"type": "pointer", "id": "pen", "parameters": {"pointerType": "mouse"}, "actions": actions}]}),
        );
        browser.click("#digit-predict");
        browser.wait_for(
            "a prediction",
            "return document.getElementById('digit-result').dataset.state === 'done'",
        );
        let label = browser.attribute("#digit-result", "data-label");
        assert_eq!(label, json!(labels.data()[i].to_string()), "test image {i}");
        let bars =
            browser.script("return document.querySelectorAll('#digit-bars [data-label]').length");
        assert_eq!(bars, json!(10), "a probability bar per class");
    }

    let query = browser.find("#faq-query");
    browser.call(
        "POST",
        &format!("/element/{query}/value"),
        json!({"text": "how do I run the tests?"}),
    );
    browser.click("#faq-ask");
    browser.wait_for(
        "FAQ answers",
        "return document.getElementById('faq-answers').dataset.state === 'done'",
    );
    let first = browser.attribute("#faq-answers li", "data-question");
    assert_eq!(first, json!("How do I run the tests?"));

    if llm.is_some() {
        let llm = "SmolLM2-135M-Instruct.Q4_1";
        let default = browser.script("return document.getElementById('chat-faq').value");
        assert_eq!(
            default,
            json!("faq"),
            "the bot answers from the index at first"
        );
        // Free chat: the reply streamed into the page is the whole reply
        // /v1/chat/completions gives.
        browser.script(
            "const s = document.getElementById('chat-faq'); s.value = ''; \
             s.dispatchEvent(new Event('change')); return true",
        );
        let whole = server
            .post(
                "/v1/chat/completions",
                &json!({"model": llm, "messages": [{"role": "user", "content": "What is 2+2?"}],
                        "temperature": 0, "max_tokens": 256}),
            )
            .json();
        let said = chat(&browser, "What is 2+2?");
        assert_eq!(json!(said), whole["choices"][0]["message"]["content"]);
        // The bot: its reply is the server's whole reply, below its sources.
        browser.script(
            "const s = document.getElementById('chat-faq'); s.value = 'faq'; \
             s.dispatchEvent(new Event('change')); return true",
        );
        let question = "can I use my own pictures to train?";
        let whole = server
            .post("/v1/faq/faq/ask", &json!({"query": question, "llm": llm}))
            .json();
        let said = chat(&browser, question);
        assert_eq!(json!(said), whole["reply"]);
        let source = browser.attribute("#chat-log .sources li", "data-question");
        assert_eq!(source, whole["answers"][0]["question"]);
    }

    if let Some(recommender) = &recommender {
        let user = browser.find("#recommend-user");
        browser.call(
            "POST",
            &format!("/element/{user}/value"),
            json!({"text": "196"}),
        );
        browser.click("#recommend-go");
        browser.wait_for(
            "recommendations",
            "return document.getElementById('recommend-items').dataset.state === 'done'",
        );
        let shown = browser.script(
            "return [...document.querySelectorAll('#recommend-items li')].map(li => li.dataset.item)",
        );
        let top: Value = serde_json::from_str(&ok(&[
            "recommend",
            "top",
            recommender,
            "--user",
            "196",
            "--json",
        ]))
        .unwrap();
        let items: Vec<&Value> = top["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| &i["item"])
            .collect();
        assert_eq!(shown, json!(items));
    }
    // EMBER_SCREENSHOT=FILE keeps a picture of the page as the test left it (the README's).
    if let Some(file) = std::env::var_os("EMBER_SCREENSHOT") {
        use base64::Engine as _;
        let png = browser.call("GET", "/screenshot", json!({}));
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        std::fs::write(file, bytes).unwrap();
    }
}
