// Products of the k-quants on tensor cores (kquant.cu's arithmetic): register tiles for
// steps of a few tokens, staged tiles for many. Per step the groups of one word set at a
// time (their weights' words, then their tokens' input fragments), the integer sums
// weighted as they come; then the step's float fma per (row, token).

// The mins term of a 16-row × 8-token tile on the tensor cores: the rows' 6-bit mins
// of groups 0-7 (k 0-7 of an m16n8k16 A operand, zeros past) times the tokens' block
// sums Σa (|Σa| < 2^20) in three byte planes (B operands: lane (g, c) holds token g's
// sums of groups 4c .. 4c + 3, `a`), recombined in int32: exactly kq_mins per element.
template <int F>
__device__ __forceinline__ void kq_mins_mma(int (&m)[4], const KSc<F> (&ks)[2], int c, const int (&a)[4]) {
    if constexpr (KQ<F>::MINS) {
        const u32 a0 = c == 0 ? ks[0].k.mn0 : (c == 1 ? ks[0].k.mn1 : 0u);
        const u32 a1 = c == 0 ? ks[1].k.mn0 : (c == 1 ? ks[1].k.mn1 : 0u);
        // Bytes 0-1 and 2-3 of the four sums, interleaved, then one plane per byte.
        const u32 p01 = __byte_perm((u32)a[0], (u32)a[1], 0x5140), p23 = __byte_perm((u32)a[2], (u32)a[3], 0x5140);
        const u32 q01 = __byte_perm((u32)a[0], (u32)a[1], 0x7362), q23 = __byte_perm((u32)a[2], (u32)a[3], 0x7362);
        const u32 lo = __byte_perm(p01, p23, 0x5410), mid = __byte_perm(p01, p23, 0x7632);
        const u32 hi = __byte_perm(q01, q23, 0x5410);  // signed: Σa >> 16
        int dl[4] = {0, 0, 0, 0}, dm[4] = {0, 0, 0, 0}, dh[4] = {0, 0, 0, 0};
        imma16<false>(dl, a0, a1, lo);
        imma16<false>(dm, a0, a1, mid);
        imma16<true>(dh, a0, a1, hi);
#pragma unroll
        for (int e = 0; e < 4; ++e) m[e] = dh[e] * 65536 + dm[e] * 256 + dl[e];
    } else {
        m[0] = m[1] = m[2] = m[3] = 0;
    }
}

// The end of a step for one (row tile, token tile): the mins term, the tokens' scales
// (dx0: token 2c, dx1: 2c + 1), the float step into acc.
template <int F>
__device__ __forceinline__ void kq_finish(float (&acc)[4], const int (&shi)[4], const int (&slo)[4],
                                          const KSc<F> (&ks)[2], int c, const int (&a)[4], float dx0,
                                          float dx1) {
    int mins[4];
    kq_mins_mma<F>(mins, ks, c, a);
#pragma unroll
    for (int e = 0; e < 4; ++e)
        acc[e] = fmaf((e & 1) ? dx1 : dx0, ks[e >> 1].value(shi[e], slo[e], mins[e]), acc[e]);
}

// A lane's part of a step's meta for one token tile, from global memory: token g's
// block sums of groups 4c .. 4c + 3 (lanes c < 2; zeros past the step) and the scales
// of tokens 2c and 2c + 1 (0 past the step). `p`: the tile's first token's meta of the
// step's first block; rows of `nb` blocks.
__device__ __forceinline__ void kq_meta(const int2* __restrict__ p, size_t nb, int g, int c, int tn, int (&a)[4],
                                        float& dx0, float& dx1) {
    int4 v0 = make_int4(0, 0, 0, 0), v1 = v0;
    if (c < 2 && g < tn) {
        const int4* q = reinterpret_cast<const int4*>(p + (size_t)g * nb + 4 * c);
        v0 = __ldg(q);
        v1 = __ldg(q + 1);
    }
    a[0] = v0.y, a[1] = v0.w, a[2] = v1.y, a[3] = v1.w;
    dx0 = 2 * c < tn ? __int_as_float(__ldg(p + (size_t)(2 * c) * nb).x) : 0.0f;
    dx1 = 2 * c + 1 < tn ? __int_as_float(__ldg(p + (size_t)(2 * c + 1) * nb).x) : 0.0f;
}

// One word set's groups of a step on R row tiles × NT token tiles: b(j, g) gives token
// tile j's input fragment of group g.
template <int F, int R, int NT, class B>
__device__ __forceinline__ void kq_word_set(int (&shi)[R][NT][4], int (&slo)[R][NT][4],
                                            const typename KQ<F>::Head (&hd)[R][2],
                                            const typename KQ<F>::Pair (&pr)[R][2], const KSc<F> (&ks)[R][2],
                                            int w, B b) {
    constexpr int GW = 2 * KQ<F>::PSTEP;
#pragma unroll
    for (int i = 0; i < GW; ++i) {
        const int gi = w * GW + i;
        u32 x[R][2], y[R][2];
        int sc[R][2][2];
#pragma unroll
        for (int r = 0; r < R; ++r) kq_rows<F>(hd[r], pr[r], ks[r], gi, i, x[r], y[r], sc[r]);
#pragma unroll
        for (int j = 0; j < NT; ++j) {
            const uint4 bj = b(j, gi);
#pragma unroll
            for (int r = 0; r < R; ++r) kq_mma<F>(shi[r][j], slo[r][j], x[r], y[r], sc[r], bj);
        }
    }
}

// One step of a warp's R × NT tiles: the rows' heads `hd` (scales `ks`), their word sets
// from `pairs(w, pr)` (called for w = 0, 1, … in order), the tokens' fragments `b(j, g)`:
// the exact sums, then each tile's float step with token tile j's meta from
// `meta(j, a, dx0, dx1)` (kq_meta's).
template <int F, int R, int NT, class P, class B, class Mt>
__device__ __forceinline__ void kq_tile_step(float (&acc)[R][NT][4], const typename KQ<F>::Head (&hd)[R][2],
                                             const KSc<F> (&ks)[R][2], int c, P pairs, B b, Mt meta) {
    int shi[R][NT][4], slo[R][NT][4];
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
        for (int j = 0; j < NT; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) shi[r][j][e] = slo[r][j][e] = 0;
#pragma unroll 1
    for (int w = 0; w < 4 / KQ<F>::PSTEP; ++w) {
        typename KQ<F>::Pair pr[R][2];
        pairs(w, pr);
        kq_word_set<F, R, NT>(shi, slo, hd, pr, ks, w, b);
    }
#pragma unroll
    for (int j = 0; j < NT; ++j) {
        int a[4];
        float dx0, dx1;
        meta(j, a, dx0, dx1);
#pragma unroll
        for (int r = 0; r < R; ++r) kq_finish<F>(acc[r][j], shi[r][j], slo[r][j], ks[r], c, a, dx0, dx1);
    }
}

// Register tiles: a block of 8 warps owns R tiles of 16 rows and TN tokens; warp w takes
// the partition of steps w, w + 8, … and the block adds its warps in index order.
template <int F, int TN, int R>
__device__ __forceinline__ void qmm_k_impl(const u8* __restrict__ W, int rows, int cols,
                                           const uint4* __restrict__ XQ, const int2* __restrict__ XM,
                                           int ntok, float* __restrict__ Y) {
    using K = KQ<F>;
    using Pair = typename K::Pair;
    constexpr int NT = TN / 8, NW = 4 / K::PSTEP;
    __shared__ float red[TC_WARPS][16][TN];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int g = lane >> 2, c = lane & 3;
    const BlockTile bt = block_tile(16 * R, TN, ntok);
    const int j0 = bt.j0, t0 = bt.t0, tn = bt.tn;
    const int steps = cols >> 8, nb = cols >> 5;
    const size_t rb = (size_t)steps * K::BYTES;
    float acc[R][NT][4];
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
        for (int j = 0; j < NT; ++j) acc[r][j][0] = acc[r][j][1] = acc[r][j][2] = acc[r][j][3] = 0.0f;
    for (int s = warp; s < steps; s += TC_WARPS) {
        const u8* blk[R][2];
        typename K::Head hd[R][2];
        Pair cur[R][2];
        KSc<F> ks[R][2];
#pragma unroll
        for (int r = 0; r < R; ++r)
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                const int row = j0 + 16 * r + g + 8 * h;
                blk[r][h] = row < rows ? W + (size_t)row * rb + (size_t)s * K::BYTES : nullptr;
                hd[r][h] = {};
                cur[r][h] = {};
                if (blk[r][h]) {
                    K::template head<LdG>(blk[r][h], c, hd[r][h]);
                    K::template pair<LdG>(blk[r][h], c, 0, cur[r][h]);
                }
                ks[r][h] = KSc<F>::of(hd[r][h]);
            }
        // Word set w, the next one's words put in flight meanwhile.
        auto pairs = [&](int w, Pair (&pr)[R][2]) {
#pragma unroll
            for (int r = 0; r < R; ++r)
#pragma unroll
                for (int h = 0; h < 2; ++h) {
                    pr[r][h] = cur[r][h];
                    cur[r][h] = {};
                    if (w + 1 < NW && blk[r][h]) K::template pair<LdG>(blk[r][h], c, (w + 1) * K::PSTEP, cur[r][h]);
                }
        };
        const uint4* const xq = XQ + (size_t)s * 8 * 4 + c;
        auto b = [&](int j, int gi) {
            const int t = j * 8 + g;
            return t < tn ? __ldg(xq + ((size_t)(t0 + t) * nb + gi) * 4) : make_uint4(0u, 0u, 0u, 0u);
        };
        auto meta = [&](int j, int (&a)[4], float& dx0, float& dx1) {
            kq_meta(XM + (size_t)(t0 + j * 8) * nb + s * 8, nb, g, c, tn - j * 8, a, dx0, dx1);
        };
        kq_tile_step<F, R, NT>(acc, hd, ks, c, pairs, b, meta);
    }
    grid_trigger();  // the main loop is done: the next kernel may be placed
    qq_store<TN, R>(acc, red, Y, rows, j0, t0, tn);
}

// Staged tiles (steps of many tokens): a block's warps share each step's weights and
// inputs, copied to shared memory by cp.async KS_STAGES - 1 steps ahead; the partitions
// are walked one after the other with qmm_k_impl's sums (imma_staged.cu's `staged_walk`:
// the current partition's chain and the running total of the finished ones, in order).

#define KS_STAGES 3

// Bytes of a row's staged block: Q4_K/Q5_K blocks are 16-byte aligned (whole 16-byte
// units); Q6_K's are 2-byte aligned: the 4-byte words covering the block.
template <int F>
__device__ constexpr int ks_row_bytes() { return F == F_Q6K ? 216 : KQ<F>::BYTES; }
static_assert(ks_row_bytes<F_Q4K>() == 144 && ks_row_bytes<F_Q5K>() == 176 && ks_row_bytes<F_Q6K>() == 216,
              "staged row bytes (ops/qmm_staged.rs)");

template <int F, int BM, int BN, int WR>
__device__ __forceinline__ void qmm_ks_impl(const u8* __restrict__ W, int rows, int cols,
                                            const uint4* __restrict__ XQ, const int2* __restrict__ XM,
                                            int ntok, float* __restrict__ Y) {
    using K = KQ<F>;
    using Pair = typename K::Pair;
    constexpr bool Q6 = F == F_Q6K;
    constexpr int RB = ks_row_bytes<F>(), CP = Q6 ? 4 : 16, RU = RB / CP;
    constexpr int WT = TC_WARPS / WR, R = BM / WR / 16, NT = BN / WT / 8;
    static_assert(R >= 1 && NT >= 1 && WR * WT == TC_WARPS, "tile");
    constexpr int THREADS = TC_WARPS * 32;
    // Per stage: BM staged rows, the tokens' 8 blocks ([group][token]), their meta
    // ([token][group]).
    constexpr int XOFF = BM * RB, MOFF = XOFF + BN * 8 * 64, STAGE = MOFF + BN * 8 * 8;
    static_assert(XOFF % 16 == 0 && STAGE % 16 == 0, "stage alignment");
    extern __shared__ uint4 smem[];
    u8* const sm = reinterpret_cast<u8*>(smem);

    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, c = lane & 3;
    const int rbase = (warp % WR) * R * 16, tbase = (warp / WR) * NT * 8;
    const BlockTile bt = block_tile(BM, BN, ntok);
    const int j0 = bt.j0, t0 = bt.t0, tn = bt.tn;
    const int steps = cols >> 8, nb = cols >> 5, q8 = steps / 8, rm = steps % 8;
    const size_t rb = (size_t)steps * K::BYTES;

    auto stage_in = [&](int k) {
        if (k < steps) {
            const int s = staged_step(k, q8, rm);
            u8* const st = sm + (size_t)(k % KS_STAGES) * STAGE;
            for (int u = tid; u < BM * RU; u += THREADS) {
                const int rr = u / RU, w = u % RU;
                const size_t a = (size_t)min(j0 + rr, rows - 1) * rb + (size_t)s * K::BYTES;
                const size_t a0 = a & ~(size_t)(CP - 1);
                // Rows past the matrix and words past the block are zeros.
                const bool ok = j0 + rr < rows && a0 + CP * w < a + K::BYTES;
                cp_async<CP>(st + rr * RB + CP * w, W + (ok ? a0 + CP * w : 0), ok);
            }
            uint4* const xs = reinterpret_cast<uint4*>(st + XOFF);
            for (int u = tid; u < BN * 32; u += THREADS) {
                const int t = u >> 5, w = u & 31;
                const bool ok = t < tn;
                const uint4* src = XQ + ((size_t)(t0 + (ok ? t : 0)) * nb + (size_t)s * 8) * 4 + w;
                cp_async16(xs + ((w >> 2) * BN + t) * 4 + (w & 3), src, ok);
            }
            // Meta: [token][block], 16 bytes (two blocks) per copy.
            int2* const ms = reinterpret_cast<int2*>(st + MOFF);
            for (int u = tid; u < BN * 4; u += THREADS) {
                const int t = u >> 2, w = u & 3;
                const bool ok = t < tn;
                const int2* src = XM + (size_t)(t0 + (ok ? t : 0)) * nb + (size_t)s * 8 + 2 * w;
                cp_async16(ms + t * 8 + 2 * w, src, ok);
            }
        }
        cp_commit();
    };

    // The finished partitions' running total lives in shared memory past the stages
    // (touched once per partition: registers for the sums), one column per thread.
    float* const tot = reinterpret_cast<float*>(sm + (size_t)KS_STAGES * STAGE) + tid;
    auto at = [&](int r, int j, int e) -> float& { return tot[((r * NT + j) * 4 + e) * THREADS]; };
    float acc[R][NT][4];
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
        for (int j = 0; j < NT; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) acc[r][j][e] = 0.0f, at(r, j, e) = -0.0f;

    auto step = [&](int k, int s) {
        const u8* const st = sm + (size_t)(k % KS_STAGES) * STAGE;
        const uint4* const xb = reinterpret_cast<const uint4*>(st + XOFF);
        const int2* const mb = reinterpret_cast<const int2*>(st + MOFF);
        const u8* blk[R][2];
        typename K::Head hd[R][2];
        KSc<F> ks[R][2];
#pragma unroll
        for (int r = 0; r < R; ++r)
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                const int rr = rbase + 16 * r + g + 8 * h;
                // Q6_K: the block starts 0 or 2 bytes into its first staged word.
                const int shift = Q6 ? (int)(((size_t)min(j0 + rr, rows - 1) * rb + (size_t)s * K::BYTES) & 3) : 0;
                blk[r][h] = st + rr * RB + shift;
                K::template head<LdS>(blk[r][h], c, hd[r][h]);
                ks[r][h] = KSc<F>::of(hd[r][h]);
            }
        auto pairs = [&](int w, Pair (&pr)[R][2]) {
#pragma unroll
            for (int r = 0; r < R; ++r)
#pragma unroll
                for (int h = 0; h < 2; ++h) K::template pair<LdS>(blk[r][h], c, w * K::PSTEP, pr[r][h]);
        };
        auto b = [&](int j, int gi) { return xb[(gi * BN + tbase + j * 8 + g) * 4 + c]; };
        // Meta rows of 8 blocks per token: token g's sums of groups 4c.. (c < 2), the
        // scales of tokens 2c, 2c + 1 (zeros past the step: staged so).
        auto meta = [&](int j, int (&a)[4], float& dx0, float& dx1) {
            const int t = tbase + j * 8;
            a[0] = a[1] = a[2] = a[3] = 0;
            if (c < 2) {
                const int4* q = reinterpret_cast<const int4*>(mb + (t + g) * 8 + 4 * c);
                const int4 v0 = q[0], v1 = q[1];
                a[0] = v0.y, a[1] = v0.w, a[2] = v1.y, a[3] = v1.w;
            }
            dx0 = __int_as_float(mb[(t + 2 * c) * 8].x);
            dx1 = __int_as_float(mb[(t + 2 * c + 1) * 8].x);
        };
        kq_tile_step<F, R, NT>(acc, hd, ks, c, pairs, b, meta);
    };
    // The partition's last step: into the total, in index order.
    auto ended = [&]() {
#pragma unroll
        for (int r = 0; r < R; ++r)
#pragma unroll
            for (int j = 0; j < NT; ++j)
#pragma unroll
                for (int e = 0; e < 4; ++e) at(r, j, e) += acc[r][j][e], acc[r][j][e] = 0.0f;
    };
    staged_walk<KS_STAGES>(steps, stage_in, step, ended);
    grid_trigger();  // the main loop is done: the next kernel may be placed
    staged_store<R, NT>(at, steps, Y, rows, j0, rbase, t0, tbase, tn);
}

// Must match QK_TILES and QS_TILES (kernels.rs).
#define LLORCH_KT(NAME, F)                                                                        \
    LLORCH_QQ1(NAME, F, 8, 1, qmm_k_impl) LLORCH_QQ1(NAME, F, 16, 1, qmm_k_impl)                  \
    LLORCH_QQ1(NAME, F, 16, 2, qmm_k_impl) LLORCH_QQ1(NAME, F, 32, 1, qmm_k_impl)                 \
    LLORCH_QQ1(NAME, F, 32, 2, qmm_k_impl) LLORCH_QQ1(NAME, F, 64, 1, qmm_k_impl)                 \
    LLORCH_QS(NAME, F, qmm_ks_impl)

LLORCH_KT(q4_k, F_Q4K)
LLORCH_KT(q5_k, F_Q5K)
LLORCH_KT(q6_k, F_Q6K)
