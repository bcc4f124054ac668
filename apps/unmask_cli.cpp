// unmask: the command-line program.
//
//   unmask generate -p "In the beginning" [--model DIR] [--gen-length 64] [--policy threshold] ...
//   unmask generate -p "..." --compare [--json]     diffusion and its autoregressive twin side by side
//   unmask info [--model DIR]                        the model's configuration, the CPU engine's
//                                                    level and threads, its resident weights and peak RSS
//   unmask generate --prompt-ids 5,17,42 --model DIR prompt as token ids, for a checkpoint without a
//                                                    tokenizer (the output is ids too)
//   unmask generate -p "..." --chat [--system TEXT]  the prompt as one user turn of the model's chat
//                                                    template (tokenizer_config.json / chat_template.jinja)
//   unmask chat [--model DIR] [generate's flags]     multi-turn: turns typed on a terminal ("> "),
//                                                    otherwise one turn per line of stdin
//
// A chat reply ends at any of the model's stop ids (config.json and
// generation_config.json eos_token_id), the tokenizer_config.json eos_token and
// the end-of-turn tokens the tokenizer has (<|eot_id|>, <|im_end|>,
// <|endoftext|>, <|end_of_text|>). Each turn re-renders the whole conversation
// and decodes it afresh (no K/V cache is kept between turns).
//
// The model's family picks the decoder: block-causal checkpoints (Fast-dLLM v2,
// SDAR) decode block by block (unmask::block_diffusion_decoder, with the
// family's published defaults), the others with unmask::diffusion_decoder.
//
// Without --model it runs the embedded tiny diffusion model (models/tiny-llada)
// and, for --ar and --compare, its autoregressive twin (models/tiny-ar). Bad
// flags or values print one line and exit with status 2; a model or file that
// cannot be loaded exits with status 1. Built with nvcc (target unmask-cuda,
// executable `unmask-cuda`) the same program takes --device cuda, which runs
// the model and the decode loops on the GPU (unmask::cuda_backend; without
// --visual, uncached unguided confidence decoding uses the device-resident
// loop, unmask::resident_decoder).
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "unmask/cpu/backend.hpp"
#if defined(UNMASK_CLI_CUDA)
#include "unmask/cuda/backend.hpp"
#include "unmask/decode/resident_decoder.hpp"
#endif
#include "unmask/decode/ar_decoder.hpp"
#include "unmask/decode/block_diffusion_decoder.hpp"
#include "unmask/chat/chat_template.hpp"
#include "unmask/decode/diffusion_decoder.hpp"
#include "unmask/tokenizer/byte_level_bpe.hpp"
#include "unmask/tokenizer/tokenizer_config.hpp"

namespace {

namespace fs = std::filesystem;

// Where the embedded models live: $UNMASK_MODELS_DIR, the installed share
// directory, or the source tree this program was built from.
std::string embedded_model(const std::string& name) {
  std::vector<std::string> roots;
  if (const char* env = std::getenv("UNMASK_MODELS_DIR")) roots.push_back(env);
  roots.push_back(UNMASK_INSTALLED_MODELS_DIR);
  roots.push_back(UNMASK_SOURCE_MODELS_DIR);
  for (const auto& root : roots)
    if (fs::exists(fs::path(root) / name / "config.json")) return (fs::path(root) / name).string();
  throw unmask::file_error("cannot find the embedded model '" + name + "' (looked in $UNMASK_MODELS_DIR, " +
                           UNMASK_INSTALLED_MODELS_DIR + " and " + UNMASK_SOURCE_MODELS_DIR + "); pass --model DIR");
}

// The program's defaults are the library's (diffusion_settings{},
// selection_rule{}, remdm_settings{}): LLaDA's generate.py, 128 tokens in
// one block of 128 steps.
const unmask::diffusion_settings library_defaults{};

struct generate_options {
  std::string prompt, prompt_ids, model, ar_model, tokenizer, system;
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
  bool visual = false, ar = false, compare = false, json = false, no_eos_stop = false;
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
std::vector<std::int32_t> parse_ids(const std::string& list) {
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

loaded_model load_model(const std::string& dir, const std::string& tokenizer_path, bool chat) {
  loaded_model m{dir, unmask::transformer_model::load(dir), {}, std::nullopt, {}, {}};
  if (fs::exists(tokenizer_path)) {
    m.tok.tokenizer = unmask::bpe_tokenizer::load(tokenizer_path);
    m.tok.config = unmask::tokenizer_config::load_dir(dir);
    m.tok.config.apply(*m.tok.tokenizer);
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
std::string render_chat(const loaded_model& m, const std::vector<unmask::chat_message>& messages) {
  unmask::chat_render_options options;
  options.add_generation_prompt = true;
  options.bos_token = m.tok.config.bos_token.value_or("");
  options.eos_token = m.tok.config.eos_token.value_or("");
  return m.chat->render(messages, options);
}

// The prompt's ids: --prompt-ids as given, else -p as a chat turn (the
// rendered template, encoded without added special tokens, as
// apply_chat_template does) or as text (encoded as transformers'
// tokenizer(prompt) does, with the post-processor's special tokens).
std::vector<std::int32_t> prompt_for(const generate_options& o, const loaded_model& m) {
  if (!o.prompt_ids.empty()) return parse_ids(o.prompt_ids);
  if (!m.tok.tokenizer)
    throw unmask::file_error("cannot open the tokenizer of '" + m.dir + "': the model has no tokenizer (pass --tokenizer, or "
                             "the prompt as --prompt-ids)");
  if (o.chat) {
    std::vector<unmask::chat_message> messages;
    if (!o.system.empty()) messages.push_back({"system", o.system});
    messages.push_back({"user", o.prompt});
    return m.tok.tokenizer->encode(render_chat(m, messages), false);
  }
  return m.tok.tokenizer->encode(o.prompt);
}

unmask::diffusion_settings diffusion_settings_from(const generate_options& o) {
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
std::string render(const text_codec& tok, const std::vector<std::int32_t>& canvas, std::size_t begin,
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

// The generated text: decoded up to the first stop id.
std::string generated_text(const text_codec& tok, const unmask::sequence_output& s, const std::vector<std::int32_t>& stops) {
  std::vector<std::int32_t> ids;
  for (std::size_t i = std::size_t(s.prompt_length);
       i < s.canvas.size() && std::find(stops.begin(), stops.end(), s.canvas[i]) == stops.end(); ++i)
    ids.push_back(s.canvas[i]);
  return tok.decode(ids);
}

// The CPU backend the flags ask for (--isa caps the detected level, --compute bf16).
unmask::cpu_backend_options cpu_options(const std::string& isa, const std::string& compute) {
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

struct run_figures {
  std::string mode, text;
  std::int64_t tokens = 0, forwards = 0;
  double seconds = 0, cpu_seconds = 0;
  double tokens_per_second() const { return seconds > 0 ? double(tokens) / seconds : 0.0; }
  double tokens_per_forward() const { return forwards ? double(tokens) / double(forwards) : 0.0; }
};

// The block-diffusion settings: the family's published defaults, with the flags given.
unmask::block_diffusion_settings block_settings_from(const generate_options& o, const unmask::transformer_config& c) {
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

template <class Backend>
run_figures run_block_diffusion(const generate_options& o, const loaded_model& m, const std::vector<std::int32_t>& prompt) {
  const unmask::transformer_model& model = m.model;
  const text_codec& tok = m.tok;
  const auto& c = model.config();
  if (o.policy != "low-confidence" || o.cache != "none" || o.remasking != "none" || o.cfg > 0.0f)
    throw unmask::argument_error(c.family + " decodes block by block (block-causal attention): --policy, --cache, "
                                 "--remasking and --cfg do not apply; --threshold, --sub-block-length, --strategy "
                                 "and --block-steps do");
  unmask::block_diffusion_settings settings = block_settings_from(o, c);
  if (settings.stop_at_eos) settings.stop.add_token_ids(std::vector<std::int64_t>(m.end_of_turn.begin(), m.end_of_turn.end()));
  unmask::block_diffusion_decoder<Backend> decoder(model, settings, make_backend<Backend>(o));
  const auto out = decoder.generate({{prompt, 0}}, [&](const unmask::decode_event& e) {
    if (o.visual) {
      std::printf("[block %d, step %d] %s\n", e.block, e.step,
                  render(tok, *e.canvas, prompt.size(), std::int32_t(c.mask_token_id), std::int32_t(c.eos_token_id)).c_str());
      std::fflush(stdout);
    }
  });
  run_figures f;
  f.mode = "block diffusion";
  f.text = generated_text(tok, out.sequences[0], m.stops);
  f.tokens = out.committed, f.forwards = out.forwards, f.seconds = out.seconds, f.cpu_seconds = out.cpu_seconds;
  return f;
}

template <class Backend>
run_figures run_diffusion(const generate_options& o, const loaded_model& m, const std::vector<std::int32_t>& prompt) {
  const unmask::transformer_model& model = m.model;
  const text_codec& tok = m.tok;
  const auto& c = model.config();
  if (c.objective != unmask::training_objective::masked_diffusion)
    throw unmask::argument_error(m.dir + " holds an autoregressive " + c.family + " model: decode it with --ar");
  if (c.attention == unmask::trained_attention::block_causal) return run_block_diffusion<Backend>(o, m, prompt);
  unmask::diffusion_settings settings = diffusion_settings_from(o);
  if (settings.stop_at_eos) settings.stop.add_token_ids(std::vector<std::int64_t>(m.end_of_turn.begin(), m.end_of_turn.end()));
  if (settings.confidence_eos_eot_inf && settings.eot_token_id < 0) {
    const std::optional<std::int32_t> eot = tok.tokenizer ? tok.tokenizer->find_token("<|eot_id|>") : std::nullopt;
    if (!eot) throw unmask::argument_error("--confidence-eos-eot-inf: the tokenizer has no <|eot_id|> token; pass --eot-id");
    settings.eot_token_id = *eot;
  }
  run_figures f;
  f.mode = "diffusion";
#if defined(UNMASK_CLI_CUDA)
  if (std::is_same_v<Backend, unmask::cuda_backend> && !o.visual && settings.mode == unmask::decode_mode::confidence &&
      settings.cache.mode == unmask::cache_mode::none && settings.cfg_scale == 0.0f) {
    unmask::resident_decoder<Backend> decoder(model, settings);
    const auto out = decoder.generate({{prompt, 0}});
    f.text = generated_text(tok, out.sequences[0], m.stops);
    f.tokens = out.committed, f.forwards = out.forwards, f.seconds = out.seconds;
    return f;
  }
#endif
  unmask::diffusion_decoder<Backend> decoder(model, settings, make_backend<Backend>(o));
  const bool tty = isatty(STDOUT_FILENO), progress = isatty(STDERR_FILENO) && !o.json && !o.visual;
  std::int64_t steps = 0;
  const auto out = decoder.generate({{prompt, 0}}, [&](const unmask::decode_event& e) {
    ++steps;
    if (o.visual) {
      const std::string text = render(tok, *e.canvas, prompt.size(), std::int32_t(c.mask_token_id), std::int32_t(c.eos_token_id));
      if (tty) std::printf("\x1b[2J\x1b[H%s\x1b[1m%s\x1b[0m\n\n[block %d, step %d]\n", o.prompt.c_str(), text.c_str(), e.block, e.step);
      else std::printf("[block %d, step %d] %s%s\n", e.block, e.step, o.prompt.c_str(), text.c_str());
      std::fflush(stdout);
    } else if (progress && steps % 16 == 0) {
      std::fprintf(stderr, "\rdiffusion: %lld steps", (long long)steps);
    }
  });
  if (progress && steps >= 16) std::fprintf(stderr, "\r\x1b[K");
  f.text = generated_text(tok, out.sequences[0], m.stops);
  f.tokens = out.committed;
  f.forwards = out.forwards;
  f.seconds = out.seconds;
  f.cpu_seconds = out.cpu_seconds;
  return f;
}

template <class Backend>
run_figures run_ar(const generate_options& o, const loaded_model& m, std::vector<std::int32_t> prompt) {
  const unmask::transformer_model& model = m.model;
  const text_codec& tok = m.tok;
  unmask::ar_settings s;
  s.max_new_tokens = o.gen_length;
  s.sampling.temperature = o.temperature;
  s.sampling.top_k = o.top_k;
  s.sampling.top_p = o.top_p;
  s.seed = o.seed;
  s.stop_at_eos = !o.no_eos_stop;
  if (s.stop_at_eos) s.stop.add_token_ids(std::vector<std::int64_t>(m.end_of_turn.begin(), m.end_of_turn.end()));
  if (prompt.empty()) prompt.push_back(std::int32_t(model.config().eos_token_id));  // start of a new verse
  unmask::ar_decoder<Backend> decoder(model, s, make_backend<Backend>(o));
  const auto out = decoder.generate({{prompt, 0}}, [&](const unmask::decode_event& e) {
    if (o.visual) {
      std::printf("%s\n", render(tok, *e.canvas, prompt.size(), -1, std::int32_t(model.config().eos_token_id)).c_str());
      std::fflush(stdout);
    }
  });
  run_figures f;
  f.mode = "autoregressive";
  f.text = generated_text(tok, out.sequences[0], m.stops);
  f.tokens = out.committed;
  f.forwards = out.forwards;
  f.seconds = out.seconds;
  f.cpu_seconds = out.cpu_seconds;
  return f;
}

nlohmann::json to_json(const run_figures& f) {
  return {{"mode", f.mode},       {"text", f.text},         {"tokens", f.tokens},
          {"forwards", f.forwards}, {"tokens_per_forward", f.tokens_per_forward()},
          {"wall_ms", f.seconds * 1e3}, {"cpu_ms", f.cpu_seconds * 1e3}, {"tokens_per_second", f.tokens_per_second()}};
}

void print_table(const std::vector<run_figures>& runs) {
  std::printf("%-15s %8s %9s %11s %10s %12s\n", "mode", "tokens", "forwards", "tokens/fwd", "wall ms", "tokens/s");
  for (const auto& f : runs)
    std::printf("%-15s %8lld %9lld %11.2f %10.1f %12.1f\n", f.mode.c_str(), (long long)f.tokens, (long long)f.forwards,
                f.tokens_per_forward(), f.seconds * 1e3, f.tokens_per_second());
}

// --tokenizer, else the model directory's tokenizer.json.
std::string tokenizer_for(const generate_options& o, const std::string& model) {
  return o.tokenizer.empty() ? (fs::path(model) / "tokenizer.json").string() : o.tokenizer;
}

// The diffusion model of the flags (or, with --ar, the autoregressive one).
std::string model_dir(const generate_options& o) {
  if (!o.model.empty()) return o.model;
  return embedded_model(o.ar && !o.compare ? "tiny-ar" : "tiny-llada");
}

template <class Backend>
run_figures run_model(const generate_options& o, const loaded_model& m, const std::vector<std::int32_t>& prompt) {
  return o.ar && !o.compare ? run_ar<Backend>(o, m, prompt) : run_diffusion<Backend>(o, m, prompt);
}

template <class Backend>
std::vector<run_figures> generate_on(const generate_options& o) {
  const std::string dir = model_dir(o);
  std::vector<run_figures> runs;
  {
    const loaded_model m = load_model(dir, tokenizer_for(o, dir), o.chat);
    runs.push_back(run_model<Backend>(o, m, prompt_for(o, m)));
  }
  if (o.compare) {
    const std::string ar_dir = o.ar_model.empty() ? embedded_model("tiny-ar") : o.ar_model;
    const loaded_model m = load_model(ar_dir, tokenizer_for(o, ar_dir), o.chat);
    runs.push_back(run_ar<Backend>(o, m, prompt_for(o, m)));
  }
  return runs;
}

// unmask chat: one user turn per line (typed after "> " on a terminal), each
// answered with the whole conversation rendered by the model's template.
template <class Backend>
int chat_on(const generate_options& o) {
  const std::string dir = model_dir(o);
  const loaded_model m = load_model(dir, tokenizer_for(o, dir), true);
  std::vector<unmask::chat_message> messages;
  if (!o.system.empty()) messages.push_back({"system", o.system});
  const bool tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
  std::string line;
  for (int turn = 1;; ++turn) {
    if (tty) {
      std::fputs("> ", stdout);
      std::fflush(stdout);
    }
    if (!std::getline(std::cin, line)) break;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (tty && (line == "/quit" || line == "/exit")) break;
    messages.push_back({"user", line});
    const std::string rendered = render_chat(m, messages);
    const std::vector<std::int32_t> prompt = m.tok.tokenizer->encode(rendered, false);
    const run_figures f = run_model<Backend>(o, m, prompt);
    if (o.json) {
      std::cout << nlohmann::json{{"turn", turn}, {"user", line}, {"assistant", f.text}, {"prompt_tokens", prompt.size()},
                                  {"run", to_json(f)}}.dump()
                << "\n";
    } else {
      std::printf("%s\n", f.text.c_str());
      if (tty) std::printf("\n");
    }
    std::fflush(stdout);
    messages.push_back({"assistant", f.text});
  }
  return 0;
}

int chat(const generate_options& o) {
#if defined(UNMASK_CLI_CUDA)
  return o.device == "cuda" ? chat_on<unmask::cuda_backend>(o) : chat_on<unmask::cpu_backend>(o);
#else
  return chat_on<unmask::cpu_backend>(o);
#endif
}

int generate(const generate_options& o) {
#if defined(UNMASK_CLI_CUDA)
  const std::vector<run_figures> runs =
      o.device == "cuda" ? generate_on<unmask::cuda_backend>(o) : generate_on<unmask::cpu_backend>(o);
#else
  const std::vector<run_figures> runs = generate_on<unmask::cpu_backend>(o);
#endif
  if (o.json) {
    nlohmann::json j = {{"prompt", o.prompt}, {"runs", nlohmann::json::array()}};
    if (!o.prompt_ids.empty()) j["prompt_ids"] = parse_ids(o.prompt_ids);
    for (const auto& f : runs) j["runs"].push_back(to_json(f));
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  // With --chat the prompt went into the template: the reply alone.
  for (const auto& f : runs)
    std::printf("%s%s%s\n\n", runs.size() > 1 ? ("[" + f.mode + "] ").c_str() : "", o.chat ? "" : o.prompt.c_str(),
                f.text.c_str());
  print_table(runs);
  return 0;
}

double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / 1024.0;
}

// What generate runs for a model's family, with the defaults that apply.
std::string decoding_defaults(const unmask::transformer_config& c) {
  if (c.objective == unmask::training_objective::autoregressive) return "autoregressive (generate --ar)";
  if (c.attention == unmask::trained_attention::block_causal) {
    const unmask::block_diffusion_settings s =
        c.family == "SDAR" ? unmask::block_diffusion_settings::sdar() : unmask::block_diffusion_settings::fast_dllm_v2();
    if (s.rule == unmask::block_step_rule::counted)
      return "block diffusion, SDAR's low_confidence_dynamic: threshold " + std::to_string(s.threshold).substr(0, 4) +
             ", steps per block = the block length";
    return "block diffusion, Fast-dLLM v2's sub-block threshold: threshold " + std::to_string(s.threshold).substr(0, 3) +
           ", sub-blocks of 8 (or the block)";
  }
  if (c.family == "Dream")
    return "diffusion; Dream's samplers: --schedule dream --policy entropy|margin|low-confidence (its demos: "
           "entropy, temperature 0.2, top-p 0.95)";
  return "diffusion; LLaDA's generate.py: --policy low-confidence, 128 tokens, block 128, 128 steps";
}

int info(const std::string& dir_flag, const std::string& isa, const std::string& compute) {
  const std::string dir = dir_flag.empty() ? embedded_model("tiny-llada") : dir_flag;
  const unmask::transformer_model model = unmask::transformer_model::load(dir);
  const auto& c = model.config();
  std::printf("model                %s\n", dir.c_str());
  std::printf("family               %s (%s tensor layout)\n", c.family.c_str(),
              c.layout == unmask::tensor_layout::llada ? "LLaDA" : "Qwen");
  std::printf("objective            %s\n", unmask::to_string(c.objective));
  if (c.attention == unmask::trained_attention::block_causal)
    std::printf("attention            block-causal, blocks of %lld\n", (long long)c.attention_block);
  else
    std::printf("attention            %s\n", unmask::to_string(c.attention));
  std::printf("logits               %s\n", c.shifted_logits ? "shifted (position i from the output at i-1)"
                                                              : "position i from the output at i");
  std::printf("q/k/v bias, q/k norm %s, %s\n", c.qkv_bias ? "yes" : "no", c.qk_norm ? "yes" : "no");
  std::printf("decoding             %s\n", decoding_defaults(c).c_str());
  std::printf("layers               %lld\n", (long long)c.n_layers);
  std::printf("d_model              %lld\n", (long long)c.d_model);
  std::printf("heads / kv heads     %lld / %lld (head_dim %lld)\n", (long long)c.n_heads, (long long)c.n_kv_heads, (long long)c.head_dim);
  std::printf("mlp_hidden_size      %lld\n", (long long)c.mlp_hidden_size);
  std::printf("vocab / embedding    %lld / %lld\n", (long long)c.vocab_size, (long long)c.embedding_size);
  std::printf("rope_theta           %g\n", c.rope_theta);
  std::printf("rms_norm_eps         %g\n", c.rms_norm_eps);
  std::printf("max_sequence_length  %lld\n", (long long)c.max_sequence_length);
  std::printf("mask / eos token     %lld / %lld\n", (long long)c.mask_token_id, (long long)c.eos_token_id);
  std::printf("tied head            %s\n", c.tied_head ? "yes" : "no");
  std::printf("weights              %zu tensors, %.2f MB (%s)\n", model.tensors().names().size(),
              double(model.weights().bytes()) / 1e6, unmask::dtype_name(model.weights().embedding.type));
  std::string stops;
  for (std::int64_t id : c.stop_token_ids) stops += (stops.empty() ? "" : ", ") + std::to_string(id);
  std::printf("stop ids             %s\n", stops.c_str());
  const fs::path tokenizer = fs::path(dir) / "tokenizer.json";
  if (fs::exists(tokenizer)) {
    unmask::bpe_tokenizer t = unmask::bpe_tokenizer::load(tokenizer.string());
    const unmask::tokenizer_config tc = unmask::tokenizer_config::load_dir(dir);
    tc.apply(t);
    std::printf("tokenizer            %s (%lld entries; %s pre-tokenizer%s%s)\n", tokenizer.c_str(), (long long)t.size(),
                unmask::split_pattern_name(t.pre_tokenizer_pattern()), t.normalizes_nfc() ? ", NFC" : "",
                t.added_special_before().empty() ? "" : ", adds a bos token");
    std::printf("chat template        %s\n", tc.chat_template ? "yes (generate --chat, unmask chat)" : "none");
  }
  // The CPU engine as generate would run it: pack the weights, then measure.
  unmask::cpu_backend cpu(cpu_options(isa, compute));
  cpu.upload_weights(model);
  std::printf("cpu engine           %s (detected %s), %s GEMMs, %d threads\n", unmask::cpu::isa_name(cpu.isa()),
              unmask::cpu::isa_name(unmask::cpu::detected_isa()), unmask::cpu::compute_mode_name(cpu.compute()),
              unmask::cpu::thread_count());
  const unmask::transformer_weights& w = model.weights();
  double in_place = double(w.embedding.bytes() + w.final_norm.bytes());  // the embedding is gathered, the norms read as stored
  for (const auto& l : w.layers) in_place += double(l.attn_norm.bytes() + l.mlp_norm.bytes());
  const double packed = double(cpu.packed()->bytes());
  std::printf("resident weights     %.2f MB (%.2f MB packed projections and head, %.2f MB read in place)\n",
              (packed + in_place) / 1e6, packed / 1e6, in_place / 1e6);
  std::printf("peak RSS             %.1f MiB\n", peak_rss_mib());
  return 0;
}

}  // namespace

// The flags generate and chat share.
struct shared_flags {
  CLI::Option* threshold = nullptr;
  CLI::Option* block_length = nullptr;
};

void add_generation_options(CLI::App* sub, generate_options& g, int& threads, shared_flags& f) {
  CLI::Option*& threshold = f.threshold;
  CLI::Option*& block_length = f.block_length;
  sub->add_option("--model", g.model, "Model directory: LLaDA, Dream, Fast-dLLM v2, SDAR (default: the embedded tiny model)")->check(CLI::ExistingDirectory);
  sub->add_option("--ar-model", g.ar_model, "Autoregressive model for --compare (default: the embedded twin)")->check(CLI::ExistingDirectory);
  sub->add_option("--tokenizer", g.tokenizer, "tokenizer.json (default: the model directory's)")->check(CLI::ExistingFile);
  sub->add_option("--gen-length", g.gen_length, "Tokens to generate")->check(CLI::Range(1, 1 << 20));
  block_length = sub->add_option("--block-length", g.block_length, "Semi-autoregressive block length (block-diffusion models: their trained block)")->check(CLI::Range(1, 1 << 20));
  sub->add_option("--steps", g.steps, "Denoising steps in total (top-k policies)")->check(CLI::Range(1, 1 << 20));
  sub->add_option("--policy", g.policy, "Which masked positions to commit")
      ->check(CLI::IsMember({"low-confidence", "margin", "entropy", "random", "threshold", "factor", "eb"}));
  sub->add_option("--schedule", g.schedule, "Tokens per step for top-k policies")->check(CLI::IsMember({"llada", "dream", "llama_cpp"}));
  threshold = sub->add_option("--threshold", g.threshold, "Confidence threshold (--policy threshold; block-diffusion models)")->check(CLI::Range(0.0, 1.0));
  sub->add_option("--sub-block-length", g.sub_block_length, "Block-diffusion models: sub-blocks of the threshold rule (Fast-dLLM v2; default 8)")->check(CLI::Range(1, 1 << 20));
  sub->add_option("--strategy", g.strategy, "Block-diffusion models: counted strategy (SDAR's remasking_strategy)")
      ->check(CLI::IsMember({"sequential", "low_confidence_static", "low_confidence_dynamic"}));
  sub->add_option("--block-steps", g.block_steps, "Block-diffusion models: steps per block of the counted rule (default: the block length)")->check(CLI::Range(1, 1 << 20));
  sub->add_option("--factor", g.factor, "Fast-dLLM factor (--policy factor)")->check(CLI::Range(1e-6, 1e6));
  sub->add_option("--gamma", g.gamma, "Entropy bound (--policy eb)")->check(CLI::Range(0.0, 1e6));
  sub->add_option("--temperature", g.temperature, "Sampling temperature (0: greedy)")->check(CLI::Range(0.0, 100.0));
  sub->add_option("--top-k", g.top_k, "Keep the k most likely tokens (0: off)")->check(CLI::Range(0, 1 << 24));
  sub->add_option("--top-p", g.top_p, "Nucleus sampling mass (1: off)")->check(CLI::Range(0.0, 1.0));
  sub->add_option("--seed", g.seed, "Random seed");
  sub->add_option("--remasking", g.remasking, "Ancestral sampling with ReMDM remasking (mdlm: none)")
      ->check(CLI::IsMember({"none", "mdlm", "cap", "rescale", "conf", "loop"}));
  sub->add_option("--noise", g.noise, "Noise schedule for ancestral sampling")->check(CLI::IsMember({"log-linear", "cosine", "linear"}));
  sub->add_option("--eta", g.eta, "ReMDM eta")->check(CLI::Range(0.0, 1.0));
  sub->add_option("--cfg", g.cfg, "Classifier-free guidance scale (0: off)")->check(CLI::Range(0.0, 100.0));
  sub->add_option("--cache", g.cache, "K/V cache (block-causal: for block-diffusion models)")
      ->check(CLI::IsMember({"none", "prefix", "dual", "block-causal"}));
  sub->add_option("--cache-refresh", g.cache_refresh, "Recompute cached K/V every N steps (0: at block starts)")
      ->check(CLI::Range(0, 1 << 20));
  sub->add_flag("--visual", g.visual, "Redraw the canvas as masks turn into tokens");
  sub->add_flag("--ar", g.ar, "Decode with the autoregressive twin instead");
  sub->add_flag("--compare", g.compare, "Run diffusion and autoregressive decoding and compare");
  sub->add_flag("--json", g.json, "Print the figures as JSON");
  sub->add_flag("--no-eos-stop", g.no_eos_stop, "Do not stop at the end-of-sequence token");
  sub->add_flag("--logits-eos-inf", g.logits_eos_inf, "Never choose the end-of-sequence token (LLaDA's logits_eos_inf)");
  sub->add_flag("--confidence-eos-eot-inf", g.confidence_eos_eot_inf,
                "End-of-turn logit -inf in the confidence's softmax (LLaDA's confidence_eos_eot_inf)");
  sub->add_option("--eot-id", g.eot_id, "End-of-turn token id (default: the tokenizer's <|eot_id|>)")
      ->check(CLI::Range(0, 1 << 30));
  const std::vector<std::string> levels = {"portable", "avx2", "avx512", "avx512_bf16"};
  sub->add_option("--threads", threads, "CPU threads (default: $UNMASK_NUM_THREADS, else the physical cores)")
      ->check(CLI::Range(1, 1024));
  sub->add_option("--isa", g.isa, "CPU instruction set, at most the detected one (default: detected, or $UNMASK_CPU_ISA)")
      ->check(CLI::IsMember(levels));
  sub->add_option("--compute", g.compute, "CPU GEMMs: f32, or bf16 (bf16 products, fp32 sums)")
      ->check(CLI::IsMember({"f32", "bf16"}));
#if defined(UNMASK_CLI_CUDA)
  sub->add_option("--device", g.device, "Where to run: cpu, or cuda (the GPU, bf16 activations)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
#else
  sub->add_option("--device", g.device, "Where to run (the unmask-cuda build also runs on the GPU: cuda)")
      ->check(CLI::IsMember({"cpu"}));
#endif
  sub->add_option("--system", g.system, "System message of the chat template (--chat, chat)");
}

int main(int argc, char** argv) {
  CLI::App app{"unmask: fast inference for masked diffusion language models"};
  app.require_subcommand(1);
  generate_options g;
  CLI::App* gen = app.add_subcommand("generate", "Generate text with a masked diffusion model");
  CLI::Option* prompt_text = gen->add_option("-p,--prompt", g.prompt, "Prompt text");
  CLI::Option* prompt_ids = gen->add_option("--prompt-ids", g.prompt_ids, "Prompt as token ids (5,17,42): for a model without a tokenizer");
  prompt_text->excludes(prompt_ids);
  int threads = 0;
  shared_flags gen_flags, chat_flags;
  add_generation_options(gen, g, threads, gen_flags);
  gen->add_flag("--chat", g.chat, "The prompt is a user turn of the model's chat template");
  generate_options c;
  CLI::App* cht = app.add_subcommand("chat", "Chat with an instruct model: turns from the terminal or one per line of stdin");
  add_generation_options(cht, c, threads, chat_flags);
  const std::vector<std::string> levels = {"portable", "avx2", "avx512", "avx512_bf16"};
  std::string info_model, info_isa, info_compute = "f32";
  CLI::App* inf = app.add_subcommand("info", "Print a model's configuration and what the CPU engine holds of it");
  inf->add_option("--model", info_model, "Model directory (LLaDA, Dream, Fast-dLLM v2, SDAR, Qwen2, Qwen3)")->check(CLI::ExistingDirectory);
  inf->add_option("--threads", threads, "CPU threads")->check(CLI::Range(1, 1024));
  inf->add_option("--isa", info_isa, "CPU instruction set")->check(CLI::IsMember(levels));
  inf->add_option("--compute", info_compute, "CPU GEMMs: f32 or bf16")->check(CLI::IsMember({"f32", "bf16"}));

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "unmask: %s (see unmask --help)\n", e.what());
    return 2;
  }
  g.threshold_given = gen_flags.threshold->count() > 0;
  g.block_length_given = gen_flags.block_length->count() > 0;
  c.threshold_given = chat_flags.threshold->count() > 0;
  c.block_length_given = chat_flags.block_length->count() > 0;
  c.chat = true;
  try {
    if (threads > 0) unmask::cpu::set_thread_count(threads);
    if (*gen && g.prompt_ids.empty() && prompt_text->count() == 0)
      throw unmask::argument_error("generate needs a prompt: -p TEXT or --prompt-ids LIST");
    if (*inf) return info(info_model, info_isa, info_compute);
    if (*cht) {
      if (c.compare) throw unmask::argument_error("chat runs one model: --compare does not apply");
      return chat(c);
    }
    if (g.ar && g.compare) throw unmask::argument_error("--ar and --compare cannot be combined");
    if (g.remasking != "none" && g.policy != "low-confidence")
      throw unmask::argument_error("--remasking uses ancestral sampling and cannot be combined with --policy " + g.policy);
    return generate(g);
  } catch (const unmask::argument_error& e) {
    std::fprintf(stderr, "unmask: %s\n", e.what());
    return 2;
  } catch (const unmask::error& e) {
    std::fprintf(stderr, "unmask: %s\n", e.what());
    return 1;
  }
}
