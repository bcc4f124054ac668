// The types of examples/ do what their files say, inside the unchanged
// decoders: margin_gap_rule commits exactly the candidates within its gap of
// the best, halving_schedule commits half of what is left each step, and
// counting_backend counts every GEMM's FLOPs while decoding the tokens the
// CPU backend decodes.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "counting_backend.hpp"
#include "halving_schedule.hpp"
#include "margin_gap_rule.hpp"
#include "support/expect_error.hpp"
#include "support/test_files.hpp"
#include "unmask/cpu/backend.hpp"
#include "unmask/decode/ar_decoder.hpp"
#include "unmask/decode/diffusion_decoder.hpp"
#include "unmask/decode/resident_decoder.hpp"

namespace unmask {
namespace {

const llada_model& tiny() {
  static const llada_model model = llada_model::load(test::data_dir() + "/tiny_llada_mha");
  return model;
}

const std::vector<decode_request> requests = {{{5, 17, 42, 3}, 0}, {{64, 12, 7, 80, 81, 1, 2}, 1}};

using margin_policy = decoding_policy<count_schedule, example::margin_gap_rule>;
using halving_policy = decoding_policy<example::halving_schedule, selection_rule>;

TEST(MarginGapRule, CountsTheCandidatesWithinTheGapOfTheBest) {
  const example::margin_gap_rule r{0.1f};
  const float sorted[] = {0.9f, 0.85f, 0.82f, 0.7f, 0.5f};
  EXPECT_EQ(r.commit_count(sorted, 5, 0, confidence_metric::max_prob), 3);
  EXPECT_EQ(r.commit_count(sorted, 2, 0, confidence_metric::max_prob), 2);
  EXPECT_EQ(r.commit_count(sorted, 0, 0, confidence_metric::max_prob), 0);
  EXPECT_EQ(example::margin_gap_rule{0.0f}.commit_count(sorted, 5, 9, confidence_metric::max_prob), 1);
  EXPECT_FALSE(r.uses_schedule());
  test::expect_error<argument_error>([] { margin_policy{{}, example::margin_gap_rule{-1.0f}}.validate(); },
                                     {"gap must be >= 0"});
}

TEST(MarginGapRule, CommitSelectionWritesExactlyThoseCandidates) {
  // Candidates in position order; the rule sees them sorted by confidence.
  const std::int32_t positions[] = {2, 3, 5, 6};
  const std::int32_t tokens[] = {20, 30, 50, 60};
  const float confidence[] = {0.4f, 0.81f, 0.9f, 0.86f};
  std::vector<std::int32_t> canvas(8, -1), committed;
  const basic_selection_options<example::margin_gap_rule, count_schedule> o{{0.05f}, {}, {}, {}};
  const selection_sequence seq{0, 4, 0, 0, 0, 0, 4, 4};
  EXPECT_EQ(commit_selection(seq, positions, tokens, confidence, o, canvas.data(), &committed), 2);
  EXPECT_EQ(canvas, (std::vector<std::int32_t>{-1, -1, -1, -1, -1, 50, 60, -1}));
  EXPECT_EQ(committed, (std::vector<std::int32_t>{5, 6}));  // commit order: best first
}

TEST(MarginGapRule, DecodesThroughTheUnchangedDecoders) {
  diffusion_settings s;
  s.layout = {24, 8, 12};
  // A gap of 1 commits every candidate (confidences are probabilities): one call a block.
  const decode_output all = diffusion_decoder<cpu_backend, margin_policy>(tiny(), s, margin_policy{{}, {1.0f}})
                                .generate(requests);
  EXPECT_EQ(all.forwards, 3);
  // A gap of 0 commits the best alone (no exact ties here): one token a call.
  std::vector<std::size_t> sizes;
  const decode_output one = diffusion_decoder<cpu_backend, margin_policy>(tiny(), s, margin_policy{{}, {0.0f}})
                                .generate(requests, [&](const decode_event& e) {
                                  sizes.push_back(e.committed_positions->size());
                                });
  EXPECT_EQ(one.forwards, 24);
  EXPECT_EQ(sizes, std::vector<std::size_t>(48, 1));
  // The resident path instantiates the selection step for the rule too.
  const margin_policy p{{}, {0.02f}};
  const decode_output expected = diffusion_decoder<cpu_backend, margin_policy>(tiny(), s, p).generate(requests);
  const decode_output resident = resident_decoder<cpu_backend, margin_policy>(tiny(), s, p).generate(requests);
  ASSERT_EQ(resident.sequences.size(), expected.sequences.size());
  for (std::size_t i = 0; i < expected.sequences.size(); ++i)
    EXPECT_EQ(resident.sequences[i].canvas, expected.sequences[i].canvas) << "sequence " << i;
  EXPECT_EQ(resident.forwards, expected.forwards);
  EXPECT_GT(expected.forwards, 3);
  EXPECT_LT(expected.forwards, 24);
}

TEST(HalvingSchedule, CommitsHalfOfWhatIsLeftEachStep) {
  const example::halving_schedule h;
  EXPECT_EQ(h.count(0, 4, 8, 8), 4);
  EXPECT_EQ(h.count(1, 4, 8, 4), 2);
  EXPECT_EQ(h.count(2, 4, 8, 2), 1);
  EXPECT_EQ(h.count(3, 4, 8, 1), 1);
  EXPECT_EQ(h.count(0, 4, 8, 7), 4);
  EXPECT_EQ(h.count(3, 4, 8, 5), 5);  // the last step commits the rest
  diffusion_settings s;
  s.layout = {16, 8, 8};  // two blocks of 8 masks, four steps each
  std::vector<std::size_t> sizes;
  const decode_output out = diffusion_decoder<cpu_backend, halving_policy>(tiny(), s).generate(
      {requests[0]}, [&](const decode_event& e) { sizes.push_back(e.committed_positions->size()); });
  EXPECT_EQ(sizes, (std::vector<std::size_t>{4, 2, 1, 1, 4, 2, 1, 1}));
  EXPECT_EQ(out.forwards, 8);
  // Top-k with the built-in even schedule commits 2 a step instead.
  sizes.clear();
  diffusion_decoder<cpu_backend>(tiny(), s).generate(
      {requests[0]}, [&](const decode_event& e) { sizes.push_back(e.committed_positions->size()); });
  EXPECT_EQ(sizes, std::vector<std::size_t>(8, 2));
}

TEST(CountingBackend, CountsTheGemmFlopsAndDecodesTheSameTokens) {
  diffusion_settings s;
  s.layout = {16, 8, 8};
  example::counting_backend counter;
  const decode_output counted = diffusion_decoder<example::counting_backend>(tiny(), s, counter).generate(requests);
  const decode_output plain = diffusion_decoder<cpu_backend>(tiny(), s).generate(requests);
  for (std::size_t i = 0; i < plain.sequences.size(); ++i)
    EXPECT_EQ(counted.sequences[i].canvas, plain.sequences[i].canvas) << "sequence " << i;
  EXPECT_GT(*counter.calls, 0);
  // One forward over R rows runs, per layer, Q/K/V, output, gate/up and down
  // projections, then the head over the rows whose logits are asked for.
  const llada_config& c = tiny().config();
  const std::int64_t d = c.d_model, hd = c.head_dim(), ff = c.mlp_hidden_size;
  const std::int64_t per_row = 2 * (d * hd * (c.n_heads + 2 * c.n_kv_heads) + c.n_heads * hd * d + 2 * d * ff + ff * d);
  example::counting_backend one;
  llada_forward<example::counting_backend> forward(tiny(), one);
  const std::vector<std::int32_t> tokens = {5, 17, 42, 3, 9, 9};
  const std::int32_t length = 6;
  std::vector<float> logits(std::size_t(6 * c.vocab_size));
  forward(token_batch{tokens.data(), 1, 6, &length}, attention_mask::full(), logits.data());
  EXPECT_EQ(*one.flops, c.n_layers * 6 * per_row + 2 * 6 * d * c.vocab_size);
}

}  // namespace
}  // namespace unmask
