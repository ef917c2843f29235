// Tensor-core product: Y[t][j] = sum_k W[j][k] * X[t][k], W dequantized from its GGUF
// blocks to half precision, X rounded to half precision, f32 sums (mma.sync m16n8k16).
//
// A block of TC_WARPS warps owns 16 rows of W and TN tokens. The warps split K in
// chunks of 32 (chunk c goes to warp c % TC_WARPS); each warp dequantizes its rows'
// chunk into its own shared tile, multiplies it with the tokens' chunk (two k-steps
// of 16; the tokens' halves are read straight into registers) and keeps the sums in
// registers, chunk after chunk; the block then adds its warps in index order. A (row, token)'s sum depends only on that row and that token:
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

template <int F, int TN>
__device__ __forceinline__ void qmm_tc_impl(const u8* __restrict__ W, int rows, int cols,
                                            const float* __restrict__ X, int ntok,
                                            float* __restrict__ Y) {
    constexpr int NT = TN / 8;
    // Small tiles take two chunks per round (twice the loads in flight); the chunks'
    // products are still added in chunk order, so the sums are the same bits.
    constexpr int U = TN <= 8 ? 2 : 1;
    // Per warp: 16 rows × 32 halves (16 words + 4 of padding).
    __shared__ u32 As[TC_WARPS][U][16][20];
    __shared__ float red[TC_WARPS][16][TN];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int g = lane >> 2, c = lane & 3;
    const int tiles = (ntok + TN - 1) / TN;
    const int j0 = (int)(blockIdx.x / tiles) * 16;
    const int t0 = (int)(blockIdx.x % tiles) * TN;
    const int nr = min(16, rows - j0), tn = min(TN, ntok - t0);
    const size_t rb = (size_t)(cols / Q<F>::ELEMS) * Q<F>::BYTES;
    const int chunks = cols >> 5;
    float acc[NT][4];
#pragma unroll
    for (int j = 0; j < NT; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.0f;
    for (int ch0 = warp; ch0 < chunks; ch0 += TC_WARPS * U) {
#pragma unroll
        for (int uu = 0; uu < U; ++uu) {
            const int ch = ch0 + uu * TC_WARPS;
            if (ch >= chunks) break;
            u32(*as)[20] = As[warp][uu];
#pragma unroll
            for (int i = 0; i < 2; ++i) {
                const int idx = lane + 32 * i, r = idx >> 2, ku = idx & 3;
                float w[8];
                if (r < nr) {
                    Q<F>::unit(W + (size_t)(j0 + r) * rb, ch * 4 + ku, w);
                } else {
#pragma unroll
                    for (int e = 0; e < 8; ++e) w[e] = 0.0f;
                }
#pragma unroll
                for (int p = 0; p < 4; ++p) as[r][ku * 4 + p] = pack_h2(w[2 * p], w[2 * p + 1]);
            }
        }
        __syncwarp();
#pragma unroll
        for (int uu = 0; uu < U; ++uu) {
            const int ch = ch0 + uu * TC_WARPS;
            if (ch >= chunks) break;
            u32(*as)[20] = As[warp][uu];
#pragma unroll
            for (int ks = 0; ks < 2; ++ks) {
                const u32 a0 = as[g][ks * 8 + c], a1 = as[g + 8][ks * 8 + c];
                const u32 a2 = as[g][ks * 8 + c + 4], a3 = as[g + 8][ks * 8 + c + 4];
                const int k = ch * 32 + ks * 16 + 2 * c;
#pragma unroll
                for (int j = 0; j < NT; ++j) {
                    // B fragment: token j*8+g, k and k+1, then k+8 and k+9.
                    const int t = j * 8 + g;
                    u32 b0 = 0u, b1 = 0u;
                    if (t < tn) {
                        const float* xr = X + (size_t)(t0 + t) * cols + k;
                        const float2 lo = __ldg((const float2*)xr), hi = __ldg((const float2*)(xr + 8));
                        b0 = pack_h2(lo.x, lo.y);
                        b1 = pack_h2(hi.x, hi.y);
                    }
                    mma16816(acc[j], a0, a1, a2, a3, b0, b1);
                }
            }
        }
        __syncwarp();
    }
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

#define LLORCH_TC(NAME, F)                                                                       \
    extern "C" __global__ void __launch_bounds__(TC_WARPS * 32)                                  \
        qmm_tc_##NAME##_n8(const u8* W, int rows, int cols, const float* X, int ntok, float* Y) { \
        qmm_tc_impl<F, 8>(W, rows, cols, X, ntok, Y);                                            \
    }                                                                                            \
    extern "C" __global__ void __launch_bounds__(TC_WARPS * 32)                                  \
        qmm_tc_##NAME##_n64(const u8* W, int rows, int cols, const float* X, int ntok, float* Y) { \
        qmm_tc_impl<F, 64>(W, rows, cols, X, ntok, Y);                                           \
    }

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
