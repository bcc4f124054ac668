// apps/cli_progress.hpp
//
// What the program shows while it decodes, always on stderr so that stdout
// carries only the result: a progress line (block b/B, step s/S, tokens
// committed of the total, tokens per second, time left from the rate so far)
// redrawn in place on a terminal, and with --visual the canvas itself (masks
// as a shaded block) above it: redrawn in place on a terminal (cursor home,
// clear to the end of the screen: no scrolling), one line per model call
// otherwise. Autoregressive decoding has one "step" per token; off a terminal
// its --visual view appends only the new text.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace cli {

struct progress_totals {
  std::int32_t blocks = 1;   // blocks of the canvas (1 for autoregressive decoding)
  std::int32_t steps = 0;    // model calls per block at most (0: unknown)
  std::int64_t tokens = 0;   // tokens to commit in all
  bool autoregressive = false;
};

class progress_view {
 public:
  // `progress`: show the progress line; `visual`: the canvas; `tty`: stderr is a terminal.
  progress_view(progress_totals totals, bool progress, bool visual, bool tty)
      : totals_(totals), progress_(progress), visual_(visual), tty_(tty), start_(clock::now()) {}

  // After each model call: its block and step (0-based), the tokens it
  // committed, and (for --visual) the canvas text so far.
  void update(std::int32_t block, std::int32_t step, std::int64_t committed_now, const std::string& text) {
    committed_ += committed_now;
    if (!progress_ && !visual_) return;
    const std::string line = status(block, step);
    if (visual_ && tty_) {
      std::fprintf(stderr, "\x1b[H\x1b[J%s\n\n%s", text.c_str(), line.c_str());
    } else if (visual_ && totals_.autoregressive) {
      std::fprintf(stderr, "%s", text.substr(std::min(shown_, text.size())).c_str());  // the new text only
      shown_ = text.size();
    } else if (visual_) {
      std::fprintf(stderr, "[%s] %s\n", line.c_str(), text.c_str());
    } else if (tty_) {
      std::fprintf(stderr, "\r\x1b[K%s", line.c_str());
    } else {
      std::fprintf(stderr, "%s\n", line.c_str());
    }
    std::fflush(stderr);
    drawn_ = true;
  }

  // Ends the display (a newline after an in-place line).
  void finish() {
    if (drawn_ && (tty_ || (visual_ && totals_.autoregressive))) std::fprintf(stderr, "\n");
    drawn_ = false;
  }

 private:
  using clock = std::chrono::steady_clock;

  std::string status(std::int32_t block, std::int32_t step) const {
    const double elapsed = std::chrono::duration<double>(clock::now() - start_).count();
    const double rate = elapsed > 0 ? double(committed_) / elapsed : 0.0;
    char buf[256];
    std::string s;
    if (totals_.autoregressive) {
      std::snprintf(buf, sizeof buf, "token %lld/%lld", (long long)committed_, (long long)totals_.tokens);
      s = buf;
    } else {
      std::snprintf(buf, sizeof buf, "block %d/%d, step %d", block + 1, totals_.blocks, step + 1);
      s = buf;
      if (totals_.steps > 0) s += "/" + std::to_string(totals_.steps);
      std::snprintf(buf, sizeof buf, ", %lld/%lld tokens", (long long)committed_, (long long)totals_.tokens);
      s += buf;
    }
    std::snprintf(buf, sizeof buf, ", %.1f tokens/s", rate);
    s += buf;
    if (rate > 0 && committed_ < totals_.tokens) {
      std::snprintf(buf, sizeof buf, ", %.1f s left", double(totals_.tokens - committed_) / rate);
      s += buf;
    }
    return s;
  }

  progress_totals totals_;
  bool progress_, visual_, tty_;
  clock::time_point start_;
  std::int64_t committed_ = 0;
  std::size_t shown_ = 0;
  bool drawn_ = false;
};

}  // namespace cli
