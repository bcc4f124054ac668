// unmask/io/safetensors.hpp
//
// Reader for the safetensors format (huggingface/safetensors): an 8-byte
// little-endian header length N, N bytes of JSON describing each tensor's
// dtype, shape and [begin, end) byte range relative to the data section, then
// the data. The file is memory-mapped and every tensor is a zero-copy view into
// the mapping. Before any view is handed out the whole file is validated the
// way the reference implementation does: N <= 100,000,000 and inside the file;
// a JSON object whose entries have a known dtype, a shape of non-negative
// integers and two offsets; byte ranges that, sorted, tile the data section
// from 0 without gap or overlap; each range exactly numel x dtype size; and a
// file length of exactly 8 + N + the last end. A tensor whose bytes are not
// aligned to its element size (legal in the format, unusual in practice) is
// copied into an aligned buffer instead of viewed in place.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "unmask/core/dtype.hpp"
#include "unmask/core/error.hpp"
#include "unmask/core/host_buffer.hpp"
#include "unmask/core/tensor_view.hpp"
#include "unmask/io/json_file.hpp"
#include "unmask/io/mapped_file.hpp"

namespace unmask {

class safetensors_file {
 public:
  static constexpr std::uint64_t max_header_bytes = 100'000'000;

  explicit safetensors_file(const std::string& path) : file_(path) { parse(); }

  const std::string& path() const { return file_.path(); }
  // Tensors in file order (sorted by offset).
  const std::vector<tensor_ref>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  const tensor_ref* find(std::string_view name) const {
    auto it = index_.find(std::string(name));
    return it == index_.end() ? nullptr : &tensors_[it->second];
  }

  const tensor_ref& at(std::string_view name) const {
    if (const tensor_ref* t = find(name)) return *t;
    throw checkpoint_error(concat("tensor '", name, "' is not in '", path(), "'"));
  }

  // The memory map the tensors view (mapped_file::release drops pages).
  const mapped_file& mapping() const { return file_; }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw file_error(concat("invalid safetensors file '", path(), "': ", what));
  }

  static bool read_u64(const nlohmann::json& j, std::uint64_t& out) {
    if (j.is_number_unsigned()) {
      out = j.get<std::uint64_t>();
      return true;
    }
    if (j.is_number_integer() && j.get<std::int64_t>() >= 0) {
      out = std::uint64_t(j.get<std::int64_t>());
      return true;
    }
    return false;
  }

  void parse() {
    const std::size_t size = file_.size();
    if (size < 8) fail(concat("truncated: ", size, " bytes, shorter than the 8-byte header length"));
    std::uint64_t header_bytes = 0;
    for (int i = 7; i >= 0; --i) header_bytes = (header_bytes << 8) | file_.data()[i];
    if (header_bytes > max_header_bytes)
      fail(concat("header length ", header_bytes, " exceeds the limit of ", max_header_bytes, " bytes"));
    if (header_bytes > size - 8)
      fail(concat("header length ", header_bytes, " runs past the end of the file (", size, " bytes)"));

    const char* header = reinterpret_cast<const char*>(file_.data() + 8);
    nlohmann::json root;
    try {
      root = parse_json(std::string_view(header, std::size_t(header_bytes)), "the header");
    } catch (const file_error& e) {
      fail(e.what());
    }
    if (!root.is_object()) fail("the JSON header is not an object");

    struct entry {
      tensor_ref ref;
      std::uint64_t begin, end;
    };
    std::vector<entry> entries;
    for (auto it = root.begin(); it != root.end(); ++it) {
      const std::string& name = it.key();
      const nlohmann::json& value = it.value();
      if (name == "__metadata__") {
        if (!value.is_object()) fail("__metadata__ is not an object");
        for (auto m = value.begin(); m != value.end(); ++m) {
          if (!m.value().is_string()) fail(concat("__metadata__ value '", m.key(), "' is not a string"));
          metadata_[m.key()] = m.value().get<std::string>();
        }
        continue;
      }
      if (!value.is_object()) fail(concat("entry '", name, "' is not an object"));
      entry e;
      e.ref.name = name;
      auto dt = value.find("dtype");
      if (dt == value.end() || !dt->is_string()) fail(concat("tensor '", name, "' has no dtype string"));
      if (!parse_dtype(dt->get<std::string>(), e.ref.type))
        fail(concat("tensor '", name, "' has unknown dtype '", dt->get<std::string>(), "'"));
      auto shape = value.find("shape");
      if (shape == value.end() || !shape->is_array()) fail(concat("tensor '", name, "' has no shape array"));
      if (shape->size() > std::size_t(max_rank))
        fail(concat("tensor '", name, "' has rank ", shape->size(), "; unmask supports up to ", max_rank));
      std::uint64_t numel = 1;
      bool overflow = false;
      for (const auto& d : *shape) {
        std::uint64_t dim = 0;
        if (!read_u64(d, dim)) fail(concat("tensor '", name, "' has a shape entry that is not a non-negative integer"));
        if (dim > std::uint64_t(std::numeric_limits<std::int64_t>::max())) overflow = true;
        if (dim != 0 && numel > std::numeric_limits<std::uint64_t>::max() / dim) overflow = true;
        numel *= dim;
        e.ref.shape.dims[e.ref.shape.rank++] = std::int64_t(dim);
      }
      auto offsets = value.find("data_offsets");
      if (offsets == value.end() || !offsets->is_array() || offsets->size() != 2 ||
          !read_u64((*offsets)[0], e.begin) || !read_u64((*offsets)[1], e.end))
        fail(concat("tensor '", name, "' needs data_offsets [begin, end] of non-negative integers"));
      if (e.end < e.begin) fail(concat("tensor '", name, "' has data_offsets [", e.begin, ", ", e.end, "] with end < begin"));
      const std::uint64_t element = dtype_size(e.ref.type);
      if (overflow || numel > std::numeric_limits<std::uint64_t>::max() / element)
        fail(concat("tensor '", name, "' has a shape whose byte size overflows"));
      if (e.end - e.begin != numel * element)
        fail(concat("tensor '", name, "' holds ", e.end - e.begin, " bytes, but shape ", to_string(e.ref.shape),
                    " of ", dtype_name(e.ref.type), " needs ", numel * element));
      entries.push_back(std::move(e));
    }

    std::sort(entries.begin(), entries.end(), [](const entry& a, const entry& b) {
      return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    std::uint64_t expected = 0;
    const std::string* previous = nullptr;
    for (const entry& e : entries) {
      if (e.begin < expected)
        fail(concat("tensor '", e.ref.name, "' at bytes [", e.begin, ", ", e.end, ") overlaps tensor '", *previous,
                    "' ending at ", expected));
      if (e.begin > expected)
        fail(concat("gap in the data section: tensor '", e.ref.name, "' starts at byte ", e.begin, ", expected ",
                    expected));
      expected = e.end;
      previous = &e.ref.name;
    }
    const std::uint64_t data_start = 8 + header_bytes;
    if (size - data_start != expected) {
      if (size - data_start < expected)
        fail(concat("truncated: the header describes ", expected, " data bytes but the file holds ",
                    size - data_start));
      fail(concat("the file has ", size - data_start - expected, " trailing bytes after the last tensor"));
    }

    tensors_.reserve(entries.size());
    for (entry& e : entries) {
      const unsigned char* bytes = file_.data() + data_start + e.begin;
      const std::size_t element = dtype_size(e.ref.type);
      if (reinterpret_cast<std::uintptr_t>(bytes) % element != 0) {
        host_buffer<unsigned char> copy(std::max<std::size_t>(e.end - e.begin, 1));
        std::memcpy(copy.data(), bytes, e.end - e.begin);
        e.ref.data = copy.data();
        unaligned_copies_.push_back(std::move(copy));
      } else {
        e.ref.data = bytes;
      }
      index_[e.ref.name] = tensors_.size();
      tensors_.push_back(std::move(e.ref));
    }
  }

  mapped_file file_;
  std::vector<tensor_ref> tensors_;
  std::unordered_map<std::string, std::size_t> index_;
  std::map<std::string, std::string> metadata_;
  std::vector<host_buffer<unsigned char>> unaligned_copies_;
};

}  // namespace unmask
