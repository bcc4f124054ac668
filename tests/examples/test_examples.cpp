// The types of examples/ do what their files say, inside the unchanged
// decoders: margin_gap_rule commits exactly the candidates within its gap of
// the best, halving_schedule commits half of what is left each step, and
// counting_backend counts every GEMM's FLOPs while decoding the tokens the
// CPU backend decodes; logit_bias makes its token the choice; canvas_stream
// streams every sequence of a batch until its final text.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "canvas_stream.hpp"
#include "counting_backend.hpp"
#include "halving_schedule.hpp"
#include "logit_bias.hpp"
#include "margin_gap_rule.hpp"
#include "support/expect_error.hpp"
#include "support/test_files.hpp"
#include "support/tiny_model.hpp"
#include "unmask/cpu/backend.hpp"
#include "unmask/decode/ar_decoder.hpp"
#include "unmask/decode/diffusion_decoder.hpp"
#include "unmask/decode/resident_decoder.hpp"

namespace unmask {
namespace {

using test::tiny;

const std::vector<decode_request>& requests = test::two_requests();

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
  const transformer_config& c = tiny().config();
  const std::int64_t d = c.d_model, hd = c.head_dim, ff = c.mlp_hidden_size;
  const std::int64_t per_row = 2 * (d * hd * (c.n_heads + 2 * c.n_kv_heads) + c.n_heads * hd * d + 2 * d * ff + ff * d);
  example::counting_backend one;
  transformer_forward<example::counting_backend> forward(tiny(), one);
  const std::vector<std::int32_t> tokens = {5, 17, 42, 3, 9, 9};
  const std::int32_t length = 6;
  std::vector<float> logits(std::size_t(6 * c.vocab_size));
  forward(token_batch{tokens.data(), 1, 6, &length}, attention_mask::full(), logits.data());
  EXPECT_EQ(*one.flops, c.n_layers * 6 * per_row + 2 * 6 * d * c.vocab_size);
}

TEST(LogitBias, ItsTokenBecomesTheChoiceAndMinusInfinityBansIt) {
  diffusion_settings s;
  s.layout = {16, 8, 8};
  using policy = decoding_policy<count_schedule, selection_rule, example::logit_bias>;
  const decode_output plain = diffusion_decoder<cpu_backend>(tiny(), s).generate(requests);
  const std::int32_t first = plain.sequences[0].canvas[std::size_t(plain.sequences[0].prompt_length)];
  policy favour, ban;
  favour.processor.add(61, 1e4f);
  ban.processor.add(first, -INFINITY);
  const decode_output favoured = diffusion_decoder<cpu_backend, policy>(tiny(), s, favour).generate(requests);
  const decode_output banned = diffusion_decoder<cpu_backend, policy>(tiny(), s, ban).generate(requests);
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const sequence_output& f = favoured.sequences[i];
    EXPECT_EQ(std::count(f.canvas.begin() + f.prompt_length, f.canvas.end(), 61), 16) << "sequence " << i;
    const sequence_output& b = banned.sequences[i];
    EXPECT_EQ(std::count(b.canvas.begin() + b.prompt_length, b.canvas.end(), first), 0) << "sequence " << i;
  }
  EXPECT_NE(banned.sequences[0].canvas, plain.sequences[0].canvas);
  test::expect_error<argument_error>([] { example::logit_bias{}.add(-1, 1.0f).validate(); }, {"token id -1"});
}

TEST(CanvasStream, StreamsEverySequenceOfABatchUntilItsFinalText) {
  const std::string dir = std::string(UNMASK_SOURCE_DIR) + "/models/tiny-llada";
  const transformer_model model = transformer_model::load(dir);
  const bpe_tokenizer tok = bpe_tokenizer::load(dir + "/tokenizer.json");
  const std::vector<std::string> texts = {"Once upon a time", "The little dog", "In the morning"};
  std::vector<decode_request> batch;
  std::vector<std::size_t> lengths;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    batch.push_back({tok.encode(texts[i]), std::uint32_t(i)});
    lengths.push_back(batch.back().prompt.size());
  }
  diffusion_settings s;
  s.layout = {16, 8, 8};
  std::vector<std::vector<std::string>> lines(texts.size());
  example::canvas_stream stream(tok, lengths, std::int32_t(model.config().mask_token_id),
                                [&](std::size_t seq, std::int32_t, std::int32_t, const std::string& line) {
                                  lines[seq].push_back(line);
                                },
                                "\x01");
  const decode_output out = diffusion_decoder<cpu_backend>(model, s).generate(batch, std::ref(stream));
  for (std::size_t i = 0; i < texts.size(); ++i) {
    ASSERT_GE(lines[i].size(), 2u) << "sequence " << i;
    // Masks only ever turn into tokens: the count of glyphs falls to zero.
    std::size_t masks = 17;
    for (const std::string& line : lines[i]) {
      const std::size_t m = std::size_t(std::count(line.begin(), line.end(), '\x01'));
      EXPECT_LT(m, masks) << line;
      masks = m;
    }
    const sequence_output& seq = out.sequences[i];
    const std::vector<std::int32_t> generated(seq.canvas.begin() + seq.prompt_length, seq.canvas.end());
    EXPECT_EQ(lines[i].back(), tok.decode(generated, true)) << "sequence " << i;
    EXPECT_EQ(stream.lines()[i], lines[i].back());
  }
  EXPECT_EQ(example::render_canvas(tok, {5, 7, 126, 126}, 1, 126, "#"), tok.decode({7}, true) + "##");
}

}  // namespace
}  // namespace unmask
