// The Monte-Carlo log-likelihood (unmask/decode/likelihood.hpp) against the
// PyTorch reference of LLaDA's get_log_likelihood.py
// (tools/reference_likelihood.py, tests/data/likelihood/goldens.json) on
// models/tiny-llada: the random plan (k, the counts, every row's mask set)
// equal integer for integer; each row's estimate for explicit mask sets and
// the seeded estimates within 1e-4 relative (float32 logits on both sides,
// the same masks, cross-entropies in float64: what is left is the forward
// pass's float error, about 1e-6); different seeds within a few standard
// errors of each other; the same numbers alone or with other requests, for
// any rows per model call and thread count; and the errors bad input raises.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/expect_error.hpp"
#include "support/test_files.hpp"
#include "unmask/cpu/backend.hpp"
#include "unmask/cpu/parallel.hpp"
#include "unmask/decode/likelihood.hpp"
#include "unmask/model/transformer_model.hpp"

namespace unmask {
namespace {

using ids = std::vector<std::int32_t>;
using estimator = likelihood_estimator<cpu_backend>;

// $UNMASK_MODELS_DIR when set (a carried build), else the source tree's models/.
std::string models_dir() {
  const char* moved = std::getenv("UNMASK_MODELS_DIR");
  return moved && *moved ? moved : std::string(UNMASK_SOURCE_DIR) + "/models";
}

const transformer_model& tiny_llada() {
  static const transformer_model model = transformer_model::load(models_dir() + "/tiny-llada");
  return model;
}

const nlohmann::json& goldens() {
  static const nlohmann::json doc = [] {
    std::ifstream in(test::data_dir() + "/likelihood/goldens.json");
    return nlohmann::json::parse(in);
  }();
  return doc;
}

double relative(double a, double b) { return std::abs(a - b) / std::max(std::abs(b), 1e-12); }

likelihood_settings settings_of(const nlohmann::json& c) {
  likelihood_settings s;
  s.mc_num = c.at("mc_num").get<std::int32_t>();
  s.batch = c.at("batch").get<std::int32_t>();
  s.seed = c.at("seed").get<std::uint64_t>();
  s.cfg = c.at("cfg").get<float>();
  return s;
}

constexpr double tolerance = 1e-4;

TEST(Likelihood, PhiloxStreamMatchesReference) {
  for (const auto& p : goldens().at("philox")) {
    const counter_rng rng{p.at("seed").get<std::uint64_t>()};
    EXPECT_EQ(rng.bits(likelihood_random_purpose, p.at("sequence"), p.at("step"), p.at("position"), p.at("index")),
              p.at("bits").get<std::uint32_t>());
  }
}

TEST(Likelihood, MaskCountsAreLinspaceRoundedHalfToEvenAndWrapped) {
  // k = 1, b = 8, L = 4: 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5 -> 1, 2, 2, 2, 3, 4, 4, 4
  const ids expected = {1, 2, 2, 2, 3, 4, 4, 4};
  for (std::int32_t i = 0; i < 8; ++i) EXPECT_EQ(likelihood_mask_count(1, i, 8, 4), expected[std::size_t(i)]) << i;
  // k = 4, b = 2, L = 4: 4, 6 -> 4, 2 (((6 - 1) mod 4) + 1)
  EXPECT_EQ(likelihood_mask_count(4, 0, 2, 4), 4);
  EXPECT_EQ(likelihood_mask_count(4, 1, 2, 4), 2);
  // b = L, k = 1: every count once
  for (std::int32_t i = 0; i < 7; ++i) EXPECT_EQ(likelihood_mask_count(1, i, 7, 7), i + 1);
  for (std::int32_t L = 1; L < 20; ++L)
    for (std::int32_t k = 1; k <= L; ++k)
      for (std::int32_t i = 0; i < 16; ++i) {
        const std::int32_t x = likelihood_mask_count(k, i, 16, L);
        ASSERT_GE(x, 1);
        ASSERT_LE(x, L);
      }
}

TEST(Likelihood, PlanDrawsUniformKAndUniformSubsets) {
  const std::int32_t L = 6, draws = 6000;
  std::vector<int> k_count(std::size_t(L + 1), 0), position_count(std::size_t(L), 0);
  for (std::int32_t m = 0; m < draws; ++m) {
    const std::int32_t k = likelihood_draw_k(42, 3, std::uint32_t(m), L);
    ASSERT_GE(k, 1);
    ASSERT_LE(k, L);
    ++k_count[std::size_t(k)];
    const ids set = likelihood_mask_set(42, 3, std::uint32_t(m), 0, L, 2);
    ASSERT_EQ(set.size(), 2u);
    ASSERT_LT(set[0], set[1]);
    for (std::int32_t j : set) ++position_count[std::size_t(j)];
  }
  for (std::int32_t k = 1; k <= L; ++k) EXPECT_NEAR(k_count[std::size_t(k)], draws / L, 5 * std::sqrt(draws / L)) << k;
  for (std::int32_t j = 0; j < L; ++j)
    EXPECT_NEAR(position_count[std::size_t(j)], 2 * draws / L, 5 * std::sqrt(2 * draws / L)) << j;
}

TEST(Likelihood, PlanMatchesReferenceExactly) {
  for (const auto& c : goldens().at("monte_carlo")) {
    const likelihood_settings s = settings_of(c);
    const std::int32_t L = std::int32_t(c.at("answer").size());
    const auto& ks = c.at("ks");
    const auto& sets = c.at("mask_sets");
    for (std::int32_t m = 0; m < s.mc_num / s.batch; ++m) {
      const std::uint32_t id = c.at("id");
      EXPECT_EQ(likelihood_draw_k(s.seed, id, std::uint32_t(m), L), ks[std::size_t(m)].get<std::int32_t>());
      const std::vector<ids> rows = likelihood_minibatch_masks(s.seed, id, std::uint32_t(m), L, s.batch);
      for (std::int32_t i = 0; i < s.batch; ++i)
        EXPECT_EQ(rows[std::size_t(i)], sets[std::size_t(m * s.batch + i)].get<ids>())
            << c.at("name") << " mini-batch " << m << " row " << i;
    }
  }
}

TEST(Likelihood, RowEstimatesMatchReference) {
  double worst = 0;
  for (const auto& c : goldens().at("deterministic")) {
    likelihood_settings s;
    s.cfg = c.at("cfg").get<float>();
    estimator e(tiny_llada(), s);
    const std::vector<double> got =
        e.row_estimates(c.at("prompt").get<ids>(), c.at("answer").get<ids>(), c.at("mask_sets").get<std::vector<ids>>());
    const std::vector<double> want = c.at("row_estimates").get<std::vector<double>>();
    ASSERT_EQ(got.size(), want.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
      worst = std::max(worst, relative(got[i], want[i]));
      EXPECT_LE(relative(got[i], want[i]), tolerance) << c.at("name") << " cfg " << s.cfg << " set " << i;
    }
  }
  std::printf("row estimates: max relative difference %.3g\n", worst);
}

TEST(Likelihood, MonteCarloMatchesReference) {
  double worst = 0;
  for (const auto& c : goldens().at("monte_carlo")) {
    const likelihood_settings s = settings_of(c);
    estimator e(tiny_llada(), s);
    const likelihood_result r = e.score(c.at("prompt").get<ids>(), c.at("answer").get<ids>(), c.at("id"));
    const double want = c.at("log_likelihood").get<double>();
    worst = std::max(worst, relative(r.log_likelihood, want));
    EXPECT_LE(relative(r.log_likelihood, want), tolerance) << c.at("name") << " " << r.log_likelihood << " vs " << want;
    EXPECT_LE(relative(r.standard_error, c.at("standard_error").get<double>()), 1e-3) << c.at("name");
    EXPECT_EQ(r.samples, s.mc_num);
    EXPECT_EQ(r.tokens, std::int32_t(c.at("answer").size()));
    EXPECT_EQ(r.forwards, s.mc_num / s.batch);  // one mini-batch per model call by default
  }
  std::printf("Monte-Carlo log-likelihoods: max relative difference %.3g\n", worst);
}

TEST(Likelihood, SeedsAgreeWithinStandardErrors) {
  const auto& c = goldens().at("deterministic").at(0);  // "In the beginning God created the" / " heaven and the earth."
  const ids prompt = c.at("prompt").get<ids>(), answer = c.at("answer").get<ids>();
  std::vector<likelihood_result> runs;
  for (std::uint64_t seed = 0; seed < 4; ++seed) {
    likelihood_settings s;
    s.mc_num = 64;
    s.seed = seed;
    runs.push_back(estimator(tiny_llada(), s).score(prompt, answer));
    EXPECT_GT(runs.back().standard_error, 0.0);
  }
  for (std::size_t a = 0; a < runs.size(); ++a)
    for (std::size_t b = a + 1; b < runs.size(); ++b) {
      EXPECT_NE(runs[a].log_likelihood, runs[b].log_likelihood);
      const double se = std::hypot(runs[a].standard_error, runs[b].standard_error);
      EXPECT_LE(std::abs(runs[a].log_likelihood - runs[b].log_likelihood), 4 * se) << a << " vs " << b;
    }
}

TEST(Likelihood, IndependentOfBatchCompositionRowsPerCallAndThreads) {
  std::vector<likelihood_request> requests;
  std::uint32_t id = 0;
  for (const auto& c : goldens().at("deterministic"))
    if (c.at("cfg").get<float>() == 0.0f) requests.push_back({c.at("prompt").get<ids>(), c.at("answer").get<ids>(), id++});
  likelihood_settings s;
  s.mc_num = 8;
  s.batch = 4;
  s.seed = 9;
  s.cfg = 0.5f;
  std::vector<double> alone;
  for (const likelihood_request& q : requests)
    alone.push_back(estimator(tiny_llada(), s).score(q.prompt, q.answer, q.id).log_likelihood);
  const int threads = cpu::thread_count();
  for (std::int32_t rows : {0, 1, 3, 40}) {
    s.forward_rows = rows;
    cpu::set_thread_count(rows == 3 ? 1 : threads);
    const std::vector<likelihood_result> together = estimator(tiny_llada(), s).score(requests);
    ASSERT_EQ(together.size(), requests.size());
    for (std::size_t r = 0; r < requests.size(); ++r)
      EXPECT_EQ(together[r].log_likelihood, alone[r]) << "request " << r << ", forward_rows " << rows;
  }
  cpu::set_thread_count(threads);
  // Another order of the requests: the same numbers.
  std::vector<likelihood_request> reversed(requests.rbegin(), requests.rend());
  s.forward_rows = 5;
  const std::vector<likelihood_result> back = estimator(tiny_llada(), s).score(reversed);
  for (std::size_t r = 0; r < requests.size(); ++r) EXPECT_EQ(back[requests.size() - 1 - r].log_likelihood, alone[r]);
}

TEST(Likelihood, GuidanceWithoutPromptChangesNothing) {
  // With an empty prompt the unconditional rows are the conditional ones.
  const auto& c = goldens().at("deterministic");
  const auto wept = std::find_if(c.begin(), c.end(), [](const nlohmann::json& x) { return x.at("name") == "wept"; });
  ASSERT_NE(wept, c.end());
  likelihood_settings plain, guided;
  guided.cfg = 2.0f;
  const ids answer = wept->at("answer").get<ids>();
  const auto sets = wept->at("mask_sets").get<std::vector<ids>>();
  EXPECT_EQ(estimator(tiny_llada(), plain).row_estimates({}, answer, sets),
            estimator(tiny_llada(), guided).row_estimates({}, answer, sets));
}

TEST(Likelihood, ShiftedLogitsReadTheRowBefore) {
  // Dream: the estimate equals -log p computed from a full forward pass, whose
  // row i the forward already reads from the head's output at i - 1.
  const transformer_model dream = transformer_model::load(test::data_dir() + "/tiny_dream");
  const transformer_config& cfg = dream.config();
  ASSERT_TRUE(cfg.shifted_logits);
  const ids prompt = {5, 17, 42}, answer = {3, 64, 12, 7};
  const ids masked = {0, 2, 3};
  const double got = estimator(dream, {}).row_estimates(prompt, answer, {masked}).front();
  ids canvas = prompt;
  canvas.insert(canvas.end(), answer.begin(), answer.end());
  for (std::int32_t j : masked) canvas[prompt.size() + std::size_t(j)] = std::int32_t(cfg.mask_token_id);
  transformer_forward<cpu_backend> forward(dream);
  std::vector<float> logits(canvas.size() * std::size_t(cfg.vocab_size));
  forward({canvas.data(), 1, std::int64_t(canvas.size())}, attention_mask::full(), logits.data());
  double sum = 0;
  for (std::int32_t j : masked) {
    const float* row = logits.data() + (prompt.size() + std::size_t(j)) * std::size_t(cfg.vocab_size);
    double z = 0;
    for (std::int64_t v = 0; v < cfg.vocab_size; ++v) z += std::exp(double(row[v]));
    sum += std::log(z) - double(row[answer[std::size_t(j)]]);
  }
  EXPECT_NEAR(got, sum * double(answer.size()) / double(masked.size()), 1e-6 * std::abs(got));
  test::expect_error<argument_error>([&] { estimator(dream, {}).score({}, answer); },
                                     {"shifted logits", "the prompt must hold at least one token"});
}

TEST(Likelihood, SettingsErrorsNameTheParameter) {
  likelihood_settings s;
  s.mc_num = 100;
  test::expect_error<argument_error>([&] { s.validate(); }, {"mc_num must be a multiple of batch", "100", "16"});
  s = {};
  s.mc_num = 0;
  test::expect_error<argument_error>([&] { s.validate(); }, {"mc_num must be positive, got 0"});
  s = {};
  s.batch = -2;
  test::expect_error<argument_error>([&] { s.validate(); }, {"batch must be positive, got -2"});
  s = {};
  s.cfg = -1.0f;
  test::expect_error<argument_error>([&] { s.validate(); }, {"cfg must be finite and >= 0"});
  s.cfg = std::nanf("");
  test::expect_error<argument_error>([&] { s.validate(); }, {"cfg must be finite and >= 0"});
  s = {};
  s.forward_rows = -1;
  test::expect_error<argument_error>([&] { s.validate(); }, {"forward_rows must be >= 0"});
  s = {};
  s.mc_num = 12;
  test::expect_error<argument_error>([&] { estimator(tiny_llada(), s); }, {"mc_num must be a multiple of batch"});
}

TEST(Likelihood, InputErrorsNameTheProblem) {
  const transformer_config& c = tiny_llada().config();
  const std::int32_t mask = std::int32_t(c.mask_token_id);
  likelihood_settings s;
  s.mc_num = s.batch = 2;
  estimator e(tiny_llada(), s);
  test::expect_error<argument_error>([&] { e.score({1, 2}, {}); }, {"request 0", "the answer is empty"});
  test::expect_error<argument_error>([&] { e.score(ids(std::size_t(c.max_sequence_length), 1), {2}); },
                                     {"more than max_sequence_length 512"});
  test::expect_error<argument_error>([&] { e.score({1, 4096}, {2}); },
                                     {"token id 4096 at prompt position 1", "outside the vocabulary [0, 4096)"});
  test::expect_error<argument_error>([&] { e.score({1}, {2, -3}); }, {"token id -3 at answer position 1"});
  test::expect_error<argument_error>([&] { e.score({mask}, {2}); }, {"the mask token id 4095 is at prompt position 0"});
  test::expect_error<argument_error>([&] { e.score({1}, {2, mask}); }, {"mask token id 4095 is at answer position 1"});
  test::expect_error<argument_error>([&] { e.score(std::vector<likelihood_request>{}); }, {"no requests"});
  test::expect_error<argument_error>(
      [&] { e.score({{{1}, {2}, 0}, {{1}, {}, 1}}); }, {"request 1", "the answer is empty"});
  test::expect_error<argument_error>([&] { e.row_estimates({1}, {2, 3}, {}); }, {"no mask sets"});
  test::expect_error<argument_error>([&] { e.row_estimates({1}, {2, 3}, {{0}, {}}); }, {"mask set 1 is empty"});
  test::expect_error<argument_error>([&] { e.row_estimates({1}, {2, 3}, {{2}}); },
                                     {"mask set 0 holds a position outside the answer [0, 2)"});
  test::expect_error<argument_error>([&] { e.row_estimates({1}, {2, 3}, {{1, 1}}); }, {"holds a position twice"});
}

TEST(Likelihood, RejectsModelsTheEstimatorDoesNotApplyTo) {
  const transformer_model ar = transformer_model::load(models_dir() + "/tiny-ar");
  test::expect_error<argument_error>([&] { estimator(ar, {}); }, {"needs a masked diffusion model", "autoregressive"});
  const transformer_model sdar = transformer_model::load(test::data_dir() + "/tiny_sdar");
  test::expect_error<argument_error>([&] { estimator(sdar, {}); }, {"bidirectional attention", "block-causal"});
}

}  // namespace
}  // namespace unmask
