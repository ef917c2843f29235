// Row-wise kernels: norms, rotary embedding, activations, biases, gathers and the
// KV-cache store. One row's result never depends on other rows.

// y = x / rms(x) * w for each row (sum of squares in f64, fixed order).
extern "C" __global__ void rms_norm(const float* __restrict__ x, const float* __restrict__ w,
                                    float* __restrict__ y, int width, float eps) {
    __shared__ double red[32];
    const size_t off = (size_t)blockIdx.x * width;
    double ss = 0.0;
    for (int i = threadIdx.x; i < width; i += blockDim.x) {
        const double v = x[off + i];
        ss += v * v;
    }
    ss = block_sum_d(ss, red);
    const float scale = (float)(1.0 / sqrt(ss / width + (double)eps));
    for (int i = threadIdx.x; i < width; i += blockDim.x) y[off + i] = x[off + i] * scale * w[i];
}

// x += (w ? rms_norm(o) * w : o), row by row (residual connections).
extern "C" __global__ void add_normed(float* __restrict__ x, const float* __restrict__ o,
                                      const float* __restrict__ w, int width, float eps) {
    __shared__ double red[32];
    const size_t off = (size_t)blockIdx.x * width;
    float scale = 1.0f;
    if (w != 0) {
        double ss = 0.0;
        for (int i = threadIdx.x; i < width; i += blockDim.x) {
            const double v = o[off + i];
            ss += v * v;
        }
        ss = block_sum_d(ss, red);
        scale = (float)(1.0 / sqrt(ss / width + (double)eps));
        for (int i = threadIdx.x; i < width; i += blockDim.x) x[off + i] += o[off + i] * scale * w[i];
    } else {
        for (int i = threadIdx.x; i < width; i += blockDim.x) x[off + i] += o[off + i];
    }
}

// Per head of each row: optional RMS norm, rotary embedding at the row's position,
// then `* scale` and, when asked, rounding to half precision. Block: 128 threads,
// head_dim <= 256. inv_freq: rope_dims / 2 doubles.
extern "C" __global__ void head_norm_rope(float* __restrict__ x, int n_heads, int head_dim,
                                          const float* __restrict__ norm_w, float eps,
                                          const int* __restrict__ pos,
                                          const double* __restrict__ inv_freq, int rope_dims,
                                          int neox, float scale, int round_half) {
    __shared__ double red[32];
    __shared__ float v[256];
    const int row = blockIdx.x, h = blockIdx.y;
    float* p = x + ((size_t)row * n_heads + h) * head_dim;
    for (int i = threadIdx.x; i < head_dim; i += blockDim.x) v[i] = p[i];
    if (norm_w != 0) {
        double ss = 0.0;
        for (int i = threadIdx.x; i < head_dim; i += blockDim.x) ss += (double)v[i] * (double)v[i];
        ss = block_sum_d(ss, red);
        const float sc = (float)(1.0 / sqrt(ss / head_dim + (double)eps));
        for (int i = threadIdx.x; i < head_dim; i += blockDim.x) v[i] = v[i] * sc * norm_w[i];
    }
    __syncthreads();
    const int half = rope_dims >> 1;
    const double fp = (double)pos[row];
    for (int i = threadIdx.x; i < half; i += blockDim.x) {
        const int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
        double s, c;
        sincos(fp * inv_freq[i], &s, &c);
        const float fs = (float)s, fc = (float)c;
        const float x0 = v[a], x1 = v[b];
        v[a] = x0 * fc - x1 * fs;
        v[b] = x0 * fs + x1 * fc;
    }
    __syncthreads();
    for (int i = threadIdx.x; i < head_dim; i += blockDim.x) {
        float o = v[i] * scale;
        if (round_half) o = h2f(f2h(o));
        p[i] = o;
    }
}

extern "C" __global__ void add_bias(float* __restrict__ x, const float* __restrict__ b, int width,
                                    long long n) {
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] += b[i % width];
}

// g = gelu_tanh(g) * u
extern "C" __global__ void gelu_mul(float* __restrict__ g, const float* __restrict__ u, long long n) {
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        const float x = g[i];
        g[i] = 0.5f * x * (1.0f + tanhf(0.7978846f * x * (1.0f + 0.044715f * x * x))) * u[i];
    }
}

// g = silu(g) * u
extern "C" __global__ void silu_mul(float* __restrict__ g, const float* __restrict__ u, long long n) {
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        const float x = g[i];
        g[i] = x / (1.0f + expf(-x)) * u[i];
    }
}

// y[i] = x[idx[i]] (rows of `width`).
extern "C" __global__ void gather_rows(const float* __restrict__ x, const int* __restrict__ idx,
                                       float* __restrict__ y, int width) {
    const size_t src = (size_t)idx[blockIdx.x] * width, dst = (size_t)blockIdx.x * width;
    for (int i = threadIdx.x; i < width; i += blockDim.x) y[dst + i] = x[src + i];
}

// Stores each row's keys and values at half precision in its cache slot:
// cache[slot][0..kw) = k, cache[slot][kw..kw+vw) = v.
extern "C" __global__ void kv_store(const float* __restrict__ k, const float* __restrict__ v,
                                    u16* __restrict__ cache, const int* __restrict__ slots, int kw,
                                    int vw) {
    const int row = blockIdx.x;
    u16* dst = cache + (size_t)slots[row] * (kw + vw);
    for (int i = threadIdx.x; i < kw; i += blockDim.x) dst[i] = f2h(k[(size_t)row * kw + i]);
    for (int i = threadIdx.x; i < vw; i += blockDim.x) dst[kw + i] = f2h(v[(size_t)row * vw + i]);
}
