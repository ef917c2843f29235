// Products of k-quant weights (Q4_K, Q5_K, Q6_K) with inputs quantized per 256 values:
// the formats and the arithmetic of a step here; the decode kernel (dp4a) in
// kquant_decode.cu, the register and staged tiles in kquant_tiles.cu.
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
