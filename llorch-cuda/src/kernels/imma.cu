// Integer tensor-core product for block-quantized weights.
//
// Inputs are quantized per token to 16-bit integers (`quantize_acts`: scale dx =
// max|x| / 32767 over a group of 32 columns, or of 256 for the k-quants (kquant.cu),
// a = round(x / dx)), stored per 32-column block as a = 256·hi + lo (hi a signed byte,
// lo an unsigned one). The weights' integer codes meet hi and lo on mma.sync m16n8k32,
// giving each block's integer dot product exactly; the block's float scales then apply
// once per (row, token, block). Integer sums are exact, so the only rounding order is
// the float one below, which depends on nothing but the row and the token (SYS-0003).
//
// Layout of a token's quantized block (64 bytes): lane c of an mma quad reads the
// 16 bytes at 16c: hi of columns 4c..4c+3, hi of 16+4c..16+4c+3, then lo of the same.
// That is the mma operands' natural order: a thread holds columns 4c..4c+3 ("x") and
// 16+4c..16+4c+3 ("y") of every 32-column block, for the weights and the tokens alike.
// Meta per block: (dx as bits, Σa); the blocks of a 256-column group share dx.
#define QA_RANGE 32767.0f

// Whether x is a NaN or an infinity (a block holding one is bad: its scale is NaN, its
// codes 0, so the NaN propagates as in f32).
__device__ __forceinline__ bool quant_bad(float x) { return !(fabsf(x) <= __int_as_float(0x7f7fffff)); }

// The reciprocal step of a block whose largest |value| is amax.
__device__ __forceinline__ float quant_inv(float amax) { return amax > 0.0f ? QA_RANGE / amax : 0.0f; }

// The code of x in a block whose largest |value| is amax (id = quant_inv(amax)).
__device__ __forceinline__ int quant_code(float x, float amax, float id, bool bad) {
    // Blocks of tiny values (amax below ~1e-34, where 32767 / amax overflows) divide first.
    const float t = id <= __int_as_float(0x7f7fffff) ? x * id : x / amax * QA_RANGE;
    return bad ? 0 : max(-32767, min(32767, __float2int_rn(t)));
}

// Stores code a of column col (0..31) of block blk, in the layout above.
__device__ __forceinline__ void quant_store(u8* __restrict__ Q, size_t blk, int col, int a) {
    const int half = col >> 4, c = (col & 15) >> 2, k = col & 3;
    u8* q = Q + blk * 64 + 16 * c + 4 * half + k;
    q[0] = (u8)((a >> 8) & 0xff);
    q[8] = (u8)(a & 0xff);
}

// A block's meta: (dx as bits, Σa).
__device__ __forceinline__ int2 quant_meta(float amax, bool bad, int sum) {
    return make_int2(__float_as_int(bad ? __int_as_float(0x7fc00000) : amax / QA_RANGE), sum);
}

// A value's quantization key: |x| as bits (non-negative floats order as their bits), or
// all ones for a NaN or an infinity, which marks its group bad. A group's key is the
// max of its values' keys.
#define QKEY_BAD 0xffffffffu
__device__ __forceinline__ u32 quant_key(float x) { return quant_bad(x) ? QKEY_BAD : __float_as_uint(fabsf(x)); }
// The key of a block held by a whole warp (lane i: column i).
__device__ __forceinline__ u32 block_key(float x) { return __reduce_max_sync(FULL_MASK, quant_key(x)); }

// Quantizes block `blk` (32 values, one per lane of a whole warp, lane i holding
// column i) into Q/M with its group's key. Every lane of the warp must call it.
__device__ __forceinline__ void quant_block_k(float x, u32 key, u8* __restrict__ Q, int2* __restrict__ M,
                                              size_t blk) {
    const int lane = threadIdx.x & 31;
    const bool bad = key == QKEY_BAD;
    const float amax = bad ? 0.0f : __uint_as_float(key);
    const int a = quant_code(x, amax, quant_inv(amax), bad);
    const int s = __reduce_add_sync(FULL_MASK, a);
    quant_store(Q, blk, lane, a);
    if (lane == 0) M[blk] = quant_meta(amax, bad, s);
}

// The same for a block that is its own group (32 columns).
__device__ __forceinline__ void quant_block(float x, u8* __restrict__ Q, int2* __restrict__ M, size_t blk) {
    quant_block_k(x, block_key(x), Q, M, blk);
}

// Rows of inputs to quantized blocks: one warp per group of `qg` (32 or 256) columns.
extern "C" __global__ void quantize_acts(const float* __restrict__ X, int ntok, int cols,
                                         u8* __restrict__ Q, int2* __restrict__ M, int qg) { grid_start();
    const int nb = cols >> 5, lane = threadIdx.x & 31, per = qg >> 5;
    const long wid = ((long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const int groups = cols / qg;
    if (wid >= (long)ntok * groups) return;
    const int t = (int)(wid / groups), b0 = (int)(wid % groups) * per;
    const float* x = X + (size_t)t * cols + b0 * 32 + lane;
    if (per == 1) {
        quant_block(x[0], Q, M, (size_t)t * nb + b0);
        return;
    }
    float v[8];
    u32 key = 0;
#pragma unroll
    for (int k = 0; k < 8; ++k) key = max(key, quant_key(v[k] = x[32 * k]));
    key = __reduce_max_sync(FULL_MASK, key);
#pragma unroll
    for (int k = 0; k < 8; ++k) quant_block_k(v[k], key, Q, M, (size_t)t * nb + b0 + k);
}

// C += A·B with 8-bit A (`AS`: signed) and 8-bit B (`BS`: signed), int32 sums.
template <bool AS, bool BS>
__device__ __forceinline__ void imma32(int* d, u32 a0, u32 a1, u32 a2, u32 a3, u32 b0, u32 b1) {
#define LLORCH_IMMA32(T)                                                                      \
    asm volatile("mma.sync.aligned.m16n8k32.row.col.s32." T ".s32 {%0,%1,%2,%3}, "          \
                 "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"                                   \
                 : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])                          \
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1))
    if constexpr (AS && BS) LLORCH_IMMA32("s8.s8");
    else if constexpr (AS) LLORCH_IMMA32("s8.u8");
    else if constexpr (BS) LLORCH_IMMA32("u8.s8");
    else LLORCH_IMMA32("u8.u8");
#undef LLORCH_IMMA32
}

template <bool BS>
__device__ __forceinline__ void imma16(int* d, u32 a0, u32 a1, u32 b0) {
    if constexpr (BS)
        asm volatile("mma.sync.aligned.m16n8k16.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5}, {%6}, {%0,%1,%2,%3};"
                     : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
                     : "r"(a0), "r"(a1), "r"(b0));
    else
        asm volatile("mma.sync.aligned.m16n8k16.row.col.s32.s8.u8.s32 {%0,%1,%2,%3}, {%4,%5}, {%6}, {%0,%1,%2,%3};"
                     : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
                     : "r"(a0), "r"(a1), "r"(b0));
}

__device__ __forceinline__ u32 ld32_2(const u8* p) {  // a 2-byte aligned 32-bit load
    return (u32)ld16(p) | ((u32)ld16(p + 2) << 16);
}
// The same for weights in global memory (`ldw2`, common.cuh).
__device__ __forceinline__ u32 ldw32_2(const u8* p) { return (u32)ldw2(p) | ((u32)ldw2(p + 2) << 16); }
// Bits 0-3 of b to bit 0 of bytes 0-3.
__device__ __forceinline__ u32 spread4(u32 b) { return (b * 0x00204081u) & 0x01010101u; }
// Byte-wise q - 32 for bytes below 64 (two's complement bytes).
__device__ __forceinline__ u32 minus32(u32 v) { return ((v | 0x80808080u) - 0x20202020u) ^ 0x80808080u; }

// Per format: SPAN columns per step (whole blocks), the raw words a thread loads for
// one row and step, the codes ("x", "y") of each 32-column group g of the step, and
// the float scales of that group. `value` turns the group's exact integer sum into
// the row's contribution per unit of dx.
//
// `load` reads the lane's words of a step from a row in global memory (qmm_q, qmv_q).
// For copies staged in shared memory (imma_staged.cu) a step's bytes in a row are NR
// ranges (`off`, `len`: row-relative), copied in CP-byte units from each range's
// CP-aligned start (`units` of them at most), and `read` takes the same words from
// them through `p(i)`, the address of range i's first byte. (`load` keeps its own
// address arithmetic: read through global pointers it made slower decode code; the
// staged kernels' tests compare every format's bits with qmm_q's.)
struct Sc { float a, b; };

// Formats with a per-block minimum: contribution a·Σqa + b·Σa.
struct WithMin {
    __device__ static __forceinline__ float value(Sc s, int i, int asum) {
        return fmaf(s.a, (float)i, s.b * (float)asum);
    }
};
// The scale and min of Q4_1/Q5_1 (two halves of one word).
__device__ __forceinline__ Sc dm_scales(u32 dm) { return {h2f((u16)(dm & 0xffff)), h2f((u16)(dm >> 16))}; }
// Codes of Q5_0/Q5_1: lane c's x/y columns are 4c.. and 16+4c..: their fifth bits are
// qh bits 4c.. and 16+4c...
__device__ __forceinline__ void codes5(u32 v, u32 qh, int c, u32& x, u32& y) {
    x = (v & 0x0F0F0F0Fu) | (spread4((qh >> (4 * c)) & 0xFu) << 4);
    y = ((v >> 4) & 0x0F0F0F0Fu) | (spread4((qh >> (16 + 4 * c)) & 0xFu) << 4);
}

template <int F> struct QI;

template <> struct QI<F_Q8_0> {
    static constexpr int SPAN = 32;
    static constexpr bool SIGNED = true;
    struct Raw { u32 d, x, y; };
    static constexpr int NR = 1, CP = 4;
    __device__ static constexpr int units(int) { return 9; }
    __device__ static __forceinline__ int off(int s, int) { return s * 34; }
    __device__ static __forceinline__ int len(int) { return 34; }
    template <class P>
    __device__ static __forceinline__ void read(P p, int, int c, Raw& r) {
        const u8* b = p(0);
        r.d = ld16(b);
        r.x = ld32_2(b + 2 + 4 * c);
        r.y = ld32_2(b + 18 + 4 * c);
    }
    __device__ static __forceinline__ void load(const u8* row, int s, int c, Raw& r) {
        const u8* b = row + (size_t)s * 34;
        r.d = ldw2(b);
        r.x = ldw32_2(b + 2 + 4 * c);
        r.y = ldw32_2(b + 18 + 4 * c);
    }
    __device__ static __forceinline__ void codes(const Raw& r, int, u32& x, u32& y) { x = r.x; y = r.y; }
    __device__ static __forceinline__ Sc scales(const Raw& r, int) { return {h2f((u16)r.d), 0.0f}; }
    __device__ static __forceinline__ float value(Sc s, int i, int) { return s.a * (float)i; }
};

template <> struct QI<F_Q4_0> {
    static constexpr int SPAN = 32;
    static constexpr bool SIGNED = false;
    struct Raw { u32 d, v; };
    static constexpr int NR = 1, CP = 4;
    __device__ static constexpr int units(int) { return 5; }
    __device__ static __forceinline__ int off(int s, int) { return s * 18; }
    __device__ static __forceinline__ int len(int) { return 18; }
    template <class P>
    __device__ static __forceinline__ void read(P p, int, int c, Raw& r) {
        const u8* b = p(0);
        r.d = ld16(b);
        r.v = ld32_2(b + 2 + 4 * c);
    }
    __device__ static __forceinline__ void load(const u8* row, int s, int c, Raw& r) {
        const u8* b = row + (size_t)s * 18;
        r.d = ldw2(b);
        r.v = ldw32_2(b + 2 + 4 * c);
    }
    __device__ static __forceinline__ void codes(const Raw& r, int, u32& x, u32& y) {
        x = r.v & 0x0F0F0F0Fu;
        y = (r.v >> 4) & 0x0F0F0F0Fu;
    }
    __device__ static __forceinline__ Sc scales(const Raw& r, int) { return {h2f((u16)r.d), 0.0f}; }
    __device__ static __forceinline__ float value(Sc s, int i, int asum) { return s.a * (float)(i - 8 * asum); }
};

template <> struct QI<F_Q4_1> : WithMin {
    static constexpr int SPAN = 32;
    static constexpr bool SIGNED = false;
    struct Raw { u32 dm, v; };
    static constexpr int NR = 1, CP = 4;
    __device__ static constexpr int units(int) { return 5; }
    __device__ static __forceinline__ int off(int s, int) { return s * 20; }
    __device__ static __forceinline__ int len(int) { return 20; }
    template <class P>
    __device__ static __forceinline__ void read(P p, int, int c, Raw& r) {
        const u8* b = p(0);
        r.dm = *(const u32*)b;
        r.v = *(const u32*)(b + 4 + 4 * c);
    }
    __device__ static __forceinline__ void load(const u8* row, int s, int c, Raw& r) {
        const u8* b = row + (size_t)s * 20;
        r.dm = ldw4(b);
        r.v = ldw4(b + 4 + 4 * c);
    }
    __device__ static __forceinline__ void codes(const Raw& r, int, u32& x, u32& y) {
        x = r.v & 0x0F0F0F0Fu;
        y = (r.v >> 4) & 0x0F0F0F0Fu;
    }
    __device__ static __forceinline__ Sc scales(const Raw& r, int) { return dm_scales(r.dm); }
};

template <> struct QI<F_Q5_0> {
    static constexpr int SPAN = 32;
    static constexpr bool SIGNED = false;
    struct Raw { u32 d, qh, v; };
    static constexpr int NR = 1, CP = 4;
    __device__ static constexpr int units(int) { return 6; }
    __device__ static __forceinline__ int off(int s, int) { return s * 22; }
    __device__ static __forceinline__ int len(int) { return 22; }
    template <class P>
    __device__ static __forceinline__ void read(P p, int, int c, Raw& r) {
        const u8* b = p(0);
        r.d = ld16(b);
        r.qh = ld32_2(b + 2);
        r.v = ld32_2(b + 6 + 4 * c);
    }
    __device__ static __forceinline__ void load(const u8* row, int s, int c, Raw& r) {
        const u8* b = row + (size_t)s * 22;
        r.d = ldw2(b);
        r.qh = ldw32_2(b + 2);
        r.v = ldw32_2(b + 6 + 4 * c);
    }
    __device__ static __forceinline__ void codes(const Raw& r, int, u32& x, u32& y, int c) {
        codes5(r.v, r.qh, c, x, y);
    }
    __device__ static __forceinline__ Sc scales(const Raw& r, int) { return {h2f((u16)r.d), 0.0f}; }
    __device__ static __forceinline__ float value(Sc s, int i, int asum) { return s.a * (float)(i - 16 * asum); }
};

template <> struct QI<F_Q5_1> : WithMin {
    static constexpr int SPAN = 32;
    static constexpr bool SIGNED = false;
    struct Raw { u32 dm, qh, v; };
    static constexpr int NR = 1, CP = 4;
    __device__ static constexpr int units(int) { return 6; }
    __device__ static __forceinline__ int off(int s, int) { return s * 24; }
    __device__ static __forceinline__ int len(int) { return 24; }
    template <class P>
    __device__ static __forceinline__ void read(P p, int, int c, Raw& r) {
        const u8* b = p(0);
        r.dm = *(const u32*)b;
        r.qh = *(const u32*)(b + 4);
        r.v = *(const u32*)(b + 8 + 4 * c);
    }
    __device__ static __forceinline__ void load(const u8* row, int s, int c, Raw& r) {
        const u8* b = row + (size_t)s * 24;
        r.dm = ldw4(b);
        r.qh = ldw4(b + 4);
        r.v = ldw4(b + 8 + 4 * c);
    }
    __device__ static __forceinline__ void codes(const Raw& r, int, u32& x, u32& y, int c) {
        codes5(r.v, r.qh, c, x, y);
    }
    __device__ static __forceinline__ Sc scales(const Raw& r, int) { return dm_scales(r.dm); }
};

// Formats whose codes need the lane index (the fifth bits of Q5_0/Q5_1).
template <int F> struct NeedsLane { static constexpr bool V = false; };
template <> struct NeedsLane<F_Q5_0> { static constexpr bool V = true; };
template <> struct NeedsLane<F_Q5_1> { static constexpr bool V = true; };

template <int F>
__device__ __forceinline__ void qi_codes(const typename QI<F>::Raw& r, int g, u32& x, u32& y, int c) {
    if constexpr (NeedsLane<F>::V) QI<F>::codes(r, g, x, y, c);
    else QI<F>::codes(r, g, x, y);
}

// One 32-column group of a 16-row × 8-token mma tile: the exact integer sums of the
// rows' codes (x of rows g, y of rows g + 8; sc their scales) with the tokens' hi/lo
// bytes b, then the group's step of the lane's four fma chains (tokens 2c and 2c + 1,
// meta m0/m1). qmm_q's arithmetic; the staged kernels call the same.
template <int F>
__device__ __forceinline__ void qq_group(float (&acc)[4], u32 x0, u32 x1, u32 y0, u32 y1,
                                         const Sc (&sc)[2], uint4 b, int2 m0, int2 m1) {
    using I = QI<F>;
    int hi[4] = {0, 0, 0, 0}, lo[4] = {0, 0, 0, 0};
    imma32<I::SIGNED, true>(hi, x0, x1, y0, y1, b.x, b.y);
    imma32<I::SIGNED, false>(lo, x0, x1, y0, y1, b.z, b.w);
#pragma unroll
    for (int e = 0; e < 4; ++e) {
        const int2 m = (e & 1) ? m1 : m0;
        const float v = I::value(sc[e >> 1], hi[e] * 256 + lo[e], m.y);
        acc[e] = fmaf(__int_as_float(m.x), v, acc[e]);
    }
}

// A product block's tile: its first row j0 and token t0 (blocks walk the token tiles
// first), and the tokens present there, tn.
struct BlockTile {
    int j0, t0, tn;
};
__device__ __forceinline__ BlockTile block_tile(int rows_per_block, int tokens_per_block, int ntok) {
    const int tiles = (ntok + tokens_per_block - 1) / tokens_per_block;
    const int t0 = (int)(blockIdx.x % tiles) * tokens_per_block;
    return {(int)(blockIdx.x / tiles) * rows_per_block, t0, min(tokens_per_block, ntok - t0)};
}

// The end of a block of register tiles (R tiles of 16 rows from row j0, TN tokens from
// t0, tn of them present): each warp's sums `acc` (one partition) added in warp order
// through shared memory (`red`) and stored.
template <int TN, int R>
__device__ __forceinline__ void qq_store(const float (&acc)[R][TN / 8][4], float (&red)[TC_WARPS][16][TN],
                                         float* __restrict__ Y, int rows, int j0, int t0, int tn) {
    const int warp = threadIdx.x >> 5, g = (threadIdx.x & 31) >> 2, c = threadIdx.x & 3;
#pragma unroll
    for (int r = 0; r < R; ++r) {
        if (r > 0) __syncthreads();
#pragma unroll
        for (int j = 0; j < TN / 8; ++j) {
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

// A block of TC_WARPS warps owns R tiles of 16 rows and TN tokens; step s (SPAN
// columns) goes to warp s % TC_WARPS, which reads the tokens' inputs once for all R
// row tiles. Each warp adds its steps' contributions in order and the block adds its
// warps in index order (as mma.cu), so neither TN nor R changes a sum.
template <int F, int TN, int R>
__device__ __forceinline__ void qmm_q_impl(const u8* __restrict__ W, int rows, int cols,
                                           const uint4* __restrict__ XQ, const int2* __restrict__ XM,
                                           int ntok, float* __restrict__ Y) {
    using I = QI<F>;
    constexpr int NT = TN / 8, G = I::SPAN / 32;
    // Decode-sized tiles take several steps per round (loads in flight).
    constexpr int U = TN <= 8 ? 4 : 1;
    __shared__ float red[TC_WARPS][16][TN];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int g = lane >> 2, c = lane & 3;
    const BlockTile bt = block_tile(16 * R, TN, ntok);
    const int j0 = bt.j0, t0 = bt.t0, tn = bt.tn;
    const size_t rb = (size_t)(cols / Q<F>::ELEMS) * Q<F>::BYTES;
    const int steps = cols / I::SPAN, nb = cols >> 5;
    float acc[R][NT][4];
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
        for (int j = 0; j < NT; ++j) acc[r][j][0] = acc[r][j][1] = acc[r][j][2] = acc[r][j][3] = 0.0f;
    for (int s0 = warp; s0 < steps; s0 += TC_WARPS * U) {
        typename I::Raw raw[U][R][2];
#pragma unroll
        for (int uu = 0; uu < U; ++uu) {
            const int s = s0 + uu * TC_WARPS;
#pragma unroll
            for (int r = 0; r < R; ++r)
#pragma unroll
                for (int h = 0; h < 2; ++h) {
                    const int row = j0 + 16 * r + g + 8 * h;
                    raw[uu][r][h] = {};
                    if (s < steps && row < rows) I::load(W + (size_t)row * rb, s, c, raw[uu][r][h]);
                }
        }
#pragma unroll
        for (int uu = 0; uu < U; ++uu) {
            const int s = s0 + uu * TC_WARPS;
            if (s >= steps) break;
#pragma unroll
            for (int gi = 0; gi < G; ++gi) {
                u32 x[R][2], y[R][2];
                Sc sc[R][2];
#pragma unroll
                for (int r = 0; r < R; ++r)
#pragma unroll
                    for (int h = 0; h < 2; ++h) {
                        qi_codes<F>(raw[uu][r][h], gi, x[r][h], y[r][h], c);
                        sc[r][h] = I::scales(raw[uu][r][h], gi);
                    }
                const int blk = s * G + gi;
#pragma unroll
                for (int j = 0; j < NT; ++j) {
                    const int t = j * 8 + g, ta = j * 8 + 2 * c;
                    uint4 b = make_uint4(0u, 0u, 0u, 0u);
                    if (t < tn) b = __ldg(XQ + ((size_t)(t0 + t) * nb + blk) * 4 + c);
                    int2 m0 = make_int2(0, 0), m1 = make_int2(0, 0);
                    if (ta < tn) m0 = __ldg(XM + (size_t)(t0 + ta) * nb + blk);
                    if (ta + 1 < tn) m1 = __ldg(XM + (size_t)(t0 + ta + 1) * nb + blk);
#pragma unroll
                    for (int r = 0; r < R; ++r)
                        qq_group<F>(acc[r][j], x[r][0], x[r][1], y[r][0], y[r][1], sc[r], b, m0, m1);
                }
            }
        }
    }
    grid_trigger();  // the main loop is done: the next kernel may be placed
    qq_store<TN, R>(acc, red, Y, rows, j0, t0, tn);
}

// A register-tile kernel of format F on IMPL (qmm_q_impl; kquant_tiles.cu's qmm_k_impl).
#define LLORCH_QQ1(NAME, F, TN, R, IMPL)                                                          \
    extern "C" __global__ void __launch_bounds__(TC_WARPS * 32)                                   \
        qmm_q_##NAME##_n##TN##_r##R(const u8* W, int rows, int cols, const uint4* XQ,             \
                                    const int2* XM, int ntok, float* Y) {                         \
        grid_wait();                                                                              \
        IMPL<F, TN, R>(W, rows, cols, XQ, XM, ntok, Y);                                           \
    }
// Must match QQ_TILES (kernels.rs).
#define LLORCH_QQ(NAME, F)                                                                        \
    LLORCH_QQ1(NAME, F, 8, 1, qmm_q_impl) LLORCH_QQ1(NAME, F, 16, 1, qmm_q_impl)                  \
    LLORCH_QQ1(NAME, F, 16, 2, qmm_q_impl) LLORCH_QQ1(NAME, F, 16, 4, qmm_q_impl)                 \
    LLORCH_QQ1(NAME, F, 32, 1, qmm_q_impl) LLORCH_QQ1(NAME, F, 32, 2, qmm_q_impl)                 \
    LLORCH_QQ1(NAME, F, 32, 4, qmm_q_impl) LLORCH_QQ1(NAME, F, 64, 1, qmm_q_impl)                 \
    LLORCH_QQ1(NAME, F, 64, 2, qmm_q_impl)

LLORCH_QQ(q8_0, F_Q8_0)
LLORCH_QQ(q4_0, F_Q4_0)
LLORCH_QQ(q4_1, F_Q4_1)
LLORCH_QQ(q5_0, F_Q5_0)
LLORCH_QQ(q5_1, F_Q5_1)
// Q4_K, Q5_K, Q6_K: kquant_tiles.cu.
