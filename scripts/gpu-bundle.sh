#!/usr/bin/env bash
# Builds the release binaries the GPU machine runs (it has no Rust toolchain) and puts
# them, stripped, with the fixture into .device-bundle/ (git-ignored; carried by the
# device tool), packed as .device-bundle.tgz. scripts/gpu-run.sh runs them there.
# VARIANT=<name>: only gpu_bench and the kernels (NVRTC130 needed), packed as
# .device-bundle-<name>.tgz for gpu-run.sh's <name>:<step> A/B runs.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${VARIANT:-}" ]; then
    : "${NVRTC130:?VARIANT bundles need NVRTC130 (the kernels are compiled here)}"
    ROOT=$(mktemp -d) TGZ=.device-bundle-$VARIANT.tgz BINS="gpu_bench"
    cargo build --release -p llorch-benches --bin gpu_bench --bin qmm_bench
else
    ROOT=. TGZ=.device-bundle.tgz BINS="gpu_bench qmm_bench tc_probe llorch worker-orcd"
    cargo build --release -p llorch-benches --bin gpu_bench --bin qmm_bench --bin tc_probe -p llorch-daemons --bin llorch --bin worker-orcd
fi
D=$ROOT/.device-bundle
mkdir -p "$D/bin"
for b in $BINS; do cp "target/release/$b" "$D/bin/"; done
if [ -z "${VARIANT:-}" ]; then
    T=$(cargo test --release --no-run -p llorch-worker --test cuda 2>&1 | sed -n 's/.*Executable tests\/cuda.rs (\(.*\))/\1/p')
    TP=$(cargo test --release --no-run -p llorch-worker --test cuda_products 2>&1 | sed -n 's/.*Executable tests\/cuda_products.rs (\(.*\))/\1/p')
    TA=$(cargo test --release --no-run -p llorch-worker --test cuda_attention 2>&1 | sed -n 's/.*Executable tests\/cuda_attention.rs (\(.*\))/\1/p')
    cp "$T" "$D/bin/cuda_tests"
    cp "$TP" "$D/bin/cuda_products_tests"
    cp "$TA" "$D/bin/cuda_attention_tests"
    mkdir -p "$D/fixtures"
    cp ../shared/fixtures/gemma3-270m/reference_generation.json "$D/fixtures/"
fi
strip "$D"/bin/*
# The kernels compiled here for the card (sm_90a) with NVRTC 13.0, the card's driver's
# PTX version, so a fresh machine skips the compile: copy kernels/ to the kernel cache.
if [ -n "${NVRTC130:-}" ]; then
    rm -rf "$D/kernels"
    LD_LIBRARY_PATH=$NVRTC130 target/release/qmm_bench --precompile sm_90a "$D/kernels"
fi
du -sh "$D"
# One compressed file to carry (scripts/gpu-run.sh unpacks it on the card).
tar czf "$TGZ" -C "$ROOT" .device-bundle
[ "$ROOT" = . ] || rm -rf "$ROOT"
ls -la "$TGZ"
