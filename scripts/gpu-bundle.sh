#!/usr/bin/env bash
# Builds the release binaries the GPU machine runs (it has no Rust toolchain) and puts
# them, stripped, with the fixture into .device-bundle/ (git-ignored; carried by the
# device tool). scripts/gpu-run.sh runs them there.
set -euo pipefail
cd "$(dirname "$0")/.."
# VARIANT=<name>: only gpu_bench and the kernels (NVRTC130 needed), packed as
# .device-bundle-<name>.tgz for gpu-run.sh's <name>:<step> A/B runs.
if [ -n "${VARIANT:-}" ]; then
    : "${NVRTC130:?VARIANT bundles need NVRTC130 (the kernels are compiled here)}"
    cargo build --release -p llorch-benches --bin gpu_bench --bin qmm_bench
    V=$(mktemp -d)
    mkdir -p "$V/.device-bundle/bin"
    cp target/release/gpu_bench "$V/.device-bundle/bin/"
    strip "$V/.device-bundle/bin/gpu_bench"
    LD_LIBRARY_PATH=$NVRTC130 target/release/qmm_bench --precompile sm_90a "$V/.device-bundle/kernels"
    tar czf ".device-bundle-$VARIANT.tgz" -C "$V" .device-bundle
    rm -rf "$V"
    ls -la ".device-bundle-$VARIANT.tgz"
    exit 0
fi
cargo build --release -p llorch-benches --bin gpu_bench --bin qmm_bench --bin tc_probe -p llorch-daemons --bin llorch --bin worker-orcd
T=$(cargo test --release --no-run -p llorch-worker --test cuda 2>&1 | sed -n 's/.*Executable tests\/cuda.rs (\(.*\))/\1/p')
TP=$(cargo test --release --no-run -p llorch-worker --test cuda_products 2>&1 | sed -n 's/.*Executable tests\/cuda_products.rs (\(.*\))/\1/p')
mkdir -p .device-bundle/bin .device-bundle/fixtures
cp target/release/gpu_bench target/release/qmm_bench target/release/tc_probe target/release/llorch target/release/worker-orcd .device-bundle/bin/
cp "$T" .device-bundle/bin/cuda_tests
cp "$TP" .device-bundle/bin/cuda_products_tests
strip .device-bundle/bin/*
cp ../shared/fixtures/gemma3-270m/reference_generation.json .device-bundle/fixtures/
# The kernels compiled here for the card (sm_90a) with NVRTC 13.0, the card's driver's
# PTX version, so a fresh machine skips the compile: copy kernels/ to the kernel cache.
if [ -n "${NVRTC130:-}" ]; then
    rm -rf .device-bundle/kernels
    LD_LIBRARY_PATH=$NVRTC130 target/release/qmm_bench --precompile sm_90a .device-bundle/kernels
fi
du -sh .device-bundle
# One compressed file to carry (scripts/gpu-run.sh unpacks it on the card).
tar czf .device-bundle.tgz .device-bundle
ls -la .device-bundle.tgz
