// apps/cli_model.hpp
//
// What one run of the program decodes with: the options of generate and chat,
// a model loaded once with its tokenizer (and what tokenizer_config.json says
// of it), its chat template and stop ids; prompts from -p, -p - (stdin),
// -f FILE, --prompt-ids or a chat conversation, encoded as transformers does;
// and the decoders' settings built from the flags.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "unmask/chat/chat_template.hpp"
#include "unmask/cpu/backend.hpp"
#include "unmask/decode/block_diffusion_decoder.hpp"
#include "unmask/decode/diffusion_decoder.hpp"
#include "unmask/io/json_file.hpp"
#include "unmask/tokenizer/byte_level_bpe.hpp"
#include "unmask/tokenizer/tokenizer_config.hpp"
#include "unmask/tokenizer/tokenizer_model_check.hpp"

namespace cli {

namespace fs = std::filesystem;

// Where the embedded models live: $UNMASK_MODELS_DIR, then share/unmask/models
// beside the running program (../share from its bin/ directory: an installed
// program finds its models wherever the prefix was moved), the share
// directory of the configured install prefix, and the source tree this
// program was built from.
inline std::string embedded_model(const std::string& name) {
  std::vector<std::string> roots;
  if (const char* env = std::getenv("UNMASK_MODELS_DIR")) roots.push_back(env);
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) roots.push_back((self.parent_path().parent_path() / "share" / "unmask" / "models").string());
  roots.push_back(UNMASK_INSTALLED_MODELS_DIR);
  roots.push_back(UNMASK_SOURCE_MODELS_DIR);
  for (const auto& root : roots)
    if (fs::exists(fs::path(root) / name / "config.json")) return (fs::path(root) / name).string();
  std::string looked;
  for (const auto& root : roots) looked += (looked.empty() ? "" : ", ") + root;
  throw unmask::file_error("cannot find the embedded model '" + name + "' (looked in " + looked + "); pass --model DIR "
                           "or set UNMASK_MODELS_DIR");
}

// The program's defaults are the library's (diffusion_settings{},
// selection_rule{}, remdm_settings{}): LLaDA's generate.py, 128 tokens in
// one block of 128 steps.
inline const unmask::diffusion_settings library_defaults{};

// Largest prompt, batch or score file the program reads.
inline constexpr std::uint64_t max_input_bytes = std::uint64_t(256) << 20;

struct generate_options {
  std::string prompt, prompt_file, prompt_ids, model, ar_model, tokenizer, system, batch, trace;
  bool chat = false;  // the prompt is a user turn of the chat template
  int gen_length = library_defaults.layout.gen_length, block_length = library_defaults.layout.block_length,
      steps = library_defaults.layout.steps;
  std::string policy = "low-confidence", schedule = "llada", remasking = "none", noise = "log-linear", cache = "none";
  std::string device = "cpu";
  std::string isa, compute = "f32";  // the CPU engine: instruction-set level (default: detected), GEMM mode
  int cache_refresh = 0;
  float threshold = library_defaults.selection.tau, factor = library_defaults.selection.factor_scale,
        gamma = library_defaults.selection.gamma, temperature = library_defaults.sampling.temperature,
        top_p = library_defaults.sampling.top_p, eta = library_defaults.remasking.eta, cfg = library_defaults.cfg_scale;
  int top_k = 0;
  std::uint64_t seed = 0;
  bool visual = false, ar = false, compare = false, json = false, jsonl = false, no_eos_stop = false;
  bool progress = false, quiet = false;
  bool logits_eos_inf = false, confidence_eos_eot_inf = false;
  int eot_id = -1;  // -1: the tokenizer's <|eot_id|>
  // Block-diffusion models (Fast-dLLM v2, SDAR): 0 / empty / unset take the family's defaults.
  int sub_block_length = 0, block_steps = 0;
  std::string strategy;
  bool threshold_given = false, block_length_given = false;
};

// Prompt and output as text (a tokenizer, with what tokenizer_config.json
// says of it) or as token ids (--prompt-ids).
struct text_codec {
  std::optional<unmask::bpe_tokenizer> tokenizer;
  unmask::tokenizer_config config;

  std::string decode(const std::vector<std::int32_t>& ids) const {
    if (tokenizer) return tokenizer->decode(ids, true);
    std::string out;
    for (std::int32_t id : ids) out += (out.empty() ? "" : " ") + std::to_string(id);
    return out;
  }
};

// The ids of --prompt-ids ("5,17,42"), each checked.
inline std::vector<std::int32_t> parse_ids(const std::string& list) {
  std::vector<std::int32_t> ids;
  std::size_t at = 0;
  while (at <= list.size()) {
    const std::size_t comma = std::min(list.find(',', at), list.size());
    const std::string item = list.substr(at, comma - at);
    std::size_t used = 0;
    long long v = -1;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (item.empty() || used != item.size() || v < 0 || v > INT32_MAX)
      throw unmask::argument_error("--prompt-ids: '" + item + "' is not a token id (a list like 5,17,42)");
    ids.push_back(std::int32_t(v));
    at = comma + 1;
  }
  return ids;
}

// A model with its tokenizer (when it has one) and, for chat, its template
// and end-of-turn ids; loaded once per run of the program.
struct loaded_model {
  std::string dir;
  unmask::transformer_model model;
  text_codec tok;
  std::optional<unmask::chat_template> chat;
  std::vector<std::int32_t> end_of_turn;  // chat: stop ids beyond the model's
  std::vector<std::int32_t> stops;        // every id that ends the generated text
};

inline loaded_model load_model(const std::string& dir, const std::string& tokenizer_path, bool chat) {
  loaded_model m{dir, unmask::transformer_model::load(dir), {}, std::nullopt, {}, {}};
  if (fs::exists(tokenizer_path)) {
    m.tok.tokenizer = unmask::bpe_tokenizer::load(tokenizer_path);
    m.tok.config = unmask::tokenizer_config::load_dir(dir);
    m.tok.config.apply(*m.tok.tokenizer);
    unmask::check_tokenizer_matches_model(*m.tok.tokenizer, m.model.config(), dir + "/config.json");
  }
  const auto& c = m.model.config();
  m.stops.push_back(std::int32_t(c.eos_token_id));
  for (std::int64_t id : c.stop_token_ids) m.stops.push_back(std::int32_t(id));
  if (chat) {
    if (!m.tok.tokenizer)
      throw unmask::file_error("cannot open '" + tokenizer_path + "': chat needs the model's tokenizer");
    if (!m.tok.config.chat_template)
      throw unmask::file_error(dir + " has no chat template (tokenizer_config.json 'chat_template' or "
                                     "chat_template.jinja)");
    m.chat = unmask::chat_template::parse(*m.tok.config.chat_template, m.tok.config.source + " chat_template");
    std::vector<std::string> ends = {"<|eot_id|>", "<|im_end|>", "<|endoftext|>", "<|end_of_text|>"};
    if (m.tok.config.eos_token) ends.insert(ends.begin(), *m.tok.config.eos_token);
    for (const std::string& e : ends)
      if (const auto id = m.tok.tokenizer->find_token(e))
        if (std::find(m.end_of_turn.begin(), m.end_of_turn.end(), *id) == m.end_of_turn.end())
          m.end_of_turn.push_back(*id);
    m.stops.insert(m.stops.end(), m.end_of_turn.begin(), m.end_of_turn.end());
  }
  return m;
}

// The text the chat template makes of `messages`, ready for the assistant's turn.
inline std::string render_chat(const loaded_model& m, const std::vector<unmask::chat_message>& messages) {
  unmask::chat_render_options options;
  options.add_generation_prompt = true;
  options.bos_token = m.tok.config.bos_token.value_or("");
  options.eos_token = m.tok.config.eos_token.value_or("");
  return m.chat->render(messages, options);
}

// Whole text of a file, or of stdin for "-" (one trailing newline dropped:
// what an editor or `echo` adds is not part of the prompt).
inline std::string read_prompt_file(const std::string& path, const char* flag) {
  std::string text;
  try {
    text = unmask::read_text_stream(path, max_input_bytes);
  } catch (const unmask::file_error& e) {
    throw unmask::file_error(std::string(flag) + ": " + e.what());
  }
  if (!text.empty() && text.back() == '\n') text.pop_back();
  if (!text.empty() && text.back() == '\r') text.pop_back();
  return text;
}

// The next line of `in` (without its newline) into `line`; false at the end.
// A line longer than max_input_bytes is an error, not an unbounded buffer.
inline bool read_line(std::istream& in, std::string& line, const char* what) {
  line.clear();
  std::streambuf* buffer = in.rdbuf();
  for (int ch; (ch = buffer->sbumpc()) != std::char_traits<char>::eof();) {
    if (ch == '\n') return true;
    if (line.size() >= max_input_bytes)
      throw unmask::argument_error(std::string(what) + ": a line is longer than " + std::to_string(max_input_bytes) +
                                   " bytes");
    line.push_back(char(ch));
  }
  return !line.empty();
}

// One line of a JSON-lines input, parsed with unmask's nesting bound.
inline nlohmann::json parse_json_line(const std::string& line, const std::string& where) {
  try {
    return unmask::parse_json(line, "the line");
  } catch (const unmask::file_error& e) {
    throw unmask::argument_error(where + "not valid JSON (" + e.what() + ")");
  }
}

// A JSON value that must be an integer in [lo, hi] (a fraction or a value
// beyond int is an error, never truncated).
inline int json_int(const nlohmann::json& v, int lo, int hi, const std::string& where) {
  if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<std::uint64_t>() > std::uint64_t(hi)) ||
      v.get<std::int64_t>() < lo || v.get<std::int64_t>() > hi)
    throw unmask::argument_error(where + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return int(v.get<std::int64_t>());
}

// A JSON number that must lie in [lo, hi].
inline float json_real(const nlohmann::json& v, double lo, double hi, const std::string& where) {
  if (!v.is_number() || !(v.get<double>() >= lo && v.get<double>() <= hi))
    throw unmask::argument_error(where + " must be a number in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return float(v.get<double>());
}

// A JSON list of token ids, each in [0, 2^31).
inline std::vector<std::int32_t> json_token_ids(const nlohmann::json& v, const std::string& where) {
  if (!v.is_array()) throw unmask::argument_error(where + " must be a list of token ids");
  std::vector<std::int32_t> ids;
  ids.reserve(v.size());
  for (const nlohmann::json& e : v) ids.push_back(json_int(e, 0, INT32_MAX, where + " entry"));
  return ids;
}

// One prompt to decode: text, ids, or a chat conversation (with the user's turn last).
struct prompt_input {
  std::string text;
  std::vector<std::int32_t> ids;
  bool has_ids = false;
  bool chat = false;
  std::string system;
};

// The prompt's ids: ids as given, else a chat turn (the rendered template,
// encoded without added special tokens, as apply_chat_template does) or text
// (encoded as transformers' tokenizer(prompt) does, with the post-processor's
// special tokens).
inline std::vector<std::int32_t> encode_prompt(const prompt_input& p, const loaded_model& m) {
  const auto& c = m.model.config();
  std::vector<std::int32_t> ids;
  if (p.has_ids) {
    ids = p.ids;
  } else {
    if (!m.tok.tokenizer)
      throw unmask::file_error("cannot open the tokenizer of '" + m.dir +
                               "': the model has no tokenizer (pass --tokenizer, or the prompt as --prompt-ids)");
    if (p.chat) {
      std::vector<unmask::chat_message> messages;
      if (!p.system.empty()) messages.push_back({"system", p.system});
      messages.push_back({"user", p.text});
      ids = m.tok.tokenizer->encode(render_chat(m, messages), false);
    } else {
      ids = m.tok.tokenizer->encode(p.text);
    }
  }
  for (const std::int32_t id : ids)
    if (id < 0 || id >= c.vocab_size)
      throw unmask::argument_error("prompt token id " + std::to_string(id) + " is outside the model's vocabulary of " +
                                   std::to_string(c.vocab_size));
  return ids;
}

inline unmask::diffusion_settings diffusion_settings_from(const generate_options& o) {
  unmask::diffusion_settings s;
  s.layout = {o.gen_length, o.block_length, o.steps};
  s.sampling.temperature = o.temperature;
  s.sampling.top_k = o.top_k;
  s.sampling.top_p = o.top_p;
  s.cfg_scale = o.cfg;
  s.seed = o.seed;
  s.stop_at_eos = !o.no_eos_stop;
  s.logits_eos_inf = o.logits_eos_inf;
  s.confidence_eos_eot_inf = o.confidence_eos_eot_inf;
  s.eot_token_id = o.eot_id;
  s.schedule.kind = unmask::parse_count_schedule(o.schedule);
  if (o.schedule == "dream") s.sampling.confidence_on_sampling_distribution = true;
  const std::map<std::string, unmask::confidence_metric> metrics = {
      {"low-confidence", unmask::confidence_metric::max_prob}, {"margin", unmask::confidence_metric::margin},
      {"entropy", unmask::confidence_metric::neg_entropy}, {"random", unmask::confidence_metric::random},
      {"threshold", unmask::confidence_metric::max_prob}, {"factor", unmask::confidence_metric::max_prob},
      {"eb", unmask::confidence_metric::neg_entropy}};
  s.confidence = metrics.at(o.policy);
  if (o.policy == "threshold") s.selection = unmask::selection_rule::fast_dllm_threshold(o.threshold);
  if (o.policy == "factor") s.selection = unmask::selection_rule::fast_dllm_factor(o.factor);
  if (o.policy == "eb") s.selection = unmask::selection_rule::entropy_bounded(o.gamma);
  s.cache = {unmask::parse_cache_mode(o.cache), o.cache_refresh};
  if (o.cache == "block-causal") s.attention = unmask::attention_mask::block_causal(o.block_length);
  if (o.remasking != "none") {
    s.mode = unmask::decode_mode::ancestral;
    s.noise.kind = unmask::parse_noise_kind(o.noise == "log-linear" ? "log_linear" : o.noise);
    s.remasking.strategy = o.remasking == "mdlm" ? unmask::remask_strategy::none : unmask::parse_remask_strategy(o.remasking);
    s.remasking.eta = o.eta;
  }
  return s;
}

// Text of a canvas for display: committed tokens decoded, masks as a shaded block.
inline std::string render(const text_codec& tok, const std::vector<std::int32_t>& canvas, std::size_t begin,
                   std::int32_t mask, std::int32_t eos) {
  std::string out;
  std::vector<std::int32_t> run;
  auto flush = [&] {
    if (!run.empty()) out += tok.decode(run) + (tok.tokenizer ? "" : " ");
    run.clear();
  };
  for (std::size_t i = begin; i < canvas.size(); ++i) {
    if (canvas[i] == mask) {
      flush();
      out += "\u2591";
    } else if (canvas[i] == eos) {
      flush();
      break;
    } else {
      run.push_back(canvas[i]);
    }
  }
  flush();
  return out;
}

// The CPU backend the flags ask for (--isa caps the detected level, --compute bf16).
inline unmask::cpu_backend_options cpu_options(const std::string& isa, const std::string& compute) {
  unmask::cpu_backend_options opts;
  if (!isa.empty()) opts.isa = unmask::cpu::parse_isa_level(isa, "--isa");
  opts.compute = compute == "bf16" ? unmask::cpu::compute_mode::bf16 : unmask::cpu::compute_mode::f32;
  return opts;
}

template <class Backend>
Backend make_backend(const generate_options& o) {
  if constexpr (std::is_same_v<Backend, unmask::cpu_backend>) return unmask::cpu_backend(cpu_options(o.isa, o.compute));
  else return Backend{};
}

// The block-diffusion settings: the family's published defaults, with the flags given.
inline unmask::block_diffusion_settings block_settings_from(const generate_options& o, const unmask::transformer_config& c) {
  unmask::block_diffusion_settings s =
      c.family == "SDAR" ? unmask::block_diffusion_settings::sdar() : unmask::block_diffusion_settings::fast_dllm_v2();
  s.gen_length = o.gen_length;
  if (o.block_length_given) s.block_length = o.block_length;
  if (o.threshold_given) s.threshold = o.threshold;
  if (o.sub_block_length > 0) s.sub_block_length = o.sub_block_length;
  if (o.block_steps > 0) {
    s.rule = unmask::block_step_rule::counted;
    s.steps = o.block_steps;
  }
  if (!o.strategy.empty()) {
    s.rule = unmask::block_step_rule::counted;
    s.strategy = unmask::parse_counted_strategy(o.strategy);
  }
  s.sampling.temperature = o.temperature;
  s.sampling.top_k = o.top_k;
  s.sampling.top_p = o.top_p;
  s.seed = o.seed;
  s.stop_at_eos = !o.no_eos_stop;
  return s;
}

}  // namespace cli
