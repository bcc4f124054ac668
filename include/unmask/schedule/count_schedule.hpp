// unmask/schedule/count_schedule.hpp
//
// How many tokens a step commits, for the selection rules that take a count
// (top-k, stochastic). With S steps for a block (or the whole generation when
// there is one block), step i in [0, S), M0 masks at the block's start and M
// masks now (docs/policies.md, "Count schedules"):
//   llada_even   base = M0 / S; the first M0 % S steps commit base + 1, the
//                rest base (GSAI-ML/LLaDA generate.py, get_num_transfer_tokens)
//   dream        t = linspace(1, eps, S + 1) in float32 as torch computes it,
//                s = t[i + 1], t = t[i]: int(M * (1 - s / t)) in float32, all
//                of M at the last step (HKUNLP Dream generation_utils.py)
//   llama_cpp    the same rule with t = 1 - i / S (1 - eps), s = 1 - (i + 1) / S
//                (1 - eps) (llama.cpp diffusion-cli)
// Dream counts per sequence: Dream divides the batch's mask total by the batch
// size, which makes a sequence's tokens depend on its neighbours; unmask keeps
// sequences independent (identical to Dream at batch size 1).
#pragma once

#include <cstdint>
#include <string>

#include "unmask/core/config.hpp"
#include "unmask/core/error.hpp"

namespace unmask {

// torch.linspace(start, end, steps)[i] in float32: the first half counts up
// from start, the second half down from end (ATen's RangeFactories kernel).
UNMASK_HOST_DEVICE float torch_linspace_f32(float start, float end, std::int64_t steps, std::int64_t i) {
  if (steps == 1) return start;
  const float step = (end - start) / float(steps - 1);
  const std::int64_t halfway = steps / 2;
  return i < halfway ? add_rn(start, mul_rn(step, float(i))) : add_rn(end, -mul_rn(step, float(steps - i - 1)));
}

enum class count_schedule_kind : std::uint8_t { llada_even, dream, llama_cpp };

struct count_schedule {
  count_schedule_kind kind = count_schedule_kind::llada_even;
  float eps = 1e-3f;  // dream, llama_cpp

  // Tokens to commit at step `step` of `steps`, with `initial_masks` masks at
  // the start of the block and `masks` now.
  UNMASK_HOST_DEVICE std::int32_t count(std::int32_t step, std::int32_t steps, std::int32_t initial_masks,
                                        std::int32_t masks) const {
    if (steps <= 0 || masks <= 0) return 0;
    if (step >= steps - 1) return masks;  // the last step commits what is left
    switch (kind) {
      case count_schedule_kind::dream: {
        const float t = torch_linspace_f32(1.0f, eps, steps + 1, step);
        const float s = torch_linspace_f32(1.0f, eps, steps + 1, step + 1);
        return clamp(std::int32_t(float(masks) * (1.0f - s / t)), masks);
      }
      case count_schedule_kind::llama_cpp: {
        const float t = add_rn(1.0f, -mul_rn(float(step) / float(steps), 1.0f - eps));
        const float s = add_rn(1.0f, -mul_rn(float(step + 1) / float(steps), 1.0f - eps));
        return clamp(std::int32_t(float(masks) * (1.0f - s / t)), masks);
      }
      default: {
        const std::int32_t base = initial_masks / steps, extra = initial_masks % steps;
        return clamp(base + (step < extra ? 1 : 0), masks);
      }
    }
  }

 private:
  UNMASK_HOST_DEVICE static std::int32_t clamp(std::int32_t k, std::int32_t masks) {
    return k < 0 ? 0 : (k > masks ? masks : k);
  }
};

inline count_schedule_kind parse_count_schedule(const std::string& name) {
  if (name == "llada" || name == "even") return count_schedule_kind::llada_even;
  if (name == "dream" || name == "linspace") return count_schedule_kind::dream;
  if (name == "llama_cpp" || name == "llama.cpp" || name == "timestep") return count_schedule_kind::llama_cpp;
  throw argument_error(concat("unknown schedule '", name, "' (llada, dream, llama_cpp)"));
}

}  // namespace unmask
