// unmask/io/checkpoint.hpp
//
// A checkpoint is every tensor of a model, gathered from the files of a
// Hugging Face model directory: either one `model.safetensors`, or the shards
// listed by `model.safetensors.index.json`, whose `weight_map` names the shard
// of each tensor. Each shard is memory-mapped and validated once; the index is
// checked against the shards (every mapped tensor must be in its shard), so a
// tensor lookup never touches the disk. A checkpoint can also own tensors in
// memory (add_owned), which is how random-weight models of real shapes are
// built for benchmarks without multi-gigabyte files.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "unmask/core/error.hpp"
#include "unmask/core/host_buffer.hpp"
#include "unmask/core/tensor_view.hpp"
#include "unmask/io/json_file.hpp"
#include "unmask/io/safetensors.hpp"

namespace unmask {

class checkpoint {
 public:
  // `path` is a model directory or a single .safetensors file.
  static checkpoint open(const std::string& path) {
    namespace fs = std::filesystem;
    checkpoint c;
    c.source_ = path;
    std::error_code ec;
    if (fs::is_regular_file(path, ec)) {
      c.add_file(path);
      return c;
    }
    if (!fs::is_directory(path, ec)) throw file_error(concat("checkpoint path '", path, "' does not exist"));
    const fs::path dir(path);
    const fs::path index = dir / "model.safetensors.index.json";
    const fs::path single = dir / "model.safetensors";
    if (fs::exists(index, ec)) {
      c.load_index(index.string());
    } else if (fs::exists(single, ec)) {
      c.add_file(single.string());
    } else {
      throw file_error(concat("no model.safetensors or model.safetensors.index.json in '", path, "'"));
    }
    return c;
  }

  const std::string& source() const { return source_; }

  const tensor_ref* find(std::string_view name) const {
    auto it = tensors_.find(std::string(name));
    return it == tensors_.end() ? nullptr : it->second;
  }

  const tensor_ref& tensor(std::string_view name) const {
    if (const tensor_ref* t = find(name)) return *t;
    throw checkpoint_error(concat("checkpoint '", source_, "' has no tensor '", name, "'"));
  }

  std::vector<std::string> names() const {
    std::vector<std::string> out;
    out.reserve(tensors_.size());
    for (const auto& [name, ref] : tensors_) out.push_back(name);
    return out;
  }

  // Adds a zero-filled tensor owned by the checkpoint; returns its storage.
  void* add_owned(const std::string& name, const shape_t& shape, dtype type) {
    auto ref = std::make_unique<tensor_ref>();
    ref->name = name;
    ref->shape = shape;
    ref->type = type;
    host_buffer<unsigned char> storage(std::max<std::size_t>(ref->bytes(), 1));
    ref->data = storage.data();
    owned_storage_.push_back(std::move(storage));
    insert(*ref, "memory");
    owned_refs_.push_back(std::move(ref));
    return owned_storage_.back().data();
  }

  // Drops the resident pages of a tensor that is mapped from a file (a
  // no-op for owned tensors); reading it again faults them back in.
  void release_pages(const tensor_ref& t) const {
    for (const auto& shard : shards_)
      if (shard->mapping().contains(t.data)) shard->mapping().release(t.data, t.bytes());
  }

  std::size_t total_bytes() const {
    std::size_t total = 0;
    for (const auto& [name, ref] : tensors_) total += ref->bytes();
    return total;
  }

 private:
  safetensors_file& open_shard(const std::string& file) {
    auto it = shards_by_path_.find(file);
    if (it != shards_by_path_.end()) return *it->second;
    auto shard = std::make_unique<safetensors_file>(file);
    safetensors_file& ref = *shard;
    shards_by_path_[file] = shard.get();
    shards_.push_back(std::move(shard));
    return ref;
  }

  void add_file(const std::string& file) {
    const safetensors_file& shard = open_shard(file);
    for (const tensor_ref& t : shard.tensors()) insert(t, file);
  }

  void insert(const tensor_ref& t, const std::string& file) {
    if (!tensors_.emplace(t.name, &t).second)
      throw checkpoint_error(concat("tensor '", t.name, "' appears twice in checkpoint '", source_, "' (again in '",
                                    file, "')"));
  }

  void load_index(const std::string& index_path) {
    namespace fs = std::filesystem;
    const nlohmann::json index = read_json_file(index_path);
    auto map = index.find("weight_map");
    if (!index.is_object() || map == index.end() || !map->is_object())
      throw file_error(concat("'", index_path, "' has no weight_map object"));
    const fs::path dir = fs::path(index_path).parent_path();
    for (auto it = map->begin(); it != map->end(); ++it) {
      if (!it.value().is_string())
        throw file_error(concat("'", index_path, "': weight_map entry '", it.key(), "' is not a file name"));
      const std::string shard_name = it.value().get<std::string>();
      if (shard_name.empty() || shard_name.find('/') != std::string::npos || shard_name == "..")
        throw file_error(concat("'", index_path, "': weight_map entry '", it.key(), "' names an invalid shard '",
                                shard_name, "'"));
      const std::string file = (dir / shard_name).string();
      const safetensors_file& shard = open_shard(file);
      const tensor_ref* t = shard.find(it.key());
      if (!t)
        throw checkpoint_error(concat("'", index_path, "' maps tensor '", it.key(), "' to '", shard_name,
                                      "', which does not contain it"));
      insert(*t, file);
    }
  }

  std::string source_;
  std::vector<std::unique_ptr<safetensors_file>> shards_;
  std::unordered_map<std::string, safetensors_file*> shards_by_path_;
  std::map<std::string, const tensor_ref*> tensors_;
  std::vector<std::unique_ptr<tensor_ref>> owned_refs_;
  std::vector<host_buffer<unsigned char>> owned_storage_;
};

}  // namespace unmask
