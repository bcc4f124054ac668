// unmask/model/non_finite.hpp
//
// Finding where NaN or infinity entered a forward pass, for the message of a
// numeric_error: a weight tensor holding a non-finite value is found by its
// bits (an all-ones exponent in f32, f16 or bf16), scanning the tensors in
// the order the forward pass reads them, so the first one named is the one
// that poisoned the activations first. This runs only after non-finite logits
// were seen (it reads every weight once), never on the decoding path.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "unmask/core/dtype.hpp"
#include "unmask/core/tensor_view.hpp"
#include "unmask/model/transformer_weights.hpp"

namespace unmask {

// Index of the first NaN or infinite element of `t`, or -1.
inline std::int64_t first_non_finite_element(const tensor_ref& t) {
  if (!t.data) return -1;
  const std::int64_t n = t.shape.numel();
  const auto* bytes = static_cast<const unsigned char*>(t.data);
  switch (t.type) {
    case dtype::f32:
      for (std::int64_t i = 0; i < n; ++i) {
        std::uint32_t bits;
        std::memcpy(&bits, bytes + 4 * i, 4);
        if ((bits & 0x7f800000u) == 0x7f800000u) return i;
      }
      return -1;
    case dtype::f16:
    case dtype::bf16: {
      const std::uint16_t exponent = t.type == dtype::f16 ? 0x7c00 : 0x7f80;
      for (std::int64_t i = 0; i < n; ++i) {
        std::uint16_t bits;
        std::memcpy(&bits, bytes + 2 * i, 2);
        if ((bits & exponent) == exponent) return i;
      }
      return -1;
    }
    default: return -1;
  }
}

// The first weight, in the order the forward pass reads them, that holds a
// non-finite value ("" when none does), with the element's index.
inline std::string first_non_finite_weight(const transformer_weights& w) {
  std::vector<const tensor_ref*> order{&w.embedding};
  for (const auto& layer : w.layers)
    for (const tensor_ref* t : layer.all()) order.push_back(t);
  order.push_back(&w.final_norm);
  order.push_back(&w.head);
  for (const tensor_ref* t : order)
    if (const std::int64_t i = first_non_finite_element(*t); i >= 0)
      return concat("tensor '", t->name, "' holds a NaN or infinite value (element ", i, " of shape ",
                    to_string(t->shape), ")");
  return "";
}

}  // namespace unmask
