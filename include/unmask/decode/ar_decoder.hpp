// unmask/decode/ar_decoder.hpp
//
// Autoregressive decoding on the same model machinery, the speed baseline for
// diffusion decoding: one forward over the prompts (prefill, causal
// attention, K/V written to the cache, logits only for each prompt's last
// row), then one token per forward, each sequence feeding its newest token at
// its own position against its cached keys. Tokens are chosen by the same
// choose_token as diffusion decoding (greedy, or temperature / top-k / top-p
// with the counter-based generator keyed by sequence id, token index and
// position), so a sequence decodes the same alone or in any batch. A
// sequence stops at end-of-sequence (when asked), at a stop token or string
// (unmask/decode/stopping.hpp) or after max_new_tokens and leaves the batch;
// its cache slot stays put. A time limit or a cancel_token stops every
// sequence before the next forward. On a backend that replays steps as
// graphs (cuda_backend) each decoding forward of a batch size seen before is
// one graph launch.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

#include "unmask/core/step_key.hpp"
#include "unmask/decode/diffusion_decoder.hpp"

namespace unmask {

struct ar_settings {
  std::int32_t max_new_tokens = 128;
  sampling_settings sampling;
  std::uint64_t seed = 0;
  bool stop_at_eos = true;
  std::int32_t eos_token_id = -1;  // -1: the model's
  attention_mask attention = attention_mask::causal();
  stop_criteria stop;              // stop tokens and strings, a time limit, cancellation (unmask/decode/stopping.hpp)

  void validate() const {
    if (max_new_tokens <= 0) throw argument_error(concat("max_new_tokens must be positive, got ", max_new_tokens));
    sampling.validate();
    stop.validate();
  }
};

template <class Backend>
class ar_decoder {
 public:
  static_assert(check_decoding_backend<Backend>());

  ar_decoder(const transformer_model&&, ar_settings, Backend = {}) = delete;  // the model must outlive the decoder
  ar_decoder(const transformer_model& model, ar_settings settings, Backend backend = {})
      : model_(model), settings_(settings), forward_(model, std::move(backend)) {
    settings_.validate();
    if (settings_.eos_token_id < 0) {  // the model's eos, and with it every stop id of its config
      settings_.eos_token_id = std::int32_t(model.config().eos_token_id);
      if (settings_.stop_at_eos) settings_.stop.add_token_ids(model.config().stop_token_ids);
    }
  }

  // Each output canvas is the prompt followed by the generated tokens.
  // A numeric_error (non-finite logits) names the weight or layer where NaN or
  // infinity first appeared (transformer_forward::locate_non_finite).
  decode_output generate(const std::vector<decode_request>& requests, const decode_callback& callback = {}) {
    return forward_.locating_non_finite([&] { return decode_requests(requests, callback); });
  }

 private:
  decode_output decode_requests(const std::vector<decode_request>& requests, const decode_callback& callback) {
    const detail::decode_clock start;
    const transformer_config& c = model_.config();
    const std::int64_t vocab = c.vocab_size, n = std::int64_t(requests.size());
    if (requests.empty()) throw argument_error("generate: no sequences");
    std::int64_t longest = 0;
    for (std::size_t s = 0; s < requests.size(); ++s) {
      if (requests[s].prompt.empty()) throw argument_error(concat("generate: the prompt of sequence ", s, " is empty"));
      longest = std::max<std::int64_t>(longest, std::int64_t(requests[s].prompt.size()));
    }
    const std::int64_t capacity = longest + settings_.max_new_tokens;
    if (capacity > c.max_sequence_length)
      throw argument_error(concat("generate: prompt of ", longest, " tokens + max_new_tokens ", settings_.max_new_tokens,
                                  " exceeds max_sequence_length ", c.max_sequence_length));
    kv_cache<Backend> cache(c, n, capacity);
    decode_output result;
    result.sequences.resize(requests.size());
    std::vector<std::int32_t> tokens(static_cast<std::size_t>(n * longest), 0), lengths(static_cast<std::size_t>(n)),
        rows(static_cast<std::size_t>(n));
    for (std::int64_t b = 0; b < n; ++b) {
      const auto& prompt = requests[std::size_t(b)].prompt;
      std::copy(prompt.begin(), prompt.end(), tokens.begin() + b * longest);
      lengths[std::size_t(b)] = std::int32_t(prompt.size());
      rows[std::size_t(b)] = std::int32_t(b * longest + std::int64_t(prompt.size()) - 1);
      result.sequences[std::size_t(b)].canvas = prompt;
      result.sequences[std::size_t(b)].prompt_length = std::int32_t(prompt.size());
    }
    std::vector<std::int32_t> active(static_cast<std::size_t>(n)), next, offsets, committed(1);
    std::vector<float> confidence(1);
    for (std::int64_t b = 0; b < n; ++b) active[std::size_t(b)] = std::int32_t(b);
    // Time limit or cancellation: the active sequences stop before the next forward.
    const auto interrupted = [&] {
      const stop_reason r = settings_.stop.interrupt(start.elapsed());
      if (r == stop_reason::length) return false;
      for (std::int32_t s : active) result.sequences[std::size_t(s)].stop = r;
      return true;
    };
    if (interrupted()) {
      start.stop(result);
      return result;
    }
    typename Backend::template buffer<float> logits(std::size_t(n * vocab));  // (active sequences, vocab)
    forward_({tokens.data(), n, longest, lengths.data()}, settings_.attention, logits.data(), &cache, {rows.data(), n, true});
    ++result.forwards;

    std::vector<draw_site> sites;
    std::vector<token_choice> choices;
    const counter_rng rng{settings_.seed};
    for (std::int32_t step = 0;; ++step) {
      // logits row i belongs to sequence active[i]
      std::vector<std::int32_t> still;
      next.clear();
      offsets.clear();
      sites.clear();
      for (std::int32_t s : active)
        sites.push_back({requests[std::size_t(s)].id, std::uint32_t(step),
                         std::uint32_t(result.sequences[std::size_t(s)].canvas.size())});
      choices.resize(active.size());
      forward_.backend().choose_tokens(logits.data(), std::int64_t(active.size()), vocab, settings_.sampling,
                                       confidence_metric::max_prob, std::int32_t(c.mask_token_id), rng, sites.data(),
                                       choices.data());
      for (std::size_t i = 0; i < active.size(); ++i) {
        sequence_output& out = result.sequences[std::size_t(active[i])];
        ++out.forwards;
        const std::uint32_t position = std::uint32_t(out.canvas.size());
        const token_choice choice = choices[i];
        out.canvas.push_back(choice.token);
        ++out.committed;
        committed[0] = std::int32_t(position);
        confidence[0] = choice.confidence;
        if (callback) callback({std::size_t(active[i]), 0, step, &out.canvas, &committed, &confidence});
        const std::int64_t end = std::int64_t(out.canvas.size());
        out.stop = settings_.stop.check(out.canvas, out.prompt_length, end - 1, end,
                                        settings_.stop_at_eos ? settings_.eos_token_id : -1);
        out.stopped_at_eos = out.stop == stop_reason::stop_token;
        if (out.stop != stop_reason::length || step + 1 >= settings_.max_new_tokens) continue;
        still.push_back(active[i]);
        next.push_back(choice.token);
        offsets.push_back(std::int32_t(position));
      }
      active.swap(still);
      if (active.empty() || interrupted()) break;
      const std::int64_t a = std::int64_t(active.size());
      forward_.stage({next.data(), a, 1, nullptr, offsets.data(), active.data()}, &cache, {nullptr, 0, true});
      run_decode_step(cache, logits.data(), a);
      ++result.forwards;
    }
    for (const sequence_output& out : result.sequences) result.committed += out.committed;
    start.stop(result);
    return result;
  }

  // One token per sequence through the staged forward. A backend with
  // run_step (cuda_backend) captures it as a graph the second time the same
  // batch size comes and replays it after: every step of a fixed batch has
  // the same shapes (one row per sequence against the cache's capacity) and
  // reads the same addresses, which the key names (the cache, the logits,
  // the forward's buffers).
  void run_decode_step(kv_cache<Backend>& cache, float* logits, std::int64_t batch) {
    if constexpr (detail::backend_traits::has_run_step<Backend>::value) {
      const std::uint64_t key =
          step_key{}.add(std::uint64_t(batch)).add(forward_.generation()).add(cache.keys(0)).add(logits).value;
      forward_.backend().run_step([&] { forward_.run_staged(settings_.attention, logits, &cache); }, instance_, key);
    } else {
      forward_.run_staged(settings_.attention, logits, &cache);
    }
  }

  const transformer_model& model_;
  ar_settings settings_;
  transformer_forward<Backend> forward_;
  const std::uint64_t instance_ = next_step_owner();
};

}  // namespace unmask
