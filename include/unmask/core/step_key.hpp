// unmask/core/step_key.hpp
//
// Keys for steps a backend may capture and replay (Backend::run_step(step,
// owner, shape), unmask/cuda/backend.hpp): a captured step replays fixed
// addresses and shapes, so its key must change whenever any of them does.
// step_key folds sizes and addresses into one 64-bit value (FNV-1a over the
// values' 64-bit words; a collision would need two different shape sets to
// agree on all 64 bits); next_step_owner() hands each decoding object a
// number no other object of the process gets (an address could be reused by
// a later object).
#pragma once

#include <atomic>
#include <cstdint>

namespace unmask {

struct step_key {
  std::uint64_t value = 1469598103934665603ull;

  step_key& add(std::uint64_t x) {
    value = (value ^ x) * 1099511628211ull;
    return *this;
  }
  step_key& add(const void* address) { return add(std::uint64_t(reinterpret_cast<std::uintptr_t>(address))); }
};

inline std::uint64_t next_step_owner() {
  static std::atomic<std::uint64_t> counter{0};
  return ++counter;
}

}  // namespace unmask
