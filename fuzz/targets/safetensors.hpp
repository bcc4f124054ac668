// fuzz/targets/safetensors.hpp: the input is a .safetensors file.
#pragma once

#include "../fuzz_support.hpp"
#include "unmask/io/safetensors.hpp"

namespace unmask_fuzz {

inline int safetensors(const std::uint8_t* data, std::size_t size) {
  const memory_file file({reinterpret_cast<const char*>(data), size});
  return refusing_quietly([&] {
    const unmask::safetensors_file f(file.path());
    for (const unmask::tensor_ref& t : f.tensors()) {
      if (f.find(t.name) != &t) std::abort();
      touch(t.data, t.bytes());
    }
  });
}

}  // namespace unmask_fuzz
