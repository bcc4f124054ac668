// decode_trace (unmask/decode/decode_trace.hpp) on the tiny test models: the
// file parses line by line, its header says what was decoded, its steps are
// the sequence's model calls, replaying them gives the final canvas (for
// confidence decoding each generated position is committed exactly once),
// confidences are those the rule chose by (in [0, 1] for max_prob; under the
// threshold rule every commit but a step's forced best clears the
// threshold), and tracing changes no token. Block diffusion and
// autoregressive decoding report confidences only once decode_event carries
// them; the checks on those adapt.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/expect_error.hpp"
#include "support/test_files.hpp"
#include "support/tiny_model.hpp"
#include "unmask/cpu/backend.hpp"
#include "unmask/decode/decode_trace.hpp"

namespace unmask {
namespace {

using test::tiny;

constexpr bool events_carry_confidences = detail::event_has_confidences<decode_event>::value;

struct trace_file {
  nlohmann::json header;
  std::vector<nlohmann::json> steps;
};

trace_file read_trace(const std::string& path) {
  std::ifstream in(path);
  trace_file t;
  std::string line;
  EXPECT_TRUE(std::getline(in, line)) << "no header line";
  t.header = nlohmann::json::parse(line);
  while (std::getline(in, line)) t.steps.push_back(nlohmann::json::parse(line));
  return t;
}

// The canvas the steps rebuild from the prompt and masks.
std::vector<std::int32_t> replay(const trace_file& t, const std::vector<std::int32_t>& prompt) {
  std::vector<std::int32_t> canvas = prompt;
  canvas.resize(t.header.at("canvas_length").get<std::size_t>(), t.header.at("mask_id").get<std::int32_t>());
  for (const nlohmann::json& s : t.steps) {
    const auto positions = s.at("positions").get<std::vector<std::int32_t>>();
    const auto tokens = s.at("tokens").get<std::vector<std::int32_t>>();
    EXPECT_EQ(positions.size(), tokens.size());
    for (std::size_t i = 0; i < positions.size(); ++i) canvas.at(std::size_t(positions[i])) = tokens[i];
    for (std::int32_t p : s.at("remasked").get<std::vector<std::int32_t>>())
      canvas.at(std::size_t(p)) = t.header.at("mask_id").get<std::int32_t>();
  }
  return canvas;
}

// Every generated position committed exactly once, positions ascending.
void expect_each_position_once(const trace_file& t) {
  const std::int32_t P = t.header.at("prompt_length"), L = t.header.at("canvas_length");
  std::vector<int> seen(std::size_t(L), 0);
  for (const nlohmann::json& s : t.steps) {
    const auto positions = s.at("positions").get<std::vector<std::int32_t>>();
    EXPECT_TRUE(std::is_sorted(positions.begin(), positions.end()));
    for (std::int32_t p : positions) {
      ASSERT_GE(p, P);
      ASSERT_LT(p, L);
      ++seen[std::size_t(p)];
    }
  }
  for (std::int32_t p = P; p < L; ++p) EXPECT_EQ(seen[std::size_t(p)], 1) << "position " << p;
}

// Every step's confidences known and in [0, 1].
void expect_probabilities(const trace_file& t) {
  for (const nlohmann::json& s : t.steps) {
    ASSERT_TRUE(s.at("confidences").is_array()) << s.dump();
    ASSERT_EQ(s.at("confidences").size(), s.at("positions").size());
    for (const nlohmann::json& c : s.at("confidences")) {
      ASSERT_TRUE(c.is_number()) << s.dump();
      EXPECT_GE(c.get<double>(), 0.0);
      EXPECT_LE(c.get<double>(), 1.0);
    }
  }
}

TEST(DecodeTrace, TopKStepsCommitEachPositionOnceWithTheFinalTokens) {
  test::scratch_dir dir;
  diffusion_settings s;
  s.layout = {16, 8, 8};  // two blocks, two commits per step
  diffusion_decoder<cpu_backend> decoder(tiny(), s);
  const decode_request request = test::two_requests()[0];
  const std::int32_t P = std::int32_t(request.prompt.size());
  decode_output out;
  {
    decode_trace trace(dir.file("top_k.jsonl"),
                       trace_header_for(tiny().config(), decoder.settings(), decoder.policy(), P));
    out = decoder.generate({request}, trace.callback(), trace.hooks());
    EXPECT_EQ(trace.steps(), out.forwards);
  }
  const trace_file t = read_trace(dir.file("top_k.jsonl"));
  const nlohmann::json& h = t.header;
  EXPECT_EQ(h.at("trace"), "unmask-decode");
  EXPECT_EQ(h.at("version"), 1);
  EXPECT_EQ(h.at("decoder"), "diffusion");
  EXPECT_EQ(h.at("sequence"), 0);
  EXPECT_EQ(h.at("prompt_length"), P);
  EXPECT_EQ(h.at("canvas_length"), P + 16);
  EXPECT_EQ(h.at("gen_length"), 16);
  EXPECT_EQ(h.at("block_length"), 8);
  EXPECT_EQ(h.at("block_origin"), P);
  EXPECT_EQ(h.at("mask_id"), 99);
  EXPECT_EQ(h.at("settings").at("selection"), "top_k");
  EXPECT_EQ(h.at("settings").at("schedule"), "llada");
  EXPECT_EQ(h.at("settings").at("steps"), 8);
  EXPECT_EQ(h.at("settings").at("confidence"), "max_prob");
  EXPECT_EQ(h.at("summary"), "diffusion, gen 16, block 8, top_k, 8 steps (llada), max_prob");

  ASSERT_EQ(std::int64_t(t.steps.size()), out.sequences[0].forwards);
  for (std::size_t i = 0; i < t.steps.size(); ++i) {
    const nlohmann::json& step = t.steps[i];
    EXPECT_EQ(step.at("step"), i);
    EXPECT_EQ(step.at("block"), i / 4);
    EXPECT_EQ(step.at("block_step"), i % 4);
    EXPECT_EQ(step.at("positions").size(), 2u);
    for (std::int32_t p : step.at("positions").get<std::vector<std::int32_t>>()) {  // inside its block
      EXPECT_GE(p, P + 8 * std::int32_t(i / 4));
      EXPECT_LT(p, P + 8 * std::int32_t(i / 4 + 1));
    }
    EXPECT_TRUE(step.at("remasked").empty());
  }
  expect_each_position_once(t);
  expect_probabilities(t);
  EXPECT_EQ(replay(t, request.prompt), out.sequences[0].canvas);
  // Tracing (its callback and hook) changes nothing.
  EXPECT_EQ(decoder.generate({request}).sequences[0].canvas, out.sequences[0].canvas);
}

TEST(DecodeTrace, ConfidencesAreTheOnesTheCandidatesHad) {
  // The caller's own hook runs first and its confidences are the ones traced.
  test::scratch_dir dir;
  diffusion_settings s;
  s.layout = {8, 8, 8};
  diffusion_decoder<cpu_backend> decoder(tiny(), s);
  std::vector<std::vector<float>> best;  // per step, the committed one's confidence as the rule saw it
  step_hooks mine;
  mine.candidates = [&](step_candidates& c) {
    for (std::int32_t i = 0; i < c.count; ++i) c.confidence[i] *= 0.5f;
    best.push_back({*std::max_element(c.confidence, c.confidence + c.count)});
  };
  {
    decode_trace trace(dir.file("t.jsonl"), trace_header_for(tiny().config(), decoder.settings(), 4));
    decoder.generate({test::two_requests()[0]}, trace.callback(), trace.hooks(mine));
  }
  const trace_file t = read_trace(dir.file("t.jsonl"));
  ASSERT_EQ(t.steps.size(), best.size());
  for (std::size_t i = 0; i < best.size(); ++i) {
    ASSERT_EQ(t.steps[i].at("confidences").size(), 1u);
    EXPECT_EQ(t.steps[i].at("confidences")[0].get<float>(), best[i][0]) << i;  // written exactly
    EXPECT_LE(best[i][0], 0.5f);
  }
}

TEST(DecodeTrace, ThresholdStepsCommitAboveTheThresholdBesidesTheForcedBest) {
  for (const float tau : {0.9f, 0.3f, 0.1f}) {
    test::scratch_dir dir;
    diffusion_settings s;
    s.layout = {32, 16, 32};
    s.selection = selection_rule::fast_dllm_threshold(tau);
    diffusion_decoder<cpu_backend> decoder(tiny(), s);
    const decode_request request = test::two_requests()[1];
    decode_output out;
    {
      decode_trace trace(dir.file("threshold.jsonl"),
                         trace_header_for(tiny().config(), decoder.settings(), std::int32_t(request.prompt.size())));
      out = decoder.generate({request}, trace.callback(), trace.hooks());
    }
    const trace_file t = read_trace(dir.file("threshold.jsonl"));
    EXPECT_EQ(t.header.at("settings").at("selection"), "threshold");
    EXPECT_EQ(t.header.at("settings").at("threshold").get<float>(), tau);
    ASSERT_EQ(std::int64_t(t.steps.size()), out.forwards);
    expect_each_position_once(t);
    expect_probabilities(t);
    EXPECT_EQ(replay(t, request.prompt), out.sequences[0].canvas);
    std::size_t most = 0;
    for (const nlohmann::json& step : t.steps) {
      const auto c = step.at("confidences").get<std::vector<float>>();
      const float top = *std::max_element(c.begin(), c.end());
      const std::size_t below = std::size_t(std::count_if(c.begin(), c.end(), [&](float x) { return x < tau; }));
      // At most the best is below tau, and then it is the only commit.
      if (below > 0) {
        EXPECT_TRUE(c.size() == 1 && c[0] == top) << step.dump();
      }
      most = std::max(most, c.size());
    }
    if (tau < 0.2f) {
      EXPECT_GT(most, 1u) << "a low threshold commits several tokens in a step";
    }
  }
}

TEST(DecodeTrace, FollowsOneSequenceOfABatch) {
  test::scratch_dir dir;
  diffusion_settings s;
  s.layout = {8, 4, 4};
  diffusion_decoder<cpu_backend> decoder(tiny(), s);
  const std::vector<decode_request>& requests = test::two_requests();
  decode_output out;
  std::int64_t events = 0;
  {
    decode_trace trace(dir.file("second.jsonl"),
                       trace_header_for(tiny().config(), decoder.settings(), std::int32_t(requests[1].prompt.size()), 1));
    out = decoder.generate(requests, trace.callback([&](const decode_event&) { ++events; }), trace.hooks());
  }
  const trace_file t = read_trace(dir.file("second.jsonl"));
  EXPECT_EQ(t.header.at("sequence"), 1);
  EXPECT_EQ(events, out.sequences[0].forwards + out.sequences[1].forwards);  // `next` sees every event
  EXPECT_EQ(std::int64_t(t.steps.size()), out.sequences[1].forwards);
  EXPECT_EQ(replay(t, requests[1].prompt), out.sequences[1].canvas);
}

TEST(DecodeTrace, AncestralStepsWithRemaskingReplayToTheCanvas) {
  test::scratch_dir dir;
  diffusion_settings s;
  s.layout = {16, 16, 16};
  s.mode = decode_mode::ancestral;
  s.sampling.temperature = 1.0f;
  s.seed = 3;
  s.remasking.strategy = remask_strategy::cap;
  s.remasking.eta = 0.2f;
  diffusion_decoder<cpu_backend> decoder(tiny(), s);
  const decode_request request = test::two_requests()[0];
  decode_output out;
  {
    decode_trace trace(dir.file("ancestral.jsonl"), trace_header_for(tiny().config(), decoder.settings(), 4));
    EXPECT_FALSE(trace.hooks().any());  // ancestral sampling takes no hooks
    out = decoder.generate({request}, trace.callback(), trace.hooks());
  }
  const trace_file t = read_trace(dir.file("ancestral.jsonl"));
  EXPECT_EQ(t.header.at("settings").at("mode"), "ancestral");
  EXPECT_EQ(t.header.at("settings").at("remasking"), "cap");
  std::size_t remasked = 0;
  for (const nlohmann::json& step : t.steps) {
    EXPECT_TRUE(step.at("confidences").is_null());
    remasked += step.at("remasked").size();
  }
  EXPECT_GT(remasked, 0u);
  EXPECT_EQ(replay(t, request.prompt), out.sequences[0].canvas);
}

const transformer_model& block_model(const std::string& name) {
  static const transformer_model fast = transformer_model::load(test::data_dir() + "/tiny_fast_dllm_v2");
  static const transformer_model sdar = transformer_model::load(test::data_dir() + "/tiny_sdar");
  return name == "sdar" ? sdar : fast;
}

TEST(DecodeTrace, BlockDiffusionStepsAreItsModelCalls) {
  for (const std::string family : {"fast", "sdar"}) {
    test::scratch_dir dir;
    block_diffusion_settings s = family == "sdar" ? block_diffusion_settings::sdar() : block_diffusion_settings::fast_dllm_v2();
    s.gen_length = 14, s.sub_block_length = 2, s.threshold = 0.07f, s.stop_at_eos = false;
    const transformer_model& model = block_model(family);
    block_diffusion_decoder<cpu_backend> decoder(model, s);
    const decode_request request{{5, 17, 42, 7, 3}, 0};
    decode_output out;
    {
      decode_trace trace(dir.file("block.jsonl"), trace_header_for(model.config(), s, 5));
      out = decoder.generate({request}, trace.callback());
    }
    const trace_file t = read_trace(dir.file("block.jsonl"));
    const nlohmann::json& h = t.header;
    EXPECT_EQ(h.at("decoder"), "block_diffusion");
    EXPECT_EQ(h.at("block_length"), 4);  // the trained block size, resolved from 0
    EXPECT_EQ(h.at("block_origin"), 0);
    EXPECT_EQ(h.at("canvas_length"), 19);
    EXPECT_EQ(h.at("settings").at("rule"), family == "sdar" ? "counted" : "sub_block_threshold");
    ASSERT_EQ(std::int64_t(t.steps.size()), out.forwards) << family;
    EXPECT_EQ(t.steps[0].at("block"), -1);  // the prompt's whole block, prefilled
    expect_each_position_once(t);
    EXPECT_EQ(replay(t, request.prompt), out.sequences[0].canvas) << family;
    for (const nlohmann::json& step : t.steps) {
      if (events_carry_confidences) {
        ASSERT_TRUE(step.at("confidences").is_array()) << family;
      } else {
        EXPECT_TRUE(step.at("confidences").is_null()) << family;
      }
    }
    if (events_carry_confidences) expect_probabilities(t);
  }
}

TEST(DecodeTrace, AutoregressiveStepsCommitOneTokenEach) {
  test::scratch_dir dir;
  ar_settings s;
  s.max_new_tokens = 12;
  s.stop_at_eos = false;
  ar_decoder<cpu_backend> decoder(tiny(), s);
  const decode_request request{{4, 8, 15, 16, 23, 42}, 0};
  decode_output out;
  {
    decode_trace trace(dir.file("ar.jsonl"), trace_header_for(tiny().config(), s, 6));
    out = decoder.generate({request}, trace.callback());
  }
  const trace_file t = read_trace(dir.file("ar.jsonl"));
  EXPECT_EQ(t.header.at("decoder"), "autoregressive");
  EXPECT_EQ(t.header.at("canvas_length"), 18);
  EXPECT_EQ(t.header.at("block_length"), 12);
  ASSERT_EQ(std::int64_t(t.steps.size()), out.forwards);
  for (std::size_t i = 0; i < t.steps.size(); ++i) {
    EXPECT_EQ(t.steps[i].at("positions"), nlohmann::json::array({6 + i}));
    EXPECT_EQ(t.steps[i].at("block_step"), i);
  }
  expect_each_position_once(t);
  EXPECT_EQ(replay(t, request.prompt), out.sequences[0].canvas);
  if (events_carry_confidences) {
    expect_probabilities(t);
  } else {
    for (const nlohmann::json& step : t.steps) EXPECT_TRUE(step.at("confidences").is_null());
  }
}

TEST(DecodeTraceBadInput, AFileThatCannotBeOpenedIsAFileErrorNamingIt) {
  diffusion_settings s;
  s.layout = {8, 8, 8};
  test::expect_error<file_error>(
      [&] { decode_trace("/nonexistent-unmask-dir/trace.jsonl", trace_header_for(tiny().config(), s, 4)); },
      {"cannot open the trace file '/nonexistent-unmask-dir/trace.jsonl'"});
}

}  // namespace
}  // namespace unmask
