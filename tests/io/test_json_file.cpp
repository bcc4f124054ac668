// Reading files whoever made them: a FIFO (or any non-regular file) in place
// of a model file is refused at once instead of waiting for a writer; JSON
// nested deeper than max_json_depth is refused before nlohmann-json builds
// it (copies and messages would otherwise recurse once per level); sizes are
// bounded before the text is allocated.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <string>

#include "support/expect_error.hpp"
#include "support/test_files.hpp"
#include "unmask/io/checkpoint.hpp"
#include "unmask/io/json_file.hpp"
#include "unmask/model/transformer_model.hpp"
#include "unmask/tokenizer/byte_level_bpe.hpp"

namespace unmask {
namespace {

using test::expect_error;

// Runs f on another thread; a FIFO that makes it block is opened for writing
// after 10 s (which releases the reader) and the test fails.
template <class F>
void expect_refused_without_blocking(const std::string& fifo, F&& f, std::initializer_list<const char*> fragments) {
  auto done = std::async(std::launch::async, [&] { expect_error<file_error>(f, fragments); });
  if (done.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    const int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
    if (fd >= 0) ::close(fd);
    ADD_FAILURE() << "reading " << fifo << " blocked";
  }
  done.get();
}

TEST(HostileFiles, AFifoInPlaceOfAModelFileIsRefusedAtOnce) {
  test::scratch_dir dir;
  for (const char* name : {"config.json", "model.safetensors", "tokenizer.json"}) {
    const std::string path = dir.file(name);
    ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  }
  expect_refused_without_blocking(dir.file("config.json"), [&] { read_json_file(dir.file("config.json")); },
                        {"config.json' is not a regular file"});
  expect_refused_without_blocking(dir.file("model.safetensors"), [&] { safetensors_file f(dir.file("model.safetensors")); },
                        {"model.safetensors' is not a regular file"});
  expect_refused_without_blocking(dir.file("model.safetensors"), [&] { checkpoint::open(dir.str()); },
                        {"model.safetensors' is not a regular file"});
  expect_refused_without_blocking(dir.file("tokenizer.json"), [&] { bpe_tokenizer::load(dir.file("tokenizer.json")); },
                        {"tokenizer.json' is not a regular file"});
  expect_refused_without_blocking(dir.file("config.json"), [&] { transformer_model::load(dir.str()); },
                        {"config.json' is not a regular file"});
  expect_error<file_error>([&] { read_text_file(dir.str()); }, {"is not a regular file"});  // a directory
  expect_error<file_error>([&] { read_text_file(dir.file("absent.json")); }, {"cannot open", "absent.json"});
}

TEST(HostileFiles, DeepNestingIsRefusedBeforeParsing) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  expect_error<file_error>([&] { parse_json(deep, "'x.json'"); }, {"'x.json'", "nested deeper than 64 levels"});
  test::scratch_dir dir;
  test::write_text(dir.file("config.json"), "{\"architectures\": " + deep + "}");
  expect_error<file_error>([&] { read_json_file(dir.file("config.json")); }, {"config.json", "nested deeper"});
  // The limit itself is accepted, and brackets inside strings do not count.
  const std::string at_limit = std::string(max_json_depth, '[') + std::string(max_json_depth, ']');
  EXPECT_TRUE(parse_json(at_limit, "x").is_array());
  const nlohmann::json s = parse_json("{\"a\": \"" + std::string(1000, '[') + "\\\"{\"}", "x");
  EXPECT_EQ(s["a"].get<std::string>().size(), 1002u);
  expect_error<file_error>([&] { parse_json(std::string(max_json_depth + 1, '{'), "x"); }, {"nested deeper"});
  expect_error<file_error>([&] { parse_json("{\"a\": }", "'y.json'"); }, {"malformed JSON in 'y.json'"});
}

TEST(HostileFiles, SafetensorsHeaderNestingIsBounded) {
  test::scratch_dir dir;
  const std::string header = "{\"a\": " + std::string(100000, '[') + std::string(100000, ']') + "}";
  test::write_bytes(dir.file("t.safetensors"), test::raw_safetensors(header, ""));
  expect_error<file_error>([&] { safetensors_file f(dir.file("t.safetensors")); },
                           {"t.safetensors", "nested deeper than 64"});
}

TEST(HostileFiles, SizesAreBoundedBeforeReading) {
  test::scratch_dir dir;
  test::write_text(dir.file("a.txt"), "0123456789!");
  EXPECT_EQ(read_text_file(dir.file("a.txt"), 11), "0123456789!");
  expect_error<file_error>([&] { read_text_file(dir.file("a.txt"), 10); }, {"a.txt' is larger than the limit of 10"});
  // A stream (a pipe, a device) is read up to the limit, never without bound.
  EXPECT_EQ(read_text_stream("/dev/null", 16), "");
  expect_error<file_error>([&] { read_text_stream("/dev/zero", 1 << 20); }, {"/dev/zero' holds more than the limit"});
  expect_error<file_error>([&] { read_text_stream(dir.str(), 16); }, {"is a directory"});
}

}  // namespace
}  // namespace unmask
