// unmask/tokenizer/split_pretokenizer.hpp
//
// The `Split` pre-tokenizer of Llama-3 and Qwen2-style tokenizer.json files:
// a regex whose matches (behavior "Isolated") cut the text into the pieces
// that BPE then encodes one by one (a ByteLevel step with use_regex false only
// maps their bytes). Rather than run a regex engine, the patterns in use are
// recognised from a documented list and evaluated by hand, one code point
// class per character as in gpt2_pretokenizer.hpp:
//   qwen2   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|
//           ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//           (transformers' Qwen2Converter; Qwen2, Qwen2.5, Qwen3, Dream, SDAR)
//   llama3  the same with \p{N}{1,3} (Meta's Llama 3 tokenizer.json)
//   gpt2    the GPT-2 regex of gpt2_pretokenizer.hpp written as a Split
// At a match start the alternatives are tried in order, the first that matches
// wins (a leftmost-first search):
//  1. an apostrophe and s, t, re, ve, m, ll or d in any case (Oniguruma's
//     case-insensitive match also takes U+017F LONG S for s);
//  2. a letter run, with one character in front of it that is not a letter,
//     a number, CR or LF (a space, a tab, a punctuation mark: "(word", ".com");
//  3. one number (qwen2) or up to three (llama3): digits never merge further;
//  4. an optional U+0020, a run of "other" characters, then any CR/LF run;
//  5. `\s*[\r\n]+`: the whitespace run from here up to and including its last
//     CR or LF (the greedy \s* backs off to that newline);
//  6. `\s+(?!\S)`: a whitespace run without CR/LF taken whole at the end of
//     the text, or less its last character before a non-space (which then
//     prefixes the next word via 2 or 4);
//  7. `\s+`: a single whitespace character left before a non-space.
// Every character is in one of the classes, so the matches tile the text and
// the scan is linear.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "unmask/tokenizer/gpt2_pretokenizer.hpp"

namespace unmask {

enum class split_pattern : std::uint8_t { gpt2, llama3, qwen2 };

inline const char* split_pattern_name(split_pattern p) {
  switch (p) {
    case split_pattern::gpt2: return "gpt2";
    case split_pattern::llama3: return "llama3";
    default: return "qwen2";
  }
}

// The pattern of a Split pre-tokenizer's {"Regex": ...}, when it is one of the
// supported ones (compared as written in tokenizer.json, after JSON unescaping).
inline std::optional<split_pattern> recognize_split_pattern(std::string_view regex) {
  static constexpr std::string_view qwen2 =
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  static constexpr std::string_view llama3 =
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  static constexpr std::string_view gpt2 = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
  if (regex == qwen2) return split_pattern::qwen2;
  if (regex == llama3) return split_pattern::llama3;
  if (regex == gpt2) return split_pattern::gpt2;
  return std::nullopt;
}

namespace detail {

// The Llama-3 / Qwen2 scan; `max_digits` is 1 (qwen2) or 3 (llama3).
template <class Emit>
void llama3_family_split(std::string_view text, std::size_t max_digits, Emit&& emit) {
  const classified_text chars(text);
  const std::vector<std::uint32_t>& start = chars.start;
  const std::vector<gpt2_char_class>& cls = chars.cls;
  const std::vector<char32_t>& cp = chars.code_point;
  const std::size_t count = chars.size();
  const auto run_end = [&](std::size_t k, gpt2_char_class c) { return chars.run_end(k, c); };
  const auto newline = [&](std::size_t k) { return cp[k] == '\r' || cp[k] == '\n'; };
  const auto lower = [&](std::size_t k) -> char32_t {
    const char32_t c = cp[k];
    if (c >= 'A' && c <= 'Z') return c + ('a' - 'A');
    if (c == 0x17F) return 's';  // LATIN SMALL LETTER LONG S case-folds to s
    return c;
  };
  const auto contraction = [&](std::size_t k) -> std::size_t {  // characters matched by alternative 1, or 0
    if (cp[k] != '\'' || k + 1 >= count) return 0;
    const char32_t a = lower(k + 1);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (k + 2 >= count) return 0;
    const char32_t b = lower(k + 2);
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
  };

  std::size_t k = 0;
  while (k < count) {
    const gpt2_char_class c = cls[k];
    std::size_t end;
    if (const std::size_t len = contraction(k)) {
      end = k + len;
    } else if (c != gpt2_char_class::letter && c != gpt2_char_class::number && !newline(k) && k + 1 < count &&
               cls[k + 1] == gpt2_char_class::letter) {
      end = run_end(k + 1, gpt2_char_class::letter);  // [^\r\n\p{L}\p{N}]\p{L}+
    } else if (c == gpt2_char_class::letter) {
      end = run_end(k, c);
    } else if (c == gpt2_char_class::number) {
      end = run_end(k, c);
      if (end - k > max_digits) end = k + max_digits;
    } else if (c == gpt2_char_class::other ||
               (cp[k] == ' ' && k + 1 < count && cls[k + 1] == gpt2_char_class::other)) {
      end = run_end(c == gpt2_char_class::other ? k : k + 1, gpt2_char_class::other);
      while (end < count && newline(end)) ++end;  // [\r\n]*
    } else {
      const std::size_t ws_end = run_end(k, gpt2_char_class::whitespace);
      std::size_t last_newline = count;
      for (std::size_t j = ws_end; j > k; --j)
        if (newline(j - 1)) {
          last_newline = j - 1;
          break;
        }
      if (last_newline < count) end = last_newline + 1;            // \s*[\r\n]+
      else if (ws_end == count) end = count;                       // \s+(?!\S) at the end
      else if (ws_end - k >= 2) end = ws_end - 1;                  // \s+(?!\S) before a non-space
      else end = k + 1;                                            // \s+
    }
    emit(text.substr(start[k], start[end] - start[k]));
    k = end;
  }
}

}  // namespace detail

// Calls emit(std::string_view piece) for each piece of `text` (valid UTF-8)
// under `pattern`, in order; the pieces concatenate to `text`.
template <class Emit>
void pattern_split(split_pattern pattern, std::string_view text, Emit&& emit) {
  switch (pattern) {
    case split_pattern::gpt2: gpt2_split(text, emit); break;
    case split_pattern::llama3: detail::llama3_family_split(text, 3, emit); break;
    default: detail::llama3_family_split(text, 1, emit); break;
  }
}

inline std::vector<std::string_view> pattern_split(split_pattern pattern, std::string_view text) {
  std::vector<std::string_view> pieces;
  pattern_split(pattern, text, [&](std::string_view p) { pieces.push_back(p); });
  return pieces;
}

}  // namespace unmask
