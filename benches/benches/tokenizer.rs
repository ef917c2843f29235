//! Tokenizer throughput on the demo model's vocabulary (gemma-3-270m, 262 144-token
//! SentencePiece vocabulary): encoding and decoding 1 MB of mixed text (English prose,
//! code, CJK, emoji, numbers, chat markup). Needs the demo model
//! (`scripts/fetch-demo-model.sh`). Report: `benches/reports/tokenizer.md`.
#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use llorch_worker::demo::require_demo_model;
use llorch_worker::gguf::GgufFile;
use llorch_worker::tokenizer::Tokenizer;
use std::hint::black_box;
use std::time::Duration;

const SNIPPETS: &[&str] = &[
    "The quick brown fox jumps over the lazy dog while the orchestrator schedules jobs. ",
    "In 1969, 3 astronauts flew 384,400 km; it's said they'd 've returned by 24.07.1969.\n",
    "fn main() {\n    let v: Vec<u32> = (0..10).map(|x| x * 2).collect();\n    println!(\"{v:?}\");\n}\n",
    "def tokenize(text):\n\treturn [ord(c) for c in text if c.isalnum()]  # comment\n\n",
    "日本語のテキストと中文文本，还有한국어 문장도 있습니다。",
    "emoji 🎉🚀🔥 mixed with ümlauts, café, naïve, Ελληνικά, русский текст. ",
    "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n4<end_of_turn>\n",
    "    indented   spaces\tand\ttabs,    and a URL: https://example.com/a?b=c&d=e#frag\n",
    "0x1F 3.14159 -42 1e-9 100% $19.99 (approx.) [1, 2, 3] {\"k\": \"v\"}\n",
];

/// About `n` bytes of mixed text, deterministic.
fn mixed_text(n: usize) -> String {
    let mut s = String::with_capacity(n + 256);
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    while s.len() < n {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        s.push_str(SNIPPETS[(state % SNIPPETS.len() as u64) as usize]);
    }
    s
}

fn tokenizer(c: &mut Criterion) {
    let file = GgufFile::open(require_demo_model()).unwrap();
    let tok = Tokenizer::from_metadata(file.metadata()).unwrap();
    let text = mixed_text(1 << 20);
    let ids = tok.encode(&text, true, true).unwrap();
    assert_eq!(tok.decode(&ids).unwrap(), text);

    let mut g = c.benchmark_group("tokenizer_gemma3_1MiB_mixed");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("encode", |b| {
        b.iter(|| tok.encode(black_box(&text), true, true).unwrap())
    });
    g.bench_function("decode", |b| {
        b.iter(|| tok.decode(black_box(&ids)).unwrap())
    });
    g.bench_function("stream_decode", |b| {
        b.iter(|| {
            let mut d = tok.stream_decoder();
            let mut n = 0;
            for &id in black_box(&ids) {
                n += d.push(&tok, id).unwrap().len();
            }
            n + d.finish().len()
        })
    });
    g.finish();

    c.bench_function("tokenizer_gemma3_load_from_metadata", |b| {
        b.iter(|| Tokenizer::from_metadata(black_box(file.metadata())).unwrap())
    });
}

criterion_group!(benches, tokenizer);
criterion_main!(benches);
