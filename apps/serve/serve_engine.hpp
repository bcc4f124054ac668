// apps/serve/serve_engine.hpp
//
// The server's decoding loop: one thread owns an unmask::step_scheduler and
// runs it, the HTTP threads talk to it only through this class. A handler
// submits a group of jobs (the choices of one HTTP request) and waits, with a
// timeout, for the loop to admit all of them or none (the queue's bound); it
// then reads its channels, which the loop fills between denoising steps with
// the positions each step committed and, at the end, the finished output.
// Cancellation (a client that went away, a request past its deadline, a
// drain that gave up) is posted to the loop, which applies it before its next
// step. Everything the scheduler touches stays on the loop thread, so a
// request's output is exactly what the scheduler gives it: the same as
// diffusion_decoder alone, whatever else is running (the tests check it over
// HTTP). The loop also keeps the figures /metrics reports.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "unmask/decode/step_scheduler.hpp"

namespace serve {

using clock_type = std::chrono::steady_clock;

struct job {
  std::vector<std::int32_t> prompt;
  std::uint32_t id = 0;  // keys the draws (the choice's index): equal jobs decode equally
  unmask::diffusion_settings settings;
};

// One denoising step of one job: the generated positions it committed (0 is
// the first generated position) and the tokens now there.
struct step_event {
  std::int32_t block = 0, step = 0;
  std::vector<std::int32_t> positions, tokens;
  std::int64_t masks_left = 0;  // generated positions still masked after it
};

// What the loop tells one job's handler. Guarded by `mutex`.
struct channel {
  std::mutex mutex;
  std::condition_variable changed;
  bool keep_events = false;             // the handler streams them (canvas events)
  std::deque<step_event> events;        // not yet taken by the handler
  std::vector<std::int32_t> generated;  // the generated positions as they stand (masks where none yet)
  std::int64_t steps = 0;
  bool done = false;
  std::optional<unmask::sequence_output> output;
  std::string failure;  // set when the loop failed the job (a model error); output is then empty
  clock_type::time_point submitted, first_commit, finished;
  bool committed_any = false;
  std::uint64_t handle = 0;
};

enum class admission { admitted, queue_full, draining, invalid };

struct admission_result {
  admission status = admission::invalid;
  std::string message;  // why it is invalid (the library's argument_error)
  std::vector<std::shared_ptr<channel>> channels;
};

// Figures for /metrics, updated by the loop.
struct engine_figures {
  std::int64_t queued = 0, running = 0;
  std::int64_t model_calls = 0, sequence_forwards = 0, committed_tokens = 0, finished_jobs = 0;
  std::int64_t canvas_rows = 0;  // prompt + generated positions fed, summed over sequences and forwards
  double step_seconds_sum = 0.0;
  // Step-time histogram: counts of steps at most each bound (cumulative, Prometheus style).
  static constexpr double bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0};
  std::int64_t step_buckets[sizeof(bounds) / sizeof(double)] = {};
  // Committed tokens over the last seconds, for a tokens/s gauge: (time, tokens) per step.
  std::deque<std::pair<clock_type::time_point, std::int64_t>> recent;
  double tokens_per_second(clock_type::time_point now, double window = 10.0) const {
    std::int64_t tokens = 0;
    for (const auto& [t, n] : recent)
      if (std::chrono::duration<double>(now - t).count() <= window) tokens += n;
    return double(tokens) / window;
  }
};

template <class Backend>
class serve_engine {
 public:
  serve_engine(const unmask::transformer_model& model, unmask::scheduler_limits limits, Backend backend = {})
      : scheduler_(model, limits, {}, std::move(backend)), max_queued_(limits.max_queued) {
    loop_ = std::thread([this] { run(); });
  }
  ~serve_engine() { stop(); }
  serve_engine(const serve_engine&) = delete;
  serve_engine& operator=(const serve_engine&) = delete;

  // Admits every job of a group or none; waits for the loop (between two steps).
  admission_result submit(std::vector<job> jobs, bool keep_events) {
    if (std::int64_t(jobs.size()) > max_queued_)  // could never be admitted: not a matter of retrying
      return {admission::invalid,
              std::to_string(jobs.size()) + " choices (prompts x n) exceed the queue's " + std::to_string(max_queued_) +
                  " (--max-queued)",
              {}};
    auto entry = std::make_shared<pending>();
    entry->jobs = std::move(jobs);
    entry->keep_events = keep_events;
    std::future<admission_result> answer = entry->answer.get_future();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_ || draining_) return {admission::draining, "the server is shutting down", {}};
      inbox_.push_back(entry);
    }
    wake_.notify_one();
    return answer.get();
  }

  // Cancels a job (no effect once it is done).
  void cancel(const std::shared_ptr<channel>& c) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      cancels_.push_back(c);
    }
    wake_.notify_one();
  }

  // New submissions are refused from now on; the ones admitted run to the end.
  void begin_drain() {
    std::lock_guard<std::mutex> lock(mutex_);
    draining_ = true;
  }
  bool draining() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return draining_;
  }
  // Nothing queued, running or about to be submitted.
  bool idle() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return inbox_.empty() && figures_.queued == 0 && figures_.running == 0;
  }

  engine_figures figures() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return figures_;
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_ && !loop_.joinable()) return;
      stopping_ = true;
    }
    wake_.notify_one();
    if (loop_.joinable()) loop_.join();
  }

 private:
  struct pending {
    std::vector<job> jobs;
    bool keep_events = false;
    std::promise<admission_result> answer;
  };

  void run() {
    for (;;) {
      std::vector<std::shared_ptr<pending>> inbox;
      std::vector<std::shared_ptr<channel>> cancels;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stopping_ || !inbox_.empty() || !cancels_.empty() || !scheduler_.idle(); });
        if (stopping_) break;
        inbox.swap(inbox_);
        cancels.swap(cancels_);
      }
      for (auto& p : inbox) admit(*p);
      for (auto& c : cancels)
        if (c->handle != 0) scheduler_.cancel(c->handle);
      if (!scheduler_.idle()) step();
      retire();
      std::lock_guard<std::mutex> lock(mutex_);
      figures_.queued = scheduler_.queued();
      figures_.running = scheduler_.running();
    }
    // Stopping: every job still held ends cancelled, so no handler waits forever.
    for (auto& [handle, c] : open_) scheduler_.cancel(handle);
    retire();
    std::vector<std::shared_ptr<pending>> inbox;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      inbox.swap(inbox_);
    }
    for (auto& p : inbox) p->answer.set_value({admission::draining, "the server is shutting down", {}});
  }

  void admit(pending& p) {
    admission_result result;
    std::vector<std::uint64_t> handles;
    try {
      for (job& j : p.jobs) {
        auto c = std::make_shared<channel>();
        c->keep_events = p.keep_events;
        c->submitted = clock_type::now();
        c->generated.assign(std::size_t(j.settings.layout.gen_length), -1);
        const std::int32_t prompt_length = std::int32_t(j.prompt.size());
        const std::int64_t copies = j.settings.cfg_scale > 0.0f ? 2 : 1;  // guided: its unconditional copy too
        std::weak_ptr<channel> weak = c;
        const auto handle = scheduler_.submit({std::move(j.prompt), j.id, j.settings},
                                              [this, weak, prompt_length, copies](const unmask::request_event& e) {
                                                ++step_sequences_;
                                                step_rows_ += copies * std::int64_t(e.canvas->size());
                                                step_committed_ += std::int64_t(e.committed_positions->size());
                                                if (auto ch = weak.lock()) record(*ch, e, prompt_length);
                                              });
        if (!handle) {
          result.status = admission::queue_full;
          break;
        }
        c->handle = *handle;
        handles.push_back(*handle);
        result.channels.push_back(std::move(c));
      }
      if (result.status != admission::queue_full) result.status = admission::admitted;
    } catch (const unmask::error& e) {
      result.status = admission::invalid;
      result.message = e.what();
    }
    if (result.status != admission::admitted) {  // all or none
      for (std::uint64_t h : handles) scheduler_.cancel(h);
      (void)scheduler_.take_finished();
      result.channels.clear();
    } else {
      for (auto& c : result.channels) open_[c->handle] = c;
    }
    p.answer.set_value(std::move(result));
  }

  static void record(channel& c, const unmask::request_event& e, std::int32_t prompt_length) {
    step_event ev{e.block, e.step, {}, {}, 0};
    for (std::int32_t p : *e.committed_positions) {
      ev.positions.push_back(p - prompt_length);
      ev.tokens.push_back((*e.canvas)[std::size_t(p)]);
    }
    std::lock_guard<std::mutex> lock(c.mutex);
    for (std::size_t i = 0; i < ev.positions.size(); ++i) c.generated[std::size_t(ev.positions[i])] = ev.tokens[i];
    ev.masks_left = std::count(c.generated.begin(), c.generated.end(), -1);
    if (!ev.positions.empty() && !c.committed_any) {
      c.committed_any = true;
      c.first_commit = clock_type::now();
    }
    ++c.steps;
    if (c.keep_events) c.events.push_back(std::move(ev));
    c.changed.notify_all();
  }

  void step() {
    step_sequences_ = step_committed_ = step_rows_ = 0;
    const auto t0 = clock_type::now();
    std::int64_t calls = 0;
    std::string failure;
    try {
      calls = scheduler_.step();
    } catch (const std::exception& e) {
      failure = e.what();
    }
    const auto t1 = clock_type::now();
    if (!failure.empty()) {  // the batch's state is unknown: its jobs fail (the queued ones wait on)
      for (auto& [handle, c] : open_) {
        if (!scheduler_.is_running(handle)) continue;
        {
          std::lock_guard<std::mutex> lock(c->mutex);
          c->failure = failure;
        }
        scheduler_.cancel(handle);
      }
    }
    const double seconds = std::chrono::duration<double>(t1 - t0).count();
    std::lock_guard<std::mutex> lock(mutex_);
    if (calls > 0) {
      figures_.model_calls += calls;
      figures_.sequence_forwards += step_sequences_;
      figures_.committed_tokens += step_committed_;
      figures_.canvas_rows += step_rows_;
      figures_.step_seconds_sum += seconds;
      for (std::size_t i = 0; i < std::size(engine_figures::bounds); ++i)
        if (seconds <= engine_figures::bounds[i]) ++figures_.step_buckets[i];
      figures_.recent.emplace_back(t1, step_committed_);
      while (std::chrono::duration<double>(t1 - figures_.recent.front().first).count() > 60.0)
        figures_.recent.pop_front();
    }
  }

  // Hands finished jobs their outputs; the gauges are updated first, so a
  // handler woken by its job's end never reads its job as still running.
  void retire() {
    auto finished = scheduler_.take_finished();
    const auto now = clock_type::now();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      figures_.queued = scheduler_.queued();
      figures_.running = scheduler_.running();
      figures_.finished_jobs += std::int64_t(finished.size());
    }
    for (auto& [handle, out] : finished) {
      auto found = open_.find(handle);
      if (found == open_.end()) continue;
      std::shared_ptr<channel> c = found->second;
      open_.erase(found);
      {
        std::lock_guard<std::mutex> lock(c->mutex);
        c->output = std::move(out);
        c->done = true;
        c->finished = now;
        c->changed.notify_all();
      }
    }
  }

  unmask::step_scheduler<Backend> scheduler_;
  std::int64_t max_queued_;
  std::map<std::uint64_t, std::shared_ptr<channel>> open_;  // loop thread only
  std::int64_t step_sequences_ = 0, step_committed_ = 0, step_rows_ = 0;  // loop thread only
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<std::shared_ptr<pending>> inbox_;
  std::vector<std::shared_ptr<channel>> cancels_;
  bool stopping_ = false, draining_ = false;
  engine_figures figures_;
  std::thread loop_;
};

}  // namespace serve
