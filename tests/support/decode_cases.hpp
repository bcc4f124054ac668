// tests/support/decode_cases.hpp
//
// The confidence-decoding policies the decode tests sweep (on a short
// layout: 24 tokens, blocks of 8, 12 steps): LLaDA greedy and sampled,
// random confidence, Dream's margin with top-k / top-p and its schedule,
// llama.cpp's schedule with entropy, Fast-dLLM and dInfer thresholds, the
// factor rule, entropy-bounded selection and Dream's alg_temp. Each test adds
// the settings only it covers.
#pragma once

#include <string>
#include <vector>

#include "unmask/decode/diffusion_decoder.hpp"

namespace unmask::test {

struct policy_case {
  std::string name;
  diffusion_settings settings;
};

inline diffusion_settings short_layout() {
  diffusion_settings s;
  s.layout = {24, 8, 12};
  return s;
}

inline std::vector<policy_case> confidence_policy_cases() {
  std::vector<policy_case> out;
  diffusion_settings s = short_layout();
  out.push_back({"llada_greedy", s});
  s.sampling.temperature = 1.0f;
  s.seed = 7;
  out.push_back({"llada_sampled", s});
  s = short_layout();
  s.confidence = confidence_metric::random;
  s.seed = 3;
  out.push_back({"llada_random", s});
  s = short_layout();
  s.confidence = confidence_metric::margin;
  s.sampling = {0.8f, 20, 0.9f, true};
  s.schedule = {count_schedule_kind::dream, 1e-3f};
  out.push_back({"dream_margin_topk_topp", s});
  s = short_layout();
  s.confidence = confidence_metric::neg_entropy;
  s.schedule = {count_schedule_kind::llama_cpp, 1e-3f};
  out.push_back({"llama_cpp_entropy", s});
  s = short_layout();
  s.selection = selection_rule::fast_dllm_threshold(0.09f);
  out.push_back({"threshold", s});
  s.selection = selection_rule::dinfer_threshold(0.09f);
  out.push_back({"threshold_dinfer", s});
  s.selection = selection_rule::fast_dllm_factor(2.7f);
  out.push_back({"factor", s});
  s.selection = selection_rule::entropy_bounded(8.0f);
  s.confidence = confidence_metric::neg_entropy;
  out.push_back({"entropy_bounded", s});
  s = short_layout();
  s.selection = selection_rule::dream_alg_temp(0.5f);
  s.seed = 11;
  out.push_back({"stochastic_alg_temp", s});
  return out;
}

inline void PrintTo(const policy_case& c, std::ostream* os) { *os << c.name; }

}  // namespace unmask::test
