//! `worker-orcd` over HTTP with a tiny generated model (issue 6): the real binary on
//! 127.0.0.1 port 0, a real SSE client. Concurrency, cancellation, disconnects,
//! validation (WORK-3120), SIGTERM drain (WORK-3100), inference timeout (WORK-3071),
//! metrics equal to what clients saw (WORK-3080).
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{
    Daemon, SseReader, check_stream, client, health, long_job, metric, metrics, post_execute,
    run_job, tiny_model, wait_health,
};

fn job(id: &str, prompt: &str, max_tokens: u32) -> Value {
    json!({"job_id": id, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0.8, "seed": 7})
}

/// WORK-3060 EXT: 32 concurrent streams (twice the slots) each end with exactly one
/// terminal event, in order; the metrics count exactly what the clients saw.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_streams_end_once_and_metrics_match() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(&tiny_model(dir.path()), &["--max-seqs", "16"]);
    let c = client();
    let t = Instant::now();
    let jobs = (0..32u32).map(|i| {
        let body = job(
            &format!("job-{i}"),
            &format!("secret prompt {i} ok"),
            16 + i % 8,
        );
        let c = c.clone();
        let d = &d;
        async move { run_job(&c, d, &body).await }
    });
    let streams = futures::future::join_all(jobs).await;
    let took = t.elapsed();
    let (mut tokens_in, mut tokens_out) = (0, 0);
    for (i, s) in streams.iter().enumerate() {
        let (n_in, toks, last) = check_stream(s);
        assert_eq!(last.name, "end", "{last:?}");
        assert_eq!(toks.len() as u32, 16 + i as u32 % 8);
        assert_eq!(last.data["tokens_out"].as_u64().unwrap(), toks.len() as u64);
        tokens_in += n_in;
        tokens_out += toks.len() as u64;
    }
    let m = metrics(&c, &d).await;
    assert_eq!(metric(&m, "worker_requests_total{outcome=\"ok\"}"), 32.0);
    assert_eq!(metric(&m, "worker_tokens_in_total"), tokens_in as f64);
    assert_eq!(metric(&m, "worker_tokens_out_total"), tokens_out as f64);
    assert_eq!(metric(&m, "worker_inference_duration_seconds_count"), 32.0);
    assert!(metric(&m, "worker_vram_bytes") > 0.0);
    assert!(m.contains_key("worker_uptime_seconds"));
    // /health is published after each step: it may trail the last event by one step.
    let h = wait_health(&c, &d, Duration::from_secs(5), |h| h["jobs_active"] == 0).await;
    assert_eq!(h["status"], "ok");
    assert_eq!(h["slots_free"], 16);
    assert_eq!(h["kv_pages_free"], h["kv_pages_total"]);
    eprintln!(
        "tiny model: 32 streams, {tokens_out} tokens in {took:.2?} ({:.0} tokens/s)",
        tokens_out as f64 / took.as_secs_f64()
    );
    // WORK-3080: logs carry ids and counts, never the prompt text.
    let logs = d.logs();
    assert!(logs.contains("\"event\":\"job_end\""));
    assert!(!logs.contains("secret prompt"), "prompt text in the logs");
}

/// WORK-3120: every kind of bad request gets a 4xx with the error body, never a 500,
/// and the daemon keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_4xx_and_the_daemon_still_serves() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(&tiny_model(dir.path()), &["--max-seqs", "4"]);
    let c = client();
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    let deep_obj = format!(
        r#"{{"job_id":"j","prompt":"x","nested":{}1{}}}"#,
        r#"{"a":"#.repeat(10_000),
        "}".repeat(10_000)
    );
    let long_prompt: Vec<u32> = vec![5; 2048];
    let j = |extra: Value| {
        let mut v = json!({"job_id": "job-bad", "prompt": "hello"});
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v.to_string().into_bytes()
    };
    let raw = |s: &str| s.as_bytes().to_vec();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("malformed JSON", raw("{nope")),
        ("empty body", vec![]),
        ("JSON array", raw("[]")),
        ("JSON null", raw("null")),
        ("missing job_id", raw(r#"{"prompt":"x"}"#)),
        ("bad job id", raw(r#"{"job_id":"a b","prompt":"x"}"#)),
        ("max_tokens as string", j(json!({"max_tokens": "8"}))),
        ("prompt as number", raw(r#"{"job_id":"j","prompt":5}"#)),
        (
            "max_tokens over u32",
            raw(r#"{"job_id":"j","prompt":"x","max_tokens":18446744073709551616}"#),
        ),
        (
            "max_tokens beyond context",
            j(json!({"max_tokens": 4_000_000_000u32})),
        ),
        ("max_tokens 0", j(json!({"max_tokens": 0}))),
        ("negative max_tokens", j(json!({"max_tokens": -1}))),
        ("negative temperature", j(json!({"temperature": -0.5}))),
        ("temperature 2.5", j(json!({"temperature": 2.5}))),
        (
            "temperature 1e999",
            raw(r#"{"job_id":"j","prompt":"x","temperature":1e999}"#),
        ),
        ("temperature NaN string", j(json!({"temperature": "NaN"}))),
        (
            "temperature bare NaN",
            raw(r#"{"job_id":"j","prompt":"x","temperature":NaN}"#),
        ),
        ("top_p 0", j(json!({"top_p": 0.0}))),
        ("top_p 1.5", j(json!({"top_p": 1.5}))),
        ("negative seed", j(json!({"seed": -1}))),
        (
            "huge seed",
            raw(r#"{"job_id":"j","prompt":"x","seed":1e30}"#),
        ),
        ("unknown field", j(json!({"bogus": 1}))),
        (
            "prompt and prompt_tokens",
            j(json!({"prompt_tokens": [1, 2]})),
        ),
        ("no prompt", raw(r#"{"job_id":"j"}"#)),
        ("empty prompt", j(json!({"prompt": ""}))),
        (
            "empty prompt_tokens",
            raw(r#"{"job_id":"j","prompt_tokens":[]}"#),
        ),
        (
            "token id outside the vocabulary",
            raw(r#"{"job_id":"j","prompt_tokens":[99999999]}"#),
        ),
        (
            "prompt fills the context",
            json!({"job_id": "j", "prompt_tokens": long_prompt})
                .to_string()
                .into_bytes(),
        ),
        ("17 stop strings", j(json!({"stop": vec!["x"; 17]}))),
        ("empty stop string", j(json!({"stop": [""]}))),
        (
            "300-byte stop string",
            j(json!({"stop": ["s".repeat(300)]})),
        ),
        ("logprobs 21", j(json!({"logprobs": 21}))),
        (
            "invalid UTF-8",
            b"{\"job_id\":\"j\",\"prompt\":\"\xff\xfe\"}".to_vec(),
        ),
        ("10k-deep array", deep(10_000).into_bytes()),
        ("10k-deep object in an unknown field", deep_obj.into_bytes()),
    ];
    let n_cases = cases.len();
    for (what, body) in cases {
        let r = c
            .post(d.url("/execute"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 400, "{what}: {v}");
        assert_eq!(v["error_code"], "INVALID_REQUEST", "{what}: {v}");
        assert_eq!(v["retriable"], false, "{what}");
    }
    // 413 by Content-Length, before the body is read, and by counting a chunked body.
    let huge = support_raw::post(&d.addr, "/execute", 9 << 20, false).await;
    assert!(huge.starts_with("HTTP/1.1 413"), "{huge}");
    assert!(huge.contains("PAYLOAD_TOO_LARGE"), "{huge}");
    let chunked = support_raw::post(&d.addr, "/execute", 9 << 20, true).await;
    assert!(chunked.starts_with("HTTP/1.1 413"), "{chunked}");
    // Cancel bodies, unknown routes.
    for body in ["{}", r#"{"job_id":"j","x":1}"#, "nope"] {
        let r = c.post(d.url("/cancel")).body(body).send().await.unwrap();
        assert_eq!(r.status(), 400, "{body}");
    }
    let r = c.get(d.url("/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["error_code"], "NOT_FOUND");
    // Still serving, and every refusal counted. ORCH-1092: a caller's correlation id is
    // echoed and logged with the job; a malformed one is replaced by a minted one.
    let r = c
        .post(d.url("/execute"))
        .header("x-correlation-id", "corr-test-42")
        .json(&job("job-after", "still here", 4))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-correlation-id"], "corr-test-42");
    let s = SseReader::new(r).rest().await;
    assert_eq!(check_stream(&s).2.name, "end");
    let r = c
        .get(d.url("/health"))
        .header("x-correlation-id", "bad id!")
        .send()
        .await
        .unwrap();
    let minted = r.headers()["x-correlation-id"].to_str().unwrap();
    assert!(minted.starts_with("corr-") && minted != "bad id!");
    let logs = d.logs();
    let end = logs
        .lines()
        .find(|l| l.contains("\"event\":\"job_end\""))
        .unwrap();
    assert!(end.contains("\"correlation_id\":\"corr-test-42\""), "{end}");
    for field in [
        "worker_id",
        "job_id",
        "model_ref",
        "gpu_device",
        "vram_bytes",
        "tokens_in",
        "tokens_out",
        "decode_time_ms",
    ] {
        assert!(
            end.contains(&format!("\"{field}\":")),
            "WORK-3080 field {field}: {end}"
        );
    }
    let m = metrics(&c, &d).await;
    assert_eq!(
        metric(&m, "worker_requests_total{outcome=\"rejected\"}"),
        (n_cases + 2) as f64
    );
    assert_eq!(metric(&m, "worker_requests_total{outcome=\"ok\"}"), 1.0);
    assert_eq!(health(&c, &d).await["status"], "ok");
}

/// A raw HTTP/1.1 client for bodies reqwest would insist on sending in full.
mod support_raw {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Claims (or streams, chunked) `len` bytes of body and returns the response text.
    pub async fn post(addr: &str, path: &str, len: usize, chunked: bool) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = if chunked {
            format!("POST {path} HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n")
        } else {
            format!("POST {path} HTTP/1.1\r\nhost: x\r\ncontent-length: {len}\r\n\r\n")
        };
        s.write_all(head.as_bytes()).await.unwrap();
        let chunk = vec![b' '; 64 << 10];
        let mut sent = 0;
        // Send until the server answers (it stops reading at the limit).
        let mut resp = Vec::new();
        let mut buf = [0u8; 4096];
        while sent < len {
            let w = if chunked {
                let mut c = format!("{:x}\r\n", chunk.len()).into_bytes();
                c.extend_from_slice(&chunk);
                c.extend_from_slice(b"\r\n");
                s.write_all(&c).await
            } else {
                s.write_all(&chunk).await
            };
            if w.is_err() {
                break;
            }
            sent += chunk.len();
            if let Ok(Ok(n)) =
                tokio::time::timeout(std::time::Duration::from_millis(1), s.read(&mut buf)).await
            {
                resp.extend_from_slice(&buf[..n]);
                if n == 0 || resp.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
        }
        while !resp.windows(4).any(|w| w == b"\r\n\r\n") {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => resp.extend_from_slice(&buf[..n]),
            }
        }
        let _ = tokio::time::timeout(std::time::Duration::from_millis(200), s.read(&mut buf))
            .await
            .map(|r| r.map(|n| resp.extend_from_slice(&buf[..n])));
        String::from_utf8_lossy(&resp).into_owned()
    }
}

/// Cancel is keyed by job id, idempotent (202 twice) and 404 for an unknown id; a
/// waiting job and a running job both end with `CANCELLED`; nothing else is touched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_twice_and_cancel_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(&tiny_model(dir.path()), &["--max-seqs", "1"]);
    let c = client();
    let mut a = SseReader::new(post_execute(&c, &d, &long_job("job-a", 2000)).await);
    assert_eq!(a.next().await.unwrap().name, "started");
    // One slot: job-b waits behind job-a.
    let mut b = SseReader::new(post_execute(&c, &d, &job("job-b", "wait", 10)).await);
    let cancel = |id: &str| {
        let c = c.clone();
        let url = d.url("/cancel");
        let body = json!({ "job_id": id });
        async move {
            let r = c.post(url).json(&body).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (s, v) = cancel("job-b").await;
    assert_eq!((s, v["status"].as_str()), (202, Some("cancelled")), "{v}");
    let (s, v) = cancel("job-b").await;
    assert_eq!(
        (s, v["status"].as_str()),
        (202, Some("already_finished")),
        "{v}"
    );
    let rest_b = b.rest().await;
    assert_eq!(rest_b.len(), 1, "{rest_b:?}");
    assert_eq!(rest_b[0].data["error_code"], "CANCELLED");
    // job-a still runs; cancel it twice.
    assert_eq!(a.next().await.unwrap().name, "token");
    let (s, v) = cancel("job-a").await;
    assert_eq!((s, v["status"].as_str()), (202, Some("cancelled")), "{v}");
    let (s, _) = cancel("job-a").await;
    assert_eq!(s, 202);
    let mut events = vec![];
    while let Some(e) = a.next().await {
        events.push(e);
    }
    let last = events.last().unwrap();
    assert_eq!(last.data["error_code"], "CANCELLED", "{last:?}");
    assert!(events.len() < 2000);
    let (s, v) = cancel("job-never-seen").await;
    assert_eq!(s, 404);
    assert_eq!(v["error_code"], "NOT_FOUND");
    let h = wait_health(&c, &d, Duration::from_secs(5), |h| h["slots_free"] == 1).await;
    assert_eq!(h["kv_pages_free"], h["kv_pages_total"]);
    let m = metrics(&c, &d).await;
    assert_eq!(
        metric(&m, "worker_requests_total{outcome=\"cancelled\"}"),
        2.0
    );
}

/// WORK-3053: a client that goes away mid-stream cancels its job and frees its slot
/// and KV pages, seen in /health and /metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_frees_the_slot() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(&tiny_model(dir.path()), &["--max-seqs", "2"]);
    let c = client();
    let mut s = SseReader::new(post_execute(&c, &d, &long_job("job-gone", 2000)).await);
    for _ in 0..4 {
        s.next().await.unwrap();
    }
    let h = health(&c, &d).await;
    assert_eq!(h["slots_free"], 1, "{h}");
    let t = Instant::now();
    drop(s);
    let h = wait_health(&c, &d, Duration::from_secs(5), |h| {
        h["slots_free"] == 2 && h["jobs_active"] == 0
    })
    .await;
    eprintln!("disconnect → slot free in {:.1?}", t.elapsed());
    assert_eq!(h["kv_pages_free"], h["kv_pages_total"]);
    let m = metrics(&c, &d).await;
    assert_eq!(
        metric(&m, "worker_requests_total{outcome=\"cancelled\"}"),
        1.0
    );
    assert_eq!(metric(&m, "worker_slots_free"), 2.0);
    assert_eq!(metric(&m, "worker_jobs_active"), 0.0);
    assert_eq!(
        metric(&m, "worker_kv_pages_free"),
        metric(&m, "worker_kv_pages_total")
    );
}
