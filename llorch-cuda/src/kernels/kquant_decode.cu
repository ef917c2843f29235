// Decode products of the k-quants (steps of 1-2 tokens; kquant.cu's arithmetic): dp4a,
// a quad per partition. As qmv.cu: a warp takes R rows; quad q takes steps q, q + 8, …; lane c the same
// columns as lane c of an mma quad. Each lane weights its partial sums by the group's
// scale (exact), the quad adds them at the end of the step.
template <int F, int R, int T>
__device__ __forceinline__ void qmv_k_impl(QvSeg s0_, QvSeg s1_, QvSeg s2_, int cols,
                                           const uint4* __restrict__ XQ, const int2* __restrict__ XM,
                                           int ntok) {
    using K = KQ<F>;
    constexpr int NW = 4 / K::PSTEP, GW = 8 / NW;
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
    float acc[R][T];
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
        for (int t = 0; t < T; ++t) acc[r][t] = 0.0f;
    for (int s0 = 0; s0 < steps; s0 += TC_WARPS) {
        const int s = s0 + q;
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
            if (has && row0 + r < rows) {
                const u8* b = W + (size_t)(row0 + r) * rb + (size_t)s * K::BYTES;
                K::template head<LdG>(b, c, hd[r]);
#pragma unroll
                for (int w = 0; w < NW; ++w) K::template pair<LdG>(b, c, w * K::PSTEP, pr[r][w]);
            }
        }
#pragma unroll
        for (int g = 0; g < 8; ++g)
#pragma unroll
            for (int t = 0; t < T; ++t) {
                const int blk = s * 8 + g;
                xq[g][t] = make_uint4(0u, 0u, 0u, 0u);
                xm[g][t] = make_int2(0, 0);
                if (has && t < ntok) {
                    xq[g][t] = __ldg(XQ + ((size_t)t * nb + blk) * 4 + c);
                    xm[g][t] = __ldg(XM + (size_t)t * nb + blk);
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
    grid_trigger();  // the main loop is done: the next kernel may be placed
    qv_store<R, T>(acc, seg.Y, rows, row0, ntok);
}

LLORCH_QV(q4_k, F_Q4K, qmv_k_impl)
LLORCH_QV(q5_k, F_Q5K, qmv_k_impl)
LLORCH_QV(q6_k, F_Q6K, qmv_k_impl)
