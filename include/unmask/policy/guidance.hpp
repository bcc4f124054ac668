// unmask/policy/guidance.hpp
//
// Classifier-free guidance as LLaDA applies it (GSAI-ML/LLaDA generate.py):
// the unconditional canvas is the same canvas with the prompt replaced by mask
// tokens, both run in one batch, and
//   logits = uncond + (scale + 1) (cond - uncond).
// Scale 0 turns guidance off (and the second half of the batch with it).
#pragma once

#include "unmask/core/config.hpp"

namespace unmask {

UNMASK_HOST_DEVICE float guided_logit(float cond, float uncond, float scale) {
  return uncond + (scale + 1.0f) * (cond - uncond);
}

}  // namespace unmask
