// Stopping criteria and cancellation (unmask/decode/stopping.hpp) in the
// diffusion, resident and autoregressive decoders: a stop token or string
// ends a sequence at the block (or token) that completes it, and the tokens
// before it are those of the run without the criterion; a time limit that has
// run out stops everything before the first model call; a cancel_token set
// from another thread, while a step is in flight, makes generate() return
// after that step with what was committed. Every stop id of the model's
// config (generation_config.json's eos_token_id list) ends a sequence as the
// eos does.
#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/expect_error.hpp"
#include "support/test_files.hpp"
#include "support/tiny_model.hpp"
#include "unmask/cpu/backend.hpp"
#include "unmask/decode/ar_decoder.hpp"
#include "unmask/decode/diffusion_decoder.hpp"
#include "unmask/decode/resident_decoder.hpp"
#include "unmask/model/transformer_model.hpp"

namespace unmask {
namespace {

using test::tiny;

const std::vector<decode_request>& stop_requests = test::two_requests();

diffusion_settings layout() {
  diffusion_settings s;
  s.layout = {32, 8, 16};
  return s;
}

// A text for ids: "<id> " each (what a tokenizer's decode would do).
std::string as_text(const std::vector<std::int32_t>& ids) {
  std::string out;
  for (std::int32_t t : ids) out += std::to_string(t) + " ";
  return out;
}

// The block (0-based) holding the first generated `token`, or -1.
int first_block_with(const sequence_output& out, std::int32_t token, std::int32_t block_length) {
  const auto first = std::find(out.canvas.begin() + out.prompt_length, out.canvas.end(), token);
  return first == out.canvas.end() ? -1 : int((first - out.canvas.begin() - out.prompt_length) / block_length);
}

TEST(StopCriteria, ValidateNamesTheProblem) {
  stop_criteria c;
  c.strings = {"x"};
  test::expect_error<argument_error>([&] { c.validate(); }, {"stop strings need stop_criteria::text"});
  c.text = as_text;
  c.strings = {""};
  test::expect_error<argument_error>([&] { c.validate(); }, {"a stop string is empty"});
  c.strings.clear();
  c.time_limit = -1.0;
  test::expect_error<argument_error>([&] { c.validate(); }, {"time_limit must be >= 0"});
  diffusion_settings s = layout();
  s.stop.strings = {"x"};
  test::expect_error<argument_error>([&] { diffusion_decoder<cpu_backend>(tiny(), s); }, {"stop strings need"});
}

TEST(StopCriteria, AStopTokenEndsTheSequenceAtItsBlock) {
  const diffusion_settings plain = layout();
  const decode_output full = diffusion_decoder<cpu_backend>(tiny(), plain).generate(stop_requests);
  // The most frequent generated token of the first sequence becomes a stop token.
  const sequence_output& f0 = full.sequences[0];
  std::vector<std::int32_t> generated(f0.canvas.begin() + f0.prompt_length, f0.canvas.end());
  std::sort(generated.begin(), generated.end());
  std::int32_t stop = generated[0];
  std::size_t best = 0;
  for (std::int32_t t : generated) {
    const std::size_t n = std::size_t(std::count(generated.begin(), generated.end(), t));
    if (n > best) best = n, stop = t;
  }
  diffusion_settings s = plain;
  s.stop.token_ids = {stop};
  const decode_output got = diffusion_decoder<cpu_backend>(tiny(), s).generate(stop_requests);
  const std::int32_t eos = std::int32_t(tiny().config().eos_token_id);
  for (std::size_t q = 0; q < stop_requests.size(); ++q) {
    const sequence_output& a = full.sequences[q];
    const sequence_output& b = got.sequences[q];
    const int block = first_block_with(a, stop, 8);
    if (block < 0) {
      EXPECT_EQ(b.stop, stop_reason::length) << q;
      EXPECT_EQ(b.canvas, a.canvas) << q;
      continue;
    }
    EXPECT_EQ(b.stop, stop_reason::stop_token) << q;
    EXPECT_TRUE(b.stopped_at_eos) << q;
    const std::size_t end = std::size_t(a.prompt_length + (block + 1) * 8);
    EXPECT_TRUE(std::equal(a.canvas.begin(), a.canvas.begin() + std::ptrdiff_t(end), b.canvas.begin())) << q;
    EXPECT_TRUE(std::all_of(b.canvas.begin() + std::ptrdiff_t(end), b.canvas.end(),
                            [&](std::int32_t t) { return t == eos; }))
        << q;
    EXPECT_LT(b.forwards, a.forwards + 1) << q;
  }
  EXPECT_EQ(got.sequences[0].stop, stop_reason::stop_token);
  // The resident decoder stops at the same blocks.
  const decode_output resident = resident_decoder<cpu_backend>(tiny(), s).generate(stop_requests);
  for (std::size_t q = 0; q < stop_requests.size(); ++q) {
    EXPECT_EQ(resident.sequences[q].canvas, got.sequences[q].canvas) << q;
    EXPECT_EQ(resident.sequences[q].stop, got.sequences[q].stop) << q;
  }
}

TEST(StopCriteria, AStopStringEndsTheSequenceWhereTheTextCompletesIt) {
  const decode_output full = diffusion_decoder<cpu_backend>(tiny(), layout()).generate({stop_requests[0]});
  const sequence_output& a = full.sequences[0];
  // The text of the generated tokens of the second block's first two positions.
  const std::size_t at = std::size_t(a.prompt_length + 8);
  const std::string needle = std::to_string(a.canvas[at]) + " " + std::to_string(a.canvas[at + 1]) + " ";
  diffusion_settings s = layout();
  s.stop.strings = {needle};
  s.stop.text = as_text;
  const decode_output got = diffusion_decoder<cpu_backend>(tiny(), s).generate({stop_requests[0]});
  const sequence_output& b = got.sequences[0];
  // The string appears first in block 0 or 1, so decoding ends there.
  const std::string first_two_blocks =
      as_text(std::vector<std::int32_t>(a.canvas.begin() + a.prompt_length, a.canvas.begin() + std::ptrdiff_t(at + 8)));
  ASSERT_NE(first_two_blocks.find(needle), std::string::npos);
  EXPECT_EQ(b.stop, stop_reason::stop_string);
  EXPECT_FALSE(b.stopped_at_eos);
  EXPECT_LE(b.forwards, 8);  // two blocks of four steps at most
  EXPECT_TRUE(std::equal(a.canvas.begin(), a.canvas.begin() + std::ptrdiff_t(a.prompt_length + 8), b.canvas.begin()));
}

TEST(StopCriteria, AnExpiredTimeLimitStopsBeforeTheFirstModelCall) {
  diffusion_settings s = layout();
  s.stop.time_limit = 1e-12;
  const decode_output d = diffusion_decoder<cpu_backend>(tiny(), s).generate(stop_requests);
  EXPECT_EQ(d.forwards, 0);
  const std::int32_t mask = std::int32_t(tiny().config().mask_token_id);
  for (const sequence_output& out : d.sequences) {
    EXPECT_EQ(out.stop, stop_reason::time_limit);
    EXPECT_TRUE(std::all_of(out.canvas.begin() + out.prompt_length, out.canvas.end(),
                            [&](std::int32_t t) { return t == mask; }));
  }
  ar_settings a;
  a.max_new_tokens = 8;
  a.stop.time_limit = 1e-12;
  const decode_output r = ar_decoder<cpu_backend>(tiny(), a).generate(stop_requests);
  for (const sequence_output& out : r.sequences) {
    EXPECT_EQ(out.stop, stop_reason::time_limit);
    EXPECT_EQ(out.canvas.size(), std::size_t(out.prompt_length));  // the prefill ran, nothing was generated
  }
}

// Cancels from another thread while the decoder waits inside its step
// callback at step `at` of the first sequence; returns the output.
template <class Decoder>
decode_output cancel_at(Decoder& decoder, cancel_token token, std::int32_t at, std::int32_t& steps_seen) {
  std::mutex m;
  std::condition_variable cv;
  bool reached = false, cancelled = false;
  std::thread canceller([&] {
    std::unique_lock<std::mutex> lock(m);
    cv.wait(lock, [&] { return reached; });
    token.cancel();
    cancelled = true;
    cv.notify_all();
  });
  steps_seen = 0;
  const decode_output out = decoder.generate(stop_requests, [&](const decode_event& e) {
    if (e.sequence != 0) return;
    if (steps_seen++ != at) return;
    std::unique_lock<std::mutex> lock(m);
    reached = true;
    cv.notify_all();
    cv.wait(lock, [&] { return cancelled; });
  });
  canceller.join();
  return out;
}

TEST(StopCriteria, CancellingFromAnotherThreadReturnsWhatWasCommitted) {
  diffusion_settings s = layout();
  const decode_output full = diffusion_decoder<cpu_backend>(tiny(), s).generate(stop_requests);
  diffusion_decoder<cpu_backend> decoder(tiny(), s);
  std::int32_t seen = 0;
  const decode_output got = cancel_at(decoder, s.stop.cancel, 5, seen);
  EXPECT_EQ(seen, 6);           // the step in flight finished, no other began
  EXPECT_EQ(got.forwards, 6);
  const std::int32_t mask = std::int32_t(tiny().config().mask_token_id);
  for (std::size_t q = 0; q < stop_requests.size(); ++q) {
    const sequence_output& a = full.sequences[q];
    const sequence_output& b = got.sequences[q];
    EXPECT_EQ(b.stop, stop_reason::cancelled);
    // 6 steps of 2 tokens (16 steps over 4 blocks: 4 a block, 8 masks): block 0 and half of block 1.
    EXPECT_EQ(b.committed, 12);
    for (std::size_t p = std::size_t(b.prompt_length); p < b.canvas.size(); ++p)
      EXPECT_TRUE(b.canvas[p] == mask || b.canvas[p] == a.canvas[p]) << q << " at " << p;
  }
  // The token is shared: reset it and the decoder runs to the end again.
  s.stop.cancel.reset();
  const decode_output again = decoder.generate(stop_requests);
  EXPECT_EQ(again.sequences[0].canvas, full.sequences[0].canvas);

  ar_settings a;
  a.max_new_tokens = 12;
  a.stop_at_eos = false;
  ar_decoder<cpu_backend> ar(tiny(), a);
  const decode_output r = cancel_at(ar, a.stop.cancel, 3, seen);
  EXPECT_EQ(seen, 4);
  for (const sequence_output& out : r.sequences) {
    EXPECT_EQ(out.stop, stop_reason::cancelled);
    EXPECT_EQ(out.canvas.size(), std::size_t(out.prompt_length + 4));
  }
}

TEST(StopCriteria, AutoregressiveStopTokensAndStrings) {
  ar_settings a;
  a.max_new_tokens = 12;
  a.stop_at_eos = false;
  const decode_output full = ar_decoder<cpu_backend>(tiny(), a).generate(stop_requests);
  const sequence_output& f = full.sequences[0];
  const std::int32_t third = f.canvas[std::size_t(f.prompt_length + 2)];
  a.stop.token_ids = {third};
  const decode_output got = ar_decoder<cpu_backend>(tiny(), a).generate({stop_requests[0]});
  const sequence_output& g = got.sequences[0];
  EXPECT_EQ(g.stop, stop_reason::stop_token);
  const auto first = std::find(f.canvas.begin() + f.prompt_length, f.canvas.end(), third);
  EXPECT_EQ(g.canvas, std::vector<std::int32_t>(f.canvas.begin(), first + 1));  // the stop token stays last
  a.stop.token_ids.clear();
  a.stop.strings = {std::to_string(third) + " "};
  a.stop.text = as_text;
  const decode_output by_string = ar_decoder<cpu_backend>(tiny(), a).generate({stop_requests[0]});
  EXPECT_EQ(by_string.sequences[0].stop, stop_reason::stop_string);
  EXPECT_LE(by_string.sequences[0].canvas.size(), g.canvas.size());
}

// A copy of the tiny model whose generation_config.json lists `ids` as eos_token_id.
std::string with_generation_config(const test::scratch_dir& dir, const nlohmann::json& ids) {
  const std::string out = dir.file("model");
  test::copy_checkpoint(test::data_dir() + "/tiny_llada_mha", out, [](auto&, auto&) {});
  test::write_text(out + "/generation_config.json", nlohmann::json{{"eos_token_id", ids}, {"temperature", 0.0}}.dump());
  return out;
}

// The most frequent generated token of the first sequence of `full`.
std::int32_t most_frequent(const decode_output& full) {
  const sequence_output& f0 = full.sequences[0];
  std::vector<std::int32_t> generated(f0.canvas.begin() + f0.prompt_length, f0.canvas.end());
  std::int32_t best_token = generated[0];
  std::size_t best = 0;
  for (std::int32_t t : generated) {
    const std::size_t n = std::size_t(std::count(generated.begin(), generated.end(), t));
    if (n > best) best = n, best_token = t;
  }
  return best_token;
}

TEST(StopCriteria, EveryStopIdOfTheModelsConfigStopsDecoding) {
  const diffusion_settings plain = layout();
  const decode_output full = diffusion_decoder<cpu_backend>(tiny(), plain).generate(stop_requests);
  const std::int32_t stop = most_frequent(full);
  const std::int64_t eos = tiny().config().eos_token_id;
  test::scratch_dir dir;
  const transformer_model model = transformer_model::load(with_generation_config(dir, {eos, stop}));
  EXPECT_EQ(model.config().stop_token_ids, (std::vector<std::int64_t>{eos, stop}));

  diffusion_settings explicit_stop = plain;  // the same stop given by hand, on the original model
  explicit_stop.stop.token_ids = {stop};
  const decode_output want = diffusion_decoder<cpu_backend>(tiny(), explicit_stop).generate(stop_requests);
  ASSERT_EQ(want.sequences[0].stop, stop_reason::stop_token);
  diffusion_settings s = plain;
  s.stop_at_eos = true;
  explicit_stop.stop_at_eos = true;
  const decode_output want_eos = diffusion_decoder<cpu_backend>(tiny(), explicit_stop).generate(stop_requests);
  const decode_output got = diffusion_decoder<cpu_backend>(model, s).generate(stop_requests);
  const decode_output resident = resident_decoder<cpu_backend>(model, s).generate(stop_requests);
  for (std::size_t q = 0; q < stop_requests.size(); ++q) {
    EXPECT_EQ(got.sequences[q].canvas, want_eos.sequences[q].canvas) << q;
    EXPECT_EQ(got.sequences[q].stop, want_eos.sequences[q].stop) << q;
    EXPECT_EQ(resident.sequences[q].canvas, want_eos.sequences[q].canvas) << q;
  }
  EXPECT_EQ(got.sequences[0].stop, stop_reason::stop_token);
  // Without stop_at_eos, or with an eos id given by hand, the config's list does not apply.
  s.stop_at_eos = false;
  EXPECT_EQ(diffusion_decoder<cpu_backend>(model, s).generate(stop_requests).sequences[0].canvas, full.sequences[0].canvas);
  s.stop_at_eos = true;
  s.eos_token_id = std::int32_t(eos);
  EXPECT_EQ(diffusion_decoder<cpu_backend>(model, s).settings().stop.token_ids, std::vector<std::int32_t>{});

  // The autoregressive decoder stops at the config's stop id where it is generated.
  ar_settings a;
  a.max_new_tokens = 12;
  a.stop_at_eos = false;
  const sequence_output f = ar_decoder<cpu_backend>(tiny(), a).generate({stop_requests[0]}).sequences[0];
  const std::int32_t third = f.canvas[std::size_t(f.prompt_length + 2)];
  test::scratch_dir dir2;
  const transformer_model ar_model = transformer_model::load(with_generation_config(dir2, third));
  a.stop_at_eos = true;
  const sequence_output g = ar_decoder<cpu_backend>(ar_model, a).generate({stop_requests[0]}).sequences[0];
  EXPECT_EQ(g.stop, stop_reason::stop_token);
  const auto first = std::find(f.canvas.begin() + f.prompt_length, f.canvas.end(), third);
  EXPECT_EQ(g.canvas, std::vector<std::int32_t>(f.canvas.begin(), first + 1));
}

TEST(StopCriteria, GenerationConfigIdsAreChecked) {
  test::scratch_dir dir;
  test::expect_error<config_error>([&] { transformer_model::load(with_generation_config(dir, {5, 1000})); },
                                   {"generation_config.json", "stop token id 1000", "outside the vocabulary"});
  test::scratch_dir dir2;
  test::expect_error<config_error>([&] { transformer_model::load(with_generation_config(dir2, "x")); },
                                   {"generation_config.json", "eos_token_id"});
  test::scratch_dir dir3;
  test::expect_error<config_error>(
      [&] { transformer_model::load(with_generation_config(dir3, tiny().config().mask_token_id)); },
      {"mask_token_id", "also an end-of-sequence id"});
}

}  // namespace
}  // namespace unmask
