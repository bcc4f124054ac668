// unmask/model/llada_model.hpp
//
// A loaded LLaDA model: its configuration, its memory-mapped checkpoint and
// the weights bound by role. Loading reads `config.json` and the safetensors
// files of a Hugging Face model directory (the GSAI-ML/LLaDA-8B layout),
// validates all of it, and copies no weight.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "unmask/io/checkpoint.hpp"
#include "unmask/model/llada_config.hpp"
#include "unmask/model/llada_weights.hpp"

namespace unmask {

class llada_model {
 public:
  static llada_model load(const std::string& directory) {
    llada_model m;
    m.directory_ = directory;
    m.config_ = llada_config::load((std::filesystem::path(directory) / "config.json").string());
    m.checkpoint_ = std::make_unique<checkpoint>(checkpoint::open(directory));
    m.weights_ = bind_llada_weights(*m.checkpoint_, m.config_);
    return m;
  }

  const std::string& directory() const { return directory_; }
  const llada_config& config() const { return config_; }
  const llada_weights& weights() const { return weights_; }
  const checkpoint& tensors() const { return *checkpoint_; }

 private:
  std::string directory_;
  llada_config config_;
  std::unique_ptr<checkpoint> checkpoint_;
  llada_weights weights_;
};

}  // namespace unmask
