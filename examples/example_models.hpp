// example_models.hpp: where the examples find the embedded tiny models:
// $UNMASK_MODELS_DIR when it is set, else the source tree's models/.
#pragma once

#include <cstdlib>
#include <string>

namespace example {

inline std::string model_dir(const char* name) {
  const char* env = std::getenv("UNMASK_MODELS_DIR");
  return std::string(env && *env ? env : UNMASK_EXAMPLE_MODELS_DIR) + "/" + name;
}

}  // namespace example
