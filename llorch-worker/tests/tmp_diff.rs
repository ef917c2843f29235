#![allow(clippy::unwrap_used, missing_docs)]
use llorch_worker::gguf::GgufFile;
use llorch_worker::tokenizer::Tokenizer;
fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}
#[test]
fn diff() {
    let model = std::env::var("DIFF_MODEL").unwrap();
    let texts = std::fs::read_to_string(std::env::var("DIFF_TEXTS").unwrap()).unwrap();
    let outs = std::fs::read_to_string(std::env::var("DIFF_OUT").unwrap()).unwrap();
    let parse_special = std::env::var("DIFF_SPECIAL").unwrap() == "1";
    let file = GgufFile::open(&model).unwrap();
    let tok = Tokenizer::from_metadata(file.metadata()).unwrap();
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
            if fails < 10 {
                eprintln!(
                    "MISMATCH {t:?}\n got  {got:?}\n want {want:?}\n gtext {got_text:?}\n wtext {want_text:?}"
                );
            }
        }
    }
    eprintln!("{} texts, {fails} failures", texts.len());
    assert_eq!(fails, 0);
}
