#!/usr/bin/env bash
# Builds the release binaries the GPU machine runs (it has no Rust toolchain) and puts
# them, stripped, with the fixture into .device-bundle/ (git-ignored; carried by the
# device tool). See scripts/gpu-tests.sh and scripts/gpu-final.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p llorch-benches --bin gpu_bench -p llorch-daemons --bin llorch --bin worker-orcd
T=$(cargo test --release --no-run -p llorch-worker --test cuda 2>&1 | sed -n 's/.*Executable tests\/cuda.rs (\(.*\))/\1/p')
mkdir -p .device-bundle/bin .device-bundle/fixtures
cp target/release/gpu_bench target/release/llorch target/release/worker-orcd .device-bundle/bin/
cp "$T" .device-bundle/bin/cuda_tests
strip .device-bundle/bin/*
cp ../shared/fixtures/gemma3-270m/reference_generation.json .device-bundle/fixtures/
du -sh .device-bundle
