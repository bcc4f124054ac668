// apps/serve/openai_api.hpp
//
// The OpenAI-compatible surface of `unmask serve` (docs/serving.md,
// docs/openapi.json): request bodies of /v1/completions and
// /v1/chat/completions checked field by field and turned into decoding jobs,
// and the responses made of what the jobs produced: whole (text_completion,
// chat.completion) or as server-sent events (the chunk objects, then
// `data: [DONE]`). Every problem with a request is an api_error with the
// HTTP status and the OpenAI error object ({"error": {message, type, param,
// code}}) naming the field. The diffusion settings (steps, block_length,
// policy, threshold, ...) are extensions beside the standard fields; their
// defaults are the command line's.
//
// Text is what transformers' decode(skip_special_tokens=True) makes of the
// generated ids up to the first stop id, cut before the first stop string
// (OpenAI leaves the stop sequence out). A stream sends, after each step, the
// text of the generated positions committed contiguously from the start (a
// committed token is final in confidence decoding), holding back what a stop
// string could still claim and an unfinished UTF-8 character.
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <ctime>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "../cli_model.hpp"
#include "serve_engine.hpp"

namespace serve {

using json = nlohmann::json;

struct api_error : std::runtime_error {
  int status;
  std::string type, param, code;
  api_error(int status_, std::string message, std::string type_ = "invalid_request_error", std::string param_ = {},
            std::string code_ = {})
      : std::runtime_error(std::move(message)), status(status_), type(std::move(type_)), param(std::move(param_)),
        code(std::move(code_)) {}
};

// JSON text, with bytes that are not UTF-8 (a token's piece of a character,
// a body echoed in an error) replaced by U+FFFD instead of throwing.
inline std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

inline api_error invalid(const std::string& param, const std::string& message, std::string code = "invalid_value") {
  return {400, message, "invalid_request_error", param, std::move(code)};
}

inline json error_body(const api_error& e) {
  return {{"error",
           {{"message", e.what()},
            {"type", e.type},
            {"param", e.param.empty() ? json(nullptr) : json(e.param)},
            {"code", e.code.empty() ? json(nullptr) : json(e.code)}}}};
}

// What the server accepts (the command line's limits).
struct request_limits {
  std::int64_t max_prompt_tokens = 2048;
  std::int32_t max_gen_length = 1024;
  std::int32_t max_choices = 16;  // prompts x n in one request
};

// A request turned into jobs.
struct parsed_request {
  bool chat = false, stream = false, include_usage = false, canvas_events = false;
  std::vector<std::vector<std::int32_t>> prompts;  // each decoded n times
  std::int32_t n = 1;
  unmask::diffusion_settings settings;
  std::vector<std::string> stop_strings;
  std::int64_t prompt_tokens = 0;
  bool seed_given = false;  // else the server draws a seed
};

namespace detail {

inline const json* field(const json& body, const char* name) {
  const auto it = body.find(name);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

inline std::int64_t integer(const json& body, const char* name, std::int64_t lo, std::int64_t hi, std::int64_t fallback) {
  const json* v = field(body, name);
  if (!v) return fallback;
  auto out_of_range = [&] {
    return invalid(name, std::string("'") + name + "' must be between " + std::to_string(lo) + " and " +
                             std::to_string(hi) + ", got " + dump(*v));
  };
  if (v->is_number_unsigned()) {  // (nlohmann keeps non-negative literals unsigned: beyond int64 they stay so)
    const std::uint64_t u = v->get<std::uint64_t>();
    if (hi < 0 || u > std::uint64_t(hi) || (lo > 0 && u < std::uint64_t(lo))) throw out_of_range();
    return std::int64_t(u);
  }
  if (v->is_number_integer()) {
    const std::int64_t i = v->get<std::int64_t>();
    if (i < lo || i > hi) throw out_of_range();
    return i;
  }
  if (!v->is_number_float()) throw invalid(name, std::string("'") + name + "' must be an integer", "invalid_type");
  // A float with an integral value (2.0) is that integer; its range is checked
  // on the double before any cast (2^63 and beyond cannot be cast).
  const double d = v->get<double>();
  if (!(d == std::floor(d))) throw invalid(name, std::string("'") + name + "' must be an integer", "invalid_type");
  if (!(d >= double(lo) && d < 9223372036854775808.0 && d <= double(hi))) throw out_of_range();
  const std::int64_t i = std::int64_t(d);
  if (i < lo || i > hi) throw out_of_range();
  return i;
}

inline double number(const json& body, const char* name, double lo, double hi, double fallback) {
  const json* v = field(body, name);
  if (!v) return fallback;
  if (!v->is_number()) throw invalid(name, std::string("'") + name + "' must be a number", "invalid_type");
  const double d = v->get<double>();
  if (!(d >= lo && d <= hi))
    throw invalid(name, std::string("'") + name + "' must be between " + json(lo).dump() + " and " + json(hi).dump() +
                            ", got " + dump(*v));
  return d;
}

inline bool boolean(const json& body, const char* name, bool fallback) {
  const json* v = field(body, name);
  if (!v) return fallback;
  if (!v->is_boolean()) throw invalid(name, std::string("'") + name + "' must be true or false", "invalid_type");
  return v->get<bool>();
}

inline std::string text(const json& body, const char* name, const std::vector<std::string>& allowed, std::string fallback) {
  const json* v = field(body, name);
  if (!v) return fallback;
  if (!v->is_string()) throw invalid(name, std::string("'") + name + "' must be a string", "invalid_type");
  const std::string s = v->get<std::string>();
  if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), s) == allowed.end()) {
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
    throw invalid(name, std::string("'") + name + "' must be one of " + list + ", got '" + s + "'");
  }
  return s;
}

inline std::vector<std::int32_t> token_ids(const json& v, const cli::loaded_model& m, const std::string& where) {
  std::vector<std::int32_t> ids;
  for (const json& t : v) {
    if (!t.is_number_integer()) throw invalid(where, "'" + where + "' token ids must be integers", "invalid_type");
    const std::int64_t id = t.get<std::int64_t>();
    if (id < 0 || id >= m.model.config().vocab_size)
      throw invalid(where, "token id " + std::to_string(id) + " in '" + where +
                               "' is outside the model's vocabulary of " + std::to_string(m.model.config().vocab_size));
    ids.push_back(std::int32_t(id));
  }
  return ids;
}

inline std::vector<std::int32_t> encode_text(const std::string& s, const cli::loaded_model& m, const std::string& where) {
  if (!m.tok.tokenizer) throw invalid(where, "this model has no tokenizer: send the prompt as token ids");
  return m.tok.tokenizer->encode(s);
}

// A message's content: a string, or an array of {"type": "text", "text": ...} parts.
inline std::string content_text(const json& content, const std::string& where) {
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) throw invalid(where, "'" + where + "' must be a string or an array of text parts", "invalid_type");
  std::string out;
  for (const json& part : content) {
    if (!part.is_object() || !part.contains("type") || part["type"] != "text" || !part.contains("text") ||
        !part["text"].is_string())
      throw invalid(where, "'" + where + "' parts must be {\"type\": \"text\", \"text\": ...}");
    out += part["text"].get<std::string>();
  }
  return out;
}

}  // namespace detail

// Text of ids as transformers' decode(skip_special_tokens=True) makes it;
// ids the tokenizer does not have (a vocabulary padded beyond it) are
// skipped, as transformers skips them, instead of failing the request.
inline std::string decode_text(const cli::loaded_model& m, const std::vector<std::int32_t>& ids) {
  if (!m.tok.tokenizer) return m.tok.decode(ids);
  std::vector<std::int32_t> known;
  known.reserve(ids.size());
  for (const std::int32_t id : ids)
    if (m.tok.tokenizer->has_id(id)) known.push_back(id);
  return m.tok.tokenizer->decode(known, true);
}

// Fields OpenAI defines that this server does not implement: a request that
// sets one to anything but its neutral value is refused (400), not silently
// served differently.
inline void refuse_unsupported(const json& body, bool chat) {
  auto neutral_number = [&](const char* name) {
    if (const json* v = detail::field(body, name); v && !(v->is_number() && v->get<double>() == 0.0))
      throw invalid(name, std::string("'") + name + "' is not supported by this server (only 0)", "unsupported");
  };
  neutral_number("presence_penalty");
  neutral_number("frequency_penalty");
  for (const char* name : {"logit_bias", "tools", "functions", "tool_choice", "function_call", "suffix"})
    if (const json* v = detail::field(body, name); v && !(v->is_object() && v->empty()) && !(v->is_array() && v->empty()))
      throw invalid(name, std::string("'") + name + "' is not supported by this server", "unsupported");
  if (const json* v = detail::field(body, "logprobs");
      v && !(v->is_boolean() && !v->get<bool>()) && !(v->is_number_integer() && v->get<std::int64_t>() == 0))
    throw invalid("logprobs", "'logprobs' is not supported by this server", "unsupported");
  if (!chat && detail::boolean(body, "echo", false))
    throw invalid("echo", "'echo' is not supported by this server", "unsupported");
  if (!chat && detail::integer(body, "best_of", 1, 1, 1) != 1)
    throw invalid("best_of", "'best_of' is not supported by this server (only 1)", "unsupported");
  if (const json* v = detail::field(body, "response_format");
      v && !(v->is_object() && (!v->contains("type") || (*v)["type"] == "text")))
    throw invalid("response_format", "only {\"type\": \"text\"} is supported as 'response_format'", "unsupported");
}

// The body of a completion or chat completion request, checked and turned
// into prompts and settings. `defaults` are the command line's.
inline parsed_request parse_request(const json& body, bool chat, const cli::loaded_model& m,
                                    const cli::generate_options& defaults, const std::string& model_id,
                                    const request_limits& limits) {
  if (!body.is_object()) throw invalid("", "the request body must be a JSON object", "invalid_type");
  parsed_request r;
  r.chat = chat;
  const std::string model = detail::text(body, "model", {}, model_id);
  if (model != model_id)
    throw api_error(404, "the model '" + model + "' does not exist (this server serves '" + model_id + "')",
                    "invalid_request_error", "model", "model_not_found");
  refuse_unsupported(body, chat);

  // Prompts.
  if (chat) {
    if (!m.chat) throw invalid("messages", "this model has no chat template: use /v1/completions", "unsupported");
    const json* messages = detail::field(body, "messages");
    if (!messages) throw invalid("messages", "'messages' is required", "missing_required_parameter");
    if (!messages->is_array() || messages->empty())
      throw invalid("messages", "'messages' must be a non-empty array", "invalid_type");
    std::vector<unmask::chat_message> turns;
    for (std::size_t i = 0; i < messages->size(); ++i) {
      const json& msg = (*messages)[i];
      const std::string where = "messages[" + std::to_string(i) + "]";
      if (!msg.is_object() || !msg.contains("role") || !msg["role"].is_string() || !msg.contains("content"))
        throw invalid(where, "'" + where + "' must be an object with 'role' and 'content'");
      const std::string role = msg["role"].get<std::string>();
      if (role != "system" && role != "user" && role != "assistant" && role != "developer")
        throw invalid(where + ".role", "'" + where + ".role' must be system, developer, user or assistant, got '" + role + "'");
      turns.push_back({role == "developer" ? "system" : role, detail::content_text(msg["content"], where + ".content")});
    }
    std::string rendered;
    try {
      rendered = cli::render_chat(m, turns);
    } catch (const unmask::error& e) {
      throw invalid("messages", std::string("the chat template cannot render these messages: ") + e.what());
    }
    r.prompts.push_back(m.tok.tokenizer->encode(rendered, false));
  } else {
    const json* prompt = detail::field(body, "prompt");
    if (!prompt) throw invalid("prompt", "'prompt' is required", "missing_required_parameter");
    if (prompt->is_string()) {
      r.prompts.push_back(detail::encode_text(prompt->get<std::string>(), m, "prompt"));
    } else if (prompt->is_array() && !prompt->empty() && (*prompt)[0].is_number()) {
      r.prompts.push_back(detail::token_ids(*prompt, m, "prompt"));
    } else if (prompt->is_array() && !prompt->empty()) {
      for (std::size_t i = 0; i < prompt->size(); ++i) {
        const json& p = (*prompt)[i];
        const std::string where = "prompt[" + std::to_string(i) + "]";
        if (p.is_string()) r.prompts.push_back(detail::encode_text(p.get<std::string>(), m, where));
        else if (p.is_array()) r.prompts.push_back(detail::token_ids(p, m, where));
        else throw invalid(where, "'" + where + "' must be a string or an array of token ids", "invalid_type");
      }
    } else {
      throw invalid("prompt", "'prompt' must be a string, an array of strings, token ids, or arrays of token ids",
                    "invalid_type");
    }
  }
  for (std::size_t i = 0; i < r.prompts.size(); ++i) {
    const std::int64_t length = std::int64_t(r.prompts[i].size());
    if (length > limits.max_prompt_tokens)
      throw invalid(chat ? "messages" : "prompt", "the prompt has " + std::to_string(length) +
                                                      " tokens, more than this server's limit of " +
                                                      std::to_string(limits.max_prompt_tokens), "context_length_exceeded");
    r.prompt_tokens += length;
  }
  r.n = std::int32_t(detail::integer(body, "n", 1, limits.max_choices, 1));
  if (std::int64_t(r.prompts.size()) * r.n > limits.max_choices)
    throw invalid("n", std::to_string(r.prompts.size()) + " prompts x n " + std::to_string(r.n) +
                           " choices exceed this server's limit of " + std::to_string(limits.max_choices));

  // Streaming.
  r.stream = detail::boolean(body, "stream", false);
  if (const json* so = detail::field(body, "stream_options")) {
    if (!so->is_object()) throw invalid("stream_options", "'stream_options' must be an object", "invalid_type");
    if (!r.stream) throw invalid("stream_options", "'stream_options' needs 'stream': true");
    r.include_usage = detail::boolean(*so, "include_usage", false);
  }
  r.canvas_events = detail::boolean(body, "canvas_events", false);
  if (r.canvas_events && !r.stream) throw invalid("canvas_events", "'canvas_events' needs 'stream': true");

  // Decoding: the standard fields, then the diffusion extensions.
  cli::generate_options o = defaults;
  const char* length_field = chat && detail::field(body, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  o.gen_length = int(detail::integer(body, length_field, 1, limits.max_gen_length, std::min(defaults.gen_length, limits.max_gen_length)));
  const bool block_given = detail::field(body, "block_length") != nullptr;
  o.block_length = int(detail::integer(body, "block_length", 1, limits.max_gen_length,
                                       o.gen_length % defaults.block_length == 0 ? defaults.block_length : o.gen_length));
  if (o.gen_length % o.block_length != 0)
    throw invalid(block_given ? "block_length" : length_field,
                  "the generation length " + std::to_string(o.gen_length) + " must be a multiple of block_length " +
                      std::to_string(o.block_length));
  for (const auto& prompt : r.prompts)
    if (std::int64_t(prompt.size()) + o.gen_length > std::int64_t(m.model.config().max_sequence_length))
      throw invalid(length_field, "the prompt's " + std::to_string(prompt.size()) + " tokens + " + length_field + " " +
                                      std::to_string(o.gen_length) + " exceed the model's context of " +
                                      std::to_string(m.model.config().max_sequence_length) + " positions",
                    "context_length_exceeded");
  const int blocks = o.gen_length / o.block_length;
  o.steps = int(detail::integer(body, "steps", 1, limits.max_gen_length, o.gen_length));
  if (o.steps % blocks != 0)
    throw invalid("steps", "'steps' " + std::to_string(o.steps) + " must be a multiple of the number of blocks " +
                               std::to_string(blocks) + " (the generation length over block_length)");
  o.temperature = float(detail::number(body, "temperature", 0.0, 2.0, defaults.temperature));
  o.top_p = float(detail::number(body, "top_p", 0.0, 1.0, defaults.top_p));
  if (o.top_p == 0.0f) {  // OpenAI allows 0: only the most likely token, which is temperature 0
    o.top_p = 1.0f;
    o.temperature = 0.0f;
  }
  o.top_k = int(detail::integer(body, "top_k", 0, m.model.config().vocab_size, defaults.top_k));
  o.policy = detail::text(body, "policy", {"low-confidence", "margin", "entropy", "random", "threshold", "factor", "eb"},
                          defaults.policy);
  o.threshold = float(detail::number(body, "threshold", 0.0, 1.0, defaults.threshold));
  o.factor = float(detail::number(body, "factor", 1e-6, 100.0, defaults.factor));
  o.gamma = float(detail::number(body, "gamma", 1e-6, 100.0, defaults.gamma));
  o.schedule = detail::text(body, "schedule", {"llada", "dream", "llama_cpp"}, defaults.schedule);
  o.cache = detail::text(body, "cache", {"none"}, "none");
  o.cfg = float(detail::number(body, "cfg", 0.0, 100.0, 0.0));  // classifier-free guidance scale (0: none)
  o.remasking = "none";
  r.settings = cli::diffusion_settings_from(o);
  r.settings.seed = std::uint64_t(detail::integer(body, "seed", 0, INT64_MAX, 0));
  r.seed_given = detail::field(body, "seed") != nullptr;
  r.settings.stop_at_eos = !detail::boolean(body, "ignore_eos", defaults.no_eos_stop);

  // Stops: the model's stop ids, the chat template's end of turn, and stop strings.
  if (chat) r.settings.stop.add_token_ids({m.end_of_turn.begin(), m.end_of_turn.end()});
  if (const json* stop = detail::field(body, "stop")) {
    if (stop->is_string()) r.stop_strings.push_back(stop->get<std::string>());
    else if (stop->is_array() && stop->size() <= 4)
      for (const json& s : *stop) {
        if (!s.is_string()) throw invalid("stop", "'stop' must be a string or an array of up to 4 strings", "invalid_type");
        r.stop_strings.push_back(s.get<std::string>());
      }
    else throw invalid("stop", "'stop' must be a string or an array of up to 4 strings", "invalid_type");
    for (const std::string& s : r.stop_strings)
      if (s.empty()) throw invalid("stop", "a stop string is empty");
    if (!r.stop_strings.empty() && !m.tok.tokenizer) throw invalid("stop", "stop strings need the model's tokenizer");
  }
  if (!r.stop_strings.empty()) {
    r.settings.stop.strings = r.stop_strings;
    const cli::loaded_model* served = &m;
    r.settings.stop.text = [served](const std::vector<std::int32_t>& ids) { return decode_text(*served, ids); };
  }
  return r;
}

// The ids of the generated positions that count: up to the first one not yet
// committed (-1 or the mask) and before the first stop id; `stopped` says
// whether a stop id ended them.
inline std::vector<std::int32_t> visible_ids(const std::vector<std::int32_t>& generated, const cli::loaded_model& m,
                                             const unmask::diffusion_settings& s, bool* stopped = nullptr) {
  const auto& c = m.model.config();
  std::vector<std::int32_t> ids;
  if (stopped) *stopped = false;
  for (const std::int32_t t : generated) {
    if (t < 0 || t == std::int32_t(c.mask_token_id)) break;
    const bool model_stop = t == std::int32_t(c.eos_token_id) ||
                            std::find(c.stop_token_ids.begin(), c.stop_token_ids.end(), t) != c.stop_token_ids.end();
    const bool stop_id = (s.stop_at_eos && model_stop) ||
                         std::find(s.stop.token_ids.begin(), s.stop.token_ids.end(), t) != s.stop.token_ids.end();
    if (stop_id) {
      if (stopped) *stopped = true;
      break;
    }
    ids.push_back(t);
  }
  return ids;
}

// One choice's text as it grows, for streaming: delta() returns what can be
// sent now, finish() the rest.
class text_stream {
 public:
  text_stream(const cli::loaded_model& m, const parsed_request& r) : m_(m), r_(r) {
    for (const std::string& s : r.stop_strings) hold_ = std::max(hold_, s.size() - 1);
  }

  // The text of the generated positions so far; `final` once the job is done.
  std::string delta(const std::vector<std::int32_t>& generated, bool final) {
    bool stopped = false;
    const std::vector<std::int32_t> ids = visible_ids(generated, m_, r_.settings, &stopped);
    tokens_ = std::int64_t(ids.size());
    std::string text = decode_text(m_, ids);
    std::size_t cut = std::string::npos;
    for (const std::string& s : r_.stop_strings) cut = std::min(cut, text.find(s));
    if (cut != std::string::npos) {
      text.resize(cut);
      stopped_by_string_ = true;
      final = true;
      // The completion's tokens: those whose text begins before the cut.
      std::int64_t k = 0;
      while (k < tokens_ && decode_text(m_, {ids.begin(), ids.begin() + k}).size() < cut) ++k;
      tokens_ = k;
    }
    std::size_t ready = text.size();
    if (!final && !stopped) {
      ready = ready > hold_ ? ready - hold_ : 0;
      ready = complete_utf8(text, ready);
    }
    if (ready <= sent_) return {};
    std::string out = text.substr(sent_, ready - sent_);
    sent_ = ready;
    return out;
  }

  std::int64_t tokens() const { return tokens_; }
  bool stopped_by_string() const { return stopped_by_string_; }

  // Where a prefix of `text` ends without cutting a UTF-8 character (or a
  // replacement character the decoder made of an unfinished one).
  static std::size_t complete_utf8(const std::string& text, std::size_t end) {
    std::size_t begin = end;
    int back = 0;
    while (begin > 0 && back < 4 && (static_cast<unsigned char>(text[begin - 1]) & 0xC0) == 0x80) --begin, ++back;
    if (begin > 0) {
      const unsigned char lead = static_cast<unsigned char>(text[begin - 1]);
      const std::size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
      if (need > 1 && std::size_t(back) + 1 < need) end = begin - 1;
    }
    if (end >= 3 && text.compare(end - 3, 3, "\xEF\xBF\xBD") == 0) end -= 3;  // U+FFFD at the end: wait
    return end;
  }

 private:
  const cli::loaded_model& m_;
  const parsed_request& r_;
  std::size_t hold_ = 0, sent_ = 0;
  std::int64_t tokens_ = 0;
  bool stopped_by_string_ = false;
};

inline const char* finish_reason(const unmask::sequence_output& out, bool stopped_by_string) {
  if (stopped_by_string || out.stop == unmask::stop_reason::stop_token || out.stop == unmask::stop_reason::stop_string)
    return "stop";
  return "length";
}

inline std::string sse(const json& data) { return "data: " + dump(data) + "\n\n"; }
inline std::string sse(const char* event, const json& data) {
  return std::string("event: ") + event + "\ndata: " + dump(data) + "\n\n";
}

}  // namespace serve
