// The unmask program end to end: every subcommand and mode on the embedded
// models, machine-readable output, and bad flags or values (one clear line on
// stderr, exit status 2) or unusable files (exit status 1). Chat turns are
// checked against the library's own rendering and encoding of the same
// conversation (the rendering itself is checked against transformers in
// tests/chat).
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include <fstream>

#include <nlohmann/json.hpp>

#include "unmask/chat/chat_template.hpp"
#include "unmask/tokenizer/byte_level_bpe.hpp"
#include "unmask/tokenizer/tokenizer_config.hpp"

namespace {

struct result {
  int status = -1;
  std::string out, err;
};

result run(const std::string& args, const std::string& program = UNMASK_CLI) {
  // One file per process: ctest runs the tests of this binary in parallel processes.
  const std::string err_file = ::testing::TempDir() + "unmask_cli_stderr_" + std::to_string(getpid()) + ".txt";
  const std::string command = program + " " + args + " 2>" + err_file;
  result r;
  FILE* pipe = popen(command.c_str(), "r");
  std::array<char, 4096> buffer{};
  std::size_t n;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) r.out.append(buffer.data(), n);
  const int raw = pclose(pipe);
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  if (FILE* f = std::fopen(err_file.c_str(), "r")) {
    while ((n = std::fread(buffer.data(), 1, buffer.size(), f)) > 0) r.err.append(buffer.data(), n);
    std::fclose(f);
  }
  return r;
}

int lines(const std::string& s) {
  int count = 0;
  for (char c : s) count += c == '\n';
  return count;
}

TEST(UnmaskCli, GenerateWithTheEmbeddedModel) {
  const result r = run("generate -p 'In the beginning God' --gen-length 32 --block-length 16 --steps 16");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out.rfind("In the beginning God", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("diffusion"), std::string::npos);
  EXPECT_NE(r.out.find("tokens/s"), std::string::npos);
}

TEST(UnmaskCli, CompareAsJson) {
  const result r = run("generate -p 'And God said' --gen-length 32 --block-length 32 --policy threshold --threshold 0.5 "
                       "--compare --json");
  ASSERT_EQ(r.status, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.at("runs").size(), 2u);
  EXPECT_EQ(j["runs"][0]["mode"], "diffusion");
  EXPECT_EQ(j["runs"][1]["mode"], "autoregressive");
  for (const auto& run : j["runs"]) {
    EXPECT_GT(run["tokens"].get<int>(), 0);
    EXPECT_GT(run["forwards"].get<int>(), 0);
    EXPECT_GT(run["tokens_per_second"].get<double>(), 0.0);
    EXPECT_TRUE(run["text"].is_string());
  }
  EXPECT_GE(j["runs"][0]["tokens_per_forward"].get<double>(), 1.0);
}

TEST(UnmaskCli, EveryPolicyAndMode) {
  for (const std::string flags :
       {"--policy margin", "--policy entropy", "--policy random --seed 3", "--policy factor --factor 1.5",
        "--policy eb --gamma 1", "--temperature 0.8 --top-k 20 --top-p 0.9 --seed 1", "--schedule dream",
        "--schedule llama_cpp", "--cfg 1.0", "--remasking mdlm --temperature 1", "--remasking cap --eta 0.05",
        "--remasking loop", "--cache prefix", "--cache dual --cache-refresh 2", "--ar", "--visual"}) {
    const result r = run("generate -p 'The LORD' --gen-length 16 --block-length 8 --steps 8 " + flags);
    EXPECT_EQ(r.status, 0) << flags << ": " << r.err;
    EXPECT_FALSE(r.out.empty()) << flags;
  }
}

TEST(UnmaskCli, Info) {
  const result r = run("info");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("d_model"), std::string::npos);
  EXPECT_NE(r.out.find("tokenizer"), std::string::npos);
  EXPECT_NE(r.out.find("gpt2 pre-tokenizer"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("chat template        yes"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("stop ids             4094"), std::string::npos) << r.out;
}

TEST(UnmaskCli, InfoNamesTheFamily) {
  const std::pair<const char*, std::vector<const char*>> cases[] = {
      {"tiny_llada_mha", {"family               LLaDA (LLaDA tensor layout)", "objective            masked diffusion",
                          "attention            bidirectional", "position i from the output at i"}},
      {"tiny_dream", {"family               Dream (Qwen tensor layout)", "attention            bidirectional",
                      "shifted (position i from the output at i-1)", "q/k/v bias, q/k norm yes, no"}},
      {"tiny_fast_dllm_v2", {"Fast-dLLM v2", "block-causal, blocks of 4", "shifted", "tied head            yes"}},
      {"tiny_sdar", {"family               SDAR", "block-causal, blocks of 4", "q/k/v bias, q/k norm no, yes",
                     "head_dim 32"}},
  };
  for (const auto& [model, fragments] : cases) {
    const result r = run(std::string("info --model ") + UNMASK_TEST_DATA_DIR + "/" + model);
    ASSERT_EQ(r.status, 0) << model << ": " << r.err;
    for (const char* f : fragments) EXPECT_NE(r.out.find(f), std::string::npos) << model << ": " << f << "\n" << r.out;
  }
  EXPECT_NE(run("info").out.find("family               LLaDA"), std::string::npos);
}

TEST(UnmaskCli, EveryFamilyRunsEndToEnd) {
  // The tiny checkpoints have no tokenizer: prompts and outputs as ids. The
  // family picks the decoder (block by block for the block-causal ones).
  const std::string data = UNMASK_TEST_DATA_DIR;
  const std::pair<std::string, std::string> cases[] = {
      {"tiny_dream", "--gen-length 12 --block-length 12 --steps 6 --schedule dream --policy entropy"},
      {"tiny_fast_dllm_v2", "--gen-length 12 --threshold 0.05"},
      {"tiny_sdar", "--gen-length 12 --strategy low_confidence_static --block-steps 2"},
      {"tiny_llada_mha", "--gen-length 8 --block-length 8 --steps 4"}};
  for (const auto& [model, flags] : cases) {
    const result r = run("generate --model " + data + "/" + model + " --prompt-ids 5,17,42,7 --no-eos-stop --json " + flags);
    ASSERT_EQ(r.status, 0) << model << ": " << r.err;
    const nlohmann::json j = nlohmann::json::parse(r.out);
    const nlohmann::json& run0 = j.at("runs").at(0);
    EXPECT_EQ(j.at("prompt_ids"), nlohmann::json({5, 17, 42, 7})) << model;
    EXPECT_EQ(run0.at("mode"), model == "tiny_fast_dllm_v2" || model == "tiny_sdar" ? "block diffusion" : "diffusion") << model;
    EXPECT_EQ(run0.at("tokens"), model == "tiny_llada_mha" ? 8 : 12) << model;
    const std::string text = run0.at("text");
    EXPECT_FALSE(text.empty()) << model;  // ids up to the first end-of-sequence id
    EXPECT_LE(std::count(text.begin(), text.end(), ' ') + 1, model == "tiny_llada_mha" ? 8 : 12) << model << ": " << text;
    if (model == "tiny_sdar") {
      EXPECT_EQ(run0.at("forwards"), 1 + 3 * 2 + 2) << "prefill, two steps per block, two stores";
    }
  }
  const result no_tokenizer = run("generate --model " + data + "/tiny_dream -p hello");
  EXPECT_EQ(no_tokenizer.status, 1) << no_tokenizer.err;
  EXPECT_NE(no_tokenizer.err.find("--prompt-ids"), std::string::npos) << no_tokenizer.err;
  for (const std::string bad : {"--prompt-ids 5,x", "--prompt-ids 5,,6", "--prompt-ids 5 --policy threshold",
                                "--prompt-ids 5 --block-length 8", "--prompt-ids 5 --strategy fastest"}) {
    const result r = run("generate --model " + data + "/tiny_sdar " + bad);
    EXPECT_EQ(r.status, 2) << bad << ": " << r.err;
    EXPECT_EQ(lines(r.err), 1) << bad << ": " << r.err;
  }
}

TEST(UnmaskCli, BadFlagsAndValuesExitTwoWithOneLine) {
  for (const std::string args :
       {"generate", "generate -p x --gen-length 0", "generate -p x --policy best", "generate -p x --temperature -1",
        "generate -p x --top-p 2", "generate -p x --bogus", "generate -p x --gen-length 30 --block-length 8",
        "generate -p x --gen-length 32 --block-length 8 --steps 6", "generate -p x --ar --compare",
        "generate -p x --remasking cap --policy threshold", "generate -p x --cache-refresh -1",
        "frobnicate", "generate -p x --model /nonexistent",
        "generate -p x --gen-length 8 --block-length 8 --steps 8 --confidence-eos-eot-inf"}) {
    const result r = run(args);
    EXPECT_EQ(r.status, 2) << args << ": " << r.err;
    EXPECT_EQ(lines(r.err), 1) << args << ": " << r.err;
    EXPECT_EQ(r.err.rfind("unmask: ", 0), 0u) << args << ": " << r.err;
  }
}

TEST(UnmaskCli, LladaLogitsOptions) {
  // The tiny tokenizer has no <|eot_id|>: the end-of-turn id comes from --eot-id.
  const result eot = run("generate -p x --gen-length 8 --block-length 8 --steps 8 --confidence-eos-eot-inf");
  EXPECT_NE(eot.err.find("<|eot_id|>"), std::string::npos) << eot.err;
  for (const std::string flags : {"--logits-eos-inf --json", "--confidence-eos-eot-inf --eot-id 7 --json"}) {
    const result r = run("generate -p 'In the beginning' --gen-length 16 --block-length 16 --steps 16 " + flags);
    EXPECT_EQ(r.status, 0) << flags << ": " << r.err;
    EXPECT_NE(r.out.find("\"tokens_per_second\""), std::string::npos) << r.out;
  }
}

// The ids the program should decode from for a conversation on the embedded model.
std::size_t tiny_chat_prompt_tokens(const std::vector<unmask::chat_message>& messages) {
  const std::string dir = std::string(UNMASK_SOURCE_DIR) + "/models/tiny-llada";
  unmask::bpe_tokenizer t = unmask::bpe_tokenizer::load(dir + "/tokenizer.json");
  const unmask::tokenizer_config config = unmask::tokenizer_config::load_dir(dir);
  config.apply(t);
  unmask::chat_render_options options;
  options.eos_token = config.eos_token.value_or("");
  return t.encode(unmask::chat_template::parse(*config.chat_template, "tiny").render(messages, options), false).size();
}

TEST(UnmaskCli, ChatReadsOneTurnPerLineOfStdin) {
  const std::string input = ::testing::TempDir() + "unmask_chat_" + std::to_string(getpid()) + ".txt";
  std::ofstream(input) << "In the beginning God created the heaven and the earth.\n\nAnd God said, Let there be light\n";
  const result r = run("chat --gen-length 16 --block-length 16 --steps 16 --json < " + input);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(lines(r.out), 3) << r.out;
  std::vector<unmask::chat_message> messages;
  std::size_t at = 0;
  for (int turn = 1; turn <= 3; ++turn) {
    const std::size_t end = r.out.find('\n', at);
    ASSERT_NE(end, std::string::npos) << r.out;
    const nlohmann::json j = nlohmann::json::parse(r.out.substr(at, end - at));
    at = end + 1;
    EXPECT_EQ(j.at("turn"), turn);
    messages.push_back({"user", j.at("user").get<std::string>()});
    EXPECT_EQ(j.at("prompt_tokens").get<std::size_t>(), tiny_chat_prompt_tokens(messages)) << "turn " << turn;
    EXPECT_EQ(j.at("run").at("mode"), "diffusion");
    const std::string reply = j.at("assistant");
    EXPECT_EQ(reply.find("<|eos|>"), std::string::npos) << reply;  // the reply ends before the end of its turn
    messages.push_back({"assistant", reply});
  }
  EXPECT_EQ(messages[0].content, "In the beginning God created the heaven and the earth.");
  EXPECT_EQ(messages[2].content, "");  // an empty line is an empty turn
  // The same conversation's first turn through generate --chat.
  const result g = run("generate -p 'In the beginning God created the heaven and the earth.' --chat --gen-length 16 "
                       "--block-length 16 --steps 16 --json");
  ASSERT_EQ(g.status, 0) << g.err;
  EXPECT_EQ(nlohmann::json::parse(g.out).at("runs").at(0).at("text"),
            nlohmann::json::parse(r.out.substr(0, r.out.find('\n'))).at("assistant"));
  // The autoregressive twin chats too.
  const result ar = run("chat --ar --gen-length 8 --json < " + input);
  ASSERT_EQ(ar.status, 0) << ar.err;
  EXPECT_EQ(lines(ar.out), 3) << ar.out;
}

TEST(UnmaskCli, ChatNeedsATemplate) {
  const std::string data = UNMASK_TEST_DATA_DIR;
  const result none = run("chat --model " + data + "/tiny_dream < /dev/null");
  EXPECT_EQ(none.status, 1) << none.err;
  EXPECT_NE(none.err.find("chat needs the model's tokenizer"), std::string::npos) << none.err;
  const result compare = run("chat --compare < /dev/null");
  EXPECT_EQ(compare.status, 2) << compare.err;
  EXPECT_EQ(lines(compare.err), 1) << compare.err;
}

TEST(UnmaskCli, UnusableModelExitsOne) {
  const result r = run(std::string("info --model ") + UNMASK_TEST_DATA_DIR + "/decode");
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("config.json"), std::string::npos) << r.err;
}

TEST(UnmaskCli, DeviceFlag) {
  const result r = run("generate -p 'In the beginning' --device cuda");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--device"), std::string::npos) << r.err;
}

#if defined(UNMASK_CLI_CUDA)
// unmask-cuda: the same program with --device cuda. On the CPU it prints what
// `unmask` prints; on the GPU it decodes there, and without a GPU it says so
// in one line and exits with status 1.
TEST(UnmaskCudaCli, RunsOnTheGpuOrSaysWhyNot) {
  const std::string args = "generate -p 'In the beginning God' --gen-length 32 --block-length 16 --steps 16 --json";
  const result cpu = run(args, UNMASK_CLI), cpu_here = run(args + " --device cpu", UNMASK_CLI_CUDA);
  ASSERT_EQ(cpu.status, 0) << cpu.err;
  ASSERT_EQ(cpu_here.status, 0) << cpu_here.err;
  EXPECT_EQ(nlohmann::json::parse(cpu.out)["runs"][0]["text"], nlohmann::json::parse(cpu_here.out)["runs"][0]["text"]);
  for (const std::string extra : {"", " --visual", " --compare", " --policy threshold --threshold 0.5"}) {
    const result gpu = run(args + " --device cuda" + extra, UNMASK_CLI_CUDA);
    if (gpu.status == 1) {
      EXPECT_NE(gpu.err.find("no usable CUDA device"), std::string::npos) << gpu.err;
      EXPECT_EQ(lines(gpu.err), 1) << gpu.err;
      continue;
    }
    ASSERT_EQ(gpu.status, 0) << extra << ": " << gpu.err;
    if (extra == " --visual") continue;  // not JSON
    const nlohmann::json j = nlohmann::json::parse(gpu.out);
    EXPECT_GT(j["runs"][0]["tokens"].get<int>(), 0) << extra;
    std::printf("  --device cuda%s: %s\n", extra.c_str(), j["runs"][0]["text"].get<std::string>().c_str());
  }
}
#endif

}  // namespace
