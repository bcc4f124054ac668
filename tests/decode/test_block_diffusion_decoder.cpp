// Block-diffusion decoding (unmask/decode/block_diffusion_decoder.hpp)
// against the published algorithms as tools/reference_family_generate.py
// re-implements them: Fast-dLLM v2's sub-block threshold decoding on the tiny
// Fast-dLLM v2 checkpoint (shifted logits: each block's first token from the
// pass that stores the block before) and SDAR's counted strategies on the
// tiny SDAR checkpoint (Qwen3 blocks). At temperature 0 every case must give
// the reference's canvas, model calls and, call by call, the committed
// positions. Then what the goldens do not pin: the settings' checks, stop
// tokens, and sequences that decode alike alone or together.
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/expect_error.hpp"
#include "support/test_files.hpp"
#include "unmask/cpu/backend.hpp"
#include "unmask/decode/block_diffusion_decoder.hpp"

namespace unmask {
namespace {

using test::expect_error;

nlohmann::json load_block_goldens(const std::string& file) {
  std::ifstream in(test::data_dir() + "/decode/" + file);
  return nlohmann::json::parse(in);
}

block_diffusion_settings block_settings_for(const nlohmann::json& g) {
  block_diffusion_settings s;
  s.gen_length = g.at("gen_length");
  s.block_length = g.at("block_length");
  s.threshold = g.at("threshold");
  s.stop_at_eos = false;  // the references decode the whole canvas
  if (g.at("algorithm") == "fast_dllm_v2") {
    s.rule = block_step_rule::sub_block_threshold;
    s.sub_block_length = g.at("sub_block_length");
  } else {
    s.rule = block_step_rule::counted;
    s.steps = g.at("steps");
    s.strategy = parse_counted_strategy(g.at("strategy"));
  }
  return s;
}

struct block_golden_case {
  std::string file, name;
};
void PrintTo(const block_golden_case& c, std::ostream* os) { *os << c.file << ":" << c.name; }

class BlockDiffusionGolden : public ::testing::TestWithParam<block_golden_case> {};

TEST_P(BlockDiffusionGolden, MatchesReferenceTokenForToken) {
  const nlohmann::json goldens = load_block_goldens(GetParam().file);
  const transformer_model model = transformer_model::load(test::data_dir() + "/" + goldens.at("model").get<std::string>());
  const nlohmann::json* found = nullptr;
  for (const auto& c : goldens.at("cases"))
    if (c.at("name") == GetParam().name) found = &c;
  ASSERT_NE(found, nullptr);
  const nlohmann::json& g = *found;
  std::vector<decode_request> requests;
  for (const auto& p : g.at("prompts")) requests.push_back({p.get<std::vector<std::int32_t>>(), 0});
  block_diffusion_decoder<cpu_backend> decoder(model, block_settings_for(g));
  std::vector<std::vector<std::int32_t>> trace;
  const decode_output out = decoder.generate(requests, [&](const decode_event& e) { trace.push_back(*e.committed_positions); });
  const auto expected = g.at("output").get<std::vector<std::vector<std::int32_t>>>();
  ASSERT_EQ(out.sequences.size(), expected.size());
  EXPECT_EQ(out.sequences[0].canvas, expected[0]);
  EXPECT_EQ(out.forwards, g.at("nfe").get<std::int64_t>());
  EXPECT_EQ(trace, g.at("trace").get<std::vector<std::vector<std::int32_t>>>());
  EXPECT_EQ(out.committed, g.at("gen_length").get<std::int64_t>());
}

std::vector<block_golden_case> block_cases() {
  std::vector<block_golden_case> out;
  for (const char* file : {"fast_dllm_v2_goldens.json", "sdar_goldens.json"}) {
    const nlohmann::json goldens = load_block_goldens(file);
    for (const auto& c : goldens.at("cases")) out.push_back({file, c.at("name")});
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Reference, BlockDiffusionGolden, ::testing::ValuesIn(block_cases()), [](const auto& param_info) {
  std::string name = param_info.param.name;
  for (char& ch : name)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return name;
});

TEST(BlockDiffusionGolden, AtLeastFiveCasesPerFamily) {
  std::size_t fast = 0, sdar = 0;
  for (const block_golden_case& c : block_cases()) (c.file == "sdar_goldens.json" ? sdar : fast) += 1;
  EXPECT_GE(fast, 5u);
  EXPECT_GE(sdar, 5u);
}

const transformer_model& tiny(const char* name) {
  static const transformer_model fast = transformer_model::load(test::data_dir() + "/tiny_fast_dllm_v2");
  static const transformer_model sdar = transformer_model::load(test::data_dir() + "/tiny_sdar");
  return std::string(name) == "sdar" ? sdar : fast;
}

TEST(BlockDiffusionDecoder, SequencesDecodeAloneAsTogether) {
  for (const char* family : {"fast", "sdar"}) {
    block_diffusion_settings s = std::string(family) == "sdar" ? block_diffusion_settings::sdar()
                                                               : block_diffusion_settings::fast_dllm_v2();
    s.gen_length = 14, s.sub_block_length = 2, s.threshold = 0.07f, s.stop_at_eos = false;
    const std::vector<decode_request> both = {{{5, 17, 42, 7, 3}, 0}, {{9, 9, 30}, 1}};
    block_diffusion_decoder<cpu_backend> decoder(tiny(family), s);
    const decode_output together = decoder.generate(both);
    for (std::size_t i = 0; i < both.size(); ++i) {
      const decode_output alone = decoder.generate({both[i]});
      EXPECT_EQ(alone.sequences[0].canvas, together.sequences[i].canvas) << family << " " << i;
      EXPECT_EQ(alone.sequences[0].forwards, together.sequences[i].forwards) << family << " " << i;
    }
    for (const sequence_output& o : together.sequences)
      EXPECT_EQ(std::count(o.canvas.begin(), o.canvas.end(), 99), 0) << family;
  }
}

TEST(BlockDiffusionDecoder, AStopTokenEndsTheSequenceAfterItsBlock) {
  // The first block's decoded tokens as stop tokens: the sequence ends with
  // that block and the rest of the canvas is the end-of-sequence token.
  block_diffusion_settings s = block_diffusion_settings::sdar();
  s.gen_length = 16, s.stop_at_eos = false;
  block_diffusion_decoder<cpu_backend> plain(tiny("sdar"), s);
  const std::vector<decode_request> request = {{{5, 17, 42, 7}, 0}};
  const decode_output free_run = plain.generate(request);
  const std::int32_t first = free_run.sequences[0].canvas[4];
  s.stop.token_ids = {first};
  block_diffusion_decoder<cpu_backend> stopping(tiny("sdar"), s);
  const decode_output stopped = stopping.generate(request);
  const std::vector<std::int32_t>& canvas = stopped.sequences[0].canvas;
  EXPECT_EQ(stopped.sequences[0].stop, stop_reason::stop_token);
  EXPECT_TRUE(std::equal(canvas.begin(), canvas.begin() + 8, free_run.sequences[0].canvas.begin()));
  for (std::size_t i = 8; i < canvas.size(); ++i) EXPECT_EQ(canvas[i], 98) << i;
  EXPECT_LT(stopped.forwards, free_run.forwards);
}

TEST(BlockDiffusionDecoderBadInput, SettingsAndModelsAreChecked) {
  const transformer_model dream = transformer_model::load(test::data_dir() + "/tiny_dream");
  expect_error<argument_error>([&] { block_diffusion_decoder<cpu_backend>(dream, {}); },
                               {"block-causal attention", "Dream is bidirectional"});
  block_diffusion_settings s;
  s.block_length = 8;
  expect_error<argument_error>([&] { block_diffusion_decoder<cpu_backend>(tiny("fast"), s); },
                               {"block_length 8 differs from the block size 4"});
  s = {};
  s.sub_block_length = 3;
  expect_error<argument_error>([&] { block_diffusion_decoder<cpu_backend>(tiny("fast"), s); },
                               {"sub_block_length 3 does not divide the block length 4"});
  s = {};
  s.threshold = 1.5f;
  expect_error<argument_error>([&] { block_diffusion_decoder<cpu_backend>(tiny("fast"), s); }, {"threshold"});
  s = {};
  s.gen_length = 100;
  block_diffusion_decoder<cpu_backend> decoder(tiny("fast"), s);
  expect_error<argument_error>([&] { decoder.generate({{{1, 2, 3}, 0}}); }, {"exceeds max_sequence_length"});
  expect_error<argument_error>([&] { decoder.generate({{{}, 0}}); }, {"prompt of sequence 0 is empty"});
  expect_error<argument_error>([&] { parse_counted_strategy("greedy"); }, {"unknown remasking strategy 'greedy'"});
}

}  // namespace
}  // namespace unmask
