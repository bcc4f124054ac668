// unmask/io/json_file.hpp
//
// Reads a whole JSON file (config.json, model.safetensors.index.json) with
// nlohmann-json, turning a missing file or a syntax error into a file_error
// that names the path.
#pragma once

#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "unmask/core/error.hpp"

namespace unmask {

inline nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw file_error(concat("cannot open '", path, "'"));
  std::ostringstream text;
  text << in.rdbuf();
  try {
    return nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::exception& e) {
    throw file_error(concat("malformed JSON in '", path, "': ", e.what()));
  }
}

}  // namespace unmask
