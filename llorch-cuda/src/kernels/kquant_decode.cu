// Decode products of the k-quants (steps of 1-2 tokens; kquant.cu's arithmetic): dp4a,
// a quad per partition. As qmv.cu: a warp takes R rows; quad q takes steps q, q + 8, …;
// lane c the same columns as lane c of an mma quad. Each lane weights its partial sums
// by the group's scale (exact), the quad adds them at the end of the step.
//
// Two ways to the blocks, the same integers and order (the same bits): `qmv_k_impl`
// loads each quad's words from global memory; `qmv_ks_impl` first copies the warp's
// rows' next eight blocks (one per quad) into its own shared memory with 16-byte
// cp.async units (every warp load whole 512-byte lines), KD_STAGES rounds ahead, and
// the quads read their words there.

// One round of a warp: quad q's step s = 8·round + q of R rows (`blk(r)`: its block,
// read through L; `ok(r)`: the row exists), the tokens' inputs, into the partitions'
// chains acc.
template <int F, int R, int T, class L, class Blk, class Ok>
__device__ __forceinline__ void kd_round(float (&acc)[R][T], Blk blk, Ok ok, int s, int steps, int c,
                                         const uint4* __restrict__ XQ, const int2* __restrict__ XM, int nb,
                                         int ntok) {
    using K = KQ<F>;
    constexpr int NW = 4 / K::PSTEP, GW = 8 / NW;
    const bool has = s < steps;
    typename K::Head hd[R];
    typename K::Pair pr[R][NW];
    uint4 xq[8][T];
    int2 xm[8][T];
#pragma unroll
    for (int r = 0; r < R; ++r) {
        hd[r] = {};
#pragma unroll
        for (int w = 0; w < NW; ++w) pr[r][w] = {};
        if (has && ok(r)) {
            const u8* b = blk(r);
            K::template head<L>(b, c, hd[r]);
#pragma unroll
            for (int w = 0; w < NW; ++w) K::template pair<L>(b, c, w * K::PSTEP, pr[r][w]);
        }
    }
#pragma unroll
    for (int g = 0; g < 8; ++g)
#pragma unroll
        for (int t = 0; t < T; ++t) {
            const int blk8 = s * 8 + g;
            xq[g][t] = make_uint4(0u, 0u, 0u, 0u);
            xm[g][t] = make_int2(0, 0);
            if (has && t < ntok) {
                xq[g][t] = __ldg(XQ + ((size_t)t * nb + blk8) * 4 + c);
                xm[g][t] = __ldg(XM + (size_t)t * nb + blk8);
            }
        }
#pragma unroll
    for (int r = 0; r < R; ++r) {
        const KSc<F> ks = KSc<F>::of(hd[r]);
        int shi[T], slo[T];
#pragma unroll
        for (int t = 0; t < T; ++t) shi[t] = slo[t] = 0;
#pragma unroll
        for (int g = 0; g < 8; ++g) {
            u32 x, y;
            K::codes(hd[r], pr[r][g / GW], g, g % GW, x, y);
            const int sx = ks.sx(g), sy = ks.sy(g);
#pragma unroll
            for (int t = 0; t < T; ++t) {
                const uint4 b = xq[g][t];
                if constexpr (K::K16) {
                    shi[t] += sx * dp4<true, true>(x, b.x, 0) + sy * dp4<true, true>(y, b.y, 0);
                    slo[t] += sx * dp4<true, false>(x, b.z, 0) + sy * dp4<true, false>(y, b.w, 0);
                } else {
                    shi[t] += sx * dp4<false, true>(y, b.y, dp4<false, true>(x, b.x, 0));
                    slo[t] += sx * dp4<false, false>(y, b.w, dp4<false, false>(x, b.z, 0));
                }
            }
        }
#pragma unroll
        for (int t = 0; t < T; ++t) {
            int2 m[8];
#pragma unroll
            for (int g = 0; g < 8; ++g) m[g] = xm[g][t];
            const float v = ks.value(quad_sum(shi[t]), quad_sum(slo[t]), kq_mins<F>(ks, m));
            if (has) acc[r][t] = fmaf(__int_as_float(xm[0][t].x), v, acc[r][t]);
        }
    }
}

template <int F, int R, int T>
__device__ __forceinline__ void qmv_k_impl(QvSeg s0_, QvSeg s1_, QvSeg s2_, int cols,
                                           const uint4* __restrict__ XQ, const int2* __restrict__ XM,
                                           int ntok) {
    using K = KQ<F>;
    const int lane = threadIdx.x & 31, q = lane >> 2, c = lane & 3;
    int wid;
    const QvSeg seg = qv_segment<R>(s0_, s1_, s2_, wid);
    const u8* __restrict__ W = seg.W;
    const int rows = seg.rows, row0 = wid * R;
    const int steps = cols >> 8, nb = cols >> 5;
    const size_t rb = (size_t)steps * K::BYTES;
    if (row0 < rows)
        prefetch_rows(W + (size_t)row0 * rb, rb, min(R, rows - row0), (size_t)min(steps, TC_WARPS) * K::BYTES,
                      lane, 32);
    grid_wait();
    float acc[R][T] = {};
    for (int s0 = 0; s0 < steps; s0 += TC_WARPS) {
        const int s = s0 + q;
        auto blk = [&](int r) { return W + (size_t)(row0 + r) * rb + (size_t)s * K::BYTES; };
        auto ok = [&](int r) { return row0 + r < rows; };
        kd_round<F, R, T, LdG>(acc, blk, ok, s, steps, c, XQ, XM, nb, ntok);
    }
    grid_trigger();  // the main loop is done: the next kernel may be placed
    qv_store<R, T>(acc, seg.Y, rows, row0, ntok);
}

// Rounds of the staged decode in flight, and a row's bytes of one round: eight blocks
// and the 16-byte unit the first one may start inside (ops/qmm_q.rs `kd_smem`).
#define KD_STAGES 3
template <int F>
__device__ constexpr int kd_span() { return 8 * KQ<F>::BYTES + 16; }
static_assert(kd_span<F_Q4K>() == 1168 && kd_span<F_Q5K>() == 1424 && kd_span<F_Q6K>() == 1696,
              "staged decode spans (ops/qmm_q.rs)");

// Needs every matrix 16-byte aligned and a multiple of 16 bytes long (the host checks):
// a round's copy of a row is its blocks' bytes widened to whole 16-byte units, which
// never leave the matrix.
template <int F, int R, int T>
__device__ __forceinline__ void qmv_ks_impl(QvSeg s0_, QvSeg s1_, QvSeg s2_, int cols,
                                            const uint4* __restrict__ XQ, const int2* __restrict__ XM,
                                            int ntok) {
    using K = KQ<F>;
    constexpr int SPAN = kd_span<F>();
    extern __shared__ uint4 smem[];
    const int lane = threadIdx.x & 31, q = lane >> 2, c = lane & 3;
    u8* const sw = reinterpret_cast<u8*>(smem) + (size_t)(threadIdx.x >> 5) * KD_STAGES * R * SPAN;
    int wid;
    const QvSeg seg = qv_segment<R>(s0_, s1_, s2_, wid);
    const u8* __restrict__ W = seg.W;
    const int rows = seg.rows, row0 = wid * R;
    const int steps = cols >> 8, nb = cols >> 5, rounds = (steps + 7) >> 3;
    const size_t rb = (size_t)steps * K::BYTES;
    // Round k of row r starts (a & 15) bytes into its copy.
    auto start = [&](int r, int k) { return (size_t)(row0 + r) * rb + (size_t)k * 8 * K::BYTES; };
    auto stage_in = [&](int k) {
        if (k < rounds) {
            u8* const st = sw + (k % KD_STAGES) * R * SPAN;
            const int n = min(8, steps - 8 * k);
#pragma unroll
            for (int r = 0; r < R; ++r) {
                if (row0 + r >= rows) break;
                const size_t a = start(r, k), a0 = a & ~(size_t)15;
                const int units = (int)((a + (size_t)n * K::BYTES - a0 + 15) >> 4);
                for (int u = lane; u < units; u += 32) cp_async16(st + r * SPAN + 16 * u, W + a0 + 16 * u, true);
            }
        }
        cp_commit();
    };
    // The weights are read-only: the first rounds are asked for before the wait.
#pragma unroll
    for (int k = 0; k < KD_STAGES - 1; ++k) stage_in(k);
    grid_wait();
    float acc[R][T] = {};
    for (int k = 0; k < rounds; ++k) {
        cp_wait<KD_STAGES - 2>();
        __syncwarp();
        // Into the stage of round k - 1, which every lane has finished.
        stage_in(k + KD_STAGES - 1);
        const u8* const st = sw + (k % KD_STAGES) * R * SPAN;
        const int s = 8 * k + q;
        auto blk = [&](int r) { return st + r * SPAN + (int)(start(r, k) & 15) + q * K::BYTES; };
        auto ok = [&](int r) { return row0 + r < rows; };
        kd_round<F, R, T, LdS>(acc, blk, ok, s, steps, c, XQ, XM, nb, ntok);
    }
    grid_trigger();  // the main loop is done: the next kernel may be placed
    qv_store<R, T>(acc, seg.Y, rows, row0, ntok);
}

// Must match QV_SHAPES (kernels.rs).
// The direct and the staged decode kernels (Kernel::QmvQ, QmvS) in every QV_SHAPES shape.
#define LLORCH_KD(NAME, F) LLORCH_QV(NAME, F, qmv_k_impl) LLORCH_QV(ks_##NAME, F, qmv_ks_impl)

LLORCH_KD(q4_k, F_Q4K)
LLORCH_KD(q5_k, F_Q5K)
LLORCH_KD(q6_k, F_Q6K)
