//! Helpers for the worker-orcd tests: the real daemon binary as a child process, an
//! SSE client over reqwest, and readers for /health and /metrics.
#![allow(dead_code, clippy::unwrap_used, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use llorch_worker::synth::{Arch, SynthConfig, write_file};
use parking_lot::Mutex;
use serde_json::Value;

/// A tiny llama with room for long generations (ctx 2048).
pub fn tiny_model(dir: &Path) -> PathBuf {
    let path = dir.join("tiny-llama.gguf");
    let mut cfg = SynthConfig::tiny(Arch::Llama);
    cfg.context_length = 2048;
    write_file(&cfg, &path).unwrap();
    path
}

/// A job that runs to `max_tokens` on [`tiny_model`] (greedy: this prompt never
/// reaches an end-of-generation token within 2000 tokens; about 1.5 s alone).
pub fn long_job(id: &str, max_tokens: u32) -> Value {
    serde_json::json!({"job_id": id, "prompt": "a long story", "max_tokens": max_tokens, "temperature": 0.0})
}

/// A running `worker-orcd`; killed when dropped.
pub struct Daemon {
    pub child: Child,
    pub base: String,
    pub addr: String,
    logs: Arc<Mutex<String>>,
}

impl Daemon {
    /// Starts the daemon on 127.0.0.1 port 0 and waits for its `listening` log line.
    pub fn start(model: &Path, extra: &[&str]) -> Daemon {
        let mut child = Command::new(env!("CARGO_BIN_EXE_worker-orcd"))
            .args(["--worker-id", "w-test", "--port", "0", "--device", "cpu"])
            .arg("--model")
            .arg(model)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let logs = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let out = child.stdout.take().unwrap();
        let sink = Arc::clone(&logs);
        // Drain stdout for the daemon's whole life (a full pipe would block its logging).
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if line.contains("\"event\":\"ready\"") {
                    let _ = tx.send(());
                }
                let mut l = sink.lock();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let err = child.stderr.take().unwrap();
        let sink = Arc::clone(&logs);
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                let mut l = sink.lock();
                l.push_str("stderr: ");
                l.push_str(&line);
                l.push('\n');
            }
        });
        if rx.recv_timeout(Duration::from_secs(60)).is_err() {
            let _ = child.kill();
            panic!("worker-orcd did not become ready:\n{}", logs.lock());
        }
        let addr = logs
            .lock()
            .lines()
            .find_map(|l| {
                let v: Value = serde_json::from_str(l).ok()?;
                (v["event"] == "listening").then(|| v["addr"].as_str().unwrap().to_owned())
            })
            .unwrap();
        Daemon {
            child,
            base: format!("http://{addr}"),
            addr,
            logs,
        }
    }

    /// Everything the daemon logged so far (stdout JSON, stderr prefixed).
    pub fn logs(&self) -> String {
        self.logs.lock().clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    /// Waits for the process to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let t = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(t.elapsed() < limit, "did not exit within {limit:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One SSE event: name and JSON data.
#[derive(Debug, Clone)]
pub struct Ev {
    pub name: String,
    pub data: Value,
}

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<axum::body::Bytes>> + Send>>;

/// Reads SSE events (`event:`/`data:` lines, blank-line separated; comments ignored).
pub struct SseReader {
    stream: ByteStream,
    buf: Vec<u8>,
}

impl SseReader {
    pub fn new(resp: reqwest::Response) -> Self {
        Self {
            stream: Box::pin(resp.bytes_stream()),
            buf: Vec::new(),
        }
    }

    /// The next event, or `None` at the end of the stream.
    pub async fn next(&mut self) -> Option<Ev> {
        loop {
            if let Some(at) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buf.drain(..at + 2).collect();
                let text = String::from_utf8(block).expect("SSE is UTF-8");
                let (mut name, mut data) = (None, String::new());
                for line in text.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    }
                }
                let Some(name) = name else { continue }; // a keep-alive comment
                let data = serde_json::from_str(&data).expect("data is JSON");
                return Some(Ev { name, data });
            }
            match self.stream.next().await {
                Some(Ok(chunk)) => self.buf.extend_from_slice(&chunk),
                Some(Err(e)) => panic!("stream failed: {e}"),
                None => {
                    assert!(self.buf.iter().all(|b| b.is_ascii_whitespace()));
                    return None;
                }
            }
        }
    }

    /// Every remaining event.
    pub async fn rest(&mut self) -> Vec<Ev> {
        let mut out = Vec::new();
        while let Some(e) = self.next().await {
            out.push(e);
        }
        out
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

/// `POST /execute`; the response (status not checked).
pub async fn post_execute(c: &reqwest::Client, d: &Daemon, body: &Value) -> reqwest::Response {
    c.post(d.url("/execute")).json(body).send().await.unwrap()
}

/// A job's whole stream; asserts the SSE status.
pub async fn run_job(c: &reqwest::Client, d: &Daemon, body: &Value) -> Vec<Ev> {
    let resp = post_execute(c, d, body).await;
    assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
    SseReader::new(resp).rest().await
}

/// Checks the WORK-3050 order: `started`, `token`s with i = 0, 1, …, then exactly one
/// terminal event, last. Returns (tokens_in, token ids, terminal).
pub fn check_stream(events: &[Ev]) -> (u64, Vec<u64>, Ev) {
    assert!(!events.is_empty(), "empty stream");
    let terminal: Vec<&Ev> = events
        .iter()
        .filter(|e| e.name == "end" || e.name == "error")
        .collect();
    assert_eq!(terminal.len(), 1, "exactly one terminal event: {events:?}");
    let last = events.last().unwrap();
    assert!(last.name == "end" || last.name == "error", "{events:?}");
    let mut tokens = Vec::new();
    let mut tokens_in = 0;
    for (k, e) in events.iter().enumerate() {
        match e.name.as_str() {
            "started" => {
                assert_eq!(k, 0, "started comes first");
                tokens_in = e.data["tokens_in"].as_u64().unwrap();
            }
            "token" => {
                assert_eq!(e.data["i"].as_u64().unwrap(), tokens.len() as u64);
                tokens.push(e.data["t"].as_u64().unwrap());
            }
            "end" | "error" => {}
            other => panic!("unexpected event {other}"),
        }
    }
    (tokens_in, tokens, last.clone())
}

pub async fn health(c: &reqwest::Client, d: &Daemon) -> Value {
    c.get(d.url("/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// `/metrics` as `name{labels}` → value (comments skipped).
pub async fn metrics(c: &reqwest::Client, d: &Daemon) -> BTreeMap<String, f64> {
    let text = c
        .get(d.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect()
}

pub fn metric(m: &BTreeMap<String, f64>, key: &str) -> f64 {
    m.get(key).copied().unwrap_or(0.0)
}

/// Polls /metrics until `pred` holds (or panics after `limit`): gauges are set by the
/// runner after each step, so a scrape may trail /health by one publication.
pub async fn wait_metrics(
    c: &reqwest::Client,
    d: &Daemon,
    limit: Duration,
    pred: impl Fn(&BTreeMap<String, f64>) -> bool,
) -> BTreeMap<String, f64> {
    let t = Instant::now();
    loop {
        let m = metrics(c, d).await;
        if pred(&m) {
            return m;
        }
        assert!(t.elapsed() < limit, "metrics never matched: {m:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls /health until `pred` holds (or panics after `limit`).
pub async fn wait_health(
    c: &reqwest::Client,
    d: &Daemon,
    limit: Duration,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let t = Instant::now();
    loop {
        let h = health(c, d).await;
        if pred(&h) {
            return h;
        }
        assert!(t.elapsed() < limit, "health never matched: {h}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs the `llorch` binary with `args` and waits for it.
pub fn llorch(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_llorch"))
        .args(args)
        .output()
        .unwrap()
}
