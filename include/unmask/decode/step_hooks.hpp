// unmask/decode/step_hooks.hpp
//
// Hooks that act on a step of confidence decoding (diffusion_decoder), the
// counterparts of Dream's generation_logits_hook_func and
// generation_tokens_hook_func (generation_utils.py of the Dream-v0
// checkpoints, Dream-org/Dream-v0-Instruct-7B on Hugging Face),
// run on the host for each sequence of the batch, in order:
//   logits      before the token choice: the logits of the sequence's
//               candidate rows (its masked positions of the current block,
//               after guidance), which the hook may rewrite; the decoder
//               copies them back to the backend before choosing.
//   candidates  after the token choice, before the commit: each candidate's
//               position, proposed token and confidence (token and confidence
//               may be changed: the selection rule then orders by the new
//               confidences), an action per candidate (automatic: the rule
//               decides; veto: not committed this step; force: committed
//               with its token whatever the rule says), the canvas, which the
//               hook may edit (a candidate position the hook fills is no
//               longer a candidate; a mask it writes into the current block
//               or a later one is decoded like any other; a mask before the
//               current block is an error, no step would decode it), the
//               logits when with_logits is set, and `stop`, which ends the
//               sequence after this step with stop_reason::hook (masks left
//               in its canvas stay: fill them in the hook if they should not).
// Forced commits count as commits; the schedule's count is taken over the
// candidates left after vetoes, forced commits and canvas edits. Under a K/V
// cache, edits to earlier positions are seen only when those K/V are next
// recomputed (block_causal: never, as finished blocks are cached once).
// Ancestral sampling and resident decoding take no hooks (the latter keeps
// every step on the device).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

namespace unmask {

enum class candidate_action : std::uint8_t { automatic, veto, force };

struct step_logits {
  std::size_t sequence;                      // index into the request list
  std::int32_t block, step;                  // the block, and the step within it
  const std::int32_t* positions;             // (count) canvas positions of the candidate rows, ascending
  std::int32_t count;
  float* logits;                             // (count, vocab), host memory, editable
  std::int64_t vocab;
  const std::vector<std::int32_t>* canvas;
};

struct step_candidates {
  std::size_t sequence;
  std::int32_t block, step;
  const std::int32_t* positions;             // (count) ascending
  std::int32_t* tokens;                      // (count) proposed tokens, editable
  float* confidence;                         // (count) editable
  candidate_action* actions;                 // (count) all automatic on entry
  std::int32_t count;
  std::vector<std::int32_t>* canvas;         // editable (see above)
  std::int32_t prompt_length, block_begin, block_end;
  const float* logits;                       // (count, vocab) with step_hooks::with_logits, else null
  std::int64_t vocab;
  bool stop = false;                         // end the sequence after this step
};

struct step_hooks {
  std::function<void(step_logits&)> logits;
  std::function<void(step_candidates&)> candidates;
  bool with_logits = false;  // hand the candidates hook the logits (downloaded from the backend)

  bool any() const { return bool(logits) || bool(candidates); }
};

}  // namespace unmask
