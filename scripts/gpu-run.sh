#!/usr/bin/env bash
# One call on the GPU machine (it has no Rust toolchain): unpacks the bundle that
# scripts/gpu-bundle.sh packed (.device-bundle.tgz: binaries, fixture, kernels
# compiled for the card), keeps any model piece carried in .device-piece*/ under
# /tmp/models (joined and sha256-checked once they hold the whole file), then runs the
# steps named on the command line, logging to $OUT:
#   tests        the GPU tests (TESTS: a filter)
#   qmm          single products per kernel path (QMM: extra flags)
#   tc-probe     the bandwidth ceiling: a streaming read of each 8B F16 matrix's bytes
#   topk         the top-k kernel alone (graph replays), 1 and 64 rows
#   synth-gemma  gpu_bench on a synthetic gemma-3-270m shape (Q5_0)
#   synth-8b     gpu_bench on a synthetic Llama-3-8B shape (Q4_K_M)
#   synth-8b-f16 the same in F16 (batch 1 and prefill)
#   ncu-gemma    per-kernel times (ncu) of batch-1 decode on the synthetic gemma shape
#   ncu-8b, ncu-f16, ncu-8b64  the same on the 8B shapes (Q4_K_M batch 1, F16 batch 1, Q4_K_M 64 sequences)
#   ncu-topk     every ncu section of one top-k launch
#   llama        llama.cpp's llama-bench and llama-batched-bench on the models present
#   real         gpu_bench and llorch generate on the demo model
#   worker       worker-orcd on the demo model: SSE, health, metrics, drain
#   prev-<step>  <step> with the binaries of .device-bundle-prev.tgz (A/B; logs in $OUT/prev)
#   <name>:<step> a bench step with .device-bundle-<name>.tgz (VARIANT=<name> gpu-bundle.sh)
# (BENCH: extra gpu_bench flags for the synth and real steps, e.g. --no-overlap)
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" /tmp/models /tmp/kernels
if [ -f .device-bundle.tgz ]; then rm -rf .device-bundle && tar xzf .device-bundle.tgz; fi
cp -n .device-bundle/kernels/* /tmp/kernels/ 2>/dev/null
cp .device-piece*/* /tmp/models/ 2>/dev/null
M=/tmp/models/gemma-3-270m-q4_k_m.gguf M_BYTES=253113024
# Joined once the pieces hold the whole file (however many there are), then checked.
have=0
for f in /tmp/models/gemma.part.*; do [ -f "$f" ] && have=$((have + $(stat -c %s "$f"))); done
if [ ! -f $M ] && [ $have = $M_BYTES ]; then
    cat /tmp/models/gemma.part.* > $M && rm -f /tmp/models/gemma.part.*
    echo "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818  $M" | sha256sum -c || rm -f $M
fi
export LLORCH_MODEL_DIR=/tmp/models LLORCH_FIXTURE_DIR=.device-bundle/fixtures
B=.device-bundle/bin
nvidia-smi --query-gpu=name,memory.total,memory.used,clocks.sm,clocks.max.sm,driver_version --format=csv | tee -a "$OUT/gpu.txt"
bench() { $B/gpu_bench --device cuda:0 --prefill 512 --seqs 64 ${BENCH:-} "$@"; }
# A/B runs: another bundle carried as .device-bundle-<name>.tgz (an earlier full build
# as `prev`, or scripts/gpu-bundle.sh's VARIANT=<name>: gpu_bench and the kernels) runs
# a step as <name>:<step> (prev-<step> too), its logs in $OUT/<name>; it is unpacked
# by its first step.
unpacked=" "
variant() {
    case $unpacked in *" $1 "*) return ;; esac
    [ -f ".device-bundle-$1.tgz" ] || return  # unpacked by an earlier call, or absent
    rm -rf "/tmp/$1" && mkdir -p "/tmp/$1" && tar xzf ".device-bundle-$1.tgz" -C "/tmp/$1"
    cp -n "/tmp/$1"/.device-bundle/kernels/* /tmp/kernels/ 2>/dev/null
    unpacked="$unpacked$1 "
}
B_NEW=$B OUT_NEW=$OUT
for step in "$@"; do
    echo "=== $step ($SECONDS s)"
    B=$B_NEW OUT=$OUT_NEW
    case $step in prev-*) step="prev:${step#prev-}" ;; esac  # prev-<step> = prev:<step>
    case $step in *:*)
        v=${step%%:*} step=${step#*:}; variant "$v"; B=/tmp/$v/.device-bundle/bin OUT=$OUT_NEW/$v; mkdir -p "$OUT" ;;
    esac
    case $step in
        tests)
            for t in cuda_tests cuda_products_tests cuda_attention_tests; do
                $B/$t --ignored --test-threads 1 --nocapture ${TESTS:-} 2>&1 | tee -a "$OUT/tests.log"
            done ;;
        qmm) $B/qmm_bench ${QMM:-} 2>&1 | tee "$OUT/qmm.txt" ;;
        tc-probe) $B/tc_probe 2>&1 | tee "$OUT/tc-probe.txt" ;;
        topk) $B/tc_probe --topk 2>&1 | tee "$OUT/topk.txt" ;;
        synth-gemma) bench --synth gemma3-270m-q5 --steps 128 2>&1 | tee "$OUT/synth-gemma.txt" ;;
        synth-8b) bench --synth llama3-8b-q4km --steps 64 2>&1 | tee "$OUT/synth-8b.txt" ;;
        synth-8b-f16) bench --synth llama3-8b-f16 --seqs 1 --steps 64 2>&1 | tee "$OUT/synth-8b-f16.txt" ;;
        ncu-gemma)
            # Per-kernel device times of batch-1 decode steps (synthetic gemma shape).
            ncu --clock-control none --metrics gpu__time_duration.sum --launch-skip ${NCU_SKIP:-3000} \
                --launch-count ${NCU_COUNT:-500} --print-summary per-kernel \
                $B/gpu_bench --synth gemma3-270m-q5 --device cuda:0 --prefill 16 --seqs 1 --steps 32 \
                > "$OUT/ncu-gemma.txt" 2>&1; tail -60 "$OUT/ncu-gemma.txt" ;;
        llama)
            # llama.cpp (built by scripts/llama-cpp-cuda/build.sh) on
            # the models present: prompt 512 and batch-1 decode (llama-bench), and the
            # aggregate decode of 64 sequences (llama-batched-bench).
            L=/tmp/llama; mkdir -p $L
            [ -x $L/bin/llama-bench ] || tar xJf .device-llama/llama-cuda.tar.xz -C $L
            for m in /tmp/models/*.gguf; do
                echo "--- $m"
                $L/bin/llama-bench -m "$m" -ngl 99 -fa 1 -p 512 -n 128 -r 3 2>&1 | grep -E "^\|" | tee -a "$OUT/llama-bench.txt"
                case $m in *f16*) continue ;; esac
                $L/bin/llama-batched-bench -m "$m" -ngl 99 -fa 1 -c 20480 -b 2048 -ub 512 -npp 16 -ntg 128 -npl 1,64 2>&1 \
                    | grep -E "^\|" | tee -a "$OUT/llama-batched.txt"
            done ;;
        ncu-8b)
            # The same for the synthetic Llama-3-8B Q4_K_M shape.
            ncu --clock-control none --metrics gpu__time_duration.sum --launch-skip ${NCU_SKIP8:-5000} \
                --launch-count ${NCU_COUNT8:-400} --print-summary per-kernel \
                $B/gpu_bench --synth llama3-8b-q4km --device cuda:0 --prefill 16 --seqs 1 --steps 32 \
                > "$OUT/ncu-8b.txt" 2>&1; tail -5 "$OUT/ncu-8b.txt" ;;
        ncu-f16)
            # Per-kernel device times and DRAM bytes of batch-1 decode, synthetic 8B F16 shape.
            ncu --clock-control none --metrics gpu__time_duration.sum,dram__bytes_read.sum \
                --launch-skip ${NCU_SKIPF:-5000} --launch-count ${NCU_COUNTF:-400} --print-summary per-kernel \
                $B/gpu_bench --synth llama3-8b-f16 --device cuda:0 --prefill 16 --seqs 1 --steps 32 \
                > "$OUT/ncu-f16.txt" 2>&1; tail -5 "$OUT/ncu-f16.txt" ;;
        ncu-topk)
            # Every section of one top-k launch (batch-1 decode, synthetic 8B Q4_K_M shape).
            ncu --clock-control none --kernel-name row_topk --launch-skip 20 --launch-count 1 --set full \
                $B/gpu_bench --synth llama3-8b-q4km --device cuda:0 --prefill 16 --seqs 1 --steps 32 \
                > "$OUT/ncu-topk.txt" 2>&1; grep -E "Duration|Registers|Local|Stall|Warp Cycles|Achieved|Theoretical Occ" "$OUT/ncu-topk.txt" | head -30 ;;
        ncu-8b64)
            # The same for 64-sequence decode steps of the 8B Q4_K_M shape (the last launches
            # of an 8-step run; grid sizes tell the steps apart).
            ncu --clock-control none --metrics gpu__time_duration.sum,dram__bytes_read.sum \
                --launch-skip ${NCU_SKIP64:-6500} --launch-count ${NCU_COUNT64:-700} --print-summary per-kernel \
                $B/gpu_bench --synth llama3-8b-q4km --device cuda:0 --prefill 16 --seqs 64 --steps 8 \
                > "$OUT/ncu-8b64.txt" 2>&1; tail -5 "$OUT/ncu-8b64.txt" ;;
        real)
            [ -x $B/llorch ] && $B/llorch generate --model $M --device cuda:0 --prompt "The capital of France is" \
                --max-tokens 24 --temperature 0 2>&1 | tee "$OUT/generate.txt"
            bench --model $M --steps 128 2>&1 | tee "$OUT/bench-real.txt" ;;
        worker)
            $B/worker-orcd --worker-id w-gpu --device cuda:0 --port 9377 --max-seqs 8 --ctx 1024 \
                --model $M > "$OUT/worker.log" 2>&1 &
            for _ in $(seq 150); do curl -sf localhost:9377/ready >/dev/null && break; sleep 0.2; done
            curl -sN localhost:9377/execute -d '{"job_id":"job-gpu-1","prompt":"Why is the sky blue?","max_tokens":24,"temperature":0}' | tee "$OUT/worker-sse.txt" | tail -3
            curl -s localhost:9377/health | tee "$OUT/worker-health.json"; echo
            curl -s localhost:9377/metrics | grep -E "^worker_(requests_total|tokens_out_total|vram_bytes)"
            curl -s -XPOST localhost:9377/shutdown; wait
            echo "worker-orcd exit: $?" ;;
        *) echo "unknown step $step" ;;
    esac
done
echo "=== done ($SECONDS s)"
