// Products of k-quant weights (Q4_K, Q5_K, Q6_K) with inputs quantized per 256 values:
// the decode kernel (dp4a), the register tiles and the staged tiles, one arithmetic.
//
// A row's step is one GGUF block: 256 columns, eight 32-column groups. Its inputs come
// from `quantize_acts` with 256-value groups (every 32-value block of a super-block
// carries the same scale dx, and its own Σa). Inside a step everything is exact integer
// arithmetic: per group the codes meet the inputs' hi and lo bytes (mma or dp4a) and
// the sums are weighted by the group's integer scale (Q6_K: one per 16 columns):
//   Shi = Σ sc·hi,  Slo = Σ sc·lo,  M = Σ m·Σa (Q4_K/Q5_K mins)
// then one float step per (row, token, block):
//   V = fma(d, fma(256, (float)Shi, (float)Slo), -(dmin·(float)M))   Q4_K, Q5_K
//   V = d · fma(256, (float)Shi, (float)Slo)                           Q6_K
//   acc = fma(dx, V, acc)
// A row's steps are split in 8 partitions (step s to s % 8), each adding its steps in
// order; the result is partition 0 + 1 + … in index order. The integers are exact
// however they are formed, so every kernel below gives the same bits (SYS-0003).
// Bounds: |Shi| ≤ 8·63·32·31·128 < 2^27, |Slo| < 2^28, |M| ≤ 8·63·32·32767 < 2^30;
// Q6_K: 16·128·16·32·255 < 2^29.
//
// Lane c of an mma quad holds columns 4c..4c+3 ("x") and 16+4c..16+4c+3 ("y") of each
// group, for the weights and the inputs alike (imma.cu's layout).

// Word loads of a block's bytes: from global memory (weights: `ldw*`, common.cuh) or
// from a staged copy in shared memory.
struct LdG {
    __device__ static __forceinline__ uint4 w16(const u8* p) { return ldw16(p); }
    __device__ static __forceinline__ u32 w4(const u8* p) { return ldw4(p); }
    __device__ static __forceinline__ u32 w4u(const u8* p) { return ldw32_2(p); }
    __device__ static __forceinline__ u32 w2(const u8* p) { return ldw2(p); }
};
struct LdS {
    __device__ static __forceinline__ uint4 w16(const u8* p) { return *(const uint4*)p; }
    __device__ static __forceinline__ u32 w4(const u8* p) { return *(const u32*)p; }
    __device__ static __forceinline__ u32 w4u(const u8* p) { return ld32_2(p); }
    __device__ static __forceinline__ u32 w2(const u8* p) { return ld16(p); }
};

// Byte k of w, unsigned and signed.
__device__ __forceinline__ int ubyte(u32 w, int k) { return (int)((w >> (8 * k)) & 0xffu); }
__device__ __forceinline__ int sbyte(u32 w, int k) { return (int)(w << (24 - 8 * k)) >> 24; }

// Q4_K/Q5_K head (d, dmin, 12 bytes of 6-bit scales and mins): the scales of groups
// 0-3 and 4-7 and the mins likewise, one byte each.
struct KHead6 {
    u32 sc0, sc1, mn0, mn1;
    float d, dmin;
};
__device__ __forceinline__ KHead6 khead6(uint4 h) {
    KHead6 k;
    k.sc0 = h.y & 0x3F3F3F3Fu;
    k.mn0 = h.z & 0x3F3F3F3Fu;
    k.sc1 = (h.w & 0x0F0F0F0Fu) | ((h.y >> 2) & 0x30303030u);
    k.mn1 = ((h.w >> 4) & 0x0F0F0F0Fu) | ((h.z >> 2) & 0x30303030u);
    k.d = h2f((u16)(h.x & 0xffff));
    k.dmin = h2f((u16)(h.x >> 16));
    return k;
}

template <int F> struct KQ;

// Each format: the words of a lane a step needs whatever the group (`Head`: the scales;
// fetched once per step), those of the groups 2p .. 2p + 2·PSTEP - 1 (`Pair`, p a
// multiple of PSTEP), the codes of group g (the i-th of its pair's groups, i known at
// compile time) from them, and the integer scales (`KSc`).

// Q4_K: 144 bytes: d, dmin, 12 scale bytes, then four 32-byte chunks, chunk p holding
// groups 2p (low nibbles) and 2p + 1 (high nibbles).
template <> struct KQ<F_Q4K> {
    static constexpr int BYTES = 144, PSTEP = 1;
    static constexpr bool MINS = true, K16 = false;
    struct Head {
        uint4 h;
    };
    struct Pair {
        u32 x, y;
    };
    template <class L>
    __device__ static __forceinline__ void head(const u8* b, int, Head& r) {
        r.h = L::w16(b);
    }
    template <class L>
    __device__ static __forceinline__ void pair(const u8* b, int c, int p, Pair& r) {
        r.x = L::w4(b + 16 + 32 * p + 4 * c);
        r.y = L::w4(b + 32 + 32 * p + 4 * c);
    }
    __device__ static __forceinline__ void codes(const Head&, const Pair& r, int, int i, u32& x, u32& y) {
        const int sh = 4 * (i & 1);
        x = (r.x >> sh) & 0x0F0F0F0Fu;
        y = (r.y >> sh) & 0x0F0F0F0Fu;
    }
};

// Q5_K: 176 bytes: the head, 32 bytes of fifth bits (bit g of byte l: column l of
// group g), four chunks of nibbles as Q4_K.
template <> struct KQ<F_Q5K> {
    static constexpr int BYTES = 176, PSTEP = 1;
    static constexpr bool MINS = true, K16 = false;
    struct Head {
        uint4 h;
        u32 qx, qy;
    };
    struct Pair {
        u32 x, y;
    };
    template <class L>
    __device__ static __forceinline__ void head(const u8* b, int c, Head& r) {
        r.h = L::w16(b);
        r.qx = L::w4(b + 16 + 4 * c);
        r.qy = L::w4(b + 32 + 4 * c);
    }
    template <class L>
    __device__ static __forceinline__ void pair(const u8* b, int c, int p, Pair& r) {
        r.x = L::w4(b + 48 + 32 * p + 4 * c);
        r.y = L::w4(b + 64 + 32 * p + 4 * c);
    }
    __device__ static __forceinline__ void codes(const Head& h, const Pair& r, int g, int i, u32& x, u32& y) {
        const int sh = 4 * (i & 1);
        x = ((r.x >> sh) & 0x0F0F0F0Fu) | (((h.qx >> g) & 0x01010101u) << 4);
        y = ((r.y >> sh) & 0x0F0F0F0Fu) | (((h.qy >> g) & 0x01010101u) << 4);
    }
};

// Q6_K: 210 bytes (2-byte aligned): 128 bytes of low nibbles, 64 of high bit pairs, 16
// signed scales (one per 16 columns), d. Group g = 4n + k takes the codes q - 32 as
// signed bytes on two k16 products (x and y halves, scales 2g and 2g + 1); the pairs
// 2n and 2n + 1 read the same words of half n.
template <> struct KQ<F_Q6K> {
    static constexpr int BYTES = 210, PSTEP = 2;
    static constexpr bool MINS = false, K16 = true;
    struct Head {
        u32 s[4], d;
    };
    struct Pair {
        u32 l[4], qx, qy;
    };
    template <class L>
    __device__ static __forceinline__ void head(const u8* b, int, Head& r) {
#pragma unroll
        for (int i = 0; i < 4; ++i) r.s[i] = L::w4u(b + 192 + 4 * i);
        r.d = L::w2(b + 208);
    }
    template <class L>
    __device__ static __forceinline__ void pair(const u8* b, int c, int p, Pair& r) {
        const int n = p >> 1;
#pragma unroll
        for (int i = 0; i < 4; ++i) r.l[i] = L::w4u(b + 64 * n + 16 * i + 4 * c);
        r.qx = L::w4u(b + 128 + 32 * n + 4 * c);
        r.qy = L::w4u(b + 144 + 32 * n + 4 * c);
    }
    __device__ static __forceinline__ void codes(const Head&, const Pair& r, int g, int i, u32& x, u32& y) {
        const int k = g & 3, nib = 4 * (k >> 1), hb = 2 * k;
        const u32 lx = (i & 1) ? r.l[2] : r.l[0], ly = (i & 1) ? r.l[3] : r.l[1];
        x = minus32(((lx >> nib) & 0x0F0F0F0Fu) | (((r.qx >> hb) & 0x03030303u) << 4));
        y = minus32(((ly >> nib) & 0x0F0F0F0Fu) | (((r.qy >> hb) & 0x03030303u) << 4));
    }
};

// A row's scales for one step: per group the integer scale of its x and y halves, its
// min, and the float step (`value`).
template <int F>
struct KSc {
    KHead6 k;
    __device__ static __forceinline__ KSc of(const typename KQ<F>::Head& r) { return {khead6(r.h)}; }
    __device__ __forceinline__ int sx(int g) const { return ubyte(g < 4 ? k.sc0 : k.sc1, g & 3); }
    __device__ __forceinline__ int sy(int g) const { return sx(g); }
    __device__ __forceinline__ int mn(int g) const { return ubyte(g < 4 ? k.mn0 : k.mn1, g & 3); }
    __device__ __forceinline__ float value(int shi, int slo, int m) const {
        return fmaf(k.d, fmaf(256.0f, (float)shi, (float)slo), -(k.dmin * (float)m));
    }
};
template <>
struct KSc<F_Q6K> {
    u32 s0, s1, s2, s3;
    float d;
    __device__ static __forceinline__ KSc of(const KQ<F_Q6K>::Head& r) {
        return {r.s[0], r.s[1], r.s[2], r.s[3], h2f((u16)r.d)};
    }
    // Scale bytes 2g (x) and 2g + 1 (y): word g >> 1.
    __device__ __forceinline__ u32 word(int g) const { return (g & 4) ? ((g & 2) ? s3 : s2) : ((g & 2) ? s1 : s0); }
    __device__ __forceinline__ int sx(int g) const { return sbyte(word(g), (2 * g) & 3); }
    __device__ __forceinline__ int sy(int g) const { return sbyte(word(g), (2 * g + 1) & 3); }
    __device__ __forceinline__ int mn(int) const { return 0; }
    __device__ __forceinline__ float value(int shi, int slo, int) const {
        return d * fmaf(256.0f, (float)shi, (float)slo);
    }
};

// One group of a 16-row × 8-token mma tile: codes x/y of rows g (index 0) and g + 8
// (index 1), their scales sc (rows × x/y halves), the tokens' hi/lo bytes b: the exact
// weighted sums into shi/slo (e: row g + 8·(e >> 1), token 2c + (e & 1)).
template <int F>
__device__ __forceinline__ void kq_mma(int (&shi)[4], int (&slo)[4], const u32 (&x)[2], const u32 (&y)[2],
                                       const int (&sc)[2][2], uint4 b) {
    if constexpr (KQ<F>::K16) {
        int hx[4] = {0, 0, 0, 0}, lx[4] = {0, 0, 0, 0}, hy[4] = {0, 0, 0, 0}, ly[4] = {0, 0, 0, 0};
        imma16<true>(hx, x[0], x[1], b.x);
        imma16<false>(lx, x[0], x[1], b.z);
        imma16<true>(hy, y[0], y[1], b.y);
        imma16<false>(ly, y[0], y[1], b.w);
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const int h = e >> 1;
            shi[e] += sc[h][0] * hx[e] + sc[h][1] * hy[e];
            slo[e] += sc[h][0] * lx[e] + sc[h][1] * ly[e];
        }
    } else {
        int hi[4] = {0, 0, 0, 0}, lo[4] = {0, 0, 0, 0};
        imma32<false, true>(hi, x[0], x[1], y[0], y[1], b.x, b.y);
        imma32<false, false>(lo, x[0], x[1], y[0], y[1], b.z, b.w);
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            shi[e] += sc[e >> 1][0] * hi[e];
            slo[e] += sc[e >> 1][0] * lo[e];
        }
    }
}

// The codes and scales of group g of a tile's two rows (index 0: row g, 1: g + 8).
template <int F>
__device__ __forceinline__ void kq_rows(const typename KQ<F>::Head (&hd)[2], const typename KQ<F>::Pair (&pr)[2],
                                        const KSc<F> (&ks)[2], int g, int i, u32 (&x)[2], u32 (&y)[2],
                                        int (&sc)[2][2]) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        KQ<F>::codes(hd[h], pr[h], g, i, x[h], y[h]);
        sc[h][0] = ks[h].sx(g);
        sc[h][1] = ks[h].sy(g);
    }
}

// The mins term of a row (scales ks) and a token whose 8 blocks' meta are m[0..7].
template <int F>
__device__ __forceinline__ int kq_mins(const KSc<F>& ks, const int2 (&m)[8]) {
    int s = 0;
    if constexpr (KQ<F>::MINS) {
#pragma unroll
        for (int g = 0; g < 8; ++g) s += ks.mn(g) * m[g].y;
    }
    return s;
}

// ---- Decode products (steps of 1-2 tokens): dp4a, a quad per partition ----
// As qmv.cu: a warp takes R rows; quad q takes steps q, q + 8, …; lane c the same
// columns as lane c of an mma quad. Each lane weights its partial sums by the group's
// scale (exact), the quad adds them at the end of the step.
template <int F, int R, int T>
__device__ __forceinline__ void qmv_k_impl(QvSeg s0_, QvSeg s1_, QvSeg s2_, int cols,
                                           const uint4* __restrict__ XQ, const int2* __restrict__ XM,
                                           int ntok) {
    using K = KQ<F>;
    constexpr int NW = 4 / K::PSTEP, GW = 8 / NW;
    const int lane = threadIdx.x & 31, q = lane >> 2, c = lane & 3;
    int wid = (int)((blockIdx.x * blockDim.x + threadIdx.x) >> 5);
    const int w0 = (s0_.rows + R - 1) / R, w1 = (s1_.rows + R - 1) / R;
    const QvSeg seg = wid < w0 ? s0_ : (wid < w0 + w1 ? s1_ : s2_);
    wid -= wid < w0 ? 0 : (wid < w0 + w1 ? w0 : w0 + w1);
    const u8* __restrict__ W = seg.W;
    float* __restrict__ Y = seg.Y;
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
    // Partitions in index order.
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
        for (int t = 0; t < T; ++t) {
            float sum = __shfl_sync(FULL_MASK, acc[r][t], 0);
#pragma unroll
            for (int k = 1; k < TC_WARPS; ++k) sum += __shfl_sync(FULL_MASK, acc[r][t], 4 * k);
            if (lane == 0 && row0 + r < rows && t < ntok) Y[(size_t)t * rows + row0 + r] = sum;
        }
}

// ---- Tiles on tensor cores: per step, the groups of one word set at a time (their
// weights' words, then their tokens' input fragments), the integer sums weighted as
// they come; then the step's float fma per (row, token) ----

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

// Register tiles: a block of 8 warps owns R tiles of 16 rows and TN tokens; warp w takes
// the partition of steps w, w + 8, … and the block adds its warps in index order.
template <int F, int TN, int R>
__device__ __forceinline__ void qmm_k_impl(const u8* __restrict__ W, int rows, int cols,
                                           const uint4* __restrict__ XQ, const int2* __restrict__ XM,
                                           int ntok, float* __restrict__ Y) {
    using K = KQ<F>;
    constexpr int NT = TN / 8, NW = 4 / K::PSTEP;
    __shared__ float red[TC_WARPS][16][TN];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int g = lane >> 2, c = lane & 3;
    const int tiles = (ntok + TN - 1) / TN;
    const int j0 = (int)(blockIdx.x / tiles) * 16 * R;
    const int t0 = (int)(blockIdx.x % tiles) * TN;
    const int tn = min(TN, ntok - t0);
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
        typename K::Pair pr[R][2];
        KSc<F> ks[R][2];
#pragma unroll
        for (int r = 0; r < R; ++r)
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                const int row = j0 + 16 * r + g + 8 * h;
                blk[r][h] = row < rows ? W + (size_t)row * rb + (size_t)s * K::BYTES : nullptr;
                hd[r][h] = {};
                pr[r][h] = {};
                if (blk[r][h]) {
                    K::template head<LdG>(blk[r][h], c, hd[r][h]);
                    K::template pair<LdG>(blk[r][h], c, 0, pr[r][h]);
                }
                ks[r][h] = KSc<F>::of(hd[r][h]);
            }
        int shi[R][NT][4], slo[R][NT][4];
#pragma unroll
        for (int r = 0; r < R; ++r)
#pragma unroll
            for (int j = 0; j < NT; ++j)
#pragma unroll
                for (int e = 0; e < 4; ++e) shi[r][j][e] = slo[r][j][e] = 0;
        const uint4* const xq = XQ + (size_t)s * 8 * 4 + c;
        auto b = [&](int j, int gi) {
            const int t = j * 8 + g;
            return t < tn ? __ldg(xq + ((size_t)(t0 + t) * nb + gi) * 4) : make_uint4(0u, 0u, 0u, 0u);
        };
#pragma unroll 1
        for (int w = 0; w < NW; ++w) {
            // The next word set's words in flight meanwhile.
            typename K::Pair nx[R][2];
#pragma unroll
            for (int r = 0; r < R; ++r)
#pragma unroll
                for (int h = 0; h < 2; ++h) {
                    nx[r][h] = {};
                    if (w + 1 < NW && blk[r][h]) K::template pair<LdG>(blk[r][h], c, (w + 1) * K::PSTEP, nx[r][h]);
                }
            kq_word_set<F, R, NT>(shi, slo, hd, pr, ks, w, b);
#pragma unroll
            for (int r = 0; r < R; ++r) pr[r][0] = nx[r][0], pr[r][1] = nx[r][1];
        }
#pragma unroll
        for (int j = 0; j < NT; ++j) {
            int a[4];
            float dx0, dx1;
            kq_meta(XM + (size_t)(t0 + j * 8) * nb + s * 8, nb, g, c, tn - j * 8, a, dx0, dx1);
#pragma unroll
            for (int r = 0; r < R; ++r) kq_finish<F>(acc[r][j], shi[r][j], slo[r][j], ks[r], c, a, dx0, dx1);
        }
    }
    grid_trigger();  // the main loop is done: the next kernel may be placed
#pragma unroll
    for (int r = 0; r < R; ++r) {
        if (r > 0) __syncthreads();
#pragma unroll
        for (int j = 0; j < NT; ++j) {
            red[warp][g][j * 8 + 2 * c] = acc[r][j][0];
            red[warp][g][j * 8 + 2 * c + 1] = acc[r][j][1];
            red[warp][g + 8][j * 8 + 2 * c] = acc[r][j][2];
            red[warp][g + 8][j * 8 + 2 * c + 1] = acc[r][j][3];
        }
        __syncthreads();
        const int jr = j0 + 16 * r;
        for (int i = threadIdx.x; i < 16 * TN; i += blockDim.x) {
            const int rr = i / TN, t = i % TN;
            if (jr + rr < rows && t < tn) {
                float v = red[0][rr][t];
#pragma unroll
                for (int k = 1; k < TC_WARPS; ++k) v += red[k][rr][t];
                Y[(size_t)(t0 + t) * rows + jr + rr] = v;
            }
        }
    }
}

// Staged tiles (steps of many tokens): a block's warps share each step's weights and
// inputs, copied to shared memory by cp.async KS_STAGES - 1 steps ahead; the partitions
// are walked one after the other with qmm_k_impl's sums (imma_staged.cu's scheme: the
// current partition's chain and the running total of the finished ones, in order).

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
    constexpr bool Q6 = F == F_Q6K;
    constexpr int RB = ks_row_bytes<F>(), CP = Q6 ? 4 : 16, RU = RB / CP, NW = 4 / K::PSTEP;
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
    const int tiles = (ntok + BN - 1) / BN;
    const int j0 = (int)(blockIdx.x / tiles) * BM, t0 = (int)(blockIdx.x % tiles) * BN;
    const int tn = min(BN, ntok - t0);
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
    float acc[R][NT][4];
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
        for (int j = 0; j < NT; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) acc[r][j][e] = 0.0f, tot[((r * NT + j) * 4 + e) * THREADS] = -0.0f;

#pragma unroll
    for (int k = 0; k < KS_STAGES - 1; ++k) stage_in(k);
    int p = 0, left = q8 + (0 < rm);
    for (int k = 0; k < steps; ++k) {
        cp_wait<KS_STAGES - 2>();
        __syncthreads();
        // The stage read by step k - 1, which every thread has finished.
        stage_in(k + KS_STAGES - 1);
        const int s = staged_step(k, q8, rm);
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
        int shi[R][NT][4], slo[R][NT][4];
#pragma unroll
        for (int r = 0; r < R; ++r)
#pragma unroll
            for (int j = 0; j < NT; ++j)
#pragma unroll
                for (int e = 0; e < 4; ++e) shi[r][j][e] = slo[r][j][e] = 0;
        auto b = [&](int j, int gi) { return xb[(gi * BN + tbase + j * 8 + g) * 4 + c]; };
#pragma unroll 1
        for (int w = 0; w < NW; ++w) {
            typename K::Pair pr[R][2];
#pragma unroll
            for (int r = 0; r < R; ++r)
#pragma unroll
                for (int h = 0; h < 2; ++h) K::template pair<LdS>(blk[r][h], c, w * K::PSTEP, pr[r][h]);
            kq_word_set<F, R, NT>(shi, slo, hd, pr, ks, w, b);
        }
#pragma unroll
        for (int j = 0; j < NT; ++j) {
            // Meta rows of 8 blocks per token: token g's sums of groups 4c.. (c < 2),
            // the scales of tokens 2c, 2c + 1 (zeros past the step: staged so).
            const int t = tbase + j * 8;
            int a[4] = {0, 0, 0, 0};
            if (c < 2) {
                const int4* q = reinterpret_cast<const int4*>(mb + (t + g) * 8 + 4 * c);
                const int4 v0 = q[0], v1 = q[1];
                a[0] = v0.y, a[1] = v0.w, a[2] = v1.y, a[3] = v1.w;
            }
            const float dx0 = __int_as_float(mb[(t + 2 * c) * 8].x), dx1 = __int_as_float(mb[(t + 2 * c + 1) * 8].x);
#pragma unroll
            for (int r = 0; r < R; ++r) kq_finish<F>(acc[r][j], shi[r][j], slo[r][j], ks[r], c, a, dx0, dx1);
        }
        if (--left == 0) {  // the partition's last step: into the total, in index order
#pragma unroll
            for (int r = 0; r < R; ++r)
#pragma unroll
                for (int j = 0; j < NT; ++j)
#pragma unroll
                    for (int e = 0; e < 4; ++e) {
                        tot[((r * NT + j) * 4 + e) * THREADS] += acc[r][j][e];
                        acc[r][j][e] = 0.0f;
                    }
            ++p;
            left = q8 + (p < rm);
        }
    }
    grid_trigger();  // the main loop is done: the next kernel may be placed
    // The register tiles add their empty partitions' zeros too (-0 becomes +0).
    const float pad = steps < TC_WARPS ? 0.0f : -0.0f;
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
        for (int j = 0; j < NT; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int row = j0 + rbase + 16 * r + g + 8 * (e >> 1);
                const int t = tbase + j * 8 + 2 * c + (e & 1);
                if (row < rows && t < tn)
                    Y[(size_t)(t0 + t) * rows + row] = tot[((r * NT + j) * 4 + e) * THREADS] + pad;
            }
}

#define LLORCH_KV1(NAME, F, R, T)                                                                 \
    extern "C" __global__ void __launch_bounds__(QV_THREADS)                                      \
        qmv_q_##NAME##_r##R##_t##T(const u8* W0, float* Y0, int rows0, const u8* W1, float* Y1,   \
                                   int rows1, const u8* W2, float* Y2, int rows2, int cols,       \
                                   const uint4* XQ, const int2* XM, int ntok) {                   \
        qmv_k_impl<F, R, T>({W0, Y0, rows0}, {W1, Y1, rows1}, {W2, Y2, rows2}, cols, XQ, XM, ntok); \
    }
#define LLORCH_KQ1(NAME, F, TN, R)                                                                \
    extern "C" __global__ void __launch_bounds__(TC_WARPS * 32)                                   \
        qmm_q_##NAME##_n##TN##_r##R(const u8* W, int rows, int cols, const uint4* XQ,             \
                                    const int2* XM, int ntok, float* Y) {                         \
        grid_wait();                                                                              \
        qmm_k_impl<F, TN, R>(W, rows, cols, XQ, XM, ntok, Y);                                     \
    }
#define LLORCH_KS1(NAME, F, BM, BN, WR)                                                           \
    extern "C" __global__ void __launch_bounds__(TC_WARPS * 32)                                   \
        qmm_s_##NAME##_m##BM##_n##BN(const u8* W, int rows, int cols, const uint4* XQ,            \
                                     const int2* XM, int ntok, float* Y) {                        \
        grid_wait();                                                                              \
        qmm_ks_impl<F, BM, BN, WR>(W, rows, cols, XQ, XM, ntok, Y);                               \
    }
// Must match QV_SHAPES, QK_TILES and QS_TILES (kernels.rs).
#define LLORCH_K(NAME, F)                                                                         \
    LLORCH_KV1(NAME, F, 1, 1) LLORCH_KV1(NAME, F, 2, 1) LLORCH_KV1(NAME, F, 4, 1)                 \
    LLORCH_KV1(NAME, F, 1, 2) LLORCH_KV1(NAME, F, 2, 2)                                           \
    LLORCH_KQ1(NAME, F, 8, 1) LLORCH_KQ1(NAME, F, 16, 1) LLORCH_KQ1(NAME, F, 16, 2)               \
    LLORCH_KQ1(NAME, F, 32, 1) LLORCH_KQ1(NAME, F, 32, 2) LLORCH_KQ1(NAME, F, 64, 1)              \
    LLORCH_KS1(NAME, F, 64, 64, 2) LLORCH_KS1(NAME, F, 128, 64, 4)

LLORCH_K(q4_k, F_Q4K)
LLORCH_K(q5_k, F_Q5K)
LLORCH_K(q6_k, F_Q6K)
