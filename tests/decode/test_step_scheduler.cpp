// The step scheduler (unmask/decode/step_scheduler.hpp): requests with their
// own settings joining and leaving a running batch between denoising steps
// decode exactly what diffusion_decoder decodes for each alone (CPU backend,
// token for token, with forwards and committed counts), whatever the order
// and time they arrive in and whatever runs beside them; the queue and the
// batch keep their limits; cancellation and callbacks; bad requests are
// refused with a message.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "support/decode_cases.hpp"
#include "support/expect_error.hpp"
#include "support/tiny_model.hpp"
#include "unmask/cpu/backend.hpp"
#include "unmask/decode/diffusion_decoder.hpp"
#include "unmask/decode/step_scheduler.hpp"

namespace unmask {
namespace {

using test::expect_error;
using test::tiny;

// Requests of different prompts, lengths and policies (tests/support/decode_cases.hpp).
std::vector<scheduled_request> mixed_requests() {
  const std::vector<std::vector<std::int32_t>> prompts = {
      {5, 17, 42, 3}, {64, 12, 7, 80, 81, 1, 2}, {9}, {33, 34, 35, 36, 37, 38, 39, 40, 41}};
  std::vector<scheduled_request> out;
  std::uint32_t id = 10;
  for (const test::policy_case& c : test::confidence_policy_cases()) {
    scheduled_request r;
    r.prompt = prompts[out.size() % prompts.size()];
    r.id = id++;
    r.settings = c.settings;
    out.push_back(r);
  }
  scheduled_request longer;
  longer.prompt = {2, 4, 6};
  longer.id = 99;
  longer.settings = test::short_layout();
  longer.settings.layout = {32, 16, 8};  // other gen and block lengths, fewer steps
  out.push_back(longer);
  scheduled_request stopping = longer;
  stopping.id = 100;
  stopping.settings.stop_at_eos = true;
  stopping.settings.eos_token_id = 68;  // a token the random model proposes often: stops in its first block
  out.push_back(stopping);
  return out;
}

sequence_output alone(const scheduled_request& r) {
  return diffusion_decoder<cpu_backend>(tiny(), r.settings).generate({{r.prompt, r.id}}).sequences[0];
}

void expect_same(const sequence_output& got, const sequence_output& want, const std::string& what) {
  EXPECT_EQ(got.canvas, want.canvas) << what;
  EXPECT_EQ(got.forwards, want.forwards) << what;
  EXPECT_EQ(got.committed, want.committed) << what;
  EXPECT_EQ(got.stopped_at_eos, want.stopped_at_eos) << what;
  EXPECT_EQ(got.stop, want.stop) << what;
}

TEST(StepScheduler, EachRequestDecodesAsItWouldAlone) {
  const std::vector<scheduled_request> requests = mixed_requests();
  std::vector<sequence_output> want;
  for (const scheduled_request& r : requests) want.push_back(alone(r));
  // All at once; then arriving two steps apart; then in reverse, with a small batch.
  for (int arrival : {0, 2, 5}) {
    step_scheduler<cpu_backend> scheduler(tiny(), {64, arrival == 5 ? 3 : 16, 16384});
    std::map<std::uint64_t, std::size_t> index;
    std::size_t next = 0;
    std::int64_t rounds = 0, most_running = 0;
    while (next < requests.size() || !scheduler.idle()) {
      if (next < requests.size() && (arrival == 0 || rounds % arrival == 0)) {
        const std::size_t i = arrival == 5 ? requests.size() - 1 - next : next;
        index[*scheduler.submit(requests[i])] = i;
        ++next;
        if (arrival == 0) continue;
      }
      scheduler.step();
      most_running = std::max(most_running, scheduler.running());
      ASSERT_LT(++rounds, 1000);
    }
    EXPECT_LE(most_running, arrival == 5 ? 3 : 16);
    const auto finished = scheduler.take_finished();
    ASSERT_EQ(finished.size(), requests.size());
    for (const auto& [handle, out] : finished) {
      const std::size_t i = index.at(handle);
      expect_same(out, want[i], "request " + std::to_string(i) + ", arrival " + std::to_string(arrival));
    }
  }
  bool stopped = false;
  for (const sequence_output& w : want) stopped |= w.stopped_at_eos;
  EXPECT_TRUE(stopped) << "no request met its end-of-sequence token: the stop path is untested";
}

// Guidance (each guided request's unconditional copy in the same forward):
// guided requests of different scales among unguided ones, each as
// diffusion_decoder decodes it alone with the same scale.
TEST(StepScheduler, GuidedRequestsDecodeAsTheyWouldAlone) {
  std::vector<scheduled_request> requests = mixed_requests();
  const float scales[] = {0.5f, 0.0f, 2.0f};
  for (std::size_t i = 0; i < requests.size(); ++i) requests[i].settings.cfg_scale = scales[i % 3];
  std::vector<sequence_output> want;
  for (const scheduled_request& r : requests) want.push_back(alone(r));
  // Guidance changes what is decoded (else this test would not tell).
  int changed = 0;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    if (requests[i].settings.cfg_scale == 0.0f) continue;
    scheduled_request unguided = requests[i];
    unguided.settings.cfg_scale = 0.0f;
    changed += alone(unguided).canvas != want[i].canvas;
  }
  EXPECT_GT(changed, 0) << "no guided request decodes differently from its unguided self";
  step_scheduler<cpu_backend> scheduler(tiny(), {64, 5, 16384});
  std::map<std::uint64_t, std::size_t> index;
  for (std::size_t i = 0; i < requests.size(); ++i) index[*scheduler.submit(requests[i])] = i;
  scheduler.drain();
  const auto finished = scheduler.take_finished();
  ASSERT_EQ(finished.size(), requests.size());
  for (const auto& [handle, out] : finished) {
    const std::size_t i = index.at(handle);
    expect_same(out, want[i], "request " + std::to_string(i) + ", cfg " + std::to_string(requests[i].settings.cfg_scale));
  }
}

TEST(StepScheduler, LimitsQueueAndBatch) {
  scheduled_request r;
  r.prompt = {5, 17, 42, 3};
  r.settings = test::short_layout();  // 4 + 24 positions
  step_scheduler<cpu_backend> scheduler(tiny(), {2, 4, 60});
  ASSERT_TRUE(scheduler.submit(r));
  ASSERT_TRUE(scheduler.submit(r));
  EXPECT_FALSE(scheduler.submit(r)) << "a full queue refuses";
  scheduler.step();
  EXPECT_EQ(scheduler.running(), 2);  // 56 of 60 canvas rows
  ASSERT_TRUE(scheduler.submit(r));
  scheduler.step();
  EXPECT_EQ(scheduler.running(), 2) << "a third canvas would pass max_canvas_rows: it waits";
  EXPECT_EQ(scheduler.queued(), 1);
  scheduler.drain();
  EXPECT_EQ(scheduler.take_finished().size(), 3u);
  r.prompt = {1, 2, 3, 4, 5, 6, 7, 8};
  r.settings.layout = {56, 8, 56};  // 64 positions: the model's longest, more than the batch may hold
  expect_error<argument_error>([&] { scheduler.submit(r); }, {"request of 64 positions exceeds max_canvas_rows 60"});
  expect_error<argument_error>([&] { step_scheduler<cpu_backend>(tiny(), {1, 0, 10}); }, {"max_running"});
}

TEST(StepScheduler, CancelsAndReportsEachStep) {
  scheduled_request r;
  r.prompt = {5, 17, 42, 3};
  r.settings = test::short_layout();
  step_scheduler<cpu_backend> scheduler(tiny(), {});
  std::vector<std::int32_t> seen;  // positions committed, as the callback saw them
  bool finished = false;
  const std::uint64_t kept = *scheduler.submit(r, [&](const request_event& e) {
    seen.insert(seen.end(), e.committed_positions->begin(), e.committed_positions->end());
    finished = e.finished;
  });
  const std::uint64_t dropped = *scheduler.submit(r);
  scheduler.step();
  EXPECT_TRUE(scheduler.cancel(dropped));
  EXPECT_FALSE(scheduler.cancel(dropped));
  scheduler.drain();
  EXPECT_TRUE(finished);
  const auto done = scheduler.take_finished();
  ASSERT_EQ(done.size(), 2u);
  for (const auto& [handle, out] : done) {
    if (handle == dropped) {
      EXPECT_EQ(out.stop, stop_reason::cancelled);
      EXPECT_EQ(out.forwards, 1);
      continue;
    }
    EXPECT_EQ(handle, kept);
    std::sort(seen.begin(), seen.end());
    std::vector<std::int32_t> all;
    for (std::int32_t p = out.prompt_length; p < std::int32_t(out.canvas.size()); ++p) all.push_back(p);
    EXPECT_EQ(seen, all) << "every generated position is reported committed once";
    expect_same(out, alone(r), "the request that was not cancelled");
  }
  EXPECT_FALSE(scheduler.cancel(kept)) << "finished";
}

TEST(StepScheduler, RefusesWhatItDoesNotRun) {
  step_scheduler<cpu_backend> scheduler(tiny(), {});
  scheduled_request r;
  r.prompt = {5};
  r.settings = test::short_layout();
  r.settings.cache.mode = cache_mode::dual;
  expect_error<argument_error>([&] { scheduler.submit(r); }, {"without a K/V cache"});
  r.settings = test::short_layout();
  r.settings.cfg_scale = 1.0f;  // guided: two sequences of rows, beyond a limit one would fit
  step_scheduler<cpu_backend> narrow(tiny(), {4, 4, std::int64_t(1 + r.settings.layout.gen_length) + 1});
  expect_error<argument_error>([&] { narrow.submit(r); }, {"twice for guidance", "max_canvas_rows"});
  r.settings.cfg_scale = 0.0f;
  EXPECT_TRUE(narrow.submit(r).has_value());
  r.settings = test::short_layout();
  r.settings.mode = decode_mode::ancestral;
  expect_error<argument_error>([&] { scheduler.submit(r); }, {"confidence decoding"});
  r.settings = test::short_layout();
  r.prompt = {4096 * 2};
  expect_error<argument_error>([&] { scheduler.submit(r); }, {"outside the vocabulary"});
  EXPECT_TRUE(scheduler.idle());
}

}  // namespace
}  // namespace unmask
