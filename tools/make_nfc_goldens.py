#!/usr/bin/env python3
"""Reference NFC cases for include/unmask/tokenizer/nfc.hpp.

Writes ``tests/data/tokenizer/nfc_cases.jsonl``: one JSON object per line,
``{"kind": ..., "cases": [[text, nfc], [text], ...]}`` (at most 64 cases a
line), where nfc is ``tokenizers.normalizers.NFC().normalize_str(text)`` and a
case of one string is text that is its own NFC.
The reference is Hugging Face ``tokenizers`` itself (0.22.1, the version of
tools/requirements-families.txt; 0.19.1 gives the same strings), not Python's
``unicodedata``: tokenizers' tables are Unicode 9.0 (see
tools/make_normalization_tables.py), so for the marks added in Unicode 10.0 to
14.0 and for U+11938 the two differ, and the cases of kind ``tokenizers_9_0``
pin down tokenizers' answer there.  The script prints how many cases
``unicodedata`` (Unicode 14.0) normalizes differently.

Kinds: every canonically decomposable character alone (``decomposable``), in
its decomposed form (``decomposed``) and followed by combining marks in a
seeded random order (``with_marks``); every primary composite's pair
(``pair``); every combining mark between ``a`` and U+0334 (``mark_class``);
reordering of several marks of different classes (``reorder``); blocked and
unblocked compositions (``blocked``); Hangul syllables and jamo sequences
(``hangul``); singletons and composition exclusions (``singleton``,
``exclusion``); text in several scripts (``script``); emoji sequences
(``emoji``); the Unicode 10+ differences (``tokenizers_9_0``); seeded random
combining-heavy strings (``random``).  Deterministic: re-running reproduces
the file byte for byte.

    /tmp/venv-fam/bin/python tools/make_nfc_goldens.py
"""

import argparse
import itertools
import json
import os
import random
import sys
import unicodedata

import tokenizers
from tokenizers import normalizers

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(REPO_ROOT, "tests", "data", "tokenizer", "nfc_cases.jsonl")
SEED = 20261201
EXPECTED_TOKENIZERS = "0.22.1"

sys.path.insert(0, os.path.join(REPO_ROOT, "tools"))
import make_normalization_tables as tables  # noqa: E402

# Marks of assorted classes: 1 (overlay), 7 (nukta), 9 (virama), 202, 216, 220, 230, 232, 240...
MARKS = [0x0334, 0x093C, 0x094D, 0x0327, 0x031B, 0x0316, 0x0323, 0x0300, 0x0301, 0x0302, 0x0303,
         0x0304, 0x0306, 0x0307, 0x0308, 0x030A, 0x030C, 0x0313, 0x0314, 0x0342, 0x0345, 0x035C,
         0x035D, 0x05B7, 0x0651, 0x064E, 0x0E48, 0x302A, 0x1D165, 0x1D16D]

SCRIPTS = [
    # Vietnamese, precomposed and decomposed (NFD) and mixed
    "Tiếng Việt có dấu: Đây là một câu tiếng Việt, chữ ơ, ư, ặ, ỗ, ữ và ỹ.",
    unicodedata.normalize("NFD", "Tiếng Việt có dấu: Đây là một câu tiếng Việt, chữ ơ, ư, ặ, ỗ, ữ và ỹ."),
    "Vie\u0323\u0302t Nam, ho\u0300a bi\u0300nh, ngu\u031b\u01a1\u0300i",
    # Greek: tonos vs oxia (U+1F71 is a singleton to U+03AC), polytonic with ypogegrammeni
    "Καλημέρα κόσμε· ὁ ἄνθρωπος, ᾧ ᾅ ῷ ΐ ΰ",
    "\u1f71\u1f73\u1f75\u1f77\u1f79\u1f7b\u1f7d \u0387 \u037e \u1fef",
    unicodedata.normalize("NFD", "ᾧ ᾅ ῷ ΐ ΰ ἄνθρωπος"),
    "\u03b1\u0345\u0313\u0301 \u03c9\u0342\u0314\u0345",
    # Devanagari and Bengali with nukta (U+0958..U+095F are composition exclusions)
    "क़ ख़ ग़ ज़ ड़ ढ़ फ़ य़ हिन्दी भाषा",
    "\u0915\u093c \u0921\u093c\u094d \u0928\u093c \u0930\u093c \u0933\u093c",
    "\u09a1\u09bc \u09a2\u09bc \u09af\u09bc \u09c7\u09be \u09c7\u09d7",
    # Korean, as syllables and as conjoining jamo
    "한국어 텍스트: 안녕하세요, 세계! 읽다 값 닭",
    unicodedata.normalize("NFD", "한국어 텍스트: 안녕하세요, 세계! 읽다 값 닭"),
    "\u1112\u1161\u11ab\u1100\u1173\u11af \u110b\u1161\u11ab",
    # Arabic with harakat (shadda ccc 33 before fatha ccc 30 gets reordered) and madda/hamza
    "العربيّة مُشَكَّلة: آ أ إ ؤ ئ ۀ ۂ ۓ",
    "\u0627\u0653 \u0627\u0654 \u0627\u0655 \u0648\u0654 \u064a\u0654 \u0628\u0651\u064e \u0628\u064e\u0651",
    # Hebrew with points (several classes), Thai and Lao tone marks, Tibetan
    "\u05e9\u05c1\u05bc \u05e9\u05bc\u05c1 \u05d1\u05bf \u05d1\u05b0\u05bc \ufb2c \ufb1d",
    "ภาษาไทย \u0e01\u0e48\u0e38 \u0e01\u0e38\u0e48 \u0ec0\u0ec8",
    "\u0f40\u0fb5 \u0f71\u0f72 \u0f73 \u0f75 \u0f81 \u0f42\u0fb7 \u0f43",
    # Latin with stacked marks, Cyrillic, Japanese kana (dakuten)
    "Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319\u0324\u031e\u0349\u035a\u032f\u031e\u0320\u034dA\u036b",
    "й ё \u0438\u0306 \u0435\u0308 \u0456\u0308",
    "か\u3099 は\u309a \u30ab\u3099 \u30cf\u309a \u304c \u3071 \u309b \u309c",
]

EMOJI = [
    "\U0001F468\u200D\U0001F469\u200D\U0001F467\u200D\U0001F466",
    "\U0001F469\U0001F3FD\u200D\U0001F4BB",
    "\u2764\uFE0F \u2764\uFE0E \u263A\uFE0F",
    "1\uFE0F\u20E3 #\uFE0F\u20E3",
    "\U0001F1FA\U0001F1F8\U0001F1EF\U0001F1F5",
    "\U0001F3F4\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F",
    "\U0001F3F3\uFE0F\u200D\U0001F308 e\u0301\U0001F600\u0301",
    "\u00e9\U0001F44D\U0001F3FF\u0308",
]


def chars(*cps):
    return "".join(map(chr, cps))


def cases(rng):
    decomposable = sorted(tables.DECOMPOSITIONS)
    for cp in decomposable:
        yield "decomposable", chr(cp)
    for cp in decomposable:
        yield "decomposed", chars(*tables.DECOMPOSITIONS[cp])
    for cp in decomposable:
        marks = rng.sample(MARKS, rng.randint(1, 3))
        if rng.random() < 0.5:
            yield "with_marks", chr(cp) + chars(*marks)
        else:
            d = tables.DECOMPOSITIONS[cp]
            tail = d[1:] + marks
            rng.shuffle(tail)
            yield "with_marks", chars(d[0], *tail)
    for (a, b) in sorted(tables.COMPOSITES):
        yield "pair", chars(a, b)
    for cp in tables.ALL_SCALARS:
        if unicodedata.combining(chr(cp)):
            yield "mark_class", "a" + chr(cp) + "\u0334"

    for base in ("a", "o", "u", "\u03b1", "\u0627", " "):
        for perm in itertools.permutations([0x0301, 0x0316, 0x0334, 0x031B, 0x0345]):
            if rng.random() < 0.25:
                yield "reorder", base + chars(*perm)
    for s in ["a\u0301\u0316", "a\u0316\u0301", "a\u0301\u0301", "a\u0327\u0301\u0301", "e\u0327\u0306",
              "e\u0306\u0327", "a\u0323\u0302", "a\u0302\u0323", "o\u031b\u0303", "o\u0303\u031b",
              "o\u031b\u0323\u0302"]:
        yield "reorder", s

    for s in ["u\u0308\u0301", "u\u0301\u0308", "a\u0308\u0304", "a\u0304\u0308",
              "a\u0334\u0301", "a\u0301\u0334", "a\u0316\u0301", "a\u0300\u0301", "a\u05b0\u0301",
              "\u1100\u0301\u1161", "\u1100\u1161\u0301\u11a8", "\uac00\u0334\u11a8",
              "\u0b47\u0b3e", "\u0b47\u0334\u0b3e", "\u0b47\u0b57", "\u0b47\u0b56", "\u0cc6\u0cd5\u0cc2",
              "\u0cc6\u0cc2\u0cd5", "\u0dd9\u0dcf\u0dca", "\u0dd9\u0dca\u0dcf", "\u1025\u102e",
              "\u1b05\u1b35", "\U00011099\U000110ba", "\U00011131\U00011127", "\U00011347\U0001133e",
              "\U000114b9\U000114ba", "\U000115b8\U000115af", "a\u0345\u0301", "\u03b1\u0301\u0345",
              "\u03b1\u0345\u0301", "\u00c5\u0301", "A\u030a\u0301", "A\u0301\u030a",
              "\u0041\u030a\u0041\u030a", "\u1e0a\u0323", "\u1e0c\u0307", "D\u0307\u0323", "D\u0323\u0307",
              "q\u0307\u0323", "\u0301", "\u0301a", "\u0301\u0301\u0301", "\u1161", "\u11a8", "\u1161\u11a8"]:
        yield "blocked", s

    for l in range(tables.L_COUNT):
        for v in range(tables.V_COUNT):
            t = rng.randint(0, tables.T_COUNT - 1)
            yield "hangul", chars(tables.L_BASE + l, tables.V_BASE + v) + (chr(tables.T_BASE + t) if t else "")
    for _ in range(300):
        s = tables.S_BASE + rng.randrange(tables.S_COUNT)
        yield "hangul", chr(s) + chr(rng.choice([tables.T_BASE, tables.T_BASE + 1, tables.T_BASE + 27,
                                                  tables.T_BASE + 28, tables.V_BASE, tables.V_BASE + 20]))
    for s in [chars(0xAC00, 0x11A7), chars(0xAC01, 0x11A8), chars(0x1100, 0x1161, 0x11A7),
              chars(0x1100, 0x1100, 0x1161, 0x1161, 0x11A8, 0x11A8), chars(0x1112, 0x1175, 0x11C2),
              chars(0x1113, 0x1161), chars(0x1100, 0x1176), chars(0x115F, 0x1160), chars(0xD7A3, 0x11A8),
              chars(0xD7A4), chars(0x3131, 0x314F), chars(0xA960, 0xD7B0, 0xD7CB)]:
        yield "hangul", s

    for cp in [0x212B, 0x2126, 0x212A, 0x0340, 0x0341, 0x0343, 0x0374, 0x037E, 0x0387, 0x1F71, 0x1FEF,
               0x1FFD, 0x2000, 0x2001, 0x2329, 0x232A, 0xF900, 0xFA10, 0x2F800, 0x2FA1D]:
        yield "singleton", chr(cp)
        yield "singleton", chr(cp) + "\u0301"
        yield "singleton", "a" + chr(cp)
    yield "singleton", "\u212b\u0301"
    yield "singleton", "\u2126\u0313"
    for cp in [0x0958, 0x0959, 0x095F, 0x09DC, 0x09DD, 0x09DF, 0x0A33, 0x0A36, 0x0A59, 0x0A5E, 0x0B5C,
               0x0F43, 0x0F69, 0x0F76, 0x0FB9, 0x2ADC, 0xFB1D, 0xFB1F, 0xFB2A, 0xFB4E, 0x1D15E, 0x1D164,
               0x1D1BB, 0x1D1C0, 0x0344, 0x0F73, 0x0F75, 0x0F81]:
        yield "exclusion", chr(cp)
        yield "exclusion", chars(*tables.DECOMPOSITIONS[cp])
        yield "exclusion", chr(cp) + "\u0334"

    for s in SCRIPTS:
        yield "script", s
    for s in EMOJI:
        yield "emoji", s

    # Where tokenizers (Unicode 9.0 tables) and Python 3.11 (Unicode 14.0) part.
    for a, b in tables.TOKENIZERS_UNKNOWN_MARKS:
        for cp in range(a, b + 1):
            yield "tokenizers_9_0", "a" + chr(cp) + "\u0334"
            yield "tokenizers_9_0", "a\u0301" + chr(cp) + "\u0316"
    for s in [chars(0x11938), chars(0x11935, 0x11930), chars(0x11935, 0x11930, 0x1193B)]:
        yield "tokenizers_9_0", s

    yield "misc", ""
    yield "misc", "plain ASCII text, with punctuation!\n\t\x00\x7f"
    yield "misc", "".join(map(chr, range(0x20, 0x300)))
    yield "misc", "\ufeff\ufffd\uffff\U0010FFFF\U000E0100\u0301"

    marks = [cp for cp in tables.ALL_SCALARS if unicodedata.combining(chr(cp))]
    hangul = [0x1100, 0x1112, 0x1161, 0x1175, 0x11A7, 0x11A8, 0x11C2, 0xAC00, 0xAC01, 0xD7A3]
    starters = ["a", "e", "o", "u", "A", "\u03b1", "\u0435", "\u0627", "\u0915", "\u0b47", " ", "\u00c5"]
    for _ in range(2500):
        out = []
        for _ in range(rng.randint(1, 10)):
            r = rng.random()
            if r < 0.4:
                out.append(chr(rng.choice(MARKS)))
            elif r < 0.5:
                out.append(chr(rng.choice(marks)))
            elif r < 0.65:
                out.append(chr(rng.choice(decomposable)))
            elif r < 0.8:
                out.append(chr(rng.choice(hangul)))
            else:
                out.append(rng.choice(starters))
        yield "random", "".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=OUT)
    a = ap.parse_args()
    if tokenizers.__version__ != EXPECTED_TOKENIZERS:
        print(f"warning: tokenizers {tokenizers.__version__}, the goldens are meant for {EXPECTED_TOKENIZERS}",
              file=sys.stderr)
    nfc = normalizers.NFC()
    rng = random.Random(SEED)
    groups, seen, differ, n = {}, set(), {}, 0
    for kind, s in cases(rng):
        if s in seen:
            continue
        seen.add(s)
        n += 1
        want = nfc.normalize_str(s)
        if unicodedata.normalize("NFC", s) != want:
            differ[kind] = differ.get(kind, 0) + 1
        groups.setdefault(kind, []).append([s] if want == s else [s, want])
    lines = []
    for kind, items in groups.items():
        for i in range(0, len(items), 64):
            lines.append(json.dumps({"kind": kind, "cases": items[i : i + 64]}, ensure_ascii=False,
                                    separators=(",", ":")))
    data = ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")
    with open(a.out, "wb") as f:
        f.write(data)
    print(f"wrote {a.out}: {n} cases, {len(data)} bytes (tokenizers {tokenizers.__version__})")
    print(f"unicodedata {unicodedata.unidata_version} NFC differs from tokenizers on "
          f"{sum(differ.values())} cases: {differ}")


if __name__ == "__main__":
    main()
