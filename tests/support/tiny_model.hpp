// tests/support/tiny_model.hpp
//
// The tiny multi-head test model (tests/data/tiny_llada_mha: vocabulary 100,
// mask id 99), loaded once per test binary, and two prompts of different
// lengths that the decoder tests decode together.
#pragma once

#include <vector>

#include "support/test_files.hpp"
#include "unmask/decode/diffusion_decoder.hpp"
#include "unmask/model/transformer_model.hpp"

namespace unmask::test {

inline const transformer_model& tiny() {
  static const transformer_model model = transformer_model::load(data_dir() + "/tiny_llada_mha");
  return model;
}

inline const std::vector<decode_request>& two_requests() {
  static const std::vector<decode_request> requests = {{{5, 17, 42, 3}, 0}, {{64, 12, 7, 80, 81, 1, 2}, 1}};
  return requests;
}

}  // namespace unmask::test
