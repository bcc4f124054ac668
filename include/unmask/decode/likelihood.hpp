// unmask/decode/likelihood.hpp
//
// The log-likelihood of an answer given a prompt under a masked diffusion
// model, estimated by Monte Carlo as LLaDA does it (ML-GSAI/LLaDA
// get_log_likelihood.py, used by its eval_llada.py for lm-eval's
// loglikelihood requests; SPEC section 11). A masked diffusion LM does not
// factorise p(answer | prompt) token by token; its training loss is an upper
// bound on -log p, an expectation over how much of the answer is masked:
//   -log p(a | p) <= E_{x ~ U{1..L}} E_{S, |S| = x} [ (L / x) sum_{j in S} -log p_theta(a_j | p, a with S masked) ].
// One mini-batch draws k uniformly in [1, L] and fills b rows with the
// stratified counts x_i = round(k + i L / b), wrapped into [1, L] by
// x = ((x - 1) mod L) + 1 (round half to even, as torch.round), so the b rows
// cover the masking ratios evenly; row i masks x_i answer positions chosen
// at random (the prompt is never masked), runs the model once and scores
// (L / x_i) times the summed cross-entropy of the masked answer tokens. The
// estimate of -log p is the mean over the b rows and the mc_num / b
// mini-batches; the log-likelihood is minus that. With cfg > 0 each row also
// runs unconditionally (the prompt replaced by mask tokens) and the logits
// are guided as in generation, un + (cfg + 1) (cond - un) (SPEC section 6,
// unmask/policy/guidance.hpp). Multiple choice picks the continuation with
// the highest value (lm-eval).
//
// Randomness. PyTorch's torch.randint / torch.randperm stream cannot be
// reproduced, so the masks come from unmask's Philox counter generator
// (unmask/random/philox.hpp), purpose likelihood_random_purpose (6), keyed
// by the seed and the draw's site; a request's masks are then a pure function
// of (seed, request id, answer length, batch), the same for any thread count,
// any number of rows per model call and any other requests scored with it.
// With counter_rng::bits(purpose, sequence, step, position, index), i.e.
// Philox4x32-10 of the counter {index / 4, position, step, sequence} under
// the key {seed_lo, seed_hi ^ purpose * 0x85EBCA6B}, lane index % 4:
//   k of mini-batch m        1 + floor(bits(6, id, m, 0xFFFFFFFF, 0) * L / 2^32)
//   x_i of row i             round_half_even((k b + i L) / b), exactly in integers, then ((x - 1) mod L) + 1
//   key of answer position j in row i    bits(6, id, m, i, j)
//   masked set of row i      the x_i positions with the smallest (key, j)
// which is a uniformly random x_i-subset, as LLaDA's random permutation gives
// (tools/reference_likelihood.py reproduces it bit for bit).
//
// Which models. The estimator needs a model trained to fill masks with
// bidirectional attention (LLaDA, Dream): an autoregressive or block-causal
// checkpoint is an error. A model with shifted logits (Dream) predicts
// position i from the output at i - 1; transformer_forward applies the shift,
// so the logit row of a masked position predicts its token either way, and
// the prompt must then hold at least one token. The logits of the masked
// rows are downloaded and scored on the host in double precision.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <utility>
#include <vector>

#include "unmask/core/error.hpp"
#include "unmask/decode/backend_interface.hpp"
#include "unmask/model/attention_mask.hpp"
#include "unmask/model/transformer_forward.hpp"
#include "unmask/model/transformer_model.hpp"
#include "unmask/random/philox.hpp"

namespace unmask {

// The likelihood's stream of random numbers (not yet a named random_purpose).
inline constexpr random_purpose likelihood_random_purpose = random_purpose::likelihood;

struct likelihood_settings {
  std::int32_t mc_num = 128;       // Monte-Carlo rows in all (LLaDA's default; MMLU-style tasks use 1)
  std::int32_t batch = 16;         // rows per mini-batch, which share one k (32 in LLaDA's lm-eval harness)
  float cfg = 0.0f;                // classifier-free guidance scale; 0: off
  std::uint64_t seed = 0;
  // Rows per model call (each twice with cfg); 0: batch. Changes no result;
  // bounds a call's memory, which holds fp32 logits for every masked position.
  std::int32_t forward_rows = 0;

  void validate() const {
    if (mc_num <= 0) throw argument_error(concat("likelihood: mc_num must be positive, got ", mc_num));
    if (batch <= 0) throw argument_error(concat("likelihood: batch must be positive, got ", batch));
    if (mc_num % batch != 0)
      throw argument_error(concat("likelihood: mc_num must be a multiple of batch, got mc_num ", mc_num,
                                  " and batch ", batch));
    if (!(cfg >= 0.0f) || !std::isfinite(cfg))
      throw argument_error(concat("likelihood: cfg must be finite and >= 0, got ", cfg));
    if (forward_rows < 0) throw argument_error(concat("likelihood: forward_rows must be >= 0, got ", forward_rows));
  }
};

// One (prompt, answer) pair; `id` keys its random numbers, so a pair gets the
// same masks alone or among others (give the continuations of one question
// the same id and equally long ones share their masks: common random numbers).
struct likelihood_request {
  std::vector<std::int32_t> prompt;
  std::vector<std::int32_t> answer;
  std::uint32_t id = 0;
};

struct likelihood_result {
  double log_likelihood = 0;  // the estimate of log p(answer | prompt), nats
  // Of the estimate: the spread of the mc_num / batch mini-batch means (which
  // are independent); with one mini-batch the spread of its rows as if they
  // were independent (they are stratified, so this overstates it); NaN for one row.
  double standard_error = 0;
  std::int32_t samples = 0;   // Monte-Carlo rows (mc_num), or mask sets given
  std::int32_t tokens = 0;    // answer length L
  std::int64_t forwards = 0;  // model calls that held this request's rows
  double seconds = 0;         // wall time of the whole call
};

namespace detail {

inline std::uint32_t scaled_bits(std::uint32_t bits, std::uint32_t n) {
  return std::uint32_t((std::uint64_t(bits) * n) >> 32);  // floor(bits * n / 2^32), in [0, n)
}

}  // namespace detail

// The k of mini-batch `minibatch` of request `id`: uniform in [1, answer_length].
inline std::int32_t likelihood_draw_k(std::uint64_t seed, std::uint32_t id, std::uint32_t minibatch,
                                      std::int32_t answer_length) {
  const std::uint32_t bits = counter_rng{seed}.bits(likelihood_random_purpose, id, minibatch, 0xFFFFFFFFu, 0);
  return 1 + std::int32_t(detail::scaled_bits(bits, std::uint32_t(answer_length)));
}

// x_i = round(linspace(k, k + (b - 1) L / b, b))[i], wrapped into [1, L]:
// k + i L / b rounded half to even, in exact integer arithmetic (torch's
// float32 linspace gives the same values whenever its arithmetic is exact,
// e.g. for a batch that is a power of two).
inline std::int32_t likelihood_mask_count(std::int32_t k, std::int32_t row, std::int32_t batch,
                                          std::int32_t answer_length) {
  const std::int64_t numerator = std::int64_t(k) * batch + std::int64_t(row) * answer_length;
  std::int64_t x = numerator / batch;
  const std::int64_t twice_rest = 2 * (numerator % batch);
  if (twice_rest > batch || (twice_rest == batch && x % 2 != 0)) ++x;
  return std::int32_t((x - 1) % answer_length + 1);
}

// The answer positions (0-based, ascending) row `row` of mini-batch
// `minibatch` masks: the `count` positions with the smallest Philox keys.
inline std::vector<std::int32_t> likelihood_mask_set(std::uint64_t seed, std::uint32_t id, std::uint32_t minibatch,
                                                     std::int32_t row, std::int32_t answer_length,
                                                     std::int32_t count) {
  const counter_rng rng{seed};
  std::vector<std::pair<std::uint32_t, std::int32_t>> keyed(static_cast<std::size_t>(answer_length));
  for (std::int32_t j = 0; j < answer_length; ++j)
    keyed[std::size_t(j)] = {rng.bits(likelihood_random_purpose, id, minibatch, std::uint32_t(row), std::uint32_t(j)), j};
  std::partial_sort(keyed.begin(), keyed.begin() + count, keyed.end());
  std::vector<std::int32_t> out(static_cast<std::size_t>(count));
  for (std::int32_t i = 0; i < count; ++i) out[std::size_t(i)] = keyed[std::size_t(i)].second;
  std::sort(out.begin(), out.end());
  return out;
}

// Every row's mask set of one mini-batch (batch rows).
inline std::vector<std::vector<std::int32_t>> likelihood_minibatch_masks(std::uint64_t seed, std::uint32_t id,
                                                                         std::uint32_t minibatch,
                                                                         std::int32_t answer_length,
                                                                         std::int32_t batch) {
  const std::int32_t k = likelihood_draw_k(seed, id, minibatch, answer_length);
  std::vector<std::vector<std::int32_t>> rows;
  rows.reserve(std::size_t(batch));
  for (std::int32_t i = 0; i < batch; ++i)
    rows.push_back(likelihood_mask_set(seed, id, minibatch, i, answer_length,
                                       likelihood_mask_count(k, i, batch, answer_length)));
  return rows;
}

// Backend: see unmask/decode/backend_interface.hpp (the forward pass and
// apply_guidance). Keeps a reference to the model, which must outlive it.
template <class Backend>
class likelihood_estimator {
  static_assert(check_forward_backend<Backend>());
  static_assert(detail::backend_traits::has_apply_guidance<Backend>::value,
                "backend: needs `void apply_guidance(float* logits, std::int64_t rows, std::int64_t vocab, float scale)`");

 public:
  likelihood_estimator(const transformer_model& model, likelihood_settings settings, Backend backend = {})
      : model_(model), settings_(settings), forward_(model, std::move(backend)) {
    settings_.validate();
    const transformer_config& c = model.config();
    if (c.objective != training_objective::masked_diffusion)
      throw argument_error(concat("likelihood: the masked-diffusion estimator needs a masked diffusion model; ",
                                  c.family, " (", model.directory(), ") is ", to_string(c.objective)));
    if (c.attention != trained_attention::bidirectional)
      throw argument_error(concat("likelihood: the masked-diffusion estimator needs a model trained with "
                                  "bidirectional attention; ", c.family, " (", model.directory(), ") is ",
                                  to_string(c.attention)));
  }
  likelihood_estimator(const transformer_model&&, likelihood_settings, Backend = {}) = delete;

  const likelihood_settings& settings() const { return settings_; }
  Backend& backend() { return forward_.backend(); }

  // The Monte-Carlo estimate for one pair (random numbers keyed by `id`).
  likelihood_result score(const std::vector<std::int32_t>& prompt, const std::vector<std::int32_t>& answer,
                          std::uint32_t id = 0) {
    return score(std::vector<likelihood_request>{{prompt, answer, id}}).front();
  }

  // The estimates for several pairs, their rows packed into shared model calls.
  std::vector<likelihood_result> score(const std::vector<likelihood_request>& requests) {
    const auto start = std::chrono::steady_clock::now();
    if (requests.empty()) throw argument_error("likelihood: no requests");
    const std::int32_t b = settings_.batch, minibatches = settings_.mc_num / settings_.batch;
    std::vector<row_job> jobs;
    for (std::size_t r = 0; r < requests.size(); ++r) {
      const likelihood_request& q = requests[r];
      check_request(q.prompt, q.answer, r);
      const std::int32_t L = std::int32_t(q.answer.size());
      for (std::int32_t m = 0; m < minibatches; ++m) {
        std::vector<std::vector<std::int32_t>> sets =
            likelihood_minibatch_masks(settings_.seed, q.id, std::uint32_t(m), L, b);
        for (std::vector<std::int32_t>& s : sets) jobs.push_back({r, std::move(s)});
      }
    }
    std::vector<std::int64_t> forwards(requests.size(), 0);
    const std::vector<double> values = run_rows(requests, jobs, forwards);
    std::vector<likelihood_result> out(requests.size());
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::size_t next = 0;  // jobs are grouped by request, mini-batch, row
    for (std::size_t r = 0; r < requests.size(); ++r) {
      std::vector<double> means(static_cast<std::size_t>(minibatches));
      std::vector<double> rows(values.begin() + std::ptrdiff_t(next),
                               values.begin() + std::ptrdiff_t(next) + settings_.mc_num);
      for (std::int32_t m = 0; m < minibatches; ++m) {
        double sum = 0;  // LLaDA: loss.sum() / batch_size per mini-batch, then the mean of those
        for (std::int32_t i = 0; i < b; ++i) sum += rows[std::size_t(m * b + i)];
        means[std::size_t(m)] = sum / b;
      }
      next += std::size_t(settings_.mc_num);
      likelihood_result& res = out[r];
      res.log_likelihood = -mean(means);
      res.standard_error = minibatches > 1 ? standard_error(means) : standard_error(rows);
      res.samples = settings_.mc_num;
      res.tokens = std::int32_t(requests[r].answer.size());
      res.forwards = forwards[r];
      res.seconds = seconds;
    }
    return out;
  }

  // The deterministic part: for each mask set (answer positions, 0-based),
  // (L / |S|) times the summed -log p of the masked answer tokens given the
  // prompt and the answer with S masked (guided when cfg > 0). The Monte-Carlo
  // estimate of -log p is the mean of these over the plan's rows.
  std::vector<double> row_estimates(const std::vector<std::int32_t>& prompt, const std::vector<std::int32_t>& answer,
                                    const std::vector<std::vector<std::int32_t>>& mask_sets) {
    check_request(prompt, answer, 0);
    if (mask_sets.empty()) throw argument_error("likelihood: no mask sets");
    const std::vector<likelihood_request> requests{{prompt, answer, 0}};
    std::vector<row_job> jobs;
    for (std::size_t s = 0; s < mask_sets.size(); ++s) {
      std::vector<std::int32_t> set = mask_sets[s];
      std::sort(set.begin(), set.end());
      if (set.empty()) throw argument_error(concat("likelihood: mask set ", s, " is empty"));
      if (set.front() < 0 || set.back() >= std::int32_t(answer.size()))
        throw argument_error(concat("likelihood: mask set ", s, " holds a position outside the answer [0, ",
                                    answer.size(), ")"));
      if (std::adjacent_find(set.begin(), set.end()) != set.end())
        throw argument_error(concat("likelihood: mask set ", s, " holds a position twice"));
      jobs.push_back({0, std::move(set)});
    }
    std::vector<std::int64_t> forwards(1, 0);
    return run_rows(requests, jobs, forwards);
  }

 private:
  struct row_job {
    std::size_t request = 0;
    std::vector<std::int32_t> masked;  // answer positions, ascending
  };

  void check_request(const std::vector<std::int32_t>& prompt, const std::vector<std::int32_t>& answer,
                     std::size_t index) const {
    const transformer_config& c = model_.config();
    if (answer.empty()) throw argument_error(concat("likelihood: request ", index, ": the answer is empty"));
    const std::int64_t length = std::int64_t(prompt.size() + answer.size());
    if (length > c.max_sequence_length)
      throw argument_error(concat("likelihood: request ", index, ": prompt and answer hold ", length,
                                  " tokens, more than max_sequence_length ", c.max_sequence_length, " of ",
                                  model_.directory()));
    if (c.shifted_logits && prompt.empty())
      throw argument_error(concat("likelihood: request ", index, ": ", c.family,
                                  " has shifted logits (position i is predicted at i - 1), so the prompt must "
                                  "hold at least one token"));
    auto check_ids = [&](const std::vector<std::int32_t>& ids, const char* what) {
      for (std::size_t i = 0; i < ids.size(); ++i) {
        if (ids[i] < 0 || ids[i] >= c.vocab_size)
          throw argument_error(concat("likelihood: request ", index, ": token id ", ids[i], " at ", what,
                                      " position ", i, " is outside the vocabulary [0, ", c.vocab_size, ")"));
        if (ids[i] == c.mask_token_id)
          throw argument_error(concat("likelihood: request ", index, ": the mask token id ", ids[i], " is at ", what,
                                      " position ", i));
      }
    };
    check_ids(prompt, "prompt");
    check_ids(answer, "answer");
  }

  // Each job's (L / x) * sum of -log p over its masked positions, in job
  // order; counts each request's model calls into `forwards`.
  std::vector<double> run_rows(const std::vector<likelihood_request>& requests, const std::vector<row_job>& jobs,
                               std::vector<std::int64_t>& forwards) {
    const transformer_config& c = model_.config();
    const std::int64_t vocab = c.vocab_size;
    const std::int32_t mask = std::int32_t(c.mask_token_id);
    const bool guided = settings_.cfg > 0.0f;
    const std::int64_t copies = guided ? 2 : 1;
    const std::size_t chunk = std::size_t(settings_.forward_rows > 0 ? settings_.forward_rows : settings_.batch);
    std::vector<double> values(jobs.size(), 0.0);
    for (std::size_t first = 0; first < jobs.size(); first += chunk) {
      const std::size_t last = std::min(jobs.size(), first + chunk);
      const std::int64_t n = std::int64_t(last - first);
      std::int64_t width = 0;
      for (std::size_t j = first; j < last; ++j) {
        const likelihood_request& q = requests[jobs[j].request];
        width = std::max<std::int64_t>(width, std::int64_t(q.prompt.size() + q.answer.size()));
      }
      // (copies * n, width): the noisy rows, then (cfg) the same rows with the prompt masked.
      tokens_.assign(std::size_t(copies * n * width), 0);
      lengths_.resize(std::size_t(copies * n));
      selected_.clear();
      targets_.clear();
      for (std::int64_t copy = 0; copy < copies; ++copy) {
        for (std::int64_t s = 0; s < n; ++s) {
          const row_job& job = jobs[first + std::size_t(s)];
          const likelihood_request& q = requests[job.request];
          const std::int64_t sequence = copy * n + s, prompt_length = std::int64_t(q.prompt.size());
          std::int32_t* dst = tokens_.data() + sequence * width;
          std::copy(q.prompt.begin(), q.prompt.end(), dst);
          std::copy(q.answer.begin(), q.answer.end(), dst + prompt_length);
          if (copy == 1) std::fill(dst, dst + prompt_length, mask);
          for (std::int32_t j : job.masked) {
            dst[prompt_length + j] = mask;
            selected_.push_back(std::int32_t(sequence * width + prompt_length + j));
            if (copy == 0) targets_.push_back(q.answer[std::size_t(j)]);
          }
          lengths_[std::size_t(sequence)] = std::int32_t(prompt_length + std::int64_t(q.answer.size()));
        }
      }
      const std::int64_t count = std::int64_t(selected_.size());
      logits_.reserve_at_least(std::size_t(count * vocab));
      const token_batch in{tokens_.data(), copies * n, width, lengths_.data()};
      forward_(in, attention_mask::full(), logits_.data(), nullptr, {selected_.data(), count});
      const std::int64_t half = count / copies;
      if (guided) forward_.backend().apply_guidance(logits_.data(), half, vocab, settings_.cfg);
      host_logits_.resize(std::size_t(half * vocab));
      forward_.backend().download(logits_.data(), host_logits_.size(), host_logits_.data());
      std::size_t row = 0;
      std::size_t counted = requests.size();  // the last request counted for this call
      for (std::size_t j = first; j < last; ++j) {
        const row_job& job = jobs[j];
        double sum = 0;
        for (std::size_t t = 0; t < job.masked.size(); ++t, ++row)
          sum += negative_log_prob(host_logits_.data() + std::int64_t(row) * vocab, vocab, targets_[row]);
        const double L = double(requests[job.request].answer.size());
        values[j] = sum * L / double(job.masked.size());
        if (job.request != counted) ++forwards[job.request], counted = job.request;
      }
    }
    return values;
  }

  // -log softmax(logits)[target], in double.
  static double negative_log_prob(const float* logits, std::int64_t vocab, std::int32_t target) {
    double top = -std::numeric_limits<double>::infinity();
    for (std::int64_t v = 0; v < vocab; ++v) top = std::max(top, double(logits[v]));
    double sum = 0;
    for (std::int64_t v = 0; v < vocab; ++v) sum += std::exp(double(logits[v]) - top);
    return top + std::log(sum) - double(logits[target]);
  }

  static double mean(const std::vector<double>& v) {
    double sum = 0;
    for (double x : v) sum += x;
    return sum / double(v.size());
  }

  static double standard_error(const std::vector<double>& v) {
    if (v.size() < 2) return std::numeric_limits<double>::quiet_NaN();
    const double m = mean(v);
    double squares = 0;
    for (double x : v) squares += (x - m) * (x - m);
    return std::sqrt(squares / double(v.size() - 1) / double(v.size()));
  }

  const transformer_model& model_;
  likelihood_settings settings_;
  transformer_forward<Backend> forward_;
  std::vector<std::int32_t> tokens_, lengths_, selected_, targets_;
  std::vector<float> host_logits_;
  typename Backend::template buffer<float> logits_;
};

}  // namespace unmask
