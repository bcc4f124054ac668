// The Monte-Carlo log-likelihood (unmask/decode/likelihood.hpp) on the CUDA
// backend against the PyTorch reference's goldens
// (tests/data/likelihood/goldens.json, tools/reference_likelihood.py) on
// models/tiny-llada: the masks are drawn on the host, so only the forward
// pass differs. fp32 activations: within 1e-3 relative (the backends' logits
// agree to about 1e-4 of the largest logit, test_backend.cu, and a row sums
// up to L such errors scaled by L / x); bf16 activations: within 3e-2.
// Skips without a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cuda/device.hpp"
#include "support/test_files.hpp"
#include "unmask/cuda/backend.hpp"
#include "unmask/decode/likelihood.hpp"

namespace unmask {
namespace {

using ids = std::vector<std::int32_t>;

std::string models_dir() {
  const char* moved = std::getenv("UNMASK_MODELS_DIR");
  return moved && *moved ? moved : UNMASK_MODELS_DIR;
}

const nlohmann::json& goldens() {
  static const nlohmann::json doc = [] {
    std::ifstream in(test::data_dir() + "/likelihood/goldens.json");
    return nlohmann::json::parse(in);
  }();
  return doc;
}

double relative(double a, double b) { return std::abs(a - b) / std::max(std::abs(b), 1e-12); }

template <class Backend>
void check_goldens(double tolerance, const char* what) {
  const transformer_model model = transformer_model::load(models_dir() + "/tiny-llada");
  double worst_rows = 0, worst_mc = 0;
  for (const auto& c : goldens().at("deterministic")) {
    likelihood_settings s;
    s.cfg = c.at("cfg").get<float>();
    likelihood_estimator<Backend> e(model, s);
    const std::vector<double> got =
        e.row_estimates(c.at("prompt").get<ids>(), c.at("answer").get<ids>(), c.at("mask_sets").get<std::vector<ids>>());
    const std::vector<double> want = c.at("row_estimates").get<std::vector<double>>();
    for (std::size_t i = 0; i < got.size(); ++i) {
      worst_rows = std::max(worst_rows, relative(got[i], want[i]));
      EXPECT_LE(relative(got[i], want[i]), tolerance) << what << " " << c.at("name") << " set " << i;
    }
  }
  for (const auto& c : goldens().at("monte_carlo")) {
    likelihood_settings s;
    s.mc_num = c.at("mc_num");
    s.batch = c.at("batch");
    s.seed = c.at("seed");
    s.cfg = c.at("cfg").get<float>();
    likelihood_estimator<Backend> e(model, s);
    const likelihood_result r = e.score(c.at("prompt").get<ids>(), c.at("answer").get<ids>(), c.at("id"));
    const double want = c.at("log_likelihood").get<double>();
    worst_mc = std::max(worst_mc, relative(r.log_likelihood, want));
    EXPECT_LE(relative(r.log_likelihood, want), tolerance) << what << " " << c.at("name");
  }
  std::printf("%s: max relative difference %.3g (rows), %.3g (Monte Carlo)\n", what, worst_rows, worst_mc);
}

TEST(CudaLikelihood, MatchesReferenceFp32) {
  UNMASK_REQUIRE_DEVICE();
  check_goldens<cuda_backend_f32>(1e-3, "fp32");
}

TEST(CudaLikelihood, MatchesReferenceBf16) {
  UNMASK_REQUIRE_DEVICE();
  check_goldens<cuda_backend>(3e-2, "bf16");
}

}  // namespace
}  // namespace unmask
