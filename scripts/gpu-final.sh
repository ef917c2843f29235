#!/usr/bin/env bash
# The last run of a model transfer: joins the pieces in /tmp/models, checks the demo
# model's sha256, then runs every GPU test and the benchmarks (logs under $OUT).
set -uo pipefail
M=/tmp/models
cp .device-bundle/piece/* $M/ 2>/dev/null
cat $M/gemma.part.* > $M/gemma-3-270m-q4_k_m.gguf && rm -f $M/gemma.part.*
echo "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818  $M/gemma-3-270m-q4_k_m.gguf" | sha256sum -c || exit 1
export LLORCH_MODEL_DIR=$M
B=.device-bundle/bin
bash scripts/gpu-tests.sh "$@"
$B/llorch generate --model $M/gemma-3-270m-q4_k_m.gguf --device cuda:0 --prompt "The capital of France is" --max-tokens 24 --temperature 0 2>&1 | tee $OUT/generate.txt
$B/gpu_bench --model $M/gemma-3-270m-q4_k_m.gguf --device cuda:0 --prefill 512 --seqs 64 --steps 128 2>&1 | tee $OUT/bench.txt
# The f32-lane products too (SIMT=1).
[ "${SIMT:-0}" = 1 ] && $B/gpu_bench --model $M/gemma-3-270m-q4_k_m.gguf --device cuda:0 --prefill 512 --seqs 64 --steps 128 --simt 2>&1 | tee $OUT/bench-simt.txt
# The synthetic Llama-3-8B Q4_K_M shape (8B=1).
[ "${B8:-0}" = 1 ] && $B/gpu_bench --synth llama3-8b-q4km --device cuda:0 --prefill 512 --seqs 64 --steps 64 2>&1 | tee $OUT/bench-8b.txt
# worker-orcd on the GPU: start, stream one job over SSE, read health and metrics, shut down.
if [ -x $B/worker-orcd ]; then
    $B/worker-orcd --worker-id w-gpu --device cuda:0 --port 9377 --max-seqs 8 --ctx 1024 \
        --model $M/gemma-3-270m-q4_k_m.gguf > $OUT/worker.log 2>&1 &
    for _ in $(seq 100); do curl -sf localhost:9377/ready >/dev/null && break; sleep 0.2; done
    curl -sN localhost:9377/execute -d '{"job_id":"job-gpu-1","prompt":"Why is the sky blue?","max_tokens":24,"temperature":0}' | tee $OUT/worker-sse.txt | tail -3
    curl -s localhost:9377/health | tee $OUT/worker-health.json; echo
    curl -s localhost:9377/metrics | grep -E "^worker_(requests_total|tokens_out_total|vram_bytes)" 
    curl -s -XPOST localhost:9377/shutdown; wait
    echo "worker-orcd exit: $?"
fi
