// unmask/chat/template_lexer.hpp
//
// Splits a chat template into tokens the way Jinja2's lexer (3.1, with
// transformers' trim_blocks=True and lstrip_blocks=True) does, because the
// whitespace around tags is where renderings differ. The source first has its
// line breaks (\r\n, \r) turned into \n and one trailing newline removed
// (keep_trailing_newline=False). Then text runs until the next `{{`, `{%` or
// `{#`:
//  - a tag opened with `-` (`{%-`, `{{-`, `{#-`) removes all whitespace
//    before it;
//  - otherwise, for `{%` and `{#` but not `{{` and not `{%+`, lstrip_blocks
//    removes the spaces and tabs between the start of the line and the tag,
//    when nothing else is on the line before it. "Start of the line" includes
//    the start of a text run that directly follows a newline the previous
//    token consumed, exactly as Jinja2's `line_starting` flag;
//  - a block or comment closed with `-%}` / `-#}` removes all whitespace after
//    it, one closed with `%}` / `#}` removes a single "\n" after it
//    (trim_blocks), and `+%}` keeps it; `}}` keeps it, `-}}` removes it all.
// Inside tags the tokens are names, strings (with Python's escapes), integers,
// floats and operators; an end marker inside open brackets is an operator, as
// in Jinja2 (so `{{ {'a': {'b': 1}} }}` works). Comments are dropped.
// Every token carries its 1-based line and column (in code points) for error
// messages. `{% raw %}` and line statements are not supported.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "unmask/chat/template_value.hpp"
#include "unmask/core/error.hpp"

namespace unmask {
namespace chat_detail {

enum class token_kind { data, block_begin, block_end, variable_begin, variable_end, name, string, integer, floating, op, eof };

struct token {
  token_kind kind = token_kind::eof;
  std::string text;  // data, name, operator, or the decoded string literal
  std::int64_t integer = 0;
  double floating = 0.0;
  int line = 1;
  int column = 1;
};

// Where an error is: "'<source>' chat_template <line>:<column>: <what>".
inline std::string template_location(const std::string& source, int line, int column) {
  return concat("'", source, "' chat_template ", line, ":", column, ": ");
}

class template_lexer {
 public:
  template_lexer(std::string_view text, std::string source) : source_(std::move(source)) {
    // Jinja2: split on \r\n|\r|\n, drop one trailing empty line, join with \n.
    text_.reserve(text.size());
    for (std::size_t k = 0; k < text.size(); ++k) {
      if (text[k] == '\r') {
        text_ += '\n';
        if (k + 1 < text.size() && text[k + 1] == '\n') ++k;
      } else {
        text_ += text[k];
      }
    }
    if (!text_.empty() && text_.back() == '\n') text_.pop_back();
  }

  std::vector<token> tokenize() {
    if (!utf8_valid(text_)) fail(0, "template is not valid UTF-8");
    std::vector<token> out;
    std::size_t pos = 0;
    bool line_starting = true;
    const std::size_t n = text_.size();
    while (pos < n) {
      const std::size_t tag = find_tag(pos);
      if (tag == std::string::npos) {
        push(out, token_kind::data, pos, text_.substr(pos));
        break;
      }
      const char type = text_[tag + 1];  // '{', '%' or '#'
      const char sign = tag + 2 < n ? text_[tag + 2] : '\0';
      std::string data = text_.substr(pos, tag - pos);
      if (sign == '-') {
        data.erase(rstrip_end(data));
      } else if (sign != '+' && type != '{') {
        // lstrip_blocks: strip whitespace from the line start to the tag.
        const std::size_t line_pos = data.rfind('\n') == std::string::npos ? 0 : data.rfind('\n') + 1;
        if (line_pos > 0 || line_starting) {
          bool blank = line_pos < data.size();
          for (std::size_t k = line_pos; k < data.size() && blank; ++k) blank = is_ascii_space(data[k]);
          if (blank) data.erase(line_pos);
        }
      }
      if (!data.empty()) push(out, token_kind::data, pos, std::move(data));
      std::size_t body = tag + 2 + ((sign == '-' || sign == '+') ? 1 : 0);
      if (type == '#') {
        pos = skip_comment(tag, body, line_starting);
        continue;
      }
      if (type == '%') check_raw(tag, body);
      push(out, type == '%' ? token_kind::block_begin : token_kind::variable_begin, tag, {});
      pos = lex_tag(out, body, type == '%', line_starting);
    }
    token end;
    end.kind = token_kind::eof;
    locate(n, end.line, end.column);
    out.push_back(std::move(end));
    return out;
  }

  // Line and column of a byte offset. Tokens are located in increasing order,
  // so this walks on from the previous answer: linear in the template overall.
  void locate(std::size_t offset, int& line, int& column) const {
    if (offset < cache_offset_) {
      cache_offset_ = 0;
      cache_line_ = 1;
      cache_column_ = 1;
    }
    for (; cache_offset_ < offset && cache_offset_ < text_.size(); ++cache_offset_) {
      const char c = text_[cache_offset_];
      if (c == '\n') {
        ++cache_line_;
        cache_column_ = 1;
      } else if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) {
        ++cache_column_;
      }
    }
    line = cache_line_;
    column = cache_column_;
  }

 private:
  [[noreturn]] void fail(std::size_t offset, const std::string& what) const {
    int line = 1, column = 1;
    locate(offset, line, column);
    throw config_error(template_location(source_, line, column) + what);
  }

  static bool is_ascii_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

  // Python's str.rstrip(): the end of `s` without trailing whitespace.
  static std::size_t rstrip_end(const std::string& s) {
    const std::vector<char32_t> cps = utf8_decode(s);
    std::size_t keep = cps.size();
    while (keep > 0 && python_space(cps[keep - 1])) --keep;
    return utf8_encode(cps, 0, keep).size();
  }

  void push(std::vector<token>& out, token_kind kind, std::size_t offset, std::string text) const {
    token t;
    t.kind = kind;
    t.text = std::move(text);
    locate(offset, t.line, t.column);
    out.push_back(std::move(t));
  }

  std::size_t find_tag(std::size_t pos) const {
    for (std::size_t k = text_.find('{', pos); k != std::string::npos; k = text_.find('{', k + 1)) {
      if (k + 1 < text_.size() && (text_[k + 1] == '{' || text_[k + 1] == '%' || text_[k + 1] == '#')) return k;
    }
    return std::string::npos;
  }

  std::size_t skip_whitespace_after(std::size_t pos) const {
    while (pos < text_.size()) {
      const std::size_t len = space_length(pos);
      if (len == 0) break;
      pos += len;
    }
    return pos;
  }

  // Length in bytes of the whitespace character at pos (Python's \s), or 0.
  std::size_t space_length(std::size_t pos) const {
    const auto c = static_cast<unsigned char>(text_[pos]);
    if (c < 0x80) return python_space(c) ? 1 : 0;
    std::size_t len = (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : 4;
    if (pos + len > text_.size()) return 0;
    const std::vector<char32_t> cp = utf8_decode(std::string_view(text_).substr(pos, len));
    return cp.size() == 1 && python_space(cp[0]) ? len : 0;
  }

  std::size_t skip_comment(std::size_t tag, std::size_t body, bool& line_starting) const {
    for (std::size_t k = body; k < text_.size(); ++k) {
      if (text_[k] == '-' && text_.compare(k + 1, 2, "#}") == 0) {
        const std::size_t end = skip_whitespace_after(k + 3);
        line_starting = end > 0 && text_[end - 1] == '\n';
        return end;
      }
      if (text_[k] == '+' && text_.compare(k + 1, 2, "#}") == 0) {
        line_starting = false;
        return k + 3;
      }
      if (text_.compare(k, 2, "#}") == 0) {
        std::size_t end = k + 2;
        if (end < text_.size() && text_[end] == '\n') ++end;
        line_starting = text_[end - 1] == '\n';
        return end;
      }
    }
    fail(tag, "missing end of comment tag");
  }

  void check_raw(std::size_t tag, std::size_t body) const {
    std::size_t k = body;
    while (k < text_.size() && is_ascii_space(text_[k])) ++k;
    if (text_.compare(k, 3, "raw") == 0 && (k + 3 >= text_.size() || !is_name_char(text_[k + 3])))
      fail(tag, "unsupported statement 'raw'");
  }

  static bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
  static bool is_name_char(char c) { return is_name_start(c) || (c >= '0' && c <= '9'); }
  static bool is_digit(char c) { return c >= '0' && c <= '9'; }

  // The tokens of one `{% %}` or `{{ }}`, up to and including its end marker.
  std::size_t lex_tag(std::vector<token>& out, std::size_t pos, bool block, bool& line_starting) {
    std::vector<char> brackets;
    const std::size_t n = text_.size();
    while (true) {
      if (pos >= n) {
        if (!brackets.empty()) fail(n, concat("unexpected end of template, expected '", brackets.back(), "'"));
        fail(n, block ? "unexpected end of template, expected '%}'" : "unexpected end of template, expected '}}'");
      }
      if (brackets.empty()) {
        if (block) {
          if (text_.compare(pos, 3, "+%}") == 0) {
            push(out, token_kind::block_end, pos, {});
            line_starting = false;
            return pos + 3;
          }
          if (text_.compare(pos, 3, "-%}") == 0) {
            push(out, token_kind::block_end, pos, {});
            const std::size_t end = skip_whitespace_after(pos + 3);
            line_starting = text_[end - 1] == '\n';
            return end;
          }
          if (text_.compare(pos, 2, "%}") == 0) {
            push(out, token_kind::block_end, pos, {});
            std::size_t end = pos + 2;
            if (end < n && text_[end] == '\n') ++end;
            line_starting = text_[end - 1] == '\n';
            return end;
          }
        } else {
          if (text_.compare(pos, 3, "-}}") == 0) {
            push(out, token_kind::variable_end, pos, {});
            const std::size_t end = skip_whitespace_after(pos + 3);
            line_starting = text_[end - 1] == '\n';
            return end;
          }
          if (text_.compare(pos, 2, "}}") == 0) {
            push(out, token_kind::variable_end, pos, {});
            line_starting = false;
            return pos + 2;
          }
        }
      }
      if (const std::size_t space = space_length(pos)) {
        pos += space;
        continue;
      }
      const char c = text_[pos];
      if (is_digit(c)) {
        pos = lex_number(out, pos);
      } else if (is_name_start(c)) {
        std::size_t end = pos;
        while (end < n && is_name_char(text_[end])) ++end;
        push(out, token_kind::name, pos, text_.substr(pos, end - pos));
        pos = end;
      } else if (c == '\'' || c == '"') {
        pos = lex_string(out, pos);
      } else {
        pos = lex_operator(out, pos, brackets);
      }
    }
  }

  std::size_t digits_end(std::size_t pos) const {
    // (\d+_)*\d+
    std::size_t k = pos;
    while (k < text_.size() && is_digit(text_[k])) {
      while (k < text_.size() && is_digit(text_[k])) ++k;
      if (k + 1 < text_.size() && text_[k] == '_' && is_digit(text_[k + 1])) ++k;
    }
    return k;
  }

  std::size_t lex_number(std::vector<token>& out, std::size_t pos) {
    const std::size_t n = text_.size();
    // Float first, as Jinja2 tries it first: digits then .digits and/or an exponent.
    const std::size_t int_end = digits_end(pos);
    std::size_t end = int_end;
    bool is_float = false;
    if (end + 1 < n && text_[end] == '.' && is_digit(text_[end + 1])) {
      end = digits_end(end + 1);
      is_float = true;
    }
    if (end < n && (text_[end] == 'e' || text_[end] == 'E')) {
      std::size_t k = end + 1;
      if (k < n && (text_[k] == '+' || text_[k] == '-')) ++k;
      if (k < n && is_digit(text_[k])) {
        end = digits_end(k);
        is_float = true;
      }
    }
    if (is_float && !(pos > 0 && text_[pos - 1] == '.')) {
      std::string clean;
      for (std::size_t k = pos; k < end; ++k)
        if (text_[k] != '_') clean += text_[k];
      token t;
      t.kind = token_kind::floating;
      t.floating = std::strtod(clean.c_str(), nullptr);
      t.text = text_.substr(pos, end - pos);
      locate(pos, t.line, t.column);
      out.push_back(std::move(t));
      return end;
    }
    // Integers: 0b / 0o / 0x prefixes, [1-9](_?\d)*, 0(_?0)*.
    int base = 10;
    std::size_t k = pos;
    if (text_[pos] == '0' && pos + 1 < n && std::string_view("bBoOxX").find(text_[pos + 1]) != std::string_view::npos) {
      const char p = static_cast<char>(text_[pos + 1] | 0x20);
      base = p == 'b' ? 2 : p == 'o' ? 8 : 16;
      k = pos + 2;
    }
    auto digit_value = [&](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return 99;
    };
    std::int64_t v = 0;
    std::size_t digits = 0;
    if (base == 10 && text_[pos] == '0') {
      // 0(_?0)*
      k = pos + 1;
      while (k < n && (text_[k] == '0' || (text_[k] == '_' && k + 1 < n && text_[k + 1] == '0'))) ++k;
      digits = 1;
    } else {
      while (k < n) {
        if (text_[k] == '_' && k + 1 < n && digit_value(text_[k + 1]) < base) {
          ++k;
          continue;
        }
        const int d = digit_value(text_[k]);
        if (d >= base) break;
        if (__builtin_mul_overflow(v, static_cast<std::int64_t>(base), &v) || __builtin_add_overflow(v, d, &v))
          fail(pos, "integer literal too large");
        ++digits;
        ++k;
      }
    }
    if (digits == 0) fail(pos, "invalid integer literal");
    token t;
    t.kind = token_kind::integer;
    t.integer = v;
    t.text = text_.substr(pos, k - pos);
    locate(pos, t.line, t.column);
    out.push_back(std::move(t));
    return k;
  }

  // A string literal, unescaped as Python's "unicode-escape" codec does.
  std::size_t lex_string(std::vector<token>& out, std::size_t pos) {
    const char quote = text_[pos];
    const std::size_t n = text_.size();
    std::string value;
    std::size_t k = pos + 1;
    auto hex = [&](std::size_t at, int count) -> char32_t {
      char32_t v = 0;
      for (int j = 0; j < count; ++j) {
        const char c = at + j < n ? text_[at + j] : '\0';
        int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
        if (d < 0) fail(at, "truncated escape in string literal");
        v = v * 16 + static_cast<char32_t>(d);
      }
      return v;
    };
    while (true) {
      if (k >= n) fail(pos, "unterminated string literal");
      const char c = text_[k];
      if (c == quote) break;
      if (c != '\\') {
        value += c;
        ++k;
        continue;
      }
      if (k + 1 >= n) fail(pos, "unterminated string literal");
      const char e = text_[k + 1];
      k += 2;
      switch (e) {
        case '\n': break;
        case '\\': value += '\\'; break;
        case '\'': value += '\''; break;
        case '"': value += '"'; break;
        case 'a': value += '\a'; break;
        case 'b': value += '\b'; break;
        case 'f': value += '\f'; break;
        case 'n': value += '\n'; break;
        case 'r': value += '\r'; break;
        case 't': value += '\t'; break;
        case 'v': value += '\v'; break;
        case 'x': utf8_append(value, hex(k, 2)); k += 2; break;
        case 'u': utf8_append(value, hex(k, 4)); k += 4; break;
        case 'U': {
          const char32_t cp = hex(k, 8);
          if (cp > 0x10FFFF) fail(k, "illegal Unicode character in string literal");
          utf8_append(value, cp);
          k += 8;
          break;
        }
        case 'N': fail(k - 2, "unsupported escape '\\N{...}' in string literal");
        default:
          if (e >= '0' && e <= '7') {
            char32_t v = static_cast<char32_t>(e - '0');
            for (int j = 0; j < 2 && k < n && text_[k] >= '0' && text_[k] <= '7'; ++j, ++k) v = v * 8 + static_cast<char32_t>(text_[k] - '0');
            utf8_append(value, v);
          } else {
            // Python keeps an unknown escape as it is.
            value += '\\';
            value += e;
          }
      }
    }
    if (!utf8_valid(value)) fail(pos, "string literal is not valid UTF-8 (surrogate escape)");
    token t;
    t.kind = token_kind::string;
    t.text = std::move(value);
    locate(pos, t.line, t.column);
    out.push_back(std::move(t));
    return k + 1;
  }

  std::size_t lex_operator(std::vector<token>& out, std::size_t pos, std::vector<char>& brackets) {
    static const char* const two[] = {"//", "**", "==", "!=", ">=", "<="};
    for (const char* op : two) {
      if (text_.compare(pos, 2, op) == 0) {
        push(out, token_kind::op, pos, op);
        return pos + 2;
      }
    }
    const char c = text_[pos];
    if (std::string_view("+-*/%~[](){}><=.:|,;").find(c) == std::string_view::npos)
      fail(pos, concat("unexpected character '", c, "'"));
    if (c == '(' || c == '[' || c == '{') brackets.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
    if (c == ')' || c == ']' || c == '}') {
      if (brackets.empty()) fail(pos, concat("unexpected '", c, "'"));
      if (brackets.back() != c) fail(pos, concat("unexpected '", c, "', expected '", brackets.back(), "'"));
      brackets.pop_back();
    }
    push(out, token_kind::op, pos, std::string(1, c));
    return pos + 1;
  }

  std::string source_;
  std::string text_;
  mutable std::size_t cache_offset_ = 0;
  mutable int cache_line_ = 1, cache_column_ = 1;
};

}  // namespace chat_detail
}  // namespace unmask
