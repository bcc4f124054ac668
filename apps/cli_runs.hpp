// apps/cli_runs.hpp
//
// One decoding run of the program: a batch of prompts through the decoder the
// model's family calls for (block_diffusion_decoder for block-causal models,
// diffusion_decoder or, on the GPU, resident_decoder for the others,
// ar_decoder with --ar), showing progress on stderr (cli_progress.hpp) and
// stopping after the current step when the interrupt token is cancelled (the
// first Ctrl-C). Each sequence's result says why it finished: end_of_sequence
// (a stop id), stop_string, length, time_limit or interrupted (its text shows
// the masks still left). With --trace FILE the first sequence's commits are
// recorded step by step (unmask/decode/decode_trace.hpp, docs/trace.md).
#pragma once

#include <unistd.h>

#include <cstdint>
#include <iostream>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "cli_model.hpp"
#include "cli_progress.hpp"
#include "unmask/decode/ar_decoder.hpp"
#include "unmask/decode/block_diffusion_decoder.hpp"
#include "unmask/decode/decode_trace.hpp"
#include "unmask/decode/diffusion_decoder.hpp"
#if defined(UNMASK_CLI_CUDA)
#include "unmask/cuda/backend.hpp"
#include "unmask/decode/resident_decoder.hpp"
#endif

namespace cli {

// The token the first SIGINT cancels (installed by main).
inline unmask::cancel_token& interrupt_token() {
  static unmask::cancel_token token;
  return token;
}

inline const char* finish_reason(unmask::stop_reason r) {
  switch (r) {
    case unmask::stop_reason::stop_token: return "end_of_sequence";
    case unmask::stop_reason::stop_string: return "stop_string";
    case unmask::stop_reason::time_limit: return "time_limit";
    case unmask::stop_reason::cancelled: return "interrupted";
    default: return "length";
  }
}

struct sequence_result {
  std::vector<std::int32_t> prompt_ids, generated_ids;  // generated: before the first stop id (masks where interrupted)
  std::int32_t stop_id = -1;                            // the stop id that ended it, or -1
  std::string text, finish_reason;
  std::int64_t forwards = 0, tokens = 0;
};

struct run_figures {
  std::string mode;
  std::vector<sequence_result> sequences;
  std::int64_t tokens = 0, forwards = 0;
  double seconds = 0, cpu_seconds = 0;
  bool interrupted = false;
  double tokens_per_second() const { return seconds > 0 ? double(tokens) / seconds : 0.0; }
  double tokens_per_forward() const { return forwards ? double(tokens) / double(forwards) : 0.0; }
};

// The figures of a decoder's output: each sequence's generated ids up to its
// first stop id, decoded (an interrupted one with its masks shown).
inline run_figures figures_of(const std::string& mode, const unmask::decode_output& out, const loaded_model& m) {
  run_figures f;
  f.mode = mode;
  f.tokens = out.committed, f.forwards = out.forwards, f.seconds = out.seconds, f.cpu_seconds = out.cpu_seconds;
  const std::int32_t mask = std::int32_t(m.model.config().mask_token_id);
  for (const unmask::sequence_output& s : out.sequences) {
    sequence_result r;
    r.prompt_ids.assign(s.canvas.begin(), s.canvas.begin() + s.prompt_length);
    for (std::size_t i = std::size_t(s.prompt_length); i < s.canvas.size(); ++i) {
      if (std::find(m.stops.begin(), m.stops.end(), s.canvas[i]) != m.stops.end()) {
        r.stop_id = s.canvas[i];
        break;
      }
      r.generated_ids.push_back(s.canvas[i]);
    }
    r.finish_reason = finish_reason(s.stop);
    if (s.stop == unmask::stop_reason::cancelled) f.interrupted = true;
    const bool masks = std::find(r.generated_ids.begin(), r.generated_ids.end(), mask) != r.generated_ids.end();
    r.text = masks ? render(m.tok, s.canvas, std::size_t(s.prompt_length), mask, -1) : m.tok.decode(r.generated_ids);
    r.forwards = s.forwards, r.tokens = s.committed;
    f.sequences.push_back(std::move(r));
  }
  return f;
}

inline std::vector<std::int64_t> as_int64(const std::vector<std::int32_t>& ids) { return {ids.begin(), ids.end()}; }

inline std::vector<unmask::decode_request> requests_of(const std::vector<std::vector<std::int32_t>>& prompts,
                                                       const std::vector<std::uint32_t>& ids) {
  std::vector<unmask::decode_request> r;
  for (std::size_t i = 0; i < prompts.size(); ++i) r.push_back({prompts[i], ids.empty() ? std::uint32_t(i) : ids[i]});
  return r;
}

// A progress view for a run (stderr; the line only on a terminal or with --progress).
inline progress_view view_for(const generate_options& o, progress_totals totals) {
  const bool tty = isatty(STDERR_FILENO);
  return progress_view(totals, (tty || o.progress) && !o.quiet && !o.visual, o.visual, tty);
}

// The decode callback that feeds `view`: the tokens each call committed and,
// for --visual, the first sequence's canvas (masks `mask`, -1 for none).
inline unmask::decode_callback show_on(progress_view& view, const generate_options& o, const loaded_model& m,
                                       std::size_t prompt_length, std::int32_t mask) {
  return [&view, &o, &m, prompt_length, mask](const unmask::decode_event& e) {
    view.update(e.block, e.step, std::int64_t(e.committed_positions ? e.committed_positions->size() : 0),
                o.visual && e.sequence == 0
                    ? render(m.tok, *e.canvas, prompt_length, mask, std::int32_t(m.model.config().eos_token_id))
                    : std::string());
  };
}

// The prompt and the gen length must fit the model (named by flags).
inline void check_fits(const generate_options& o, const loaded_model& m, const std::vector<std::vector<std::int32_t>>& prompts) {
  const std::int64_t limit = m.model.config().max_sequence_length;
  for (const auto& p : prompts)
    if (std::int64_t(p.size()) + o.gen_length > limit)
      throw unmask::argument_error("the prompt (" + std::to_string(p.size()) + " tokens) and --gen-length " +
                                   std::to_string(o.gen_length) + " need " + std::to_string(p.size() + std::size_t(o.gen_length)) +
                                   " positions; the model's max_sequence_length is " + std::to_string(limit));
}

template <class Backend>
run_figures run_block_diffusion(const generate_options& o, const loaded_model& m,
                                const std::vector<std::vector<std::int32_t>>& prompts, const std::vector<std::uint32_t>& ids) {
  const auto& c = m.model.config();
  if (o.policy != "low-confidence" || o.cache != "none" || o.remasking != "none" || o.cfg > 0.0f)
    throw unmask::argument_error(c.family + " decodes block by block (block-causal attention): --policy, --cache, "
                                 "--remasking and --cfg do not apply; --threshold, --sub-block-length, --strategy "
                                 "and --block-steps do");
  unmask::block_diffusion_settings settings = block_settings_from(o, c);
  if (settings.stop_at_eos) settings.stop.add_token_ids(as_int64(m.end_of_turn));
  settings.stop.cancel = interrupt_token();
  unmask::block_diffusion_decoder<Backend> decoder(m.model, settings, make_backend<Backend>(o));
  const int block = decoder.settings().block_length;
  progress_view view = view_for(o, {(o.gen_length + block - 1) / block,
                                    decoder.settings().rule == unmask::block_step_rule::counted ? decoder.settings().steps : 0,
                                    std::int64_t(o.gen_length) * std::int64_t(prompts.size()), false});
  const unmask::decode_callback shown = show_on(view, o, m, prompts[0].size(), std::int32_t(c.mask_token_id));
  std::optional<unmask::decode_trace> trace;
  if (!o.trace.empty())
    trace.emplace(o.trace, unmask::trace_header_for(c, decoder.settings(), std::int32_t(prompts[0].size())));
  const auto out = decoder.generate(requests_of(prompts, ids), trace ? trace->callback(shown) : shown);
  view.finish();
  return figures_of("block diffusion", out, m);
}

template <class Backend>
run_figures run_diffusion(const generate_options& o, const loaded_model& m,
                          const std::vector<std::vector<std::int32_t>>& prompts, const std::vector<std::uint32_t>& ids) {
  const auto& c = m.model.config();
  if (c.objective != unmask::training_objective::masked_diffusion)
    throw unmask::argument_error(m.dir + " holds an autoregressive " + c.family + " model: decode it with --ar");
  check_fits(o, m, prompts);
  if (c.attention == unmask::trained_attention::block_causal) return run_block_diffusion<Backend>(o, m, prompts, ids);
  if (o.gen_length % o.block_length != 0)
    throw unmask::argument_error("--gen-length " + std::to_string(o.gen_length) + " is not a multiple of --block-length " +
                                 std::to_string(o.block_length));
  unmask::diffusion_settings settings = diffusion_settings_from(o);
  if (settings.stop_at_eos) settings.stop.add_token_ids(as_int64(m.end_of_turn));
  settings.stop.cancel = interrupt_token();
  if (settings.confidence_eos_eot_inf && settings.eot_token_id < 0) {
    const std::optional<std::int32_t> eot = m.tok.tokenizer ? m.tok.tokenizer->find_token("<|eot_id|>") : std::nullopt;
    if (!eot) throw unmask::argument_error("--confidence-eos-eot-inf: the tokenizer has no <|eot_id|> token; pass --eot-id");
    settings.eot_token_id = *eot;
  }
#if defined(UNMASK_CLI_CUDA)
  if constexpr (std::is_same_v<Backend, unmask::cuda_backend>) {
    if (!o.visual && o.trace.empty() && settings.mode == unmask::decode_mode::confidence &&
        settings.cfg_scale == 0.0f) {
      unmask::resident_decoder<Backend> decoder(m.model, settings);
      run_figures figures = figures_of("diffusion", decoder.generate(requests_of(prompts, ids)), m);
      if (!decoder.backend().graph_failure().empty())
        std::cerr << "warning: CUDA graphs were turned off, each step ran eagerly: " << decoder.backend().graph_failure()
                  << "\n";
      return figures;
    }
  }
#endif
  const int blocks = o.gen_length / o.block_length;
  unmask::diffusion_decoder<Backend> decoder(m.model, settings, make_backend<Backend>(o));
  progress_view view = view_for(o, {blocks, o.steps / blocks, std::int64_t(o.gen_length) * std::int64_t(prompts.size()), false});
  const unmask::decode_callback shown = show_on(view, o, m, prompts[0].size(), std::int32_t(c.mask_token_id));
  std::optional<unmask::decode_trace> trace;
  if (!o.trace.empty())
    trace.emplace(o.trace, unmask::trace_header_for(c, decoder.settings(), decoder.policy(), std::int32_t(prompts[0].size())));
  const auto out = trace ? decoder.generate(requests_of(prompts, ids), trace->callback(shown), trace->hooks())
                         : decoder.generate(requests_of(prompts, ids), shown);
  view.finish();
  return figures_of("diffusion", out, m);
}

template <class Backend>
run_figures run_ar(const generate_options& o, const loaded_model& m, std::vector<std::vector<std::int32_t>> prompts,
                   const std::vector<std::uint32_t>& ids) {
  const auto& c = m.model.config();
  unmask::ar_settings s;
  s.max_new_tokens = o.gen_length;
  s.sampling.temperature = o.temperature;
  s.sampling.top_k = o.top_k;
  s.sampling.top_p = o.top_p;
  s.seed = o.seed;
  s.stop_at_eos = !o.no_eos_stop;
  if (s.stop_at_eos) s.stop.add_token_ids(as_int64(m.end_of_turn));
  s.stop.cancel = interrupt_token();
  for (auto& p : prompts)
    if (p.empty()) p.push_back(std::int32_t(c.eos_token_id));  // start of a new verse
  check_fits(o, m, prompts);
  unmask::ar_decoder<Backend> decoder(m.model, s, make_backend<Backend>(o));
  progress_view view = view_for(o, {1, 0, std::int64_t(o.gen_length) * std::int64_t(prompts.size()), true});
  const unmask::decode_callback shown = show_on(view, o, m, prompts[0].size(), -1);
  std::optional<unmask::decode_trace> trace;
  if (!o.trace.empty()) trace.emplace(o.trace, unmask::trace_header_for(c, s, std::int32_t(prompts[0].size())));
  const auto out = decoder.generate(requests_of(prompts, ids), trace ? trace->callback(shown) : shown);
  view.finish();
  return figures_of("autoregressive", out, m);
}

// --ar decodes with the autoregressive decoder; otherwise the family decides.
template <class Backend>
run_figures run_model(const generate_options& o, const loaded_model& m, const std::vector<std::vector<std::int32_t>>& prompts,
                      const std::vector<std::uint32_t>& ids = {}) {
  return o.ar && !o.compare ? run_ar<Backend>(o, m, prompts, ids) : run_diffusion<Backend>(o, m, prompts, ids);
}

}  // namespace cli
