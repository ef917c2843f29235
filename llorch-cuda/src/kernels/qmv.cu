// Decode products: integer-coded weights × quantized inputs for steps of a few tokens,
// the same bits as qmm_q (imma.cu) without tensor cores. (The k-quants' own, with
// 256-value steps: kquant_decode.cu.)
//
// qmm_q's order, which this file keeps: a row's steps (SPAN columns each) are split in
// TC_WARPS partitions, step s going to partition s % TC_WARPS; each partition adds its
// steps in order (within a step, its 32-column groups in order) with one fused
// multiply-add per group, acc = fma(dx, value, acc); the row's result is partition 0
// + partition 1 + … in index order. The integer sums of a group are exact however
// they are formed.
//
// Here a warp takes R rows; its eight quads are the eight partitions: quad q takes
// steps q, q + 8, q + 16, …, and lane c of the quad the same part of each step as
// lane c of an mma quad in qmm_q (so a quad's input loads are 64 contiguous bytes and
// a warp's eight quads read consecutive blocks). The quad adds its lanes' integer sums
// (shuffles), then every lane of it keeps the partition's fma chain; lane 0 adds the
// eight partitions at the end. U rounds of loads are issued before their arithmetic.

static_assert(TC_WARPS == 8, "a warp's eight quads are qmm_q's partitions");

// Byte-wise dot products: a · b + c over four byte pairs (signedness per operand).
template <bool AS, bool BS>
__device__ __forceinline__ int dp4(u32 a, u32 b, int c) {
    int d;
    if constexpr (AS && BS) asm("dp4a.s32.s32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
    else if constexpr (AS) asm("dp4a.s32.u32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
    else if constexpr (BS) asm("dp4a.u32.s32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
    else asm("dp4a.u32.u32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
    return d;
}

__device__ __forceinline__ int quad_sum(int v) {
    v += __shfl_xor_sync(FULL_MASK, v, 1);
    return v + __shfl_xor_sync(FULL_MASK, v, 2);
}

// Up to three matrices of one format and width that share the inputs (q/k/v, gate/up)
// in one launch: the warps of segment 0, then 1, then 2.
struct QvSeg {
    const u8* W;
    float* Y;
    int rows;
};

// The segment of this thread's warp (R rows each), `wid` becoming its index there.
template <int R>
__device__ __forceinline__ QvSeg qv_segment(QvSeg s0, QvSeg s1, QvSeg s2, int& wid) {
    wid = (int)((blockIdx.x * blockDim.x + threadIdx.x) >> 5);
    const int w0 = (s0.rows + R - 1) / R, w1 = (s1.rows + R - 1) / R;
    const QvSeg seg = wid < w0 ? s0 : (wid < w0 + w1 ? s1 : s2);
    wid -= wid < w0 ? 0 : (wid < w0 + w1 ? w0 : w0 + w1);
    return seg;
}

// A warp's rows from its quads' partition sums: partitions in index order (qmm_q's warps
// 0, 1, …: lanes 0, 4, …), stored by lane 0.
template <int R, int T>
__device__ __forceinline__ void qv_store(const float (&acc)[R][T], float* __restrict__ Y, int rows, int row0,
                                         int ntok) {
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
        for (int t = 0; t < T; ++t) {
            float sum = __shfl_sync(FULL_MASK, acc[r][t], 0);
#pragma unroll
            for (int k = 1; k < TC_WARPS; ++k) sum += __shfl_sync(FULL_MASK, acc[r][t], 4 * k);
            if ((threadIdx.x & 31) == 0 && row0 + r < rows && t < ntok) Y[(size_t)t * rows + row0 + r] = sum;
        }
}

template <int F, int R, int T>
__device__ __forceinline__ void qmv_q_impl(QvSeg s0_, QvSeg s1_, QvSeg s2_, int cols,
                                           const uint4* __restrict__ XQ, const int2* __restrict__ XM,
                                           int ntok) {
    using I = QI<F>;
    constexpr int G = I::SPAN / 32;
    // Rounds of loads in flight (fewer with more rows: registers).
    constexpr int U = R >= 4 ? 2 : 4;
    const int lane = threadIdx.x & 31, q = lane >> 2, c = lane & 3;
    int wid;
    const QvSeg seg = qv_segment<R>(s0_, s1_, s2_, wid);
    const u8* __restrict__ W = seg.W;
    const int rows = seg.rows;
    const int row0 = wid * R;
    const size_t rb = (size_t)(cols / Q<F>::ELEMS) * Q<F>::BYTES;
    const int steps = cols / I::SPAN, nb = cols >> 5;
    // The first round's weights (TC_WARPS * U steps of each row), then the wait.
    if (row0 < rows) {
        const int first = min(cols, TC_WARPS * U * I::SPAN);
        prefetch_rows(W + (size_t)row0 * rb, rb, min(R, rows - row0),
                      (size_t)((first + Q<F>::ELEMS - 1) / Q<F>::ELEMS) * Q<F>::BYTES, lane, 32);
    }
    grid_wait();
    float acc[R][T] = {};
    for (int s0 = 0; s0 < steps; s0 += TC_WARPS * U) {
        typename I::Raw raw[U][R];
        uint4 xq[U][G][T];
        int2 xm[U][G][T];
#pragma unroll
        for (int uu = 0; uu < U; ++uu) {
            const int s = s0 + TC_WARPS * uu + q;
            const bool has = s < steps;
#pragma unroll
            for (int r = 0; r < R; ++r) {
                raw[uu][r] = {};
                if (has && row0 + r < rows) I::load(W + (size_t)(row0 + r) * rb, s, c, raw[uu][r]);
            }
#pragma unroll
            for (int gi = 0; gi < G; ++gi)
#pragma unroll
                for (int t = 0; t < T; ++t) {
                    const int blk = s * G + gi;
                    xq[uu][gi][t] = make_uint4(0u, 0u, 0u, 0u);
                    xm[uu][gi][t] = make_int2(0, 0);
                    if (has && t < ntok) {
                        xq[uu][gi][t] = __ldg(XQ + ((size_t)t * nb + blk) * 4 + c);
                        xm[uu][gi][t] = __ldg(XM + (size_t)t * nb + blk);
                    }
                }
        }
#pragma unroll
        for (int uu = 0; uu < U; ++uu) {
            const bool has = s0 + TC_WARPS * uu + q < steps;
#pragma unroll
            for (int gi = 0; gi < G; ++gi)
#pragma unroll
                for (int r = 0; r < R; ++r) {
                    u32 x, y;
                    qi_codes<F>(raw[uu][r], gi, x, y, c);
                    const Sc sc = I::scales(raw[uu][r], gi);
#pragma unroll
                    for (int t = 0; t < T; ++t) {
                        const uint4 b = xq[uu][gi][t];
                        const int hi = dp4<I::SIGNED, true>(y, b.y, dp4<I::SIGNED, true>(x, b.x, 0));
                        const int lo = dp4<I::SIGNED, false>(y, b.w, dp4<I::SIGNED, false>(x, b.z, 0));
                        const int i0 = quad_sum(hi * 256 + lo);
                        const int2 m = xm[uu][gi][t];
                        const float v = I::value(sc, i0, m.y);
                        if (has) acc[r][t] = fmaf(__int_as_float(m.x), v, acc[r][t]);
                    }
                }
        }
    }
    grid_trigger();  // the main loop is done: the next kernel may be placed
    qv_store<R, T>(acc, seg.Y, rows, row0, ntok);
}

#define QV_THREADS 128
// The decode kernels of format F on IMPL (qmv_q_impl; kquant_decode.cu's qmv_k_impl).
#define LLORCH_QV1(NAME, F, R, T, IMPL)                                                           \
    extern "C" __global__ void __launch_bounds__(QV_THREADS)                                      \
        qmv_q_##NAME##_r##R##_t##T(const u8* W0, float* Y0, int rows0, const u8* W1, float* Y1,   \
                                   int rows1, const u8* W2, float* Y2, int rows2, int cols,       \
                                   const uint4* XQ, const int2* XM, int ntok) {                   \
        IMPL<F, R, T>({W0, Y0, rows0}, {W1, Y1, rows1}, {W2, Y2, rows2}, cols, XQ, XM, ntok);     \
    }
// Must match QV_SHAPES (kernels.rs).
#define LLORCH_QV(NAME, F, IMPL)                                                                  \
    LLORCH_QV1(NAME, F, 1, 1, IMPL) LLORCH_QV1(NAME, F, 2, 1, IMPL) LLORCH_QV1(NAME, F, 4, 1, IMPL) \
    LLORCH_QV1(NAME, F, 1, 2, IMPL) LLORCH_QV1(NAME, F, 2, 2, IMPL)

LLORCH_QV(q8_0, F_Q8_0, qmv_q_impl)
LLORCH_QV(q4_0, F_Q4_0, qmv_q_impl)
LLORCH_QV(q4_1, F_Q4_1, qmv_q_impl)
LLORCH_QV(q5_0, F_Q5_0, qmv_q_impl)
LLORCH_QV(q5_1, F_Q5_1, qmv_q_impl)
// Q4_K, Q5_K, Q6_K: kquant_decode.cu.
