#!/usr/bin/env python3
"""Reference encodings and decodings for unmask's byte-level BPE tokenizer.

Writes (relative to the repository root):

* ``tests/data/tokenizer/tokenizer.json``: a byte-for-byte copy of the tiny
  models' tokenizer (``models/tiny-llada/tokenizer.json`` by default, or
  ``--tokenizer PATH``), so the tests do not depend on ``models/``;
* ``tests/data/tokenizer/cases.jsonl``: one JSON object per line, computed with
  Hugging Face ``tokenizers`` (0.19.1) on that file, either an encode case
  ``{"text", "ids", "decoded", "decoded_skip_special"}`` (``ids`` =
  ``encode(text).ids``; the decodings are ``decode(ids, skip_special_tokens=
  False / True)``) or a decode case ``{"decode_ids", "decoded",
  "decoded_skip_special"}``;
* ``tests/data/tokenizer/variants.jsonl``: the same kinds of cases for edited
  copies of the tokenizer (``"variant"`` names the edit, see ``VARIANTS``;
  the C++ test applies the same edits), covering the tokenizer.json options the
  C++ side supports beyond the ones the tiny models use.

The encode cases: all held-out KJV verses of the tiny models' split (and
variants of them), hand-written lines for every branch of the GPT-2 regex
(letters of many scripts with combining marks, numbers, punctuation runs,
whitespace runs and the ``\\s+(?!\\S)`` look-ahead, contractions and upper-case
ones that the regex does not match, controls, emoji sequences), the special
tokens inside text, the empty string, very long words, and seeded random
strings.  The decode cases include ids that split multi-byte characters
(decoded with U+FFFD, as Rust's from_utf8_lossy) and special ids.

Deterministic: re-running reproduces the files byte for byte.

    .venv-tools/bin/python tools/make_tokenizer_goldens.py [--tokenizer PATH]
"""

import argparse
import json
import os
import random
import shutil
import sys

import tokenizers
from tokenizers import Tokenizer

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(REPO_ROOT, "tests", "data", "tokenizer")
DEFAULT_TOKENIZER = os.path.join(REPO_ROOT, "models", "tiny-llada", "tokenizer.json")
SEED = 20261127

sys.path.insert(0, os.path.join(REPO_ROOT, "tools"))


def bytes_to_unicode():
    """GPT-2's byte -> printable code point alphabet (openai/gpt-2 encoder.py)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


BYTE_CHAR = bytes_to_unicode()

# ---------------------------------------------------------------------------
# Encode texts
# ---------------------------------------------------------------------------

SCRIPTS = [
    "Ἐν ἀρχῇ ἦν ὁ λόγος, καὶ ὁ λόγος ἦν πρὸς τὸν θεόν",  # Greek, polytonic
    "ΑΒΓΔ αβγδ ΣΊΣΥΦΟΣ",
    "В начале было Слово, и Слово было у Бога",  # Cyrillic
    "Ёлка и ёжик; ЩИ",
    "太初有道，道與神同在，道就是神。",  # CJK
    "日本語のテキストとカタカナ、ひらがな",
    "한국어 문장입니다 태초에 말씀이",  # Hangul
    "في البدء كان الكلمة والكلمة كان عند الله",  # Arabic
    "بِسْمِ ٱللَّٰهِ",  # Arabic with harakat (Mn)
    "בְּרֵאשִׁית בָּרָא אֱלֹהִים",  # Hebrew with points (Mn)
    "आदि में वचन था, और वचन परमेश्वर के साथ था",  # Devanagari (Mc / Mn signs)
    "ภาษาไทย ในปฐมกาล",  # Thai
    "ქართული ენა",  # Georgian
    "Հայերեն լեզու",  # Armenian
    "ᐃᓄᒃᑎᑐᑦ",  # Canadian syllabics
    "ꦧꦱꦗꦮ",  # Javanese
    "𐌰𐌱𐌲 Gothic 𐍈",  # astral letters
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕄𝕒𝕥𝕙",  # mathematical alphanumerics (letters)
    "e\u0301te\u0301 cafe\u0301",  # combining acute
    "a\u0308\u0304o\u0323\u0302",  # stacked marks
    "Z\u0351\u0346\u0310a\u0317l\u0324g\u0359o\u0333",  # zalgo
    "\u0301leading mark",
    "naïve façade coöperate Æsir Œuvre ß ẞ",
    "İstanbul ıi ǅ ǈ ǋ",  # titlecase letters
    "ﬁ ﬂ ﬀ ligatures",
    "Ｆｕｌｌｗｉｄｔｈ　ｔｅｘｔ１２３",  # fullwidth + ideographic space
    "ʰʲʷ ˈstress ˌsecondary",  # modifier letters
    "ªº µ",
]

EMOJI = [
    "👍", "👍🏽", "👍🏿 good", "👨‍👩‍👧‍👦", "👩🏽‍💻 codes", "🇺🇸🇫🇷🇯🇵", "🏳️‍🌈", "❤️", "❤️‍🔥",
    "1️⃣ 2️⃣ #️⃣", "🙂🙃😀😃😄", "I ❤ NY", "☺︎ vs ☺️", "🧑‍🤝‍🧑", "🐕‍🦺", "🫶🏻", "a😀b", " 😀 ", "😀😀 😀",
    "🏴󠁧󠁢󠁳󠁣󠁴󠁿",  # tag sequence (Scotland)
]

NUMBERS = [
    "0", "7", "42", "123456789012345", "3.14159", "1,000,000", "1st 2nd 3rd 4th", "v2.0.1", "0x1F 0b1010",
    "100%", "$5.99", "-17", "+1e-10", "12:30", "2026-11-27", "a1b2c3", "1a2b3c", " 12 34  56",
    "٣٤٥ ١٢", "०१२३", "Ⅻ Ⅸ ⅳ", "½ ¾ ⅓", "x² + y³ = z⁴", "①②③", "𝟙𝟚𝟛", "10 000", "1'000", "٣.١٤",
]

PUNCT = [
    "!", "!!!", "...", "?!?!", "---", "(a)", "[b]", "{c}", "«guillemets»", "“curly” ‘quotes’", "— – -",
    "a.b,c;d:e", "hello!!! world???", "!@#$%^&*()_+-=[]{}|;:,.<>/?`~", "'''", "\"\"\"", "```code```",
    "..hello..", "a...b", "§¶†‡•", "→←↑↓⇒", "∀x∈ℝ: x²≥0", "©®™", "…", "¿Qué? ¡Sí!", ". . .", "!a", " !a",
    "\\n is not a newline", "C:\\path\\to\\file", "http://example.com/a?b=c&d=e#f", "user@example.com",
    "<html><body>hi</body></html>", "#hashtag @mention", "·•°",
]

WHITESPACE = [
    " ", "  ", "   ", "\t", "\n", "\r\n", "\n\n", " \n", "\n ", " \t \n", "a b", "a  b", "a   b", "a    b",
    "a\tb", "a\t\tb", "a \tb", "a\t b", "a\nb", "a\n\nb", "a \n b", "a\n\n\nb", "a\r\nb", "trailing ",
    "trailing  ", "trailing   ", "trailing\n", "trailing \n", " leading", "  leading", "   leading",
    "\tleading", "\nleading", "x \u00a0y", "a\u00a0b", "a\u00a0\u00a0b", "a\u3000b", "a\u2028b", "a\u2029b",
    "a\u2003b", "a\u200ab", "a\u202fb", "a\u205fb", "a\u1680b", "a\u0085b", "a\u000bb", "a\u000cb",
    "a\u200bb", "a\ufeffb", "a\u180eb", "a\u001cb", "a\u001fb", "a \u001fb", " \u00a0 a", "\u00a0",
    "a \u3000 b", "end with spaces      ", "      ", "\t\t\t", "\n\n\n\n", " \t\n\r\u000b\u000c",
    "  1", "  !", "  a", " \t1", "word \t word", "word\t \tword", "x" + " " * 17 + "y",
    "line one\nline two\n", "para one\n\npara two\n\n\n", "  \n  \n", "a \n\n b",
]

CONTRACTIONS = [
    "it's", "don't", "you're", "I've", "I'm", "we'll", "he'd", "can't", "won't", "shan't", "y'all",
    "IT'S", "DON'T", "YOU'RE", "I'VE", "I'M", "WE'LL", "HE'D", "It'S", "'s", "'t", "'re", "'ve", "'m",
    "'ll", "'d", "'S", "'T", "'RE", "''s", "'''s", "'s'", "'re'm", "can't've", "o'clock", "rock'n'roll",
    "' s", " 's", "  's", "x 's", "!'s", "'sam", "'tis", "'llama", "'dd", "'ree", "'vee", "'x", "'",
    "Jesus' disciples", "the LORD's", "Pharaoh's house", "men's hearts", "'1", "'é", "'s's's",
    "’s curly apostrophe", "it`s",
]

SPECIALS = [
    "<|mask|>", "<|mask|><|mask|><|mask|>", "<|mask|> <|mask|>", "word<|mask|>word", "word <|mask|> word",
    " <|mask|> ", "<|mask|>s", "s<|mask|>", "'<|mask|>'s", "<|mas", "<|mask", "<|mask|", "|mask|>",
    "<<|mask|>>", "<|<|mask|>|>", "<|eos|><|pad|>", "<|eos|>", "<|pad|>", "The end.<|eos|>",
    "<|MASK|>", "<| mask |>", "<|mask |>", "<mask>", "<|mask|><|mas", "<|mas<|mask|>k|>",
    "In the beginning <|mask|> created the <|mask|><|mask|> and the earth.",
    "<|mask|>\n<|mask|>", "\n<|mask|>\n", "  <|mask|>  ", "\t<|mask|>", "1<|mask|>2", "😀<|mask|>😀",
    "<|mask|>'s", "<|mask|>'S", "<|eos|>" * 5, "a<|pad|>b<|eos|>c<|mask|>d",
]

MISC = [
    "", "a", "A", "Z", "é", "€", "😀", "\x00", "\x00a\x00", "\x01\x02\x03", "\x7f", "\ufffd", "\uffff",
    "\U0010ffff", "\ue000 private use", "\U000e0001", "\u00ad soft hyphen", "\u200d", "\u2060",
    "MiXeD CaSe WoRdS", "ALL CAPS SHOUTING", "snake_case_identifier", "camelCaseIdentifier",
    "kebab-case-identifier", "int main() { return 0; }", "def f(x): return x**2",
    "THE LORD is my shepherd; I shall not want.", "And God said, Let there be light: and there was light.",
]

LONG = [
    "a" * 3000,
    "ab" * 1500,
    "the" * 1000,
    " " * 2000,
    " " * 1999 + "x",
    "\n" * 500 + "x",
    "1" * 2000,
    "!" * 2000,
    "é" * 500,
    "太" * 500,
    "😀" * 200,
    "<|mask|>" * 300,
    "And " * 500,
    "supercalifragilisticexpialidocious" * 50,
]


def random_texts(rng):
    out = []
    ascii_pool = [chr(c) for c in range(32, 127)] + ["\t", "\n", " ", " ", " "]
    for _ in range(80):
        out.append("".join(rng.choice(ascii_pool) for _ in range(rng.randint(1, 80))))
    # random scalar values from every plane, assigned or not (no surrogates)
    def any_cp():
        r = rng.random()
        if r < 0.4:
            c = rng.randint(0, 0x7F)
        elif r < 0.7:
            c = rng.randint(0x80, 0xFFFF)
        else:
            c = rng.randint(0x10000, 0x10FFFF)
        return chr(c) if not 0xD800 <= c <= 0xDFFF else "x"
    for _ in range(80):
        out.append("".join(any_cp() for _ in range(rng.randint(1, 40))))
    # random bytes, keeping only the valid UTF-8 ("byte-valid" strings)
    for _ in range(50):
        raw = bytes(rng.randint(0, 255) for _ in range(rng.randint(1, 120)))
        out.append(raw.decode("utf-8", "ignore"))
    # a palette of pieces that exercise every regex branch and the specials
    palette = ["the", "The", " LORD", "'s", "'S", "'ll", " ", "  ", "\t", "\n", "\r\n", "<|mask|>", "<|eos|>",
               "<|pad|>", "<|mas", "|>", "123", " 4", ".", "!?", "é", "ü", "😀", "👍🏽", "太初", "Слово", "λόγος",
               "\u00a0", "\u3000", "e\u0301", "'", "x", "-", "—", "\u200d"]
    for _ in range(120):
        out.append("".join(rng.choice(palette) for _ in range(rng.randint(1, 25))))
    return out


def verse_variants(held, rng):
    out = []
    for v in held[:40]:
        out.append(v + "<|eos|>")
    for i in range(0, 120, 4):
        out.append("\n".join(held[i:i + 4]))
    for v in held[200:230]:
        out.append(v.upper())
    for v in held[300:330]:
        words = v.split(" ")
        k = rng.randrange(len(words))
        words[k] = "<|mask|>"
        out.append(" ".join(words))
    for v in held[400:420]:
        out.append("  " + v + "   ")
    return out


def encode_texts(held, rng):
    texts = list(held)
    texts += verse_variants(held, rng)
    texts += SCRIPTS + EMOJI + NUMBERS + PUNCT + WHITESPACE + CONTRACTIONS + SPECIALS + MISC + LONG
    # the same lines with a leading space, a trailing word, or joined
    for group in (SCRIPTS, NUMBERS, PUNCT, CONTRACTIONS, EMOJI):
        texts += [" " + t for t in group]
        texts += [t + " end" for t in group]
    texts += random_texts(rng)
    seen, unique = set(), []
    for t in texts:
        if t not in seen:
            seen.add(t)
            unique.append(t)
    return unique


# ---------------------------------------------------------------------------
# Decode ids
# ---------------------------------------------------------------------------

def decode_id_lists(tok, rng):
    vocab = tok.get_vocab()
    byte_id = {b: vocab[c] for b, c in BYTE_CHAR.items()}
    n = tok.get_vocab_size()
    specials = [tok.token_to_id(s) for s in ("<|pad|>", "<|eos|>", "<|mask|>")]

    def ids_of(bs):
        return [byte_id[b] for b in bs]

    out = [[]]
    for bs in [b"\xe2\x82", b"\xe2\x82\xac", b"\xe2", b"\x82\xac", b"\xf0\x9f\x98", b"\xf0\x9f\x98\x80", b"\xf0\x9f",
               b"\xf0\x80", b"\xf0\x80\x80\x80", b"\xed\xa0\x80", b"\xed\x9f\xbf", b"\xc0\xaf", b"\xc1\xbf", b"\xc2",
               b"\x80", b"\xbf\xbf", b"\xf4\x90\x80\x80", b"\xf4\x8f\xbf\xbf", b"\xf5\x80", b"\xff", b"\xfe\xff",
               b"a\xe2\x82b", b"\xe2\x82\xe2\x82\xac", b"\xc3\xa9\xc3", b"\xe0\x80\x80", b"\xe0\xa0\x80",
               b"\xef\xbf\xbd", b"\x00\x01", b"\xf0\x9f\x98\x80\xf0\x9f\x98", b"\xe2\x82 \xac"]:
        out.append(ids_of(bs))
    # special ids between the bytes of one character: skipping them rejoins it
    euro = ids_of(b"\xe2\x82\xac")
    out.append([euro[0], specials[2], euro[1], euro[2]])
    out.append([euro[0], euro[1], specials[1], euro[2], specials[0]])
    out.append(specials)
    out.append(specials[::-1] * 3)
    out.append([specials[2]] * 10)
    # real encodings cut at every position and with ids dropped or swapped
    for text in ["naïve café 😀 über", "太初有道 Слово", "👨‍👩‍👧‍👦 family", "e\u0301\u0301"]:
        ids = tok.encode(text).ids
        for cut in range(1, len(ids)):
            out.append(ids[:cut])
            out.append(ids[cut:])
        for k in range(len(ids)):
            out.append(ids[:k] + ids[k + 1:])
        out.append(ids[::-1])
    for _ in range(60):
        out.append([rng.randrange(n) for _ in range(rng.randint(1, 24))])
    for _ in range(30):
        out.append([rng.choice(list(byte_id.values()) + specials) for _ in range(rng.randint(1, 16))])
    return out


# ---------------------------------------------------------------------------
# Variants: edits of tokenizer.json that the C++ test repeats
# ---------------------------------------------------------------------------

def _added(id_, content, special, normalized):
    return {"id": id_, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
            "normalized": normalized, "special": special}


def variant_add_prefix_space(j):
    j["pre_tokenizer"]["add_prefix_space"] = True


def variant_no_decoder(j):
    j["decoder"] = None


def variant_sequence(j):
    j["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [j["pre_tokenizer"]]}
    j["post_processor"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True}


def variant_ignore_merges(j):
    j["model"]["ignore_merges"] = True


def variant_more_added(j):
    # after the three specials (4093..4095): a normalized and a verbatim token
    # that overlap ("xq" / "qz"), a token whose text is in the vocabulary
    # ("and", keeps its vocabulary id), one with characters in the byte
    # alphabet that are not its bytes ("café") and one with a space ("hello world").
    vocab = j["model"]["vocab"]
    j["added_tokens"] += [_added(4096, "xq", False, True), _added(4097, "qz", False, False),
                          _added(vocab["and"], "and", False, True), _added(4098, "café", False, False),
                          _added(4099, "hello world", True, True), _added(4100, "<|mask|>x", True, False)]


def variant_unk(j, unk, fuse):
    # the byte 0xC3 symbol "Ã" (no merge uses it) leaves the vocabulary, its id
    # going to "<unk>": the unknown token, or (unk None) an unused entry, in
    # which case tokenizers drops the byte
    vocab = j["model"]["vocab"]
    assert not any("Ã" in m.split(" ") for m in j["model"]["merges"])
    vocab["<unk>"] = vocab.pop("Ã")
    j["model"]["unk_token"] = "<unk>" if unk else None
    j["model"]["fuse_unk"] = fuse


VARIANTS = {
    "add_prefix_space": variant_add_prefix_space,
    "no_decoder": variant_no_decoder,
    "sequence_pre_tokenizer": variant_sequence,
    "ignore_merges": variant_ignore_merges,
    "more_added_tokens": variant_more_added,
    "unk": lambda j: variant_unk(j, True, False),
    "unk_fused": lambda j: variant_unk(j, True, True),
    "byte_missing": lambda j: variant_unk(j, False, False),
}

VARIANT_TEXTS = [
    "", " ", "hello", " hello", "hello world", "Hello world!", "a<|mask|>b", "<|mask|> b", "<|mask|>", "\nx",
    "  two", "\t tab", "x<|eos|>", "<|eos|><|eos|>", "xqz", "zxq", "xxqz", "qzqz", "xqxq", "and", "sand and", " and",
    "café", "a café", "cafés", "hello world", "say hello world.", "hello  world", "<|mask|>x", "<|mask|>xqz",
    "é", "ééé", "aéb", "Ãé", "ÃÃ", "Ã", "naïve façade", "thereof", "understanding", "And it came to pass",
    "it's 42!", "👍🏽 ok", "In the beginning God created the heaven and the earth.",
]


def load_verses():
    import train_tiny
    return train_tiny.split_verses(train_tiny.load_verses())[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokenizer", default=DEFAULT_TOKENIZER, help="tokenizer.json to copy and test")
    a = ap.parse_args()
    os.makedirs(OUT_DIR, exist_ok=True)
    dest = os.path.join(OUT_DIR, "tokenizer.json")
    if os.path.abspath(a.tokenizer) != os.path.abspath(dest):
        shutil.copyfile(a.tokenizer, dest)
    tok = Tokenizer.from_file(dest)
    rng = random.Random(SEED)

    def encode_case(t, text):
        ids = t.encode(text, add_special_tokens=False).ids
        return {"text": text, "ids": ids, "decoded": t.decode(ids, skip_special_tokens=False),
                "decoded_skip_special": t.decode(ids, skip_special_tokens=True)}

    def decode_case(t, ids):
        return {"decode_ids": ids, "decoded": t.decode(ids, skip_special_tokens=False),
                "decoded_skip_special": t.decode(ids, skip_special_tokens=True)}

    cases = [encode_case(tok, t) for t in encode_texts(load_verses(), rng)]
    cases += [decode_case(tok, ids) for ids in decode_id_lists(tok, rng)]
    with open(os.path.join(OUT_DIR, "cases.jsonl"), "w", encoding="utf-8") as f:
        for c in cases:
            f.write(json.dumps(c, sort_keys=True) + "\n")

    with open(dest, encoding="utf-8") as f:
        base = json.load(f)
    variant_cases = []
    for name, edit in VARIANTS.items():
        j = json.loads(json.dumps(base))
        edit(j)
        t = Tokenizer.from_str(json.dumps(j))
        for added in j["added_tokens"]:  # the ids in the file are the ones tokenizers uses
            assert t.token_to_id(added["content"]) == added["id"], (name, added)
        for text in VARIANT_TEXTS:
            variant_cases.append(dict(variant=name, **encode_case(t, text)))
        ids = t.encode("a café hello world <|mask|>").ids
        for cut in range(len(ids) + 1):
            variant_cases.append(dict(variant=name, **decode_case(t, ids[:cut])))
    with open(os.path.join(OUT_DIR, "variants.jsonl"), "w", encoding="utf-8") as f:
        for c in variant_cases:
            f.write(json.dumps(c, sort_keys=True) + "\n")

    n_enc = sum(1 for c in cases if "text" in c)
    print(f"tokenizers {tokenizers.__version__}: {len(cases)} cases ({n_enc} encode, {len(cases) - n_enc} decode), "
          f"{len(variant_cases)} variant cases in {OUT_DIR}")


if __name__ == "__main__":
    main()
