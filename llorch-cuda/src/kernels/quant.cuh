// Reading GGUF blocks: `Q<F>::unit(row, u, w)` writes the 8 values of unit `u`
// (elements 8u .. 8u+8) of a row stored in format F, exactly as ggml dequantizes them.
enum Fmt { F_F32 = 0, F_F16, F_BF16, F_Q8_0, F_Q4_0, F_Q4_1, F_Q5_0, F_Q5_1, F_Q4K, F_Q5K, F_Q6K };

template <int F> struct Q;

template <> struct Q<F_F32> {
    static constexpr int ELEMS = 1, BYTES = 4;
    __device__ static __forceinline__ void unit(const u8* row, int u, float* w) {
        const float4* p = (const float4*)(row + (size_t)u * 32);
        float4 a = p[0], b = p[1];
        w[0] = a.x; w[1] = a.y; w[2] = a.z; w[3] = a.w; w[4] = b.x; w[5] = b.y; w[6] = b.z; w[7] = b.w;
    }
};

template <> struct Q<F_F16> {
    static constexpr int ELEMS = 1, BYTES = 2;
    __device__ static __forceinline__ void unit(const u8* row, int u, float* w) {
        uint4 v = *(const uint4*)(row + (size_t)u * 16);
        u32 x[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
        for (int i = 0; i < 4; ++i) { w[2 * i] = h2f((u16)(x[i] & 0xffff)); w[2 * i + 1] = h2f((u16)(x[i] >> 16)); }
    }
};

template <> struct Q<F_BF16> {
    static constexpr int ELEMS = 1, BYTES = 2;
    __device__ static __forceinline__ void unit(const u8* row, int u, float* w) {
        uint4 v = *(const uint4*)(row + (size_t)u * 16);
        u32 x[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
        for (int i = 0; i < 4; ++i) { w[2 * i] = bf2f((u16)(x[i] & 0xffff)); w[2 * i + 1] = bf2f((u16)(x[i] >> 16)); }
    }
};

template <> struct Q<F_Q8_0> {
    static constexpr int ELEMS = 32, BYTES = 34;
    __device__ static __forceinline__ void unit(const u8* row, int u, float* w) {
        const u8* b = row + (size_t)(u >> 2) * 34;
        const float d = h2f(ld16(b));
        const u16* q = (const u16*)(b + 2 + (u & 3) * 8);
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            u16 v = q[i];
            w[2 * i] = d * (float)(i8)(v & 0xff);
            w[2 * i + 1] = d * (float)(i8)(v >> 8);
        }
    }
};

template <> struct Q<F_Q4_0> {
    static constexpr int ELEMS = 32, BYTES = 18;
    __device__ static __forceinline__ void unit(const u8* row, int u, float* w) {
        const u8* b = row + (size_t)(u >> 2) * 18;
        const float d = h2f(ld16(b));
        const int e = (u & 3) * 8;
        const u8* qs = b + 2 + (e & 15);
        const int sh = e >= 16 ? 4 : 0;
#pragma unroll
        for (int i = 0; i < 8; ++i) w[i] = d * (float)(((qs[i] >> sh) & 0xF) - 8);
    }
};

template <> struct Q<F_Q4_1> {
    static constexpr int ELEMS = 32, BYTES = 20;
    __device__ static __forceinline__ void unit(const u8* row, int u, float* w) {
        const u8* b = row + (size_t)(u >> 2) * 20;
        const float d = h2f(ld16(b)), m = h2f(ld16(b + 2));
        const int e = (u & 3) * 8;
        const u8* qs = b + 4 + (e & 15);
        const int sh = e >= 16 ? 4 : 0;
#pragma unroll
        for (int i = 0; i < 8; ++i) w[i] = d * (float)((qs[i] >> sh) & 0xF) + m;
    }
};

template <> struct Q<F_Q5_0> {
    static constexpr int ELEMS = 32, BYTES = 22;
    __device__ static __forceinline__ void unit(const u8* row, int u, float* w) {
        const u8* b = row + (size_t)(u >> 2) * 22;
        const float d = h2f(ld16(b));
        const u32 qh = (u32)ld16(b + 2) | ((u32)ld16(b + 4) << 16);
        const int e = (u & 3) * 8;
        const u8* qs = b + 6 + (e & 15);
        const int sh = e >= 16 ? 4 : 0;
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            const int q = ((qs[i] >> sh) & 0xF) | (((qh >> (e + i)) & 1) << 4);
            w[i] = d * (float)(q - 16);
        }
    }
};

template <> struct Q<F_Q5_1> {
    static constexpr int ELEMS = 32, BYTES = 24;
    __device__ static __forceinline__ void unit(const u8* row, int u, float* w) {
        const u8* b = row + (size_t)(u >> 2) * 24;
        const float d = h2f(ld16(b)), m = h2f(ld16(b + 2));
        const u32 qh = (u32)ld16(b + 4) | ((u32)ld16(b + 6) << 16);
        const int e = (u & 3) * 8;
        const u8* qs = b + 8 + (e & 15);
        const int sh = e >= 16 ? 4 : 0;
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            const int q = ((qs[i] >> sh) & 0xF) | (((qh >> (e + i)) & 1) << 4);
            w[i] = d * (float)q + m;
        }
    }
};

// The 6-bit scale and min of sub-block j of a Q4_K/Q5_K block.
__device__ __forceinline__ void scale_min_k4(int j, const u8* q, int* sc, int* m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

template <> struct Q<F_Q4K> {
    static constexpr int ELEMS = 256, BYTES = 144;
    __device__ static __forceinline__ void unit(const u8* row, int u, float* w) {
        const u8* b = row + (size_t)(u >> 5) * 144;
        const int e = (u & 31) * 8, j = e >> 6, within = e & 63, hi = within >= 32;
        int sc, m;
        scale_min_k4(2 * j + hi, b + 4, &sc, &m);
        const float d1 = h2f(ld16(b)) * (float)sc, m1 = h2f(ld16(b + 2)) * (float)m;
        const uint2 v = *(const uint2*)(b + 16 + 32 * j + (within & 31));
        const u32 x[2] = {v.x, v.y};
        const int sh = hi ? 4 : 0;
#pragma unroll
        for (int i = 0; i < 8; ++i) w[i] = d1 * (float)((x[i >> 2] >> (8 * (i & 3) + sh)) & 0xF) - m1;
    }
};

template <> struct Q<F_Q5K> {
    static constexpr int ELEMS = 256, BYTES = 176;
    __device__ static __forceinline__ void unit(const u8* row, int u, float* w) {
        const u8* b = row + (size_t)(u >> 5) * 176;
        const int e = (u & 31) * 8, j = e >> 6, within = e & 63, hi = within >= 32, l0 = within & 31;
        int sc, m;
        scale_min_k4(2 * j + hi, b + 4, &sc, &m);
        const float d1 = h2f(ld16(b)) * (float)sc, m1 = h2f(ld16(b + 2)) * (float)m;
        const u8* qh = b + 16 + l0;
        const u8* ql = b + 48 + 32 * j + l0;
        const int sh = hi ? 4 : 0, hb = 2 * j + hi;
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            const int q = ((ql[i] >> sh) & 0xF) + (((qh[i] >> hb) & 1) << 4);
            w[i] = d1 * (float)q - m1;
        }
    }
};

template <> struct Q<F_Q6K> {
    static constexpr int ELEMS = 256, BYTES = 210;
    __device__ static __forceinline__ void unit(const u8* row, int u, float* w) {
        const u8* b = row + (size_t)(u >> 5) * 210;
        const int e = (u & 31) * 8, n = e >> 7, r = e & 127, quarter = r >> 5, l0 = r & 31;
        const float d = h2f(ld16(b + 208));
        const float ds = d * (float)(i8)b[192 + 8 * n + (l0 >> 4) + 2 * quarter];
        const u8* ql = b + 64 * n + (quarter & 1) * 32 + l0;
        const u8* qh = b + 128 + 32 * n + l0;
        const int sh = quarter >= 2 ? 4 : 0, hs = 2 * quarter;
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            const int q = (((ql[i] >> sh) & 0xF) | (((qh[i] >> hs) & 3) << 4)) - 32;
            w[i] = ds * (float)q;
        }
    }
};
