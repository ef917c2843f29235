#!/usr/bin/env bash
# Installs NVIDIA's run-time compiler (libnvrtc, from PyPI's nvidia-cuda-nvrtc wheel)
# under .cache/nvrtc and prints the library folder, so CI can compile the CUDA
# kernels without a GPU (llorch-cuda/tests/compile.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=.cache/nvrtc
LIB=$DIR/nvidia/cu13/lib
if [ ! -e "$LIB/libnvrtc.so.13" ]; then
    mkdir -p "$DIR"
    python3 -m pip install -q --no-deps --target "$DIR" "nvidia-cuda-nvrtc>=13,<14" >&2
fi
[ -e "$LIB/libnvrtc.so.13" ] || { echo "libnvrtc.so.13 missing after install" >&2; exit 1; }
echo "$PWD/$LIB"
