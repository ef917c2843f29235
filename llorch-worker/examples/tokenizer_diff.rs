//! Compares our tokenizer with llama.cpp's output for many texts (a development check;
//! `scripts/tokenizer-diff.sh` drives it).
//!
//! `tokenizer_diff MODEL.gguf TEXTS OUT PARSE_SPECIAL`: TEXTS holds texts separated by
//! `\n__SEP__\n`; OUT holds, per text, a line of llama.cpp's ids (`llama_tokenize` with
//! add_special) and a line of hex bytes of its `llama_detokenize` (remove_special and
//! unparse_special); PARSE_SPECIAL is 0 or 1. Exits 1 on any difference.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use llorch_worker::gguf::GgufFile;
use llorch_worker::tokenizer::Tokenizer;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    assert!(
        args.len() == 5,
        "usage: tokenizer_diff MODEL.gguf TEXTS OUT PARSE_SPECIAL"
    );
    let file = GgufFile::open(&args[1]).unwrap();
    let tok = Tokenizer::from_metadata(file.metadata()).unwrap();
    let texts = std::fs::read_to_string(&args[2]).unwrap();
    let outs = std::fs::read_to_string(&args[3]).unwrap();
    let parse_special = args[4] == "1";
    let texts: Vec<&str> = texts.split("\n__SEP__\n").collect();
    let lines: Vec<&str> = outs.split('\n').collect();
    let mut fails = 0;
    for (i, t) in texts.iter().enumerate() {
        let want: Vec<u32> = lines[2 * i]
            .split_whitespace()
            .map(|x| x.parse().unwrap())
            .collect();
        let want_text = String::from_utf8_lossy(&hex(lines[2 * i + 1])).into_owned();
        let got = tok.encode(t, true, parse_special).unwrap();
        let got_text = tok.decode(&got).unwrap();
        if got != want || got_text != want_text {
            fails += 1;
            if fails <= 5 {
                println!("MISMATCH {t:?}\n  ours     {got:?}\n  llama.cpp {want:?}");
                println!("  ours     {got_text:?}\n  llama.cpp {want_text:?}");
            }
        }
    }
    println!("{}: {} texts, {fails} differences", args[1], texts.len());
    if fails > 0 {
        std::process::exit(1);
    }
}
