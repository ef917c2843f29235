#!/usr/bin/env python3
"""Random texts for scripts/tokenizer-diff.sh: N texts (argv[1]) from seed argv[2],
mixing special-token spellings, whitespace runs, contractions, digits, byte-fallback
characters and random code points. Separator: '\\n__SEP__\\n'."""
import random
import sys

rnd = random.Random(int(sys.argv[2]))
PIECES = ["\n", "\n\n", " ", "  ", "   ", "\t", "\r\n", "<", ">", "<start_of_turn>", "<end_of_turn>",
          "<eos>", "<bos>", "<unused1", "<pad>", "[multimodal]", "<|begin_of_text|>", "<|eot_id|>",
          "<|im_end|>", "<|endoftext|>", "</s>", "<s>", "<unk>", "<|end|>", "<|user|>", "0", "1", "42",
          "12345", "a", "é", "日本", "🎉", "\u00a0", "\u2581", "Hello", " world", "```", "'s", "'S",
          "'ll", "'RE", " ?", "don't", "e\u0301", "the", " the", ".", ",", "!", "...", "$", "`", "٣",
          "Ⅻ", "ß", "İ", "\u200b", "\u3000", "\x0b", "\x85"]


def rand_char():
    while True:
        c = rnd.randrange(1, 0x110000)
        if not 0xD800 <= c <= 0xDFFF:
            return chr(c)


out = []
for _ in range(int(sys.argv[1])):
    parts = []
    for _ in range(rnd.randrange(0, 30)):
        r = rnd.random()
        if r < 0.7:
            parts.append(rnd.choice(PIECES) * (rnd.randrange(1, 5) if rnd.random() < 0.2 else 1))
        elif r < 0.85:
            parts.append(rand_char())
        else:
            parts.append(chr(rnd.randrange(32, 127)))
    out.append("".join(parts))
sys.stdout.write("\n__SEP__\n".join(out))
