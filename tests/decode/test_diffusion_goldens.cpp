// The C++ decode loop against the published algorithms as implemented in
// plain PyTorch by tools/reference_generate.py (tests/data/decode/goldens.json):
// at temperature 0 every case must give the reference's exact canvas, number
// of model calls, and, step by step, the positions it committed.
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/test_files.hpp"
#include "unmask/cpu/backend.hpp"
#include "unmask/decode/diffusion_decoder.hpp"

namespace unmask {
namespace {

nlohmann::json load_goldens() {
  std::ifstream in(test::data_dir() + "/decode/goldens.json");
  return nlohmann::json::parse(in);
}

diffusion_settings settings_for(const nlohmann::json& g) {
  diffusion_settings s;
  const std::string algorithm = g.at("algorithm");
  s.layout.gen_length = g.at("gen_length");
  s.layout.block_length = g.at("block_length");
  s.layout.steps = g.at("steps").is_null() ? 0 : g.at("steps").get<int>();
  s.sampling.temperature = g.at("temperature");
  if (algorithm == "llada") {
    s.confidence = parse_confidence_metric(g.at("remasking"));
    s.cfg_scale = g.at("cfg_scale");
  } else if (algorithm == "fast_dllm_threshold") {
    s.selection = selection_rule::fast_dllm_threshold(g.at("threshold"));
  } else if (algorithm == "dinfer_threshold") {
    s.selection = selection_rule::dinfer_threshold(g.at("threshold"));
  } else if (algorithm == "fast_dllm_factor") {
    s.selection = selection_rule::fast_dllm_factor(g.at("factor"));
  } else if (algorithm == "eb_sampler") {
    EXPECT_EQ(g.at("proxy"), "entropy");
    s.selection = selection_rule::entropy_bounded(g.at("gamma"));
    s.confidence = confidence_metric::neg_entropy;
  } else if (algorithm == "dream") {
    s.schedule = {count_schedule_kind::dream, g.at("eps").get<float>()};
    s.confidence = parse_confidence_metric(g.at("alg"));
    s.sampling.confidence_on_sampling_distribution = true;
  } else {
    ADD_FAILURE() << "unknown algorithm " << algorithm;
  }
  return s;
}

class DiffusionGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(DiffusionGolden, MatchesReferenceTokenForToken) {
  const nlohmann::json goldens = load_goldens();
  const llada_model model = llada_model::load(test::data_dir() + "/" + goldens.at("model").get<std::string>());
  const nlohmann::json* found = nullptr;
  for (const auto& c : goldens.at("cases"))
    if (c.at("name") == GetParam()) found = &c;
  ASSERT_NE(found, nullptr);
  const nlohmann::json& g = *found;

  std::vector<decode_request> requests;
  for (const auto& p : g.at("prompts")) requests.push_back({p.get<std::vector<std::int32_t>>(), std::uint32_t(requests.size())});
  diffusion_decoder<cpu_backend> decoder(model, settings_for(g));
  std::vector<std::vector<std::int32_t>> trace;
  const decode_output out = decoder.generate(requests, [&](const decode_event& e) {
    if (e.sequence == 0) trace.push_back(*e.committed_positions);
  });

  const auto expected = g.at("output").get<std::vector<std::vector<std::int32_t>>>();
  ASSERT_EQ(out.sequences.size(), expected.size());
  for (std::size_t s = 0; s < expected.size(); ++s) EXPECT_EQ(out.sequences[s].canvas, expected[s]) << "sequence " << s;
  EXPECT_EQ(out.forwards, g.at("nfe").get<std::int64_t>());
  EXPECT_EQ(trace, g.at("trace").get<std::vector<std::vector<std::int32_t>>>());
}

std::vector<std::string> case_names() {
  std::vector<std::string> names;
  const nlohmann::json goldens = load_goldens();
  for (const auto& c : goldens.at("cases")) names.push_back(c.at("name"));
  return names;
}

INSTANTIATE_TEST_SUITE_P(Reference, DiffusionGolden, ::testing::ValuesIn(case_names()), [](const auto& param_info) {
  std::string name = param_info.param;
  for (char& ch : name)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return name;
});

TEST(DiffusionGolden, AtLeastTenCombinations) { EXPECT_GE(case_names().size(), 10u); }

}  // namespace
}  // namespace unmask
