// unmask/chat/chat_template.hpp
//
// Renders a conversation with a model's chat template (the `chat_template`
// string of its tokenizer_config.json, or chat_template.jinja), giving exactly
// the text transformers' `apply_chat_template(messages, tokenize=False, ...)`
// gives. The template is interpreted, not recognised: any template written in
// the supported Jinja subset renders, a user's fine-tune included, and one
// that uses anything outside it is refused when it is parsed, not halfway
// through a render (docs/chat-templates.md lists the subset).
//
// The variables the template sees are transformers' (4.57,
// render_jinja_template): `messages` (a list of {"role", "content"} dicts),
// `tools` and `documents` (None), `add_generation_prompt`, `bos_token` and
// `eos_token` (each only when non-empty, as special_tokens_map holds only the
// tokens a tokenizer has), then every key of `extra`, which may override any
// of these but `messages` and `add_generation_prompt`. Objects in `extra` are
// nlohmann::json objects, whose keys iterate in sorted order, not insertion
// order.
//
//   auto t = unmask::chat_template::parse(config["chat_template"].get<std::string>(), "tokenizer_config.json");
//   std::string prompt = t.render({{"user", "Hello"}}, {true, "<|startoftext|>", "<|endoftext|>"});
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "unmask/chat/template_lexer.hpp"
#include "unmask/chat/template_parser.hpp"
#include "unmask/chat/template_render.hpp"
#include "unmask/chat/template_value.hpp"
#include "unmask/core/error.hpp"

namespace unmask {

struct chat_message {
  std::string role;
  std::string content;
};

struct chat_render_options {
  bool add_generation_prompt = true;
  std::string bos_token, eos_token;                 // exposed to the template as bos_token / eos_token
  nlohmann::json extra = nlohmann::json::object();  // further variables (e.g. {"enable_thinking": false})
};

class chat_template {
 public:
  // Parses the whole template up front; throws config_error naming `source`,
  // line:column and the construct.
  static chat_template parse(std::string_view text, std::string source) {
    chat_template t;
    t.source_ = std::move(source);
    chat_detail::template_lexer lexer(text, t.source_);
    chat_detail::template_parser parser(lexer.tokenize(), t.source_);
    t.body_ = std::make_shared<const chat_detail::stmt_list>(parser.parse());
    return t;
  }

  // Renders `messages`; a failure while rendering (the template's own
  // raise_exception, an undefined value misused) is an argument_error naming
  // the source and line:column.
  std::string render(const std::vector<chat_message>& messages, const chat_render_options& options) const {
    using chat_detail::value;
    if (!options.extra.is_object()) throw argument_error("chat_render_options.extra must be a JSON object");
    auto root = std::make_shared<chat_detail::scope>();
    value list = value::make_list({});
    for (const auto& m : messages) {
      if (!chat_detail::utf8_valid(m.role) || !chat_detail::utf8_valid(m.content))
        throw argument_error("chat message is not valid UTF-8");
      value d = value::make_dict();
      d.dict->set(value::string("role"), value::string(m.role));
      d.dict->set(value::string("content"), value::string(m.content));
      list.list->push_back(std::move(d));
    }
    // The order transformers builds the context in; later keys win.
    if (!options.bos_token.empty()) root->assign("bos_token", value::string(options.bos_token));
    if (!options.eos_token.empty()) root->assign("eos_token", value::string(options.eos_token));
    root->assign("messages", std::move(list));
    root->assign("tools", value::none());
    root->assign("documents", value::none());
    root->assign("add_generation_prompt", value::boolean(options.add_generation_prompt));
    for (auto it = options.extra.begin(); it != options.extra.end(); ++it) {
      if (it.key() == "messages" || it.key() == "add_generation_prompt")
        throw argument_error(concat("chat_render_options.extra may not set '", it.key(), "'"));
      root->assign(it.key(), chat_detail::from_json(it.value()));
    }
    chat_detail::template_renderer renderer(source_);
    return renderer.render(*body_, root);
  }

  const std::string& source() const { return source_; }

 private:
  chat_template() = default;

  std::string source_;
  std::shared_ptr<const chat_detail::stmt_list> body_;
};

}  // namespace unmask
