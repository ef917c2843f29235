//! Pool manager state and worker lifecycle messages (POOL-2012, POOL-2022, ORCH-1110).

use serde::{Deserialize, Serialize};

use crate::ids::{Device, GpuId, NodeId, WorkerId};
use crate::model_ref::ModelRef;

/// Lifecycle state of a worker (POOL-2020).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerStatus {
    /// Spawned, loading the model; not yet called back.
    Starting,
    /// Loaded, accepting jobs.
    Ready,
    /// Loaded, all slots taken.
    Busy,
    /// Finishing active jobs, taking no new ones.
    Draining,
    /// Crashed, unhealthy or failed to start.
    Failed,
}

/// One GPU of a host (POOL-2011).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuState {
    /// Ordinal on the host.
    pub id: GpuId,
    /// Device name, e.g. `NVIDIA H100 80GB HBM3`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Total memory, bytes.
    pub total_vram: u64,
    /// Memory accounted to workers, bytes.
    pub allocated_vram: u64,
    /// Memory free for new workers, bytes.
    pub available_vram: u64,
    /// Workers on this GPU.
    pub workers: Vec<WorkerId>,
}

/// One worker as the pool manager reports it (POOL-2012).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerInfo {
    /// The worker.
    pub id: WorkerId,
    /// The model it holds (canonical `hf:`/`file:` reference).
    pub model: ModelRef,
    /// The device it computes on.
    pub gpu: Device,
    /// Device memory it holds, bytes (weights + KV reservation + activations).
    pub vram_used: u64,
    /// Base URL of its HTTP API.
    pub uri: String,
    /// Lifecycle state.
    pub status: WorkerStatus,
    /// Start time, milliseconds since the Unix epoch.
    pub started_at: u64,
    /// Concurrent sequences it can run (EXT: continuous batching).
    #[serde(default)]
    pub slots_total: u32,
    /// Slots free at the last health check.
    #[serde(default)]
    pub slots_free: u32,
}

/// `GET /v2/state` of a pool manager (POOL-2012).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolState {
    /// The host.
    pub node_id: NodeId,
    /// Its GPUs.
    pub gpus: Vec<GpuState>,
    /// Its workers.
    pub workers: Vec<WorkerInfo>,
}

/// `POST /v2/workers/start` (POOL-2040).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartWorkerRequest {
    /// Model to load: `hf:` or `file:` only (aliases are resolved by the orchestrator).
    pub model: ModelRef,
    /// Device to put it on.
    pub device: Device,
    /// Id to give the worker; minted by the pool manager when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_id: Option<WorkerId>,
    /// Concurrent sequences, or the worker's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_seqs: Option<u32>,
    /// Context length, or the model's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctx: Option<u32>,
}

/// Answer to a start: the worker, now `starting` (or `ready` when the start waited).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartWorkerResponse {
    /// The worker.
    pub worker_id: WorkerId,
    /// Its state.
    pub status: WorkerStatus,
}

/// `POST /v2/workers/stop` (POOL-2041).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopWorkerRequest {
    /// The worker.
    pub worker_id: WorkerId,
    /// Grace period before SIGKILL, milliseconds (default 30 000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period_ms: Option<u64>,
}

/// `POST /v2/internal/workers/ready`: a worker's callback once loaded (POOL-2022).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadyCallback {
    /// The worker.
    pub worker_id: WorkerId,
    /// The model it loaded.
    pub model_ref: String,
    /// Device memory it holds, bytes.
    pub vram_bytes: u64,
    /// Base URL of its HTTP API.
    pub uri: String,
    /// Concurrent sequences it can run.
    #[serde(default)]
    pub slots_total: u32,
}

/// A worker's `GET /health` (WORK-3041).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerHealth {
    /// `ok`, `draining` or `unhealthy`.
    pub status: String,
    /// The model it holds.
    pub model: String,
    /// Device memory it holds, bytes.
    pub vram_bytes: u64,
    /// Seconds since start.
    pub uptime_seconds: u64,
    /// Concurrent sequences it can run.
    pub slots_total: u32,
    /// Slots free now.
    pub slots_free: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_state_matches_spec_shape() {
        let v = serde_json::json!({
            "node_id": "host-a",
            "gpus": [{"id": 0, "total_vram": 80, "allocated_vram": 30, "available_vram": 50,
                      "workers": ["w1"]}],
            "workers": [{"id": "w1", "model": "file:/m/x.gguf", "gpu": "cuda:0", "vram_used": 30,
                         "uri": "http://127.0.0.1:9300", "status": "ready", "started_at": 1}]
        });
        let s: PoolState = serde_json::from_value(v).unwrap();
        assert_eq!(s.gpus[0].id, GpuId(0));
        assert_eq!(s.workers[0].status, WorkerStatus::Ready);
        assert_eq!(s.workers[0].gpu, Device::Cuda(GpuId(0)));
        let again: PoolState = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(again, s);
    }

    #[test]
    fn start_request_rejects_bad_refs_and_unknown_fields() {
        let ok = r#"{"model":"hf:a/b::file=c.gguf","device":"cuda:1"}"#;
        assert!(serde_json::from_str::<StartWorkerRequest>(ok).is_ok());
        for bad in [
            r#"{"model":"hf:a/../b","device":"cuda:1"}"#,
            r#"{"model":"file:/x.gguf","device":"tpu:0"}"#,
            r#"{"model":"file:/x.gguf","device":"cpu","extra":1}"#,
        ] {
            assert!(
                serde_json::from_str::<StartWorkerRequest>(bad).is_err(),
                "{bad}"
            );
        }
    }
}
