// fuzz/targets/tokenizer_encode.hpp: arbitrary bytes through encode and
// decode. The first byte picks the tokenizer and the flags; the rest is the
// text to encode (invalid UTF-8 must be refused with an error), and read as
// little-endian 32-bit ids, the ids to decode (ids outside the vocabulary
// must be refused too).
#pragma once

#include <cstring>

#include "tokenizers.hpp"

namespace unmask_fuzz {

inline int tokenizer_encode(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto& tokenizers = fixed_tokenizers();
  const unmask::bpe_tokenizer& t = tokenizers[data[0] % tokenizers.size()];
  const bool special = data[0] & 4, skip = data[0] & 8;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  refusing_quietly([&] {
    const std::vector<std::int32_t> ids = t.encode(text, special);
    for (std::int32_t id : ids)
      if (id < 0 || id >= t.size()) std::abort();
    (void)t.decode(ids, skip);
  });
  std::vector<std::int32_t> ids((size - 1) / 4);
  if (!ids.empty()) std::memcpy(ids.data(), data + 1, ids.size() * 4);
  return refusing_quietly([&] { (void)t.decode(ids, skip); });
}

}  // namespace unmask_fuzz
