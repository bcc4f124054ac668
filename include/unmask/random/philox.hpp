// unmask/random/philox.hpp
//
// Philox4x32-10 (Salmon, Moraes, Dror and Shaw, "Parallel random numbers: as
// easy as 1, 2, 3", SC 2011): a counter-based generator, i.e. a keyed bijection
// from a 128-bit counter to 128 random bits, ten rounds of two 32x32->64-bit
// multiplications and xors with a Weyl-sequence key schedule. Because a random
// number is a pure function of its counter, unmask keys every draw by what it
// is for: (seed, purpose) as the key and (vocabulary index / 4, position,
// step, sequence id) as the counter, taking lane index % 4 of the output. The
// same seed therefore gives the same tokens on every backend, thread count,
// batch size and batch order.
#pragma once

#include <cmath>
#include <cstdint>

#include "unmask/core/config.hpp"

namespace unmask {

// One Philox4x32-10 block: out = philox(counter, key).
UNMASK_HOST_DEVICE void philox4x32_10(const std::uint32_t counter[4], const std::uint32_t key[2],
                                      std::uint32_t out[4]) {
  constexpr std::uint32_t m0 = 0xD2511F53u, m1 = 0xCD9E8D57u, w0 = 0x9E3779B9u, w1 = 0xBB67AE85u;
  std::uint32_t c0 = counter[0], c1 = counter[1], c2 = counter[2], c3 = counter[3];
  std::uint32_t k0 = key[0], k1 = key[1];
  for (int round = 0; round < 10; ++round) {
    const std::uint64_t p0 = std::uint64_t(m0) * c0, p1 = std::uint64_t(m1) * c2;
    const std::uint32_t hi0 = std::uint32_t(p0 >> 32), lo0 = std::uint32_t(p0);
    const std::uint32_t hi1 = std::uint32_t(p1 >> 32), lo1 = std::uint32_t(p1);
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += w0;
    k1 += w1;
  }
  out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

// What a random number is used for; part of the key so streams never overlap.
enum class random_purpose : std::uint32_t {
  token = 1,       // Gumbel noise / categorical sampling of tokens
  confidence = 2,  // the "random" confidence metric
  reveal = 3,      // ancestral (MDLM, Dream origin) unmasking coin flips
  remask = 4,      // ReMDM remasking coin flips
  selection = 5,   // stochastic selection (Dream alg_temp)
  likelihood = 6,  // the Monte-Carlo likelihood's mask counts and sets (decode/likelihood.hpp)
};

// Where a draw sits in the random stream: the sequence's id, its own step
// count and the canvas position.
struct draw_site {
  std::uint32_t sequence = 0, step = 0, position = 0;
};

struct counter_rng {
  std::uint64_t seed = 0;

  UNMASK_HOST_DEVICE std::uint32_t bits(random_purpose purpose, std::uint32_t sequence, std::uint32_t step,
                                        std::uint32_t position, std::uint32_t index) const {
    const std::uint32_t counter[4] = {index >> 2, position, step, sequence};
    const std::uint32_t key[2] = {std::uint32_t(seed), std::uint32_t(seed >> 32) ^ (std::uint32_t(purpose) * 0x85EBCA6Bu)};
    std::uint32_t out[4];
    philox4x32_10(counter, key, out);
    return out[index & 3u];
  }

  // Uniform in the open interval (0, 1): 24 random bits, centred in their cell.
  UNMASK_HOST_DEVICE float uniform(random_purpose purpose, std::uint32_t sequence, std::uint32_t step,
                                   std::uint32_t position, std::uint32_t index) const {
    return (float(bits(purpose, sequence, step, position, index) >> 8) + 0.5f) * (1.0f / 16777216.0f);
  }

  // Standard Gumbel noise, -log(-log u).
  UNMASK_HOST_DEVICE float gumbel(random_purpose purpose, std::uint32_t sequence, std::uint32_t step,
                                  std::uint32_t position, std::uint32_t index) const {
    return -logf(-logf(uniform(purpose, sequence, step, position, index)));
  }
};

}  // namespace unmask
