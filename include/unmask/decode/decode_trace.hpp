// unmask/decode/decode_trace.hpp
//
// A picture of decoding: decode_trace follows one sequence of a decode call
// and writes, step by step, which canvas positions it committed, with which
// tokens and confidences, as JSON lines (one object per line, UTF-8; drawn by
// tools/plot_trace.py, described in docs/trace.md). Format version 1:
//   line 1, the header:
//     {"trace": "unmask-decode", "version": 1,
//      "decoder": "diffusion" | "block_diffusion" | "autoregressive",
//      "sequence": s, "prompt_length": P, "canvas_length": L, "gen_length": G,
//      "block_length": B, "block_origin": O, "mask_id": M,
//      "label": "...", "summary": "...", "settings": {...}}
//     the followed sequence's index in the request list, its prompt length,
//     the canvas length (P + G; autoregressive decoding may stop earlier),
//     block b covering canvas positions [O + b B, O + (b + 1) B) (O = P for
//     diffusion, where blocks start at the prompt's end; O = 0 for block
//     diffusion, where they sit at absolute multiples of B; autoregressive
//     decoding is one block, B = G), the mask id, a free-text label (empty
//     unless the caller sets one), the settings in one line of words, and
//     the settings as name -> value (names as in the settings structs).
//   then one line per step the decoder reports (decode_event), in order:
//     {"step": i, "block": b, "block_step": j, "positions": [...],
//      "tokens": [...], "confidences": [...] | null, "remasked": [...]}
//     i = 0, 1, ...: the sequence's steps so far, one per model call it took
//     part in (so the count of lines is sequence_output::forwards), except in
//     ancestral sampling, whose steps may reuse the last call's logits;
//     b, j: the event's block and step within it (block diffusion: -1 for the
//     prompt's prefill, absolute block indices, and a step j one past the
//     last for the call that stores a finished block's K/V);
//     positions: those committed in this step, ascending, and tokens: what
//     the canvas holds there after the step;
//     confidences (parallel to positions): the confidence each committed
//     token was chosen with (the settings' metric; max_prob is in [0, 1]),
//     an entry null where unknown or not finite, the whole null when the
//     decoder does not report them;
//     remasked: positions that went back to the mask in this step (ReMDM).
//   Replaying the lines (write tokens at positions, masks at remasked) from
//   the prompt and G masks gives the final canvas, except the end-of-sequence
//   fill after a stop token, which is no step.
// Where confidences come from: confidence-mode diffusion_decoder reports
// committed positions only, so the trace adds a candidates step hook
// (hooks()) that notes every candidate's confidence, after any hook of the
// caller's, and looks the committed ones up when the step's callback comes.
// Block-diffusion and autoregressive decoding take no hooks: their
// confidences are read from decode_event::committed_confidences when the
// event has that member (a parallel const std::vector<float>*), else null.
// The device-resident loop (resident_decoder) takes no callback and cannot
// be traced. The trace keeps `this` in the callback and hooks it hands out:
// it must outlive the generate call, and it is neither copied nor moved.
#pragma once

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <functional>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "unmask/core/error.hpp"
#include "unmask/decode/ar_decoder.hpp"
#include "unmask/decode/block_diffusion_decoder.hpp"
#include "unmask/decode/diffusion_decoder.hpp"
#include "unmask/decode/step_hooks.hpp"

namespace unmask {

// What a trace's header line says (see the format above).
struct trace_header {
  std::string decoder;  // "diffusion", "block_diffusion", "autoregressive"
  std::size_t sequence = 0;  // the sequence of the request list the trace follows
  std::int32_t prompt_length = 0, canvas_length = 0, gen_length = 0, block_length = 0, block_origin = 0;
  std::int32_t mask_id = -1;
  std::string label;        // free text, for a plot's title
  std::string summary;      // the settings in one line of words
  nlohmann::ordered_json settings = nlohmann::ordered_json::object();
  bool confidences_from_hooks = false;  // confidence-mode diffusion: hooks() adds the candidates hook
};

namespace detail {

// The shortest decimal that reads back as the same float ("0.9", not
// "0.899999976"): how the trace writes every float.
inline std::string trace_float(float x) {
  char buffer[32];
  const auto r = std::to_chars(buffer, buffer + sizeof buffer, x);
  return std::string(buffer, r.ptr);
}
// The same number as a JSON value (a double that prints as the short decimal).
inline nlohmann::ordered_json trace_number(float x) {
  if (!std::isfinite(x)) return nullptr;
  const std::string text = trace_float(x);
  double value = 0.0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  return value;
}

inline const char* trace_name(selection_kind k) {
  switch (k) {
    case selection_kind::threshold: return "threshold";
    case selection_kind::threshold_dinfer: return "threshold_dinfer";
    case selection_kind::factor: return "factor";
    case selection_kind::entropy_bounded: return "entropy_bounded";
    case selection_kind::stochastic: return "stochastic";
    default: return "top_k";
  }
}
inline const char* trace_name(count_schedule_kind k) {
  switch (k) {
    case count_schedule_kind::dream: return "dream";
    case count_schedule_kind::llama_cpp: return "llama_cpp";
    default: return "llada";
  }
}
inline const char* trace_name(noise_kind k) {
  switch (k) {
    case noise_kind::cosine: return "cosine";
    case noise_kind::linear: return "linear";
    default: return "log_linear";
  }
}
inline const char* trace_name(remask_strategy s) {
  switch (s) {
    case remask_strategy::cap: return "cap";
    case remask_strategy::rescale: return "rescale";
    case remask_strategy::conf: return "conf";
    case remask_strategy::loop: return "loop";
    default: return "none";
  }
}
inline const char* trace_name(counted_strategy s) {
  switch (s) {
    case counted_strategy::sequential: return "sequential";
    case counted_strategy::low_confidence_static: return "low_confidence_static";
    default: return "low_confidence_dynamic";
  }
}

inline void add_sampling(nlohmann::ordered_json& j, std::string& summary, const sampling_settings& s) {
  j["temperature"] = trace_number(s.temperature);
  j["top_k"] = s.top_k;
  j["top_p"] = trace_number(s.top_p);
  if (s.temperature > 0.0f) summary += concat(", temperature ", trace_float(s.temperature));
}

// The rule's parameter, in words and in the settings object.
inline std::string describe_rule(const selection_rule& r, nlohmann::ordered_json& j) {
  j["selection"] = trace_name(r.kind);
  switch (r.kind) {
    case selection_kind::threshold:
    case selection_kind::threshold_dinfer:
      j["threshold"] = trace_number(r.tau);
      return concat(trace_name(r.kind), " ", trace_float(r.tau));
    case selection_kind::factor: j["factor"] = trace_number(r.factor_scale); return concat("factor ", trace_float(r.factor_scale));
    case selection_kind::entropy_bounded: j["gamma"] = trace_number(r.gamma); return concat("entropy_bounded ", trace_float(r.gamma));
    case selection_kind::stochastic: j["alg_temp"] = trace_number(r.alg_temp); return concat("stochastic ", trace_float(r.alg_temp));
    default: return "top_k";
  }
}

// Whether decode_event carries the committed tokens' confidences.
template <class E, class = void>
struct event_has_confidences : std::false_type {};
template <class E>
struct event_has_confidences<E, std::void_t<decltype(std::declval<const E&>().committed_confidences)>>
    : std::true_type {};

template <class E>
const std::vector<float>* event_confidences(const E& e) {
  if constexpr (event_has_confidences<E>::value) {
    return e.committed_confidences;
  } else {
    (void)e;
    return nullptr;
  }
}

}  // namespace detail

// The header of a trace of diffusion_decoder with `policy` (pass
// decoder.settings() and decoder.policy()); a schedule or selection rule of
// the user's own type is named "custom".
template <class Policy, std::enable_if_t<is_decoding_policy<Policy>::value, int> = 0>
trace_header trace_header_for(const transformer_config& c, const diffusion_settings& s, const Policy& policy,
                              std::int32_t prompt_length, std::size_t sequence = 0) {
  trace_header h;
  h.decoder = "diffusion";
  h.sequence = sequence;
  h.prompt_length = prompt_length;
  h.gen_length = s.layout.gen_length;
  h.canvas_length = prompt_length + s.layout.gen_length;
  h.block_length = s.layout.block_length;
  h.block_origin = prompt_length;
  h.mask_id = std::int32_t(c.mask_token_id);
  nlohmann::ordered_json& j = h.settings;
  const bool ancestral = s.mode == decode_mode::ancestral;
  j["mode"] = ancestral ? "ancestral" : "confidence";
  j["steps"] = s.layout.steps;
  j["blocks"] = s.layout.block_length > 0 ? s.layout.gen_length / s.layout.block_length : 0;
  std::string& w = h.summary;
  w = concat("diffusion, gen ", s.layout.gen_length, ", block ", s.layout.block_length);
  if (ancestral) {
    j["noise"] = detail::trace_name(s.noise.kind);
    j["remasking"] = detail::trace_name(s.remasking.strategy);
    w += concat(", ancestral ", detail::trace_name(s.noise.kind), ", ", s.layout.steps, " steps");
    if (s.remasking.strategy != remask_strategy::none) w += concat(", ReMDM ", detail::trace_name(s.remasking.strategy));
  } else {
    std::string rule = "custom";
    if constexpr (std::is_same<typename Policy::selection_type, selection_rule>::value)
      rule = detail::describe_rule(policy.selection, j);
    else
      j["selection"] = "custom";
    const bool counted = [&] {
      if constexpr (std::is_same<typename Policy::selection_type, selection_rule>::value)
        return policy.selection.uses_schedule();
      else
        return true;
    }();
    if constexpr (std::is_same<typename Policy::schedule_type, count_schedule>::value)
      j["schedule"] = detail::trace_name(policy.schedule.kind);
    else
      j["schedule"] = "custom";
    w += concat(", ", rule);
    if (counted) w += concat(", ", s.layout.steps, " steps (", j["schedule"].get<std::string>(), ")");
    const bool own_metric = !std::is_same<typename Policy::metric_type, confidence_metric>::value;
    j["confidence"] = own_metric ? "custom" : to_string(s.confidence);
    w += concat(", ", j["confidence"].get<std::string>());
    j["cache"] = to_string(s.cache.mode);
    if (s.cache.mode != cache_mode::none) w += concat(", cache ", to_string(s.cache.mode));
    h.confidences_from_hooks = true;
  }
  detail::add_sampling(j, w, s.sampling);
  j["cfg_scale"] = detail::trace_number(s.cfg_scale);
  if (s.cfg_scale > 0.0f) w += concat(", cfg ", detail::trace_float(s.cfg_scale));
  j["seed"] = s.seed;
  return h;
}

// The same with the built-in policy, whose choices the settings hold.
inline trace_header trace_header_for(const transformer_config& c, const diffusion_settings& s,
                                     std::int32_t prompt_length, std::size_t sequence = 0) {
  return trace_header_for(c, s, policy_from_settings<builtin_policy>(s, std::int32_t(c.eos_token_id)), prompt_length,
                          sequence);
}

// block_diffusion_decoder (its settings() or the ones given to it: zeros are
// resolved as the decoder resolves them).
inline trace_header trace_header_for(const transformer_config& c, const block_diffusion_settings& settings,
                                     std::int32_t prompt_length, std::size_t sequence = 0) {
  block_diffusion_settings s = settings;
  if (s.block_length == 0) s.block_length = std::int32_t(c.attention_block);
  if (s.steps == 0) s.steps = s.block_length;
  if (s.sub_block_length == 0) s.sub_block_length = std::min(8, s.block_length);
  trace_header h;
  h.decoder = "block_diffusion";
  h.sequence = sequence;
  h.prompt_length = prompt_length;
  h.gen_length = s.gen_length;
  h.canvas_length = prompt_length + s.gen_length;
  h.block_length = s.block_length;
  h.block_origin = 0;
  h.mask_id = std::int32_t(c.mask_token_id);
  nlohmann::ordered_json& j = h.settings;
  std::string& w = h.summary;
  w = concat("block diffusion, gen ", s.gen_length, ", block ", s.block_length);
  if (s.rule == block_step_rule::sub_block_threshold) {
    j["rule"] = "sub_block_threshold";
    j["sub_block_length"] = s.sub_block_length;
    j["threshold"] = detail::trace_number(s.threshold);
    w += concat(", sub-block ", s.sub_block_length, ", threshold ", detail::trace_float(s.threshold));
  } else {
    j["rule"] = "counted";
    j["strategy"] = detail::trace_name(s.strategy);
    j["steps"] = s.steps;
    w += concat(", ", detail::trace_name(s.strategy), ", ", s.steps, " steps per block");
    if (s.strategy == counted_strategy::low_confidence_dynamic) {
      j["threshold"] = detail::trace_number(s.threshold);
      w += concat(", threshold ", detail::trace_float(s.threshold));
    }
  }
  j["confidence"] = "max_prob";
  detail::add_sampling(j, w, s.sampling);
  j["seed"] = s.seed;
  return h;
}

// ar_decoder.
inline trace_header trace_header_for(const transformer_config& c, const ar_settings& s, std::int32_t prompt_length,
                                     std::size_t sequence = 0) {
  trace_header h;
  h.decoder = "autoregressive";
  h.sequence = sequence;
  h.prompt_length = prompt_length;
  h.gen_length = s.max_new_tokens;
  h.canvas_length = prompt_length + s.max_new_tokens;
  h.block_length = s.max_new_tokens;
  h.block_origin = prompt_length;
  h.mask_id = std::int32_t(c.mask_token_id);
  h.summary = concat("autoregressive, ", s.max_new_tokens, " new tokens");
  h.settings["max_new_tokens"] = s.max_new_tokens;
  h.settings["confidence"] = "max_prob";
  detail::add_sampling(h.settings, h.summary, s.sampling);
  h.settings["seed"] = s.seed;
  return h;
}

class decode_trace {
 public:
  // Opens `path` for writing (a file_error naming it when it cannot be) and writes the header.
  decode_trace(const std::string& path, trace_header header) : path_(path), header_(std::move(header)) {
    out_.open(path, std::ios::binary | std::ios::trunc);
    if (!out_) throw file_error(concat("cannot open the trace file '", path, "' for writing"));
    const nlohmann::ordered_json h = {{"trace", "unmask-decode"},
                              {"version", 1},
                              {"decoder", header_.decoder},
                              {"sequence", header_.sequence},
                              {"prompt_length", header_.prompt_length},
                              {"canvas_length", header_.canvas_length},
                              {"gen_length", header_.gen_length},
                              {"block_length", header_.block_length},
                              {"block_origin", header_.block_origin},
                              {"mask_id", header_.mask_id},
                              {"label", header_.label},
                              {"summary", header_.summary},
                              {"settings", header_.settings}};
    write_line(h.dump());
  }
  decode_trace(const decode_trace&) = delete;
  decode_trace& operator=(const decode_trace&) = delete;

  const trace_header& header() const { return header_; }
  const std::string& path() const { return path_; }
  std::int64_t steps() const { return steps_; }  // step lines written

  // A decode_callback that records each event of the followed sequence,
  // then hands every event to `next`.
  decode_callback callback(decode_callback next = {}) {
    return [this, next = std::move(next)](const decode_event& e) {
      record(e);
      if (next) next(e);
    };
  }

  // `inner` with the candidates hook that notes confidences added after
  // inner's own (confidence-mode diffusion); `inner` unchanged otherwise.
  step_hooks hooks(step_hooks inner = {}) {
    if (!header_.confidences_from_hooks) return inner;
    step_hooks h = std::move(inner);
    h.candidates = [this, first = std::move(h.candidates)](step_candidates& c) {
      if (first) first(c);
      note(c);
    };
    return h;
  }

  // One step: appends its line when the event is the followed sequence's.
  void record(const decode_event& e) {
    if (e.sequence != header_.sequence) return;
    const std::vector<std::int32_t>& canvas = *e.canvas;
    const std::vector<std::int32_t>& positions = *e.committed_positions;
    const std::vector<float>* reported = detail::event_confidences(e);
    if (reported && reported->size() != positions.size())
      throw argument_error(concat("decode_trace: an event reports ", reported->size(), " confidences for ",
                                  positions.size(), " committed positions"));
    const bool known = reported || noted_;
    std::string line = concat("{\"step\":", steps_, ",\"block\":", e.block, ",\"block_step\":", e.step, ",\"positions\":");
    append_list(line, positions.size(), [&](std::size_t i) { return std::to_string(positions[i]); });
    line += ",\"tokens\":";
    append_list(line, positions.size(), [&](std::size_t i) { return std::to_string(canvas[std::size_t(positions[i])]); });
    line += ",\"confidences\":";
    if (!known) {
      line += "null";
    } else {
      append_list(line, positions.size(), [&](std::size_t i) {
        const std::size_t p = std::size_t(positions[i]);
        const float x = reported ? (*reported)[i] : p < noted_confidence_.size() ? noted_confidence_[p] : NAN;
        return std::isfinite(x) ? detail::trace_float(x) : std::string("null");
      });
    }
    remasked_.clear();
    const std::int32_t mask = header_.mask_id;
    const std::size_t common = std::min(previous_.size(), canvas.size());
    for (std::size_t p = std::size_t(header_.prompt_length); p < common; ++p)
      if (canvas[p] == mask && previous_[p] != mask) remasked_.push_back(std::int32_t(p));
    line += ",\"remasked\":";
    append_list(line, remasked_.size(), [&](std::size_t i) { return std::to_string(remasked_[i]); });
    line += "}";
    write_line(line);
    previous_ = canvas;
    noted_ = false;
    ++steps_;
  }

 private:
  // The candidates hook: each candidate's confidence by canvas position.
  void note(const step_candidates& c) {
    if (c.sequence != header_.sequence) return;
    noted_confidence_.assign(c.canvas->size(), std::numeric_limits<float>::quiet_NaN());
    for (std::int32_t i = 0; i < c.count; ++i) noted_confidence_[std::size_t(c.positions[i])] = c.confidence[i];
    noted_ = true;
  }

  template <class Item>
  static void append_list(std::string& line, std::size_t n, const Item& item) {
    line += '[';
    for (std::size_t i = 0; i < n; ++i) {
      if (i) line += ',';
      line += item(i);
    }
    line += ']';
  }

  void write_line(const std::string& line) {
    out_ << line << '\n';
    out_.flush();
    if (!out_) throw file_error(concat("cannot write to the trace file '", path_, "'"));
  }

  std::string path_;
  trace_header header_;
  std::ofstream out_;
  std::int64_t steps_ = 0;
  std::vector<std::int32_t> previous_;   // the canvas after the last step, for remasked positions
  std::vector<std::int32_t> remasked_;
  std::vector<float> noted_confidence_;  // (canvas length) this step's candidates' confidences, NaN elsewhere
  bool noted_ = false;                   // whether the hook ran since the last step
};

}  // namespace unmask
