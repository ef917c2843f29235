#!/usr/bin/env python3
"""Generate bit-exact dequantization test vectors for llorch-worker.

Re-run (from the repository root):

    pip install gguf numpy          # gguf = llama.cpp's Python package (gguf.quants)
    python3 scripts/gen_quant_vectors.py            # writes llorch-worker/tests/data/quant_vectors.json
    python3 scripts/gen_quant_vectors.py -o OUT.json

Output: {"generator": ..., "seed": ..., "cases": [...]}; each case holds 2 blocks of raw
GGUF on-disk block bytes (`raw_hex`) and the dequantized values as f32 bit patterns
(`dequant_f32_bits`, u32), so a Rust dequantizer can be compared bit-for-bit.

Per type the raw blocks come from:
  * "quantize":   gguf.quants.quantize() of seeded random f32 data (types it can quantize), or
  * "random_raw": seeded random block bytes with finite, moderate scale fields
                  (types gguf.quants cannot quantize, e.g. the K-quants).
Values come from gguf.quants.dequantize(), except Q8_K which gguf.quants cannot dequantize;
for it the script applies ggml's dequantize_row_q8_K (y = d * qs, f32) itself ("dequant_by").
The output is deterministic for a given gguf/numpy version.
"""
from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import os
import sys

import numpy as np
import gguf
import gguf.quants as gq
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType as T

SEED = 20250601
N_BLOCKS = 2
N_SCALAR = 64  # elements for F32/F16/BF16 (block size 1)

# (name, ggml type id, block elems, block bytes) as in ggml.h / ggml-common.h
EXPECTED = [
    ("F32", 0, 1, 4),
    ("F16", 1, 1, 2),
    ("BF16", 30, 1, 2),
    ("Q8_0", 8, 32, 34),
    ("Q4_0", 2, 32, 18),
    ("Q4_1", 3, 32, 20),
    ("Q5_0", 6, 32, 22),
    ("Q5_1", 7, 32, 24),
    ("Q4_K", 12, 256, 144),
    ("Q5_K", 13, 256, 176),
    ("Q6_K", 14, 256, 210),
    ("Q8_K", 15, 256, 292),
]
# Other ids, only checked against gguf.GGMLQuantizationType.
EXTRA_IDS = {"Q8_1": 9, "Q2_K": 10, "Q3_K": 11}


def check_constants() -> None:
    for name, tid, be, bb in EXPECTED:
        assert int(T[name]) == tid, (name, int(T[name]), tid)
        assert tuple(GGML_QUANT_SIZES[T[name]]) == (be, bb), (name, GGML_QUANT_SIZES[T[name]], be, bb)
    for name, tid in EXTRA_IDS.items():
        assert int(T[name]) == tid, (name, int(T[name]), tid)


def f16_bytes(x: np.ndarray) -> np.ndarray:
    h = np.asarray(x, dtype=np.float16)
    assert np.all(np.isfinite(h)), "f16 scale must be finite"
    return h.reshape(-1, 1).view(np.uint8).reshape(-1, 2)


def random_f16_scale(rng: np.random.Generator, n: int, lo: float, hi: float, signed: bool = False) -> np.ndarray:
    """Moderate, finite, normal (non-subnormal) f16 scales, log-uniform in [lo, hi]."""
    v = np.exp(rng.uniform(np.log(lo), np.log(hi), size=n)).astype(np.float16)
    if signed:
        v = v * np.where(rng.random(n) < 0.5, -1, 1).astype(np.float16)
    assert np.all(np.isfinite(v)) and np.all(np.abs(v) >= np.float16(6.104e-05))
    return v


def scalar_input(rng: np.random.Generator) -> np.ndarray:
    """Random values plus edge cases (signed zero, inf, f16/bf16 subnormals, large). No NaN."""
    x = (rng.standard_normal(N_SCALAR) * np.exp(rng.uniform(-6, 6, N_SCALAR))).astype(np.float32)
    edges = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, 65504.0, -65504.0,
                      6.0e-8, -3.0e-7, 6.1e-5, 1.0e-40, 3.0e38, 1.0 / 3.0, 0.1, -2.5],
                     dtype=np.float32)
    x[: len(edges)] = edges
    return x


def random_raw(name: str, rng: np.random.Generator) -> np.ndarray:
    """Random block bytes (N_BLOCKS, block_bytes) with valid-looking scale fields."""
    bb = GGML_QUANT_SIZES[T[name]][1]
    raw = rng.integers(0, 256, size=(N_BLOCKS, bb), dtype=np.uint8)
    if name in ("Q4_K", "Q5_K"):
        # block_q4_K / block_q5_K: d f16 @0, dmin f16 @2, scales[12] @4, ...
        raw[:, 0:2] = f16_bytes(random_f16_scale(rng, N_BLOCKS, 1e-4, 5e-2))
        raw[:, 2:4] = f16_bytes(random_f16_scale(rng, N_BLOCKS, 1e-4, 5e-2))
    elif name == "Q6_K":
        # block_q6_K: ql[128] @0, qh[64] @128, scales[16] i8 @192, d f16 @208
        raw[:, 208:210] = f16_bytes(random_f16_scale(rng, N_BLOCKS, 1e-4, 5e-2, signed=True))
    elif name == "Q8_K":
        # block_q8_K: d f32 @0, qs[256] i8 @4, bsums[16] i16 @260 (bsums = sums of 16 qs)
        d = (np.exp(rng.uniform(np.log(1e-4), np.log(5e-2), size=N_BLOCKS))).astype(np.float32)
        qs = rng.integers(-127, 128, size=(N_BLOCKS, 256)).astype(np.int8)
        bsums = qs.astype(np.int16).reshape(N_BLOCKS, 16, 16).sum(axis=-1).astype("<i2")
        raw[:, 0:4] = d.astype("<f4").reshape(-1, 1).view(np.uint8)
        raw[:, 4:260] = qs.view(np.uint8)
        raw[:, 260:292] = bsums.view(np.uint8)
    else:
        raise ValueError(f"no random_raw recipe for {name}")
    return raw


def dequant_q8_k(raw: np.ndarray) -> np.ndarray:
    """ggml dequantize_row_q8_K: y[j] = x.d * x.qs[j] (f32 multiply)."""
    d = raw[:, 0:4].copy().view("<f4").astype(np.float32)  # (n, 1)
    qs = raw[:, 4:260].view(np.int8).astype(np.float32)
    return (d * qs).astype(np.float32).reshape(-1)


def make_case(name: str, tid: int, be: int, bb: int, rng: np.random.Generator) -> dict:
    qtype = T[name]
    n = N_SCALAR if be == 1 else N_BLOCKS * be
    if be == 1:
        x = scalar_input(rng)
    else:
        # one small-scale and one large-scale block, gaussian with an outlier each
        x = rng.standard_normal(n).astype(np.float32).reshape(N_BLOCKS, be)
        x[0] *= np.float32(0.02)
        x[1] *= np.float32(3.0)
        x[:, 7] *= np.float32(4.0)
        x = x.reshape(1, n)
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            raw = np.asarray(gq.quantize(x.reshape(1, n), qtype))
        source = "quantize"
    except NotImplementedError:
        raw = random_raw(name, rng)
        source = "random_raw"
    raw = np.ascontiguousarray(raw).view(np.uint8).reshape(-1)
    assert raw.size == n // be * bb, (name, raw.size)

    try:
        y = np.asarray(gq.dequantize(raw.reshape(1, -1), qtype), dtype=np.float32).reshape(-1)
        dequant_by = "gguf.quants.dequantize"
    except NotImplementedError:
        if name != "Q8_K":
            raise
        y = dequant_q8_k(raw.reshape(N_BLOCKS, bb))
        dequant_by = "script (ggml dequantize_row_q8_K: d_f32 * qs_i8)"
    assert y.dtype == np.float32 and y.size == n, (name, y.dtype, y.size)
    assert not np.any(np.isnan(y)), name
    if be > 1:
        assert np.all(np.isfinite(y)), name

    return {
        "type": name,
        "ggml_type_id": tid,
        "block_elems": be,
        "block_bytes": bb,
        "n_blocks": n // be,
        "n_elems": n,
        "source": source,
        "dequant_by": dequant_by,
        "raw_hex": raw.tobytes().hex(),
        "dequant_f32_bits": [int(v) for v in y.view(np.uint32)],
    }


def dump(doc: dict) -> str:
    """JSON with one field per line and arrays inline (small, diff-friendly)."""
    out = ["{"]
    for k in ("generator", "seed", "note"):
        out.append(f"  {json.dumps(k)}: {json.dumps(doc[k])},")
    out.append('  "cases": [')
    for i, c in enumerate(doc["cases"]):
        fields = [f"    {json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}" for k, v in c.items()]
        out.append("   {\n" + ",\n".join(fields) + "\n   }" + ("," if i + 1 < len(doc["cases"]) else ""))
    out.append("  ]")
    out.append("}")
    return "\n".join(out) + "\n"


def main() -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    default_out = os.path.join(here, "..", "llorch-worker", "tests", "data", "quant_vectors.json")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", default=default_out)
    args = ap.parse_args()

    check_constants()
    rng = np.random.default_rng(SEED)
    cases = [make_case(name, tid, be, bb, rng) for name, tid, be, bb in EXPECTED]
    doc = {
        "generator": f"scripts/gen_quant_vectors.py; gguf {md.version('gguf')} (gguf.quants), numpy {np.__version__}",
        "seed": SEED,
        "note": "raw_hex = GGUF on-disk block bytes (little-endian); dequant_f32_bits = f32 bit patterns as u32",
        "cases": cases,
    }
    text = dump(doc)
    json.loads(text)  # sanity
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as f:
        f.write(text)
    for c in cases:
        print(f"{c['type']:5s} id={c['ggml_type_id']:2d} {c['n_blocks']:2d}x{c['block_bytes']:3d}B "
              f"{c['n_elems']:3d} vals  {c['source']:10s} {c['dequant_by']}", file=sys.stderr)
    print(f"wrote {os.path.normpath(args.output)} ({len(text)} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
