// unmask/decode/resident_decoder.hpp
//
// Confidence decoding with every step in the backend's memory: the GPU's
// fast path. diffusion_decoder brings each step's proposed tokens back to the
// host, commits there and uploads the canvas for the next forward; here the
// canvas lives in the forward pass's staged token buffer and one step is
//   forward (logits of each sequence's L block rows)
//   -> sites -> token choice for all L rows (vocabulary pass)
//   -> candidates (the masked rows, compacted on the device)
//   -> selection (commits into the canvas in place) -> advance (step counters)
// with no transfer at all, so on the GPU the whole step is captured once as
// a CUDA graph and replayed (cuda_backend::run_step). The host touches the
// device once per block: it stages the canvases at the block's start and
// reads them back at its end (for the end-of-sequence check and the output).
// For schedule-driven rules (top-k with a count schedule, Dream's alg_temp)
// the host knows how many steps a block needs from the schedule alone; for
// threshold, factor and entropy-bounded rules it reads one integer per
// sequence after each step to learn whether the block is full.
// The result equals diffusion_decoder's for the same settings: the same
// policy functions, the same random keys, the same per-sequence step counts,
// NFE and committed totals (the CPU backend makes that exact; the test
// checks it token for token). Choosing tokens for the unmasked rows too
// costs L rows of vocabulary pass per sequence and step instead of the
// masked ones; it keeps every shape fixed for the graph.
// Supported: confidence mode without K/V cache and without guidance, any
// selection rule, count schedule, confidence metric, sampling and attention
// mask, and the stop criteria (the time limit and cancellation are checked
// between blocks); no per-step callback. Other settings throw argument_error naming
// what to use instead (diffusion_decoder runs them all).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <vector>

#include "unmask/core/error.hpp"
#include "unmask/decode/diffusion_decoder.hpp"
#include "unmask/decode/resident_state.hpp"

namespace unmask {

template <class Backend, class Policy = builtin_policy>
class resident_decoder {
  static_assert(check_resident_backend<Backend>());
  static_assert(is_decoding_policy<Policy>::value,
                "the policy is a unmask::decoding_policy<Schedule, Selection, Processor, Metric, Sampler>");

 public:
  template <class T>
  using buffer = typename Backend::template buffer<T>;
  using policy_type = Policy;

  resident_decoder(const transformer_model& model, diffusion_settings settings, Backend backend = {})
      : resident_decoder(model, settings,
                         policy_from_settings<Policy>(settings, std::int32_t(model.config().eos_token_id)),
                         std::move(backend)) {}
  resident_decoder(const transformer_model&&, diffusion_settings, Backend = {}) = delete;
  resident_decoder(const transformer_model&&, diffusion_settings, Policy, Backend = {}) = delete;
  resident_decoder(const transformer_model& model, diffusion_settings settings, Policy policy, Backend backend = {})
      : model_(model), settings_(settings), policy_(policy), forward_(model, std::move(backend)) {
    policy_.validate();
    detail::validate_policy_with(policy_, settings_, model.config());
    settings_.validate(policy_.selection.uses_schedule());
    if (settings_.mode != decode_mode::confidence)
      throw argument_error("resident decoding runs confidence decoding; use diffusion_decoder for ancestral sampling");
    if (settings_.cache.mode != cache_mode::none)
      throw argument_error("resident decoding runs without a K/V cache; use diffusion_decoder for cached decoding");
    if (settings_.cfg_scale > 0.0f)
      throw argument_error("resident decoding runs without guidance; use diffusion_decoder for cfg_scale > 0");
    if (settings_.eos_token_id < 0) {  // the model's eos, and with it every stop id of its config
      settings_.eos_token_id = std::int32_t(model.config().eos_token_id);
      if (settings_.stop_at_eos) settings_.stop.add_token_ids(model.config().stop_token_ids);
    }
  }

  const diffusion_settings& settings() const { return settings_; }
  const Policy& policy() const { return policy_; }
  Backend& backend() { return forward_.backend(); }

  // A numeric_error (non-finite logits) names the weight or layer where NaN or
  // infinity first appeared (transformer_forward::locate_non_finite).
  decode_output generate(const std::vector<decode_request>& requests) {
    return forward_.locating_non_finite([&] { return decode_requests(requests); });
  }

 private:
  decode_output decode_requests(const std::vector<decode_request>& requests) {
    const detail::decode_clock start;
    const transformer_config& c = model_.config();
    const block_layout& layout = settings_.layout;
    const std::int32_t length = layout.block_length;
    if (requests.empty()) throw argument_error("generate: no sequences");
    std::vector<sequence_state> states(requests.size());
    for (std::size_t s = 0; s < requests.size(); ++s) {
      states[s].id = requests[s].id;
      states[s].out = detail::start_canvas(requests[s], s, c, layout.gen_length);
    }
    decode_output result;
    for (std::int32_t block = 0; block < layout.blocks(); ++block) {
      if (detail::interrupt(states, settings_.stop, start)) break;  // checked between blocks
      std::vector<sequence_state*> active;
      for (sequence_state& st : states)
        if (!st.done) active.push_back(&st);
      if (active.empty()) break;
      result.forwards += run_block(active, block);
      for (sequence_state* st : active) {
        const std::int64_t begin = st->out.prompt_length + std::int64_t(block) * length;
        st->done = detail::finish_block(st->out, begin, begin + length, settings_.stop, settings_.stop_at_eos,
                                        settings_.eos_token_id);
      }
    }
    detail::collect_outputs(states, result, start);
    return result;
  }

 public:

 private:
  struct sequence_state {
    sequence_output out;
    std::uint32_t id = 0;
    std::uint32_t rng_step = 0;
    bool done = false;
  };

  // Decodes one block of every active sequence; returns the model calls.
  std::int64_t run_block(std::vector<sequence_state*>& active, std::int32_t block) {
    const transformer_config& c = model_.config();
    const std::int32_t mask = std::int32_t(c.mask_token_id), length = settings_.layout.block_length;
    const std::int32_t steps = settings_.layout.steps_per_block();
    const std::int64_t n = std::int64_t(active.size()), vocab = c.vocab_size;
    std::int64_t width = 0;
    for (const sequence_state* st : active) width = std::max<std::int64_t>(width, std::int64_t(st->out.canvas.size()));
    // Stage the canvases (padded to width) and the block rows whose logits are wanted.
    host_tokens_.assign(std::size_t(n * width), 0);
    host_lengths_.resize(std::size_t(n));
    host_origins_.resize(std::size_t(n));
    host_rows_.clear();
    host_sequences_.resize(std::size_t(n));
    std::vector<std::int32_t> masks(static_cast<std::size_t>(n));
    for (std::int64_t s = 0; s < n; ++s) {
      const sequence_state& st = *active[std::size_t(s)];
      std::copy(st.out.canvas.begin(), st.out.canvas.end(), host_tokens_.begin() + s * width);
      host_lengths_[std::size_t(s)] = std::int32_t(st.out.canvas.size());
      host_origins_[std::size_t(s)] = st.out.prompt_length;  // block-causal blocks count from the prompt's end
      const std::int32_t begin = st.out.prompt_length + block * length;
      for (std::int32_t r = 0; r < length; ++r) host_rows_.push_back(std::int32_t(s * width + begin + r));
      masks[std::size_t(s)] = std::int32_t(
          std::count(st.out.canvas.begin() + begin, st.out.canvas.begin() + begin + length, mask));
      resident_sequence& seq = host_sequences_[std::size_t(s)];
      seq = resident_sequence{};
      seq.canvas_offset = s * width;
      seq.block_begin = begin;
      seq.id = st.id;
      seq.rng_step = st.rng_step;
      seq.initial_masks = masks[std::size_t(s)];
    }
    const std::int64_t rows = n * length;
    token_batch in{host_tokens_.data(), n, width, host_lengths_.data()};
    in.mask_origins = host_origins_.data();
    forward_.stage(in, nullptr, {host_rows_.data(), rows});
    Backend& backend = forward_.backend();
    backend.upload(host_sequences_.data(), host_sequences_.size(), sequences_);
    logits_.reserve_at_least(std::size_t(rows * vocab));
    sites_.reserve_at_least(std::size_t(rows));
    proposed_.reserve_at_least(std::size_t(rows));
    confidence_.reserve_at_least(std::size_t(rows));
    positions_.reserve_at_least(std::size_t(rows));
    candidate_tokens_.reserve_at_least(std::size_t(rows));
    candidate_confidence_.reserve_at_least(std::size_t(rows));
    selection_.reserve_at_least(std::size_t(n));
    committed_.reserve_at_least(std::size_t(n));
    remaining_.reserve_at_least(std::size_t(n));
    const policy_selection_options<Policy> options{policy_.selection, policy_.schedule, settings_.confidence,
                                                   counter_rng{settings_.seed}};
    std::int32_t* canvas = forward_.staged_tokens();
    auto step = [&] {
      forward_.run_staged(settings_.attention, logits_.data());
      backend.resident_sites(sequences_.data(), n, length, sites_.data());
      propose_tokens_with(backend, logits_.data(), rows, vocab, settings_.sampling, settings_.confidence, mask,
                          options.rng, sites_.data(), proposed_.data(), confidence_.data(),
                          make_token_rules(policy_.processor, policy_.metric, policy_.sampler));
      backend.resident_candidates(sequences_.data(), n, length, steps, canvas, mask, proposed_.data(),
                                  confidence_.data(), positions_.data(), candidate_tokens_.data(),
                                  candidate_confidence_.data(), selection_.data());
      backend.select_and_commit(selection_.data(), n, length, positions_.data(), candidate_tokens_.data(),
                                candidate_confidence_.data(), options, canvas, committed_.data());
      backend.resident_advance(sequences_.data(), selection_.data(), committed_.data(), n, remaining_.data());
    };
    const std::uint64_t key = (std::uint64_t(n) << 40) ^ (std::uint64_t(width) << 20) ^ std::uint64_t(length);
    std::int64_t forwards = 0;
    if (policy_.selection.uses_schedule()) {
      // Top-k commits exactly min(scheduled, masks): the host plays the counts forward.
      std::vector<std::int32_t> left = masks;
      for (std::int32_t t = 0; std::any_of(left.begin(), left.end(), [](std::int32_t m) { return m > 0; }); ++t) {
        if (t > steps + length)
          throw argument_error(concat("the count schedule commits nothing after ", t, " steps of a block"));
        for (std::size_t s = 0; s < left.size(); ++s) {
          const std::int32_t scheduled = policy_.schedule.count(t, steps, masks[s], left[s]);
          if (left[s] > 0) left[s] -= std::min(left[s], std::max(0, scheduled));
        }
        backend.run_step(step, instance_, key);
        ++forwards;
      }
    } else {
      std::vector<std::int32_t> left(static_cast<std::size_t>(n));
      do {
        backend.run_step(step, instance_, key);
        ++forwards;
        backend.download(remaining_.data(), left.size(), left.data());
      } while (std::any_of(left.begin(), left.end(), [](std::int32_t m) { return m > 0; }) &&
               forwards < steps + length);
      if (std::any_of(left.begin(), left.end(), [](std::int32_t m) { return m > 0; }))
        throw argument_error(concat("resident decoding: the decoding policy left masks in block ", block, " after ",
                                    forwards, " steps (a selection rule must commit at least one candidate)"));
    }
    // Read the block back.
    backend.download(canvas, host_tokens_.size(), host_tokens_.data());
    backend.download(sequences_.data(), host_sequences_.size(), host_sequences_.data());
    for (std::int64_t s = 0; s < n; ++s) {
      sequence_state& st = *active[std::size_t(s)];
      std::copy(host_tokens_.begin() + s * width, host_tokens_.begin() + s * width + std::int64_t(st.out.canvas.size()),
                st.out.canvas.begin());
      const resident_sequence& seq = host_sequences_[std::size_t(s)];
      if (seq.failed)
        throw device_error(concat("resident decoding: sequence ", s, " (id ", seq.id, ") had a masked row with no "
                                  "finite logit in block ", block, " (NaN or -inf everywhere)"),
                           0);
      st.rng_step = seq.rng_step;
      st.out.forwards += seq.block_step;
      st.out.committed += seq.committed;
    }
    return forwards;
  }

  // A number no other decoder of this process has: the backend keys its
  // captured step by it (an address could be reused by a later decoder).
  static std::uint64_t next_instance() {
    static std::atomic<std::uint64_t> counter{0};
    return ++counter;
  }

  const transformer_model& model_;
  diffusion_settings settings_;
  Policy policy_;
  transformer_forward<Backend> forward_;
  const std::uint64_t instance_ = next_instance();
  std::vector<std::int32_t> host_tokens_, host_lengths_, host_origins_, host_rows_;
  std::vector<resident_sequence> host_sequences_;
  buffer<resident_sequence> sequences_;
  buffer<float> logits_, confidence_, candidate_confidence_;
  buffer<draw_site> sites_;
  buffer<std::int32_t> proposed_, positions_, candidate_tokens_, committed_, remaining_;
  buffer<selection_sequence> selection_;
};

}  // namespace unmask
