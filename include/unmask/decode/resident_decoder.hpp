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
// With a K/V cache (prefix, dual, block_causal) a block has two kinds of
// step, fed exactly as diffusion_decoder feeds them (detail::plan_cache_feed):
// the first step (and every refresh) runs the whole canvas and writes every
// row's K/V (block_causal: from the first row whose K/V are not final), the
// others run only the cached slice against the cache. The canvas then lives
// in a buffer of its own; each kind of step is staged once per block in a
// forward object of its own, gathers its rows from the canvas on the device
// and is captured as a graph of its own, so a cached block is two graphs
// replayed in turn and still no transfer per step. Sequences whose block is
// full keep being fed (committing nothing) until every sequence's is: their
// logits are unused and their cache rows are rewritten at the next block's
// first step, so the output stays diffusion_decoder's.
// Supported: confidence mode without guidance, with or without a cache, any
// selection rule, count schedule, confidence metric, sampling and attention
// mask, and the stop criteria (the time limit and cancellation are checked
// between blocks); no per-step callback. Other settings throw argument_error
// naming what to use instead (diffusion_decoder runs them all).
#pragma once

#include <algorithm>
#include <chrono>
#include <optional>
#include <cstdint>
#include <vector>

#include "unmask/core/error.hpp"
#include "unmask/core/step_key.hpp"
#include "unmask/decode/diffusion_decoder.hpp"
#include "unmask/decode/resident_state.hpp"
#include "unmask/model/kv_cache.hpp"

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
    if (settings_.cache.mode != cache_mode::none) block_forward_.emplace(model, forward_.backend());
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
    std::int64_t longest = 0;
    for (std::size_t s = 0; s < requests.size(); ++s) {
      states[s].id = requests[s].id;
      states[s].slot = std::int32_t(s);
      states[s].out = detail::start_canvas(requests[s], s, c, layout.gen_length);
      longest = std::max<std::int64_t>(longest, std::int64_t(states[s].out.canvas.size()));
    }
    // A cache kept from an earlier call is reused when it is large enough:
    // every slot's keys are written (the block's first step) before they are read.
    if (settings_.cache.mode != cache_mode::none &&
        (!cache_ || cache_->batch() < std::int64_t(states.size()) || cache_->capacity() < longest)) {
      cache_.reset();
      cache_.emplace(c, std::int64_t(states.size()), longest);
      ++generation_;
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
    std::int32_t slot = 0;         // K/V cache slot: the request's index
    std::int32_t cached_upto = 0;  // block_causal: positions whose cached K/V are final
    bool done = false;
  };

  // One kind of step of a block: the rows each sequence feeds (a whole
  // canvas, or a cached step's slice), staged into its own forward object so
  // that each kind keeps its buffers, and captured as its own graph.
  struct phase {
    std::vector<detail::cache_feed> feeds;  // per sequence
    std::int64_t width = 0;                 // the longest feed
    buffer<std::int32_t> gather;            // staged row -> canvas index (the canvas's last entry is 0: padding)
    std::int64_t staged_rows = 0;
  };

  // Stages `p` for the active sequences in forward `f`: the fed slices of the
  // host canvases, positions and cache extents, the block rows' logits, and
  // the canvas indices each step gathers the slice from.
  void stage_phase(transformer_forward<Backend>& f, phase& p, const std::vector<sequence_state*>& active,
                   std::int32_t block, std::int64_t canvas_width) {
    const std::int32_t length = settings_.layout.block_length;
    const std::int64_t n = std::int64_t(active.size());
    p.width = 0;
    for (const detail::cache_feed& feed : p.feeds) p.width = std::max<std::int64_t>(p.width, feed.end - feed.begin);
    p.staged_rows = n * p.width;
    host_tokens_.assign(std::size_t(p.staged_rows), 0);
    host_gather_.assign(std::size_t(p.staged_rows), std::int32_t(n * canvas_width));  // padding reads the 0
    host_lengths_.resize(std::size_t(n));
    host_offsets_.resize(std::size_t(n));
    host_kv_lengths_.resize(std::size_t(n));
    host_slots_.resize(std::size_t(n));
    host_origins_.resize(std::size_t(n));
    host_rows_.clear();
    for (std::int64_t s = 0; s < n; ++s) {
      const sequence_state& st = *active[std::size_t(s)];
      const detail::cache_feed& feed = p.feeds[std::size_t(s)];
      for (std::int32_t at = feed.begin; at < feed.end; ++at) {
        host_tokens_[std::size_t(s * p.width + at - feed.begin)] = st.out.canvas[std::size_t(at)];
        host_gather_[std::size_t(s * p.width + at - feed.begin)] = std::int32_t(s * canvas_width + at);
      }
      host_lengths_[std::size_t(s)] = feed.end - feed.begin;
      host_offsets_[std::size_t(s)] = feed.begin;
      host_kv_lengths_[std::size_t(s)] = feed.kv_length < 0 ? feed.end : feed.kv_length;
      host_slots_[std::size_t(s)] = st.slot;  // the request's own: block_causal keeps K/V across blocks
      host_origins_[std::size_t(s)] = st.out.prompt_length;  // block-causal blocks count from the prompt's end
      const std::int32_t begin = st.out.prompt_length + block * length;
      for (std::int32_t r = 0; r < length; ++r)
        host_rows_.push_back(std::int32_t(s * p.width + begin + r - feed.begin));
    }
    token_batch in{host_tokens_.data(), n, p.width, host_lengths_.data()};
    in.mask_origins = host_origins_.data();
    const bool cached = cache_.has_value();
    if (cached) {
      in.offsets = host_offsets_.data();
      in.cache_slots = host_slots_.data();
      in.kv_lengths = host_kv_lengths_.data();
    }
    f.stage(in, cached ? &*cache_ : nullptr, {host_rows_.data(), std::int64_t(host_rows_.size())});
    f.backend().upload(host_gather_.data(), host_gather_.size(), p.gather);
  }

  // The feeds of step t of the block under the cache mode (the same plan as
  // diffusion_decoder's: detail::plan_cache_feed).
  std::vector<detail::cache_feed> plan_feeds(const std::vector<sequence_state*>& active, std::int32_t block,
                                             bool refresh) const {
    const std::int32_t length = settings_.layout.block_length;
    std::vector<detail::cache_feed> feeds;
    for (const sequence_state* st : active) {
      const std::int32_t begin = st->out.prompt_length + block * length;
      feeds.push_back(detail::plan_cache_feed(settings_.cache.mode, model_.config().shifted_logits,
                                              std::int32_t(st->out.canvas.size()), begin, begin + length,
                                              st->cached_upto, refresh));
    }
    return feeds;
  }

  // Decodes one block of every active sequence; returns the model calls.
  // Without a cache every step is one kind (the whole canvas); with one, the
  // block's first step and each refresh feed the whole canvas (block_causal:
  // from the first row whose K/V are not final) and the other steps feed the
  // cached slice, each kind staged once per block and replayed as its own graph.
  std::int64_t run_block(std::vector<sequence_state*>& active, std::int32_t block) {
    const transformer_config& c = model_.config();
    const std::int32_t mask = std::int32_t(c.mask_token_id), length = settings_.layout.block_length;
    const std::int32_t steps = settings_.layout.steps_per_block();
    const std::int64_t n = std::int64_t(active.size()), vocab = c.vocab_size;
    std::int64_t width = 0;
    for (const sequence_state* st : active) width = std::max<std::int64_t>(width, std::int64_t(st->out.canvas.size()));
    const bool cached = cache_.has_value();
    // The canvases (padded to width, then one 0 that padding rows gather) and the block's sequences.
    host_canvas_.assign(std::size_t(n * width + 1), 0);
    host_sequences_.resize(std::size_t(n));
    std::vector<std::int32_t> masks(static_cast<std::size_t>(n));
    for (std::int64_t s = 0; s < n; ++s) {
      const sequence_state& st = *active[std::size_t(s)];
      std::copy(st.out.canvas.begin(), st.out.canvas.end(), host_canvas_.begin() + s * width);
      const std::int32_t begin = st.out.prompt_length + block * length;
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
    Backend& backend = forward_.backend();
    const std::uint64_t addresses = address_fingerprint();
    backend.upload(host_canvas_.data(), host_canvas_.size(), canvas_);
    // Phase 0: the first step (and every step without a cache); phase 1: the cached steps after it.
    phases_[0].feeds = plan_feeds(active, block, true);
    stage_phase(forward_, phases_[0], active, block, width);
    if (cached) {
      if (settings_.cache.mode == cache_mode::block_causal)  // rows before the block hold final K/V after step 0
        for (sequence_state* st : active) st->cached_upto = st->out.prompt_length + block * length;
      phases_[1].feeds = plan_feeds(active, block, false);
      stage_phase(*block_forward_, phases_[1], active, block, width);
    }
    const std::int64_t rows = n * length;
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
    if (address_fingerprint() != addresses) ++generation_;
    const policy_selection_options<Policy> options{policy_.selection, policy_.schedule, settings_.confidence,
                                                   counter_rng{settings_.seed}};
    std::int32_t* canvas = canvas_.data();
    auto step_of = [&](transformer_forward<Backend>& f, phase& p) {
      return [&] {
        backend.gather_rows(static_cast<const std::int32_t*>(canvas), p.gather.data(), p.staged_rows, 1,
                            f.staged_tokens());
        f.run_staged(settings_.attention, logits_.data(), cached ? &*cache_ : nullptr);
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
    };
    auto first_step = step_of(forward_, phases_[0]);
    // (phase 1 exists only with a cache; without one it is never run)
    auto cached_step = step_of(cached ? *block_forward_ : forward_, cached ? phases_[1] : phases_[0]);
    // The captured steps are keyed by their shapes and by every address they read.
    auto key_of = [&](int kind, const transformer_forward<Backend>& f, const phase& p) {
      return step_key{}
          .add(std::uint64_t(kind))
          .add(std::uint64_t(n))
          .add(std::uint64_t(p.width))
          .add(std::uint64_t(width))
          .add(std::uint64_t(length))
          .add(generation_)
          .add(f.generation())
          .add(p.gather.data())
          .value;
    };
    const std::uint64_t first_key = key_of(0, forward_, phases_[0]);
    const std::uint64_t cached_key = cached ? key_of(1, *block_forward_, phases_[1]) : first_key;
    const std::int32_t interval = settings_.cache.refresh_interval;
    auto run = [&](std::int32_t t) {
      // diffusion_decoder refreshes at a sequence's block step 0 and every
      // interval; every active sequence is at step t here.
      const bool refresh = t == 0 || (settings_.cache.mode != cache_mode::block_causal && interval > 0 &&
                                      t % interval == 0);
      if (!cached || refresh) backend.run_step(first_step, instance_, first_key);
      else backend.run_step(cached_step, instance_, cached_key);
    };
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
        run(t);
        ++forwards;
      }
    } else {
      std::vector<std::int32_t> left(static_cast<std::size_t>(n));
      do {
        run(std::int32_t(forwards));
        ++forwards;
        backend.download(remaining_.data(), left.size(), left.data());
      } while (std::any_of(left.begin(), left.end(), [](std::int32_t m) { return m > 0; }) &&
               forwards < steps + length);
      if (std::any_of(left.begin(), left.end(), [](std::int32_t m) { return m > 0; }))
        throw argument_error(concat("resident decoding: the decoding policy left masks in block ", block, " after ",
                                    forwards, " steps (a selection rule must commit at least one candidate)"));
    }
    // Read the block back.
    backend.download(canvas, host_canvas_.size(), host_canvas_.data());
    backend.download(sequences_.data(), host_sequences_.size(), host_sequences_.data());
    for (std::int64_t s = 0; s < n; ++s) {
      sequence_state& st = *active[std::size_t(s)];
      std::copy(host_canvas_.begin() + s * width, host_canvas_.begin() + s * width + std::int64_t(st.out.canvas.size()),
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

  // The addresses a captured step reads that this object owns, hashed.
  std::uint64_t address_fingerprint() const {
    step_key key;
    for (const void* a : {static_cast<const void*>(canvas_.data()), static_cast<const void*>(sequences_.data()),
                          static_cast<const void*>(logits_.data()), static_cast<const void*>(sites_.data()),
                          static_cast<const void*>(proposed_.data()), static_cast<const void*>(confidence_.data()),
                          static_cast<const void*>(positions_.data()), static_cast<const void*>(candidate_tokens_.data()),
                          static_cast<const void*>(candidate_confidence_.data()),
                          static_cast<const void*>(selection_.data()), static_cast<const void*>(committed_.data()),
                          static_cast<const void*>(remaining_.data())})
      key.add(a);
    return key.value;
  }

  const transformer_model& model_;
  diffusion_settings settings_;
  Policy policy_;
  transformer_forward<Backend> forward_;               // the block's first step (every step without a cache)
  std::optional<transformer_forward<Backend>> block_forward_;  // a cache's later steps
  std::optional<kv_cache<Backend>> cache_;
  phase phases_[2];
  const std::uint64_t instance_ = next_step_owner();  // the backend keys its captured steps by it
  std::uint64_t generation_ = 0;  // bumped when a buffer a captured step reads moves
  std::vector<std::int32_t> host_tokens_, host_canvas_, host_gather_, host_lengths_, host_offsets_, host_kv_lengths_,
      host_slots_, host_origins_, host_rows_;
  std::vector<resident_sequence> host_sequences_;
  buffer<resident_sequence> sequences_;
  buffer<std::int32_t> canvas_;  // (active sequences, longest canvas) + one 0
  buffer<float> logits_, confidence_, candidate_confidence_;
  buffer<draw_site> sites_;
  buffer<std::int32_t> proposed_, positions_, candidate_tokens_, committed_, remaining_;
  buffer<selection_sequence> selection_;
};

}  // namespace unmask
