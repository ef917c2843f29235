#!/usr/bin/env python3
"""Generate quantizer test vectors (f32 input -> GGUF block bytes) for llorch-worker.

Re-run (from the repository root):

    pip install gguf numpy
    python3 scripts/gen_quantize_vectors.py      # writes llorch-worker/tests/data/quantize_vectors.json

For F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1: seeded f32 input (4 blocks of 32: small-scale, large-scale,
all-zero, and one with ties/edge values) as bit patterns, and gguf.quants.quantize() output as hex.
gguf.quants reproduces llama.cpp's reference quantizers bit-exactly, so the Rust quantizers must too.
"""
import importlib.metadata as md
import json
import os

import numpy as np
import gguf.quants as gq
from gguf import GGMLQuantizationType as T

SEED = 20250602
TYPES = ["F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"]


def main() -> None:
    rng = np.random.default_rng(SEED)
    here = os.path.dirname(os.path.abspath(__file__))
    out = os.path.join(here, "..", "llorch-worker", "tests", "data", "quantize_vectors.json")
    cases = []
    for name in TYPES:
        x = rng.standard_normal(128).astype(np.float32)
        x[0:32] *= np.float32(0.01)
        x[32:64] *= np.float32(50.0)
        x[64:96] = 0.0
        x[96:128] = np.array([0.5, -0.5, 1.5, -1.5, 2.5, 1e-3, -7.0, 7.0] * 4, dtype=np.float32)
        x[100] = np.float32(65504.0) if name == "BF16" else np.float32(3.0)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            raw = np.asarray(gq.quantize(x.reshape(1, -1), T[name])).view(np.uint8).reshape(-1)
        cases.append({"type": name, "input_f32_bits": [int(v) for v in x.view(np.uint32)],
                      "raw_hex": raw.tobytes().hex()})
    doc = {"generator": f"scripts/gen_quantize_vectors.py; gguf {md.version('gguf')}, numpy {np.__version__}",
           "seed": SEED, "cases": cases}
    with open(out, "w") as f:
        f.write("{\n" + f'  "generator": {json.dumps(doc["generator"])},\n  "seed": {SEED},\n  "cases": [\n')
        f.write(",\n".join("    " + json.dumps(c, separators=(",", ":")) for c in cases))
        f.write("\n  ]\n}\n")
    print(f"wrote {os.path.normpath(out)}")


if __name__ == "__main__":
    main()
