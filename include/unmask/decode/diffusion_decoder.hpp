// unmask/decode/diffusion_decoder.hpp
//
// The masked-diffusion decode loop (LLaDA generate, Fast-dLLM, Dream, MDLM),
// written once over a backend. Each sequence's canvas is its prompt followed
// by gen_length mask tokens; the generated part is split into semi-
// autoregressive blocks decoded left to right (block_layout). Within a block,
// every step runs the model over the canvases of the sequences still working
// on the block (logits only for the block's rows), then either
//  - confidence mode: proposes a token and a confidence for every masked
//    position of the block (choose_token), sorts them by confidence and
//    commits the prefix the selection rule asks for, with the count from the
//    schedule for top-k (LLaDA, Dream) and until the block is full for
//    threshold, factor and entropy-bounded rules; or
//  - ancestral mode (MDLM, Dream `origin`, ReMDM): reveals each masked
//    position with the schedule's probability and, under ReMDM, remasks
//    decoded ones; the model's output is reused when a canvas did not change,
//    and a final argmax removes any mask left at the end of a block.
// K/V caching (confidence mode; Fast-dLLM, arXiv 2505.22618, NVlabs/Fast-dLLM): `prefix` runs
// the whole canvas at each block start (and every refresh_interval steps),
// keeping K/V of everything, then feeds only the block and what follows it;
// `dual` feeds only the block and attends to cached K/V on both sides (both
// approximate: cached K/V go stale as the block changes; a refresh every step
// is exactly no cache); `block_causal`, for models trained with block-causal
// attention, caches the K/V of finished blocks once, which is exact.
// Randomness is keyed by (seed, sequence id, the sequence's own step count,
// position, vocabulary index), so a sequence decodes the same tokens alone or
// in any batch. A sequence leaves the batch when it is done; a finished
// block holding a stop token (with stop_at_eos, the end-of-sequence token)
// or completing a stop string ends it (the rest of its canvas is filled with
// the end-of-sequence token), and a time limit or a cancel_token stops every
// sequence before the next model call (unmask/decode/stopping.hpp).
// The backend runs the model and the token choice (on a GPU, only a token and
// a confidence per masked row come back to the host); ancestral sampling and
// ReMDM read the block's logits on the host.
#pragma once

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdint>
#include <functional>
#include <numeric>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "unmask/core/error.hpp"
#include "unmask/decode/backend_interface.hpp"
#include "unmask/decode/step_hooks.hpp"
#include "unmask/decode/stopping.hpp"
#include "unmask/model/transformer_forward.hpp"
#include "unmask/policy/commit.hpp"
#include "unmask/policy/confidence.hpp"
#include "unmask/policy/decoding_policy.hpp"
#include "unmask/policy/guidance.hpp"
#include "unmask/policy/remasking.hpp"
#include "unmask/policy/sampling.hpp"
#include "unmask/policy/selection.hpp"
#include "unmask/random/philox.hpp"
#include "unmask/schedule/block_layout.hpp"
#include "unmask/schedule/count_schedule.hpp"
#include "unmask/schedule/noise_schedule.hpp"

namespace unmask {

enum class decode_mode : std::uint8_t { confidence, ancestral };

enum class cache_mode : std::uint8_t { none, prefix, dual, block_causal };

struct cache_settings {
  cache_mode mode = cache_mode::none;
  std::int32_t refresh_interval = 0;  // prefix, dual: recompute everything every N steps; 0: at block starts only
};

inline cache_mode parse_cache_mode(const std::string& name) {
  if (name == "none") return cache_mode::none;
  if (name == "prefix") return cache_mode::prefix;
  if (name == "dual") return cache_mode::dual;
  if (name == "block_causal" || name == "block-causal") return cache_mode::block_causal;
  throw argument_error(concat("unknown cache mode '", name, "' (none, prefix, dual, block_causal)"));
}

inline const char* to_string(cache_mode m) {
  switch (m) {
    case cache_mode::prefix: return "prefix";
    case cache_mode::dual: return "dual";
    case cache_mode::block_causal: return "block_causal";
    default: return "none";
  }
}

struct diffusion_settings {
  block_layout layout{128, 128, 128};
  decode_mode mode = decode_mode::confidence;
  count_schedule schedule;                                   // confidence mode, top-k and stochastic rules
  confidence_metric confidence = confidence_metric::max_prob;
  selection_rule selection;
  sampling_settings sampling;
  noise_schedule noise;                                      // ancestral mode
  remdm_settings remasking;                                  // ancestral mode
  float cfg_scale = 0.0f;
  attention_mask attention = attention_mask::full();  // block_causal: blocks counted from each prompt's end
  cache_settings cache;
  std::uint64_t seed = 0;
  bool stop_at_eos = false;
  std::int32_t eos_token_id = -1;  // -1: the model's
  stop_criteria stop;              // stop tokens and strings, a time limit, cancellation (unmask/decode/stopping.hpp)
  // LLaDA's logits options, held by the built-in logits processor
  // (token_ban_processor, unmask/policy/logits_processor.hpp):
  bool logits_eos_inf = false;          // the end-of-sequence token is never chosen (-inf logit)
  bool confidence_eos_eot_inf = false;  // the end-of-turn token's logit is -inf in the confidence's softmax
  std::int32_t eot_token_id = -1;       // the end-of-turn id (LLaDA's <|eot_id|>), for confidence_eos_eot_inf

  void validate() const { validate(selection.uses_schedule()); }
  // With the decoding policy's rule deciding whether counts come from the schedule.
  void validate(bool rule_uses_schedule) const {
    layout.validate(mode == decode_mode::ancestral || rule_uses_schedule);
    selection.validate();
    sampling.validate();
    remasking.validate();
    stop.validate();
    if (confidence_eos_eot_inf && eot_token_id < 0)
      throw argument_error("confidence_eos_eot_inf needs the end-of-turn token id (eot_token_id)");
    if (!(cfg_scale >= 0.0f)) throw argument_error(concat("cfg_scale must be >= 0, got ", cfg_scale));
    if (cache.refresh_interval < 0)
      throw argument_error(concat("cache refresh interval must be >= 0, got ", cache.refresh_interval));
    if (cache.mode != cache_mode::none && mode == decode_mode::ancestral)
      throw argument_error("K/V caching applies to confidence decoding, not to ancestral sampling");
    if (cache.mode == cache_mode::block_causal &&
        !(attention.kind == attention_kind::block_causal && attention.block_size == layout.block_length))
      throw argument_error(concat("the block_causal cache needs block-causal attention with block size block_length (",
                                  layout.block_length, ")"));
  }
};

// One sequence to decode: its prompt and the id that keys its random numbers.
struct decode_request {
  std::vector<std::int32_t> prompt;
  std::uint32_t id = 0;
};

struct sequence_output {
  std::vector<std::int32_t> canvas;  // prompt + generated tokens
  std::int32_t prompt_length = 0;
  std::int64_t forwards = 0;         // model calls this sequence took part in
  std::int64_t committed = 0;        // tokens committed (remasked ones count again)
  bool stopped_at_eos = false;       // stopped at a stop token (the end-of-sequence one, or stop_criteria's)
  stop_reason stop = stop_reason::length;  // why it stopped (masks remain after time_limit or cancelled)
};

struct decode_output {
  std::vector<sequence_output> sequences;
  std::int64_t forwards = 0;  // model calls (a guided step is one call over the doubled batch)
  std::int64_t committed = 0;
  double seconds = 0.0;      // wall time
  double cpu_seconds = 0.0;  // CPU time of the process (every thread) over the same span
  double tokens_per_forward() const { return forwards ? double(committed) / double(forwards) : 0.0; }
};

// What a step callback sees: the canvas after the step's commits.
struct decode_event {
  std::size_t sequence;  // index into the request list
  std::int32_t block, step;
  const std::vector<std::int32_t>* canvas;
  const std::vector<std::int32_t>* committed_positions;
  // (committed) the confidence each committed token was chosen with, where the decoder reports them, else null
  const std::vector<float>* committed_confidences = nullptr;
};
using decode_callback = std::function<void(const decode_event&)>;

namespace detail {

// Sequence `index`'s output at the start: its prompt followed by gen_length
// mask tokens, after checking that the prompt fits and its ids exist.
inline sequence_output start_canvas(const decode_request& request, std::size_t index, const transformer_config& c,
                                    std::int32_t gen_length) {
  const auto& prompt = request.prompt;
  const std::int64_t total = std::int64_t(prompt.size()) + gen_length;
  if (total > c.max_sequence_length)
    throw argument_error(concat("generate: prompt of ", prompt.size(), " tokens + gen_length ", gen_length,
                                " exceeds max_sequence_length ", c.max_sequence_length));
  for (std::int32_t t : prompt)
    if (t < 0 || t >= c.vocab_size)
      throw argument_error(concat("generate: prompt token ", t, " of sequence ", index, " is outside the vocabulary"));
  sequence_output out;
  out.prompt_length = std::int32_t(prompt.size());
  out.canvas = prompt;
  out.canvas.resize(std::size_t(total), std::int32_t(c.mask_token_id));
  return out;
}

// After block [begin, end) is finished: a stop token in it or a stop string
// in the generated text up to its end (stop_at_eos: the end-of-sequence token
// counts) ends the sequence, the rest of its canvas filled with `eos`.
inline bool finish_block(sequence_output& out, std::int64_t begin, std::int64_t end, const stop_criteria& stop,
                         bool stop_at_eos, std::int32_t eos) {
  const stop_reason r = stop.check(out.canvas, out.prompt_length, begin, end, stop_at_eos ? eos : -1);
  if (r == stop_reason::length) return false;
  std::fill(out.canvas.begin() + end, out.canvas.end(), eos);
  out.stop = r;
  out.stopped_at_eos = r == stop_reason::stop_token;
  return true;
}

// When a decode call started, in wall and process CPU time.
struct decode_clock {
  std::chrono::steady_clock::time_point wall = std::chrono::steady_clock::now();
  std::clock_t cpu = std::clock();
  double elapsed() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - wall).count(); }
  void stop(decode_output& result) const {
    result.seconds = elapsed();
    result.cpu_seconds = double(std::clock() - cpu) / CLOCKS_PER_SEC;
  }
};

// Time limit or cancellation: every sequence not done stops where it is;
// returns whether that happened.
template <class State>
bool interrupt(std::vector<State>& states, const stop_criteria& stop, const decode_clock& clock) {
  const stop_reason r = stop.interrupt(clock.elapsed());
  if (r == stop_reason::length) return false;
  for (State& st : states)
    if (!st.done) st.done = true, st.out.stop = r;
  return true;
}

// Moves each state's output into the result, with the totals and the time.
template <class State>
void collect_outputs(std::vector<State>& states, decode_output& result, const decode_clock& start) {
  for (State& st : states) {
    result.committed += st.out.committed;
    result.sequences.push_back(std::move(st.out));
  }
  start.stop(result);
}

}  // namespace detail

namespace detail {

// What the policy asks of the settings and the model: the built-in
// processor's ids exist; a sampler of one's own leaves the built-in
// sampler's settings at their defaults.
template <class Policy>
void validate_policy_with(const Policy& policy, const diffusion_settings& settings, const transformer_config& c) {
  if constexpr (std::is_same<typename Policy::processor_type, token_ban_processor>::value)
    policy.processor.validate(c.vocab_size);
  if constexpr (!std::is_same<typename Policy::sampler_type, sampling_settings>::value)
    if (!settings.sampling.is_default())
      throw argument_error("a token sampler of one's own replaces the built-in one: leave temperature, top_k, top_p "
                           "and confidence_on_sampling_distribution at their defaults");
}

}  // namespace detail

// The decoding policy from the settings: the built-in schedule, selection
// rule and logits processor take their run-time choice from
// settings.schedule, settings.selection and LLaDA's logits options (with
// settings.eos_token_id, which must be resolved: `model_eos` replaces -1); a
// user's type is value-initialised.
template <class Policy>
Policy policy_from_settings(const diffusion_settings& settings, std::int32_t model_eos = -1) {
  static_assert(is_decoding_policy<Policy>::value,
                "the policy is a unmask::decoding_policy<Schedule, Selection, Processor, Metric, Sampler>");
  Policy policy{};
  if constexpr (std::is_same<typename Policy::schedule_type, count_schedule>::value) policy.schedule = settings.schedule;
  if constexpr (std::is_same<typename Policy::selection_type, selection_rule>::value)
    policy.selection = settings.selection;
  if constexpr (std::is_same<typename Policy::processor_type, token_ban_processor>::value) {
    const std::int32_t eos = settings.eos_token_id >= 0 ? settings.eos_token_id : model_eos;
    if (settings.logits_eos_inf && eos < 0) throw argument_error("logits_eos_inf needs the end-of-sequence token id");
    if (settings.confidence_eos_eot_inf && settings.eot_token_id < 0)
      throw argument_error("confidence_eos_eot_inf needs the end-of-turn token id (eot_token_id)");
    policy.processor =
        token_ban_processor::llada(settings.logits_eos_inf, settings.confidence_eos_eot_inf, eos, settings.eot_token_id);
  } else if (settings.logits_eos_inf || settings.confidence_eos_eot_inf) {
    throw argument_error("logits_eos_inf and confidence_eos_eot_inf are options of the built-in logits processor "
                         "(token_ban_processor); this decoding policy has another");
  }
  return policy;
}

// Backend: see unmask/decode/backend_interface.hpp. Policy: a
// decoding_policy (unmask/policy/decoding_policy.hpp); built from the
// settings unless one is given. The decoder keeps a reference to the model,
// which must outlive it (a temporary model does not compile).
namespace detail {

// Which canvas rows a sequence feeds in one step, and the keys it attends to.
struct cache_feed {
  std::int32_t begin = 0, end = 0;  // canvas positions [begin, end)
  std::int32_t kv_length = -1;      // -1: end (or no cache)
};

// The rows a sequence feeds for a step of its block [block_begin, block_end)
// under the cache mode: the whole canvas without a cache or on a refresh
// (the block's first step, then every refresh_interval); prefix: from the
// block to the end; dual: the block alone against every cached key;
// block_causal: from the first row whose K/V are not final (cached_upto)
// through the block. A model with shifted logits (Dream) reads a position's
// logits from the row before it, so a fed slice starts one row before the
// block: the block's first position is predicted from the last position
// before it (the prompt's, for the first block), whatever the cache mode.
// Shared by diffusion_decoder and resident_decoder, which must feed alike.
inline cache_feed plan_cache_feed(cache_mode mode, bool shifted_logits, std::int32_t length, std::int32_t block_begin,
                                  std::int32_t block_end, std::int32_t cached_upto, bool refresh) {
  const std::int32_t from = shifted_logits ? std::max(0, block_begin - 1) : block_begin;
  switch (mode) {
    case cache_mode::prefix: return refresh ? cache_feed{0, length} : cache_feed{from, length};
    case cache_mode::dual: return refresh ? cache_feed{0, length} : cache_feed{from, block_end, length};
    case cache_mode::block_causal: return cache_feed{std::min(cached_upto, from), block_end};
    default: return cache_feed{0, length};
  }
}

}  // namespace detail

template <class Backend, class Policy = builtin_policy>
class diffusion_decoder {
  static_assert(check_decoding_backend<Backend>());
  static_assert(is_decoding_policy<Policy>::value,
                "the policy is a unmask::decoding_policy<Schedule, Selection, Processor, Metric, Sampler>");

 public:
  using policy_type = Policy;

  diffusion_decoder(const transformer_model& model, diffusion_settings settings, Backend backend = {})
      : diffusion_decoder(model, settings,
                          policy_from_settings<Policy>(settings, std::int32_t(model.config().eos_token_id)),
                          std::move(backend)) {}
  diffusion_decoder(const transformer_model& model, diffusion_settings settings, Policy policy, Backend backend = {})
      : model_(model), settings_(settings), policy_(policy), forward_(model, std::move(backend)) {
    policy_.validate();
    detail::validate_policy_with(policy_, settings_, model.config());
    settings_.validate(policy_.selection.uses_schedule());
    if (settings_.eos_token_id < 0) {  // the model's eos, and with it every stop id of its config
      settings_.eos_token_id = std::int32_t(model.config().eos_token_id);
      if (settings_.stop_at_eos) settings_.stop.add_token_ids(model.config().stop_token_ids);
    }
  }
  diffusion_decoder(const transformer_model&&, diffusion_settings, Backend = {}) = delete;
  diffusion_decoder(const transformer_model&&, diffusion_settings, Policy, Backend = {}) = delete;

  const diffusion_settings& settings() const { return settings_; }
  const Policy& policy() const { return policy_; }
  Backend& backend() { return forward_.backend(); }

  // `callback` observes each step; `hooks` act on it (confidence mode;
  // unmask/decode/step_hooks.hpp).
  // A numeric_error (non-finite logits) names the weight or layer where NaN or
  // infinity first appeared (transformer_forward::locate_non_finite).
  decode_output generate(const std::vector<decode_request>& requests, const decode_callback& callback = {},
                         const step_hooks& hooks = {}) {
    return forward_.locating_non_finite([&] { return decode_requests(requests, callback, hooks); });
  }

 private:
  decode_output decode_requests(const std::vector<decode_request>& requests, const decode_callback& callback,
                                  const step_hooks& hooks) {
    const detail::decode_clock start;
    const transformer_config& c = model_.config();
    const block_layout& layout = settings_.layout;
    if (requests.empty()) throw argument_error("generate: no sequences");
    if (hooks.any() && settings_.mode != decode_mode::confidence)
      throw argument_error("step hooks act on confidence decoding, not on ancestral sampling");
    std::vector<state> states(requests.size());
    for (std::size_t s = 0; s < requests.size(); ++s) {
      states[s].id = requests[s].id;
      states[s].out = detail::start_canvas(requests[s], s, c, layout.gen_length);
    }
    decode_output result;
    if (settings_.cache.mode != cache_mode::none) {
      std::int64_t longest = 0;
      for (const state& st : states) longest = std::max<std::int64_t>(longest, std::int64_t(st.out.canvas.size()));
      const std::int64_t copies = settings_.cfg_scale > 0.0f ? 2 : 1;
      cache_.emplace(c, copies * std::int64_t(states.size()), longest);
    }
    for (std::size_t s = 0; s < states.size(); ++s) states[s].slot = std::int32_t(s);
    slot_count_ = std::int32_t(states.size());
    for (std::int32_t block = 0; block < layout.blocks(); ++block) {
      for (state& st : states) {
        st.block_begin = st.out.prompt_length + block * layout.block_length;
        st.block_end = st.block_begin + layout.block_length;
        st.initial_masks = st.done ? 0 : count_masks(st);
        st.block_step = 0;
        st.logits_valid = false;
      }
      if (settings_.mode == decode_mode::confidence)
        run_confidence_block(states, block, result, callback, hooks, start);
      else
        run_ancestral_block(states, block, result, callback, start);
      for (state& st : states)
        if (!st.done)
          st.done = detail::finish_block(st.out, st.block_begin, st.block_end, settings_.stop, settings_.stop_at_eos,
                                         settings_.eos_token_id);
    }
    cache_.reset();
    detail::collect_outputs(states, result, start);
    return result;
  }

 public:

 private:
  struct state {
    sequence_output out;
    std::uint32_t id = 0;
    std::uint32_t rng_step = 0;  // this sequence's own step counter
    std::int32_t slot = 0;       // K/V cache slot (the unconditional copy uses slot + count)
    std::int32_t cached_upto = 0;  // block_causal: positions whose cached K/V are final
    std::int32_t block_begin = 0, block_end = 0, initial_masks = 0, block_step = 0;
    bool done = false;
    bool stop_requested = false;  // by a step hook
    // ancestral mode: the last logits of the block's rows, reused while the canvas is unchanged
    bool logits_valid = false;
    std::vector<float> block_logits;   // (block_length, vocab)
    std::vector<float> token_prob;     // (block_length) psi for ReMDM conf
  };

  std::int32_t count_masks(const state& st) const {
    const std::int32_t mask = std::int32_t(model_.config().mask_token_id);
    return std::int32_t(std::count(st.out.canvas.begin() + st.block_begin, st.out.canvas.begin() + st.block_end, mask));
  }

  using feed = detail::cache_feed;

  feed plan_feed(const state& st, bool refresh) const {
    return detail::plan_cache_feed(settings_.cache.mode, model_.config().shifted_logits,
                                   std::int32_t(st.out.canvas.size()), st.block_begin, st.block_end, st.cached_upto,
                                   refresh);
  }

  // Runs the model on the given sequences, each feeding `feeds[b]`; leaves
  // logits of `rows` (block-relative positions) per sequence in logits_,
  // (sum of rows, vocab) in the backend's memory, with guidance applied, and
  // returns the number of rows.
  std::int64_t run_model(std::vector<state*>& batch, const std::vector<feed>& feeds,
                         const std::vector<std::vector<std::int32_t>>& rows, decode_output& result) {
    const transformer_config& c = model_.config();
    const std::int64_t vocab = c.vocab_size;
    const bool guided = settings_.cfg_scale > 0.0f, cached = cache_.has_value();
    const std::int64_t n = std::int64_t(batch.size()), copies = guided ? 2 : 1;
    std::int64_t width = 0;
    for (const feed& f : feeds) width = std::max<std::int64_t>(width, f.end - f.begin);
    tokens_.assign(std::size_t(copies * n * width), 0);
    lengths_.resize(std::size_t(copies * n));
    offsets_.resize(std::size_t(copies * n));
    slots_.resize(std::size_t(copies * n));
    kv_lengths_.resize(std::size_t(copies * n));
    origins_.resize(std::size_t(copies * n));
    selected_.clear();
    for (std::int64_t copy = 0; copy < copies; ++copy) {
      for (std::int64_t b = 0; b < n; ++b) {
        const state& st = *batch[std::size_t(b)];
        const feed& f = feeds[std::size_t(b)];
        const std::int64_t slot = copy * n + b;
        std::int32_t* dst = tokens_.data() + slot * width;
        std::copy(st.out.canvas.begin() + f.begin, st.out.canvas.begin() + f.end, dst);
        if (copy == 1)  // unconditional: the prompt replaced by masks
          for (std::int32_t p = f.begin; p < std::min(f.end, st.out.prompt_length); ++p)
            dst[p - f.begin] = std::int32_t(c.mask_token_id);
        lengths_[std::size_t(slot)] = f.end - f.begin;
        offsets_[std::size_t(slot)] = f.begin;
        slots_[std::size_t(slot)] = st.slot + std::int32_t(copy) * slot_count_;
        kv_lengths_[std::size_t(slot)] = f.kv_length < 0 ? f.end : f.kv_length;
        origins_[std::size_t(slot)] = st.out.prompt_length;
        for (std::int32_t r : rows[std::size_t(b)])
          selected_.push_back(std::int32_t(slot * width + st.block_begin + r - f.begin));
      }
    }
    const std::int64_t count = std::int64_t(selected_.size());
    logits_.reserve_at_least(std::size_t(count * vocab));
    token_batch in{tokens_.data(), copies * n, width, lengths_.data()};
    in.mask_origins = origins_.data();
    if (cached) {
      in.offsets = offsets_.data();
      in.cache_slots = slots_.data();
      in.kv_lengths = kv_lengths_.data();
    }
    forward_(in, settings_.attention, logits_.data(), cached ? &*cache_ : nullptr, {selected_.data(), count});
    ++result.forwards;
    for (state* st : batch) ++st->out.forwards;
    const std::int64_t half = guided ? count / 2 : count;
    if (guided) forward_.backend().apply_guidance(logits_.data(), half, vocab, settings_.cfg_scale);
    return half;
  }

  // The logits hook: each sequence's candidate rows on the host, edited, copied back.
  void run_logits_hook(const step_hooks& hooks, std::vector<state*>& batch,
                       const std::vector<std::vector<std::int32_t>>& rows, std::int64_t count,
                       const std::vector<state>& states, std::int32_t block) {
    const std::int64_t vocab = model_.config().vocab_size;
    host_logits_.resize(std::size_t(count * vocab));
    Backend& backend = forward_.backend();
    backend.download(logits_.data(), host_logits_.size(), host_logits_.data());
    if (!hooks.logits) return;
    std::int64_t row = 0;
    std::vector<std::int32_t> positions;
    for (std::size_t b = 0; b < batch.size(); ++b) {
      state& st = *batch[b];
      positions.clear();
      for (std::int32_t r : rows[b]) positions.push_back(st.block_begin + r);
      step_logits e{std::size_t(&st - states.data()), block,  st.block_step, positions.data(),
                    std::int32_t(positions.size()),   host_logits_.data() + row * vocab, vocab, &st.out.canvas};
      hooks.logits(e);
      row += std::int64_t(positions.size());
    }
    backend.upload(host_logits_.data(), host_logits_.size(), logits_);
  }

  // The candidates hook for one sequence: applies its actions and edits,
  // leaving in positions / tokens / confidences the candidates the rule
  // decides on; forced commits are written and appended to `committed`.
  // Returns the number forced.
  std::int32_t run_candidates_hook(const step_hooks& hooks, state& st, std::size_t index, std::int32_t block,
                                   std::vector<std::int32_t>& positions, std::vector<std::int32_t>& tokens,
                                   std::vector<float>& confidences, const float* logits,
                                   std::vector<std::int32_t>& committed) {
    const std::int32_t mask = std::int32_t(model_.config().mask_token_id);
    const std::int32_t m = std::int32_t(positions.size());
    actions_.assign(std::size_t(m), candidate_action::automatic);
    const std::size_t length = st.out.canvas.size();
    step_candidates e{index,         block,       st.block_step,  positions.data(), tokens.data(), confidences.data(),
                      actions_.data(), m,         &st.out.canvas, st.out.prompt_length, st.block_begin, st.block_end,
                      logits, model_.config().vocab_size};
    hooks.candidates(e);
    if (st.out.canvas.size() != length) throw argument_error("a step hook changed the canvas length");
    for (std::int32_t p = st.out.prompt_length; p < st.block_begin; ++p)
      if (st.out.canvas[std::size_t(p)] == mask)
        throw argument_error(concat("a step hook left a mask at position ", p, ", before the current block (",
                                    st.block_begin, "), where no step decodes it"));
    const std::int32_t vocab = std::int32_t(model_.config().vocab_size);
    std::int32_t forced = 0, kept = 0;
    for (std::int32_t i = 0; i < m; ++i) {
      const std::int32_t position = positions[std::size_t(i)];
      if (st.out.canvas[std::size_t(position)] != mask) continue;  // the hook filled it
      const candidate_action a = actions_[std::size_t(i)];
      if (a == candidate_action::veto) continue;
      if (a == candidate_action::force) {
        const std::int32_t token = tokens[std::size_t(i)];
        if (token < 0 || token >= vocab || token == mask)
          throw argument_error(concat("a step hook forced token ", token, " at position ", position,
                                      " (not a vocabulary token other than the mask)"));
        st.out.canvas[std::size_t(position)] = token;
        committed.push_back(position);
        ++forced;
        continue;
      }
      positions[std::size_t(kept)] = position;
      tokens[std::size_t(kept)] = tokens[std::size_t(i)];
      confidences[std::size_t(kept)] = confidences[std::size_t(i)];
      ++kept;
    }
    positions.resize(std::size_t(kept));
    tokens.resize(std::size_t(kept));
    confidences.resize(std::size_t(kept));
    if (e.stop) st.stop_requested = true;
    return forced;
  }

  void run_confidence_block(std::vector<state>& states, std::int32_t block, decode_output& result,
                            const decode_callback& callback, const step_hooks& hooks,
                            const detail::decode_clock& clock) {
    const transformer_config& c = model_.config();
    const std::int32_t mask = std::int32_t(c.mask_token_id), steps = settings_.layout.steps_per_block();
    const std::int64_t vocab = c.vocab_size;
    const counter_rng rng{settings_.seed};
    std::vector<state*> batch;
    std::vector<std::vector<std::int32_t>> rows;
    std::vector<feed> feeds;
    std::vector<draw_site> sites;
    std::vector<token_choice> choices;
    std::vector<std::int32_t> positions, tokens;
    std::vector<float> confidences;
    const policy_selection_options<Policy> options{policy_.selection, policy_.schedule, settings_.confidence, rng};
    const std::int32_t step_limit = steps + settings_.layout.block_length;
    std::vector<std::int32_t> committed;
    for (;;) {
      if (detail::interrupt(states, settings_.stop, clock)) return;
      batch.clear();
      rows.clear();
      feeds.clear();
      for (state& st : states) {
        if (st.done || count_masks(st) == 0) continue;
        batch.push_back(&st);
        rows.emplace_back();
        for (std::int32_t p = st.block_begin; p < st.block_end; ++p)
          if (st.out.canvas[std::size_t(p)] == mask) rows.back().push_back(p - st.block_begin);
        const std::int32_t interval = settings_.cache.refresh_interval;
        const bool refresh = st.block_step == 0 || (interval > 0 && st.block_step % interval == 0);
        feeds.push_back(plan_feed(st, refresh));
      }
      if (batch.empty()) return;
      const std::int64_t count = run_model(batch, feeds, rows, result);
      if (settings_.cache.mode == cache_mode::block_causal)
        for (state* st : batch) st->cached_upto = st->block_begin;  // earlier rows now hold final K/V
      sites.clear();
      for (std::size_t b = 0; b < batch.size(); ++b)
        for (std::int32_t r : rows[b])
          sites.push_back({batch[b]->id, batch[b]->rng_step, std::uint32_t(batch[b]->block_begin + r)});
      choices.resize(std::size_t(count));
      if (hooks.logits || hooks.with_logits) run_logits_hook(hooks, batch, rows, count, states, block);
      choose_tokens_with(forward_.backend(), logits_.data(), count, vocab, settings_.sampling, settings_.confidence,
                         mask, rng, sites.data(), choices.data(),
                         make_token_rules(policy_.processor, policy_.metric, policy_.sampler));
      std::int64_t row = 0;
      for (std::size_t b = 0; b < batch.size(); ++b) {
        state& st = *batch[b];
        positions.clear(), tokens.clear(), confidences.clear();
        for (std::int32_t r : rows[b]) {
          positions.push_back(st.block_begin + r);
          tokens.push_back(choices[std::size_t(row)].token);
          confidences.push_back(choices[std::size_t(row)].confidence);
          ++row;
        }
        committed.clear();
        const std::int32_t masks_before = std::int32_t(positions.size());
        std::int32_t take = 0;
        if (hooks.candidates)
          take += run_candidates_hook(hooks, st, std::size_t(&st - states.data()), block, positions, tokens,
                                      confidences,
                                      hooks.with_logits ? host_logits_.data() + (row - masks_before) * vocab : nullptr,
                                      committed);
        const selection_sequence seq{0, std::int32_t(positions.size()), 0, st.id, st.rng_step, st.block_step,
                                     steps, st.initial_masks};
        take += commit_selection(seq, positions.data(), tokens.data(), confidences.data(), options,
                                 st.out.canvas.data(), &committed);
        const bool progress = hooks.candidates ? count_masks(st) < masks_before : take > 0;
        if (!progress && st.block_step + 1 >= step_limit)
          throw argument_error(concat("generate: the decoding policy committed nothing to block ", block,
                                      " of sequence ", &st - states.data(), " for ", step_limit,
                                      " steps (a selection rule must commit at least one candidate once the schedule "
                                      "has run out)"));
        st.out.committed += take;
        ++st.block_step;
        ++st.rng_step;
        if (callback) {
          std::sort(committed.begin(), committed.end());
          callback({std::size_t(&st - states.data()), block, st.block_step - 1, &st.out.canvas, &committed});
        }
        if (st.stop_requested) st.done = true, st.out.stop = stop_reason::hook;
      }
    }
  }

  void run_ancestral_block(std::vector<state>& states, std::int32_t block, decode_output& result,
                           const decode_callback& callback, const detail::decode_clock& clock) {
    const transformer_config& c = model_.config();
    const std::int32_t mask = std::int32_t(c.mask_token_id), steps = settings_.layout.steps_per_block();
    const std::int32_t length = settings_.layout.block_length;
    const std::int64_t vocab = c.vocab_size;
    const counter_rng rng{settings_.seed};
    const remdm_settings& remdm = settings_.remasking;
    std::vector<state*> batch;
    std::vector<std::vector<std::int32_t>> rows;
    std::vector<std::int32_t> committed;
    std::vector<std::int32_t> all_rows(static_cast<std::size_t>(length));
    std::iota(all_rows.begin(), all_rows.end(), 0);
    std::vector<feed> feeds;
    // Fills st.block_logits for every sequence whose canvas changed.
    auto refresh = [&](std::vector<state*>& active) {
      batch.clear();
      rows.clear();
      feeds.clear();
      for (state* st : active)
        if (!st->logits_valid) batch.push_back(st), rows.push_back(all_rows), feeds.push_back(plan_feed(*st, true));
      if (batch.empty()) return;
      run_model(batch, feeds, rows, result);
      for (std::size_t b = 0; b < batch.size(); ++b) {
        state& st = *batch[b];
        st.block_logits.resize(std::size_t(length * vocab));
        forward_.backend().download(logits_.data() + std::int64_t(b) * length * vocab, st.block_logits.size(),
                                    st.block_logits.data());
        st.logits_valid = true;
      }
    };
    std::vector<state*> active;
    for (std::int32_t step = 0; step <= steps; ++step) {
      if (detail::interrupt(states, settings_.stop, clock)) return;
      const bool final_cleanup = step == steps;
      active.clear();
      for (state& st : states)
        if (!st.done && (count_masks(st) > 0 || (!final_cleanup && remdm.strategy != remask_strategy::none)))
          active.push_back(&st);
      if (active.empty()) return;
      refresh(active);
      const float t = settings_.noise.time(step, steps), s = settings_.noise.time(step + 1, steps);
      const bool loop = remdm.strategy == remask_strategy::loop;
      const float alpha_t = loop ? remdm.loop_alpha(t) : settings_.noise.alpha(t);
      const float alpha_s = loop ? remdm.loop_alpha(s) : settings_.noise.alpha(s);
      const float sigma = remdm.sigma(t, alpha_t, alpha_s);
      for (state* stp : active) {
        state& st = *stp;
        committed.clear();
        bool changed = false;
        // ReMDM conf: per-token rates from softmax(-psi) over decoded positions.
        float conf_norm = 0.0f, conf_max = -INFINITY;
        std::int32_t decoded = 0;
        if (remdm.strategy == remask_strategy::conf) {
          st.token_prob.assign(std::size_t(length), 0.0f);
          for (std::int32_t r = 0; r < length; ++r) {
            const std::int32_t tok = st.out.canvas[std::size_t(st.block_begin + r)];
            if (tok == mask) continue;
            vocab_stats stats;
            const float* row = st.block_logits.data() + std::int64_t(r) * vocab;
            for (std::int64_t v = 0; v < vocab; ++v) stats.push(row[v], std::int32_t(v));
            st.token_prob[std::size_t(r)] = stats.probability(row[tok]);
            conf_max = std::max(conf_max, -st.token_prob[std::size_t(r)]);
            ++decoded;
          }
          for (std::int32_t r = 0; r < length; ++r)
            if (st.out.canvas[std::size_t(st.block_begin + r)] != mask)
              conf_norm += std::exp(-st.token_prob[std::size_t(r)] - conf_max);
        }
        const float masked_sigma =
            remdm.strategy == remask_strategy::conf ? (decoded ? sigma / float(decoded) : 0.0f) : sigma;
        const float reveal = final_cleanup ? 1.0f
                             : remdm.strategy == remask_strategy::none
                                 ? settings_.noise.reveal_probability(step, steps)
                                 : remdm_reveal_probability(alpha_t, alpha_s, masked_sigma);
        for (std::int32_t r = 0; r < length; ++r) {
          const std::uint32_t position = std::uint32_t(st.block_begin + r);
          std::int32_t& tok = st.out.canvas[position];
          if (tok == mask) {
            if (!final_cleanup && rng.uniform(random_purpose::reveal, st.id, st.rng_step, position, 0) >= reveal) continue;
            sampling_settings sampling = settings_.sampling;
            if (final_cleanup) sampling.temperature = 0.0f;  // noise removal: argmax
            const token_choice choice = choose_token(st.block_logits.data() + std::int64_t(r) * vocab, vocab, sampling,
                                                     confidence_metric::max_prob, mask, rng,
                                                     {st.id, st.rng_step, position},
                                                     make_token_rules(policy_.processor, policy_.metric,
                                                                      policy_.sampler));
            tok = choice.token;
            committed.push_back(std::int32_t(position));
            ++st.out.committed;
            changed = true;
          } else if (!final_cleanup && sigma > 0.0f && std::int32_t(position) >= st.out.prompt_length) {
            const float rate = remdm.strategy == remask_strategy::conf
                                   ? std::exp(-st.token_prob[std::size_t(r)] - conf_max) / conf_norm * sigma
                                   : sigma;
            if (rng.uniform(random_purpose::remask, st.id, st.rng_step, position, 0) < rate) {
              tok = mask;
              changed = true;
            }
          }
        }
        if (changed) st.logits_valid = false;
        ++st.rng_step;
        if (callback) callback({std::size_t(&st - states.data()), block, step, &st.out.canvas, &committed});
      }
    }
  }

  const transformer_model& model_;
  diffusion_settings settings_;
  Policy policy_;
  transformer_forward<Backend> forward_;
  std::vector<std::int32_t> tokens_, lengths_, offsets_, slots_, kv_lengths_, origins_, selected_;
  std::vector<float> host_logits_;             // the candidate rows' logits, for the step hooks
  std::vector<candidate_action> actions_;
  typename Backend::template buffer<float> logits_;  // (rows, vocab) of the last model call
  std::optional<kv_cache<Backend>> cache_;
  std::int32_t slot_count_ = 0;
};

}  // namespace unmask
