// unmask/model/transformer_model.hpp
//
// A loaded model: its configuration, its memory-mapped checkpoint and the
// weights bound by role. Loading reads `config.json` and the safetensors
// files of a Hugging Face model directory in any layout unmask reads
// (unmask/model/model_config.hpp: LLaDA, Dream, Fast-dLLM v2, SDAR, Qwen2,
// Qwen3), validates all of it, and copies no weight. random() builds a model
// of any configuration with deterministic random weights in that
// configuration's own tensor names, for benchmarks at real sizes.
#pragma once

#include <algorithm>
#include <filesystem>
#include <map>
#include <mutex>
#include <memory>
#include <string>

#include "unmask/cpu/parallel.hpp"
#include "unmask/io/checkpoint.hpp"
#include "unmask/random/philox.hpp"
#include "unmask/model/model_config.hpp"
#include "unmask/model/transformer_weights.hpp"

namespace unmask {

class transformer_model {
 public:
  static transformer_model load(const std::string& directory) {
    transformer_model m;
    m.directory_ = directory;
    m.config_ = load_model_directory_config(directory);
    m.checkpoint_ = std::make_unique<checkpoint>(checkpoint::open(directory));
    m.weights_ = bind_weights(*m.checkpoint_, m.config_);
    return m;
  }

  // A model of the given shape with random weights held in memory (uniform
  // with std 0.02, norms 1), for benchmarks at real sizes; deterministic in `seed`.
  static transformer_model random(const transformer_config& config, std::uint64_t seed = 0, dtype type = dtype::bf16) {
    if (!is_compute_dtype(type)) throw argument_error("random model: weights must be F32, F16 or BF16");
    transformer_model m;
    m.directory_ = "<random>";
    m.config_ = config;
    m.checkpoint_ = std::make_unique<checkpoint>();
    config.validate("random model");
    std::uint32_t tensor_index = 0;
    auto fill = [&](const std::string& name, const shape_t& shape, bool norm) {
      void* data = m.checkpoint_->add_owned(name, shape, type);
      const std::int64_t n = shape.numel();
      const std::uint32_t id = tensor_index++;
      // Uniform on [-a, a] with a = 0.02 sqrt(3): standard deviation 0.02;
      // one Philox block gives four weights.
      const float a = 0.02f * 1.7320508f;
      cpu::parallel_for(0, (n + 4095) / 4096, [&](std::int64_t chunk) {
        const std::int64_t end = std::min(n, (chunk + 1) * 4096);
        for (std::int64_t i = chunk * 4096; i < end; i += 4) {
          const std::uint32_t counter[4] = {std::uint32_t(i >> 2), std::uint32_t(i >> 34), id, 0x5eedu};
          const std::uint32_t key[2] = {std::uint32_t(seed), std::uint32_t(seed >> 32)};
          std::uint32_t bits[4];
          philox4x32_10(counter, key, bits);
          for (std::int64_t j = 0; j < 4 && i + j < end; ++j) {
            const float u = (float(bits[j] >> 8) + 0.5f) * (1.0f / 16777216.0f);
            const float v = norm ? 1.0f : a * (2.0f * u - 1.0f);
            if (type == dtype::bf16) static_cast<bfloat16*>(data)[i + j] = to_bfloat16(v);
            else if (type == dtype::f16) static_cast<half*>(data)[i + j] = to_half(v);
            else static_cast<float*>(data)[i + j] = v;
          }
        }
      }, 4096 * 16);
    };
    for (const weight_spec& s : weight_specs(config))
      fill(tensor_name(config, s.role, s.layer), s.shape, s.is_norm());
    m.weights_ = bind_weights(*m.checkpoint_, m.config_);
    return m;
  }

  const std::string& directory() const { return directory_; }
  const transformer_config& config() const { return config_; }
  const transformer_weights& weights() const { return weights_; }
  const checkpoint& tensors() const { return *checkpoint_; }

  // Data a backend derives from the weights once per model and shares among
  // every forward object (the CPU backend's packed panels): `make()` returns
  // a std::shared_ptr<T> on the first request for `key` (under a lock) and
  // the result lives as long as the model. T has `std::size_t bytes() const`.
  template <class T, class Make>
  std::shared_ptr<const T> prepared(const std::string& key, Make&& make) const {
    std::lock_guard<std::mutex> lock(prepared_->mutex);
    prepared_entry& slot = prepared_->entries[key];
    if (!slot.data) {
      std::shared_ptr<const T> made = make();
      slot.bytes = made->bytes();
      slot.data = std::move(made);
    }
    return std::static_pointer_cast<const T>(slot.data);
  }
  // Bytes of prepared data (packed weights) the model holds.
  std::size_t prepared_bytes() const {
    std::lock_guard<std::mutex> lock(prepared_->mutex);
    std::size_t total = 0;
    for (const auto& [key, entry] : prepared_->entries) total += entry.bytes;
    return total;
  }

 private:
  struct prepared_entry {
    std::shared_ptr<const void> data;
    std::size_t bytes = 0;
  };
  struct prepared_store {
    std::mutex mutex;
    std::map<std::string, prepared_entry> entries;
  };

  std::string directory_;
  transformer_config config_;
  std::unique_ptr<checkpoint> checkpoint_;
  transformer_weights weights_;
  std::unique_ptr<prepared_store> prepared_ = std::make_unique<prepared_store>();
};

}  // namespace unmask
