// unmask/tokenizer/nfc.hpp
//
// Unicode Normalization Form C, as Hugging Face tokenizers' `normalizers.NFC`
// computes it (the normalizer {"type": "NFC"} of the Qwen2, Qwen3, Dream and
// SDAR tokenizer.json files).
//
// NFC is defined in UAX #15 (Unicode Normalization Forms) and, normatively, in
// The Unicode Standard, chapter 3: take the full canonical decomposition of
// the text (section 3.7, D68; each character replaced by its canonical
// decomposition mapping, recursively; Hangul syllables by the arithmetic of
// section 3.12), put it in canonical order (section 3.11, D108-D109: every run
// of non-starters, characters with a non-zero Canonical_Combining_Class, is
// sorted by that class, stably, so marks of equal class keep their order),
// then apply the canonical composition algorithm (D117): for each character C
// after the last starter L, if C is not blocked from L (D115: no character
// between them has class 0 or a class >= C's) and <L, C> is the canonical
// decomposition of a primary composite P (D114: not excluded from
// composition), L becomes P and C is removed; Hangul L+V and LV+T compose by
// arithmetic (section 3.12). The data (normalization_data, generated from
// Python's unicodedata by tools/make_normalization_tables.py) reproduces
// tokenizers' Unicode 9.0 tables; see that header.
//
// Most text is already normalized, so the work is confined to where it can
// matter. A character is "inert" when it has class 0, is its own NFC, and
// neither it nor the first character of its decomposition can compose with
// something before it (every code point below U+0300, Hangul syllables, CJK,
// precomposed Latin, Greek and Vietnamese letters...). Before an inert
// character the text can be cut: it is a starter that blocks everything after
// it from what precedes it, and nothing before it composes with it, so the NFC
// of the text is the NFC of the pieces laid end to end. nfc() copies runs of
// inert characters as they are (eight bytes at a time for ASCII) and sends
// each stretch that runs from an inert character up to the next one, i.e. a
// starter with its combining marks (or a Hangul jamo sequence), through
// decompose, order and compose. Each of those steps is linear in the stretch:
// a run of marks that is already in order (a megabyte of U+0301) is only
// checked, a short run out of order is insertion-sorted, a long one is
// counting-sorted by class (256 buckets), and composition keeps the class of
// the last mark it did not consume, which answers the blocked test in O(1).
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "unmask/tokenizer/gpt2_pretokenizer.hpp"
#include "unmask/tokenizer/unicode_normalization_tables.hpp"

namespace unmask::unicode {

namespace nfc_detail {

namespace data = normalization_data;

// Whether first <= c < first + count, without signed arithmetic.
inline bool in_span(char32_t c, char32_t first, char32_t count) {
  return static_cast<std::uint32_t>(c) - static_cast<std::uint32_t>(first) < static_cast<std::uint32_t>(count);
}

inline bool is_hangul_syllable(char32_t c) { return in_span(c, data::s_base, data::s_count); }

// The text being normalized, as code points with their combining classes.
struct segment_buffer {
  std::vector<char32_t> chars;
  std::vector<std::uint8_t> classes;  // ccc of chars[i]
  std::vector<char32_t> scratch;      // for the counting sort

  void push(char32_t c, std::uint8_t ccc) {
    chars.push_back(c);
    classes.push_back(ccc);
  }
  void push(char32_t c) { push(c, data::property_of(c).ccc); }
  void clear() {
    chars.clear();
    classes.clear();
  }
};

// Appends the full canonical decomposition of c, whose property is p (c itself
// when it has none).
inline void decompose(char32_t c, const data::property& p, segment_buffer& buf) {
  if (is_hangul_syllable(c)) {  // section 3.12, "Hangul Syllable Decomposition"
    const char32_t s = c - data::s_base;
    buf.push(data::l_base + s / data::n_count);
    buf.push(data::v_base + (s % data::n_count) / data::t_count);
    if (s % data::t_count != 0) buf.push(data::t_base + s % data::t_count);
    return;
  }
  if (!p.decomposes) {
    buf.push(c, p.ccc);
    return;
  }
  const char32_t* keys = data::decomposition_keys;
  const char32_t* keys_end = keys + std::size(data::decomposition_keys);
  const char32_t* it = std::lower_bound(keys, keys_end, c);  // present: the flag says so
  const std::uint16_t span = data::decomposition_spans[it - keys];
  const char32_t* first = data::decomposition_pool + (span >> 2);
  for (const char32_t* q = first; q != first + (span & 3) + 1; ++q) buf.push(*q);
}

// The primary composite of <a, b>, or 0 when there is none.
inline char32_t compose_pair(char32_t a, char32_t b) {
  if (in_span(a, data::l_base, data::l_count) && in_span(b, data::v_base, data::v_count))
    return data::s_base + ((a - data::l_base) * data::v_count + (b - data::v_base)) * data::t_count;
  if (is_hangul_syllable(a) && (a - data::s_base) % data::t_count == 0 &&
      in_span(b, data::t_base + 1, data::t_count - 1))
    return a + (b - data::t_base);
  const auto* first = data::compositions;
  const auto* last = first + std::size(data::compositions);
  const auto* it = std::lower_bound(first, last, std::pair<char32_t, char32_t>(a, b),
                                    [](const data::composition& e, const std::pair<char32_t, char32_t>& key) {
                                      return e.first != key.first ? e.first < key.first : e.second < key.second;
                                    });
  return it != last && it->first == a && it->second == b ? it->composite : 0;
}

// Sorts chars[begin, end), a run of non-starters, stably by class.
inline void sort_run(segment_buffer& buf, std::size_t begin, std::size_t end) {
  char32_t* chars = buf.chars.data();
  std::uint8_t* classes = buf.classes.data();
  if (end - begin <= 32) {  // insertion sort: a handful of marks
    for (std::size_t i = begin + 1; i < end; ++i) {
      const char32_t c = chars[i];
      const std::uint8_t k = classes[i];
      std::size_t j = i;
      for (; j > begin && classes[j - 1] > k; --j) {
        chars[j] = chars[j - 1];
        classes[j] = classes[j - 1];
      }
      chars[j] = c;
      classes[j] = k;
    }
    return;
  }
  std::array<std::size_t, 257> start{};  // counting sort, stable: start[k] = first slot of class k
  for (std::size_t i = begin; i < end; ++i) ++start[classes[i] + 1];
  for (std::size_t k = 1; k < start.size(); ++k) start[k] += start[k - 1];
  buf.scratch.resize(end - begin);
  for (std::size_t i = begin; i < end; ++i) buf.scratch[start[classes[i]]++] = chars[i];
  // Now start[k] is one past the last slot of class k: rewrite the classes too.
  std::size_t slot = 0;
  for (std::size_t k = 1; k < 256; ++k)
    for (; slot < start[k]; ++slot) classes[begin + slot] = static_cast<std::uint8_t>(k);
  std::copy(buf.scratch.begin(), buf.scratch.end(), chars + begin);
}

// Canonical ordering (D109) of the whole buffer.
inline void canonical_order(segment_buffer& buf) {
  const std::size_t n = buf.chars.size();
  std::size_t i = 0;
  while (i < n) {
    if (buf.classes[i] == 0) {
      ++i;
      continue;
    }
    std::size_t end = i + 1;
    bool ordered = true;
    for (; end < n && buf.classes[end] != 0; ++end)
      if (buf.classes[end] < buf.classes[end - 1]) ordered = false;
    if (!ordered) sort_run(buf, i, end);
    i = end;
  }
}

// Canonical composition (D117) of the ordered buffer, appended to out as UTF-8.
inline void compose_into(segment_buffer& buf, std::string& out) {
  char32_t* chars = buf.chars.data();
  const std::size_t n = buf.chars.size();
  std::size_t kept = 0;                         // chars[0, kept) is the result so far
  std::size_t starter = n;                      // index of the last starter in the result; n = none yet
  int last_class = -1;                          // class of the last kept char after it; -1 = none
  for (std::size_t i = 0; i < n; ++i) {
    const char32_t c = chars[i];
    const int k = buf.classes[i];
    // Not blocked: adjacent to the starter, or every mark between has a lower
    // (and, being ordered, non-zero) class.
    if (starter != n && (last_class < 0 || last_class < k) && data::property_of(c).combines_backward) {
      const char32_t composite = compose_pair(chars[starter], c);
      if (composite != 0) {
        chars[starter] = composite;
        continue;
      }
    }
    if (k == 0) {
      starter = kept;
      last_class = -1;
    } else {
      last_class = k;
    }
    chars[kept++] = c;
  }
  for (std::size_t i = 0; i < kept; ++i) utf8::append(out, chars[i]);
}

// Whether the eight bytes at p are all ASCII.
inline bool ascii8(const char* p) {
  std::uint64_t w;
  std::memcpy(&w, p, sizeof w);
  return (w & 0x8080808080808080ull) == 0;
}

}  // namespace nfc_detail

// The NFC form of valid UTF-8 text. (Bytes that are not well-formed UTF-8,
// outside the contract, are passed through unchanged and cut the text like an
// inert character.)
inline std::string nfc(std::string_view text) {
  using nfc_detail::data::property_of;
  constexpr std::size_t none = std::string_view::npos;
  const std::size_t n = text.size();
  std::string out;
  nfc_detail::segment_buffer buf;
  std::size_t copied = 0;         // text[0, copied) is accounted for in out
  std::size_t prev_inert = none;  // start of the previous character when it is inert
  std::size_t i = 0;
  while (i < n) {
    if (static_cast<unsigned char>(text[i]) < 0x80) {
      while (i + 8 <= n && nfc_detail::ascii8(text.data() + i)) i += 8;
      while (i < n && static_cast<unsigned char>(text[i]) < 0x80) ++i;
      prev_inert = i - 1;
      continue;
    }
    const std::size_t len = utf8::sequence_length(text, i);
    if (len == 0) {  // not UTF-8: leave the byte alone
      prev_inert = none;
      ++i;
      continue;
    }
    if (property_of(utf8::decode_at(text, i, len)).inert) {
      prev_inert = i;
      i += len;
      continue;
    }
    // Normalize from the inert character before this one (it may compose with
    // what follows) up to the next inert character.
    const std::size_t start = prev_inert != none ? prev_inert : i;
    if (out.empty()) out.reserve(n + n / 8);
    out.append(text, copied, start - copied);
    buf.clear();
    std::size_t j = start;
    while (j < n) {
      const std::size_t m = static_cast<unsigned char>(text[j]) < 0x80 ? 1 : utf8::sequence_length(text, j);
      if (m == 0) break;
      const char32_t c = utf8::decode_at(text, j, m);
      const auto& p = property_of(c);
      if (j != start && p.inert) break;
      nfc_detail::decompose(c, p, buf);
      j += m;
    }
    nfc_detail::canonical_order(buf);
    nfc_detail::compose_into(buf, out);
    copied = i = j;
    prev_inert = none;
  }
  if (copied == 0) return std::string(text);
  out.append(text, copied, n - copied);
  return out;
}

// True when every character of text is inert, so that nfc(text) == text with
// no work at all (pure ASCII, for one). False means only "not certain": the
// text may still be in NFC (a lone combining mark, an already composed
// sequence with marks).
inline bool is_trivially_nfc(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    if (static_cast<unsigned char>(text[i]) < 0x80) {
      ++i;
      continue;
    }
    const std::size_t len = utf8::sequence_length(text, i);
    if (len == 0) return false;
    if (!normalization_data::property_of(utf8::decode_at(text, i, len)).inert) return false;
    i += len;
  }
  return true;
}

}  // namespace unmask::unicode
