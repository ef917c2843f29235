#!/usr/bin/env bash
# Runs the GPU tests and benchmarks from a bundle of release binaries built on a
# development machine (the GPU machine has no Rust toolchain), writing logs to $OUT.
#   bundle: .device-bundle/bin/{cuda_tests,gpu_bench,llorch}, .device-bundle/fixtures/
#   model:  $LLORCH_MODEL_DIR/gemma-3-270m-q4_k_m.gguf (when present)
# Usage: scripts/gpu-tests.sh [test filter...]
set -uo pipefail
B=${BUNDLE:-.device-bundle}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export LLORCH_FIXTURE_DIR=$B/fixtures
export LLORCH_MODEL_DIR=${LLORCH_MODEL_DIR:-/tmp/models}
nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv | tee "$OUT/gpu.txt"
"$B/bin/cuda_tests" --ignored --test-threads 1 --nocapture "$@" 2>&1 | tee "$OUT/tests.log"
