// unmask/tokenizer/tokenizer_model_check.hpp
//
// A tokenizer and a model agree when every id the tokenizer can produce is a
// row of the model's embedding and logits (the tokenizer's largest id is below
// config.json's vocab_size), and when the ids the decoders act on (the mask
// id, the end-of-sequence id and every stop id) are tokens the tokenizer
// knows, so a canvas the model fills can be decoded and a prompt can contain
// them. A tokenizer from another model passes neither: it is refused with the
// ids named rather than run into out-of-range embeddings or text that never
// stops.
#pragma once

#include <cstdint>
#include <string>

#include "unmask/core/error.hpp"
#include "unmask/model/transformer_config.hpp"
#include "unmask/tokenizer/byte_level_bpe.hpp"

namespace unmask {

inline void check_tokenizer_matches_model(const bpe_tokenizer& tokenizer, const transformer_config& c,
                                          const std::string& model_source) {
  if (tokenizer.size() > c.vocab_size)
    throw config_error(concat("tokenizer '", tokenizer.source(), "' has ids up to ", tokenizer.size() - 1,
                              ", beyond the vocabulary of ", c.vocab_size, " in ", model_source,
                              ": the tokenizer belongs to another model"));
  auto known = [&](const char* what, std::int64_t id) {
    if (id < 0) return;
    const bool present = id < tokenizer.size() && tokenizer.has_id(std::int32_t(id));
    if (!present)
      throw config_error(concat(model_source, ": ", what, " ", id, " is not a token of '", tokenizer.source(),
                                "' (the tokenizer belongs to another model)"));
  };
  known("mask_token_id", c.mask_token_id);
  known("eos_token_id", c.eos_token_id);
  for (const std::int64_t id : c.stop_token_ids) known("stop token id", id);
}

}  // namespace unmask
