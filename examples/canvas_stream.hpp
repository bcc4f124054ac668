// canvas_stream.hpp: streaming the canvases of a batch of prompts as text.
//
// A step callback (diffusion_decoder::generate's decode_callback) that keeps
// one line of text per sequence, its generated part decoded with the
// tokenizer and every still-masked position shown as `mask_glyph`, and hands
// each changed line to a sink as the masks turn into tokens. The decoder
// calls back once per sequence per step, in batch order, after the step's
// commits; a sequence that has left the batch is not called again.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "unmask/decode/diffusion_decoder.hpp"
#include "unmask/tokenizer/byte_level_bpe.hpp"

namespace example {

// The generated part of `canvas` as text: runs of tokens decoded (special
// tokens skipped), each mask as `mask_glyph`.
inline std::string render_canvas(const unmask::bpe_tokenizer& tok, const std::vector<std::int32_t>& canvas,
                                 std::size_t begin, std::int32_t mask, const std::string& mask_glyph = "_") {
  std::string out;
  std::vector<std::int32_t> run;
  for (std::size_t i = begin; i < canvas.size(); ++i) {
    if (canvas[i] != mask) {
      run.push_back(canvas[i]);
      continue;
    }
    out += tok.decode(run, true) + mask_glyph;
    run.clear();
  }
  return out + tok.decode(run, true);
}

class canvas_stream {
 public:
  // sink(sequence, block, step, line) receives every changed line.
  using sink = std::function<void(std::size_t, std::int32_t, std::int32_t, const std::string&)>;

  canvas_stream(const unmask::bpe_tokenizer& tok, std::vector<std::size_t> prompt_lengths, std::int32_t mask, sink out,
                std::string mask_glyph = "_")
      : tok_(tok), prompt_lengths_(std::move(prompt_lengths)), mask_(mask), out_(std::move(out)),
        glyph_(std::move(mask_glyph)), lines_(prompt_lengths_.size()) {}

  void operator()(const unmask::decode_event& e) {
    std::string line = render_canvas(tok_, *e.canvas, prompt_lengths_.at(e.sequence), mask_, glyph_);
    if (line == lines_[e.sequence]) return;
    lines_[e.sequence] = std::move(line);
    out_(e.sequence, e.block, e.step, lines_[e.sequence]);
  }
  const std::vector<std::string>& lines() const { return lines_; }

 private:
  const unmask::bpe_tokenizer& tok_;
  std::vector<std::size_t> prompt_lengths_;
  std::int32_t mask_;
  sink out_;
  std::string glyph_;
  std::vector<std::string> lines_;
};

}  // namespace example
