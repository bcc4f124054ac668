// unmask/decode/step_scheduler.hpp
//
// Continuous batching at the granularity of a denoising step, the core of a
// server: requests, each with its own settings (gen and block length, steps,
// selection rule, count schedule, confidence metric, sampling, seed, stop
// criteria), wait in a bounded queue, join the running batch between steps
// while the batch's limits allow (requests, and canvas rows, which is what
// activations and logits scale with), and leave it when they finish, stop or
// are cancelled. One step() feeds every running request's canvas in one
// forward pass (each with its own length), then chooses, selects and commits
// each request's tokens with its own policy and draws, exactly as
// diffusion_decoder does for one sequence: the same policy functions, the
// same keys (request id, the request's own step counter, position), the
// same block-by-block progress and stop checks. Because nothing a request
// computes depends on the others in the batch, its output is the one
// diffusion_decoder gives it alone (tests/decode/test_step_scheduler.cpp
// checks it token for token on the CPU backend, with requests joining and
// leaving at different steps). A callback per request sees every step's
// committed positions. Guidance (cfg_scale) feeds a request's unconditional
// copy beside it in the same forward, as diffusion_decoder does. Confidence
// decoding without a K/V cache;
// one attention mask for the batch (the model's). Not thread-safe: one
// thread calls submit, cancel and step (a server's loop).
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <utility>
#include <vector>

#include "unmask/core/error.hpp"
#include "unmask/decode/diffusion_decoder.hpp"

namespace unmask {

struct scheduled_request {
  std::vector<std::int32_t> prompt;
  std::uint32_t id = 0;          // keys the request's draws: equal ids and settings decode equally
  diffusion_settings settings;   // confidence mode, no cache (guidance allowed)
};

struct scheduler_limits {
  std::int64_t max_queued = 64;          // requests waiting to join
  std::int64_t max_running = 16;         // requests in one forward
  std::int64_t max_canvas_rows = 16384;  // prompt + generated positions across the running batch
};

// One step of one request: what it committed (sorted positions) and whether it is done.
struct request_event {
  std::uint64_t handle;
  std::int32_t block, step;
  const std::vector<std::int32_t>* canvas;
  const std::vector<std::int32_t>* committed_positions;
  bool finished;
};
using request_callback = std::function<void(const request_event&)>;

template <class Backend, class Policy = builtin_policy>
class step_scheduler {
  static_assert(check_decoding_backend<Backend>());

 public:
  step_scheduler(const transformer_model&&, scheduler_limits, attention_mask = {}, Backend = {}) = delete;
  step_scheduler(const transformer_model& model, scheduler_limits limits, attention_mask attention = {},
                 Backend backend = {})
      : model_(model), limits_(limits), attention_(attention), forward_(model, std::move(backend)) {
    if (limits_.max_queued < 0 || limits_.max_running < 1 || limits_.max_canvas_rows < 1)
      throw argument_error(concat("scheduler limits: max_queued ", limits_.max_queued, " must be >= 0, max_running ",
                                  limits_.max_running, " and max_canvas_rows ", limits_.max_canvas_rows,
                                  " >= 1"));
  }

  // Queues a request; returns its handle, or nothing when the queue is full.
  // Settings and prompt are checked here (argument_error naming the
  // problem), as is whether the request could ever join (its canvas within
  // max_canvas_rows).
  std::optional<std::uint64_t> submit(scheduled_request request, request_callback callback = {}) {
    running_request r;
    r.settings = request.settings;
    r.policy = policy_from_settings<Policy>(r.settings, std::int32_t(model_.config().eos_token_id));
    r.policy.validate();
    detail::validate_policy_with(r.policy, r.settings, model_.config());
    r.settings.validate(r.policy.selection.uses_schedule());
    if (r.settings.mode != decode_mode::confidence)
      throw argument_error("the step scheduler runs confidence decoding, not ancestral sampling");
    if (r.settings.cache.mode != cache_mode::none) throw argument_error("the step scheduler runs without a K/V cache");
    if (r.settings.eos_token_id < 0) {  // the model's eos, and with it every stop id of its config
      r.settings.eos_token_id = std::int32_t(model_.config().eos_token_id);
      if (r.settings.stop_at_eos) r.settings.stop.add_token_ids(model_.config().stop_token_ids);
    }
    r.out = detail::start_canvas({request.prompt, request.id}, 0, model_.config(), r.settings.layout.gen_length);
    if (rows_of(r) > limits_.max_canvas_rows)
      throw argument_error(concat("a request of ", r.out.canvas.size(), " positions",
                                  guided(r) ? concat(", twice for guidance (", rows_of(r), " rows),") : std::string(),
                                  " exceeds max_canvas_rows ", limits_.max_canvas_rows));
    if (std::int64_t(queue_.size()) >= limits_.max_queued) return std::nullopt;
    r.id = request.id;
    r.handle = ++last_handle_;
    r.callback = std::move(callback);
    start_block(r, 0);
    queue_.push_back(std::move(r));
    return queue_.back().handle;
  }

  // Cancels a queued or running request (its output says cancelled, with
  // the masks it still has); false when the handle is unknown or finished.
  bool cancel(std::uint64_t handle) {
    auto take = [&](auto& list) {
      auto found = std::find_if(list.begin(), list.end(), [&](const running_request& r) { return r.handle == handle; });
      if (found == list.end()) return false;
      found->out.stop = stop_reason::cancelled;
      finished_.emplace_back(handle, std::move(found->out));
      list.erase(found);
      return true;
    };
    return take(queue_) || take(running_);
  }

  // Admits waiting requests while the limits allow, then runs one denoising
  // step over every running request and retires those that finish. Returns
  // the number of model calls made (0 when nothing runs, else 1).
  std::int64_t step() {
    admit();
    if (running_.empty()) return 0;
    const transformer_config& c = model_.config();
    const std::int32_t mask = std::int32_t(c.mask_token_id);
    const std::int64_t n = std::int64_t(running_.size()), vocab = c.vocab_size;
    std::int64_t width = 0;
    // Sequences: each request's canvas and, after it for a guided request,
    // its unconditional copy (the prompt replaced by masks), as
    // diffusion_decoder feeds them; each request's rows to score are its
    // block's masked positions in each of its sequences.
    std::int64_t sequences = 0;
    for (const running_request& r : running_) {
      width = std::max<std::int64_t>(width, std::int64_t(r.out.canvas.size()));
      sequences += guided(r) ? 2 : 1;
    }
    tokens_.assign(std::size_t(sequences * width), 0);
    lengths_.resize(std::size_t(sequences));
    origins_.resize(std::size_t(sequences));
    first_sequence_.resize(std::size_t(n));
    rows_.clear();
    row_begin_.resize(std::size_t(n + 1));
    std::int64_t sequence = 0;
    for (std::int64_t b = 0; b < n; ++b) {
      const running_request& r = running_[std::size_t(b)];
      row_begin_[std::size_t(b)] = std::int64_t(rows_.size());
      first_sequence_[std::size_t(b)] = sequence;
      for (std::int64_t copy = 0; copy < (guided(r) ? 2 : 1); ++copy, ++sequence) {
        std::int32_t* dst = tokens_.data() + sequence * width;
        std::copy(r.out.canvas.begin(), r.out.canvas.end(), dst);
        if (copy == 1) std::fill(dst, dst + r.out.prompt_length, mask);
        lengths_[std::size_t(sequence)] = std::int32_t(r.out.canvas.size());
        origins_[std::size_t(sequence)] = r.out.prompt_length;
        for (std::int32_t p = r.block_begin; p < r.block_end; ++p)
          if (r.out.canvas[std::size_t(p)] == mask) rows_.push_back(std::int32_t(sequence * width + p));
      }
    }
    row_begin_[std::size_t(n)] = std::int64_t(rows_.size());
    const std::int64_t count = std::int64_t(rows_.size());
    logits_.reserve_at_least(std::size_t(count * vocab));
    token_batch in{tokens_.data(), sequences, width, lengths_.data()};
    in.mask_origins = origins_.data();
    forward_.locating_non_finite([&] {
      forward_(in, attention_, logits_.data(), nullptr, {rows_.data(), count});
      return 0;
    });
    for (std::int64_t b = 0; b < n; ++b) {
      running_request& r = running_[std::size_t(b)];
      const std::int64_t first = row_begin_[std::size_t(b)];
      const std::int64_t m = (row_begin_[std::size_t(b) + 1] - first) / (guided(r) ? 2 : 1);
      // Guided: the conditional rows, then as many unconditional ones, become the guided logits.
      if (guided(r)) forward_.backend().apply_guidance(logits_.data() + first * vocab, m, vocab, r.settings.cfg_scale);
      sites_.clear();
      positions_.clear();
      for (std::int64_t i = 0; i < m; ++i) {
        const std::int32_t position =
            std::int32_t(rows_[std::size_t(first + i)] - first_sequence_[std::size_t(b)] * width);
        positions_.push_back(position);
        sites_.push_back({r.id, r.rng_step, std::uint32_t(position)});
      }
      choices_.resize(std::size_t(m));
      const counter_rng rng{r.settings.seed};
      choose_tokens_with(forward_.backend(), logits_.data() + first * vocab, m, vocab, r.settings.sampling,
                         r.settings.confidence, mask, rng, sites_.data(), choices_.data(),
                         make_token_rules(r.policy.processor, r.policy.metric, r.policy.sampler));
      chosen_.clear();
      confidences_.clear();
      for (const token_choice& choice : choices_) chosen_.push_back(choice.token), confidences_.push_back(choice.confidence);
      const std::int32_t steps = r.settings.layout.steps_per_block();
      const selection_sequence seq{0, std::int32_t(m), 0, r.id, r.rng_step, r.block_step, steps, r.initial_masks};
      const policy_selection_options<Policy> options{r.policy.selection, r.policy.schedule, r.settings.confidence, rng};
      committed_.clear();
      const std::int32_t take = commit_selection(seq, positions_.data(), chosen_.data(), confidences_.data(), options,
                                                 r.out.canvas.data(), &committed_);
      if (take == 0 && r.block_step + 1 >= steps + r.settings.layout.block_length)
        throw argument_error(concat("step scheduler: the decoding policy committed nothing to block ", r.block,
                                    " of request ", r.handle, " for ", r.block_step + 1, " steps"));
      r.out.committed += take;
      ++r.out.forwards;
      ++r.block_step;
      ++r.rng_step;
      const std::int32_t step = r.block_step - 1;
      bool finished = false;
      if (std::count(r.out.canvas.begin() + r.block_begin, r.out.canvas.begin() + r.block_end, mask) == 0) {
        finished = detail::finish_block(r.out, r.block_begin, r.block_end, r.settings.stop, r.settings.stop_at_eos,
                                        r.settings.eos_token_id) ||
                   r.block + 1 >= r.settings.layout.blocks();
        if (!finished) start_block(r, r.block + 1);
      }
      std::sort(committed_.begin(), committed_.end());
      if (r.callback) r.callback({r.handle, r.block, step, &r.out.canvas, &committed_, finished});
      r.finished = finished;
    }
    for (auto it = running_.begin(); it != running_.end();) {
      if (!it->finished) {
        ++it;
        continue;
      }
      finished_.emplace_back(it->handle, std::move(it->out));
      it = running_.erase(it);
    }
    return 1;
  }

  // Runs steps until no request is queued or running.
  void drain() {
    while (!idle()) step();
  }

  bool idle() const { return queue_.empty() && running_.empty(); }
  std::int64_t queued() const { return std::int64_t(queue_.size()); }
  std::int64_t running() const { return std::int64_t(running_.size()); }
  // Whether a request is in the running batch (not queued, not finished).
  bool is_running(std::uint64_t handle) const {
    return std::any_of(running_.begin(), running_.end(), [&](const running_request& r) { return r.handle == handle; });
  }

  // The outputs of the requests finished or cancelled since the last call, by handle.
  std::vector<std::pair<std::uint64_t, sequence_output>> take_finished() { return std::exchange(finished_, {}); }

  Backend& backend() { return forward_.backend(); }

 private:
  struct running_request {
    diffusion_settings settings;
    Policy policy;
    sequence_output out;
    request_callback callback;
    std::uint64_t handle = 0;
    std::uint32_t id = 0;
    std::uint32_t rng_step = 0;
    std::int32_t block = 0, block_begin = 0, block_end = 0, block_step = 0, initial_masks = 0;
    bool finished = false;
  };

  static bool guided(const running_request& r) { return r.settings.cfg_scale > 0.0f; }
  // Canvas rows a request feeds per step (two sequences when guided).
  static std::int64_t rows_of(const running_request& r) {
    return std::int64_t(r.out.canvas.size()) * (guided(r) ? 2 : 1);
  }

  void start_block(running_request& r, std::int32_t block) {
    const std::int32_t mask = std::int32_t(model_.config().mask_token_id);
    r.block = block;
    r.block_begin = r.out.prompt_length + block * r.settings.layout.block_length;
    r.block_end = r.block_begin + r.settings.layout.block_length;
    r.block_step = 0;
    r.initial_masks = std::int32_t(
        std::count(r.out.canvas.begin() + r.block_begin, r.out.canvas.begin() + r.block_end, mask));
  }

  // First come, first served: the head of the queue joins when the batch has
  // room for it (a request never overtakes an earlier one).
  void admit() {
    std::int64_t rows = 0;
    for (const running_request& r : running_) rows += rows_of(r);
    while (!queue_.empty() && std::int64_t(running_.size()) < limits_.max_running &&
           rows + rows_of(queue_.front()) <= limits_.max_canvas_rows) {
      rows += rows_of(queue_.front());
      running_.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
  }

  const transformer_model& model_;
  scheduler_limits limits_;
  attention_mask attention_;
  transformer_forward<Backend> forward_;
  std::deque<running_request> queue_;
  std::vector<running_request> running_;
  std::vector<std::pair<std::uint64_t, sequence_output>> finished_;
  std::uint64_t last_handle_ = 0;
  typename Backend::template buffer<float> logits_;
  std::vector<std::int32_t> tokens_, lengths_, origins_, rows_, positions_, chosen_, committed_;
  std::vector<std::int64_t> row_begin_, first_sequence_;
  std::vector<float> confidences_;
  std::vector<draw_site> sites_;
  std::vector<token_choice> choices_;
};

}  // namespace unmask
