// logit_bias.hpp: a logits processor of one's own.
//
// Adds a fixed bias to the logits of a few listed tokens before the token is
// chosen, as the `logit_bias` of chat-completion APIs: a large positive bias
// makes a token the choice wherever it is in the running, -inf bans it. It
// rewrites both readings of a row (the logits the token is chosen by and the
// distribution its confidence is read from) through one operator(), so the
// biased token is also the one the decoder is sure of. It meets the
// logits-processor interface of unmask/policy/logits_processor.hpp; its
// members are host/device, so the CUDA vocabulary pass runs it too.
#pragma once

#include <cstdint>

#include "unmask/core/error.hpp"
#include "unmask/policy/logits_processor.hpp"

namespace example {

struct logit_bias {
  static constexpr int capacity = 4;
  std::int32_t token[capacity] = {};
  float bias[capacity] = {};
  int count = 0;

  logit_bias& add(std::int32_t t, float b) {
    if (count == capacity) throw unmask::argument_error("logit_bias: at most 4 tokens");
    token[count] = t, bias[count] = b, ++count;
    return *this;
  }

  UNMASK_HOST_DEVICE float operator()(float logit, std::int32_t v, const unmask::draw_site& /*site*/) const {
    for (int i = 0; i < count; ++i)
      if (v == token[i]) return logit + bias[i];
    return logit;
  }
  UNMASK_HOST_DEVICE bool active() const { return count > 0; }
  void validate() const {
    for (int i = 0; i < count; ++i)
      if (token[i] < 0) throw unmask::argument_error(unmask::concat("logit_bias: token id ", token[i], " is negative"));
  }
};

}  // namespace example
