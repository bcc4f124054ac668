// tokenizer_config.json (unmask/tokenizer/tokenizer_config.hpp): its token
// strings, chat templates (a string, a named list, chat_template.jinja beside
// it) and its checks against tokenizer.json, each failure naming the file and
// the key. The add_bos_token rule itself is checked against transformers in
// test_split_pretokenizer.cpp.
#include <gtest/gtest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "support/expect_error.hpp"
#include "support/test_files.hpp"
#include "unmask/tokenizer/tokenizer_config.hpp"

namespace {

using json = nlohmann::json;
using unmask::tokenizer_config;

unmask::bpe_tokenizer tiny_tokenizer() {
  return unmask::bpe_tokenizer::load(unmask::test::data_dir() + "/tokenizer/tokenizer.json");
}

TEST(TokenizerConfig, TokensAndTemplates) {
  const tokenizer_config c = tokenizer_config::from_json(
      json{{"tokenizer_class", "PreTrainedTokenizerFast"},
           {"bos_token", nullptr},
           {"eos_token", json{{"__type", "AddedToken"}, {"content", "<|eos|>"}}},
           {"pad_token", "<|pad|>"},
           {"chat_template", json::array({json{{"name", "tool_use"}, {"template", "T"}},
                                          json{{"name", "default"}, {"template", "D"}}})}},
      "cfg.json");
  EXPECT_FALSE(c.bos_token);
  EXPECT_EQ(*c.eos_token, "<|eos|>");
  EXPECT_EQ(*c.pad_token, "<|pad|>");
  EXPECT_EQ(*c.chat_template, "D");
  EXPECT_FALSE(c.rebuilds_post_processor());
  EXPECT_TRUE(tokenizer_config::from_json(json{{"tokenizer_class", "LlamaTokenizerFast"}}, "x").rebuilds_post_processor());
  unmask::bpe_tokenizer t = tiny_tokenizer();
  c.apply(t);  // consistent with the tiny tokenizer
  EXPECT_TRUE(t.added_special_before().empty());
}

TEST(TokenizerConfig, ChatTemplateJinjaBesideItWins) {
  unmask::test::scratch_dir dir;
  unmask::test::write_text(dir.file("tokenizer_config.json"), json{{"chat_template", "old"}}.dump());
  EXPECT_EQ(*tokenizer_config::load_dir(dir.file("")).chat_template, "old");
  unmask::test::write_text(dir.file("chat_template.jinja"), "{{ messages[0]['content'] }}");
  EXPECT_EQ(*tokenizer_config::load_dir(dir.file("")).chat_template, "{{ messages[0]['content'] }}");
  unmask::test::scratch_dir empty;  // no tokenizer_config.json at all: an empty config
  EXPECT_FALSE(tokenizer_config::load_dir(empty.file("")).chat_template);
}

TEST(TokenizerConfig, BadValuesNameTheKey) {
  using unmask::config_error;
  using unmask::test::expect_error;
  const auto bad = [](const json& j, std::initializer_list<const char*> what) {
    expect_error<config_error>([&] { tokenizer_config::from_json(j, "cfg.json"); }, what);
  };
  bad(json::array(), {"cfg.json", "not a JSON object"});
  bad(json{{"add_bos_token", "yes"}}, {"cfg.json", "add_bos_token must be true or false"});
  bad(json{{"eos_token", 5}}, {"eos_token must be a string"});
  bad(json{{"chat_template", 5}}, {"chat_template must be a string or a list"});
  bad(json{{"chat_template", json::array({json{{"name", "tool_use"}, {"template", "T"}}})}},
      {"without a template named \"default\""});
  bad(json{{"split_special_tokens", true}}, {"split_special_tokens true"});
  bad(json{{"tokenizer_class", 3}}, {"tokenizer_class must be a string"});
  const auto inconsistent = [](const json& j, std::initializer_list<const char*> what) {
    const tokenizer_config c = tokenizer_config::from_json(j, "cfg.json");
    unmask::bpe_tokenizer t = tiny_tokenizer();
    expect_error<config_error>([&] { c.apply(t); }, what);
  };
  inconsistent(json{{"eos_token", "<|nope|>"}}, {"cfg.json", "'<|nope|>' is not in the vocabulary"});
  inconsistent(json{{"added_tokens_decoder", json{{"4094", json{{"content", "<|pad|>"}}}}}},
               {"added_tokens_decoder gives id 4094 the content '<|pad|>'", "'<|eos|>'"});
  inconsistent(json{{"added_tokens_decoder", json{{"9999", json{{"content", "x"}}}}}}, {"id '9999' is not an id"});
  inconsistent(json{{"added_tokens_decoder", json{{"4x", json{{"content", "x"}}}}}}, {"id '4x' is not an id"});
  inconsistent(json{{"tokenizer_class", "LlamaTokenizer"}}, {"add_bos_token is true but there is no bos_token"});
  inconsistent(json{{"tokenizer_class", "GPTNeoXTokenizerFast"}, {"add_eos_token", true}},
               {"add_eos_token is true but there is no eos_token"});
}

}  // namespace
