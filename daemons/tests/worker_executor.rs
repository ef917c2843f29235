//! The in-process worker seam (`LocalExecutor`, feature `server`), without HTTP:
//! a reader that stops reading pauses only its own sequence and is cancelled past
//! the stall timeout; dropping a stream cancels its job (WORK-3053); the engine
//! thread sleeps when it has nothing to compute.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod support;

use std::time::{Duration, Instant};

use futures::StreamExt;
use llorch_core::wire::events::TaskEvent;
use llorch_core::wire::task::{GenerationParams, PromptInput, ValidJob};
use llorch_core::{Device, ErrorCode, JobId, WorkerExecutor, WorkerId};
use llorch_worker::engine::EngineConfig;
use llorch_worker::model::load::load;
use llorch_worker::server::LocalExecutor;
use llorch_worker::server::executor::STREAM_BUFFER;

fn executor(stall: Duration) -> (tempfile::TempDir, LocalExecutor) {
    let dir = tempfile::tempdir().unwrap();
    let model = load(&support::tiny_model(dir.path())).unwrap();
    let engine = model.into_cpu_engine(EngineConfig {
        max_seqs: 4,
        max_ctx: 2048,
        stall_timeout: stall,
        ..EngineConfig::default()
    });
    let exec = llorch_worker::server::start(
        engine,
        WorkerId::new("w-inproc").unwrap(),
        "file:/tiny.gguf".into(),
        Device::Cpu,
    )
    .unwrap();
    (dir, exec)
}

fn job(id: &str, max_tokens: u32) -> ValidJob {
    ValidJob::new(
        JobId::new(id).unwrap(),
        PromptInput::Text {
            prompt: "a long story".into(),
        },
        GenerationParams {
            max_tokens: Some(max_tokens),
            temperature: Some(0.0),
            ..GenerationParams::default()
        },
    )
    .unwrap()
}

/// The tests of this file measure the engine thread's CPU time: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// CPU time of this process's engine thread (`llorch-engine`) and its compute pool, from /proc.
fn engine_cpu() -> Duration {
    let mut ticks = 0u64;
    let mut found = 0;
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let p = task.unwrap().path();
        let comm = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
        if comm.trim() == "llorch-engine" {
            found += 1;
            let stat = std::fs::read_to_string(p.join("stat")).unwrap();
            let after = &stat[stat.rfind(')').unwrap() + 2..];
            let f: Vec<&str> = after.split(' ').collect();
            // utime and stime are fields 14 and 15 of stat (11 and 12 after the name).
            ticks += f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
        }
    }
    // Rayon's workers, started from the engine thread, inherit its name: counted too.
    assert!(found >= 1, "no engine thread");
    Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
}

/// Waits (up to 5 s) until the runner's snapshot satisfies `pred`.
async fn wait_snapshot(
    exec: &LocalExecutor,
    pred: impl Fn(&llorch_worker::server::Snapshot) -> bool,
) -> llorch_worker::server::Snapshot {
    let t = Instant::now();
    loop {
        let s = exec.snapshot();
        if pred(&s) {
            return s;
        }
        assert!(t.elapsed() < Duration::from_secs(5), "{s:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn collect(mut s: llorch_core::EventStream) -> Vec<TaskEvent> {
    let mut out = Vec::new();
    while let Some(e) = s.next().await {
        out.push(e);
    }
    out
}

fn terminal(events: &[TaskEvent]) -> &TaskEvent {
    assert_eq!(events.iter().filter(|e| e.is_terminal()).count(), 1);
    let last = events.last().unwrap();
    assert!(last.is_terminal());
    last
}

/// A reader that takes nothing: its sequence pauses after the stream buffer fills, the
/// others run to the end meanwhile, the engine thread sleeps while only the paused
/// sequence is left, and past the stall timeout the job is cancelled and its slot freed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_reader_pauses_alone_and_is_cancelled_past_the_stall_timeout() {
    let _serial = SERIAL.lock().await;
    let (_dir, exec) = executor(Duration::from_millis(1500));
    let slow = exec.execute(job("job-slow", 2000)).await.unwrap();
    wait_snapshot(&exec, |s| s.jobs_active == 1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Paused: the engine thread waits (a command or a 5 ms timer), it does not spin.
    let cpu0 = engine_cpu();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let paused_cpu = engine_cpu().saturating_sub(cpu0);
    assert!(paused_cpu < Duration::from_millis(100), "{paused_cpu:?}");
    // Other jobs are not held up by the paused one.
    let t = Instant::now();
    let others = futures::future::join_all((0..3).map(|i| {
        let exec = exec.clone();
        async move { collect(exec.execute(job(&format!("job-{i}"), 200)).await.unwrap()).await }
    }))
    .await;
    for o in &others {
        assert!(matches!(terminal(o), TaskEvent::End(_)));
    }
    eprintln!("3 × 200 tokens beside a paused reader: {:.2?}", t.elapsed());
    // The snapshot is published after each step: it may trail the events by one.
    let snap = wait_snapshot(&exec, |s| s.jobs_active <= 1).await;
    assert_eq!(snap.jobs_active, 1, "the slow job waits for its reader");
    // Past the stall timeout it is cancelled and its slot and pages come back.
    let t = Instant::now();
    while exec.snapshot().jobs_active != 0 {
        assert!(t.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let s = exec.snapshot();
    assert_eq!((s.slots_free, s.pages_free), (s.slots_total, s.pages_total));
    let events = collect(slow).await;
    let tokens = events
        .iter()
        .filter(|e| matches!(e, TaskEvent::Token(_)))
        .count();
    assert!(tokens < STREAM_BUFFER, "{tokens}");
    match terminal(&events) {
        TaskEvent::Error(e) => assert_eq!(e.error_code, ErrorCode::Cancelled),
        other => panic!("{other:?}"),
    }
    // Idle: the engine thread blocks on its channel.
    let cpu0 = engine_cpu();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(engine_cpu().saturating_sub(cpu0) <= Duration::from_millis(20));
    let m = exec.metrics().encode();
    assert!(
        m.contains("worker_requests_total{outcome=\"cancelled\"} 1"),
        "{m}"
    );
    assert!(m.contains("worker_requests_total{outcome=\"ok\"} 3"), "{m}");
}

/// The seam: dropping a stream before its end cancels the job; cancel of an unknown
/// id is `NOT_FOUND`; health reports the slots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_stream_cancels_its_job() {
    let _serial = SERIAL.lock().await;
    let (_dir, exec) = executor(Duration::from_secs(30));
    let mut s = exec.execute(job("job-drop", 2000)).await.unwrap();
    assert!(matches!(s.next().await, Some(TaskEvent::Started(_))));
    assert!(matches!(s.next().await, Some(TaskEvent::Token(_))));
    wait_snapshot(&exec, |s| s.slots_free == 3).await;
    assert_eq!(exec.health().await.unwrap().slots_free, 3);
    drop(s);
    let t = Instant::now();
    while exec.snapshot().jobs_active != 0 {
        assert!(t.elapsed() < Duration::from_secs(2));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let h = exec.health().await.unwrap();
    assert_eq!((h.status.as_str(), h.slots_free), ("ok", 4));
    let e = exec
        .cancel(&JobId::new("job-unknown").unwrap())
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::NotFound);
    // A dropped job counts as cancelled once.
    let m = exec.metrics().encode();
    assert!(
        m.contains("worker_requests_total{outcome=\"cancelled\"} 1"),
        "{m}"
    );
}
