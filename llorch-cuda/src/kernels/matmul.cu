// Y[t][j] = sum_k W[j][k] * X[t][k], straight from the GGUF blocks of W.
//
// A block of QMM_WARPS warps covers QMM_TT tokens and QMM_WARPS / KS groups of R rows.
// The KS warps of a group split each row's 8-value units (unit u goes to warp
// (u / 32) % KS of the group, lane u % 32); every lane keeps one f32 sum per (row,
// token) in a fixed order, each warp adds its lanes with a fixed butterfly and the
// group adds its warps in index order. KS is chosen from the matrix's shape only and
// nothing in a (row, token)'s arithmetic depends on R or on how many tokens the
// launch has, so the product is batch-invariant (SYS-0003). One-dimensional grid,
// token tiles fastest (blocks that share rows run together and share them in cache).
#define QMM_WARPS 4
#define QMM_TT 8

template <int F, int KS, int R>
__device__ __forceinline__ void qmm_impl(const u8* __restrict__ W, int rows, int cols,
                                         const float* __restrict__ X, int ntok,
                                         float* __restrict__ Y) {
    constexpr int GROUPS = QMM_WARPS / KS;
    __shared__ float red[QMM_WARPS][R][QMM_TT];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int group = warp / KS, part = warp % KS;
    const int tiles = (ntok + QMM_TT - 1) / QMM_TT;
    const int rblock = (int)(blockIdx.x / tiles);
    const int t0 = (int)(blockIdx.x % tiles) * QMM_TT;
    const int j0 = (rblock * GROUPS + group) * R;
    const int tn = min(QMM_TT, ntok - t0);
    const int nr = max(0, min(R, rows - j0));
    const size_t rb = (size_t)(cols / Q<F>::ELEMS) * Q<F>::BYTES;
    const int units = nr > 0 ? (cols >> 3) : 0;
    float acc[R][QMM_TT];
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
        for (int t = 0; t < QMM_TT; ++t) acc[r][t] = 0.0f;
#pragma unroll 2
    for (int u = part * 32 + lane; u < units; u += KS * 32) {
        float w[R][8];
#pragma unroll
        for (int r = 0; r < R; ++r) {
            if (r < nr) {
                Q<F>::unit(W + (size_t)(j0 + r) * rb, u, w[r]);
            } else {
#pragma unroll
                for (int i = 0; i < 8; ++i) w[r][i] = 0.0f;
            }
        }
#pragma unroll
        for (int t = 0; t < QMM_TT; ++t) {
            if (t < tn) {
                const float4* xp = (const float4*)(X + (size_t)(t0 + t) * cols + (size_t)u * 8);
                const float4 a = __ldg(xp), b = __ldg(xp + 1);
#pragma unroll
                for (int r = 0; r < R; ++r) {
                    float s = acc[r][t];
                    s = fmaf(w[r][0], a.x, s);
                    s = fmaf(w[r][1], a.y, s);
                    s = fmaf(w[r][2], a.z, s);
                    s = fmaf(w[r][3], a.w, s);
                    s = fmaf(w[r][4], b.x, s);
                    s = fmaf(w[r][5], b.y, s);
                    s = fmaf(w[r][6], b.z, s);
                    s = fmaf(w[r][7], b.w, s);
                    acc[r][t] = s;
                }
            }
        }
    }
    grid_trigger();  // the main loop is done: the next kernel may be placed
#pragma unroll
    for (int r = 0; r < R; ++r) {
#pragma unroll
        for (int t = 0; t < QMM_TT; ++t) {
            const float v = warp_sum(acc[r][t]);
            if (lane == 0) red[warp][r][t] = v;
        }
    }
    __syncthreads();
    for (int i = threadIdx.x; i < GROUPS * R * QMM_TT; i += blockDim.x) {
        const int g = i / (R * QMM_TT), r = (i / QMM_TT) % R, t = i % QMM_TT;
        const int j = (rblock * GROUPS + g) * R + r;
        if (j < rows && t < tn) {
            float v = red[g * KS][r][t];
#pragma unroll
            for (int p = 1; p < KS; ++p) v += red[g * KS + p][r][t];
            Y[(size_t)(t0 + t) * rows + j] = v;
        }
    }
}

// Row `tokens[i]` of an embedding table, times `scale`.
template <int F>
__device__ __forceinline__ void embed_impl(const u8* __restrict__ E, int d, const int* __restrict__ tokens,
                                           float scale, float* __restrict__ X) {
    const int i = blockIdx.x;
    const size_t rb = (size_t)(d / Q<F>::ELEMS) * Q<F>::BYTES;
    const u8* row = E + (size_t)tokens[i] * rb;
    for (int u = threadIdx.x; u < (d >> 3); u += blockDim.x) {
        float w[8];
        Q<F>::unit(row, u, w);
#pragma unroll
        for (int k = 0; k < 8; ++k) X[(size_t)i * d + u * 8 + k] = w[k] * scale;
    }
}

#define LLORCH_QMM(NAME, F, KS, R)                                                           \
    extern "C" __global__ void __launch_bounds__(QMM_WARPS * 32)                                 \
        qmm_##NAME##_k##KS##_r##R(const u8* W, int rows, int cols, const float* X, int ntok,     \
                                  float* Y) { grid_wait();                                                    \
        qmm_impl<F, KS, R>(W, rows, cols, X, ntok, Y);                                          \
    }

#define LLORCH_FORMAT(NAME, F)                                                                   \
    LLORCH_QMM(NAME, F, 1, 1)                                                                    \
    LLORCH_QMM(NAME, F, 1, 4)                                                                    \
    LLORCH_QMM(NAME, F, 4, 1)                                                                    \
    LLORCH_QMM(NAME, F, 4, 4)                                                                    \
    extern "C" __global__ void embed_##NAME(const u8* E, int d, const int* tokens, float scale, \
                                            float* X) { grid_start();                                          \
        embed_impl<F>(E, d, tokens, scale, X);                                                   \
    }

LLORCH_FORMAT(f32, F_F32)
LLORCH_FORMAT(f16, F_F16)
LLORCH_FORMAT(bf16, F_BF16)
LLORCH_FORMAT(q8_0, F_Q8_0)
LLORCH_FORMAT(q4_0, F_Q4_0)
LLORCH_FORMAT(q4_1, F_Q4_1)
LLORCH_FORMAT(q5_0, F_Q5_0)
LLORCH_FORMAT(q5_1, F_Q5_1)
LLORCH_FORMAT(q4_k, F_Q4K)
LLORCH_FORMAT(q5_k, F_Q5K)
LLORCH_FORMAT(q6_k, F_Q6K)
