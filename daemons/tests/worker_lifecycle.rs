//! `worker-orcd`'s life (issue 6): ready callback with the bearer token (WORK-3011,
//! POOL-2022), failure callback and exit codes on start-up failures, SIGTERM and
//! `/shutdown` drains (WORK-3100), the inference timeout (WORK-3071).
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod support;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use parking_lot::Mutex;
use serde_json::{Value, json};
use support::{
    Daemon, SseReader, check_stream, client, health, metric, metrics, post_execute, tiny_model,
    wait_health,
};

use support::long_job as job;

/// WORK-3100: SIGTERM refuses new work with 503, lets the running and the waiting job
/// finish, then exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_active_streams_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::start(&tiny_model(dir.path()), &["--max-seqs", "1"]);
    let c = client();
    let mut a = SseReader::new(post_execute(&c, &d, &job("job-a", 2000)).await);
    let mut b = SseReader::new(post_execute(&c, &d, &job("job-b", 2000)).await);
    assert_eq!(a.next().await.unwrap().name, "started");
    let t = Instant::now();
    d.sigterm();
    wait_health(&c, &d, Duration::from_secs(5), |h| {
        h["status"] == "draining"
    })
    .await;
    let r = post_execute(&c, &d, &job("job-late", 4)).await;
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error_code"], "SHUTTING_DOWN");
    assert_eq!(v["retriable"], true);
    let ready = c.get(d.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let rest_a = a.rest().await;
    let (_, toks, last) = check_stream(&rest_a_with_start(rest_a));
    assert_eq!(last.name, "end", "{last:?}");
    assert_eq!(toks.len(), 2000);
    let (_, toks, last) = check_stream(&b.rest().await);
    assert_eq!(last.name, "end", "{last:?}");
    assert_eq!(toks.len(), 2000);
    let status = d.wait_exit(Duration::from_secs(30));
    eprintln!("SIGTERM → exit in {:.1?}", t.elapsed());
    assert_eq!(status.code(), Some(0), "{}", d.logs());
    let logs = d.logs();
    assert!(logs.contains("\"reason\":\"SIGTERM\""), "{logs}");
    assert!(logs.contains("\"event\":\"stopped\""), "{logs}");
}

/// `a`'s stream after its `started` was read: put a `started` back for the checks.
fn rest_a_with_start(rest: Vec<support::Ev>) -> Vec<support::Ev> {
    let mut v = vec![support::Ev {
        name: "started".into(),
        data: json!({"tokens_in": 0}),
    }];
    v.extend(rest);
    v
}

/// `/shutdown` with a short grace: jobs still running when it ends are cancelled, and
/// the worker exits 0 promptly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_request_cancels_past_the_grace_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::start(
        &tiny_model(dir.path()),
        &["--max-seqs", "1", "--drain-grace-ms", "100"],
    );
    let c = client();
    let mut streams = Vec::new();
    for i in 0..4 {
        streams.push(SseReader::new(
            post_execute(&c, &d, &job(&format!("job-{i}"), 2000)).await,
        ));
    }
    assert_eq!(streams[0].next().await.unwrap().name, "started");
    let r = c.post(d.url("/shutdown")).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let t = Instant::now();
    let mut cancelled = 0;
    for s in &mut streams {
        let rest = s.rest().await;
        let last = rest.last().unwrap();
        assert!(last.name == "end" || last.name == "error", "{last:?}");
        if last.name == "error" {
            assert_eq!(last.data["error_code"], "CANCELLED");
            cancelled += 1;
        }
    }
    assert!(
        cancelled >= 1,
        "4 × 2000 tokens cannot all finish in 100 ms"
    );
    assert_eq!(d.wait_exit(Duration::from_secs(10)).code(), Some(0));
    assert!(t.elapsed() < Duration::from_secs(10));
}

/// WORK-3071: a job past the inference timeout ends with `INFERENCE_TIMEOUT`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inference_timeout_ends_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(
        &tiny_model(dir.path()),
        &["--max-seqs", "1", "--inference-timeout-ms", "100"],
    );
    let c = client();
    let s = SseReader::new(post_execute(&c, &d, &job("job-slow", 2000)).await)
        .rest()
        .await;
    let (_, toks, last) = check_stream(&s);
    assert_eq!(last.name, "error");
    assert_eq!(last.data["error_code"], "INFERENCE_TIMEOUT");
    assert!(toks.len() < 2000);
    wait_health(&c, &d, Duration::from_secs(5), |h| h["jobs_active"] == 0).await;
    let m = metrics(&c, &d).await;
    assert_eq!(
        metric(&m, "worker_requests_total{outcome=\"timeout\"}"),
        1.0
    );
    assert_eq!(metric(&m, "worker_tokens_out_total"), toks.len() as f64);
}

#[derive(Default)]
struct Calls(Vec<(String, Option<String>, Value)>);

/// A pool manager stand-in on port 0 recording its callbacks.
async fn fake_pool() -> (String, Arc<Mutex<Calls>>) {
    let calls = Arc::new(Mutex::new(Calls::default()));
    let record = |path: &'static str| {
        move |State(calls): State<Arc<Mutex<Calls>>>,
              headers: HeaderMap,
              Json(body): Json<Value>| async move {
            let auth = headers
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_owned());
            calls.lock().0.push((path.to_owned(), auth, body));
            Json(json!({"ok": true}))
        }
    };
    let app = axum::Router::new()
        .route("/v2/internal/workers/ready", post(record("ready")))
        .route("/v2/internal/workers/failed", post(record("failed")))
        .with_state(Arc::clone(&calls));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, calls)
}

/// WORK-3011, POOL-2022: once loaded and serving, the worker calls back
/// `POST /v2/internal/workers/ready {worker_id, model_ref, vram_bytes, uri}` with the
/// bearer token; the uri it reports serves /ready. The token never reaches the logs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_callback_carries_the_token_and_a_working_uri() {
    let dir = tempfile::tempdir().unwrap();
    let (url, calls) = fake_pool().await;
    let model = tiny_model(dir.path());
    let d = Daemon::start(
        &model,
        &[
            "--callback-url",
            &url,
            "--callback-token",
            "s3cr3t-token",
            "--model-ref",
            "hf:org/tiny::file=tiny.gguf",
        ],
    );
    let got = calls.lock().0.clone();
    assert_eq!(got.len(), 1, "{got:?}");
    let (path, auth, body) = &got[0];
    assert_eq!(path, "ready");
    assert_eq!(auth.as_deref(), Some("Bearer s3cr3t-token"));
    assert_eq!(body["worker_id"], "w-test");
    assert_eq!(body["model_ref"], "hf:org/tiny::file=tiny.gguf");
    assert!(body["vram_bytes"].as_u64().unwrap() > 0);
    assert_eq!(body["slots_total"], 16);
    let uri = body["uri"].as_str().unwrap();
    assert_eq!(uri, d.base);
    let c = client();
    let r = c.get(format!("{uri}/ready")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let h = health(&c, &d).await;
    assert_eq!(h["model"], "hf:org/tiny::file=tiny.gguf");
    assert_eq!(h["vram_bytes"], body["vram_bytes"]);
    assert!(!d.logs().contains("s3cr3t-token"));
}

/// A start-up failure calls the failure callback and exits non-zero with the SPEC code:
/// `cuda:N` on a machine without a GPU → `GPU_UNAVAILABLE`, exit 5; a broken
/// model file → `MODEL_LOAD_FAILED`, exit 3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_failures_call_back_and_exit_with_the_code() {
    let dir = tempfile::tempdir().unwrap();
    let (url, calls) = fake_pool().await;
    let model = tiny_model(dir.path());
    let broken = dir.path().join("broken.gguf");
    std::fs::write(&broken, b"GGUF but not really").unwrap();
    let run = |model: &std::path::Path, device: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_worker-orcd"))
            .args(["--worker-id", "w-bad", "--port", "0", "--device", device])
            .arg("--model")
            .arg(model)
            .args(["--callback-url", &url])
            .env("LLORCH_CALLBACK_TOKEN", "tok-env")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8(out.stderr).unwrap())
    };
    let (code, err) = tokio::task::block_in_place(|| run(&model, "cuda:0"));
    assert_eq!(code, Some(5), "{err}");
    assert!(err.starts_with("worker-orcd: GPU_UNAVAILABLE:"), "{err}");
    let (code, err) = tokio::task::block_in_place(|| run(&broken, "cpu"));
    assert_eq!(code, Some(3), "{err}");
    assert!(err.starts_with("worker-orcd: MODEL_LOAD_FAILED:"), "{err}");
    let got = calls.lock().0.clone();
    let codes: Vec<_> = got
        .iter()
        .map(|(path, auth, body)| {
            assert_eq!(path, "failed");
            assert_eq!(auth.as_deref(), Some("Bearer tok-env"));
            assert_eq!(body["worker_id"], "w-bad");
            body["error"]["error_code"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(codes, ["GPU_UNAVAILABLE", "MODEL_LOAD_FAILED"]);
    // Bad flags: one line, exit 2.
    let out = Command::new(env!("CARGO_BIN_EXE_worker-orcd"))
        .args([
            "--worker-id",
            "w",
            "--port",
            "0",
            "--model",
            "x",
            "--device",
            "tpu:0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8(out.stderr).unwrap().lines().count(), 1);
    let out = Command::new(env!("CARGO_BIN_EXE_worker-orcd"))
        .args(["--worker-id", "w", "--port", "0", "--model", "x"])
        .args(["--device", "cuda:0", "--matmul", "int4"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("tensor-cores, f32"), "{err}");
}
