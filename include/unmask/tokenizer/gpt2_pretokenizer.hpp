// unmask/tokenizer/gpt2_pretokenizer.hpp
//
// The byte-level layer under a GPT-2 style BPE tokenizer: UTF-8 checking,
// the GPT-2 pre-tokenizer split and the byte <-> code point alphabet.
//
// Pre-tokenization cuts text into pieces with the regex of GPT-2
// (openai/gpt-2 src/encoder.py; the same pattern as Hugging Face tokenizers'
// ByteLevel pre-tokenizer)
//     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// taken as the successive non-overlapping matches of a left-to-right search.
// It is evaluated here by hand, one code point class per character (letter,
// number, whitespace or other, from unicode_categories.hpp). At a match start
// the alternatives are tried in order and the first that matches wins:
//  1. an apostrophe followed by s, t, re, ve, m, ll or d (lower case only);
//  2-4. an optional U+0020 and then a maximal run of letters, of numbers, or
//     of "other" characters: a space followed by such a character starts the
//     run, otherwise the run starts at the character itself (a leading
//     apostrophe is simply an "other" character there);
//  5. `\s+(?!\S)`: the greedy whitespace run backs off until what follows is
//     not a non-space, so a run reaching the end of the text is taken whole,
//     and a run of k >= 2 characters before a non-space gives its first k - 1
//     characters (the last one starts the next match: with the word after
//     it when it is U+0020, via 2-4, alone otherwise, via 6);
//  6. `\s+`: what is left is one whitespace character other than U+0020
//     (a tab, a newline, U+00A0...) right before a non-space: it stands alone
//     (a U+0020 there was already taken by 2-4).
// Every character is in one of the four classes, so the matches tile the text
// and the scan is linear.
//
// Byte-level BPE works on bytes, written as printable code points so that
// every token is a string: GPT-2's bytes_to_unicode maps the printable bytes
// '!'..'~', U+00A1..U+00AC and U+00AE..U+00FF to themselves and the other 68
// bytes, in increasing order, to U+0100, U+0101, ... (space 0x20 -> U+0120
// 'Ġ', newline 0x0A -> U+010A 'Ċ').
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "unmask/tokenizer/unicode_categories.hpp"

namespace unmask {

// ---- UTF-8 -------------------------------------------------------------------

namespace utf8 {

inline constexpr std::size_t npos = std::string_view::npos;
inline constexpr char32_t replacement_character = 0xFFFD;

// Length of the well-formed UTF-8 sequence at s[i] (Unicode Table 3-7: no
// overlong forms, no surrogates, nothing above U+10FFFF), or 0 when the bytes
// there are not one. `prefix` receives the length of the longest prefix that
// could still begin a well-formed sequence (at least 1): the "maximal subpart"
// that a lossy decoder replaces with one U+FFFD.
inline std::size_t sequence_length(std::string_view s, std::size_t i, std::size_t* prefix = nullptr) {
  const unsigned char b0 = static_cast<unsigned char>(s[i]);
  if (prefix) *prefix = 1;
  if (b0 < 0x80) return 1;
  std::size_t need;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return 0;  // 0x80..0xC1, 0xF5..0xFF never start a sequence
  }
  for (std::size_t k = 1; k < need; ++k) {
    if (i + k >= s.size()) return 0;
    const unsigned char b = static_cast<unsigned char>(s[i + k]);
    const bool ok = k == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    if (!ok) return 0;
    if (prefix) *prefix = k + 1;
  }
  return need;
}

// Offset of the first byte that is not part of well-formed UTF-8, or npos.
inline std::size_t find_invalid(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    const std::size_t n = sequence_length(s, i);
    if (n == 0) return i;
    i += n;
  }
  return npos;
}

// The code point of the well-formed sequence of length n at s[i].
inline char32_t decode_at(std::string_view s, std::size_t i, std::size_t n) {
  const auto byte = [&](std::size_t k) { return char32_t(static_cast<unsigned char>(s[i + k])); };
  switch (n) {
    case 1: return byte(0);
    case 2: return ((byte(0) & 0x1F) << 6) | (byte(1) & 0x3F);
    case 3: return ((byte(0) & 0x0F) << 12) | ((byte(1) & 0x3F) << 6) | (byte(2) & 0x3F);
    default: return ((byte(0) & 0x07) << 18) | ((byte(1) & 0x3F) << 12) | ((byte(2) & 0x3F) << 6) | (byte(3) & 0x3F);
  }
}

inline void append(std::string& out, char32_t c) {
  if (c < 0x80) {
    out += char(c);
  } else if (c < 0x800) {
    out += char(0xC0 | (c >> 6));
    out += char(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += char(0xE0 | (c >> 12));
    out += char(0x80 | ((c >> 6) & 0x3F));
    out += char(0x80 | (c & 0x3F));
  } else {
    out += char(0xF0 | (c >> 18));
    out += char(0x80 | ((c >> 12) & 0x3F));
    out += char(0x80 | ((c >> 6) & 0x3F));
    out += char(0x80 | (c & 0x3F));
  }
}

// Bytes to valid UTF-8 the way Rust's String::from_utf8_lossy (and Python's
// bytes.decode("utf-8", "replace")) do it: each maximal subpart of an
// ill-formed sequence becomes one U+FFFD (Unicode 15, section 3.9, "U+FFFD
// Substitution of Maximal Subparts"). So a truncated E2 82 is one U+FFFD, while
// F0 80 (80 cannot follow F0) and the surrogate ED A0 80 are two and three.
inline std::string repair_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  std::size_t i = 0;
  while (i < bytes.size()) {
    std::size_t prefix = 1;
    const std::size_t n = sequence_length(bytes, i, &prefix);
    if (n != 0) {
      out.append(bytes.substr(i, n));
      i += n;
    } else {
      append(out, replacement_character);
      i += prefix;
    }
  }
  return out;
}

}  // namespace utf8

// ---- GPT-2 pre-tokenizer split -------------------------------------------------

enum class gpt2_char_class : std::uint8_t { letter, number, whitespace, other };

inline gpt2_char_class classify_gpt2(char32_t c) {
  if (c < 0x80) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return gpt2_char_class::letter;
    if (c >= '0' && c <= '9') return gpt2_char_class::number;
    if (c == ' ' || (c >= 0x09 && c <= 0x0D)) return gpt2_char_class::whitespace;
    return gpt2_char_class::other;
  }
  if (unicode::is_letter(c)) return gpt2_char_class::letter;
  if (unicode::is_number(c)) return gpt2_char_class::number;
  if (unicode::is_whitespace(c)) return gpt2_char_class::whitespace;
  return gpt2_char_class::other;
}

// The characters of a text for a pre-tokenizer scan: per character its byte
// offset (one extra offset marks the end), code point and class.
struct classified_text {
  std::vector<std::uint32_t> start;
  std::vector<char32_t> code_point;
  std::vector<gpt2_char_class> cls;

  explicit classified_text(std::string_view text) {
    start.reserve(text.size() + 1);
    code_point.reserve(text.size());
    cls.reserve(text.size());
    for (std::size_t i = 0; i < text.size();) {
      std::size_t n = utf8::sequence_length(text, i);
      if (n == 0) n = 1;  // not reached for valid input; keeps the scan total
      const char32_t c = utf8::decode_at(text, i, n);
      start.push_back(std::uint32_t(i));
      code_point.push_back(c);
      cls.push_back(classify_gpt2(c));
      i += n;
    }
    start.push_back(std::uint32_t(text.size()));
  }

  std::size_t size() const { return cls.size(); }
  // The end of the run of class `c` that starts at character k.
  std::size_t run_end(std::size_t k, gpt2_char_class c) const {
    while (k < cls.size() && cls[k] == c) ++k;
    return k;
  }
};

// Calls emit(std::string_view piece) for each piece of `text`, in order; the
// pieces concatenate to `text`. `text` must be valid UTF-8.
template <class Emit>
void gpt2_split(std::string_view text, Emit&& emit) {
  const classified_text chars(text);
  const std::vector<std::uint32_t>& start = chars.start;
  const std::vector<gpt2_char_class>& cls = chars.cls;
  const std::size_t count = chars.size();
  const auto run_end = [&](std::size_t k, gpt2_char_class c) { return chars.run_end(k, c); };
  const auto contraction = [&](std::size_t pos) -> std::size_t {  // bytes matched by alternative 1, or 0
    if (text[pos] != '\'' || pos + 1 >= text.size()) return 0;
    const char a = text[pos + 1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (pos + 2 >= text.size()) return 0;
    const char b = text[pos + 2];
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
  };

  std::size_t k = 0;
  while (k < count) {
    const std::size_t pos = start[k];
    if (const std::size_t len = contraction(pos)) {
      emit(text.substr(pos, len));
      k += len;  // ASCII: one character per byte
      continue;
    }
    std::size_t end;
    const gpt2_char_class c = cls[k];
    if (text[pos] == ' ' && k + 1 < count && cls[k + 1] != gpt2_char_class::whitespace) {
      end = run_end(k + 1, cls[k + 1]);  // " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+" with the space
    } else if (c != gpt2_char_class::whitespace) {
      end = run_end(k, c);  // the same without the space
    } else {
      end = run_end(k, c);
      if (end < count && end - k >= 2) --end;  // "\s+(?!\S)" leaves the last space to the next word
    }
    emit(text.substr(pos, start[end] - pos));
    k = end;
  }
}

inline std::vector<std::string_view> gpt2_split(std::string_view text) {
  std::vector<std::string_view> pieces;
  gpt2_split(text, [&](std::string_view p) { pieces.push_back(p); });
  return pieces;
}

// ---- bytes_to_unicode -----------------------------------------------------------

// GPT-2's byte <-> code point alphabet (openai/gpt-2 src/encoder.py,
// bytes_to_unicode): printable bytes stay, the others go to U+0100 + n.
class byte_level_alphabet {
 public:
  static const byte_level_alphabet& get() {
    static const byte_level_alphabet instance;
    return instance;
  }

  char32_t code_point(unsigned char b) const { return code_point_[b]; }
  // The UTF-8 text of the code point of byte b ("Ġ" for a space).
  const std::string& symbol(unsigned char b) const { return symbol_[b]; }
  // The byte written as code point c, or -1 when c is not in the alphabet.
  int byte_of(char32_t c) const { return c < byte_of_.size() ? byte_of_[c] : -1; }

 private:
  byte_level_alphabet() {
    byte_of_.fill(-1);
    char32_t next = 0x100;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      const char32_t c = printable ? char32_t(b) : next++;
      code_point_[std::size_t(b)] = c;
      byte_of_[c] = std::int16_t(b);
      utf8::append(symbol_[std::size_t(b)], c);
    }
  }

  std::array<char32_t, 256> code_point_{};
  std::array<std::string, 256> symbol_;
  std::array<std::int16_t, 0x100 + 68> byte_of_{};
};

}  // namespace unmask
