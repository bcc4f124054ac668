// Checkpoints: a single file, a sharded directory through
// model.safetensors.index.json, and the errors of a broken index.
#include <gtest/gtest.h>

#include <string>

#include "support/expect_error.hpp"
#include "support/test_files.hpp"
#include "unmask/io/checkpoint.hpp"

namespace unmask {
namespace {

using test::expect_error;

TEST(Checkpoint, SingleFileDirectory) {
  checkpoint c = checkpoint::open(test::data_dir() + "/tiny_llada_mha");
  EXPECT_EQ(c.names().size(), 21u);
  EXPECT_EQ(c.tensor("model.transformer.wte.weight").shape, (shape_t{100, 64}));
  EXPECT_EQ(c.tensor("model.transformer.wte.weight").type, dtype::bf16);
  expect_error<checkpoint_error>([&] { c.tensor("model.transformer.nope"); }, {"no tensor 'model.transformer.nope'"});
}

TEST(Checkpoint, ShardedDirectoryThroughIndex) {
  checkpoint c = checkpoint::open(test::data_dir() + "/tiny_llada_gqa");
  EXPECT_EQ(c.names().size(), 20u);  // tied: no separate head
  EXPECT_NE(c.find("model.transformer.blocks.0.q_proj.weight"), nullptr);
  EXPECT_NE(c.find("model.transformer.blocks.1.ff_out.weight"), nullptr);
  EXPECT_EQ(c.tensor("model.transformer.blocks.0.k_proj.weight").shape, (shape_t{32, 64}));
  EXPECT_EQ(c.total_bytes(), 185472u);  // the index's metadata.total_size
}

TEST(CheckpointBadInput, MissingDirectoryAndFiles) {
  expect_error<file_error>([] { checkpoint::open("/nonexistent/model"); }, {"'/nonexistent/model' does not exist"});
  test::scratch_dir dir;
  expect_error<file_error>([&] { checkpoint::open(dir.str()); }, {"no model.safetensors or model.safetensors.index.json"});
}

TEST(CheckpointBadInput, IndexNamesTensorAbsentFromShard) {
  test::scratch_dir dir;
  test::write_bytes(dir.file("shard.safetensors"),
                    test::make_safetensors({{"a", "F32", {1}, test::float_bytes({1})}}));
  test::write_text(dir.file("model.safetensors.index.json"),
                   R"({"metadata": {}, "weight_map": {"a": "shard.safetensors", "b": "shard.safetensors"}})");
  expect_error<checkpoint_error>([&] { checkpoint::open(dir.str()); }, {"maps tensor 'b' to 'shard.safetensors'"});
}

TEST(CheckpointBadInput, IndexWithMissingShardOrBadJson) {
  test::scratch_dir dir;
  test::write_text(dir.file("model.safetensors.index.json"), R"({"weight_map": {"a": "gone.safetensors"}})");
  expect_error<file_error>([&] { checkpoint::open(dir.str()); }, {"cannot open", "gone.safetensors"});
  test::write_text(dir.file("model.safetensors.index.json"), R"({"weight_map": {"a": )");
  expect_error<file_error>([&] { checkpoint::open(dir.str()); }, {"malformed JSON", "model.safetensors.index.json"});
  test::write_text(dir.file("model.safetensors.index.json"), R"({"metadata": {}})");
  expect_error<file_error>([&] { checkpoint::open(dir.str()); }, {"no weight_map"});
  test::write_text(dir.file("model.safetensors.index.json"), R"({"weight_map": {"a": "../x.safetensors"}})");
  expect_error<file_error>([&] { checkpoint::open(dir.str()); }, {"invalid shard"});
}

}  // namespace
}  // namespace unmask
