// Draws on the device from each row's best logits (`topk.cu`): temperature, top-k,
// top-p and min-p, with the sampler's counter-based stream (SplitMix64's finalizer
// of (seed, counter): the same bits as the CPU's `rng::uniform`) and its arithmetic
// in f64, in the same order. One thread per row.
typedef unsigned long long u64;

__device__ __forceinline__ u64 mix64(u64 z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// The `counter`-th uniform of stream `seed`, in [0, 1) with 53 bits.
__device__ __forceinline__ double uniform01(u64 seed, u64 counter) {
    const u64 bits = mix64(mix64(seed ^ 0x9e3779b97f4a7c15ull) + mix64(counter));
    return (double)(bits >> 11) * (1.0 / 9007199254740992.0);
}

// P per row: seed, counter, temperature | top_p << 32, min_p | top_k << 32 (f32 bits).
// A row with temperature <= 0 takes its best candidate. Writes the chosen id.
extern "C" __global__ void draw_rows(const float* __restrict__ vals, const int* __restrict__ ids, int k,
                                     const u64* __restrict__ P, int rows, int* __restrict__ out) { grid_start();
    const int r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= rows) return;
    const float* v = vals + (size_t)r * k;
    const u64 a = P[4 * r + 2], b = P[4 * r + 3];
    const float temp = __int_as_float((int)(a & 0xffffffffu)), top_p = __int_as_float((int)(a >> 32));
    const float min_p = __int_as_float((int)(b & 0xffffffffu));
    const int top_k = (int)(b >> 32);
    int chosen = 0;
    if (temp > 0.0f) {
        int n = min(top_k, k);
        const double inv_t = 1.0 / (double)temp, mx = (double)v[0];
#define W(i) exp(((double)v[i] - mx) * inv_t)
        if (top_p < 1.0f) {
            double total = 0.0;
            for (int i = 0; i < n; ++i) total += W(i);
            const double target = (double)top_p * total;
            double acc = 0.0;
            for (int i = 0; i < n; ++i) {
                acc += W(i);
                if (acc >= target) {
                    n = i + 1;
                    break;
                }
            }
        }
        const bool floor_on = min_p > 0.0f;
        const double floor = (double)min_p;
        double total = 0.0;
        int first = -1;
        for (int i = 0; i < n; ++i) {
            const double w = W(i);
            if (!floor_on || w >= floor) {
                total += w;
                if (first < 0) first = i;
            }
        }
        if (first >= 0) {
            const double target = uniform01(P[4 * r], P[4 * r + 1]) * total;
            double acc = 0.0;
            int last = first;
            chosen = -1;
            for (int i = 0; i < n && chosen < 0; ++i) {
                const double w = W(i);
                if (floor_on && !(w >= floor)) continue;
                if (w > 0.0) last = i;
                acc += w;
                if (acc > target) chosen = i;
            }
            if (chosen < 0) chosen = last;
        }
#undef W
    }
    out[r] = ids[(size_t)r * k + chosen];
}
