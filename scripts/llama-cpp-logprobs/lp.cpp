#include "llama.h"
#include <cstdio>
#include <cmath>
#include <vector>
#include <algorithm>
#include <string>
// usage: lp MODEL < tokens (one sequence per line, space separated); prints per position "id:lp" of reference next token and top1
int main(int argc, char** argv) {
    llama_backend_init();
    auto mp = llama_model_default_params();
    llama_model* m = llama_model_load_from_file(argv[1], mp);
    auto cp = llama_context_default_params();
    cp.n_ctx = 512; cp.n_batch = 512; cp.n_threads = 2; cp.n_threads_batch = 2;
    if (argc > 2) cp.flash_attn_type = (llama_flash_attn_type)atoi(argv[2]);
    llama_context* ctx = llama_init_from_model(m, cp);
    const llama_vocab* v = llama_model_get_vocab(m);
    int nv = llama_vocab_n_tokens(v);
    char line[1<<16];
    while (fgets(line, sizeof line, stdin)) {
        std::vector<llama_token> t; char* p = line; int x, n;
        while (sscanf(p, "%d%n", &x, &n) == 1) { t.push_back(x); p += n; }
        llama_memory_clear(llama_get_memory(ctx), true);
        llama_batch b = llama_batch_init(t.size(), 0, 1);
        for (size_t i = 0; i < t.size(); i++) { b.token[i]=t[i]; b.pos[i]=i; b.n_seq_id[i]=1; b.seq_id[i][0]=0; b.logits[i]=1; }
        b.n_tokens = t.size();
        if (llama_decode(ctx, b)) { fprintf(stderr, "decode failed\n"); return 1; }
        for (size_t i = 0; i + 1 < t.size(); i++) {
            float* lg = llama_get_logits_ith(ctx, i);
            double mx = *std::max_element(lg, lg+nv), s = 0; for (int k=0;k<nv;k++) s += exp(lg[k]-mx);
            double lse = mx + log(s);
            int best = std::max_element(lg, lg+nv) - lg;
            printf("%d:%.6f:%d:%.6f ", t[i+1], lg[t[i+1]]-lse, best, lg[best]-lse);
        }
        printf("\n");
        llama_batch_free(b);
    }
}
