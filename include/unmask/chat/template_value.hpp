// unmask/chat/template_value.hpp
//
// The values a chat template computes with, and the Python behaviour Jinja2
// gives them. Jinja2 evaluates templates with Python objects, so to render a
// template byte for byte as transformers does, the values here copy the parts
// of Python the templates see: None / True / False / int / float / str / list
// / tuple / dict, Jinja2's Undefined (prints as "", is falsy, iterates as
// empty, and raises when an attribute or item of it is taken or it enters
// arithmetic), a namespace() object (the one mutable value: assignments to
// its attributes survive a loop's scope) and a macro. Strings are UTF-8;
// lengths, indices and slices count code points, as Python's do.
//
// Printing follows Python's str(): True/False/None, floats as repr() (the
// shortest string that reads back to the same double, in scientific notation
// below 1e-4 and from 1e16), lists and dicts as repr() with single quotes.
// Integers are 64-bit: an operation that would overflow is an error instead of
// Python's arbitrary precision. Dicts keep insertion order; lookups are linear,
// which is faster than hashing for the handful of keys a message has.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "unmask/core/error.hpp"

namespace unmask {
namespace chat_detail {

struct stmt;
struct scope;
struct value;

// A failure while rendering: the renderer adds the source and line:column.
class render_failure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Containers are shared, as Python references are; only namespaces are ever
// mutated after creation, so sharing a list between two variables is safe.
using value_list = std::vector<value>;
struct value_dict;

// How deep a value may nest (lists in dicts in lists ...) before converting,
// printing or comparing it is refused: bounds the recursion on user data.
constexpr int max_value_depth = 128;

enum class value_kind { undefined, none, boolean, integer, floating, string, list, tuple, dict, names, macro };

struct macro_value {
  const stmt* definition = nullptr;  // the macro statement
  // The scope the macro was defined in. Weak: the scope holds the macro, and a
  // strong pointer back would be a cycle that is never freed.
  std::weak_ptr<scope> closure;
};

struct value {
  value_kind kind = value_kind::undefined;
  bool b = false;
  std::int64_t i = 0;
  double f = 0.0;
  std::string s;  // string contents, or for undefined the reason it is undefined
  std::shared_ptr<value_list> list;
  std::shared_ptr<value_dict> dict;  // dict, or the attributes of a namespace
  std::shared_ptr<macro_value> macro;

  value() = default;
  static value undefined(std::string why = {}) {
    value v;
    v.s = std::move(why);
    return v;
  }
  static value none() { return make(value_kind::none); }
  static value boolean(bool x) {
    value v = make(value_kind::boolean);
    v.b = x;
    return v;
  }
  static value integer(std::int64_t x) {
    value v = make(value_kind::integer);
    v.i = x;
    return v;
  }
  static value floating(double x) {
    value v = make(value_kind::floating);
    v.f = x;
    return v;
  }
  static value string(std::string x) {
    value v = make(value_kind::string);
    v.s = std::move(x);
    return v;
  }
  static value make_list(value_list items, bool tuple = false) {
    value v = make(tuple ? value_kind::tuple : value_kind::list);
    v.list = std::make_shared<value_list>(std::move(items));
    return v;
  }
  static value make_dict();
  static value make_namespace();

  bool is_undefined() const { return kind == value_kind::undefined; }
  bool is_none() const { return kind == value_kind::none; }
  bool is_string() const { return kind == value_kind::string; }
  bool is_sequence_list() const { return kind == value_kind::list || kind == value_kind::tuple; }
  bool is_mapping() const { return kind == value_kind::dict; }
  // Python's numbers: bool is an int.
  bool is_number() const {
    return kind == value_kind::boolean || kind == value_kind::integer || kind == value_kind::floating;
  }
  bool is_integral() const { return kind == value_kind::boolean || kind == value_kind::integer; }
  std::int64_t as_int() const { return kind == value_kind::boolean ? (b ? 1 : 0) : i; }
  double as_double() const { return kind == value_kind::floating ? f : static_cast<double>(as_int()); }

 private:
  static value make(value_kind k) {
    value v;
    v.kind = k;
    return v;
  }
};

struct value_dict {
  std::vector<std::pair<value, value>> items;

  const value* find(const value& key) const;
  const value* find(std::string_view key) const {
    for (const auto& item : items)
      if (item.first.kind == value_kind::string && item.first.s == key) return &item.second;
    return nullptr;
  }
  void set(value key, value v);
};

inline value value::make_dict() {
  value v = make(value_kind::dict);
  v.dict = std::make_shared<value_dict>();
  return v;
}

inline value value::make_namespace() {
  value v = make(value_kind::names);
  v.dict = std::make_shared<value_dict>();
  return v;
}

// ---- UTF-8 -----------------------------------------------------------------

// Decodes UTF-8 to code points; an ill-formed byte becomes one code point of
// its own value (the input is checked once, when the render starts).
inline std::vector<char32_t> utf8_decode(std::string_view s) {
  std::vector<char32_t> out;
  out.reserve(s.size());
  std::size_t n = s.size();
  for (std::size_t k = 0; k < n;) {
    const auto c = static_cast<unsigned char>(s[k]);
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || k + static_cast<std::size_t>(len) > n) {
      out.push_back(c);
      ++k;
      continue;
    }
    char32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (int j = 1; j < len; ++j) cp = (cp << 6) | (static_cast<unsigned char>(s[k + j]) & 0x3F);
    out.push_back(cp);
    k += static_cast<std::size_t>(len);
  }
  return out;
}

inline void utf8_append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

inline std::string utf8_encode(const std::vector<char32_t>& cps, std::size_t begin, std::size_t end) {
  std::string out;
  for (std::size_t k = begin; k < end; ++k) utf8_append(out, cps[k]);
  return out;
}

inline bool utf8_valid(std::string_view s) {
  std::size_t n = s.size();
  for (std::size_t k = 0; k < n;) {
    const auto c = static_cast<unsigned char>(s[k]);
    int len = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >> 4) == 14 ? 3 : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
    if (len == 0 || k + static_cast<std::size_t>(len) > n) return false;
    char32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (int j = 1; j < len; ++j) {
      const auto d = static_cast<unsigned char>(s[k + j]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
      return false;
    k += static_cast<std::size_t>(len);
  }
  return true;
}

inline std::size_t utf8_length(std::string_view s) {
  std::size_t n = 0;
  for (char c : s)
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  return n;
}

// Python's str.isspace() characters, which str.strip() / split() remove.
inline bool python_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// ---- printing ---------------------------------------------------------------

// Python's repr() of a float: the shortest digits that read back exactly,
// positional for 1e-4 <= |x| < 1e16, otherwise d.ddde[+-]XX.
inline std::string python_float_repr(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  if (x == 0) return std::signbit(x) ? "-0.0" : "0.0";
  char buf[40];
  int precision = 1;
  for (; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*e", precision - 1, x);
    if (std::strtod(buf, nullptr) == x) break;
  }
  // buf is [-]d.ddde[+-]XX: pull out the digits and the exponent.
  std::string text(buf);
  const bool negative = text[0] == '-';
  if (negative) text.erase(0, 1);
  const std::size_t e = text.find('e');
  const int exponent = std::atoi(text.c_str() + e + 1);
  std::string digits;
  for (std::size_t k = 0; k < e; ++k)
    if (text[k] != '.') digits += text[k];
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  const int decpt = exponent + 1;  // x = 0.digits * 10^decpt
  std::string out = negative ? "-" : "";
  if (decpt > 16 || decpt < -3) {
    out += digits[0];
    if (digits.size() > 1) out += "." + digits.substr(1);
    char exp[16];
    std::snprintf(exp, sizeof exp, "e%c%02d", exponent < 0 ? '-' : '+', exponent < 0 ? -exponent : exponent);
    out += exp;
  } else if (decpt <= 0) {
    out += "0." + std::string(static_cast<std::size_t>(-decpt), '0') + digits;
  } else if (static_cast<std::size_t>(decpt) >= digits.size()) {
    out += digits + std::string(static_cast<std::size_t>(decpt) - digits.size(), '0') + ".0";
  } else {
    out += digits.substr(0, static_cast<std::size_t>(decpt)) + "." + digits.substr(static_cast<std::size_t>(decpt));
  }
  return out;
}

// Characters Python's repr() writes as escapes (str.isprintable() false): the
// controls, and the separators and format characters templates might meet.
inline bool python_unprintable(char32_t c) {
  return c < 0x20 || (c >= 0x7F && c <= 0xA0) || c == 0xAD || c == 0x1680 || (c >= 0x2000 && c <= 0x200F) ||
         (c >= 0x2028 && c <= 0x202F) || (c >= 0x205F && c <= 0x2064) || c == 0x3000 || c == 0xFEFF;
}

inline std::string python_string_repr(std::string_view s) {
  const bool has_single = s.find('\'') != std::string_view::npos;
  const bool has_double = s.find('"') != std::string_view::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  std::string out(1, quote);
  for (char32_t c : utf8_decode(s)) {
    if (c == static_cast<char32_t>(quote) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (python_unprintable(c)) {
      char buf[12];
      if (c < 0x100)
        std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(c));
      else
        std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      out += buf;
    } else {
      utf8_append(out, c);
    }
  }
  out += quote;
  return out;
}

inline void append_repr(std::string& out, const value& v, int depth);

// Python's str() of a value, which is what {{ }} prints.
inline void append_str(std::string& out, const value& v, int depth = 0) {
  switch (v.kind) {
    case value_kind::undefined: return;
    case value_kind::string: out += v.s; return;
    default: append_repr(out, v, depth);
  }
}

inline void append_repr(std::string& out, const value& v, int depth) {
  if (depth > max_value_depth) throw render_failure("value nested too deeply to print");
  switch (v.kind) {
    case value_kind::undefined: return;
    case value_kind::none: out += "None"; return;
    case value_kind::boolean: out += v.b ? "True" : "False"; return;
    case value_kind::integer: out += std::to_string(v.i); return;
    case value_kind::floating: out += python_float_repr(v.f); return;
    case value_kind::string: out += python_string_repr(v.s); return;
    case value_kind::list:
    case value_kind::tuple: {
      const bool tuple = v.kind == value_kind::tuple;
      out += tuple ? '(' : '[';
      for (std::size_t k = 0; k < v.list->size(); ++k) {
        if (k) out += ", ";
        append_repr(out, (*v.list)[k], depth + 1);
      }
      if (tuple && v.list->size() == 1) out += ',';
      out += tuple ? ')' : ']';
      return;
    }
    case value_kind::dict:
    case value_kind::names: {
      if (v.kind == value_kind::names) out += "<Namespace ";
      out += '{';
      bool first = true;
      for (const auto& item : v.dict->items) {
        if (!first) out += ", ";
        first = false;
        append_repr(out, item.first, depth + 1);
        out += ": ";
        append_repr(out, item.second, depth + 1);
      }
      out += '}';
      if (v.kind == value_kind::names) out += '>';
      return;
    }
    case value_kind::macro: out += "<Macro>"; return;
  }
}

inline std::string to_str(const value& v) {
  std::string out;
  append_str(out, v);
  return out;
}

inline std::string type_name(const value& v) {
  switch (v.kind) {
    case value_kind::undefined: return "Undefined";
    case value_kind::none: return "NoneType";
    case value_kind::boolean: return "bool";
    case value_kind::integer: return "int";
    case value_kind::floating: return "float";
    case value_kind::string: return "str";
    case value_kind::list: return "list";
    case value_kind::tuple: return "tuple";
    case value_kind::dict: return "dict";
    case value_kind::names: return "Namespace";
    case value_kind::macro: return "Macro";
  }
  return "object";
}

// ---- truth, equality, order -------------------------------------------------

inline bool truthy(const value& v) {
  switch (v.kind) {
    case value_kind::undefined:
    case value_kind::none: return false;
    case value_kind::boolean: return v.b;
    case value_kind::integer: return v.i != 0;
    case value_kind::floating: return v.f != 0.0;
    case value_kind::string: return !v.s.empty();
    case value_kind::list:
    case value_kind::tuple: return !v.list->empty();
    case value_kind::dict: return !v.dict->items.empty();
    case value_kind::names:
    case value_kind::macro: return true;
  }
  return false;
}

// Python's ==: numbers across int/float/bool, lists and tuples element by
// element (a list never equals a tuple), dicts regardless of order.
inline bool equal(const value& a, const value& b, int depth = 0) {
  if (depth > max_value_depth) throw render_failure("value nested too deeply to compare");
  if (a.is_number() && b.is_number()) {
    if (a.is_integral() && b.is_integral()) return a.as_int() == b.as_int();
    return a.as_double() == b.as_double();
  }
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case value_kind::undefined:
    case value_kind::none: return true;
    case value_kind::string: return a.s == b.s;
    case value_kind::list:
    case value_kind::tuple:
      if (a.list->size() != b.list->size()) return false;
      for (std::size_t k = 0; k < a.list->size(); ++k)
        if (!equal((*a.list)[k], (*b.list)[k], depth + 1)) return false;
      return true;
    case value_kind::dict:
      if (a.dict->items.size() != b.dict->items.size()) return false;
      for (const auto& item : a.dict->items) {
        const value* other = b.dict->find(item.first);
        if (!other || !equal(item.second, *other, depth + 1)) return false;
      }
      return true;
    case value_kind::names: return a.dict == b.dict;
    case value_kind::macro: return a.macro == b.macro;
    default: return false;
  }
}

inline const value* value_dict::find(const value& key) const {
  for (const auto& item : items)
    if (equal(item.first, key)) return &item.second;
  return nullptr;
}

inline void value_dict::set(value key, value v) {
  for (auto& item : items)
    if (equal(item.first, key)) {
      item.second = std::move(v);
      return;
    }
  items.emplace_back(std::move(key), std::move(v));
}

// Python's <, as -1 / 0 / 1: numbers, strings (UTF-8 byte order is code point
// order) and sequences; anything else is a TypeError in Python.
inline int compare_order(const value& a, const value& b, int depth = 0) {
  if (depth > max_value_depth) throw render_failure("value nested too deeply to compare");
  if (a.is_number() && b.is_number()) {
    if (a.is_integral() && b.is_integral()) return a.as_int() < b.as_int() ? -1 : a.as_int() > b.as_int() ? 1 : 0;
    const double x = a.as_double(), y = b.as_double();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.is_string() && b.is_string()) return a.s < b.s ? -1 : a.s > b.s ? 1 : 0;
  if (a.kind == b.kind && a.is_sequence_list()) {
    const std::size_t n = std::min(a.list->size(), b.list->size());
    for (std::size_t k = 0; k < n; ++k) {
      if (equal((*a.list)[k], (*b.list)[k], depth + 1)) continue;
      return compare_order((*a.list)[k], (*b.list)[k], depth + 1);
    }
    return a.list->size() < b.list->size() ? -1 : a.list->size() > b.list->size() ? 1 : 0;
  }
  if (a.is_undefined() || b.is_undefined()) throw render_failure(concat("undefined value compared: ", a.is_undefined() ? a.s : b.s));
  throw render_failure(concat("'<' not supported between instances of '", type_name(a), "' and '", type_name(b), "'"));
}

// ---- JSON in and out ----------------------------------------------------------

inline value from_json(const nlohmann::json& j, int depth = 0) {
  if (depth > max_value_depth) throw argument_error("chat template variable nested too deeply");
  switch (j.type()) {
    case nlohmann::json::value_t::null: return value::none();
    case nlohmann::json::value_t::boolean: return value::boolean(j.get<bool>());
    case nlohmann::json::value_t::number_integer: return value::integer(j.get<std::int64_t>());
    case nlohmann::json::value_t::number_unsigned: {
      const auto u = j.get<std::uint64_t>();
      if (u > static_cast<std::uint64_t>(INT64_MAX)) throw argument_error("chat template variable: integer too large");
      return value::integer(static_cast<std::int64_t>(u));
    }
    case nlohmann::json::value_t::number_float: return value::floating(j.get<double>());
    case nlohmann::json::value_t::string: {
      std::string s = j.get<std::string>();
      if (!utf8_valid(s)) throw argument_error("chat template variable: string is not valid UTF-8");
      return value::string(std::move(s));
    }
    case nlohmann::json::value_t::array: {
      value_list items;
      for (const auto& e : j) items.push_back(from_json(e, depth + 1));
      return value::make_list(std::move(items));
    }
    case nlohmann::json::value_t::object: {
      value d = value::make_dict();
      for (auto it = j.begin(); it != j.end(); ++it) d.dict->set(value::string(it.key()), from_json(it.value(), depth + 1));
      return d;
    }
    default: throw argument_error("chat template variable: unsupported JSON value (binary)");
  }
}

struct json_style {
  bool indent = false;
  std::string indent_unit;
  std::string item_separator = ", ";
  std::string key_separator = ": ";
  bool sort_keys = false;
  bool ensure_ascii = false;
};

inline void append_json_string(std::string& out, std::string_view s, bool ensure_ascii) {
  out += '"';
  for (char32_t c : utf8_decode(s)) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20 || (ensure_ascii && c > 0x7E)) {
          char buf[16];
          if (c >= 0x10000) {
            const char32_t v = c - 0x10000;
            std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", static_cast<unsigned>(0xD800 + (v >> 10)),
                          static_cast<unsigned>(0xDC00 + (v & 0x3FF)));
          } else {
            std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          }
          out += buf;
        } else {
          utf8_append(out, c);
        }
    }
  }
  out += '"';
}

// json.dumps(v, ensure_ascii, indent, separators, sort_keys), as transformers'
// tojson filter calls it.
inline void append_json(std::string& out, const value& v, const json_style& style, int depth = 0) {
  if (depth > max_value_depth) throw render_failure("value nested too deeply for tojson");
  auto newline = [&](int level) {
    if (!style.indent) return;
    out += '\n';
    for (int k = 0; k < level; ++k) out += style.indent_unit;
  };
  switch (v.kind) {
    case value_kind::none: out += "null"; return;
    case value_kind::boolean: out += v.b ? "true" : "false"; return;
    case value_kind::integer: out += std::to_string(v.i); return;
    case value_kind::floating:
      if (std::isnan(v.f))
        out += "NaN";
      else if (std::isinf(v.f))
        out += v.f > 0 ? "Infinity" : "-Infinity";
      else
        out += python_float_repr(v.f);
      return;
    case value_kind::string: append_json_string(out, v.s, style.ensure_ascii); return;
    case value_kind::list:
    case value_kind::tuple: {
      if (v.list->empty()) {
        out += "[]";
        return;
      }
      out += '[';
      for (std::size_t k = 0; k < v.list->size(); ++k) {
        if (k) out += style.item_separator;
        newline(depth + 1);
        append_json(out, (*v.list)[k], style, depth + 1);
      }
      newline(depth);
      out += ']';
      return;
    }
    case value_kind::dict: {
      if (v.dict->items.empty()) {
        out += "{}";
        return;
      }
      std::vector<std::pair<std::string, const value*>> entries;
      for (const auto& item : v.dict->items) {
        const value& key = item.first;
        std::string name;
        if (key.is_string())
          name = key.s;
        else if (key.kind == value_kind::boolean)
          name = key.b ? "true" : "false";
        else if (key.is_none())
          name = "null";
        else if (key.is_number())
          name = to_str(key);
        else
          throw render_failure(concat("keys must be str, int, float, bool or None, not ", type_name(key)));
        entries.emplace_back(std::move(name), &item.second);
      }
      if (style.sort_keys)
        std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
      out += '{';
      for (std::size_t k = 0; k < entries.size(); ++k) {
        if (k) out += style.item_separator;
        newline(depth + 1);
        append_json_string(out, entries[k].first, style.ensure_ascii);
        out += style.key_separator;
        append_json(out, *entries[k].second, style, depth + 1);
      }
      newline(depth);
      out += '}';
      return;
    }
    default: throw render_failure(concat("Object of type ", type_name(v), " is not JSON serializable"));
  }
}

}  // namespace chat_detail
}  // namespace unmask
