// unmask/tokenizer/tokenizer_config.hpp
//
// What a Hugging Face model's tokenizer_config.json adds to its tokenizer.json:
// the tokenizer class, the bos / eos / pad token strings, add_bos_token and
// add_eos_token, and the chat template (a string, or a list of named
// templates of which "default" is taken; a chat_template.jinja file beside it
// replaces either, as transformers >= 4.43 loads it).
//
// add_bos_token follows transformers 4.57 exactly, which is less obvious than
// its name: only the classes that rebuild the tokenizer.json post-processor
// from it (LlamaTokenizer, CodeLlamaTokenizer, GemmaTokenizer,
// CohereTokenizer: bos by default; GPTNeoXTokenizer: neither by default; their
// "Fast" forms alike; transformers/models/llama/tokenization_llama_fast.py,
// update_post_processor) put `[bos] $A [eos]` around an encoded prompt. For
// every other class (PreTrainedTokenizerFast, Qwen2Tokenizer, ...) the two
// keys change nothing and tokenizer.json's own post-processor decides. So
// apply() replaces the tokenizer's added special tokens only for those classes.
//
// Also checked: added_tokens_decoder must give each id the content the
// tokenizer has for it, and split_special_tokens (which makes special tokens
// ordinary text) must be false.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "unmask/core/error.hpp"
#include "unmask/io/json_file.hpp"
#include "unmask/tokenizer/byte_level_bpe.hpp"

namespace unmask {

struct tokenizer_config {
  std::string source;           // the file, for messages
  std::string tokenizer_class;  // "" when absent
  std::optional<std::string> bos_token, eos_token, pad_token;
  std::optional<bool> add_bos_token, add_eos_token;
  std::optional<std::string> chat_template;
  nlohmann::json added_tokens_decoder = nlohmann::json::object();  // id (string) -> {"content": ...}

  static tokenizer_config from_json(const nlohmann::json& j, const std::string& source) {
    tokenizer_config c;
    c.source = source;
    if (!j.is_object()) c.fail("the top level is not a JSON object");
    if (auto it = j.find("tokenizer_class"); it != j.end() && !it->is_null()) {
      if (!it->is_string()) c.fail("tokenizer_class must be a string");
      c.tokenizer_class = it->get<std::string>();
    }
    c.bos_token = c.token_field(j, "bos_token");
    c.eos_token = c.token_field(j, "eos_token");
    c.pad_token = c.token_field(j, "pad_token");
    c.add_bos_token = c.bool_field(j, "add_bos_token");
    c.add_eos_token = c.bool_field(j, "add_eos_token");
    if (c.bool_field(j, "split_special_tokens").value_or(false))
      c.fail("split_special_tokens true (special tokens encoded as text) is not supported");
    if (auto it = j.find("chat_template"); it != j.end() && !it->is_null()) c.chat_template = c.template_field(*it);
    if (auto it = j.find("added_tokens_decoder"); it != j.end() && !it->is_null()) {
      if (!it->is_object()) c.fail("added_tokens_decoder must be an object");
      c.added_tokens_decoder = *it;
    }
    return c;
  }

  static tokenizer_config load(const std::string& path) { return from_json(read_json_file(path), path); }

  // The model directory's tokenizer_config.json (an empty config when there is
  // none) with its chat_template.jinja, if any, as the chat template.
  static tokenizer_config load_dir(const std::string& dir) {
    namespace fs = std::filesystem;
    const fs::path config = fs::path(dir) / "tokenizer_config.json";
    std::error_code ec;
    tokenizer_config c = fs::exists(config, ec) ? load(config.string()) : tokenizer_config{};
    if (c.source.empty()) c.source = config.string();
    const fs::path jinja = fs::path(dir) / "chat_template.jinja";
    if (fs::exists(jinja, ec)) c.chat_template = read_text_file(jinja.string());
    return c;
  }

  // The class without its "Fast" suffix.
  std::string base_class() const {
    const std::string fast = "Fast";
    std::string s = tokenizer_class;
    if (s.size() > fast.size() && s.compare(s.size() - fast.size(), fast.size(), fast) == 0)
      s.resize(s.size() - fast.size());
    return s;
  }

  // Whether transformers rebuilds the post-processor from add_bos_token /
  // add_eos_token for this class, and the defaults it uses.
  bool rebuilds_post_processor(bool* default_bos = nullptr) const {
    const std::string c = base_class();
    const bool bos_first = c == "LlamaTokenizer" || c == "CodeLlamaTokenizer" || c == "GemmaTokenizer" ||
                           c == "CohereTokenizer";
    if (default_bos) *default_bos = bos_first;
    return bos_first || c == "GPTNeoXTokenizer";
  }

  // Checks the config against the tokenizer and, for the classes above, sets
  // the special tokens encode(text, true) adds.
  void apply(bpe_tokenizer& t) const {
    for (auto it = added_tokens_decoder.begin(); it != added_tokens_decoder.end(); ++it) {
      std::int64_t id = -1;
      try {
        std::size_t used = 0;
        id = std::stoll(it.key(), &used);
        if (used != it.key().size()) id = -1;
      } catch (const std::exception&) {
        id = -1;
      }
      if (id < 0 || id >= t.size()) fail(concat("added_tokens_decoder id '", it.key(), "' is not an id of '",
                                                 t.source(), "' (size ", t.size(), ")"));
      if (!it->is_object() || !it->contains("content") || !it->at("content").is_string())
        fail(concat("added_tokens_decoder '", it.key(), "' has no content string"));
      const std::string& have = t.id_to_token(std::int32_t(id));
      if (have != it->at("content").get<std::string>())
        fail(concat("added_tokens_decoder gives id ", id, " the content '", it->at("content").get<std::string>(),
                    "' but '", t.source(), "' has '", have, "'"));
    }
    for (const auto* token : {&bos_token, &eos_token, &pad_token})
      if (*token && !t.find_token(**token))
        fail(concat("the token '", **token, "' is not in the vocabulary of '", t.source(), "'"));
    bool default_bos = false;
    if (!rebuilds_post_processor(&default_bos)) return;
    const bool bos = add_bos_token.value_or(default_bos), eos = add_eos_token.value_or(false);
    std::vector<std::int32_t> before, after;
    if (bos) {
      if (!bos_token) fail("add_bos_token is true but there is no bos_token");
      before.push_back(t.token_to_id(*bos_token));
    }
    if (eos) {
      if (!eos_token) fail("add_eos_token is true but there is no eos_token");
      after.push_back(t.token_to_id(*eos_token));
    }
    t.set_added_special_tokens(std::move(before), std::move(after));
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { throw config_error(concat("'", source, "': ", what)); }

  std::optional<bool> bool_field(const nlohmann::json& j, const char* key) const {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return std::nullopt;
    if (!it->is_boolean()) fail(concat(key, " must be true or false, not ", it->dump()));
    return it->get<bool>();
  }

  // A token as a string or as an AddedToken object {"content": ...}.
  std::optional<std::string> token_field(const nlohmann::json& j, const char* key) const {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return std::nullopt;
    if (it->is_string()) return it->get<std::string>();
    if (it->is_object() && it->contains("content") && it->at("content").is_string())
      return it->at("content").get<std::string>();
    fail(concat(key, " must be a string or an object with a content string"));
  }

  // A string, or a list of {"name", "template"} of which "default" is used.
  std::string template_field(const nlohmann::json& v) const {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_array()) {
      for (const nlohmann::json& e : v) {
        if (!e.is_object() || !e.contains("name") || !e.contains("template") || !e.at("name").is_string() ||
            !e.at("template").is_string())
          fail("chat_template list entries must be {\"name\": ..., \"template\": ...}");
        if (e.at("name").get<std::string>() == "default") return e.at("template").get<std::string>();
      }
      fail("chat_template is a list without a template named \"default\"");
    }
    fail("chat_template must be a string or a list of named templates");
  }
};

}  // namespace unmask
