// Step hooks act on confidence decoding: a vetoed candidate is not
// committed, forced ones are, confidences the hook rewrites reorder the
// commits, canvas edits stay and leave the candidates, `stop` ends a
// sequence, the logits hook's edits reach the token choice, and misuse is an
// error naming it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "support/expect_error.hpp"
#include "support/test_files.hpp"
#include "support/tiny_model.hpp"
#include "unmask/cpu/backend.hpp"
#include "unmask/decode/diffusion_decoder.hpp"

namespace unmask {
namespace {

using test::tiny;

const std::vector<decode_request>& hook_requests = test::two_requests();

diffusion_settings one_per_step() {
  diffusion_settings s;
  s.layout = {8, 4, 8};  // two blocks of 4, one commit per step
  return s;
}

std::int32_t mask_id() { return std::int32_t(tiny().config().mask_token_id); }

TEST(StepHooks, AVetoedCandidateIsNotCommittedThatStep) {
  diffusion_decoder<cpu_backend> d(tiny(), one_per_step());
  std::vector<std::vector<std::int32_t>> vetoed(2);
  step_hooks hooks;
  hooks.candidates = [&](step_candidates& c) {
    // Veto the most confident candidate whenever there is another.
    if (c.count < 2) return vetoed[c.sequence].push_back(-1);
    const std::int32_t best = std::int32_t(std::max_element(c.confidence, c.confidence + c.count) - c.confidence);
    c.actions[best] = candidate_action::veto;
    vetoed[c.sequence].push_back(c.positions[best]);
  };
  std::vector<std::vector<std::int32_t>> committed(2);
  const decode_output out = d.generate(hook_requests, [&](const decode_event& e) {
    ASSERT_EQ(e.committed_positions->size(), 1u);
    committed[e.sequence].push_back((*e.committed_positions)[0]);
  }, hooks);
  for (std::size_t s = 0; s < 2; ++s) {
    ASSERT_EQ(committed[s].size(), vetoed[s].size());
    for (std::size_t i = 0; i < committed[s].size(); ++i) EXPECT_NE(committed[s][i], vetoed[s][i]);
    EXPECT_EQ(std::count(out.sequences[s].canvas.begin(), out.sequences[s].canvas.end(), mask_id()), 0);
  }
}

TEST(StepHooks, ForcedCandidatesAreCommittedWithTheirTokens) {
  // Forcing every candidate fills a block in one step with the proposals,
  // which is what a threshold rule that takes everything commits.
  diffusion_settings s = one_per_step();
  step_hooks hooks;
  hooks.candidates = [](step_candidates& c) {
    std::fill(c.actions, c.actions + c.count, candidate_action::force);
  };
  const decode_output forced = diffusion_decoder<cpu_backend>(tiny(), s).generate(hook_requests, {}, hooks);
  s.selection = selection_rule::threshold(-1.0f);
  const decode_output all = diffusion_decoder<cpu_backend>(tiny(), s).generate(hook_requests);
  EXPECT_EQ(forced.forwards, 2);
  EXPECT_EQ(forced.committed, 16);
  for (std::size_t i = 0; i < 2; ++i) EXPECT_EQ(forced.sequences[i].canvas, all.sequences[i].canvas);
}

TEST(StepHooks, RewrittenConfidencesReorderTheCommits) {
  // Confidence = position: the rule commits the rightmost candidate first.
  step_hooks hooks;
  hooks.candidates = [](step_candidates& c) {
    for (std::int32_t i = 0; i < c.count; ++i) c.confidence[i] = float(c.positions[i]);
  };
  std::vector<std::int32_t> order;
  diffusion_decoder<cpu_backend>(tiny(), one_per_step()).generate({hook_requests[0]}, [&](const decode_event& e) {
    order.push_back((*e.committed_positions)[0]);
  }, hooks);
  const std::vector<std::int32_t> want = {7, 6, 5, 4, 11, 10, 9, 8};
  EXPECT_EQ(order, want);
}

TEST(StepHooks, CanvasEditsStayAndLeaveTheCandidates) {
  step_hooks hooks;
  int calls = 0;
  hooks.candidates = [&](step_candidates& c) {
    if (c.step > 0) {
      for (std::int32_t i = 0; i < c.count; ++i) EXPECT_NE(c.positions[i], c.block_end - 1) << "a filled position";
    }
    if (c.step == 0) (*c.canvas)[std::size_t(c.block_end - 1)] = 98;  // fill the block's last position
    ++calls;
  };
  const decode_output out = diffusion_decoder<cpu_backend>(tiny(), one_per_step()).generate({hook_requests[0]}, {}, hooks);
  const std::vector<std::int32_t>& canvas = out.sequences[0].canvas;
  EXPECT_EQ(canvas[7], 98);
  EXPECT_EQ(canvas[11], 98);
  EXPECT_EQ(calls, 6);  // three steps per block: the hook filled one position of four
  EXPECT_EQ(std::count(canvas.begin(), canvas.end(), mask_id()), 0);
}

TEST(StepHooks, StopEndsTheSequenceAfterTheStep) {
  step_hooks hooks;
  hooks.candidates = [](step_candidates& c) { c.stop = c.sequence == 1 && c.block == 1; };
  const decode_output out = diffusion_decoder<cpu_backend>(tiny(), one_per_step()).generate(hook_requests, {}, hooks);
  EXPECT_EQ(out.sequences[0].stop, stop_reason::length);
  EXPECT_EQ(out.sequences[1].stop, stop_reason::hook);
  EXPECT_EQ(out.sequences[1].forwards, 5);  // four steps of block 0, one of block 1
  const std::vector<std::int32_t>& canvas = out.sequences[1].canvas;
  EXPECT_EQ(std::count(canvas.begin() + 11, canvas.end(), mask_id()), 3);
  EXPECT_STREQ(to_string(stop_reason::hook), "hook");
}

TEST(StepHooks, TheLogitsHookEditsReachTheChoiceAndTheCandidatesHook) {
  diffusion_settings s = one_per_step();
  step_hooks hooks;
  hooks.with_logits = true;
  hooks.logits = [](step_logits& l) {
    for (std::int32_t r = 0; r < l.count; ++r) l.logits[r * l.vocab + 33] = 100.0f;
  };
  int seen = 0;
  hooks.candidates = [&](step_candidates& c) {
    ASSERT_NE(c.logits, nullptr);
    for (std::int32_t i = 0; i < c.count; ++i) {
      EXPECT_EQ(c.logits[i * c.vocab + 33], 100.0f);
      EXPECT_EQ(c.tokens[i], 33);
    }
    ++seen;
  };
  const decode_output out = diffusion_decoder<cpu_backend>(tiny(), s).generate(hook_requests, {}, hooks);
  EXPECT_EQ(seen, 16);
  for (const sequence_output& seq : out.sequences)
    for (std::size_t i = std::size_t(seq.prompt_length); i < seq.canvas.size(); ++i) EXPECT_EQ(seq.canvas[i], 33);
}

TEST(StepHooks, MisuseIsAnError) {
  diffusion_settings s = one_per_step();
  step_hooks hooks;
  hooks.candidates = [](step_candidates& c) {
    if (c.block == 1) (*c.canvas)[std::size_t(c.prompt_length)] = mask_id();
  };
  test::expect_error<argument_error>(
      [&] { diffusion_decoder<cpu_backend>(tiny(), s).generate({hook_requests[0]}, {}, hooks); },
      {"left a mask at position 4", "before the current block"});
  hooks.candidates = [](step_candidates& c) {
    c.actions[0] = candidate_action::force;
    c.tokens[0] = -3;
  };
  test::expect_error<argument_error>(
      [&] { diffusion_decoder<cpu_backend>(tiny(), s).generate({hook_requests[0]}, {}, hooks); }, {"forced token -3"});
  hooks.candidates = [](step_candidates& c) { std::fill(c.actions, c.actions + c.count, candidate_action::veto); };
  test::expect_error<argument_error>(
      [&] { diffusion_decoder<cpu_backend>(tiny(), s).generate({hook_requests[0]}, {}, hooks); }, {"committed nothing"});
  s.mode = decode_mode::ancestral;
  test::expect_error<argument_error>(
      [&] { diffusion_decoder<cpu_backend>(tiny(), s).generate({hook_requests[0]}, {}, hooks); }, {"not on ancestral"});
}

}  // namespace
}  // namespace unmask
