// fuzz/targets/model_config.hpp: the input is a config.json of any family
// unmask reads (LLaDA, Dream, Fast-dLLM v2, SDAR, Qwen2, Qwen3); the adapter
// is chosen by its architectures / model_type as for a real model.
#pragma once

#include "../fuzz_support.hpp"
#include "unmask/io/json_file.hpp"
#include "unmask/model/model_config.hpp"

namespace unmask_fuzz {

inline int model_config(const std::uint8_t* data, std::size_t size) {
  return refusing_quietly([&] {
    const nlohmann::json j = unmask::parse_json({reinterpret_cast<const char*>(data), size}, "config.json");
    const unmask::transformer_config c = unmask::read_model_config(j, "config.json");
    c.validate("config.json");  // what the adapter returned satisfies every rule
    for (int role = 0; role < 3; ++role) (void)unmask::tensor_name(c, unmask::weight_role(role), 0);
  });
}

}  // namespace unmask_fuzz
