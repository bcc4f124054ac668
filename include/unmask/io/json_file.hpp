// unmask/io/json_file.hpp
//
// Reads a whole text file, and a whole JSON file (config.json,
// model.safetensors.index.json) with nlohmann-json, turning a missing file or
// a syntax error into a file_error that names the path.
#pragma once

#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "unmask/core/error.hpp"

namespace unmask {

inline std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw file_error(concat("cannot open '", path, "'"));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

inline nlohmann::json read_json_file(const std::string& path) {
  const std::string text = read_text_file(path);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw file_error(concat("malformed JSON in '", path, "': ", e.what()));
  }
}

}  // namespace unmask
