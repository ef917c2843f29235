// Variants of the F16 tensor-core product at one token (mma.cu's qmm_tc_impl<F16, 8>),
// for tc_probe: same lanes, same fragments, same epilogue; they differ only in how
// the weight loads are issued. MODE bits: 1 = each row block starts at a rotated round
// (the rounds' sums then come in another order: other bits), 2 = the next round's
// loads issued before this round's mma, 4 = loads with an L2 256-byte prefetch and no
// L1 allocation, 8 = loads with an L2 256-byte prefetch.

template <int MODE>
__device__ __forceinline__ uint4 probe_ld(const u8* p) {
    uint4 v;
    if (MODE & 4) {
        asm("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0,%1,%2,%3}, [%4];"
            : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
            : "l"(p));
    } else if (MODE & 8) {
        asm("ld.global.nc.L2::256B.v4.u32 {%0,%1,%2,%3}, [%4];"
            : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
            : "l"(p));
    } else {
        v = *(const uint4*)p;
    }
    return v;
}

template <int U, int MODE>
__device__ __forceinline__ void probe_round(const u8* __restrict__ W, size_t rb, int j0, int nr, int ch0,
                                            int chunks, int g, int c, u32 (&hv)[U][2][4]) {
#pragma unroll
    for (int uu = 0; uu < U; ++uu) {
        const int ch = ch0 + uu * TC_WARPS;
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            uint4 v = make_uint4(0u, 0u, 0u, 0u);
            if (ch < chunks && g + 8 * h < nr)
                v = probe_ld<MODE>(W + (size_t)(j0 + g + 8 * h) * rb + (size_t)(ch * 4 + c) * 16);
            hv[uu][h][0] = v.x;
            hv[uu][h][1] = v.y;
            hv[uu][h][2] = v.z;
            hv[uu][h][3] = v.w;
        }
    }
}

template <int U>
__device__ __forceinline__ void probe_mma(const float* __restrict__ X, int cols, int ch0, int chunks, int g,
                                          int c, int ntok, const u32 (&hv)[U][2][4], float (&acc)[4]) {
#pragma unroll
    for (int uu = 0; uu < U; ++uu) {
        const int ch = ch0 + uu * TC_WARPS;
        if (ch >= chunks) break;
#pragma unroll
        for (int ks = 0; ks < 2; ++ks) {
            const int k = ch * 32 + 8 * c + 4 * ks;
            u32 b0 = 0u, b1 = 0u;
            if (g < ntok) {
                const float4 x = __ldg((const float4*)(X + (size_t)g * cols + k));
                b0 = pack_h2(x.x, x.y);
                b1 = pack_h2(x.z, x.w);
            }
            mma16816(acc, hv[uu][0][2 * ks], hv[uu][1][2 * ks], hv[uu][0][2 * ks + 1], hv[uu][1][2 * ks + 1], b0,
                     b1);
        }
    }
}

template <int U, int MODE>
__device__ __forceinline__ void probe_impl(const u8* __restrict__ W, int rows, int cols,
                                           const float* __restrict__ X, int ntok, float* __restrict__ Y) {
    __shared__ float red[TC_WARPS][16][8];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int g = lane >> 2, c = lane & 3;
    const int j0 = (int)blockIdx.x * 16;
    const int nr = min(16, rows - j0);
    const size_t rb = (size_t)cols * 2;
    const int chunks = cols >> 5;
    const int rounds = (chunks + TC_WARPS * U - 1) / (TC_WARPS * U);
    const int rot = (MODE & 1) ? (int)(blockIdx.x % (unsigned)rounds) : 0;
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    u32 cur[U][2][4];
    auto ch_of = [&](int r) { return warp + ((r + rot) % rounds) * TC_WARPS * U; };
    probe_round<U, MODE>(W, rb, j0, nr, ch_of(0), chunks, g, c, cur);
    for (int r = 0; r < rounds; ++r) {
        if (MODE & 2) {
            u32 nxt[U][2][4];
            if (r + 1 < rounds) probe_round<U, MODE>(W, rb, j0, nr, ch_of(r + 1), chunks, g, c, nxt);
            probe_mma<U>(X, cols, ch_of(r), chunks, g, c, ntok, cur, acc);
#pragma unroll
            for (int uu = 0; uu < U; ++uu)
#pragma unroll
                for (int h = 0; h < 2; ++h)
#pragma unroll
                    for (int p = 0; p < 4; ++p) cur[uu][h][p] = nxt[uu][h][p];
        } else {
            if (r > 0) probe_round<U, MODE>(W, rb, j0, nr, ch_of(r), chunks, g, c, cur);
            probe_mma<U>(X, cols, ch_of(r), chunks, g, c, ntok, cur, acc);
        }
    }
    red[warp][g][2 * c] = acc[0];
    red[warp][g][2 * c + 1] = acc[1];
    red[warp][g + 8][2 * c] = acc[2];
    red[warp][g + 8][2 * c + 1] = acc[3];
    __syncthreads();
    for (int i = threadIdx.x; i < 16 * 8; i += blockDim.x) {
        const int r = i / 8, t = i % 8;
        if (r < nr && t < ntok) {
            float v = red[0][r][t];
#pragma unroll
            for (int k = 1; k < TC_WARPS; ++k) v += red[k][r][t];
            Y[(size_t)t * rows + j0 + r] = v;
        }
    }
}

#define PROBE(U, MODE)                                                                              \
    extern "C" __global__ void __launch_bounds__(TC_WARPS * 32)                                     \
        probe_u##U##_m##MODE(const u8* W, int rows, int cols, const float* X, int ntok, float* Y) { \
        probe_impl<U, MODE>(W, rows, cols, X, ntok, Y);                                             \
    }
PROBE(4, 0)
PROBE(2, 0)
PROBE(8, 0)
PROBE(16, 0)
PROBE(4, 1)
PROBE(4, 2)
PROBE(2, 2)
PROBE(4, 4)
PROBE(4, 8)
PROBE(8, 4)
PROBE(4, 6)
PROBE(4, 3)

// The bandwidth ceiling: every byte read once with 16-byte loads, four in flight per
// thread, by a grid that fills the card.
extern "C" __global__ void stream_read(const uint4* __restrict__ p, long long n, u32* out) {
    u32 acc = 0u;
    const long long stride = (long long)gridDim.x * blockDim.x;
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    for (; i + 3 * stride < n; i += 4 * stride) {
        const uint4 a = p[i], b = p[i + stride], c = p[i + 2 * stride], d = p[i + 3 * stride];
        acc ^= a.x ^ a.y ^ a.z ^ a.w ^ b.x ^ b.y ^ b.z ^ b.w ^ c.x ^ c.y ^ c.z ^ c.w ^ d.x ^ d.y ^ d.z ^ d.w;
    }
    for (; i < n; i += stride) {
        const uint4 a = p[i];
        acc ^= a.x ^ a.y ^ a.z ^ a.w;
    }
    if (acc == 0x9e3779b9u) out[0] = acc;
}
