// unmask/chat/template_parser.hpp
//
// Turns the tokens of a chat template into a tree of statements and
// expressions, with Jinja2's grammar and precedence (jinja2/parser.py, 3.1):
//   expression := or ['if' or ['else' expression]]
//   or := and ('or' and)*          and := not ('and' not)*
//   not := 'not' not | compare     compare := sum (op sum)*   (==, !=, <, ...,
//                                   in, not in; chained like Python's)
//   sum := concat (('+'|'-') concat)*     concat := product ('~' product)*
//   product := power (('*'|'/'|'//'|'%') power)*    power := unary ('**' unary)*
//   unary := ('-'|'+') unary | primary postfix* ('|' filter | 'is' test)*
// so a filter binds tighter than any operator (`'a' + b | trim` trims b).
// Statements: for (with tuple targets, an `if` filter and `else`), if / elif
// / else, set (a name, a tuple of names, `ns.attr`, or a block `set x` ...
// `endset`), macro, break / continue (loopcontrols), and transformers'
// `generation` block, which renders its body.
//
// Everything the renderer could not do is refused here, at load time, with a
// config_error naming the source, line:column and the construct: an unknown
// filter, test, statement, function or method, or a syntax error. The tree is
// at most max_nesting levels deep (statements inside statements, and
// expression nodes inside expressions, counted separately) so that parsing
// and rendering recurse a bounded number of times whatever the template.
#pragma once

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "unmask/chat/template_lexer.hpp"
#include "unmask/chat/template_value.hpp"
#include "unmask/core/error.hpp"

namespace unmask {
namespace chat_detail {

constexpr int max_nesting = 64;

enum class expr_kind {
  literal,    // constant
  name,       // variable: name
  list,       // [kids...]
  tuple,      // (kids...)
  dict,       // {kids[0]: kids[1], ...}
  getattr,    // kids[0].name
  getitem,    // kids[0][kids[1]]
  slice,      // kids[0]:kids[1]:kids[2], each may be null
  call,       // kids[0](kids[1..], keywords)
  filter,     // kids[0] | name(kids[1..], keywords)
  test,       // kids[0] is [not] name(kids[1..])
  logical_not,
  negate,
  plus,
  binary,     // kids[0] op kids[1]: + - * / // % **
  compare,    // kids[0] ops[0] kids[1] ops[1] kids[2] ...
  logical_and,
  logical_or,
  concat,     // kids joined with ~
  conditional // kids[1] if kids[0] else kids[2] (kids[2] may be null)
};

struct expr;
using expr_ptr = std::unique_ptr<expr>;

struct expr {
  expr_kind kind = expr_kind::literal;
  int line = 0, column = 0;
  int height = 1;  // nodes on the longest path down from here
  value constant;
  std::string name;  // variable, attribute, filter, test, or operator
  bool negated = false;
  std::vector<expr_ptr> kids;
  std::vector<std::pair<std::string, expr_ptr>> keywords;
  std::vector<std::string> ops;
};

enum class stmt_kind { text, output, if_chain, for_loop, set, set_namespace, set_block, macro, loop_break, loop_continue, generation };

struct stmt;
using stmt_ptr = std::unique_ptr<stmt>;
using stmt_list = std::vector<stmt_ptr>;

struct macro_param {
  std::string name;
  expr_ptr default_value;  // null when required
};

struct stmt {
  stmt_kind kind = stmt_kind::text;
  int line = 0, column = 0;
  std::string text;                  // text; set_namespace: the namespace; macro: its name
  std::string attribute;             // set_namespace: the attribute
  std::vector<std::string> targets;  // for / set / set_block names
  expr_ptr value;                    // output, set value, for iterable
  expr_ptr condition;                // for ... if condition
  std::vector<std::pair<expr_ptr, stmt_list>> branches;  // if / elif
  stmt_list body;
  stmt_list else_body;
  std::vector<macro_param> params;   // macro
};

inline const std::set<std::string, std::less<>>& known_filters() {
  static const std::set<std::string, std::less<>> names = {
      "abs",  "capitalize", "count", "d",      "default", "first",   "float",
      "int",  "items",      "join",  "last",   "length",  "list", "lower",      "map",     "rejectattr",
      "reject", "replace",  "reverse", "round", "safe",   "select", "selectattr", "sort",  "string",
      "title", "tojson",    "trim",  "unique", "upper",   "indent", "sum",      "min",     "max",
      "dictsort"};
  return names;
}

inline const std::set<std::string, std::less<>>& known_tests() {
  static const std::set<std::string, std::less<>> names = {
      "defined", "undefined", "none",      "string",     "number", "mapping", "iterable", "sequence",
      "true",    "false",     "boolean",   "integer",    "float",  "even",    "odd",      "divisibleby",
      "lower",   "upper",     "in",        "eq",         "equalto", "==",     "ne",       "!=",
      "lt",      "lessthan",  "<",         "le",         "<=",     "gt",      "greaterthan", ">",
      "ge",      ">=",        "sameas",    "callable"};
  return names;
}

inline const std::set<std::string, std::less<>>& known_methods() {
  static const std::set<std::string, std::less<>> names = {
      "strip", "lstrip", "rstrip", "split", "rsplit", "startswith", "endswith", "upper", "lower",  "replace",
      "find",  "rfind",  "count",  "title", "capitalize", "join",   "splitlines", "isdigit", "isalpha",
      "isspace", "items", "keys",  "values", "get"};
  return names;
}

inline const std::set<std::string, std::less<>>& known_globals() {
  static const std::set<std::string, std::less<>> names = {"raise_exception", "strftime_now", "namespace", "range",
                                                          "dict"};
  return names;
}

class template_parser {
 public:
  template_parser(std::vector<token> tokens, std::string source) : tokens_(std::move(tokens)), source_(std::move(source)) {}

  stmt_list parse() {
    stmt_list body = parse_body({}, 0);
    if (current().kind != token_kind::eof) fail(current(), "unexpected tag");
    for (const auto& call : called_names_) {
      if (!known_globals().count(call.first) && !macro_names_.count(call.first))
        fail_at(call.second.first, call.second.second, concat("unsupported function '", call.first, "'"));
    }
    return body;
  }

 private:
  // ---- token stream -----------------------------------------------------------

  const token& current() const { return tokens_[pos_]; }
  const token& peek(std::size_t ahead = 1) const { return tokens_[std::min(pos_ + ahead, tokens_.size() - 1)]; }
  const token& next() {
    const token& t = tokens_[pos_];
    if (pos_ + 1 < tokens_.size()) ++pos_;
    return t;
  }
  bool is_op(const char* op) const { return current().kind == token_kind::op && current().text == op; }
  bool is_name(const char* word) const { return current().kind == token_kind::name && current().text == word; }
  bool skip_op(const char* op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }
  bool skip_name(const char* word) {
    if (!is_name(word)) return false;
    next();
    return true;
  }

  static std::string describe(const token& t) {
    switch (t.kind) {
      case token_kind::data: return "template data";
      case token_kind::block_begin: return "begin of statement block";
      case token_kind::block_end: return "end of statement block";
      case token_kind::variable_begin: return "begin of print statement";
      case token_kind::variable_end: return "end of print statement";
      case token_kind::name:
      case token_kind::op:
      case token_kind::integer:
      case token_kind::floating: return concat("'", t.text, "'");
      case token_kind::string: return "string";
      case token_kind::eof: return "end of template";
    }
    return "token";
  }

  [[noreturn]] void fail_at(int line, int column, const std::string& what) const {
    throw config_error(template_location(source_, line, column) + what);
  }
  [[noreturn]] void fail(const token& t, const std::string& what) const { fail_at(t.line, t.column, what); }

  void expect_op(const char* op) {
    if (!skip_op(op)) fail(current(), concat("expected '", op, "', got ", describe(current())));
  }
  std::string expect_name() {
    if (current().kind != token_kind::name) fail(current(), concat("expected a name, got ", describe(current())));
    return next().text;
  }
  void expect_block_end() {
    if (current().kind != token_kind::block_end) fail(current(), concat("expected end of statement block, got ", describe(current())));
    next();
  }

  struct depth_guard {
    int& depth;
    depth_guard(int& d, const template_parser& p, const token& at) : depth(d) {
      if (++depth > max_nesting) p.fail(at, concat("template nested deeper than ", max_nesting, " levels"));
    }
    ~depth_guard() { --depth; }
  };

  expr_ptr make(expr_kind kind, const token& at) {
    auto e = std::make_unique<expr>();
    e->kind = kind;
    e->line = at.line;
    e->column = at.column;
    return e;
  }

  // Adds a child and checks the tree's height: evaluation recurses once per level.
  void adopt(expr& parent, expr_ptr child) {
    if (child) {
      parent.height = std::max(parent.height, child->height + 1);
      if (parent.height > max_nesting) fail_at(parent.line, parent.column, concat("expression nested deeper than ", max_nesting, " levels"));
    }
    parent.kids.push_back(std::move(child));
  }

  expr_ptr node(expr_kind kind, const token& at, expr_ptr a, expr_ptr b = nullptr) {
    expr_ptr e = make(kind, at);
    adopt(*e, std::move(a));
    if (b) adopt(*e, std::move(b));
    return e;
  }

  // ---- statements ---------------------------------------------------------------

  // Statements until a block whose first name is in `ends` (left unconsumed,
  // positioned on that name) or the end of the template.
  stmt_list parse_body(const std::vector<std::string>& ends, int depth) {
    stmt_list body;
    while (true) {
      const token& t = current();
      if (t.kind == token_kind::eof) {
        if (!ends.empty()) {
          std::string list;
          for (const auto& e : ends) list += (list.empty() ? "'" : " or '") + e + "'";
          fail(t, concat("unexpected end of template, expected ", list));
        }
        return body;
      }
      if (t.kind == token_kind::data) {
        auto s = std::make_unique<stmt>();
        s->kind = stmt_kind::text;
        s->line = t.line;
        s->column = t.column;
        s->text = t.text;
        body.push_back(std::move(s));
        next();
      } else if (t.kind == token_kind::variable_begin) {
        next();
        auto s = std::make_unique<stmt>();
        s->kind = stmt_kind::output;
        s->line = t.line;
        s->column = t.column;
        s->value = parse_tuple_expression();
        if (current().kind != token_kind::variable_end) fail(current(), concat("expected end of print statement, got ", describe(current())));
        next();
        body.push_back(std::move(s));
      } else if (t.kind == token_kind::block_begin) {
        const token& word = peek();
        if (word.kind == token_kind::name && std::find(ends.begin(), ends.end(), word.text) != ends.end()) {
          next();
          return body;
        }
        next();
        body.push_back(parse_statement(t, depth));
      } else {
        fail(t, concat("unexpected ", describe(t)));
      }
    }
  }

  stmt_ptr parse_statement(const token& begin, int depth) {
    depth_guard guard(depth, *this, begin);
    const token& word = current();
    if (word.kind != token_kind::name) fail(word, "tag name expected");
    const std::string name = word.text;
    auto s = std::make_unique<stmt>();
    s->line = word.line;
    s->column = word.column;
    next();
    if (name == "if") return parse_if(std::move(s), depth);
    if (name == "for") return parse_for(std::move(s), depth);
    if (name == "set") return parse_set(std::move(s), depth);
    if (name == "macro") return parse_macro(std::move(s), depth);
    if (name == "break" || name == "continue") {
      if (loop_depth_ == 0) fail(word, concat("'", name, "' outside of a loop"));
      s->kind = name == "break" ? stmt_kind::loop_break : stmt_kind::loop_continue;
      expect_block_end();
      return s;
    }
    if (name == "generation") {
      s->kind = stmt_kind::generation;
      expect_block_end();
      s->body = parse_body({"endgeneration"}, depth);
      next();
      expect_block_end();
      return s;
    }
    static const char* const endings[] = {"endif", "endfor", "endset", "endmacro", "else", "elif", "endgeneration"};
    for (const char* e : endings)
      if (name == e) fail(word, concat("unexpected '", name, "'"));
    fail(word, concat("unsupported statement '", name, "'"));
  }

  stmt_ptr parse_if(stmt_ptr s, int depth) {
    s->kind = stmt_kind::if_chain;
    while (true) {
      expr_ptr cond = parse_tuple_expression();
      expect_block_end();
      stmt_list body = parse_body({"elif", "else", "endif"}, depth);
      s->branches.emplace_back(std::move(cond), std::move(body));
      const std::string end = next().text;
      if (end == "elif") continue;
      if (end == "else") {
        expect_block_end();
        s->else_body = parse_body({"endif"}, depth);
        next();
      }
      break;
    }
    expect_block_end();
    return s;
  }

  std::vector<std::string> parse_targets() {
    std::vector<std::string> names;
    const bool paren = skip_op("(");
    do {
      if (paren && is_op(")")) break;
      names.push_back(expect_name());
    } while (skip_op(","));
    if (paren) expect_op(")");
    return names;
  }

  stmt_ptr parse_for(stmt_ptr s, int depth) {
    s->kind = stmt_kind::for_loop;
    s->targets = parse_targets();
    for (const auto& t : s->targets)
      if (t == "loop") fail_at(s->line, s->column, "can't assign to special loop variable in for-loop target");
    if (!skip_name("in")) fail(current(), concat("expected 'in', got ", describe(current())));
    s->value = parse_tuple_expression(/*no_condition=*/true);
    if (skip_name("if")) s->condition = parse_expression();
    if (is_name("recursive")) fail(current(), "unsupported construct 'recursive' loop");
    expect_block_end();
    ++loop_depth_;
    s->body = parse_body({"else", "endfor"}, depth);
    --loop_depth_;
    if (next().text == "else") {
      expect_block_end();
      s->else_body = parse_body({"endfor"}, depth);
      next();
    }
    expect_block_end();
    return s;
  }

  stmt_ptr parse_set(stmt_ptr s, int depth) {
    const token& first = current();
    if (first.kind == token_kind::name && peek().kind == token_kind::op && peek().text == ".") {
      s->kind = stmt_kind::set_namespace;
      s->text = next().text;
      next();
      s->attribute = expect_name();
      expect_op("=");
      s->value = parse_tuple_expression();
      expect_block_end();
      return s;
    }
    s->targets = parse_targets();
    if (skip_op("=")) {
      s->kind = stmt_kind::set;
      s->value = parse_tuple_expression();
      expect_block_end();
      return s;
    }
    if (is_op("|")) fail(current(), "unsupported construct: filter on a block set");
    if (s->targets.size() != 1) fail(current(), "expected '=' in a set with several targets");
    s->kind = stmt_kind::set_block;
    expect_block_end();
    s->body = parse_body({"endset"}, depth);
    next();
    expect_block_end();
    return s;
  }

  stmt_ptr parse_macro(stmt_ptr s, int depth) {
    s->kind = stmt_kind::macro;
    s->text = expect_name();
    expect_op("(");
    while (!is_op(")")) {
      if (!s->params.empty()) expect_op(",");
      if (is_op(")")) break;
      macro_param p;
      p.name = expect_name();
      if (skip_op("=")) p.default_value = parse_expression();
      else if (!s->params.empty() && s->params.back().default_value)
        fail(current(), "non-default argument follows default argument");
      s->params.push_back(std::move(p));
    }
    expect_op(")");
    expect_block_end();
    macro_names_.insert(s->text);
    const int saved = loop_depth_;
    loop_depth_ = 0;
    s->body = parse_body({"endmacro"}, depth);
    loop_depth_ = saved;
    next();
    if (current().kind == token_kind::name) {
      if (next().text != s->text) fail(current(), "endmacro name does not match");
    }
    expect_block_end();
    return s;
  }

  // ---- expressions ----------------------------------------------------------------

  // A tuple without brackets (`{{ a, b }}`, `{% set x = 1, 2 %}`) or one expression.
  expr_ptr parse_tuple_expression(bool no_condition = false) {
    const token& at = current();
    expr_ptr first = no_condition ? parse_or() : parse_expression();
    if (!is_op(",")) return first;
    expr_ptr t = make(expr_kind::tuple, at);
    adopt(*t, std::move(first));
    while (skip_op(",")) {
      if (current().kind == token_kind::block_end || current().kind == token_kind::variable_end || is_name("if")) break;
      adopt(*t, no_condition ? parse_or() : parse_expression());
    }
    return t;
  }

  expr_ptr parse_expression() {
    depth_guard guard(expr_depth_, *this, current());
    const token& at = current();
    expr_ptr e = parse_or();
    while (is_name("if")) {
      next();
      expr_ptr cond = parse_or();
      expr_ptr other;
      if (skip_name("else")) other = parse_expression();
      expr_ptr c = make(expr_kind::conditional, at);
      adopt(*c, std::move(cond));
      adopt(*c, std::move(e));
      c->kids.push_back(nullptr);
      if (other) {
        c->kids.pop_back();
        adopt(*c, std::move(other));
      }
      e = std::move(c);
    }
    return e;
  }

  expr_ptr parse_or() {
    expr_ptr left = parse_and();
    while (is_name("or")) {
      const token& at = next();
      left = node(expr_kind::logical_or, at, std::move(left), parse_and());
    }
    return left;
  }

  expr_ptr parse_and() {
    expr_ptr left = parse_not();
    while (is_name("and")) {
      const token& at = next();
      left = node(expr_kind::logical_and, at, std::move(left), parse_not());
    }
    return left;
  }

  expr_ptr parse_not() {
    if (is_name("not")) {
      depth_guard guard(expr_depth_, *this, current());
      const token& at = next();
      return node(expr_kind::logical_not, at, parse_not());
    }
    return parse_compare();
  }

  expr_ptr parse_compare() {
    const token& at = current();
    expr_ptr first = parse_sum();
    expr_ptr cmp;
    while (true) {
      std::string op;
      const token& t = current();
      if (t.kind == token_kind::op && (t.text == "==" || t.text == "!=" || t.text == "<" || t.text == ">" || t.text == "<=" || t.text == ">=")) {
        op = t.text;
        next();
      } else if (is_name("in")) {
        op = "in";
        next();
      } else if (is_name("not") && peek().kind == token_kind::name && peek().text == "in") {
        op = "not in";
        next();
        next();
      } else {
        break;
      }
      if (!cmp) {
        cmp = make(expr_kind::compare, at);
        adopt(*cmp, std::move(first));
      }
      cmp->ops.push_back(op);
      adopt(*cmp, parse_sum());
    }
    return cmp ? std::move(cmp) : std::move(first);
  }

  expr_ptr binary(const token& at, const std::string& op, expr_ptr a, expr_ptr b) {
    expr_ptr e = node(expr_kind::binary, at, std::move(a), std::move(b));
    e->name = op;
    return e;
  }

  expr_ptr parse_sum() {
    expr_ptr left = parse_concat();
    while (is_op("+") || is_op("-")) {
      const token& at = next();
      left = binary(at, at.text, std::move(left), parse_concat());
    }
    return left;
  }

  expr_ptr parse_concat() {
    const token& at = current();
    expr_ptr first = parse_product();
    if (!is_op("~")) return first;
    expr_ptr c = make(expr_kind::concat, at);
    adopt(*c, std::move(first));
    while (skip_op("~")) adopt(*c, parse_product());
    return c;
  }

  expr_ptr parse_product() {
    expr_ptr left = parse_power();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const token& at = next();
      left = binary(at, at.text, std::move(left), parse_power());
    }
    return left;
  }

  expr_ptr parse_power() {
    expr_ptr left = parse_unary(true);
    while (is_op("**")) {
      const token& at = next();
      left = binary(at, "**", std::move(left), parse_unary(true));
    }
    return left;
  }

  expr_ptr parse_unary(bool with_filter) {
    expr_ptr e;
    if (is_op("-") || is_op("+")) {
      depth_guard guard(expr_depth_, *this, current());
      const token& at = next();
      e = node(at.text == "-" ? expr_kind::negate : expr_kind::plus, at, parse_unary(false));
    } else {
      e = parse_primary();
    }
    e = parse_postfix(std::move(e));
    if (with_filter) e = parse_filters(std::move(e));
    return e;
  }

  expr_ptr parse_primary() {
    const token& t = current();
    switch (t.kind) {
      case token_kind::name: {
        next();
        expr_ptr e = make(expr_kind::literal, t);
        if (t.text == "true" || t.text == "True") e->constant = value::boolean(true);
        else if (t.text == "false" || t.text == "False") e->constant = value::boolean(false);
        else if (t.text == "none" || t.text == "None") e->constant = value::none();
        else {
          e->kind = expr_kind::name;
          e->name = t.text;
        }
        return e;
      }
      case token_kind::string: {
        std::string s;
        while (current().kind == token_kind::string) s += next().text;
        expr_ptr e = make(expr_kind::literal, t);
        e->constant = value::string(std::move(s));
        return e;
      }
      case token_kind::integer: {
        next();
        expr_ptr e = make(expr_kind::literal, t);
        e->constant = value::integer(t.integer);
        return e;
      }
      case token_kind::floating: {
        next();
        expr_ptr e = make(expr_kind::literal, t);
        e->constant = value::floating(t.floating);
        return e;
      }
      case token_kind::op:
        if (t.text == "(") {
          next();
          if (skip_op(")")) return make(expr_kind::tuple, t);
          expr_ptr first = parse_expression();
          if (skip_op(")")) return first;
          expr_ptr tuple = make(expr_kind::tuple, t);
          adopt(*tuple, std::move(first));
          while (skip_op(",")) {
            if (is_op(")")) break;
            adopt(*tuple, parse_expression());
          }
          expect_op(")");
          return tuple;
        }
        if (t.text == "[") {
          next();
          expr_ptr list = make(expr_kind::list, t);
          while (!is_op("]")) {
            if (!list->kids.empty()) expect_op(",");
            if (is_op("]")) break;
            adopt(*list, parse_expression());
          }
          expect_op("]");
          return list;
        }
        if (t.text == "{") {
          next();
          expr_ptr dict = make(expr_kind::dict, t);
          while (!is_op("}")) {
            if (!dict->kids.empty()) expect_op(",");
            if (is_op("}")) break;
            adopt(*dict, parse_expression());
            expect_op(":");
            adopt(*dict, parse_expression());
          }
          expect_op("}");
          return dict;
        }
        break;
      default: break;
    }
    fail(t, concat("unexpected ", describe(t)));
  }

  expr_ptr parse_postfix(expr_ptr e) {
    while (true) {
      if (is_op(".")) {
        const token& at = next();
        const token& attr = current();
        if (attr.kind == token_kind::name) {
          next();
          expr_ptr g = node(expr_kind::getattr, at, std::move(e));
          g->name = attr.text;
          e = std::move(g);
        } else if (attr.kind == token_kind::integer) {
          next();
          expr_ptr index = make(expr_kind::literal, attr);
          index->constant = value::integer(attr.integer);
          e = node(expr_kind::getitem, at, std::move(e), std::move(index));
        } else {
          fail(attr, "expected name or number");
        }
      } else if (is_op("[")) {
        const token& at = next();
        expr_ptr index = parse_subscript();
        if (is_op(",")) fail(current(), "unsupported construct: tuple subscript");
        expect_op("]");
        e = node(expr_kind::getitem, at, std::move(e), std::move(index));
      } else if (is_op("(")) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }

  expr_ptr parse_subscript() {
    const token& at = current();
    expr_ptr start;
    if (!is_op(":")) {
      start = parse_expression();
      if (!is_op(":")) return start;
    }
    next();  // ':'
    expr_ptr slice = make(expr_kind::slice, at);
    adopt(*slice, std::move(start));
    expr_ptr stop, step;
    if (!is_op(":") && !is_op("]") && !is_op(",")) stop = parse_expression();
    adopt(*slice, std::move(stop));
    if (skip_op(":")) {
      if (!is_op("]") && !is_op(",")) step = parse_expression();
    }
    adopt(*slice, std::move(step));
    return slice;
  }

  // Arguments in parentheses, into e's kids (after any already there) and keywords.
  void parse_arguments(expr& e) {
    expect_op("(");
    bool first = true;
    while (!is_op(")")) {
      if (!first) {
        expect_op(",");
        if (is_op(")")) break;
      }
      first = false;
      if (is_op("*") || is_op("**")) fail(current(), "unsupported construct: *args / **kwargs in a call");
      if (current().kind == token_kind::name && peek().kind == token_kind::op && peek().text == "=") {
        std::string key = next().text;
        next();
        expr_ptr v = parse_expression();
        e.height = std::max(e.height, v->height + 1);
        if (e.height > max_nesting) fail_at(e.line, e.column, concat("expression nested deeper than ", max_nesting, " levels"));
        e.keywords.emplace_back(std::move(key), std::move(v));
      } else {
        if (!e.keywords.empty()) fail(current(), "positional argument follows keyword argument");
        adopt(e, parse_expression());
      }
    }
    expect_op(")");
  }

  expr_ptr parse_call(expr_ptr callee) {
    const token& at = current();
    if (callee->kind == expr_kind::name) {
      called_names_.emplace(callee->name, std::make_pair(callee->line, callee->column));
    } else if (callee->kind == expr_kind::getattr) {
      if (!known_methods().count(callee->name)) fail_at(callee->line, callee->column, concat("unsupported method '", callee->name, "'"));
    } else {
      fail(at, "unsupported construct: call of an expression");
    }
    const int line = callee->line, column = callee->column;
    expr_ptr call = node(expr_kind::call, at, std::move(callee));
    call->line = line;  // errors point at the function's name, not the '('
    call->column = column;
    parse_arguments(*call);
    return call;
  }

  expr_ptr parse_filters(expr_ptr e) {
    while (true) {
      if (is_op("|")) {
        next();
        const token& name = current();
        const std::string filter = expect_name();
        if (is_op(".")) fail(current(), "unsupported construct: dotted filter name");
        if (!known_filters().count(filter)) fail(name, concat("unsupported filter '", filter, "'"));
        expr_ptr f = node(expr_kind::filter, name, std::move(e));
        f->name = filter;
        if (is_op("(")) parse_arguments(*f);
        e = std::move(f);
      } else if (is_name("is")) {
        next();
        const bool negated = skip_name("not");
        const token& name = current();
        std::string test = expect_name();
        if (!known_tests().count(test)) fail(name, concat("unsupported test '", test, "'"));
        expr_ptr t = node(expr_kind::test, name, std::move(e));
        t->name = test;
        t->negated = negated;
        if (is_op("(")) {
          parse_arguments(*t);
        } else {
          const token& c = current();
          const bool starts_arg = c.kind == token_kind::name || c.kind == token_kind::string || c.kind == token_kind::integer ||
                                  c.kind == token_kind::floating || (c.kind == token_kind::op && (c.text == "(" || c.text == "[" || c.text == "{"));
          if (starts_arg && !is_name("else") && !is_name("or") && !is_name("and")) {
            if (is_name("is")) fail(c, "You cannot chain multiple tests with is");
            adopt(*t, parse_postfix(parse_primary()));
          }
        }
        e = std::move(t);
      } else if (is_op("(")) {
        fail(current(), "unsupported construct: call of an expression");
      } else {
        return e;
      }
    }
  }

  std::vector<token> tokens_;
  std::string source_;
  std::size_t pos_ = 0;
  int expr_depth_ = 0;
  int loop_depth_ = 0;
  std::set<std::string> macro_names_;
  std::multimap<std::string, std::pair<int, int>> called_names_;
};

}  // namespace chat_detail
}  // namespace unmask
