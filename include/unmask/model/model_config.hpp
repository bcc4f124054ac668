// unmask/model/model_config.hpp
//
// Reading any supported checkpoint's config.json: the adapter is chosen by
// `architectures` (or, when that is absent, `model_type`), and a file naming
// neither a known architecture nor a known type is an error that lists what
// unmask reads. The adapters (unmask/model/llada_layout.hpp, qwen_layout.hpp)
// return the one transformer_config all of unmask works from; tensor_name()
// gives the on-disk name of each weight role under the configuration's layout.
// load_model_directory_config() also reads the directory's
// generation_config.json, when there is one, for its eos_token_id (an id or a
// list): those ids join the configuration's stop ids, as transformers'
// generate() stops at any of them. Its other keys are generation defaults
// that unmask's settings carry (and `unmask info` prints), not part of the model.
#pragma once

#include <algorithm>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "unmask/core/error.hpp"
#include "unmask/io/json_file.hpp"
#include "unmask/model/llada_layout.hpp"
#include "unmask/model/qwen_layout.hpp"
#include "unmask/model/transformer_config.hpp"

namespace unmask {

inline transformer_config read_model_config(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) throw config_error(concat(source, ": the configuration is not a JSON object"));
  const nlohmann::json* arch = config_keys::find(j, "architectures");
  const nlohmann::json* type = config_keys::find(j, "model_type");
  if (!arch && !type) throw config_error(concat(source, ": names no architecture (no 'architectures' or 'model_type')"));
  if (is_llada_config(j)) return read_llada_config(j, source);
  if (is_qwen_config(j)) return read_qwen_config(j, source);
  throw config_error(concat(source, ": unknown ", arch ? "architecture " : "model_type ", (arch ? arch : type)->dump(),
                            " (unmask reads LLaDAModelLM, DreamModel, Fast_dLLM_QwenForCausalLM, SDARForCausalLM,"
                            " Qwen2ForCausalLM and Qwen3ForCausalLM)"));
}

inline transformer_config load_model_config(const std::string& path) { return read_model_config(read_json_file(path), path); }

// config.json of `directory`, with generation_config.json's eos_token_id.
inline transformer_config load_model_directory_config(const std::string& directory) {
  namespace fs = std::filesystem;
  transformer_config c = load_model_config((fs::path(directory) / "config.json").string());
  const fs::path generation = fs::path(directory) / "generation_config.json";
  std::error_code ec;
  if (!fs::exists(generation, ec)) return c;
  const nlohmann::json g = read_json_file(generation.string());
  if (!g.is_object()) throw config_error(concat(generation.string(), ": the configuration is not a JSON object"));
  if (config_keys::find(g, "eos_token_id")) {
    for (const std::int64_t id : config_keys::integers(g, "eos_token_id", generation.string()))
      if (std::find(c.stop_token_ids.begin(), c.stop_token_ids.end(), id) == c.stop_token_ids.end())
        c.stop_token_ids.push_back(id);
    c.validate(generation.string());
  }
  return c;
}

inline std::string tensor_name(const transformer_config& c, weight_role role, std::int64_t layer) {
  return c.layout == tensor_layout::llada ? llada_tensor_name(role, layer) : qwen_tensor_name(role, layer);
}

}  // namespace unmask
