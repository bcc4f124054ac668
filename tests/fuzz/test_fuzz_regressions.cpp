// Every fuzz target's seeds (fuzz/corpus/<target>/) and every input that
// ever crashed, hung or was wrongly accepted (fuzz/regressions/<target>/),
// replayed through the same target functions libFuzzer calls, in the
// ordinary suite: an exception other than unmask::error, an abort or a
// sanitizer report (in the sanitized CI stage) fails the test.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "../../fuzz/targets/chat_template.hpp"
#include "../../fuzz/targets/model_config.hpp"
#include "../../fuzz/targets/model_directory.hpp"
#include "../../fuzz/targets/safetensors.hpp"
#include "../../fuzz/targets/tokenizer_config.hpp"
#include "../../fuzz/targets/tokenizer_encode.hpp"
#include "../../fuzz/targets/tokenizer_load.hpp"
#include "../../fuzz/targets/tokenizer_round_trip.hpp"

namespace {

namespace fs = std::filesystem;
using target_fn = int (*)(const std::uint8_t*, std::size_t);

struct target {
  const char* name;
  target_fn run;
};

const target targets[] = {
    {"safetensors", unmask_fuzz::safetensors},
    {"model_directory", unmask_fuzz::model_directory},
    {"model_config", unmask_fuzz::model_config},
    {"tokenizer_load", unmask_fuzz::tokenizer_load},
    {"tokenizer_encode", unmask_fuzz::tokenizer_encode},
    {"tokenizer_round_trip", unmask_fuzz::tokenizer_round_trip},
    {"chat_template", unmask_fuzz::chat_template},
    {"tokenizer_config", unmask_fuzz::tokenizer_config},
};

std::vector<fs::path> inputs(const std::string& folder, const std::string& name) {
  std::vector<fs::path> out;
  const fs::path dir = fs::path(UNMASK_SOURCE_DIR) / "fuzz" / folder / name;
  if (fs::is_directory(dir))
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_regular_file()) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

void replay(const target& t, const std::string& folder) {
  for (const fs::path& path : inputs(folder, t.name)) {
    std::ifstream in(path, std::ios::binary);
    const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    SCOPED_TRACE(path.string());
    EXPECT_NO_THROW(EXPECT_EQ(t.run(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()), 0));
  }
}

TEST(FuzzTargets, EveryTargetHasSeeds) {
  for (const target& t : targets) EXPECT_GE(inputs("corpus", t.name).size(), 3u) << t.name;
}

TEST(FuzzTargets, SeedsRunCleanly) {
  for (const target& t : targets) replay(t, "corpus");
}

TEST(FuzzTargets, EveryRegressionInputIsRefusedCleanly) {
  std::size_t count = 0;
  for (const target& t : targets) {
    count += inputs("regressions", t.name).size();
    replay(t, "regressions");
  }
  EXPECT_GE(count, 10u);
}

}  // namespace
