//! Pool management for llama-orch (SPEC POOL-2xxx).
//!
//! GPU inventory, the worker registry, worker lifecycle (spawn, ready callback,
//! drain, stop, crash detection), the model cache and health checks; it reports
//! facts and executes commands, and makes no policy decisions. It implements
//! `llorch_core::PoolControl` in process and behind `pool-managerd`.
