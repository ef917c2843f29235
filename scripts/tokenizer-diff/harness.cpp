#include "llama.h"
#include <cstdio>
#include <string>
#include <vector>
#include <fstream>
#include <sstream>
int main(int argc, char ** argv) {
    llama_backend_init();
    auto mp = llama_model_default_params();
    mp.vocab_only = true;
    llama_model * m = llama_model_load_from_file(argv[1], mp);
    if (!m) { fprintf(stderr, "load failed\n"); return 1; }
    const llama_vocab * v = llama_model_get_vocab(m);
    std::ifstream in(argv[2], std::ios::binary);
    std::stringstream ss; ss << in.rdbuf();
    std::string raw = ss.str();
    bool parse_special = argv[3][0] == '1';
    const std::string sep = "\n__SEP__\n";
    std::vector<std::string> texts;
    size_t pos = 0;
    while (true) {
        size_t next = raw.find(sep, pos);
        if (next == std::string::npos) { texts.push_back(raw.substr(pos)); break; }
        texts.push_back(raw.substr(pos, next - pos));
        pos = next + sep.size();
    }
    for (auto & t : texts) {
        std::vector<llama_token> toks(t.size() * 2 + 16);
        int n = llama_tokenize(v, t.data(), (int) t.size(), toks.data(), (int) toks.size(), true, parse_special);
        if (n < 0) { printf("ERR\nERR\n"); continue; }
        for (int i = 0; i < n; i++) printf(i ? " %d" : "%d", toks[i]);
        printf("\n");
        std::vector<char> buf(t.size() * 4 + 4096);
        int k = llama_detokenize(v, toks.data(), n, buf.data(), (int) buf.size(), true, true);
        for (int i = 0; i < k; i++) printf("%02x", (unsigned char) buf[i]);
        printf("\n");
    }
    return 0;
}
