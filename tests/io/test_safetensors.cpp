// The safetensors reader: it must accept files written by the reference
// Python library unchanged, and reject every malformed file with an error
// that names the file and the fault.
#include <gtest/gtest.h>

#include <string>

#include "support/expect_error.hpp"
#include "support/test_files.hpp"
#include "unmask/io/safetensors.hpp"

namespace unmask {
namespace {

using test::expect_error;

using test::raw_safetensors;
using test::scratch_dir;

std::string write(const scratch_dir& dir, const std::string& bytes) {
  const std::string path = dir.file("t.safetensors");
  test::write_bytes(path, bytes);
  return path;
}

TEST(Safetensors, ReadsFileWrittenByPythonSafetensors) {
  safetensors_file f(test::data_dir() + "/goldens/mha_batched_full.safetensors");
  ASSERT_EQ(f.tensors().size(), 3u);
  const tensor_ref& logits = f.at("logits");
  EXPECT_EQ(logits.type, dtype::f32);
  EXPECT_EQ(logits.shape, (shape_t{3, 16, 100}));
  const tensor_ref& lengths = f.at("lengths");
  EXPECT_EQ(lengths.type, dtype::i32);
  const auto* l = static_cast<const std::int32_t*>(lengths.data);
  EXPECT_EQ(l[0], 16);
  EXPECT_EQ(l[1], 9);
  EXPECT_EQ(l[2], 4);
  EXPECT_EQ(f.metadata().at("attention"), "full");
  EXPECT_EQ(f.find("absent"), nullptr);
  expect_error<checkpoint_error>([&] { f.at("absent"); }, {"'absent'", "mha_batched_full.safetensors"});
}

TEST(Safetensors, ViewsAreZeroCopyAndRoundTrip) {
  scratch_dir dir;
  const std::string path = write(dir, test::make_safetensors({{"a", "F32", {2, 2}, test::float_bytes({1, 2, 3, 4})},
                                                              {"b", "BF16", {3}, std::string(6, '\x3f')},
                                                              {"empty", "F32", {0, 5}, ""}},
                                                             {{"format", "pt"}}));
  safetensors_file f(path);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  auto a = f.at("a").as<float>();
  EXPECT_EQ(a(1, 0), 3.0f);
  EXPECT_EQ(f.at("b").shape, (shape_t{3}));
  EXPECT_EQ(f.at("empty").shape.numel(), 0);
  EXPECT_EQ(f.tensors().front().name, "a");  // sorted by offset
}

TEST(Safetensors, MisalignedTensorIsCopiedNotMisread) {
  scratch_dir dir;
  // An odd-length header puts the F32 data at an odd address in the mapping.
  const std::string header = R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  ASSERT_NE((8 + header.size()) % 4, 0u);
  safetensors_file f(write(dir, raw_safetensors(header, test::float_bytes({1.5f, -2.0f}))));
  const tensor_ref& x = f.at("x");
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(x.data) % 4, 0u);
  EXPECT_EQ(x.as<float>()(1), -2.0f);
}

TEST(SafetensorsBadInput, MissingFile) {
  expect_error<file_error>([] { safetensors_file f("/nonexistent/x.safetensors"); }, {"cannot open", "/nonexistent/x.safetensors"});
}

TEST(SafetensorsBadInput, TruncatedBeforeHeaderLength) {
  scratch_dir dir;
  const std::string path = write(dir, std::string(5, '\0'));
  expect_error<file_error>([&] { safetensors_file f(path); }, {"t.safetensors", "truncated", "5 bytes"});
}

TEST(SafetensorsBadInput, HeaderLengthBeyondFile) {
  scratch_dir dir;
  const std::string path = write(dir, raw_safetensors("{}", "", 4096));
  expect_error<file_error>([&] { safetensors_file f(path); }, {"header length 4096 runs past the end"});
}

TEST(SafetensorsBadInput, HeaderLengthOverLimit) {
  scratch_dir dir;
  const std::string path = write(dir, raw_safetensors("{}", "", 200'000'000));
  expect_error<file_error>([&] { safetensors_file f(path); }, {"exceeds the limit of 100000000"});
}

TEST(SafetensorsBadInput, MalformedJson) {
  scratch_dir dir;
  const std::string path = write(dir, raw_safetensors(R"({"a": {"dtype": "F32", )", ""));
  expect_error<file_error>([&] { safetensors_file f(path); }, {"malformed JSON in the header", "t.safetensors"});
  const std::string not_object = write(dir, raw_safetensors("[1, 2]", ""));
  expect_error<file_error>([&] { safetensors_file f(not_object); }, {"not an object"});
}

TEST(SafetensorsBadInput, UnknownDtype) {
  scratch_dir dir;
  const std::string path = write(dir, raw_safetensors(R"({"w":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}})",
                                                      std::string(16, '\0')));
  expect_error<file_error>([&] { safetensors_file f(path); }, {"'w'", "unknown dtype 'F128'"});
}

TEST(SafetensorsBadInput, BadShapeAndOffsets) {
  scratch_dir dir;
  const std::string negative = write(dir, raw_safetensors(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})",
                                                          std::string(4, '\0')));
  expect_error<file_error>([&] { safetensors_file f(negative); }, {"'w'", "not a non-negative integer"});
  const std::string reversed = write(dir, raw_safetensors(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})",
                                                          std::string(4, '\0')));
  expect_error<file_error>([&] { safetensors_file f(reversed); }, {"'w'", "end < begin"});
  const std::string missing = write(dir, raw_safetensors(R"({"w":{"dtype":"F32","shape":[1]}})", std::string(4, '\0')));
  expect_error<file_error>([&] { safetensors_file f(missing); }, {"'w'", "data_offsets"});
}

TEST(SafetensorsBadInput, ByteLengthDisagreesWithShape) {
  scratch_dir dir;
  const std::string path = write(dir, raw_safetensors(R"({"w":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,8]}})",
                                                      std::string(8, '\0')));
  expect_error<file_error>([&] { safetensors_file f(path); }, {"'w' holds 8 bytes", "[2, 3]", "BF16 needs 12"});
}

TEST(SafetensorsBadInput, OverlappingOffsets) {
  scratch_dir dir;
  const std::string path = write(
      dir, raw_safetensors(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                           R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                           std::string(12, '\0')));
  expect_error<file_error>([&] { safetensors_file f(path); }, {"'b'", "overlaps tensor 'a'"});
}

TEST(SafetensorsBadInput, GappedOffsets) {
  scratch_dir dir;
  const std::string gap = write(
      dir, raw_safetensors(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                           R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                           std::string(12, '\0')));
  expect_error<file_error>([&] { safetensors_file f(gap); }, {"gap", "'b' starts at byte 8, expected 4"});
  const std::string late_start = write(
      dir, raw_safetensors(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", std::string(8, '\0')));
  expect_error<file_error>([&] { safetensors_file f(late_start); }, {"'a' starts at byte 4, expected 0"});
}

TEST(SafetensorsBadInput, TruncatedDataAndTrailingBytes) {
  scratch_dir dir;
  const std::string header = R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})";
  const std::string truncated = write(dir, raw_safetensors(header, std::string(10, '\0')));
  expect_error<file_error>([&] { safetensors_file f(truncated); }, {"truncated", "16 data bytes", "holds 10"});
  const std::string trailing = write(dir, raw_safetensors(header, std::string(20, '\0')));
  expect_error<file_error>([&] { safetensors_file f(trailing); }, {"4 trailing bytes"});
}

TEST(SafetensorsBadInput, MetadataMustBeStrings) {
  scratch_dir dir;
  const std::string path = write(dir, raw_safetensors(R"({"__metadata__":{"n":3}})", ""));
  expect_error<file_error>([&] { safetensors_file f(path); }, {"__metadata__ value 'n'"});
}

}  // namespace
}  // namespace unmask
