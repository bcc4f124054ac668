// unmask/decode/block_diffusion_decoder.hpp
//
// Decoding for block-diffusion models, trained with block-causal attention
// (Fast-dLLM v2, SDAR): the canvas (prompt, then gen_length masks) is cut
// into blocks of the trained size at absolute positions 0, B, 2B, ..., so the
// first block to decode may hold the end of the prompt. The prompt's whole
// blocks run once and their K/V are cached; each later block is denoised
// against the cache of the blocks before it (exact, as block-causal attention
// never looks forward), and, once full, runs once more to store its K/V.
// Within a block, every step runs the block and commits masked positions by
// the rule of the family's published generation code, at temperature 0 the
// argmax token with its probability as the confidence:
//  - sub_block_threshold (NVlabs Fast-dLLM v2, modeling.py `generate`): the
//    block is worked through in sub-blocks of sub_block_length; a step
//    commits every masked position of the current sub-block whose
//    probability exceeds `threshold`, and always the most probable one;
//  - counted (JetAstra SDAR, generate.py `block_diffusion_generate`): step s
//    of at most `steps` commits n_s = B / steps (+1 for the first B % steps
//    steps) positions: `sequential` the next n_s masked ones,
//    `low_confidence_static` the n_s most confident, `low_confidence_dynamic`
//    all with confidence above `threshold` when there are at least n_s,
//    else the n_s most confident.
// A model with shifted logits (Fast-dLLM v2; Dream's convention) predicts the
// first position of each block from the last position of the block before:
// the pass that stores a full block's K/V (or the prompt's) also commits the
// next position with its argmax, as Fast-dLLM v2 appends its next token.
// Sequences decode one after another (each its own cache); a finished block
// holding a stop token ends its sequence (unmask/decode/stopping.hpp), the
// rest filled with the end-of-sequence token. The pass that would store the
// last block's K/V is skipped: nothing reads it.
// Deviations from the published code, none of which changes a token of the
// cases it handles: its outputs are cut to the canvas (Fast-dLLM v2's last
// appended token lies past it); a prompt of exactly one block is prefilled
// (Fast-dLLM v2 prefills only prompts longer than a block, so such a prompt
// is never seen); SDAR's counted rules never commit more positions than are
// masked (its top-k would overwrite decoded ones).
#pragma once

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "unmask/core/error.hpp"
#include "unmask/decode/backend_interface.hpp"
#include "unmask/decode/diffusion_decoder.hpp"
#include "unmask/decode/stopping.hpp"
#include "unmask/model/kv_cache.hpp"
#include "unmask/model/transformer_forward.hpp"
#include "unmask/policy/sampling.hpp"
#include "unmask/random/philox.hpp"

namespace unmask {

enum class block_step_rule : std::uint8_t { sub_block_threshold, counted };
enum class counted_strategy : std::uint8_t { sequential, low_confidence_static, low_confidence_dynamic };

inline counted_strategy parse_counted_strategy(const std::string& name) {
  if (name == "sequential") return counted_strategy::sequential;
  if (name == "low_confidence_static") return counted_strategy::low_confidence_static;
  if (name == "low_confidence_dynamic") return counted_strategy::low_confidence_dynamic;
  throw argument_error(concat("unknown remasking strategy '", name,
                              "' (sequential, low_confidence_static, low_confidence_dynamic)"));
}

struct block_diffusion_settings {
  std::int32_t gen_length = 128;
  std::int32_t block_length = 0;  // 0: the block size the checkpoint was trained with
  block_step_rule rule = block_step_rule::sub_block_threshold;
  std::int32_t sub_block_length = 0;  // sub_block_threshold; 0: Fast-dLLM v2's 8, or the block when shorter
  float threshold = 0.9f;             // sub_block_threshold; counted low_confidence_dynamic
  std::int32_t steps = 0;             // counted: steps per block; 0: the block length
  counted_strategy strategy = counted_strategy::low_confidence_dynamic;
  sampling_settings sampling;  // temperature 0: argmax
  std::uint64_t seed = 0;
  bool stop_at_eos = true;   // the model's end-of-sequence ids end a sequence
  stop_criteria stop;

  // Fast-dLLM v2's defaults (v2/ chatbot and eval scripts: threshold 0.9, sub-blocks of 8).
  static block_diffusion_settings fast_dllm_v2() { return {}; }
  // SDAR's defaults (generate.py: low_confidence_dynamic, threshold 0.85, steps = block length).
  static block_diffusion_settings sdar() {
    block_diffusion_settings s;
    s.rule = block_step_rule::counted;
    s.threshold = 0.85f;
    return s;
  }

  void validate(const transformer_config& c) const {
    if (c.attention != trained_attention::block_causal)
      throw argument_error(concat("block-diffusion decoding needs a model trained with block-causal attention; ",
                                  c.family, " is ", to_string(c.attention)));
    if (gen_length <= 0) throw argument_error(concat("gen_length must be positive, got ", gen_length));
    if (block_length < 0) throw argument_error(concat("block_length must be >= 0, got ", block_length));
    if (sub_block_length < 0) throw argument_error(concat("sub_block_length must be >= 0, got ", sub_block_length));
    if (steps < 0) throw argument_error(concat("steps must be >= 0, got ", steps));
    if (!(threshold >= 0.0f && threshold <= 1.0f)) throw argument_error(concat("threshold must be in [0, 1], got ", threshold));
    sampling.validate();
    stop.validate();
  }
};

template <class Backend>
class block_diffusion_decoder {
  static_assert(check_decoding_backend<Backend>());

 public:
  block_diffusion_decoder(const transformer_model& model, block_diffusion_settings settings, Backend backend = {})
      : model_(model), settings_(settings), forward_(model, std::move(backend)) {
    const transformer_config& c = model.config();
    settings_.validate(c);
    if (settings_.block_length == 0) settings_.block_length = std::int32_t(c.attention_block);
    if (settings_.block_length != c.attention_block)
      throw argument_error(concat("block_length ", settings_.block_length, " differs from the block size ",
                                  c.attention_block, " ", c.family, " was trained with"));
    if (settings_.steps == 0) settings_.steps = settings_.block_length;
    if (settings_.sub_block_length == 0) settings_.sub_block_length = std::min(8, settings_.block_length);
    if (settings_.rule == block_step_rule::sub_block_threshold && settings_.block_length % settings_.sub_block_length)
      throw argument_error(concat("sub_block_length ", settings_.sub_block_length, " does not divide the block length ",
                                  settings_.block_length));
    // stop_at_eos: the model's end-of-sequence ids are stop tokens (checked with the others per finished block).
    if (settings_.stop_at_eos) {
      settings_.stop.add_token_ids({c.eos_token_id});
      settings_.stop.add_token_ids(c.stop_token_ids);
    }
  }
  block_diffusion_decoder(const transformer_model&&, block_diffusion_settings, Backend = {}) = delete;

  const block_diffusion_settings& settings() const { return settings_; }
  Backend& backend() { return forward_.backend(); }

  // `callback` sees every model call: the canvas after it and the positions it committed.
  // A numeric_error (non-finite logits) names the weight or layer where NaN or
  // infinity first appeared (transformer_forward::locate_non_finite).
  decode_output generate(const std::vector<decode_request>& requests, const decode_callback& callback = {}) {
    return forward_.locating_non_finite([&] { return decode_requests(requests, callback); });
  }

 private:
  decode_output decode_requests(const std::vector<decode_request>& requests, const decode_callback& callback) {
    const detail::decode_clock clock;
    const transformer_config& c = model_.config();
    if (requests.empty()) throw argument_error("generate: no sequences");
    decode_output result;
    for (std::size_t s = 0; s < requests.size(); ++s) {
      if (requests[s].prompt.empty()) throw argument_error(concat("generate: the prompt of sequence ", s, " is empty"));
      sequence_output out = detail::start_canvas(requests[s], s, c, settings_.gen_length);
      if (!interrupted(clock, out)) decode_one(s, requests[s].id, out, result, callback, clock);
      result.committed += out.committed;
      result.sequences.push_back(std::move(out));
    }
    clock.stop(result);
    return result;
  }

 public:

 private:
  bool interrupted(const detail::decode_clock& clock, sequence_output& out) const {
    const stop_reason r = settings_.stop.interrupt(clock.elapsed());
    if (r == stop_reason::length) return false;
    out.stop = r;
    return true;
  }

  // Runs canvas rows [begin, end) against the cache (storing their K/V) and
  // leaves the logits of `rows` (positions) in logits_; raw: the head's own
  // outputs (next-token logits of a shifted model).
  void run(sequence_output& out, std::int32_t begin, std::int32_t end, const std::vector<std::int32_t>& rows, bool raw,
           decode_output& result) {
    const transformer_config& c = model_.config();
    const std::int32_t width = end - begin;
    local_rows_.clear();
    for (std::int32_t p : rows) local_rows_.push_back(p - begin);
    logits_.reserve_at_least(std::size_t(rows.size()) * std::size_t(c.vocab_size));
    const std::int32_t offset = begin;
    token_batch in{out.canvas.data() + begin, 1, width, nullptr, &offset};
    const attention_mask mask = attention_mask::block_causal(settings_.block_length);
    forward_(in, mask, logits_.data(), &*cache_, {local_rows_.data(), std::int64_t(local_rows_.size()), raw});
    ++result.forwards;
    ++out.forwards;
  }

  // Greedy (or sampled) choices for the rows run() left.
  void choose(std::size_t count, std::uint32_t id, std::uint32_t step, const std::vector<std::int32_t>& positions,
              const sampling_settings& sampling) {
    const transformer_config& c = model_.config();
    sites_.clear();
    for (std::int32_t p : positions) sites_.push_back({id, step, std::uint32_t(p)});
    choices_.resize(count);
    forward_.backend().choose_tokens(logits_.data(), std::int64_t(count), c.vocab_size, sampling,
                                     confidence_metric::max_prob, std::int32_t(c.mask_token_id),
                                     counter_rng{settings_.seed}, sites_.data(), choices_.data());
  }

  // A shifted model's next position from the last row just stored: the argmax.
  void commit_next(sequence_output& out, std::int32_t position, std::uint32_t id, std::uint32_t step,
                   std::vector<std::int32_t>& committed) {
    choose(1, id, step, {position}, sampling_settings{});
    out.canvas[std::size_t(position)] = choices_[0].token;
    ++out.committed;
    committed.push_back(position);
    confidences_.push_back(choices_[0].confidence);
  }

  void notify(const decode_callback& callback, std::size_t index, std::int32_t block, std::int32_t step,
              const sequence_output& out, const std::vector<std::int32_t>& committed) const {
    if (callback) callback({index, block, step, &out.canvas, &committed, &confidences_});
  }

  void decode_one(std::size_t index, std::uint32_t id, sequence_output& out, decode_output& result,
                  const decode_callback& callback, const detail::decode_clock& clock) {
    const transformer_config& c = model_.config();
    const std::int32_t B = settings_.block_length, P = out.prompt_length;
    const std::int32_t L = std::int32_t(out.canvas.size());
    const std::int32_t mask = std::int32_t(c.mask_token_id);
    const bool shifted = c.shifted_logits;
    cache_.emplace(c, 1, L);
    std::uint32_t rng_step = 0;
    std::vector<std::int32_t> committed, rows;
    const std::int32_t prefill = P / B * B;
    if (prefill > 0) {
      committed.clear();
      confidences_.clear();
      const bool next = shifted && prefill == P;  // the next position starts a block: predicted from here
      run(out, 0, prefill, {prefill - 1}, true, result);
      if (next) commit_next(out, P, id, rng_step, committed);
      ++rng_step;
      notify(callback, index, -1, 0, out, committed);
    }
    const stop_criteria& stop = settings_.stop;
    const std::int32_t eos = std::int32_t(c.eos_token_id);
    for (std::int32_t begin = prefill; begin < L; begin += B) {
      const std::int32_t end = std::min(begin + B, L), block = begin / B;
      std::int32_t step = 0;
      for (;;) {
        std::int32_t first_mask = -1, masks = 0;
        for (std::int32_t p = std::max(begin, P); p < end; ++p)
          if (out.canvas[std::size_t(p)] == mask) masks += 1, first_mask = first_mask < 0 ? p : first_mask;
        if (masks == 0) break;
        if (interrupted(clock, out)) return;
        if (shifted && first_mask == begin)
          throw argument_error("block-diffusion decoding: a shifted model cannot predict a block's first position "
                               "from within the block");
        // The candidates: the current sub-block's masks, or the block's.
        std::int32_t window_end = end;
        if (settings_.rule == block_step_rule::sub_block_threshold) {
          const std::int32_t S = settings_.sub_block_length;
          window_end = std::min(end, begin + ((first_mask - begin) / S + 1) * S);
        }
        rows.clear();
        for (std::int32_t p = first_mask; p < window_end; ++p)
          if (out.canvas[std::size_t(p)] == mask) rows.push_back(p);
        run(out, begin, end, rows, false, result);
        choose(rows.size(), id, rng_step, rows, settings_.sampling);
        committed.clear();
        confidences_.clear();
        picked_sorted_ = select(rows.size(), step);
        std::sort(picked_sorted_.begin(), picked_sorted_.end());  // rows ascend: committed positions in order
        for (std::size_t i : picked_sorted_) {
          out.canvas[std::size_t(rows[i])] = choices_[i].token;
          committed.push_back(rows[i]);
          confidences_.push_back(choices_[i].confidence);
        }
        out.committed += std::int64_t(committed.size());
        notify(callback, index, block, step, out, committed);
        ++step, ++rng_step;
      }
      if (detail::finish_block(out, std::max(begin, P), end, stop, false, eos)) return;
      if (end >= L) break;
      // Store the full block's K/V (and, for a shifted model, commit the next block's first position).
      committed.clear();
      confidences_.clear();
      run(out, begin, end, {end - 1}, true, result);
      if (shifted) commit_next(out, end, id, rng_step, committed);
      ++rng_step;
      notify(callback, index, block, step, out, committed);
    }
  }

  // Which of the n candidates (masked positions, ascending; choices_ holds
  // their tokens and confidences) step `step` commits, as indices.
  const std::vector<std::size_t>& select(std::size_t n, std::int32_t step) {
    std::vector<std::size_t>& out = picked_;
    out.clear();
    // The most confident first; ties to the lower position (torch.argmax / topk on CPU).
    order_.resize(n);
    std::iota(order_.begin(), order_.end(), std::size_t(0));
    std::stable_sort(order_.begin(), order_.end(),
                     [&](std::size_t a, std::size_t b) { return choices_[a].confidence > choices_[b].confidence; });
    if (settings_.rule == block_step_rule::sub_block_threshold) {
      for (std::size_t i = 0; i < n; ++i)
        if (i == 0 || choices_[order_[i]].confidence > settings_.threshold) out.push_back(order_[i]);
      return out;
    }
    const std::int32_t B = settings_.block_length, S = settings_.steps;
    const std::int32_t count = std::min<std::int32_t>(std::int32_t(n), B / S + (step < B % S ? 1 : 0));
    switch (settings_.strategy) {
      case counted_strategy::sequential:
        for (std::int32_t i = 0; i < count; ++i) out.push_back(std::size_t(i));
        return out;
      case counted_strategy::low_confidence_dynamic: {
        std::int32_t above = 0;
        for (std::size_t i = 0; i < n; ++i) above += choices_[i].confidence > settings_.threshold;
        if (above >= count) {
          for (std::size_t i = 0; i < n; ++i)
            if (choices_[i].confidence > settings_.threshold) out.push_back(i);
          return out;
        }
        [[fallthrough]];
      }
      case counted_strategy::low_confidence_static:
        for (std::int32_t i = 0; i < count; ++i) out.push_back(order_[std::size_t(i)]);
        return out;
    }
    return out;
  }

  const transformer_model& model_;
  block_diffusion_settings settings_;
  transformer_forward<Backend> forward_;
  std::optional<kv_cache<Backend>> cache_;
  typename Backend::template buffer<float> logits_;
  std::vector<std::int32_t> local_rows_;
  std::vector<draw_site> sites_;
  std::vector<token_choice> choices_;
  std::vector<std::size_t> order_, picked_, picked_sorted_;
  std::vector<float> confidences_;  // (committed) of the last model call
};

}  // namespace unmask
