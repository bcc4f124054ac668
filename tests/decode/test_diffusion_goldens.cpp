// The C++ decode loop against the published algorithms as implemented in
// plain PyTorch by tools/reference_generate.py: at temperature 0 every case
// must give the reference's exact canvas, number of model calls, and, step
// by step, the positions it committed. Two sets: tests/data/decode/goldens.json
// on a tiny random model (which proposes one token everywhere, so it pins
// down the order of commits) and tiny_llada_goldens.json on the embedded
// trained model with real prompts (which pins down the tokens too); and,
// from tools/reference_family_generate.py, dream_goldens.json: Dream's
// sampler on the tiny Dream checkpoint (Qwen2 layout, q/k/v biases, shifted
// logits: the first generated position is predicted from the last prompt
// position).
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

const char* const golden_files[] = {"goldens.json", "tiny_llada_goldens.json", "dream_goldens.json"};

nlohmann::json load_goldens(const std::string& file) {
  std::ifstream in(test::data_dir() + "/decode/" + file);
  return nlohmann::json::parse(in);
}

std::string model_dir(const nlohmann::json& goldens) {
  if (goldens.contains("model_dir")) return std::string(UNMASK_SOURCE_DIR) + "/" + goldens.at("model_dir").get<std::string>();
  return test::data_dir() + "/" + goldens.at("model").get<std::string>();
}

struct golden_case {
  std::string file, name;
};

void PrintTo(const golden_case& c, std::ostream* os) { *os << c.file << ":" << c.name; }

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

class DiffusionGolden : public ::testing::TestWithParam<golden_case> {};

TEST_P(DiffusionGolden, MatchesReferenceTokenForToken) {
  const nlohmann::json goldens = load_goldens(GetParam().file);
  const transformer_model model = transformer_model::load(model_dir(goldens));
  ASSERT_EQ(goldens.at("mask_token_id").get<std::int64_t>(), model.config().mask_token_id);
  const nlohmann::json* found = nullptr;
  for (const auto& c : goldens.at("cases"))
    if (c.at("name") == GetParam().name) found = &c;
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

std::vector<golden_case> golden_cases(const std::string& only = "") {
  std::vector<golden_case> out;
  for (const char* file : golden_files) {
    if (!only.empty() && only != file) continue;
    const nlohmann::json goldens = load_goldens(file);
    for (const auto& c : goldens.at("cases")) out.push_back({file, c.at("name")});
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Reference, DiffusionGolden, ::testing::ValuesIn(golden_cases()), [](const auto& param_info) {
  const std::string& file = param_info.param.file;
  const std::string prefix = file == "goldens.json" ? "random_" : file == "tiny_llada_goldens.json" ? "trained_" : "family_";
  std::string name = prefix + param_info.param.name;
  for (char& ch : name)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return name;
});

TEST(DiffusionGolden, AtLeastTenCombinationsPerModel) {
  EXPECT_GE(golden_cases("goldens.json").size(), 10u);
  EXPECT_GE(golden_cases("tiny_llada_goldens.json").size(), 10u);
  EXPECT_GE(golden_cases("dream_goldens.json").size(), 5u);
}

}  // namespace
}  // namespace unmask
