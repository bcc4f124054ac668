// unmask/decode/stopping.hpp
//
// When a sequence stops before its canvas is full, and cancellation. The
// decode loops check the criteria between model calls:
//   token_ids     any of these ends the sequence: in diffusion decoding once
//                 the block holding it is finished (the rest of the canvas is
//                 filled with the end-of-sequence token, as stop_at_eos does);
//                 in autoregressive decoding when it is generated (it stays
//                 the last token). stop_at_eos adds the model's end-of-sequence
//                 id to them, and with the model's own eos (eos_token_id -1)
//                 every stop id of its config (an eos_token_id list in
//                 config.json or generation_config.json: LLaDA-8B-Instruct
//                 ends a turn with <|eot_id|> and also emits <|endoftext|>).
//   strings       the generated text containing any of these ends the
//                 sequence, at the same points; `text` turns generated ids
//                 into text (a tokenizer's decode: transformers'
//                 StopStringCriteria does the same on decoded text).
//   time_limit    seconds since generate() began after which every sequence
//                 stops where it is (0: none).
//   cancel        a cancel_token: cancel() from any thread makes generate()
//                 return before its next model call with what has been
//                 committed so far (masks where nothing was).
// Each sequence_output says why it stopped (stop_reason).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "unmask/core/error.hpp"

namespace unmask {

enum class stop_reason : std::uint8_t {
  length,       // the canvas (or max_new_tokens) is full
  stop_token,   // a stop token id (the end-of-sequence token with stop_at_eos)
  stop_string,  // a stop string in the generated text
  time_limit,   // stop_criteria::time_limit ran out
  cancelled,    // cancel_token::cancel()
  hook,         // a step hook set step_candidates::stop (unmask/decode/step_hooks.hpp)
};

inline const char* to_string(stop_reason r) {
  switch (r) {
    case stop_reason::stop_token: return "stop_token";
    case stop_reason::stop_string: return "stop_string";
    case stop_reason::time_limit: return "time_limit";
    case stop_reason::cancelled: return "cancelled";
    case stop_reason::hook: return "hook";
    default: return "length";
  }
}

// A flag shared by its copies: the caller keeps one, the settings another.
class cancel_token {
 public:
  void cancel() const { flag_->store(true, std::memory_order_release); }
  void reset() const { flag_->store(false, std::memory_order_release); }
  bool cancelled() const { return flag_->load(std::memory_order_acquire); }

 private:
  std::shared_ptr<std::atomic<bool>> flag_ = std::make_shared<std::atomic<bool>>(false);
};

struct stop_criteria {
  std::vector<std::int32_t> token_ids;
  std::vector<std::string> strings;
  std::function<std::string(const std::vector<std::int32_t>&)> text;  // needed with strings
  double time_limit = 0.0;                                             // seconds; 0: none
  cancel_token cancel;

  void validate() const {
    if (!strings.empty() && !text)
      throw argument_error("stop strings need stop_criteria::text (generated ids to text, e.g. a tokenizer's decode)");
    for (const std::string& s : strings)
      if (s.empty()) throw argument_error("a stop string is empty");
    if (!(time_limit >= 0.0)) throw argument_error(concat("time_limit must be >= 0 seconds, got ", time_limit));
  }

  // Which criterion a canvas meets once positions [from, end) are final:
  // a stop token among them (`eos`, -1 for none, counts as one), else a stop
  // string in the text of the generated positions [generated, end); else
  // length (nothing met).
  stop_reason check(const std::vector<std::int32_t>& canvas, std::int64_t generated, std::int64_t from,
                    std::int64_t end, std::int32_t eos) const {
    for (std::int64_t p = from; p < end; ++p) {
      const std::int32_t t = canvas[std::size_t(p)];
      if (t == eos || std::find(token_ids.begin(), token_ids.end(), t) != token_ids.end()) return stop_reason::stop_token;
    }
    if (!strings.empty()) {
      const std::string produced = text(std::vector<std::int32_t>(canvas.begin() + generated, canvas.begin() + end));
      for (const std::string& s : strings)
        if (produced.find(s) != std::string::npos) return stop_reason::stop_string;
    }
    return stop_reason::length;
  }

  // Adds `ids` to token_ids (each once).
  void add_token_ids(const std::vector<std::int64_t>& ids) {
    for (const std::int64_t id : ids)
      if (std::find(token_ids.begin(), token_ids.end(), std::int32_t(id)) == token_ids.end())
        token_ids.push_back(std::int32_t(id));
  }

  // Whether every sequence must stop now: cancelled, or past the time limit.
  stop_reason interrupt(double elapsed_seconds) const {
    if (cancel.cancelled()) return stop_reason::cancelled;
    if (time_limit > 0.0 && elapsed_seconds >= time_limit) return stop_reason::time_limit;
    return stop_reason::length;
  }
};

}  // namespace unmask
