// unmask/chat/template_render.hpp
//
// Evaluates a parsed chat template against its variables, with the semantics
// of Jinja2 3.1 in transformers' ImmutableSandboxedEnvironment. The points
// that decide the output:
//  - scopes: `set` inside `if` writes to the enclosing scope; every iteration
//    of a `for` body gets a fresh scope over the enclosing one (a `set` there
//    is gone at the next iteration and after the loop, so templates carry
//    state out of loops in a namespace()); a macro call gets a scope over the
//    scope the macro was defined in;
//  - Undefined: a missing variable, key or attribute is Undefined, which
//    prints as "", is falsy and iterates as empty; taking an attribute or item
//    of it, or doing arithmetic or ordering with it, is an error (Jinja2's
//    UndefinedError), and `+` joins only str with str;
//  - `loop`: index, index0, revindex, revindex0, first, last, length,
//    previtem, nextitem, depth, depth0; a filtered loop (`for x in xs if c`)
//    counts only the items that pass;
//  - globals: raise_exception(msg) fails the render with the template's
//    message, strftime_now(fmt) formats the local time, namespace(...),
//    range(...) (at most 100000 items, as Jinja2's sandbox), dict(...).
// Failures are argument_error "'<source>' chat_template line:column: what",
// located at the innermost expression that failed. Recursion is bounded: the
// parser bounds the tree's depth and macro calls nest at most
// max_macro_depth deep.
#pragma once

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "unmask/chat/template_parser.hpp"
#include "unmask/chat/template_value.hpp"
#include "unmask/core/error.hpp"

namespace unmask {
namespace chat_detail {

constexpr int max_macro_depth = 16;
constexpr std::size_t max_range_items = 100000;
constexpr std::size_t max_repeat_bytes = std::size_t(1) << 26;
// A render's budget, so no template can hang or exhaust memory: statements
// executed and loop iterations, and the size of any string, list or
// the output itself. A chat template renders in a few thousand steps.
constexpr std::uint64_t max_render_steps = 1'000'000;
constexpr std::size_t max_render_bytes = std::size_t(1) << 26;
constexpr std::size_t max_render_items = 1'000'000;

struct scope {
  std::vector<std::pair<std::string, value>> vars;
  std::shared_ptr<scope> parent;

  explicit scope(std::shared_ptr<scope> up = nullptr) : parent(std::move(up)) {}

  const value* lookup(std::string_view name) const {
    for (const scope* s = this; s; s = s->parent.get())
      for (const auto& v : s->vars)
        if (v.first == name) return &v.second;
    return nullptr;
  }
  void assign(const std::string& name, value v) {
    for (auto& e : vars)
      if (e.first == name) {
        e.second = std::move(v);
        return;
      }
    vars.emplace_back(name, std::move(v));
  }
};
using scope_ptr = std::shared_ptr<scope>;

// ---- string helpers (Python str methods over UTF-8) ---------------------------------

inline char32_t ascii_upper(char32_t c) { return c >= 'a' && c <= 'z' ? c - 32 : c; }
inline char32_t ascii_lower(char32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }
inline bool ascii_alpha(char32_t c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

inline std::string str_upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(ascii_upper(static_cast<unsigned char>(c)));
  return out;
}
inline std::string str_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(ascii_lower(static_cast<unsigned char>(c)));
  return out;
}

// str.title(): a cased letter after an uncased character starts a word.
inline std::string str_title(std::string_view s) {
  std::string out;
  bool previous_cased = false;
  for (char32_t c : utf8_decode(s)) {
    const bool cased = ascii_alpha(c) || c >= 0x80;
    utf8_append(out, cased ? (previous_cased ? ascii_lower(c) : ascii_upper(c)) : c);
    previous_cased = cased;
  }
  return out;
}

inline std::string str_capitalize(std::string_view s) {
  std::vector<char32_t> cps = utf8_decode(s);
  for (std::size_t k = 0; k < cps.size(); ++k) cps[k] = k == 0 ? ascii_upper(cps[k]) : ascii_lower(cps[k]);
  return utf8_encode(cps, 0, cps.size());
}

// Jinja2's title filter: upper-cases the first character of each piece split at
// runs of whitespace, '-', '(', '{', '[' or '<', lower-cases the rest.
inline std::string jinja_title(std::string_view s) {
  std::string out;
  bool word_start = true;
  for (char32_t c : utf8_decode(s)) {
    const bool separator = python_space(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
    if (separator) {
      utf8_append(out, c);
      word_start = true;
    } else {
      utf8_append(out, word_start ? ascii_upper(c) : ascii_lower(c));
      word_start = false;
    }
  }
  return out;
}

inline std::string str_strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right) {
  const std::vector<char32_t> cps = utf8_decode(s);
  std::vector<char32_t> set;
  if (chars) set = utf8_decode(*chars);
  auto strip_me = [&](char32_t c) { return chars ? std::find(set.begin(), set.end(), c) != set.end() : python_space(c); };
  std::size_t b = 0, e = cps.size();
  if (left)
    while (b < e && strip_me(cps[b])) ++b;
  if (right)
    while (e > b && strip_me(cps[e - 1])) --e;
  return utf8_encode(cps, b, e);
}

inline value_list str_split(std::string_view s, const std::optional<std::string>& sep, std::int64_t maxsplit) {
  value_list out;
  if (sep) {
    if (sep->empty()) throw render_failure("empty separator");
    std::size_t pos = 0;
    while (maxsplit < 0 || static_cast<std::int64_t>(out.size()) < maxsplit) {
      const std::size_t at = s.find(*sep, pos);
      if (at == std::string_view::npos) break;
      out.push_back(value::string(std::string(s.substr(pos, at - pos))));
      pos = at + sep->size();
    }
    out.push_back(value::string(std::string(s.substr(pos))));
    return out;
  }
  const std::vector<char32_t> cps = utf8_decode(s);
  std::size_t k = 0, n = cps.size();
  while (true) {
    while (k < n && python_space(cps[k])) ++k;
    if (k >= n) break;
    if (maxsplit >= 0 && static_cast<std::int64_t>(out.size()) >= maxsplit) {
      out.push_back(value::string(utf8_encode(cps, k, n)));
      break;
    }
    std::size_t e = k;
    while (e < n && !python_space(cps[e])) ++e;
    out.push_back(value::string(utf8_encode(cps, k, e)));
    k = e;
  }
  return out;
}

inline std::string str_replace(std::string_view s, std::string_view old, std::string_view with, std::int64_t count) {
  std::string out;
  if (old.empty()) {
    const std::vector<char32_t> cps = utf8_decode(s);
    std::int64_t done = 0;
    for (std::size_t k = 0; k <= cps.size(); ++k) {
      if (count < 0 || done < count) {
        out += with;
        ++done;
      }
      if (k < cps.size()) utf8_append(out, cps[k]);
    }
    return out;
  }
  std::size_t pos = 0;
  std::int64_t done = 0;
  while (count < 0 || done < count) {
    const std::size_t at = s.find(old, pos);
    if (at == std::string_view::npos) break;
    out.append(s.substr(pos, at - pos));
    out.append(with);
    pos = at + old.size();
    ++done;
  }
  out.append(s.substr(pos));
  return out;
}

inline value_list str_splitlines(std::string_view s) {
  value_list out;
  const std::vector<char32_t> cps = utf8_decode(s);
  std::size_t start = 0, k = 0;
  while (k < cps.size()) {
    const char32_t c = cps[k];
    const bool brk = c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || (c >= 0x1C && c <= 0x1E) || c == 0x85 || c == 0x2028 || c == 0x2029;
    if (!brk) {
      ++k;
      continue;
    }
    out.push_back(value::string(utf8_encode(cps, start, k)));
    k += (c == '\r' && k + 1 < cps.size() && cps[k + 1] == '\n') ? 2 : 1;
    start = k;
  }
  if (start < cps.size()) out.push_back(value::string(utf8_encode(cps, start, cps.size())));
  return out;
}

// ---- arguments ---------------------------------------------------------------------

// Binds positional and keyword arguments to named parameters, as Python does.
struct bound_args {
  std::vector<std::optional<value>> slots;
  const value* get(std::size_t k) const { return slots[k] ? &*slots[k] : nullptr; }
};

inline bound_args bind_arguments(const std::string& what, const std::vector<const char*>& params, const value_list& positional,
                       const std::vector<std::pair<std::string, value>>& keywords) {
  bound_args out;
  out.slots.resize(params.size());
  if (positional.size() > params.size()) throw render_failure(concat(what, "() got too many positional arguments"));
  for (std::size_t k = 0; k < positional.size(); ++k) out.slots[k] = positional[k];
  for (const auto& kw : keywords) {
    std::size_t k = 0;
    while (k < params.size() && kw.first != params[k]) ++k;
    if (k == params.size()) throw render_failure(concat(what, "() got an unexpected keyword argument '", kw.first, "'"));
    if (out.slots[k]) throw render_failure(concat(what, "() got multiple values for argument '", kw.first, "'"));
    out.slots[k] = kw.second;
  }
  return out;
}

class template_renderer {
 public:
  explicit template_renderer(const std::string& source) : source_(source) {}

  std::string render(const stmt_list& body, const scope_ptr& root) {
    steps_ = 0;
    std::string out;
    exec_list(body, root, out);
    return out;
  }

 private:
  enum class flow { normal, loop_break, loop_continue };

  std::string where(int line, int column) const { return template_location(source_, line, column); }

  [[noreturn]] static void undefined_error(const value& v) {
    throw render_failure(v.s.empty() ? std::string("undefined value used") : v.s);
  }

  // ---- statements ------------------------------------------------------------------

  flow exec_list(const stmt_list& body, const scope_ptr& sc, std::string& out) {
    for (const auto& s : body) {
      const flow f = exec(*s, sc, out);
      if (f != flow::normal) return f;
    }
    return flow::normal;
  }

  // One unit of the render's budget: a statement executed or a loop iteration.
  void count_step(const stmt& s) {
    if (++steps_ > max_render_steps)
      throw argument_error(where(s.line, s.column) + concat("the template ran more than ", max_render_steps, " steps"));
  }

  flow exec(const stmt& s, const scope_ptr& sc, std::string& out) {
    count_step(s);
    if (out.size() > max_render_bytes)
      throw argument_error(where(s.line, s.column) + concat("the output grew beyond ", max_render_bytes, " bytes"));
    switch (s.kind) {
      case stmt_kind::text: out += s.text; return flow::normal;
      case stmt_kind::output: {
        const value v = eval(*s.value, sc);
        try {
          append_str(out, v);
        } catch (const render_failure& f) {
          throw argument_error(where(s.line, s.column) + f.what());
        }
        return flow::normal;
      }
      case stmt_kind::if_chain:
        for (const auto& branch : s.branches)
          if (truthy(eval(*branch.first, sc))) return exec_list(branch.second, sc, out);
        return exec_list(s.else_body, sc, out);
      case stmt_kind::for_loop: return exec_for(s, sc, out);
      case stmt_kind::set: assign_targets(s, s.targets, eval(*s.value, sc), sc); return flow::normal;
      case stmt_kind::set_namespace: {
        const value* ns = sc->lookup(s.text);
        if (!ns || ns->kind != value_kind::names)
          throw argument_error(where(s.line, s.column) + concat("cannot assign attribute on non-namespace object '", s.text, "'"));
        ns->dict->set(value::string(s.attribute), eval(*s.value, sc));
        return flow::normal;
      }
      case stmt_kind::set_block: {
        std::string text;
        exec_list(s.body, sc, text);
        sc->assign(s.targets[0], value::string(std::move(text)));
        return flow::normal;
      }
      case stmt_kind::macro: {
        value m;
        m.kind = value_kind::macro;
        m.macro = std::make_shared<macro_value>();
        m.macro->definition = &s;
        m.macro->closure = sc;
        sc->assign(s.text, std::move(m));
        return flow::normal;
      }
      case stmt_kind::loop_break: return flow::loop_break;
      case stmt_kind::loop_continue: return flow::loop_continue;
      case stmt_kind::generation: return exec_list(s.body, sc, out);
    }
    return flow::normal;
  }

  void assign_targets(const stmt& s, const std::vector<std::string>& targets, value v, const scope_ptr& sc) {
    if (targets.size() == 1) {
      sc->assign(targets[0], std::move(v));
      return;
    }
    value_list items;
    try {
      items = iterate(v);
    } catch (const render_failure& f) {
      throw argument_error(where(s.line, s.column) + f.what());
    }
    if (items.size() != targets.size())
      throw argument_error(where(s.line, s.column) + concat("cannot unpack ", items.size(), " values into ", targets.size(), " names"));
    for (std::size_t k = 0; k < targets.size(); ++k) sc->assign(targets[k], items[k]);
  }

  flow exec_for(const stmt& s, const scope_ptr& sc, std::string& out) {
    const value iterable = eval(*s.value, sc);
    value_list items;
    try {
      items = iterate(iterable);
    } catch (const render_failure& f) {
      throw argument_error(where(s.value->line, s.value->column) + f.what());
    }
    if (s.condition) {
      value_list kept;
      for (auto& item : items) {
        count_step(s);
        auto probe = std::make_shared<scope>(sc);
        assign_targets(s, s.targets, item, probe);
        if (truthy(eval(*s.condition, probe))) kept.push_back(std::move(item));
      }
      items = std::move(kept);
    }
    const auto n = static_cast<std::int64_t>(items.size());
    for (std::int64_t k = 0; k < n; ++k) {
      count_step(s);
      auto body = std::make_shared<scope>(sc);
      value loop = value::make_dict();
      auto& d = *loop.dict;
      d.set(value::string("index"), value::integer(k + 1));
      d.set(value::string("index0"), value::integer(k));
      d.set(value::string("revindex"), value::integer(n - k));
      d.set(value::string("revindex0"), value::integer(n - k - 1));
      d.set(value::string("first"), value::boolean(k == 0));
      d.set(value::string("last"), value::boolean(k == n - 1));
      d.set(value::string("length"), value::integer(n));
      d.set(value::string("depth"), value::integer(1));
      d.set(value::string("depth0"), value::integer(0));
      if (k > 0) d.set(value::string("previtem"), items[static_cast<std::size_t>(k - 1)]);
      if (k + 1 < n) d.set(value::string("nextitem"), items[static_cast<std::size_t>(k + 1)]);
      body->assign("loop", std::move(loop));
      assign_targets(s, s.targets, items[static_cast<std::size_t>(k)], body);
      if (exec_list(s.body, body, out) == flow::loop_break) break;
    }
    if (n == 0) exec_list(s.else_body, std::make_shared<scope>(sc), out);
    return flow::normal;
  }

  // ---- expressions ------------------------------------------------------------------

  value eval(const expr& e, const scope_ptr& sc) {
    try {
      value v = eval_node(e, sc);
      if (v.s.size() > max_render_bytes) throw render_failure(concat("a string grew beyond ", max_render_bytes, " bytes"));
      if (v.list && v.list->size() > max_render_items)
        throw render_failure(concat("a list grew beyond ", max_render_items, " items"));
      return v;
    } catch (const render_failure& f) {
      throw argument_error(where(e.line, e.column) + f.what());
    }
  }

  value eval_node(const expr& e, const scope_ptr& sc) {
    switch (e.kind) {
      case expr_kind::literal: return e.constant;
      case expr_kind::name: {
        const value* v = sc->lookup(e.name);
        return v ? *v : value::undefined(concat("'", e.name, "' is undefined"));
      }
      case expr_kind::list:
      case expr_kind::tuple: {
        value_list items;
        for (const auto& k : e.kids) items.push_back(eval(*k, sc));
        return value::make_list(std::move(items), e.kind == expr_kind::tuple);
      }
      case expr_kind::dict: {
        value d = value::make_dict();
        for (std::size_t k = 0; k + 1 < e.kids.size(); k += 2) {
          value key = eval(*e.kids[k], sc);
          d.dict->set(std::move(key), eval(*e.kids[k + 1], sc));
        }
        return d;
      }
      case expr_kind::getattr: return get_attribute(eval(*e.kids[0], sc), e.name);
      case expr_kind::getitem: {
        const value obj = eval(*e.kids[0], sc);
        if (e.kids[1]->kind == expr_kind::slice) {
          const expr& sl = *e.kids[1];
          std::optional<value> parts[3];
          for (int k = 0; k < 3; ++k)
            if (sl.kids[static_cast<std::size_t>(k)]) parts[k] = eval(*sl.kids[static_cast<std::size_t>(k)], sc);
          return slice(obj, parts[0], parts[1], parts[2]);
        }
        return get_item(obj, eval(*e.kids[1], sc));
      }
      case expr_kind::slice: throw render_failure("slice outside of a subscript");
      case expr_kind::call: return eval_call(e, sc);
      case expr_kind::filter: {
        value_list args;
        std::vector<std::pair<std::string, value>> kw;
        const value input = eval(*e.kids[0], sc);
        for (std::size_t k = 1; k < e.kids.size(); ++k) args.push_back(eval(*e.kids[k], sc));
        for (const auto& p : e.keywords) kw.emplace_back(p.first, eval(*p.second, sc));
        return apply_filter(e.name, input, args, kw);
      }
      case expr_kind::test: {
        value_list args;
        const value input = eval(*e.kids[0], sc);
        for (std::size_t k = 1; k < e.kids.size(); ++k) args.push_back(eval(*e.kids[k], sc));
        if (!e.keywords.empty()) throw render_failure("keyword arguments to a test are not supported");
        const bool r = apply_test(e.name, input, args);
        return value::boolean(e.negated ? !r : r);
      }
      case expr_kind::logical_not: return value::boolean(!truthy(eval(*e.kids[0], sc)));
      case expr_kind::negate:
      case expr_kind::plus: {
        const value v = eval(*e.kids[0], sc);
        if (v.is_undefined()) undefined_error(v);
        if (!v.is_number()) throw render_failure(concat("bad operand type for unary ", e.kind == expr_kind::negate ? "-" : "+", ": '", type_name(v), "'"));
        if (e.kind == expr_kind::plus) return v.kind == value_kind::boolean ? value::integer(v.as_int()) : v;
        if (v.kind == value_kind::floating) return value::floating(-v.f);
        if (v.as_int() == INT64_MIN) throw render_failure("integer overflow");
        return value::integer(-v.as_int());
      }
      case expr_kind::binary: return arithmetic(e.name, eval(*e.kids[0], sc), eval(*e.kids[1], sc));
      case expr_kind::compare: {
        value left = eval(*e.kids[0], sc);
        for (std::size_t k = 0; k < e.ops.size(); ++k) {
          value right = eval(*e.kids[k + 1], sc);
          if (!compare(e.ops[k], left, right)) return value::boolean(false);
          left = std::move(right);
        }
        return value::boolean(true);
      }
      case expr_kind::logical_and: {
        value left = eval(*e.kids[0], sc);
        return truthy(left) ? eval(*e.kids[1], sc) : left;
      }
      case expr_kind::logical_or: {
        value left = eval(*e.kids[0], sc);
        return truthy(left) ? left : eval(*e.kids[1], sc);
      }
      case expr_kind::concat: {
        std::string s;
        for (const auto& k : e.kids) append_str(s, eval(*k, sc));
        return value::string(std::move(s));
      }
      case expr_kind::conditional:
        if (truthy(eval(*e.kids[0], sc))) return eval(*e.kids[1], sc);
        if (e.kids[2]) return eval(*e.kids[2], sc);
        return value::undefined(concat("the inline if-expression on line ", e.line, " evaluated to false and no else section was defined."));
    }
    return value::undefined();
  }

  // ---- access ----------------------------------------------------------------------

  static value get_attribute(const value& obj, const std::string& name) {
    switch (obj.kind) {
      case value_kind::undefined: undefined_error(obj);
      case value_kind::dict:
      case value_kind::names: {
        if (const value* v = obj.dict->find(std::string_view(name))) return *v;
        return value::undefined(concat("'", obj.kind == value_kind::dict ? "dict object" : "Namespace object", "' has no attribute '", name, "'"));
      }
      default: return value::undefined(concat("'", type_name(obj), " object' has no attribute '", name, "'"));
    }
  }

  static value get_item(const value& obj, const value& key) {
    switch (obj.kind) {
      case value_kind::undefined: undefined_error(obj);
      case value_kind::list:
      case value_kind::tuple:
      case value_kind::string: {
        if (!key.is_integral()) {
          if (key.is_string()) return get_attribute(obj, key.s);
          if (key.is_undefined()) undefined_error(key);
          throw render_failure(concat(type_name(obj), " indices must be integers or slices, not ", type_name(key)));
        }
        std::int64_t index = key.as_int();
        if (obj.kind == value_kind::string) {
          const std::vector<char32_t> cps = utf8_decode(obj.s);
          const auto n = static_cast<std::int64_t>(cps.size());
          if (index < 0) index += n;
          if (index < 0 || index >= n) return value::undefined(concat("str object has no element ", key.as_int()));
          return value::string(utf8_encode(cps, static_cast<std::size_t>(index), static_cast<std::size_t>(index) + 1));
        }
        const auto n = static_cast<std::int64_t>(obj.list->size());
        if (index < 0) index += n;
        if (index < 0 || index >= n) return value::undefined(concat(type_name(obj), " object has no element ", key.as_int()));
        return (*obj.list)[static_cast<std::size_t>(index)];
      }
      case value_kind::dict: {
        if (const value* v = obj.dict->find(key)) return *v;
        if (key.is_string()) return get_attribute(obj, key.s);
        if (key.is_undefined()) undefined_error(key);
        std::string text;
        append_repr(text, key, 0);
        return value::undefined(concat("'dict object' has no attribute ", text));
      }
      case value_kind::names:
        if (key.is_string()) return get_attribute(obj, key.s);
        return value::undefined("'Namespace object' is not subscriptable");
      default: return value::undefined(concat("'", type_name(obj), " object' has no attribute ", to_str(key)));
    }
  }

  static std::int64_t slice_part(const std::optional<value>& v, std::int64_t fallback) {
    if (!v || v->is_none()) return fallback;
    if (v->is_undefined()) undefined_error(*v);
    if (!v->is_integral()) throw render_failure("slice indices must be integers or None");
    return v->as_int();
  }

  // Python's slice semantics (PySlice_AdjustIndices).
  static value slice(const value& obj, const std::optional<value>& a, const std::optional<value>& b, const std::optional<value>& c) {
    if (obj.is_undefined()) undefined_error(obj);
    const std::int64_t step = slice_part(c, 1);
    if (step == 0) throw render_failure("slice step cannot be zero");
    std::vector<char32_t> cps;
    std::int64_t n = 0;
    if (obj.is_string()) {
      cps = utf8_decode(obj.s);
      n = static_cast<std::int64_t>(cps.size());
    } else if (obj.is_sequence_list()) {
      n = static_cast<std::int64_t>(obj.list->size());
    } else {
      throw render_failure(concat("'", type_name(obj), "' object is not subscriptable"));
    }
    auto adjust = [&](const std::optional<value>& v, bool is_start) {
      const std::int64_t lower = step < 0 ? -1 : 0, upper = step < 0 ? n - 1 : n;
      if (!v || v->is_none()) return step < 0 ? (is_start ? upper : lower) : (is_start ? lower : upper);
      std::int64_t x = slice_part(v, 0);
      if (x < 0) {
        x += n;
        if (x < lower) x = lower;
      } else if (x > upper) {
        x = upper;
      }
      return x;
    };
    const std::int64_t start = adjust(a, true), stop = adjust(b, false);
    std::vector<std::int64_t> picks;
    if (step > 0)
      for (std::int64_t k = start; k < stop; k += step) picks.push_back(k);
    else
      for (std::int64_t k = start; k > stop; k += step) picks.push_back(k);
    if (obj.is_string()) {
      std::string out;
      for (std::int64_t k : picks) utf8_append(out, cps[static_cast<std::size_t>(k)]);
      return value::string(std::move(out));
    }
    value_list out;
    for (std::int64_t k : picks) out.push_back((*obj.list)[static_cast<std::size_t>(k)]);
    return value::make_list(std::move(out), obj.kind == value_kind::tuple);
  }

  // What `for` sees: list items, dict keys, string characters; Undefined is empty.
  static value_list iterate(const value& v) {
    switch (v.kind) {
      case value_kind::undefined: return {};
      case value_kind::list:
      case value_kind::tuple: return *v.list;
      case value_kind::dict: {
        value_list keys;
        for (const auto& item : v.dict->items) keys.push_back(item.first);
        return keys;
      }
      case value_kind::string: {
        value_list chars;
        for (char32_t c : utf8_decode(v.s)) {
          std::string one;
          utf8_append(one, c);
          chars.push_back(value::string(std::move(one)));
        }
        return chars;
      }
      default: throw render_failure(concat("'", type_name(v), "' object is not iterable"));
    }
  }

  static std::int64_t length_of(const value& v) {
    switch (v.kind) {
      case value_kind::undefined: return 0;
      case value_kind::string: return static_cast<std::int64_t>(utf8_length(v.s));
      case value_kind::list:
      case value_kind::tuple: return static_cast<std::int64_t>(v.list->size());
      case value_kind::dict: return static_cast<std::int64_t>(v.dict->items.size());
      default: throw render_failure(concat("object of type '", type_name(v), "' has no len()"));
    }
  }

  // ---- operators --------------------------------------------------------------------

  static bool contains(const value& haystack, const value& needle) {
    switch (haystack.kind) {
      case value_kind::undefined: return false;
      case value_kind::string:
        if (needle.is_undefined()) undefined_error(needle);
        if (!needle.is_string()) throw render_failure(concat("'in <string>' requires string as left operand, not ", type_name(needle)));
        return haystack.s.find(needle.s) != std::string::npos;
      case value_kind::list:
      case value_kind::tuple:
        for (const auto& item : *haystack.list)
          if (equal(item, needle)) return true;
        return false;
      case value_kind::dict: return haystack.dict->find(needle) != nullptr;
      default: throw render_failure(concat("argument of type '", type_name(haystack), "' is not iterable"));
    }
  }

  static bool compare(const std::string& op, const value& a, const value& b) {
    if (op == "==") return equal(a, b);
    if (op == "!=") return !equal(a, b);
    if (op == "in") return contains(b, a);
    if (op == "not in") return !contains(b, a);
    const int c = compare_order(a, b);
    if (op == "<") return c < 0;
    if (op == "<=") return c <= 0;
    if (op == ">") return c > 0;
    return c >= 0;
  }

  static value repeat(const value& seq, std::int64_t times) {
    if (times <= 0) return seq.is_string() ? value::string("") : value::make_list({}, seq.kind == value_kind::tuple);
    const std::size_t unit = seq.is_string() ? seq.s.size() : seq.list->size() * 8;
    if (unit != 0 && static_cast<std::uint64_t>(times) > max_repeat_bytes / unit) throw render_failure("repetition result too large");
    if (seq.is_string()) {
      std::string out;
      for (std::int64_t k = 0; k < times; ++k) out += seq.s;
      return value::string(std::move(out));
    }
    value_list out;
    for (std::int64_t k = 0; k < times; ++k) out.insert(out.end(), seq.list->begin(), seq.list->end());
    return value::make_list(std::move(out), seq.kind == value_kind::tuple);
  }

  static value arithmetic(const std::string& op, const value& a, const value& b) {
    if (a.is_undefined()) undefined_error(a);
    if (b.is_undefined()) undefined_error(b);
    auto unsupported = [&]() -> value {
      throw render_failure(concat("unsupported operand type(s) for ", op, ": '", type_name(a), "' and '", type_name(b), "'"));
    };
    if (op == "+") {
      if (a.is_string()) {
        if (!b.is_string()) throw render_failure(concat("can only concatenate str (not \"", type_name(b), "\") to str"));
        return value::string(a.s + b.s);
      }
      if (a.is_sequence_list() && a.kind == b.kind) {
        value_list items = *a.list;
        items.insert(items.end(), b.list->begin(), b.list->end());
        return value::make_list(std::move(items), a.kind == value_kind::tuple);
      }
    }
    if (op == "*") {
      if ((a.is_string() || a.is_sequence_list()) && b.is_integral()) return repeat(a, b.as_int());
      if ((b.is_string() || b.is_sequence_list()) && a.is_integral()) return repeat(b, a.as_int());
    }
    if (op == "%" && a.is_string()) throw render_failure("string formatting with '%' is not supported");
    if (!a.is_number() || !b.is_number()) return unsupported();
    if (a.is_integral() && b.is_integral()) {
      const std::int64_t x = a.as_int(), y = b.as_int();
      std::int64_t r = 0;
      if (op == "+") {
        if (__builtin_add_overflow(x, y, &r)) throw render_failure("integer overflow");
        return value::integer(r);
      }
      if (op == "-") {
        if (__builtin_sub_overflow(x, y, &r)) throw render_failure("integer overflow");
        return value::integer(r);
      }
      if (op == "*") {
        if (__builtin_mul_overflow(x, y, &r)) throw render_failure("integer overflow");
        return value::integer(r);
      }
      if (op == "/") {
        if (y == 0) throw render_failure("division by zero");
        return value::floating(static_cast<double>(x) / static_cast<double>(y));
      }
      if (op == "//" || op == "%") {
        if (y == 0) throw render_failure("integer division or modulo by zero");
        if (x == INT64_MIN && y == -1) throw render_failure("integer overflow");
        std::int64_t q = x / y, m = x % y;
        if (m != 0 && ((m < 0) != (y < 0))) {
          --q;
          m += y;
        }
        return value::integer(op == "//" ? q : m);
      }
      if (op == "**") {
        if (y < 0) return value::floating(std::pow(static_cast<double>(x), static_cast<double>(y)));
        std::int64_t result = 1, base = x, e = y;
        while (e > 0) {
          if ((e & 1) && __builtin_mul_overflow(result, base, &result)) throw render_failure("integer overflow");
          e >>= 1;
          if (e > 0 && __builtin_mul_overflow(base, base, &base)) throw render_failure("integer overflow");
        }
        return value::integer(result);
      }
      return unsupported();
    }
    const double x = a.as_double(), y = b.as_double();
    if (op == "+") return value::floating(x + y);
    if (op == "-") return value::floating(x - y);
    if (op == "*") return value::floating(x * y);
    if (op == "/") {
      if (y == 0) throw render_failure("float division by zero");
      return value::floating(x / y);
    }
    if (op == "//" || op == "%") {
      // CPython's float_divmod.
      if (y == 0) throw render_failure("float divmod()");
      double mod = std::fmod(x, y);
      double div = (x - mod) / y;
      if (mod != 0) {
        if ((y < 0) != (mod < 0)) {
          mod += y;
          div -= 1.0;
        }
      } else {
        mod = std::copysign(0.0, y);
      }
      double floordiv;
      if (div != 0) {
        floordiv = std::floor(div);
        if (div - floordiv > 0.5) floordiv += 1.0;
      } else {
        floordiv = std::copysign(0.0, x / y);
      }
      return value::floating(op == "%" ? mod : floordiv);
    }
    if (op == "**") return value::floating(std::pow(x, y));
    return unsupported();
  }

  // ---- calls ------------------------------------------------------------------------

  value eval_call(const expr& e, const scope_ptr& sc) {
    const expr& callee = *e.kids[0];
    value_list args;
    std::vector<std::pair<std::string, value>> kw;
    if (callee.kind == expr_kind::getattr) {
      const value obj = eval(*callee.kids[0], sc);
      for (std::size_t k = 1; k < e.kids.size(); ++k) args.push_back(eval(*e.kids[k], sc));
      for (const auto& p : e.keywords) kw.emplace_back(p.first, eval(*p.second, sc));
      if (obj.kind == value_kind::dict || obj.kind == value_kind::names) {
        const value* member = obj.dict->find(std::string_view(callee.name));
        if (member && member->kind == value_kind::macro) return call_macro(*member, args, kw);
      }
      return call_method(obj, callee.name, args, kw);
    }
    for (std::size_t k = 1; k < e.kids.size(); ++k) args.push_back(eval(*e.kids[k], sc));
    for (const auto& p : e.keywords) kw.emplace_back(p.first, eval(*p.second, sc));
    const std::string& name = callee.name;
    const value* bound = sc->lookup(name);
    if (bound && bound->kind == value_kind::macro) return call_macro(*bound, args, kw);
    if (bound && !bound->is_undefined()) throw render_failure(concat("'", type_name(*bound), "' object is not callable"));
    if (name == "raise_exception") {
      const bound_args a = bind_arguments(name, {"message"}, args, kw);
      if (!a.get(0)) throw render_failure("raise_exception() missing the message");
      throw argument_error(concat(where(e.line, e.column), "raise_exception: ", to_str(*a.get(0))));
    }
    if (name == "strftime_now") {
      const bound_args a = bind_arguments(name, {"format"}, args, kw);
      if (!a.get(0) || !a.get(0)->is_string()) throw render_failure("strftime_now() needs a format string");
      const std::time_t now = std::time(nullptr);
      std::tm local{};
      localtime_r(&now, &local);
      char buf[256];
      const std::size_t len = std::strftime(buf, sizeof buf, a.get(0)->s.c_str(), &local);
      return value::string(std::string(buf, len));
    }
    if (name == "namespace" || name == "dict") {
      value d = name == "namespace" ? value::make_namespace() : value::make_dict();
      if (args.size() > 1) throw render_failure(concat(name, "() takes at most one positional argument"));
      if (!args.empty()) {
        if (args[0].kind != value_kind::dict) throw render_failure(concat(name, "() positional argument must be a dict"));
        for (const auto& item : args[0].dict->items) d.dict->set(item.first, item.second);
      }
      for (auto& p : kw) d.dict->set(value::string(p.first), std::move(p.second));
      return d;
    }
    if (name == "range") {
      if (!kw.empty() || args.empty() || args.size() > 3) throw render_failure("range() takes 1 to 3 positional arguments");
      for (const auto& a : args)
        if (!a.is_integral()) throw render_failure(concat("'", type_name(a), "' object cannot be interpreted as an integer"));
      std::int64_t start = 0, stop = 0, step = 1;
      if (args.size() == 1) stop = args[0].as_int();
      else {
        start = args[0].as_int();
        stop = args[1].as_int();
        if (args.size() == 3) step = args[2].as_int();
      }
      if (step == 0) throw render_failure("range() arg 3 must not be zero");
      value_list items;
      for (std::int64_t k = start; step > 0 ? k < stop : k > stop; k += step) {
        if (items.size() >= max_range_items) throw render_failure("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
        items.push_back(value::integer(k));
        if ((step > 0 && k > INT64_MAX - step) || (step < 0 && k < INT64_MIN - step)) break;
      }
      return value::make_list(std::move(items));
    }
    if (bound) undefined_error(*bound);
    undefined_error(value::undefined(concat("'", name, "' is undefined")));
  }

  value call_macro(const value& m, const value_list& args, const std::vector<std::pair<std::string, value>>& kw) {
    const stmt& def = *m.macro->definition;
    if (macro_depth_ >= max_macro_depth) throw render_failure(concat("macro calls nested deeper than ", max_macro_depth));
    if (args.size() > def.params.size()) throw render_failure(concat("macro '", def.text, "' takes not more than ", def.params.size(), " argument(s)"));
    scope_ptr defined_in = m.macro->closure.lock();
    if (!defined_in) throw render_failure(concat("macro '", def.text, "' called after its scope ended"));
    auto local = std::make_shared<scope>(std::move(defined_in));
    std::vector<bool> given(def.params.size(), false);
    for (std::size_t k = 0; k < args.size(); ++k) {
      local->assign(def.params[k].name, args[k]);
      given[k] = true;
    }
    for (const auto& p : kw) {
      std::size_t k = 0;
      while (k < def.params.size() && def.params[k].name != p.first) ++k;
      if (k == def.params.size()) throw render_failure(concat("macro '", def.text, "' takes no keyword argument '", p.first, "'"));
      if (given[k]) throw render_failure(concat("macro '", def.text, "' got multiple values for argument '", p.first, "'"));
      local->assign(p.first, p.second);
      given[k] = true;
    }
    ++macro_depth_;
    struct leave {
      int& d;
      ~leave() { --d; }
    } guard{macro_depth_};
    for (std::size_t k = 0; k < def.params.size(); ++k) {
      if (given[k]) continue;
      if (def.params[k].default_value)
        local->assign(def.params[k].name, eval(*def.params[k].default_value, local));
      else
        local->assign(def.params[k].name, value::undefined(concat("parameter '", def.params[k].name, "' was not provided")));
    }
    std::string out;
    exec_list(def.body, local, out);
    return value::string(std::move(out));
  }

  static std::optional<std::string> optional_string(const value* v, const char* what) {
    if (!v || v->is_none()) return std::nullopt;
    if (!v->is_string()) throw render_failure(concat(what, " must be None or a string, not ", type_name(*v)));
    return v->s;
  }

  static const std::string& need_string(const value* v, const char* what) {
    if (!v) throw render_failure(concat(what, " is missing"));
    if (v->is_undefined()) undefined_error(*v);
    if (!v->is_string()) throw render_failure(concat(what, " must be a string, not ", type_name(*v)));
    return v->s;
  }

  static std::int64_t need_int(const value* v, std::int64_t fallback, const char* what) {
    if (!v || v->is_none()) return fallback;
    if (!v->is_integral()) throw render_failure(concat(what, " must be an integer, not ", type_name(*v)));
    return v->as_int();
  }

  static value call_method(const value& obj, const std::string& name, const value_list& args,
                           const std::vector<std::pair<std::string, value>>& kw) {
    if (obj.is_undefined()) undefined_error(obj);
    if (obj.is_string()) {
      const std::string& s = obj.s;
      if (name == "strip" || name == "lstrip" || name == "rstrip") {
        const bound_args a = bind_arguments(name, {"chars"}, args, kw);
        return value::string(str_strip(s, optional_string(a.get(0), "chars"), name != "rstrip", name != "lstrip"));
      }
      if (name == "split" || name == "rsplit") {
        const bound_args a = bind_arguments(name, {"sep", "maxsplit"}, args, kw);
        const auto sep = optional_string(a.get(0), "sep");
        const std::int64_t maxsplit = need_int(a.get(1), -1, "maxsplit");
        if (name == "rsplit" && maxsplit >= 0) {
          if (!sep) throw render_failure("rsplit() with maxsplit needs a separator");
          value_list all = str_split(s, sep, -1);
          if (static_cast<std::int64_t>(all.size()) <= maxsplit + 1) return value::make_list(std::move(all));
          // The leftmost pieces stay joined.
          const std::size_t joined = all.size() - static_cast<std::size_t>(maxsplit);
          std::string head;
          for (std::size_t k = 0; k < joined; ++k) head += (k ? *sep : std::string()) + all[k].s;
          value_list out{value::string(std::move(head))};
          for (std::size_t k = joined; k < all.size(); ++k) out.push_back(all[k]);
          return value::make_list(std::move(out));
        }
        return value::make_list(str_split(s, sep, maxsplit));
      }
      if (name == "startswith" || name == "endswith") {
        const bound_args a = bind_arguments(name, {"prefix"}, args, kw);
        if (!a.get(0)) throw render_failure(concat(name, "() takes at least 1 argument"));
        std::vector<std::string> options;
        if (a.get(0)->is_sequence_list() && a.get(0)->kind == value_kind::tuple) {
          for (const auto& o : *a.get(0)->list) options.push_back(need_string(&o, "prefix"));
        } else {
          options.push_back(need_string(a.get(0), "prefix"));
        }
        for (const auto& o : options) {
          if (o.size() > s.size()) continue;
          if (name == "startswith" ? s.compare(0, o.size(), o) == 0 : s.compare(s.size() - o.size(), o.size(), o) == 0)
            return value::boolean(true);
        }
        return value::boolean(false);
      }
      if (name == "upper" || name == "lower" || name == "title" || name == "capitalize") {
        bind_arguments(name, {}, args, kw);
        if (name == "upper") return value::string(str_upper(s));
        if (name == "lower") return value::string(str_lower(s));
        if (name == "title") return value::string(str_title(s));
        return value::string(str_capitalize(s));
      }
      if (name == "replace") {
        const bound_args a = bind_arguments(name, {"old", "new", "count"}, args, kw);
        return value::string(str_replace(s, need_string(a.get(0), "old"), need_string(a.get(1), "new"), need_int(a.get(2), -1, "count")));
      }
      if (name == "find" || name == "rfind" || name == "count") {
        const bound_args a = bind_arguments(name, {"sub"}, args, kw);
        const std::string& sub = need_string(a.get(0), "sub");
        if (name == "count") {
          if (sub.empty()) return value::integer(static_cast<std::int64_t>(utf8_length(s)) + 1);
          std::int64_t c = 0;
          for (std::size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) ++c;
          return value::integer(c);
        }
        const std::size_t at = name == "find" ? s.find(sub) : s.rfind(sub);
        if (at == std::string::npos) return value::integer(-1);
        return value::integer(static_cast<std::int64_t>(utf8_length(std::string_view(s).substr(0, at))));
      }
      if (name == "join") {
        const bound_args a = bind_arguments(name, {"iterable"}, args, kw);
        if (!a.get(0)) throw render_failure("join() takes exactly one argument");
        std::string out;
        bool first = true;
        for (const auto& item : iterate(*a.get(0))) {
          if (!item.is_string()) throw render_failure(concat("sequence item: expected str instance, ", type_name(item), " found"));
          if (!first) out += s;
          first = false;
          out += item.s;
        }
        return value::string(std::move(out));
      }
      if (name == "splitlines") {
        bind_arguments(name, {}, args, kw);
        return value::make_list(str_splitlines(s));
      }
      if (name == "isdigit" || name == "isalpha" || name == "isspace") {
        bind_arguments(name, {}, args, kw);
        const std::vector<char32_t> cps = utf8_decode(s);
        if (cps.empty()) return value::boolean(false);
        for (char32_t c : cps) {
          const bool ok = name == "isdigit" ? (c >= '0' && c <= '9') : name == "isalpha" ? ascii_alpha(c) : python_space(c);
          if (!ok) return value::boolean(false);
        }
        return value::boolean(true);
      }
    }
    if (obj.kind == value_kind::dict) {
      const value_dict& d = *obj.dict;
      if (name == "items" || name == "keys" || name == "values") {
        bind_arguments(name, {}, args, kw);
        value_list out;
        for (const auto& item : d.items) {
          if (name == "items") out.push_back(value::make_list({item.first, item.second}, true));
          else out.push_back(name == "keys" ? item.first : item.second);
        }
        return value::make_list(std::move(out));
      }
      if (name == "get") {
        const bound_args a = bind_arguments(name, {"key", "default"}, args, kw);
        if (!a.get(0)) throw render_failure("get() takes at least 1 argument");
        if (const value* v = d.find(*a.get(0))) return *v;
        return a.get(1) ? *a.get(1) : value::none();
      }
    }
    throw render_failure(concat("'", type_name(obj), "' object has no method '", name, "'"));
  }

  // ---- filters ----------------------------------------------------------------------

  // An attribute path of a filter's `attribute=` argument ("a.b", "0").
  static value attribute_of(const value& item, const std::string& path) {
    value v = item;
    std::size_t pos = 0;
    while (true) {
      const std::size_t dot = path.find('.', pos);
      const std::string part = path.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
      bool digits = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
      v = digits ? get_item(v, value::integer(std::stoll(part))) : get_item(v, value::string(part));
      if (dot == std::string::npos) return v;
      pos = dot + 1;
    }
  }

  static std::string to_str_checked(const value& v) { return to_str(v); }

  // A Python float() of a string, or nullopt.
  static std::optional<double> parse_float(std::string s) {
    s = str_strip(s, std::nullopt, true, true);
    std::string clean;
    for (std::size_t k = 0; k < s.size(); ++k) {
      if (s[k] == '_' && k > 0 && k + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[k - 1])) &&
          std::isdigit(static_cast<unsigned char>(s[k + 1])))
        continue;
      clean += s[k];
    }
    if (clean.empty()) return std::nullopt;
    const std::string lower = str_lower(clean);
    const std::string body = (lower[0] == '+' || lower[0] == '-') ? lower.substr(1) : lower;
    if (body == "inf" || body == "infinity") return lower[0] == '-' ? -INFINITY : INFINITY;
    if (body == "nan") return NAN;
    for (char c : body)
      if (!(std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == 'e' || c == '+' || c == '-')) return std::nullopt;
    char* end = nullptr;
    const double v = std::strtod(clean.c_str(), &end);
    if (end != clean.c_str() + clean.size()) return std::nullopt;
    return v;
  }

  static std::optional<std::int64_t> parse_int(std::string s, std::int64_t base) {
    s = str_strip(s, std::nullopt, true, true);
    if (s.empty()) return std::nullopt;
    bool negative = false;
    std::size_t k = 0;
    if (s[0] == '+' || s[0] == '-') {
      negative = s[0] == '-';
      k = 1;
    }
    if (base == 0 || base == 16 || base == 8 || base == 2) {
      if (k + 1 < s.size() && s[k] == '0') {
        const char p = static_cast<char>(s[k + 1] | 0x20);
        const std::int64_t prefixed = p == 'x' ? 16 : p == 'o' ? 8 : p == 'b' ? 2 : 0;
        if (prefixed && (base == 0 || base == prefixed)) {
          base = prefixed;
          k += 2;
          if (k < s.size() && s[k] == '_') ++k;
        }
      }
      if (base == 0) base = 10;
    }
    if (base < 2 || base > 36) return std::nullopt;
    std::int64_t v = 0;
    bool any = false;
    for (; k < s.size(); ++k) {
      const char c = s[k];
      if (c == '_' && any && k + 1 < s.size() && s[k + 1] != '_') continue;
      const int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'z') ? c - 'a' + 10 : (c >= 'A' && c <= 'Z') ? c - 'A' + 10 : 99;
      if (d >= base) return std::nullopt;
      if (__builtin_mul_overflow(v, base, &v) || __builtin_add_overflow(v, d, &v)) return std::nullopt;
      any = true;
    }
    if (!any) return std::nullopt;
    return negative ? -v : v;
  }

  // Python's round(x, ndigits) for floats: correctly rounded, ties to even.
  static double python_round(double x, std::int64_t digits) {
    if (!std::isfinite(x)) return x;
    if (digits > 300) return x;
    if (digits < -300) return 0.0 * x;
    char buf[512];
    if (digits >= 0) {
      std::snprintf(buf, sizeof buf, "%.*f", static_cast<int>(digits), x);
      return std::strtod(buf, nullptr);
    }
    const double scale = std::pow(10.0, static_cast<double>(-digits));
    const double y = std::nearbyint(x / scale) * scale;
    return y;
  }

  value apply_filter(const std::string& name, const value& input, const value_list& args,
                     const std::vector<std::pair<std::string, value>>& kw) {
    auto need = [&](std::initializer_list<const char*> params) { return bind_arguments(name, std::vector<const char*>(params), args, kw); };
    if (name == "safe") {
      need({});
      return input;
    }
    if (name == "default" || name == "d") {
      const bound_args a = need({"default_value", "boolean"});
      const bool boolean = a.get(1) && truthy(*a.get(1));
      if (input.is_undefined() || (boolean && !truthy(input))) return a.get(0) ? *a.get(0) : value::string("");
      return input;
    }
    if (name == "length" || name == "count") {
      need({});
      return value::integer(length_of(input));
    }
    if (name == "string") {
      need({});
      return value::string(to_str(input));
    }
    if (name == "trim") {
      const bound_args a = need({"chars"});
      return value::string(str_strip(to_str(input), optional_string(a.get(0), "chars"), true, true));
    }
    if (name == "upper" || name == "lower" || name == "title" || name == "capitalize") {
      need({});
      const std::string s = to_str(input);
      if (name == "upper") return value::string(str_upper(s));
      if (name == "lower") return value::string(str_lower(s));
      if (name == "title") return value::string(jinja_title(s));
      return value::string(str_capitalize(s));
    }
    if (name == "replace") {
      const bound_args a = need({"old", "new", "count"});
      if (!a.get(0) || !a.get(1)) throw render_failure("replace() needs old and new");
      return value::string(str_replace(to_str(input), to_str(*a.get(0)), to_str(*a.get(1)), need_int(a.get(2), -1, "count")));
    }
    if (name == "tojson") {
      const bound_args a = need({"ensure_ascii", "indent", "separators", "sort_keys"});
      json_style style;
      style.ensure_ascii = a.get(0) && truthy(*a.get(0));
      if (const value* indent = a.get(1); indent && !indent->is_none()) {
        style.indent = true;
        if (indent->is_string()) style.indent_unit = indent->s;
        else if (indent->is_integral()) style.indent_unit = std::string(static_cast<std::size_t>(std::max<std::int64_t>(0, std::min<std::int64_t>(indent->as_int(), 256))), ' ');
        else throw render_failure("tojson indent must be an integer or a string");
        style.item_separator = ",";
      }
      if (const value* sep = a.get(2); sep && !sep->is_none()) {
        if (!sep->is_sequence_list() || sep->list->size() != 2 || !(*sep->list)[0].is_string() || !(*sep->list)[1].is_string())
          throw render_failure("tojson separators must be a pair of strings");
        style.item_separator = (*sep->list)[0].s;
        style.key_separator = (*sep->list)[1].s;
      }
      style.sort_keys = a.get(3) && truthy(*a.get(3));
      std::string out;
      append_json(out, input, style);
      return value::string(std::move(out));
    }
    if (name == "first" || name == "last") {
      need({});
      if (input.is_undefined()) undefined_error(input);
      const value_list items = iterate(input);
      if (items.empty()) return value::undefined(concat("No ", name, " item, sequence was empty."));
      return name == "first" ? items.front() : items.back();
    }
    if (name == "join") {
      const bound_args a = need({"d", "attribute"});
      const std::string sep = a.get(0) ? to_str(*a.get(0)) : std::string();
      std::string out;
      bool first = true;
      for (const auto& item : iterate(input)) {
        if (!first) out += sep;
        first = false;
        append_str(out, a.get(1) && !a.get(1)->is_none() ? attribute_of(item, to_str(*a.get(1))) : item);
      }
      return value::string(std::move(out));
    }
    if (name == "reverse") {
      need({});
      if (input.is_string()) {
        std::vector<char32_t> cps = utf8_decode(input.s);
        std::reverse(cps.begin(), cps.end());
        return value::string(utf8_encode(cps, 0, cps.size()));
      }
      value_list items = iterate(input);
      std::reverse(items.begin(), items.end());
      return value::make_list(std::move(items));
    }
    if (name == "list") {
      need({});
      return value::make_list(iterate(input));
    }
    if (name == "items") {
      need({});
      if (input.is_undefined()) return value::make_list({});
      if (!input.is_mapping()) throw render_failure(concat("can only get item pairs from a mapping, not ", type_name(input)));
      value_list out;
      for (const auto& item : input.dict->items) out.push_back(value::make_list({item.first, item.second}, true));
      return value::make_list(std::move(out));
    }
    if (name == "select" || name == "reject" || name == "selectattr" || name == "rejectattr") {
      const bool by_attribute = name == "selectattr" || name == "rejectattr";
      const bool keep = name == "select" || name == "selectattr";
      if (!kw.empty()) throw render_failure(concat(name, "() takes no keyword arguments"));
      std::size_t next_arg = 0;
      std::string attribute;
      if (by_attribute) {
        if (args.empty()) throw render_failure(concat(name, "() needs an attribute"));
        attribute = to_str(args[0]);
        next_arg = 1;
      }
      std::string test;
      if (next_arg < args.size()) test = need_string(&args[next_arg++], "test name");
      if (!test.empty() && !known_tests().count(test)) throw render_failure(concat("unsupported test '", test, "'"));
      const value_list test_args(args.begin() + static_cast<std::ptrdiff_t>(next_arg), args.end());
      value_list out;
      for (const auto& item : iterate(input)) {
        const value probe = by_attribute ? attribute_of(item, attribute) : item;
        const bool pass = test.empty() ? truthy(probe) : apply_test(test, probe, test_args);
        if (pass == keep) out.push_back(item);
      }
      return value::make_list(std::move(out));
    }
    if (name == "map") {
      value_list out;
      const value* attribute = nullptr;
      const value* fallback = nullptr;
      std::vector<std::pair<std::string, value>> rest_kw;
      for (const auto& p : kw) {
        if (p.first == "attribute") attribute = &p.second;
        else if (p.first == "default") fallback = &p.second;
        else rest_kw.push_back(p);
      }
      if (attribute) {
        if (!args.empty() || !rest_kw.empty()) throw render_failure("map(attribute=...) takes no other arguments");
        for (const auto& item : iterate(input)) {
          value v = attribute_of(item, to_str(*attribute));
          out.push_back(v.is_undefined() && fallback ? *fallback : v);
        }
        return value::make_list(std::move(out));
      }
      if (args.empty()) throw render_failure("map() needs a filter name or attribute=");
      const std::string filter = need_string(&args[0], "filter name");
      if (!known_filters().count(filter)) throw render_failure(concat("unsupported filter '", filter, "'"));
      const value_list filter_args(args.begin() + 1, args.end());
      for (const auto& item : iterate(input)) out.push_back(apply_filter(filter, item, filter_args, rest_kw));
      return value::make_list(std::move(out));
    }
    if (name == "round") {
      const bound_args a = need({"precision", "method"});
      const std::int64_t precision = need_int(a.get(0), 0, "precision");
      const std::string method = a.get(1) ? need_string(a.get(1), "method") : std::string("common");
      if (method != "common" && method != "floor" && method != "ceil") throw render_failure("method must be common, ceil or floor");
      if (input.is_undefined()) undefined_error(input);
      if (!input.is_number()) throw render_failure(concat("round() needs a number, not ", type_name(input)));
      if (method == "common") {
        if (input.is_integral() && precision >= 0) return value::integer(input.as_int());
        return value::floating(python_round(input.as_double(), precision));
      }
      const double scale = std::pow(10.0, static_cast<double>(precision));
      const double x = input.as_double() * scale;
      return value::floating((method == "floor" ? std::floor(x) : std::ceil(x)) / scale);
    }
    if (name == "int") {
      const bound_args a = need({"default", "base"});
      const std::int64_t fallback = need_int(a.get(0), 0, "default");
      const std::int64_t base = need_int(a.get(1), 10, "base");
      if (input.is_integral()) return value::integer(input.as_int());
      if (input.kind == value_kind::floating) {
        if (!std::isfinite(input.f) || std::fabs(input.f) >= 9.2e18) return value::integer(fallback);
        return value::integer(static_cast<std::int64_t>(input.f));
      }
      if (input.is_string()) {
        if (auto v = parse_int(input.s, base)) return value::integer(*v);
        if (auto f = parse_float(input.s); f && std::isfinite(*f) && std::fabs(*f) < 9.2e18) return value::integer(static_cast<std::int64_t>(*f));
      }
      return value::integer(fallback);
    }
    if (name == "float") {
      const bound_args a = need({"default"});
      const double fallback = a.get(0) && a.get(0)->is_number() ? a.get(0)->as_double() : 0.0;
      if (input.is_number()) return value::floating(input.as_double());
      if (input.is_string())
        if (auto f = parse_float(input.s)) return value::floating(*f);
      return value::floating(fallback);
    }
    if (name == "abs") {
      need({});
      if (input.is_undefined()) undefined_error(input);
      if (!input.is_number()) throw render_failure(concat("bad operand type for abs(): '", type_name(input), "'"));
      if (input.kind == value_kind::floating) return value::floating(std::fabs(input.f));
      if (input.as_int() == INT64_MIN) throw render_failure("integer overflow");
      return value::integer(std::llabs(input.as_int()));
    }
    if (name == "sort" || name == "unique" || name == "min" || name == "max") {
      const bool is_sort = name == "sort";
      const bound_args a = is_sort ? need({"reverse", "case_sensitive", "attribute"}) : need({"case_sensitive", "attribute"});
      const bool reverse = is_sort && a.get(0) && truthy(*a.get(0));
      const value* cs = a.get(is_sort ? 1 : 0);
      const bool case_sensitive = cs && truthy(*cs);
      const value* attr = a.get(is_sort ? 2 : 1);
      const std::string attribute = attr && !attr->is_none() ? to_str(*attr) : std::string();
      value_list items = iterate(input);
      auto key = [&](const value& item) {
        value k = attribute.empty() ? item : attribute_of(item, attribute);
        if (!case_sensitive && k.is_string()) k = value::string(str_lower(k.s));
        return k;
      };
      if (name == "unique") {
        value_list out, seen;
        for (const auto& item : items) {
          const value k = key(item);
          if (std::none_of(seen.begin(), seen.end(), [&](const value& s) { return equal(s, k); })) {
            seen.push_back(k);
            out.push_back(item);
          }
        }
        return value::make_list(std::move(out));
      }
      if (name == "min" || name == "max") {
        if (items.empty()) return value::undefined(concat("No aggregated item, sequence was empty."));
        std::size_t best = 0;
        for (std::size_t k = 1; k < items.size(); ++k) {
          const int c = compare_order(key(items[k]), key(items[best]));
          if (name == "min" ? c < 0 : c > 0) best = k;
        }
        return items[best];
      }
      std::vector<std::pair<value, value>> keyed;
      for (auto& item : items) keyed.emplace_back(key(item), std::move(item));
      std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
        return reverse ? compare_order(y.first, x.first) < 0 : compare_order(x.first, y.first) < 0;
      });
      value_list out;
      for (auto& p : keyed) out.push_back(std::move(p.second));
      return value::make_list(std::move(out));
    }
    if (name == "dictsort") {
      const bound_args a = need({"case_sensitive", "by", "reverse"});
      if (!input.is_mapping()) throw render_failure("dictsort needs a mapping");
      const bool case_sensitive = a.get(0) && truthy(*a.get(0));
      const std::string by = a.get(1) ? need_string(a.get(1), "by") : std::string("key");
      if (by != "key" && by != "value") throw render_failure("You can only sort by either \"key\" or \"value\"");
      const bool reverse = a.get(2) && truthy(*a.get(2));
      std::vector<std::pair<value, value>> items = input.dict->items;
      auto key = [&](const std::pair<value, value>& p) {
        value k = by == "key" ? p.first : p.second;
        if (!case_sensitive && k.is_string()) k = value::string(str_lower(k.s));
        return k;
      };
      std::stable_sort(items.begin(), items.end(), [&](const auto& x, const auto& y) {
        return reverse ? compare_order(key(y), key(x)) < 0 : compare_order(key(x), key(y)) < 0;
      });
      value_list out;
      for (auto& p : items) out.push_back(value::make_list({p.first, p.second}, true));
      return value::make_list(std::move(out));
    }
    if (name == "sum") {
      const bound_args a = need({"attribute", "start"});
      value total = a.get(1) ? *a.get(1) : value::integer(0);
      const std::string attribute = a.get(0) && !a.get(0)->is_none() ? to_str(*a.get(0)) : std::string();
      for (const auto& item : iterate(input)) total = arithmetic("+", total, attribute.empty() ? item : attribute_of(item, attribute));
      return total;
    }
    if (name == "indent") {
      const bound_args a = need({"width", "first", "blank"});
      std::string unit = "    ";
      if (const value* w = a.get(0)) {
        if (w->is_string()) unit = w->s;
        else unit = std::string(static_cast<std::size_t>(std::max<std::int64_t>(0, std::min<std::int64_t>(need_int(w, 4, "width"), 256))), ' ');
      }
      const bool first = a.get(1) && truthy(*a.get(1));
      const bool blank = a.get(2) && truthy(*a.get(2));
      const value_list lines = str_splitlines(to_str(input) + "\n");
      std::string out;
      for (std::size_t k = 0; k < lines.size(); ++k) {
        if (k) out += '\n';
        const std::string& line = lines[k].s;
        if (k > 0 && (blank || !line.empty())) out += unit;
        out += line;
      }
      if (first) out = unit + out;
      return value::string(std::move(out));
    }
    throw render_failure(concat("unsupported filter '", name, "'"));
  }

  // ---- tests ------------------------------------------------------------------------

  static bool apply_test(const std::string& name, const value& v, const value_list& args) {
    auto arg = [&](std::size_t k) -> const value& {
      if (k >= args.size()) throw render_failure(concat("test '", name, "' needs an argument"));
      return args[k];
    };
    if (name == "defined") return !v.is_undefined();
    if (name == "undefined") return v.is_undefined();
    if (name == "none") return v.is_none();
    if (name == "string") return v.is_string();
    if (name == "number") return v.is_number();
    if (name == "mapping") return v.is_mapping();
    if (name == "iterable" || name == "sequence")
      return v.is_undefined() || v.is_string() || v.is_sequence_list() || v.is_mapping();
    if (name == "true") return v.kind == value_kind::boolean && v.b;
    if (name == "false") return v.kind == value_kind::boolean && !v.b;
    if (name == "boolean") return v.kind == value_kind::boolean;
    if (name == "integer") return v.kind == value_kind::integer;
    if (name == "float") return v.kind == value_kind::floating;
    if (name == "callable") return v.kind == value_kind::macro;
    if (name == "even" || name == "odd") {
      const value m = arithmetic("%", v, value::integer(2));
      return truthy(m) == (name == "odd");
    }
    if (name == "divisibleby") return !truthy(arithmetic("%", v, arg(0)));
    if (name == "lower" || name == "upper") {
      const std::string s = to_str(v);
      bool cased = false;
      for (char c : s) {
        if (c >= 'a' && c <= 'z') {
          if (name == "upper") return false;
          cased = true;
        } else if (c >= 'A' && c <= 'Z') {
          if (name == "lower") return false;
          cased = true;
        }
      }
      return cased;
    }
    if (name == "in") return contains(arg(0), v);
    if (name == "eq" || name == "equalto" || name == "==") return equal(v, arg(0));
    if (name == "ne" || name == "!=") return !equal(v, arg(0));
    if (name == "lt" || name == "lessthan" || name == "<") return compare_order(v, arg(0)) < 0;
    if (name == "le" || name == "<=") return compare_order(v, arg(0)) <= 0;
    if (name == "gt" || name == "greaterthan" || name == ">") return compare_order(v, arg(0)) > 0;
    if (name == "ge" || name == ">=") return compare_order(v, arg(0)) >= 0;
    if (name == "sameas") {
      const value& o = arg(0);
      if (v.kind != o.kind) return false;
      switch (v.kind) {
        case value_kind::none:
        case value_kind::undefined: return true;
        case value_kind::boolean: return v.b == o.b;
        case value_kind::list:
        case value_kind::tuple: return v.list == o.list;
        case value_kind::dict:
        case value_kind::names: return v.dict == o.dict;
        case value_kind::macro: return v.macro == o.macro;
        default: return equal(v, o);
      }
    }
    throw render_failure(concat("unsupported test '", name, "'"));
  }

  const std::string& source_;
  std::uint64_t steps_ = 0;  // statements executed by this render
  int macro_depth_ = 0;
};

}  // namespace chat_detail
}  // namespace unmask
