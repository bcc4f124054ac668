#!/usr/bin/env python3
"""Generate include/unmask/tokenizer/unicode_normalization_tables.hpp from ``unicodedata``.

Unicode NFC (include/unmask/tokenizer/nfc.hpp) needs three kinds of data
(UAX #15; The Unicode Standard, chapter 3, sections 3.11 and 3.12):

* the Canonical_Combining_Class (ccc) of every code point;
* the full canonical decomposition of every code point that has one (the
  mapping applied recursively until nothing decomposes further); Hangul
  syllables are left out, they decompose by arithmetic (section 3.12);
* the primary composites: the pairs (a, b) -> c where c has the canonical
  decomposition <a, b> and is not excluded from composition.  They are derived
  here as the length-2 decompositions with ``unicodedata.normalize("NFC",
  a + b) == c``, so the composition exclusions (U+0958...), the singletons
  (U+212B ANGSTROM SIGN, U+2126 OHM SIGN: length 1 anyway) and the non-starter
  decompositions (U+0344...) all follow from Python, not from a hand list.

Besides, every code point gets two flags that nfc.hpp needs for speed:
``combines_backward`` (the second character of some primary composite, or a
Hangul medial vowel / final consonant jamo) and ``inert``: ccc 0, NFC of the
character alone is itself, and neither it nor the first character of its
decomposition combines backward.  An inert character is a safe place to cut
the text: the NFC of the text is the concatenation of the NFC of the pieces,
and a run of inert characters is its own NFC (every code point below U+0300
is inert, as are Hangul syllables and CJK ideographs).

Which Unicode version.  Hugging Face ``tokenizers`` normalizes with the Rust
crate unicode-normalization-alignments (0.1.12, a fork of unicode-normalization),
whose tables are older than Python 3.11's Unicode 14.0.0: probing every code
point through ``tokenizers.normalizers.NFC``/``NFD`` (``--probe``; tokenizers
0.19.1 and 0.22.1 give the same answer) shows exactly the Unicode 9.0.0
behaviour: the 98 combining marks assigned in Unicode 10.0 to 14.0 have ccc 0
there (they are unassigned to it, so they are never reordered), and U+11938
DIVES AKURU VOWEL SIGN O (Unicode 13.0) neither decomposes nor is composed
from U+11935 U+11930.  Every other code point (and every single-code-point
string's NFC) agrees with ``unicodedata``.  The tables are generated to match
tokenizers, so they are Python's Unicode 14.0.0 data minus those 99 entries
(``TOKENIZERS_UNKNOWN_MARKS``, ``TOKENIZERS_UNKNOWN_DECOMPOSITIONS``).

``--verify`` (needs ``tokenizers``; two to four minutes) checks the tables and a
Python model of nfc.hpp's algorithm, including its cutting at inert
characters, against ``tokenizers.normalizers.NFC().normalize_str`` for every
code point alone, every code point between combining marks of several
classes, every decomposable character with marks, Hangul sequences and many
seeded random combining-heavy strings, and reports where ``unicodedata``
differs.

    /tmp/venv-fam/bin/python tools/make_normalization_tables.py            # write the header
    /tmp/venv-fam/bin/python tools/make_normalization_tables.py --verify   # and cross-check
    /tmp/venv-fam/bin/python tools/make_normalization_tables.py --probe    # re-derive the lists
"""

import argparse
import os
import random
import sys
import unicodedata

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(REPO_ROOT, "include", "unmask", "tokenizer", "unicode_normalization_tables.hpp")

TOKENIZERS_UNICODE = "9.0.0"

# Combining marks (ccc > 0 in Unicode 14.0) that tokenizers' tables do not know,
# so give ccc 0: all and only the marks assigned in Unicode 10.0 to 14.0
# (DerivedAge.txt), found by --probe.  Inclusive ranges.
TOKENIZERS_UNKNOWN_MARKS = [
    (0x07FD, 0x07FD), (0x0898, 0x089F), (0x08CA, 0x08D3), (0x09FE, 0x09FE), (0x0C3C, 0x0C3C),
    (0x0D3B, 0x0D3C), (0x0EBA, 0x0EBA), (0x1715, 0x1715), (0x1ABF, 0x1ACE), (0x1DF6, 0x1DFA),
    (0xA82C, 0xA82C), (0x10D24, 0x10D27), (0x10EAB, 0x10EAC), (0x10F46, 0x10F50), (0x10F82, 0x10F85),
    (0x11070, 0x11070), (0x1133B, 0x1133B), (0x1145E, 0x1145E), (0x11839, 0x1183A), (0x1193D, 0x1193E),
    (0x11943, 0x11943), (0x119E0, 0x119E0), (0x11A34, 0x11A34), (0x11A47, 0x11A47), (0x11A99, 0x11A99),
    (0x11D42, 0x11D42), (0x11D44, 0x11D45), (0x11D97, 0x11D97), (0x16FF0, 0x16FF1), (0x1E130, 0x1E136),
    (0x1E2AE, 0x1E2AE), (0x1E2EC, 0x1E2EF),
]
# Canonical decompositions (Unicode 14.0) that tokenizers' tables do not have.
TOKENIZERS_UNKNOWN_DECOMPOSITIONS = {0x11938}  # DIVES AKURU VOWEL SIGN O = 11935 11930 (Unicode 13.0)

# Hangul (The Unicode Standard, section 3.12, "Conjoining Jamo Behavior").
S_BASE, L_BASE, V_BASE, T_BASE = 0xAC00, 0x1100, 0x1161, 0x11A7
L_COUNT, V_COUNT, T_COUNT = 19, 21, 28
N_COUNT = V_COUNT * T_COUNT  # 588
S_COUNT = L_COUNT * N_COUNT  # 11172

# The tables cover code points below TABLE_LIMIT; all above are inert, ccc 0.
TABLE_LIMIT = 0x30000
ALL_SCALARS = [cp for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF]


def is_hangul_syllable(cp):
    return S_BASE <= cp < S_BASE + S_COUNT


def unknown_mark(cp):
    return any(a <= cp <= b for a, b in TOKENIZERS_UNKNOWN_MARKS)


# ---- the data, as tokenizers has it -------------------------------------------


def ccc(cp):
    if 0xD800 <= cp <= 0xDFFF or unknown_mark(cp):
        return 0
    return unicodedata.combining(chr(cp))


def canonical_mapping(cp):
    """The one-step canonical decomposition mapping of cp, or None."""
    if 0xD800 <= cp <= 0xDFFF or cp in TOKENIZERS_UNKNOWN_DECOMPOSITIONS:
        return None
    d = unicodedata.decomposition(chr(cp))
    if not d or d.startswith("<"):
        return None
    return [int(x, 16) for x in d.split()]


def build_decompositions():
    """{cp: full canonical decomposition} for every non-Hangul decomposable cp."""
    one_step = {cp: m for cp in ALL_SCALARS if (m := canonical_mapping(cp)) is not None}

    def full(cp):
        if cp not in one_step:
            return [cp]
        return [x for part in one_step[cp] for x in full(part)]

    return {cp: full(cp) for cp in one_step}


def build_composites():
    """{(a, b): c} for the primary composites (non-Hangul)."""
    out = {}
    for cp in ALL_SCALARS:
        m = canonical_mapping(cp)
        if m is None or len(m) != 2:
            continue
        if unicodedata.normalize("NFC", chr(m[0]) + chr(m[1])) == chr(cp):
            out[(m[0], m[1])] = cp
    return out


DECOMPOSITIONS = build_decompositions()
COMPOSITES = build_composites()
SECOND_CHARACTERS = {b for (_, b) in COMPOSITES}


def combines_backward(cp):
    return (
        cp in SECOND_CHARACTERS
        or V_BASE <= cp < V_BASE + V_COUNT
        or T_BASE < cp < T_BASE + T_COUNT
    )


# ---- a Python model of nfc.hpp ---------------------------------------------------


def decompose(cp):
    if is_hangul_syllable(cp):
        s = cp - S_BASE
        out = [L_BASE + s // N_COUNT, V_BASE + (s % N_COUNT) // T_COUNT]
        if s % T_COUNT:
            out.append(T_BASE + s % T_COUNT)
        return out
    return DECOMPOSITIONS.get(cp, [cp])


def compose_pair(a, b):
    if L_BASE <= a < L_BASE + L_COUNT and V_BASE <= b < V_BASE + V_COUNT:
        return S_BASE + ((a - L_BASE) * V_COUNT + (b - V_BASE)) * T_COUNT
    if is_hangul_syllable(a) and (a - S_BASE) % T_COUNT == 0 and T_BASE < b < T_BASE + T_COUNT:
        return a + (b - T_BASE)
    return COMPOSITES.get((a, b))


def model_nfc_plain(cps):
    """D117 on the canonically ordered full decomposition of cps (a list)."""
    d = [x for cp in cps for x in decompose(cp)]
    # Canonical ordering: a stable sort by ccc of every run of non-starters.
    i = 0
    while i < len(d):
        if ccc(d[i]) == 0:
            i += 1
            continue
        j = i
        while j < len(d) and ccc(d[j]) != 0:
            j += 1
        d[i:j] = sorted(d[i:j], key=ccc)
        i = j
    # Canonical composition.
    out, starter, last = [], -1, -1  # last: ccc of the last kept char after the starter, -1 = none
    for c in d:
        k = ccc(c)
        if starter >= 0 and (last == -1 or last < k):
            comp = compose_pair(out[starter], c)
            if comp is not None:
                out[starter] = comp
                continue
        if k == 0:
            starter, last = len(out), -1
        else:
            last = k
        out.append(c)
    return out


def model_nfc(s):
    """NFC of the str s the way nfc.hpp computes it: inert characters are copied,
    each stretch from an inert character up to the next one is normalized."""
    cps = [ord(c) for c in s]
    out, i = [], 0
    while i < len(cps):
        if INERT(cps[i]) and (i + 1 == len(cps) or INERT(cps[i + 1])):
            out.append(cps[i])
            i += 1
            continue
        j = i + 1
        while j < len(cps) and not INERT(cps[j]):
            j += 1
        out.extend(model_nfc_plain(cps[i:j]))
        i = j
    return "".join(map(chr, out))


def compute_inert(cp):
    if ccc(cp) != 0 or combines_backward(cp) or combines_backward(decompose(cp)[0]):
        return False
    return model_nfc_plain([cp]) == [cp]


INERT_SET = None


def INERT(cp):
    return cp >= TABLE_LIMIT or cp in INERT_SET


def init_inert():
    global INERT_SET
    INERT_SET = {cp for cp in range(TABLE_LIMIT) if not 0xD800 <= cp <= 0xDFFF and compute_inert(cp)}
    INERT_SET.update(range(0xD800, 0xE000))  # never in valid UTF-8; inert keeps the table simple
    for cp in range(TABLE_LIMIT, 0x110000):
        assert compute_inert(cp), f"U+{cp:04X} above the table limit is not inert"
    assert all(cp in INERT_SET for cp in range(0x300)), "every code point below U+0300 should be inert"


# ---- the header -------------------------------------------------------------------


def property_of(cp):
    """(ccc, inert, decomposes, combines_backward) of one code point."""
    return (ccc(cp), INERT(cp), cp in DECOMPOSITIONS, combines_backward(cp))


def two_level(values, shift):
    """Split values (one per code point below TABLE_LIMIT) into blocks of 1 << shift."""
    size = 1 << shift
    blocks, index, seen = [], [], {}
    for start in range(0, len(values), size):
        block = tuple(values[start : start + size])
        if block not in seen:
            seen[block] = len(blocks)
            blocks.append(block)
        index.append(seen[block])
    return index, blocks


def rows(items, per_row, indent="    "):
    items = list(items)
    return "\n".join(indent + ", ".join(items[i : i + per_row]) + "," for i in range(0, len(items), per_row))


def render():
    props = sorted({property_of(cp) for cp in range(TABLE_LIMIT)}, key=lambda p: (p[0], p[1], p[2], p[3]))
    # Property 0 must be the default one (ccc 0, inert, no decomposition).
    default = (0, True, False, False)
    props.remove(default)
    props.insert(0, default)
    prop_id = {p: i for i, p in enumerate(props)}
    assert len(props) <= 256
    values = [prop_id[property_of(cp)] for cp in range(TABLE_LIMIT)]
    best = None
    for shift in range(5, 10):
        index, blocks = two_level(values, shift)
        cost = len(index) + len(blocks) * (1 << shift)
        if len(blocks) <= 256 and (best is None or cost < best[0]):
            best = (cost, shift, index, blocks)
    _, shift, index, blocks = best

    decomp_keys = sorted(DECOMPOSITIONS)
    pool, starts = [], []
    for cp in decomp_keys:
        d = DECOMPOSITIONS[cp]
        assert 1 <= len(d) <= 4
        starts.append((len(pool) << 2) | (len(d) - 1))
        pool.extend(d)
    assert len(pool) < (1 << 14)
    max_len = max(len(d) for d in DECOMPOSITIONS.values())
    comps = sorted(COMPOSITES.items())

    version = unicodedata.unidata_version
    n_marks = sum(1 for cp in range(TABLE_LIMIT) if ccc(cp))
    prop_rows = rows(
        (f"{{{c}, {int(i)}, {int(d)}, {int(b)}}}" for c, i, d, b in props), 6)
    block_rows = "\n".join("    {" + ", ".join(str(v) for v in b) + "}," for b in blocks)
    return f"""// unmask/tokenizer/unicode_normalization_tables.hpp
//
// GENERATED by tools/make_normalization_tables.py from Python's unicodedata
// (Unicode {version}); do not edit by hand.
//
// The data of Unicode NFC (nfc.hpp; UAX #15, The Unicode Standard chapter 3,
// sections 3.11 and 3.12), matched to Hugging Face tokenizers:
//  - a property per code point below U+{TABLE_LIMIT:X} in a two-level table
//    (property_index[cp >> {shift}] picks a block of {1 << shift} entries in property_blocks;
//    {len(blocks)} distinct blocks): its canonical combining class ({n_marks} code points
//    have ccc > 0), whether it has a canonical decomposition in the table,
//    whether it combines backward (is the second character of a primary
//    composite, or a Hangul V or T jamo) and whether it is inert (ccc 0, its
//    own NFC, and neither it nor the first character of its decomposition
//    combines backward: the text can be cut before it). Code points from
//    U+{TABLE_LIMIT:X} up are all inert with ccc 0;
//  - the full canonical decompositions ({len(decomp_keys)} code points, at most {max_len} code
//    points each, recursively expanded), sorted by code point; Hangul
//    syllables are not here, they decompose by arithmetic (section 3.12);
//  - the {len(comps)} primary composites, pairs (first, second) -> composite sorted
//    by (first, second): the length-2 canonical decompositions whose NFC is
//    the composite, which leaves out the composition exclusions.
//
// Unicode version: tokenizers 0.19.1 and 0.22.1 normalize with the Rust crate
// unicode-normalization-alignments, whose tables behave as Unicode
// {TOKENIZERS_UNICODE} (found by probing every code point): the
// {sum(b - a + 1 for a, b in TOKENIZERS_UNKNOWN_MARKS)} combining marks assigned in Unicode 10.0 to 14.0 have ccc 0 there and
// U+11938 (Unicode 13.0) does not decompose. These tables are Python's Unicode
// {version} data with those differences applied, so they give what
// tokenizers gives; `make_normalization_tables.py --verify` checks that.
#pragma once

#include <cstdint>

namespace unmask::unicode::normalization_data {{

inline constexpr const char* unicode_version = "{version}";       // the data these tables come from
inline constexpr const char* matches_unicode = "{TOKENIZERS_UNICODE}";  // the behaviour they reproduce

// Hangul syllable arithmetic (section 3.12).
inline constexpr char32_t s_base = 0x{S_BASE:X}, l_base = 0x{L_BASE:X}, v_base = 0x{V_BASE:X}, t_base = 0x{T_BASE:X};
inline constexpr char32_t l_count = {L_COUNT}, v_count = {V_COUNT}, t_count = {T_COUNT};
inline constexpr char32_t n_count = v_count * t_count, s_count = l_count * n_count;

struct property {{
  std::uint8_t ccc;
  bool inert;
  bool decomposes;
  bool combines_backward;
}};

inline constexpr char32_t table_limit = 0x{TABLE_LIMIT:X};
inline constexpr unsigned block_shift = {shift};

// properties[0] is what every code point at or above table_limit has.
inline constexpr property properties[] = {{
{prop_rows}
}};

inline constexpr std::uint8_t property_index[] = {{
{rows((str(v) for v in index), 32)}
}};

inline constexpr std::uint8_t property_blocks[][{1 << shift}] = {{
{block_rows}
}};

inline constexpr char32_t decomposition_keys[] = {{
{rows((f"0x{cp:X}" for cp in decomp_keys), 12)}
}};

// (offset into decomposition_pool << 2) | (length - 1), one per key.
inline constexpr std::uint16_t decomposition_spans[] = {{
{rows((str(v) for v in starts), 16)}
}};

inline constexpr char32_t decomposition_pool[] = {{
{rows((f"0x{cp:X}" for cp in pool), 12)}
}};

struct composition {{
  char32_t first;
  char32_t second;
  char32_t composite;
}};

inline constexpr composition compositions[] = {{
{rows((f"{{0x{a:X}, 0x{b:X}, 0x{c:X}}}" for (a, b), c in comps), 4)}
}};

inline const property& property_of(char32_t c) {{
  if (c >= table_limit) return properties[0];
  return properties[property_blocks[property_index[c >> block_shift]][c & ((1u << block_shift) - 1)]];
}}

}}  // namespace unmask::unicode::normalization_data
"""


# ---- checks ------------------------------------------------------------------------


def probe(nfd):
    """The marks and decompositions where the installed tokenizers differs from unicodedata."""
    marks, decomps = [], []
    for cp in ALL_SCALARS:
        k = unicodedata.combining(chr(cp))
        if k:
            s = " " + chr(cp) + "\u0334" if k > 1 else " \u0301" + chr(cp)  # U+0334 has ccc 1
            if nfd.normalize_str(s) != unicodedata.normalize("NFD", s):
                marks.append(cp)
        if nfd.normalize_str(chr(cp)) != unicodedata.normalize("NFD", chr(cp)):
            decomps.append(cp)
    return marks, decomps


def verify_cases(rng):
    """Sequences for --verify (a superset of what make_nfc_goldens.py commits)."""
    marks = sorted({cp for cp in ALL_SCALARS if unicodedata.combining(chr(cp))})
    common_marks = [0x0300, 0x0301, 0x0302, 0x0303, 0x0308, 0x0313, 0x0316, 0x031B, 0x0323, 0x0327,
                    0x0328, 0x0334, 0x0345, 0x05B0, 0x0650, 0x093C, 0x094D, 0x0E38, 0x302A, 0x1D165]
    starters = [cp for cp in range(0x20, 0x3000) if unicodedata.combining(chr(cp)) == 0
                and not 0xD800 <= cp <= 0xDFFF]
    # Every code point in the tables (and the variation selectors and tags
    # above) between marks of classes 1, 220, 230 and 240; the rest of the
    # code space is unassigned, and each of those is checked alone.
    for cp in [cp for cp in ALL_SCALARS if cp < TABLE_LIMIT or 0xE0000 <= cp < 0xE0200]:
        yield "a" + chr(cp) + "\u0334"
        yield "a\u0345" + chr(cp) + "\u0301"
        yield chr(cp) + "\u0316\u0301"
        yield "\u0315" + chr(cp) + "\u0323"
    for cp in sorted(DECOMPOSITIONS):
        d = "".join(map(chr, decompose(cp)))
        yield d
        yield d[::-1]
        for _ in range(4):
            yield chr(cp) + "".join(chr(rng.choice(common_marks)) for _ in range(rng.randint(1, 4)))
            yield d + "".join(chr(rng.choice(common_marks)) for _ in range(rng.randint(1, 4)))
    for (a, b), c in COMPOSITES.items():
        yield chr(a) + chr(b)
        yield chr(a) + "\u0334" + chr(b)
        yield chr(a) + "\u0345" + chr(b)
    for l in range(L_COUNT):
        for v in range(V_COUNT):
            yield chr(L_BASE + l) + chr(V_BASE + v) + chr(T_BASE + rng.randint(0, T_COUNT))
    for s in range(S_BASE, S_BASE + S_COUNT, 7):
        yield chr(s) + chr(T_BASE + rng.randint(0, T_COUNT))
        yield chr(s) + chr(V_BASE + rng.randint(0, V_COUNT))
    pools = [common_marks, marks, starters[:200], [0x1100, 0x1161, 0x11A8, 0xAC00, 0xAC01, 0x11A7]]
    for _ in range(200_000):
        n = rng.randint(1, 12)
        out = []
        for _ in range(n):
            r = rng.random()
            if r < 0.45:
                out.append(rng.choice(common_marks))
            elif r < 0.6:
                out.append(rng.choice(marks))
            elif r < 0.75:
                out.append(rng.choice(sorted(DECOMPOSITIONS)))
            elif r < 0.85:
                out.append(rng.choice(pools[3]))
            else:
                out.append(rng.choice(starters))
        yield "".join(map(chr, out))


def verify():
    from tokenizers import __version__ as tok_version
    from tokenizers import normalizers

    nfc = normalizers.NFC()
    failures = []

    marks, decomps = probe(normalizers.NFD())
    want_marks = [cp for cp in ALL_SCALARS if unknown_mark(cp)]
    if marks != want_marks or set(decomps) != TOKENIZERS_UNKNOWN_DECOMPOSITIONS:
        failures.append(f"tokenizers {tok_version} differs from unicodedata elsewhere than the lists in this "
                        f"script (see --probe): marks {[hex(c) for c in sorted(set(marks) ^ set(want_marks))]}, "
                        f"decompositions {[hex(c) for c in sorted(set(decomps) ^ TOKENIZERS_UNKNOWN_DECOMPOSITIONS)]}")

    py_differs = []
    n = 0
    for cp in ALL_SCALARS:  # every code point alone
        s = chr(cp)
        theirs, ours = nfc.normalize_str(s), model_nfc(s)
        n += 1
        if ours != theirs:
            failures.append(f"U+{cp:04X}: ours {ours!r}, tokenizers {theirs!r}")
        if unicodedata.normalize("NFC", s) != theirs:
            py_differs.append(s)
    rng = random.Random(1234)
    for s in verify_cases(rng):
        theirs, ours = nfc.normalize_str(s), model_nfc(s)
        n += 1
        if ours != theirs:
            failures.append(f"{[hex(ord(c)) for c in s]}: ours {[hex(ord(c)) for c in ours]}, "
                            f"tokenizers {[hex(ord(c)) for c in theirs]}")
        if model_nfc_plain([ord(c) for c in s]) != [ord(c) for c in ours]:
            failures.append(f"{[hex(ord(c)) for c in s]}: cutting at inert characters changes the result")
        if unicodedata.normalize("NFC", s) != theirs:
            py_differs.append(s)
    if failures:
        for f in failures[:40]:
            print(f, file=sys.stderr)
        sys.exit(f"verify: {len(failures)} of {n} strings differ from tokenizers {tok_version}")
    print(f"verify: {n} strings (every code point alone, between marks, and sequences) agree with "
          f"tokenizers {tok_version}")
    singles = sum(1 for s in py_differs if len(s) == 1)
    explained = all(any(unknown_mark(ord(c)) or ord(c) in (0x11938, 0x11935) for c in s) for s in py_differs)
    print(f"verify: unicodedata {unicodedata.unidata_version} NFC differs from tokenizers on {len(py_differs)} of "
          f"them ({singles} single code points); "
          + ("each contains a Unicode 10.0+ mark or U+11935/U+11938" if explained else "SOME FOR OTHER REASONS"))
    if not explained:
        sys.exit("verify: unicodedata differs from tokenizers where the tables do not say why")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--verify", action="store_true", help="also check against the installed tokenizers")
    ap.add_argument("--probe", action="store_true",
                    help="print where the installed tokenizers' tables differ from unicodedata, then exit")
    ap.add_argument("--out", default=OUT)
    a = ap.parse_args()
    if a.probe:
        from tokenizers import __version__ as tok_version
        from tokenizers import normalizers

        marks, decomps = probe(normalizers.NFD())
        print(f"tokenizers {tok_version}: {len(marks)} marks with ccc 0: {[hex(c) for c in marks]}")
        print(f"decompositions missing: {[hex(c) for c in decomps]}")
        return
    init_inert()
    text = render()
    with open(a.out, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {a.out} (Unicode {unicodedata.unidata_version} data, as tokenizers' {TOKENIZERS_UNICODE}; "
          f"{len(DECOMPOSITIONS)} decompositions, {len(COMPOSITES)} composites)")
    if a.verify:
        verify()


if __name__ == "__main__":
    main()
