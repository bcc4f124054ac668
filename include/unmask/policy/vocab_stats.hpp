// unmask/policy/vocab_stats.hpp
//
// Everything the confidence metrics need from one row of logits, gathered in
// a single pass without materialising the softmax (the online softmax of
// Milakov and Gimelshein 2018, arXiv 1805.02867): the running maximum m, s = sum e^(l - m), u = sum e^(l - m) (l - m), the
// best and second-best logits, and the argmax (first index on ties, as
// torch.argmax). When the maximum grows from m to m', s and u are rescaled:
//   s' = s e^(m - m'),   u' = e^(m - m') (u + (m - m') s).
// From these: log-sum-exp = m + log s, p(x) = e^(l_x - m) / s, and the
// negative entropy sum p log p = u / s - log s. Two partial states merge with
// the same rescaling, so a CUDA block reduces per-thread states with
// cub::BlockReduce and gets the CPU's answer.
#pragma once

#include <cmath>
#include <cstdint>

#include "unmask/core/config.hpp"

namespace unmask {

struct vocab_stats {
  float max_logit = -INFINITY;
  float second_logit = -INFINITY;
  float sum_exp = 0.0f;        // sum e^(l - max_logit)
  float sum_exp_delta = 0.0f;  // sum e^(l - max_logit) (l - max_logit)
  std::int32_t argmax = -1;

  UNMASK_HOST_DEVICE void push(float logit, std::int32_t index) {
    // A -inf logit (a banned token) adds e^-inf = 0 and changes no maximum;
    // before any finite logit, -inf - -inf would make the sums NaN.
    if (logit == -INFINITY) return;
    if (logit > max_logit) {
      rescale(logit);
      second_logit = max_logit;
      max_logit = logit;
      argmax = index;
    } else if (logit > second_logit) {
      second_logit = logit;
    }
    const float delta = logit - max_logit;
    const float e = expf(delta);
    sum_exp += e;
    sum_exp_delta += e * delta;
  }

  UNMASK_HOST_DEVICE void merge(const vocab_stats& o) {
    if (o.argmax < 0) return;
    if (argmax < 0) {
      *this = o;
      return;
    }
    const bool other_wins = o.max_logit > max_logit || (o.max_logit == max_logit && o.argmax < argmax);
    const float m = other_wins ? o.max_logit : max_logit;
    const float a = expf(max_logit - m), b = expf(o.max_logit - m);
    const float s = sum_exp * a + o.sum_exp * b;
    const float u = a * (sum_exp_delta + (max_logit - m) * sum_exp) + b * (o.sum_exp_delta + (o.max_logit - m) * o.sum_exp);
    // The runner-up is the larger of the loser's best and both seconds.
    const float loser_best = other_wins ? max_logit : o.max_logit;
    float second = loser_best > second_logit ? loser_best : second_logit;
    second = second > o.second_logit ? second : o.second_logit;
    if (other_wins) argmax = o.argmax;
    max_logit = m;
    second_logit = second;
    sum_exp = s;
    sum_exp_delta = u;
  }

  UNMASK_HOST_DEVICE float log_sum_exp() const { return max_logit + logf(sum_exp); }
  UNMASK_HOST_DEVICE float probability(float logit) const { return expf(logit - max_logit) / sum_exp; }
  // sum p log p (Dream's "entropy" confidence; higher = more certain).
  UNMASK_HOST_DEVICE float negative_entropy() const { return sum_exp_delta / sum_exp - logf(sum_exp); }
  // top-1 minus top-2 probability (Dream's "topk_margin").
  UNMASK_HOST_DEVICE float margin() const { return (1.0f - expf(second_logit - max_logit)) / sum_exp; }

 private:
  UNMASK_HOST_DEVICE void rescale(float new_max) {
    if (argmax < 0) return;
    const float shift = max_logit - new_max;  // <= 0
    const float a = expf(shift);
    sum_exp_delta = a * (sum_exp_delta + shift * sum_exp);
    sum_exp *= a;
  }
};

}  // namespace unmask
