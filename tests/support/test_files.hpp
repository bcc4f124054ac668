// tests/support/test_files.hpp
//
// Helpers for tests that need files: a scratch directory removed at exit, a
// minimal safetensors writer (valid files, and raw headers for corrupt ones),
// and a copier that rewrites a checkpoint with one tensor changed.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "unmask/io/safetensors.hpp"

namespace unmask::test {

// The test data folder: $UNMASK_TEST_DATA_DIR when set (test binaries built
// on one machine and run from another checkout, as scripts/gpu-check.sh does
// with a carried build), else the source tree's, fixed at build time.
inline std::string data_dir() {
  const char* moved = std::getenv("UNMASK_TEST_DATA_DIR");
  return moved && *moved ? moved : UNMASK_TEST_DATA_DIR;
}

class scratch_dir {
 public:
  scratch_dir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() / ("unmask-test-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~scratch_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::string str() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), std::streamsize(bytes.size()));
}

inline void write_text(const std::string& path, const std::string& text) { write_bytes(path, text); }

// 8-byte little-endian length + header + data, with an optional false length.
inline std::string raw_safetensors(const std::string& header, const std::string& data,
                                   std::uint64_t declared_length = ~std::uint64_t(0)) {
  const std::uint64_t n = declared_length == ~std::uint64_t(0) ? header.size() : declared_length;
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[std::size_t(i)] = char((n >> (8 * i)) & 0xff);
  return out + header + data;
}

struct tensor_spec {
  std::string name;
  std::string dtype;  // safetensors dtype string
  std::vector<std::int64_t> shape;
  std::string bytes;  // raw little-endian data
};

inline std::string float_bytes(const std::vector<float>& v) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(s.data(), v.data(), s.size());
  return s;
}

// A valid safetensors file, tensors laid out in the given order.
inline std::string make_safetensors(const std::vector<tensor_spec>& tensors,
                                    const nlohmann::json& metadata = nlohmann::json()) {
  nlohmann::json header = nlohmann::json::object();
  std::string data;
  for (const auto& t : tensors) {
    header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {data.size(), data.size() + t.bytes.size()}}};
    data += t.bytes;
  }
  if (!metadata.is_null()) header["__metadata__"] = metadata;
  std::string text = header.dump();
  while (text.size() % 8) text += ' ';
  return raw_safetensors(text, data);
}

// The tensors of an existing file as specs, for rewriting.
inline std::vector<tensor_spec> read_specs(const safetensors_file& f) {
  std::vector<tensor_spec> out;
  for (const tensor_ref& t : f.tensors()) {
    tensor_spec s;
    s.name = t.name;
    s.dtype = dtype_name(t.type);
    for (int i = 0; i < t.shape.rank; ++i) s.shape.push_back(t.shape[i]);
    s.bytes.assign(static_cast<const char*>(t.data), t.bytes());
    out.push_back(std::move(s));
  }
  return out;
}

// Copies the single-file checkpoint `source` (config.json + model.safetensors)
// into `dest`, letting `edit` change the tensor list and the config first.
inline void copy_checkpoint(const std::string& source, const std::string& dest,
                            const std::function<void(std::vector<tensor_spec>&, nlohmann::json&)>& edit) {
  std::filesystem::create_directories(dest);
  safetensors_file original(source + "/model.safetensors");
  std::vector<tensor_spec> specs = read_specs(original);
  std::ifstream in(source + "/config.json");
  nlohmann::json config = nlohmann::json::parse(in);
  edit(specs, config);
  write_bytes(dest + "/model.safetensors", make_safetensors(specs));
  write_text(dest + "/config.json", config.dump(2));
}

}  // namespace unmask::test
