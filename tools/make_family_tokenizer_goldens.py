#!/usr/bin/env python3
"""Tiny Qwen2-style and Llama-3-style tokenizers and their reference encodings.

The model families unmask reads (Dream, Fast-dLLM v2, SDAR: Qwen2 / Qwen3
tokenizers; Llama-3-style files) do not use the GPT-2 pre-tokenizer of the
tiny LLaDA tokenizer but a ``Split`` pre-tokenizer with their own regex, an
NFC normalizer (Qwen2) and a ``TemplateProcessing`` post-processor that adds
``<|begin_of_text|>`` (Llama 3). This script trains one small byte-level BPE
of each layout with Hugging Face ``tokenizers`` (the layouts as
transformers' ``Qwen2Converter`` and Meta's Llama 3 tokenizer.json write
them) and records what ``tokenizers`` and ``transformers`` give for them:

* ``tests/data/tokenizer/<name>/tokenizer.json``: the trained tokenizer;
* ``tests/data/tokenizer/<name>/cases.jsonl``: one JSON object per line,
  ``{"text", "ids", "ids_special", "decoded", "decoded_skip_special"}``:
  ``ids`` = ``encode(text, add_special_tokens=False).ids``, ``ids_special``
  = ``encode(text).ids`` (the post-processor's tokens added; only where it
  differs from ``ids``), the decodings of ``ids``; or a decode case ``{"decode_ids", "decoded", ...}``;
* ``tests/data/tokenizer/llama3/configs.jsonl``: ``{"tokenizer_config",
  "text", "input_ids"}`` with ``input_ids`` from transformers'
  ``AutoTokenizer``-equivalent class for that tokenizer_config.json
  (``LlamaTokenizerFast`` rebuilds the post-processor from
  ``add_bos_token`` / ``add_eos_token``; ``PreTrainedTokenizerFast`` keeps
  the file's).

The training corpus and most test texts are the texts of
``tests/data/tokenizer/cases.jsonl`` (held-out KJV verses and the hand-written
lines of make_tokenizer_goldens.py), so nothing outside the repository is
read. Added here: texts for the patterns' own branches (digit groups,
newline runs, case-insensitive contractions, a non-letter before a word), NFC
cases (decomposed letters, Hangul jamo, singletons, composition exclusions)
and seeded random strings.

Deterministic: re-running reproduces the files byte for byte.

    .venv-families/bin/python tools/make_family_tokenizer_goldens.py
"""

import json
import os
import random

import tokenizers
import transformers
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(REPO_ROOT, "tests", "data", "tokenizer")
SEED = 20261202

# transformers' Qwen2Converter (convert_slow_tokenizer.py) and Meta's Llama 3
# tokenizer.json; the same strings are recognised by split_pretokenizer.hpp.
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                 r"\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                  r"\s*[\r\n]+|\s+(?!\S)|\s+")

VOCAB_SIZE = 1200

# (content, special, normalized) after the trained vocabulary, in id order.
QWEN2_ADDED = [("<|endoftext|>", True, False), ("<|im_start|>", True, False), ("<|im_end|>", True, False),
               ("<think>", False, False), ("</think>", False, False),
               ("café", False, True)]  # normalized: matched after NFC ("cafe\u0301" finds it)
LLAMA3_ADDED = [("<|begin_of_text|>", True, False), ("<|end_of_text|>", True, False),
                ("<|start_header_id|>", True, False), ("<|end_header_id|>", True, False),
                ("<|eot_id|>", True, False)]


def corpus_texts():
    out = []
    with open(os.path.join(DATA, "cases.jsonl"), encoding="utf-8") as f:
        for line in f:
            c = json.loads(line)
            if "text" in c:
                out.append(c["text"])
    return out


def train(pattern, nfc, added, rng_corpus):
    tok = Tokenizer(models.BPE())
    if nfc:
        tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, min_frequency=2, show_progress=False, special_tokens=[],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(rng_corpus, trainer=trainer)
    base = tok.get_vocab_size()
    tok.add_tokens([tokenizers.AddedToken(c, special=s, normalized=n, single_word=False, lstrip=False, rstrip=False)
                    for c, s, n in added])
    for k, (c, _, _) in enumerate(added):
        assert tok.token_to_id(c) == base + k, (c, tok.token_to_id(c), base + k)
    return tok


FAMILY_TEXTS = [
    # digit groups (qwen2: one digit per piece; llama3: up to three)
    "1", "12", "123", "1234", "12345", "123456", "1234567", "3.14159265", "2026-12-02", "x1234y", "10,000,000",
    "٣٤٥٦٧", "१२३४५", "½¾⅓⅔", "Ⅻ Ⅸ", "①②③④", " 42", "  42", "a 12345 b", "$1999.99",
    # newline runs and whitespace before them
    "\n", "\n\n", "\n\n\n", "\r\n", "\r\n\r\n", "\r", "\r\r\n", " \n", "  \n", " \n ", "\t\n", "\n\t",
    "a\nb", "a\n\nb", "a \n b", "a  \n\n  b", "a\n \nb", "line\r\nline\r\n", "x\u00a0\ny", "x\u2028y", "x \u2028 y",
    "end\n", "end\n\n", "end \n", "end\n ", "end\n  ", "  \n  \n  ", "\n  indented\n    more\n",
    "def f(x):\n    return x\n\n\nclass A:\n\tpass\n",
    # punctuation runs followed by newlines, a non-letter in front of a word
    ".\n", "...\n\n", "!\r\n", "}\n}\n", " (x)\n", "(word", "[word]", ".com", "-word", "_word", "\tword", " \tword",
    "\u00a0word", "\u3000word", "«word»", "@user #tag", "'word", "''word", "$var", "#include <stdio.h>\n",
    # contractions in any case
    "it's", "IT'S", "It'S", "you'RE", "YOU'RE", "I'Ve", "we'LL", "he'D", "I'M", "'S", "'T", "'Re", "'vE", "'lL",
    "'ſ", "it'ſ", "'K", "'ß", "'İ", "don'T", "'s'S's",
    # NFC: decomposed letters, reordering, Hangul, singletons, exclusions
    "cafe\u0301", "café", "cafe\u0301s", "Cafe\u0301 au lait", "A\u030a", "\u212b", "\u2126", "e\u0301\u0323",
    "e\u0323\u0301", "a\u0308\u0304", "o\u031b\u0301", "\u1100\u1161", "\u1100\u1161\u11a8", "한국어",
    "\u1112\u1161\u11ab\u1100\u1173\u11af", "\u0958", "\u0915\u093c", "\u00c5\u0301", "Vie\u0323\u0302t Nam",
    "Việt Nam", "\u03b1\u0301\u03b9", "\u1f71", "ﬁ", "ｆｕｌｌ", "\u0301", "x\u0301\u0301\u0301", "\u00e9\u0301",
    # code, emoji, mixed
    "for (int i = 0; i < 10; ++i) {\n  sum += a[i];\n}\n", "x = [1, 2, 3]  # list\n", "if a!=b:\n\treturn",
    "👍🏽 ok\n", "👨‍👩‍👧\n\n", "🇯🇵🇫🇷", "<|im_start|>user\nhi<|im_end|>\n", "<|im_start|><|im_end|>",
    "<think>\n\n</think>\n\n", "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>",
]


def random_texts(rng):
    palette = ["the", "The", " LORD", "'s", "'S", "'Ll", " ", "  ", "\t", "\n", "\r\n", "\n\n", "123", "4567", " 8",
               ".", "!?", "(", ")", "é", "e\u0301", "\u0301", "\u0323", "ü", "u\u0308", "😀", "👍🏽", "太初",
               "Слово", "λόγος", "\u1100", "\u1161", "\u11a8", "\u00a0", "\u3000", "'", "x", "-", "—", "\u200d",
               "<|im_end|>", "<|eot_id|>", "<think>", "café"]
    out = []
    for _ in range(150):
        out.append("".join(rng.choice(palette) for _ in range(rng.randint(1, 25))))
    for _ in range(60):
        cps = []
        for _ in range(rng.randint(1, 30)):
            r = rng.random()
            c = rng.randint(0, 0x7F) if r < 0.4 else rng.randint(0x80, 0x3000) if r < 0.8 else rng.randint(
                0x3000, 0x10FFFF)
            cps.append(chr(c) if not 0xD800 <= c <= 0xDFFF else "y")
        out.append("".join(cps))
    return out


def test_texts(corpus, rng):
    texts = [t for t in corpus if len(t) < 400][:450] + FAMILY_TEXTS + random_texts(rng)
    texts += ["a" * 1500, "1" * 1000, "\n" * 300, " " * 300 + "x", "e\u0301" * 300, "'s" * 300]
    seen, unique = set(), []
    for t in texts:
        if t not in seen:
            seen.add(t)
            unique.append(t)
    return unique


def encode_case(t, text):
    ids = t.encode(text, add_special_tokens=False).ids
    case = {"text": text, "ids": ids, "decoded": t.decode(ids, skip_special_tokens=False),
            "decoded_skip_special": t.decode(ids, skip_special_tokens=True)}
    with_special = t.encode(text).ids
    if with_special != ids:
        case["ids_special"] = with_special
    return case


def decode_case(t, ids):
    return {"decode_ids": ids, "decoded": t.decode(ids, skip_special_tokens=False),
            "decoded_skip_special": t.decode(ids, skip_special_tokens=True)}


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, sort_keys=True) + "\n")


def llama3_configs(tok_path):
    """input_ids from transformers for tokenizer_config.json variants of the llama3 tokenizer."""
    from transformers import LlamaTokenizerFast, PreTrainedTokenizerFast
    configs = [
        {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
        {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>",
         "add_bos_token": False},
        {"tokenizer_class": "LlamaTokenizerFast", "bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>",
         "add_bos_token": False},
        {"tokenizer_class": "LlamaTokenizerFast", "bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
        {"tokenizer_class": "LlamaTokenizer", "bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>",
         "add_bos_token": True, "add_eos_token": True},
    ]
    texts = ["", "hello", "In the beginning", "<|begin_of_text|>hi", "a\n\nb 12345"]
    rows = []
    for cfg in configs:
        kwargs = {k: v for k, v in cfg.items() if k != "tokenizer_class"}
        cls = PreTrainedTokenizerFast if cfg["tokenizer_class"] == "PreTrainedTokenizerFast" else LlamaTokenizerFast
        t = cls(tokenizer_file=tok_path, **kwargs)
        for text in texts:
            rows.append({"tokenizer_config": cfg, "text": text, "input_ids": t(text)["input_ids"]})
    return rows


def main():
    corpus = corpus_texts()
    rng = random.Random(SEED)
    texts = test_texts(corpus, rng)
    layouts = [
        ("qwen2", QWEN2_PATTERN, True, QWEN2_ADDED, None),
        ("llama3", LLAMA3_PATTERN, False, LLAMA3_ADDED, "<|begin_of_text|>"),
    ]
    for name, pattern, nfc, added, bos in layouts:
        tok = train(pattern, nfc, added, corpus)
        if bos:
            tok.post_processor = processors.TemplateProcessing(
                single=f"{bos} $A", pair=f"{bos} $A {bos} $B:1", special_tokens=[(bos, tok.token_to_id(bos))])
        else:
            tok.post_processor = processors.ByteLevel(trim_offsets=False)
        out_dir = os.path.join(DATA, name)
        os.makedirs(out_dir, exist_ok=True)
        path = os.path.join(out_dir, "tokenizer.json")
        tok.save(path, pretty=True)
        tok = Tokenizer.from_file(path)
        cases = [encode_case(tok, t) for t in texts]
        n = tok.get_vocab_size()
        drng = random.Random(SEED + 1)
        for text in ["naïve café 😀 über", "한국어 문장", "e\u0301\u0301 x"]:
            ids = tok.encode(text, add_special_tokens=False).ids
            for cut in range(1, len(ids)):
                cases.append(decode_case(tok, ids[:cut]))
        for _ in range(60):
            cases.append(decode_case(tok, [drng.randrange(n) for _ in range(drng.randint(1, 20))]))
        write_jsonl(os.path.join(out_dir, "cases.jsonl"), cases)
        print(f"{name}: vocabulary {n}, {len(cases)} cases")
        if name == "llama3":
            rows = llama3_configs(path)
            write_jsonl(os.path.join(out_dir, "configs.jsonl"), rows)
            print(f"{name}: {len(rows)} tokenizer_config cases")
    print(f"tokenizers {tokenizers.__version__}, transformers {transformers.__version__}")


if __name__ == "__main__":
    main()
