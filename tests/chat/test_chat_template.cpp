// Chat templates rendered by unmask against transformers' apply_chat_template
// (tests/data/chat/goldens.json, written by tools/make_chat_goldens.py), the
// templates unmask must refuse at parse time (rejections.json), and edge cases.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "unmask/chat/chat_template.hpp"
#include "unmask/tokenizer/tokenizer_config.hpp"

namespace {

using unmask::chat_message;
using unmask::chat_render_options;
using unmask::chat_template;

const std::string data_dir = std::string(UNMASK_TEST_DATA_DIR) + "/chat/";

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

nlohmann::json read_json(const std::string& name) { return nlohmann::json::parse(read_file(data_dir + name)); }

std::vector<chat_message> messages_of(const nlohmann::json& j) {
  std::vector<chat_message> out;
  for (const auto& m : j) out.push_back({m.at("role").get<std::string>(), m.at("content").get<std::string>()});
  return out;
}

std::string render(const std::string& text, const std::vector<chat_message>& messages = {{"user", "hi"}},
                   chat_render_options options = {}) {
  return chat_template::parse(text, "test").render(messages, options);
}

// The error message of `fn`, which must throw E.
template <class E, class Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const E& e) {
    return e.what();
  }
  ADD_FAILURE() << "no exception thrown";
  return {};
}

TEST(ChatTemplate, MatchesTransformersGoldens) {
  const nlohmann::json cases = read_json("goldens.json");
  ASSERT_GT(cases.size(), 100u);
  std::size_t rendered = 0, raised = 0;
  for (const auto& c : cases) {
    const std::string file = c.at("template").get<std::string>();
    SCOPED_TRACE(file + " / " + c.at("case").get<std::string>() +
                 (c.at("add_generation_prompt").get<bool>() ? " / add_generation_prompt" : ""));
    const chat_template t = chat_template::parse(read_file(data_dir + "templates/" + file), file);
    chat_render_options options;
    options.add_generation_prompt = c.at("add_generation_prompt").get<bool>();
    options.bos_token = c.at("bos_token").get<std::string>();
    options.eos_token = c.at("eos_token").get<std::string>();
    options.extra = c.at("extra");
    const auto messages = messages_of(c.at("messages"));
    if (c.contains("raises")) {
      const std::string what = error_of<unmask::argument_error>([&] { t.render(messages, options); });
      EXPECT_NE(what.find(c.at("raises").get<std::string>()), std::string::npos) << what;
      EXPECT_NE(what.find("'" + file + "' chat_template "), std::string::npos) << what;
      ++raised;
    } else {
      EXPECT_EQ(t.render(messages, options), c.at("rendered").get<std::string>());
      ++rendered;
    }
  }
  EXPECT_GT(rendered, 100u);
  EXPECT_GE(raised, 1u);
}

TEST(ChatTemplate, RealTemplatesParse) {
  for (const char* file : {"llada_8b_instruct.jinja", "dream_v0_instruct_7b.jinja", "fast_dllm_v2_7b.jinja", "sdar_4b_chat.jinja"}) {
    SCOPED_TRACE(file);
    const chat_template t = chat_template::parse(read_file(data_dir + "templates/" + file), file);
    EXPECT_EQ(t.source(), file);
  }
}

TEST(ChatTemplate, RejectsAtParseTimeWithLocation) {
  const nlohmann::json cases = read_json("rejections.json");
  ASSERT_GE(cases.size(), 10u);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.at("case").get<std::string>());
    const std::string text = c.at("template").get<std::string>();
    const std::string what = error_of<unmask::config_error>([&] { chat_template::parse(text, "tokenizer_config.json"); });
    const std::string where = "'tokenizer_config.json' chat_template " + c.at("location").get<std::string>();
    EXPECT_EQ(what.rfind(where, 0), 0u) << what;
    EXPECT_NE(what.find(c.at("message").get<std::string>()), std::string::npos) << what;
  }
}

TEST(ChatTemplate, UnsupportedFilterMessageIsExact) {
  const std::string what = error_of<unmask::config_error>(
      [] { chat_template::parse("{% for m in messages %}\n\n{{ m.content | wordwrap(5) }}{% endfor %}", "tokenizer_config.json"); });
  EXPECT_EQ(what, "'tokenizer_config.json' chat_template 3:16: unsupported filter 'wordwrap'");
}

TEST(ChatTemplate, UndefinedMisuseFailsAtRenderWithLocation) {
  const chat_template t = chat_template::parse("ok\n{{ nothing.attr }}", "t.jinja");
  const std::string what = error_of<unmask::argument_error>([&] { t.render({{"user", "x"}}, {}); });
  EXPECT_EQ(what, "'t.jinja' chat_template 2:11: 'nothing' is undefined");
  EXPECT_NE(error_of<unmask::argument_error>([] { render("{{ messages[0].nope.deeper }}"); }).find("'dict object' has no attribute 'nope'"),
            std::string::npos);
  EXPECT_NE(error_of<unmask::argument_error>([] { render("{{ 'a' + 1 }}"); }).find("can only concatenate str"), std::string::npos);
  EXPECT_NE(error_of<unmask::argument_error>([] { render("{{ missing + 'a' }}"); }).find("'missing' is undefined"), std::string::npos);
  EXPECT_NE(error_of<unmask::argument_error>([] { render("{{ 1 < 'a' }}"); }).find("not supported between"), std::string::npos);
  EXPECT_NE(error_of<unmask::argument_error>([] { render("{{ 1 // 0 }}"); }).find("by zero"), std::string::npos);
  EXPECT_NE(error_of<unmask::argument_error>([] { render("{{ 9223372036854775807 + 1 }}"); }).find("overflow"), std::string::npos);
  EXPECT_NE(error_of<unmask::argument_error>([] { render("{% set x = 1 %}{% set x.a = 2 %}"); }).find("non-namespace"), std::string::npos);
  // Undefined is harmless until used: it prints empty, is falsy, iterates as empty.
  EXPECT_EQ(render("[{{ missing }}]{% if missing %}x{% endif %}{% for a in missing %}y{% endfor %}{{ missing|length }}"), "[]0");
}

TEST(ChatTemplate, RaiseExceptionCarriesMessage) {
  const std::string what = error_of<unmask::argument_error>(
      [] { render("{{ raise_exception('Conversation roles must alternate user/assistant') }}"); });
  EXPECT_EQ(what, "'test' chat_template 1:4: raise_exception: Conversation roles must alternate user/assistant");
}

TEST(ChatTemplate, NestingIsBounded) {
  // 64 levels parse, more do not: no recursion driven by the template beyond that.
  std::string ok = "{{ " + std::string(40, '(') + "1" + std::string(40, ')') + " }}";
  EXPECT_EQ(render(ok), "1");
  std::string deep = "{{ " + std::string(100000, '(') + "1" + std::string(100000, ')') + " }}";
  EXPECT_NE(error_of<unmask::config_error>([&] { chat_template::parse(deep, "t"); }).find("nested deeper than 64"), std::string::npos);
  std::string chain = "{{ 1";
  for (int k = 0; k < 100000; ++k) chain += " + 1";
  chain += " }}";
  EXPECT_NE(error_of<unmask::config_error>([&] { chat_template::parse(chain, "t"); }).find("nested deeper than 64"), std::string::npos);
  std::string blocks;
  for (int k = 0; k < 1000; ++k) blocks += "{% if true %}";
  EXPECT_NE(error_of<unmask::config_error>([&] { chat_template::parse(blocks, "t"); }).find("nested deeper than 64"), std::string::npos);
  std::string nots = "{{ " + std::string() ;
  for (int k = 0; k < 1000; ++k) nots += "not ";
  nots += "1 }}";
  EXPECT_NE(error_of<unmask::config_error>([&] { chat_template::parse(nots, "t"); }).find("nested deeper than 64"), std::string::npos);
  // A macro calling itself without end stops at the call-depth limit.
  EXPECT_NE(error_of<unmask::argument_error>([] { render("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"); })
                .find("macro calls nested deeper"),
            std::string::npos);
  // range() is capped as in Jinja2's sandbox.
  EXPECT_NE(error_of<unmask::argument_error>([] { render("{% for i in range(1000000) %}{% endfor %}"); }).find("Range too big"),
            std::string::npos);
  EXPECT_NE(error_of<unmask::argument_error>([] { render("{{ 'x' * 100000000000 }}"); }).find("too large"), std::string::npos);
}

TEST(ChatTemplate, EveryRenderHasABudget) {
  // Nested loops within range()'s cap would run 10^15 steps; doubling a
  // string or a list in a loop would need 2^60 bytes: each stops with an error.
  EXPECT_NE(error_of<unmask::argument_error>([] {
              render("{% for a in range(99999) %}{% for b in range(99999) %}{% for c in range(99999) %}"
                     "{% endfor %}{% endfor %}{% endfor %}");
            }).find("more than 1000000 steps"),
            std::string::npos);
  EXPECT_NE(error_of<unmask::argument_error>([] {
              render("{% set ns = namespace(s='ab') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}");
            }).find("a string grew beyond"),
            std::string::npos);
  EXPECT_NE(error_of<unmask::argument_error>([] {
              render("{% set ns = namespace(l=[1]) %}{% for i in range(60) %}{% set ns.l = ns.l + ns.l %}{% endfor %}");
            }).find("a list grew beyond"),
            std::string::npos);
  EXPECT_NE(error_of<unmask::argument_error>([] {
              render("{% for i in range(99999) %}{{ 'x' * 60000 }}{% endfor %}");
            }).find("the output grew beyond"),
            std::string::npos);
  // The budget is per render: a template that fits renders again and again.
  const chat_template t = chat_template::parse("{% for i in range(90000) %}.{% endfor %}", "t");
  for (int k = 0; k < 3; ++k) EXPECT_EQ(t.render({{"user", "x"}}, {}).size(), 90000u);
}

TEST(ChatTemplate, VariablesAndExtra) {
  chat_render_options o;
  o.bos_token = "<s>";
  o.add_generation_prompt = false;
  // An empty eos is not defined (transformers' special_tokens_map holds only set tokens).
  EXPECT_EQ(render("{{ bos_token }}{{ eos_token is defined }}{{ add_generation_prompt }}{{ tools }}", {}, o), "<s>FalseFalseNone");
  o.extra = {{"enable_thinking", false}, {"bos_token", "[B]"}, {"nums", {1, 2.5, "x"}}};
  EXPECT_EQ(render("{{ enable_thinking is false }} {{ bos_token }} {{ nums }}", {}, o), "True [B] [1, 2.5, 'x']");
  o.extra = {{"messages", 1}};
  EXPECT_THROW(render("x", {}, o), unmask::argument_error);
  o.extra = nlohmann::json::array();
  EXPECT_THROW(render("x", {}, o), unmask::argument_error);
  EXPECT_THROW(render("x", {{"user", std::string("\xff\xfe")}}), unmask::argument_error);
}

TEST(ChatTemplate, EdgeCases) {
  EXPECT_EQ(render(""), "");
  EXPECT_EQ(render("\n"), "");
  EXPECT_EQ(render("a\n\n"), "a\n");
  EXPECT_EQ(render("{{ {'a': {'b': 1}} }}"), "{'a': {'b': 1}}");
  EXPECT_EQ(render("{{ 'a' ~ '}}' }}"), "a}}");
  EXPECT_EQ(render("{%- if true -%}  x  {%- endif -%}"), "x");
  EXPECT_EQ(render("{{ '\\u00e9\\U0001F642\\x41' }}"), "\xc3\xa9\xf0\x9f\x99\x82" "A");
  EXPECT_EQ(render("{{ 1e16 }} {{ 1e-4 }} {{ 1e-5 }} {{ 0.5 }} {{ 12345678901234567.0 }}"), "1e+16 0.0001 1e-05 0.5 1.2345678901234568e+16");
  EXPECT_EQ(render("{{ messages|length }}", {}), "0");
  EXPECT_EQ(render("{% for m in messages %}{{ loop.index }}{% endfor %}", {{"a", ""}, {"b", ""}, {"c", ""}}), "123");
  // A template with the parse cached is reusable and independent between renders.
  const chat_template t = chat_template::parse("{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.n }}", "t");
  EXPECT_EQ(t.render({{"u", "1"}}, {}), "1");
  EXPECT_EQ(t.render({{"u", "1"}, {"u", "2"}}, {}), "2");
  const chat_template copy = t;
  EXPECT_EQ(copy.render({}, {}), "0");
}

}  // namespace

namespace {

// The embedded models ship the template the goldens check (tools/make_chat_goldens.py copies it).
TEST(ChatTemplate, TheEmbeddedModelsShipTheCheckedTemplate) {
  for (const char* model : {"tiny-llada", "tiny-ar"}) {
    const unmask::tokenizer_config c =
        unmask::tokenizer_config::load_dir(std::string(UNMASK_SOURCE_DIR) + "/models/" + model);
    ASSERT_TRUE(c.chat_template) << model;
    EXPECT_EQ(*c.chat_template, read_file(data_dir + "templates/tiny_models.jinja")) << model;
    EXPECT_EQ(c.eos_token.value_or(""), "<|eos|>") << model;
  }
}

}  // namespace
