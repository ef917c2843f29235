// Integer tensor-core product for steps of many tokens, staged through shared memory:
// the same bits as qmm_q (imma.cu), a different schedule.
//
// qmm_q gives each warp of a block one partition (steps s ≡ w mod 8) of the block's
// whole tile, so no warp shares a load with another and every warp waits on its own
// global loads. Here the block's warps all work on the same step at once, each on its
// part of a larger tile (BM rows × BN tokens, WR warps along the rows), the step's
// weights and inputs staged once for all of them in shared memory by cp.async,
// QS_STAGES - 1 steps ahead (a row's step as the format's byte ranges, imma.cu). The
// partitions are
// walked one after the other (steps 0, 8, 16, …, then 1, 9, …): a warp keeps the
// current partition's fma chain and the running total of the finished ones, added in
// index order from -0 (-0 + a = a for every a). Every fma and every addition is
// qmm_q's, so the bits are.

// Steps in flight (cp.async stages of weights and inputs).
#define QS_STAGES 4

// Bytes of a row's staged copy of one step: its ranges' units (imma.cu).
template <int F>
__device__ constexpr int staged_row_bytes() {
    int u = 0;
    for (int i = 0; i < QI<F>::NR; ++i) u += QI<F>::units(i);
    return u * QI<F>::CP;
}
// The sizes the host gives shared memory (ops/qmm_staged.rs `row_bytes`).
static_assert(staged_row_bytes<F_Q8_0>() == 36, "row_bytes");
static_assert(staged_row_bytes<F_Q4_0>() == 20, "row_bytes");
static_assert(staged_row_bytes<F_Q4_1>() == 20, "row_bytes");
static_assert(staged_row_bytes<F_Q5_0>() == 24, "row_bytes");
static_assert(staged_row_bytes<F_Q5_1>() == 24, "row_bytes");

// Step k of the walk: partition p = the k-th step's s % 8. Partitions below rm = steps
// % 8 have q8 + 1 steps, the others q8.
__device__ __forceinline__ int staged_step(int k, int q8, int rm) {
    const int big = rm * (q8 + 1);
    if (k < big) return k / (q8 + 1) + 8 * (k % (q8 + 1));
    const int k2 = k - big;
    return rm + k2 / q8 + 8 * (k2 % q8);
}

// The staged kernels' walk over a row's steps, partition after partition: step k is
// queued QS-style `STAGES - 1` steps ahead by `stage_in(k)` (its copies and one
// cp.async group, an empty group past the last step), `step(k, s)` works on it (step
// s) once it has landed, and `ended()` follows each partition's last step.
template <int STAGES, class In, class Step, class End>
__device__ __forceinline__ void staged_walk(int steps, In stage_in, Step step, End ended) {
    const int q8 = steps / 8, rm = steps % 8;
#pragma unroll
    for (int k = 0; k < STAGES - 1; ++k) stage_in(k);
    int p = 0, left = q8 + (0 < rm);
    for (int k = 0; k < steps; ++k) {
        cp_wait<STAGES - 2>();
        __syncthreads();
        // The stage read by step k - 1, which every thread has finished.
        stage_in(k + STAGES - 1);
        step(k, staged_step(k, q8, rm));
        if (--left == 0) {
            ended();
            ++p;
            left = q8 + (p < rm);
        }
    }
}

// Stores a warp's staged tile (R row tiles from row j0 + rbase, NT token tiles from
// token t0 + tbase, tn tokens present): element e of tile (r, j) is `tot(r, j, e)`, the
// finished partitions' total from -0; the register tiles add their empty partitions'
// zeros too, so with fewer steps than partitions -0 becomes +0.
template <int R, int NT, class Tot>
__device__ __forceinline__ void staged_store(Tot tot, int steps, float* __restrict__ Y, int rows, int j0,
                                             int rbase, int t0, int tbase, int tn) {
    const int g = (threadIdx.x & 31) >> 2, c = threadIdx.x & 3;
    const float pad = steps < TC_WARPS ? 0.0f : -0.0f;
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
        for (int j = 0; j < NT; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int row = j0 + rbase + 16 * r + g + 8 * (e >> 1);
                const int t = tbase + j * 8 + 2 * c + (e & 1);
                if (row < rows && t < tn) Y[(size_t)(t0 + t) * rows + row] = tot(r, j, e) + pad;
            }
}

// The first unit of range i in a row's staged copy.
template <int F>
__device__ __forceinline__ int staged_unit(int i) {
    int u = 0;
#pragma unroll
    for (int q = 0; q < QI<F>::NR - 1; ++q) u += q < i ? QI<F>::units(q) : 0;
    return u;
}

template <int F, int BM, int BN, int WR>
__device__ __forceinline__ void qmm_s_impl(const u8* __restrict__ W, int rows, int cols,
                                           const uint4* __restrict__ XQ, const int2* __restrict__ XM,
                                           int ntok, float* __restrict__ Y) {
    using I = QI<F>;
    using Raw = typename I::Raw;
    constexpr int G = I::SPAN / 32, CP = I::CP, RB = staged_row_bytes<F>(), RU = RB / CP;
    constexpr int WT = TC_WARPS / WR, R = BM / WR / 16, NT = BN / WT / 8;
    static_assert(R >= 1 && NT >= 1 && WR * WT == TC_WARPS, "tile");
    constexpr int THREADS = TC_WARPS * 32;
    constexpr int UNITS = BN * G * 4;  // 16-byte input units per step
    // Per stage: BM staged rows, the tokens' blocks, their meta ([G][BN]).
    constexpr int STAGE = BM * RB + UNITS * 16 + G * BN * 8;
    static_assert(STAGE % 16 == 0, "stage alignment");
    extern __shared__ uint4 smem[];
    u8* const sm = reinterpret_cast<u8*>(smem);

    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, c = lane & 3;
    const int rbase = (warp % WR) * R * 16, tbase = (warp / WR) * NT * 8;
    const BlockTile bt = block_tile(BM, BN, ntok);
    const int j0 = bt.j0, t0 = bt.t0, tn = bt.tn;
    const size_t rb = (size_t)(cols / Q<F>::ELEMS) * Q<F>::BYTES;
    const int steps = cols / I::SPAN, nb = cols >> 5, q8 = steps / 8, rm = steps % 8;

    // Queues step k's weights and inputs into stage k % QS_STAGES (an empty group past
    // the last step, so the waits count alike).
    auto stage_in = [&](int k) {
        if (k < steps) {
            const int s = staged_step(k, q8, rm);
            u8* const st = sm + (size_t)(k % QS_STAGES) * STAGE;
            for (int u = tid; u < BM * RU; u += THREADS) {
                const int rr = u / RU, w = u % RU;
                int i = 0, j = w;
#pragma unroll
                for (int q = 0; q < I::NR - 1; ++q)
                    if (i == q && j >= I::units(q)) j -= I::units(q), i = q + 1;
                const bool okr = j0 + rr < rows;
                const size_t a = (size_t)(okr ? j0 + rr : 0) * rb + I::off(s, i);
                const size_t a0 = a & ~(size_t)(CP - 1);
                // Rows past the matrix and units past the range are zeros.
                const bool ok = okr && a0 + CP * j < a + I::len(i);
                cp_async<CP>(st + rr * RB + CP * w, W + (ok ? a0 + CP * j : 0), ok);
            }
            uint4* const xs = reinterpret_cast<uint4*>(st + BM * RB);
            for (int u = tid; u < UNITS; u += THREADS) {
                const int t = u / (G * 4), w = u % (G * 4);
                const bool ok = t < tn;
                const uint4* src = XQ + ((size_t)(t0 + (ok ? t : 0)) * nb + (size_t)s * G) * 4 + w;
                // Odd tokens swap their groups' halves: a quarter warp's eight 16-byte
                // reads (two tokens, four lanes) then fall in distinct banks.
                const int sw = G >= 2 ? (w ^ ((t & 1) << 2)) : w;
                cp_async16(xs + t * G * 4 + sw, src, ok);
            }
            int2* const ms = reinterpret_cast<int2*>(xs + UNITS);
            for (int u = tid; u < BN * G; u += THREADS) {
                const int t = u / G, gi = u % G;
                const bool ok = t < tn;
                const int2* src = XM + (size_t)(t0 + (ok ? t : 0)) * nb + (size_t)s * G + gi;
                cp_async8(ms + gi * BN + t, src, ok);
            }
        }
        cp_commit();
    };

    float acc[R][NT][4], tot[R][NT][4];
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
        for (int j = 0; j < NT; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) acc[r][j][e] = 0.0f, tot[r][j][e] = -0.0f;

    auto step = [&](int k, int s) {
        const u8* const st = sm + (size_t)(k % QS_STAGES) * STAGE;
        const uint4* const xb = reinterpret_cast<const uint4*>(st + BM * RB);
        const int2* const mb = reinterpret_cast<const int2*>(xb + UNITS);
        Raw raw[R][2];
#pragma unroll
        for (int r = 0; r < R; ++r)
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                const int rr = rbase + 16 * r + g + 8 * h;
                const size_t rowoff = (size_t)min(j0 + rr, rows - 1) * rb;
                const u8* const srow = st + rr * RB;
                I::read([&](int i) { return srow + CP * staged_unit<F>(i) + ((rowoff + I::off(s, i)) & (CP - 1)); },
                        s, c, raw[r][h]);
            }
#pragma unroll
        for (int gi = 0; gi < G; ++gi) {
            u32 x[R][2], y[R][2];
            Sc sc[R][2];
#pragma unroll
            for (int r = 0; r < R; ++r)
#pragma unroll
                for (int h = 0; h < 2; ++h) {
                    qi_codes<F>(raw[r][h], gi, x[r][h], y[r][h], c);
                    sc[r][h] = I::scales(raw[r][h], gi);
                }
#pragma unroll
            for (int j = 0; j < NT; ++j) {
                const int t = tbase + j * 8 + g, ta = tbase + j * 8 + 2 * c;
                const int w = gi * 4 + c;
                const uint4 b = xb[t * G * 4 + (G >= 2 ? (w ^ ((t & 1) << 2)) : w)];
                const int4 mm = *reinterpret_cast<const int4*>(mb + gi * BN + ta);
                const int2 m0 = make_int2(mm.x, mm.y), m1 = make_int2(mm.z, mm.w);
#pragma unroll
                for (int r = 0; r < R; ++r)
                    qq_group<F>(acc[r][j], x[r][0], x[r][1], y[r][0], y[r][1], sc[r], b, m0, m1);
            }
        }
    };
    // The partition's last step: into the total, in index order.
    auto ended = [&]() {
#pragma unroll
        for (int r = 0; r < R; ++r)
#pragma unroll
            for (int j = 0; j < NT; ++j)
#pragma unroll
                for (int e = 0; e < 4; ++e) tot[r][j][e] += acc[r][j][e], acc[r][j][e] = 0.0f;
    };
    staged_walk<QS_STAGES>(steps, stage_in, step, ended);
    grid_trigger();  // the main loop is done: the next kernel may be placed
    staged_store<R, NT>([&](int r, int j, int e) { return tot[r][j][e]; }, steps, Y, rows, j0, rbase, t0, tbase,
                        tn);
}

// A staged kernel of format F on IMPL (qmm_s_impl; kquant_tiles.cu's qmm_ks_impl).
#define LLORCH_QS1(NAME, F, BM, BN, WR, IMPL)                                                     \
    extern "C" __global__ void __launch_bounds__(TC_WARPS * 32)                                   \
        qmm_s_##NAME##_m##BM##_n##BN(const u8* W, int rows, int cols, const uint4* XQ,            \
                                     const int2* XM, int ntok, float* Y) {                        \
        grid_wait();                                                                              \
        IMPL<F, BM, BN, WR>(W, rows, cols, XQ, XM, ntok, Y);                                      \
    }
// (rows, tokens, warps along the rows): must match QS_TILES (kernels.rs).
#define LLORCH_QS(NAME, F, IMPL) LLORCH_QS1(NAME, F, 64, 64, 2, IMPL) LLORCH_QS1(NAME, F, 128, 64, 4, IMPL)

LLORCH_QS(q8_0, F_Q8_0, qmm_s_impl)
LLORCH_QS(q4_0, F_Q4_0, qmm_s_impl)
LLORCH_QS(q4_1, F_Q4_1, qmm_s_impl)
LLORCH_QS(q5_0, F_Q5_0, qmm_s_impl)
LLORCH_QS(q5_1, F_Q5_1, qmm_s_impl)
// Q4_K, Q5_K, Q6_K: kquant_tiles.cu.
