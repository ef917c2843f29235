// Tensor-core product: Y[t][j] = sum_k W[j][k] * X[t][k], W dequantized from its GGUF
// blocks to half precision, X rounded to half precision, f32 sums (mma.sync m16n8k16).
//
// A block of TC_WARPS warps owns 16 rows of W and TN tokens. The warps split K in
// chunks of 32 (chunk c goes to warp c % TC_WARPS); each lane dequantizes its part of
// its warp's chunk straight into mma fragment registers (the chunk's columns in a fixed
// permuted order, the same for weights and tokens), multiplies it with the tokens'
// chunk (two k-steps of 16) and keeps the sums in registers, chunk after chunk; the block then adds its warps in index order. A (row, token)'s sum depends only on that row and that token:
// never on TN, on the other tokens or on the step (SYS-0003).
#define TC_WARPS 8

__device__ __forceinline__ u32 pack_h2(float lo, float hi) {
    return (u32)f2h(lo) | ((u32)f2h(hi) << 16);
}

__device__ __forceinline__ void mma16816(float* d, u32 a0, u32 a1, u32 a2, u32 a3, u32 b0, u32 b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// Half-pair arithmetic on 32-bit registers (no headers under NVRTC).
__device__ __forceinline__ u32 hsub2(u32 a, u32 b) {
    u32 d;
    asm("sub.rn.f16x2 %0, %1, %2;" : "=r"(d) : "r"(a), "r"(b));
    return d;
}
__device__ __forceinline__ u32 hmul2(u32 a, u32 b) {
    u32 d;
    asm("mul.rn.f16x2 %0, %1, %2;" : "=r"(d) : "r"(a), "r"(b));
    return d;
}
__device__ __forceinline__ u32 hfma2(u32 a, u32 b, u32 c) {
    u32 d;
    asm("fma.rn.f16x2 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
    return d;
}
__device__ __forceinline__ u32 splat_h(float f) {
    const u32 h = f2h(f);
    return h | (h << 16);
}
// Two bytes of a 16-bit word at bits 0-7 and 16-23 (zeros between).
__device__ __forceinline__ u32 spread2(u32 w16) { return __byte_perm(w16, 0u, 0x4140u); }
// 1024 + n in each half, for n < 1024 in bits 0-9 and 16-25.
#define H1024 0x64006400u

// The 8 values of unit u as 4 half pairs. Default: the f32 values, rounded.
template <int F> struct QH {
    __device__ static __forceinline__ void unit(const u8* row, int u, u32* h) {
        float w[8];
        Q<F>::unit(row, u, w);
#pragma unroll
        for (int p = 0; p < 4; ++p) h[p] = pack_h2(w[2 * p], w[2 * p + 1]);
    }
};

// The fast paths build half pairs straight from the quantized integers (1024 + q is
// exact in half precision), then scale: a handful of instructions per pair.
template <> struct QH<F_F16> {
    __device__ static __forceinline__ void unit(const u8* row, int u, u32* h) {
        const uint4 v = ldw16(row + (size_t)u * 16);
        h[0] = v.x;
        h[1] = v.y;
        h[2] = v.z;
        h[3] = v.w;
    }
};

template <> struct QH<F_Q8_0> {
    // d * q, rounded once: the same values as the f32 path.
    __device__ static __forceinline__ void unit(const u8* row, int u, u32* h) {
        const u8* b = row + (size_t)(u >> 2) * 34;
        const u32 d = (u32)ld16(b) * 0x10001u;
        const u16* q = (const u16*)(b + 2 + (u & 3) * 8);
#pragma unroll
        for (int p = 0; p < 4; ++p) {
            // int8 + 128 = byte ^ 0x80.
            const u32 v = (spread2(q[p]) ^ 0x00800080u) | H1024;
            h[p] = hmul2(hsub2(v, 0x64806480u), d);  // (1024 + 128 + q) - 1152 = q
        }
    }
};

template <> struct QH<F_Q5_0> {
    // d * (q - 16), rounded once: the same values as the f32 path.
    __device__ static __forceinline__ void unit(const u8* row, int u, u32* h) {
        const u8* b = row + (size_t)(u >> 2) * 22;
        const u32 d = (u32)ld16(b) * 0x10001u;
        const u32 qh = (u32)ld16(b + 2) | ((u32)ld16(b + 4) << 16);
        const int e = (u & 3) * 8;
        const u16* qs = (const u16*)(b + 6 + (e & 15));
        const int sh = e >= 16 ? 4 : 0;
#pragma unroll
        for (int p = 0; p < 4; ++p) {
            const int bit = e + 2 * p;
            const u32 hi = (((qh >> bit) & 1u) << 4) | (((qh >> (bit + 1)) & 1u) << 20);
            const u32 v = ((spread2(qs[p]) >> sh) & 0x000F000Fu) | hi | H1024;
            h[p] = hmul2(hsub2(v, 0x64106410u), d);  // (1024 + q) - 1040 = q - 16
        }
    }
};

// Q4_K and Q6_K keep the default: their half-pair versions (d·scale rounded to half
// first) measured slower for batch-1 decode of the 8B shape (61 vs 79 tok/s).

// One 32-column chunk of a warp's 16 rows (hv: rows g and g + 8, as fragments) times
// NT·8 tokens into acc, in k-step order.
//
// The chunk's 32 columns are taken in a fixed permuted order so that each thread's
// fragment slots hold 8 consecutive columns: lane (g, c) holds columns 8c..8c+7 of
// rows g and g+8 (one unit each, straight into registers); k-step ks puts columns
// 8c+4ks+{0,1} in slots 2c,2c+1 and 8c+4ks+{2,3} in slots 2c+8,2c+9, for the
// weights and the tokens alike.
template <int NT>
__device__ __forceinline__ void tc_chunk(float (&acc)[NT][4], const u32 (&hv)[2][4], int ch, int g, int c,
                                         const float* __restrict__ X, int cols, int t0, int tn) {
#pragma unroll
    for (int ks = 0; ks < 2; ++ks) {
        const u32 a0 = hv[0][2 * ks], a2 = hv[0][2 * ks + 1];
        const u32 a1 = hv[1][2 * ks], a3 = hv[1][2 * ks + 1];
        const int k = ch * 32 + 8 * c + 4 * ks;
#pragma unroll
        for (int j = 0; j < NT; ++j) {
            // B fragment: token j*8+g, columns k..k+1, then k+2..k+3.
            const int t = j * 8 + g;
            u32 b0 = 0u, b1 = 0u;
            if (t < tn) {
                const float4 x = __ldg((const float4*)(X + (size_t)(t0 + t) * cols + k));
                b0 = pack_h2(x.x, x.y);
                b1 = pack_h2(x.z, x.w);
            }
            mma16816(acc[j], a0, a1, a2, a3, b0, b1);
        }
    }
}

// A block's 16 rows × TN tokens from its warps' sums, added in warp order.
template <int TN, int NT>
__device__ __forceinline__ void tc_store(const float (&acc)[NT][4], float (&red)[TC_WARPS][16][TN],
                                         float* __restrict__ Y, int rows, int j0, int t0, int nr, int tn) {
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, c = lane & 3;
#pragma unroll
    for (int j = 0; j < NT; ++j) {
        red[warp][g][j * 8 + 2 * c] = acc[j][0];
        red[warp][g][j * 8 + 2 * c + 1] = acc[j][1];
        red[warp][g + 8][j * 8 + 2 * c] = acc[j][2];
        red[warp][g + 8][j * 8 + 2 * c + 1] = acc[j][3];
    }
    __syncthreads();
    for (int i = threadIdx.x; i < 16 * TN; i += blockDim.x) {
        const int r = i / TN, t = i % TN;
        if (r < nr && t < tn) {
            float v = red[0][r][t];
#pragma unroll
            for (int k = 1; k < TC_WARPS; ++k) v += red[k][r][t];
            Y[(size_t)(t0 + t) * rows + j0 + r] = v;
        }
    }
}

template <int F, int TN>
__device__ __forceinline__ void qmm_tc_impl(const u8* __restrict__ W, int rows, int cols,
                                            const float* __restrict__ X, int ntok,
                                            float* __restrict__ Y, int block) {
    constexpr int NT = TN / 8;
    // Small tiles take four chunks per round (four times the loads in flight: decode
    // latency); the chunks' products are still added in chunk order, so the sums are
    // the same bits whatever the tile.
    constexpr int U = TN <= 8 ? 4 : 1;
    __shared__ float red[TC_WARPS][16][TN];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int g = lane >> 2, c = lane & 3;
    const int tiles = (ntok + TN - 1) / TN;
    const int j0 = (block / tiles) * 16;
    const int t0 = (block % tiles) * TN;
    const int nr = min(16, rows - j0), tn = min(TN, ntok - t0);
    const size_t rb = (size_t)(cols / Q<F>::ELEMS) * Q<F>::BYTES;
    const int chunks = cols >> 5;
    // The first round's weights (TC_WARPS * U chunks of each row), then the wait.
    const int first = min(cols, TC_WARPS * U * 32);
    prefetch_rows(W + (size_t)j0 * rb, rb, nr, (size_t)((first + Q<F>::ELEMS - 1) / Q<F>::ELEMS) * Q<F>::BYTES,
                  threadIdx.x, blockDim.x);
    grid_wait();
    float acc[NT][4];
#pragma unroll
    for (int j = 0; j < NT; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.0f;
    for (int ch0 = warp; ch0 < chunks; ch0 += TC_WARPS * U) {
        u32 hv[U][2][4];
#pragma unroll
        for (int uu = 0; uu < U; ++uu) {
            const int ch = ch0 + uu * TC_WARPS;
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                hv[uu][h][0] = hv[uu][h][1] = hv[uu][h][2] = hv[uu][h][3] = 0u;
                if (ch < chunks && g + 8 * h < nr)
                    QH<F>::unit(W + (size_t)(j0 + g + 8 * h) * rb, ch * 4 + c, hv[uu][h]);
            }
        }
#pragma unroll
        for (int uu = 0; uu < U; ++uu) {
            const int ch = ch0 + uu * TC_WARPS;
            if (ch >= chunks) break;
            tc_chunk<NT>(acc, hv[uu], ch, g, c, X, cols, t0, tn);
        }
    }
    grid_trigger();  // the main loop is done: the next kernel may be placed
    tc_store<TN, NT>(acc, red, Y, rows, j0, t0, nr, tn);
}

// Up to three matrices over the same inputs in one launch (q/k/v, gate/up): the grid's
// blocks are the first matrix's, then the second's, then the third's (absent ones have
// no rows), each block computing exactly what a launch of its matrix alone would.
template <int F, int TN>
__device__ __forceinline__ void qmm_tc_parts(const u8* W0, float* Y0, int r0, const u8* W1, float* Y1, int r1,
                                             const u8* W2, float* Y2, int r2, int cols, const float* X,
                                             int ntok) {
    const int tiles = (ntok + TN - 1) / TN;
    const int b0 = (r0 + 15) / 16 * tiles, b1 = (r1 + 15) / 16 * tiles;
    const int b = (int)blockIdx.x;
    if (b < b0)
        qmm_tc_impl<F, TN>(W0, r0, cols, X, ntok, Y0, b);
    else if (b < b0 + b1)
        qmm_tc_impl<F, TN>(W1, r1, cols, X, ntok, Y1, b - b0);
    else
        qmm_tc_impl<F, TN>(W2, r2, cols, X, ntok, Y2, b - b0 - b1);
}

#define LLORCH_TC_TILE(NAME, F, TN)                                                               \
    extern "C" __global__ void __launch_bounds__(TC_WARPS * 32)                                   \
        qmm_tc_##NAME##_n##TN(const u8* W0, float* Y0, int r0, const u8* W1, float* Y1, int r1,   \
                              const u8* W2, float* Y2, int r2, int cols, const float* X, int ntok) {              \
        qmm_tc_parts<F, TN>(W0, Y0, r0, W1, Y1, r1, W2, Y2, r2, cols, X, ntok);                   \
    }
#define LLORCH_TC(NAME, F)     \
    LLORCH_TC_TILE(NAME, F, 8)  \
    LLORCH_TC_TILE(NAME, F, 16) \
    LLORCH_TC_TILE(NAME, F, 32) \
    LLORCH_TC_TILE(NAME, F, 64)

LLORCH_TC(f32, F_F32)
LLORCH_TC(f16, F_F16)
LLORCH_TC(bf16, F_BF16)
LLORCH_TC(q8_0, F_Q8_0)
LLORCH_TC(q4_0, F_Q4_0)
LLORCH_TC(q4_1, F_Q4_1)
LLORCH_TC(q5_0, F_Q5_0)
LLORCH_TC(q5_1, F_Q5_1)
LLORCH_TC(q4_k, F_Q4K)
LLORCH_TC(q5_k, F_Q5K)
LLORCH_TC(q6_k, F_Q6K)
