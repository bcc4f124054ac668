// unmask::unicode::nfc against Hugging Face tokenizers 0.22.1's NFC normalizer
// (tests/data/tokenizer/nfc_cases.jsonl, written by tools/make_nfc_goldens.py):
// every case must match exactly, including those where tokenizers' Unicode 9.0
// tables differ from newer Unicode. Then properties that hold for any input:
// NFC is idempotent, its output is valid UTF-8, ASCII and other inert text comes
// back unchanged, and long runs of combining marks take linear time.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <initializer_list>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "unmask/tokenizer/nfc.hpp"

namespace {

using json = nlohmann::json;
using unmask::unicode::nfc;

// $UNMASK_TEST_DATA_DIR when set, else the source tree's (as tests/support/test_files.hpp).
std::string data_dir() {
  const char* moved = std::getenv("UNMASK_TEST_DATA_DIR");
  return moved && *moved ? moved : UNMASK_TEST_DATA_DIR;
}

std::string u8(std::initializer_list<char32_t> cps) {
  std::string out;
  for (char32_t c : cps) unmask::utf8::append(out, c);
  return out;
}

std::string show_code_points(const std::string& s) {  // code points, for messages
  std::string out;
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = unmask::utf8::sequence_length(s, i);
    if (n == 0) return out + " <invalid>";
    char buf[16];
    std::snprintf(buf, sizeof buf, "%sU+%04X", out.empty() ? "" : " ", unsigned(unmask::utf8::decode_at(s, i, n)));
    out += buf;
    i += n;
  }
  return "[" + out + "]";
}

struct golden {
  std::string kind, in, want;
};

const std::vector<golden>& goldens() {
  static const std::vector<golden> all = [] {
    std::vector<golden> out;
    std::ifstream in(data_dir() + "/tokenizer/nfc_cases.jsonl");
    EXPECT_TRUE(in.good()) << "cannot open nfc_cases.jsonl";
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      const json j = json::parse(line);
      for (const json& c : j["cases"]) {
        const std::string s = c[0].get<std::string>();
        out.push_back({j["kind"].get<std::string>(), s, c.size() > 1 ? c[1].get<std::string>() : s});
      }
    }
    return out;
  }();
  return all;
}

TEST(Nfc, MatchesTokenizers) {
  const auto& cases = goldens();
  ASSERT_GT(cases.size(), 10000u);
  int failures = 0;
  for (const golden& g : cases) {
    const std::string got = nfc(g.in);
    if (got != g.want && ++failures <= 20)
      ADD_FAILURE() << g.kind << " " << show_code_points(g.in) << "\n  nfc:      " << show_code_points(got) << "\n  expected: " << show_code_points(g.want);
  }
  EXPECT_EQ(failures, 0) << "of " << cases.size() << " cases";
}

TEST(Nfc, EveryKindIsPresent) {
  std::vector<std::string> kinds;
  for (const golden& g : goldens())
    if (kinds.empty() || kinds.back() != g.kind) kinds.push_back(g.kind);
  for (const char* k : {"decomposable", "decomposed", "with_marks", "pair", "mark_class", "reorder", "blocked",
                        "hangul", "singleton", "exclusion", "script", "emoji", "tokenizers_9_0", "random"})
    EXPECT_NE(std::find(kinds.begin(), kinds.end(), k), kinds.end()) << k;
}

TEST(Nfc, HandPickedCases) {
  EXPECT_EQ(nfc(""), "");
  EXPECT_EQ(nfc(u8({'e', 0x301})), u8({0xE9}));
  EXPECT_EQ(nfc(u8({0x212B})), u8({0xC5}));              // ANGSTROM SIGN, a singleton
  EXPECT_EQ(nfc(u8({0x2126})), u8({0x3A9}));             // OHM SIGN
  EXPECT_EQ(nfc(u8({0x958})), u8({0x915, 0x93C}));       // excluded from composition
  EXPECT_EQ(nfc(u8({0x915, 0x93C})), u8({0x915, 0x93C}));
  EXPECT_EQ(nfc(u8({0x344})), u8({0x308, 0x301}));       // non-starter decomposition
  EXPECT_EQ(nfc(u8({'a', 0x323, 0x302})), u8({0x1EAD}));  // reordered, then composed twice
  EXPECT_EQ(nfc(u8({'a', 0x302, 0x323})), u8({0x1EAD}));
  EXPECT_EQ(nfc(u8({'u', 0x301, 0x308})), u8({0xFA, 0x308}));  // U+0308 blocked by U+0301 (same class)
  EXPECT_EQ(nfc(u8({'u', 0x308, 0x301})), u8({0x1D8}));
  EXPECT_EQ(nfc(u8({0x1100, 0x1161, 0x11A8})), u8({0xAC01}));  // L V T
  EXPECT_EQ(nfc(u8({0xAC00, 0x11A8})), u8({0xAC01}));          // LV T
  EXPECT_EQ(nfc(u8({0xAC01, 0x11A8})), u8({0xAC01, 0x11A8}));  // LVT T: no
  EXPECT_EQ(nfc(u8({0xAC00, 0x11A7})), u8({0xAC00, 0x11A7}));  // U+11A7 is not a T jamo
  EXPECT_EQ(nfc(u8({0x1100, 0x301, 0x1161})), u8({0x1100, 0x301, 0x1161}));  // V blocked by the mark
  EXPECT_EQ(nfc(u8({0xB47, 0xB3E})), u8({0xB4B}));             // two starters compose
  // tokenizers' Unicode 9.0 tables: U+1DFA (Unicode 14) is ccc 0 there, so not reordered.
  EXPECT_EQ(nfc(u8({'a', 0x1DFA, 0x334})), u8({'a', 0x1DFA, 0x334}));
  EXPECT_EQ(nfc(u8({0x11935, 0x11930})), u8({0x11935, 0x11930}));
  EXPECT_STREQ(unmask::unicode::normalization_data::matches_unicode, "9.0.0");
}

TEST(Nfc, AsciiAndInertTextAreUnchanged) {
  std::string ascii;
  for (int c = 0; c < 0x80; ++c) ascii += char(c);
  for (int rep = 0; rep < 5; ++rep) ascii += ascii;
  EXPECT_EQ(nfc(ascii), ascii);
  EXPECT_TRUE(unmask::unicode::is_trivially_nfc(ascii));
  std::string below_0300;
  for (char32_t c = 0; c < 0x300; ++c) unmask::utf8::append(below_0300, c);
  EXPECT_EQ(nfc(below_0300), below_0300);
  EXPECT_TRUE(unmask::unicode::is_trivially_nfc(below_0300));
  const std::string korean = u8({0xD55C, 0xAD6D, 0xC5B4, ' ', 0xC548, 0xB155});
  EXPECT_EQ(nfc(korean), korean);
  EXPECT_TRUE(unmask::unicode::is_trivially_nfc(korean));
  EXPECT_FALSE(unmask::unicode::is_trivially_nfc(u8({'e', 0x301})));
  EXPECT_FALSE(unmask::unicode::is_trivially_nfc(u8({0x212B})));
}

// Random strings over a pool of marks, starters, jamo and decomposables.
std::vector<std::string> random_strings(std::size_t count) {
  const std::vector<char32_t> pool = {
      'a', 'e', 'o', 'u', 'A', ' ', 0xC5, 0xE9, 0x1EC7, 0x300, 0x301, 0x302, 0x308, 0x313, 0x316, 0x31B, 0x323,
      0x327, 0x334, 0x345, 0x344, 0x340, 0x3B1, 0x1F71, 0x212B, 0x2126, 0x958, 0x915, 0x93C, 0x94D, 0xB47,
      0xB3E, 0xB57, 0x1100, 0x1161, 0x11A7, 0x11A8, 0xAC00, 0xAC01, 0x5B0, 0x5BC, 0x651, 0x64E, 0xF73, 0xF71,
      0xF72, 0x1DFA, 0x1D15E, 0x1D165, 0x1F600, 0x200D, 0xFE0F, 0x11935, 0x11930};
  std::mt19937 rng(7);
  std::vector<std::string> out;
  for (std::size_t i = 0; i < count; ++i) {
    std::string s;
    const int n = 1 + int(rng() % 16);
    for (int k = 0; k < n; ++k) unmask::utf8::append(s, pool[rng() % pool.size()]);
    out.push_back(std::move(s));
  }
  return out;
}

TEST(Nfc, IsIdempotentAndValid) {
  std::vector<std::string> inputs = random_strings(20000);
  for (const golden& g : goldens()) inputs.push_back(g.in);
  int failures = 0;
  for (const std::string& s : inputs) {
    const std::string once = nfc(s);
    const bool valid = unmask::utf8::find_invalid(once) == unmask::utf8::npos;
    const bool stable = nfc(once) == once;
    const bool trivial_ok = !unmask::unicode::is_trivially_nfc(s) || once == s;
    if ((!valid || !stable || !trivial_ok) && ++failures <= 10)
      ADD_FAILURE() << show_code_points(s) << " -> " << show_code_points(once) << (valid ? "" : " invalid UTF-8")
                    << (stable ? "" : " not idempotent") << (trivial_ok ? "" : " changed trivially-NFC text");
  }
  EXPECT_EQ(failures, 0);
}

TEST(Nfc, NormalizesPiecesIndependently) {
  // Text joined from pieces normalizes as the pieces do when each piece
  // starts with ASCII (inert): the segmentation must not leak across.
  const auto pieces = random_strings(2000);
  std::string joined, want;
  for (const std::string& p : pieces) {
    joined += "x" + p;
    want += nfc("x" + p);
  }
  EXPECT_EQ(nfc(joined), want);
}

TEST(Nfc, LongRunsOfMarksAreLinear) {
  const auto timed = [](const std::string& s) {
    const auto t0 = std::chrono::steady_clock::now();
    std::string out = nfc(s);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    return std::make_pair(std::move(out), ms);
  };
  // "a" and half a million U+0301 (a megabyte): the first mark composes, the rest are blocked.
  std::string acutes = "a";
  for (int i = 0; i < 500000; ++i) acutes += "\xCC\x81";
  const auto [out, ms] = timed(acutes);
  EXPECT_EQ(out.substr(0, 2), "\xC3\xA1");
  EXPECT_EQ(out.size(), acutes.size() - 1);  // "a" U+0301 (3 bytes) became U+00E1 (2)
  // Marks out of order: U+0301 (230) and U+0316 (220) alternating, sorted by class.
  std::string mixed = "o";
  for (int i = 0; i < 250000; ++i) mixed += "\xCC\x81\xCC\x96";
  const auto [out2, ms2] = timed(mixed);
  EXPECT_EQ(out2.substr(0, 4), "\xC3\xB3\xCC\x96");  // U+00F3 then the first U+0316
  EXPECT_EQ(out2.substr(out2.size() - 2), "\xCC\x81");
  EXPECT_EQ(out2.size(), mixed.size() - 1);
  // Generous bounds (sanitizers, shared machines): quadratic behaviour would take minutes.
  EXPECT_LT(ms, 5000.0);
  EXPECT_LT(ms2, 5000.0);
}

TEST(Nfc, InvalidBytesPassThrough) {
  // Outside the contract, but must stay memory-safe and leave the bytes alone.
  EXPECT_EQ(nfc("a\xFF" "e\xCC\x81"), "a\xFF\xC3\xA9");
  EXPECT_EQ(nfc("e\xCC"), "e\xCC");
  EXPECT_EQ(nfc("\xCC\x81\xE2\x82"), "\xCC\x81\xE2\x82");
}

}  // namespace
