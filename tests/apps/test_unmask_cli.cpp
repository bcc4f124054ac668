// The unmask program end to end: every subcommand and mode on the embedded
// models, machine-readable output, and bad flags or values (one clear line on
// stderr, exit status 2) or unusable files (exit status 1). Chat turns are
// checked against the library's own rendering and encoding of the same
// conversation (the rendering itself is checked against transformers in
// tests/chat).
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <cmath>
#include <array>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "support/test_files.hpp"
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

// stdout carries the generated text alone; the figures go to stderr.
TEST(UnmaskCli, GenerateWithTheEmbeddedModel) {
  const result r = run("generate -p 'In the beginning God' --gen-length 32 --block-length 16 --steps 16");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(lines(r.out), 1) << r.out;
  EXPECT_EQ(r.out.find("tokens/s"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("diffusion"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("tokens/s"), std::string::npos) << r.err;
  const result json = run("generate -p 'In the beginning God' --gen-length 32 --block-length 16 --steps 16 --json");
  ASSERT_EQ(json.status, 0) << json.err;
  EXPECT_EQ(nlohmann::json::parse(json.out)["runs"][0]["text"].get<std::string>() + "\n", r.out);
  const result quiet = run("generate -p 'In the beginning God' --gen-length 32 --block-length 16 --steps 16 -q");
  EXPECT_EQ(quiet.out, r.out);
  EXPECT_EQ(quiet.err, "");
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


// ---- The JSON schema of docs/cli-schema.json (a subset of JSON Schema).

struct schema_checker {
  nlohmann::json root;
  std::vector<std::string> errors;

  static bool has_type(const nlohmann::json& v, const std::string& t) {
    if (t == "object") return v.is_object();
    if (t == "array") return v.is_array();
    if (t == "string") return v.is_string();
    if (t == "integer") return v.is_number_integer();
    if (t == "number") return v.is_number();
    if (t == "boolean") return v.is_boolean();
    if (t == "null") return v.is_null();
    return false;
  }

  void check(const nlohmann::json& v, const nlohmann::json& s, const std::string& path) {
    if (s.contains("$ref")) {
      const std::string ref = s["$ref"];
      return check(v, root["$defs"][ref.substr(std::string("#/$defs/").size())], path);
    }
    if (s.contains("type")) {
      bool ok = false;
      if (s["type"].is_string()) ok = has_type(v, s["type"]);
      else
        for (const auto& t : s["type"]) ok = ok || has_type(v, t);
      if (!ok) return errors.push_back(path + ": " + v.dump().substr(0, 80) + " is not of type " + s["type"].dump());
    }
    if (s.contains("enum") && std::find(s["enum"].begin(), s["enum"].end(), v) == s["enum"].end())
      errors.push_back(path + ": " + v.dump() + " is not one of " + s["enum"].dump());
    if (v.is_object()) {
      for (const auto& key : s.value("required", nlohmann::json::array()))
        if (!v.contains(key.get<std::string>())) errors.push_back(path + ": no '" + key.get<std::string>() + "'");
      const nlohmann::json props = s.value("properties", nlohmann::json::object());
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (props.contains(it.key())) check(*it, props[it.key()], path + "." + it.key());
        else if (s.contains("additionalProperties") && !s["additionalProperties"].get<bool>())
          errors.push_back(path + ": unexpected key '" + it.key() + "'");
      }
    }
    if (v.is_array() && s.contains("items"))
      for (std::size_t i = 0; i < v.size(); ++i) check(v[i], s["items"], path + "[" + std::to_string(i) + "]");
  }
};

void expect_valid(const nlohmann::json& v, const std::string& def) {
  std::ifstream in(std::string(UNMASK_SOURCE_DIR) + "/docs/cli-schema.json");
  schema_checker c{nlohmann::json::parse(in), {}};
  c.check(v, c.root["$defs"][def], def);
  EXPECT_TRUE(c.errors.empty()) << def << ":\n" << [&] {
    std::string all;
    for (const auto& e : c.errors) all += "  " + e + "\n";
    return all;
  }();
}

std::vector<nlohmann::json> json_lines(const std::string& out) {
  std::vector<nlohmann::json> v;
  std::size_t at = 0;
  for (std::size_t end; (end = out.find('\n', at)) != std::string::npos; at = end + 1) v.push_back(nlohmann::json::parse(out.substr(at, end - at)));
  return v;
}

std::string temp_file(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + "unmask_" + std::to_string(getpid()) + "_" + name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

const std::string small = " --gen-length 16 --block-length 16 --steps 16";

TEST(UnmaskCli, EveryJsonOutputMatchesTheSchema) {
  const std::string data = UNMASK_TEST_DATA_DIR;
  // With --visual the live view goes to stderr: stdout stays one JSON document.
  for (const std::string& args : std::vector<std::string>{"generate -p 'In the beginning'" + small + " --json --visual",
                                 "generate -p 'And God said'" + small + " --compare --json",
                                 "generate --model " + data + "/tiny_sdar --prompt-ids 5,17,42 --gen-length 8 --json",
                                 "generate -p 'In the beginning' --gen-length 8 --ar --json"}) {
    const result r = run(args);
    ASSERT_EQ(r.status, 0) << args << ": " << r.err;
    const nlohmann::json j = nlohmann::json::parse(r.out);
    expect_valid(j, "generate");
    for (const auto& run : j["runs"]) {
      EXPECT_EQ(run["text"], run["sequences"][0]["text"]) << args;
      EXPECT_GT(run["sequences"][0]["generated_ids"].size() + (run["sequences"][0]["stop_id"].is_null() ? 0 : 1), 0u);
    }
  }
  EXPECT_NE(run("generate -p 'In the beginning'" + small + " --json --visual").err.find("step"), std::string::npos);
  const result line = run("generate -p 'In the beginning'" + small + " --jsonl");
  ASSERT_EQ(line.status, 0) << line.err;
  ASSERT_EQ(json_lines(line.out).size(), 1u) << line.out;
  expect_valid(json_lines(line.out)[0], "generate_line");
  for (const std::string& model : std::vector<std::string>{"", " --model " + data + "/tiny_sdar", " --model " + data + "/tiny_dream"}) {
    const result info = run("info --json" + model);
    ASSERT_EQ(info.status, 0) << info.err;
    const nlohmann::json j = nlohmann::json::parse(info.out);
    expect_valid(j, "info");
    EXPECT_TRUE(j["diffusion"].get<bool>()) << model;
    EXPECT_EQ(j["chat_template"].get<bool>(), model.empty()) << model;
  }
  const result chat = run("chat" + small + " --json < " + temp_file("turns.txt", "In the beginning\nAnd God said\n"));
  ASSERT_EQ(chat.status, 0) << chat.err;
  for (const auto& turn : json_lines(chat.out)) expect_valid(turn, "chat_turn");
}

TEST(UnmaskCli, ProgressOnlyOnATerminalOrWhenAsked) {
  const result plain = run("generate -p 'In the beginning' --gen-length 32 --block-length 16 --steps 16");
  EXPECT_EQ(plain.err.find("step"), std::string::npos) << plain.err;  // stderr is a file here
  const result progress = run("generate -p 'In the beginning' --gen-length 32 --block-length 16 --steps 16 --progress");
  ASSERT_EQ(progress.status, 0) << progress.err;
  EXPECT_NE(progress.err.find("block 1/2, step 1/8, "), std::string::npos) << progress.err;
  EXPECT_NE(progress.err.find("block 2/2, step 8/8, 32/32 tokens"), std::string::npos) << progress.err;
  EXPECT_NE(progress.err.find("tokens/s"), std::string::npos) << progress.err;
  EXPECT_NE(progress.err.find("s left"), std::string::npos) << progress.err;
  const result ar = run("generate -p 'In the beginning' --gen-length 8 --ar --progress --no-eos-stop");
  EXPECT_NE(ar.err.find("token 8/8"), std::string::npos) << ar.err;
}

TEST(UnmaskCli, PromptFromStdinOrAFile) {
  const std::string text = "In the beginning God created";
  const std::string file = temp_file("prompt.txt", text + "\n");
  const result direct = run("generate -p '" + text + "'" + small + " --json");
  ASSERT_EQ(direct.status, 0) << direct.err;
  const nlohmann::json want = nlohmann::json::parse(direct.out)["runs"][0];
  for (const std::string& args : std::vector<std::string>{"generate -p -" + small + " --json < " + file, "generate -f " + file + small + " --json"}) {
    const result r = run(args);
    ASSERT_EQ(r.status, 0) << args << ": " << r.err;
    const nlohmann::json j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["prompt"], text) << args;
    EXPECT_EQ(j["runs"][0]["sequences"], want["sequences"]) << args;
  }
  const result missing = run("generate -f /nonexistent/prompt.txt");
  EXPECT_EQ(missing.status, 1) << missing.err;
  EXPECT_NE(missing.err.find("-f: cannot open '/nonexistent/prompt.txt'"), std::string::npos) << missing.err;
  EXPECT_EQ(run("generate -p x -f " + file).status, 2);
}

TEST(UnmaskCli, BatchFileDecodesEveryLineInOrder) {
  const std::string file = temp_file("batch.jsonl",
                                     "In the beginning\n"
                                     "\n"
                                     "{\"prompt\": \"And God said\", \"id\": \"b\", \"gen_length\": 8, \"block_length\": 8, \"steps\": 8}\n"
                                     "{\"prompt_ids\": [71, 573, 78]}\n"
                                     "The LORD is my shepherd\n");
  const result r = run("generate --batch " + file + small);
  ASSERT_EQ(r.status, 0) << r.err;
  const std::vector<nlohmann::json> out = json_lines(r.out);
  ASSERT_EQ(out.size(), 4u) << r.out;
  for (std::size_t i = 0; i < out.size(); ++i) {
    expect_valid(out[i], "batch_line");
    EXPECT_EQ(out[i]["index"], i);
  }
  EXPECT_EQ(out[1]["id"], "b");
  EXPECT_EQ(out[1]["settings"], nlohmann::json({{"gen_length", 8}, {"block_length", 8}, {"steps", 8}}));
  EXPECT_EQ(out[2]["prompt_ids"], nlohmann::json({71, 573, 78}));
  // Each line decodes as it would alone (greedy decoding; the batch is not a different computation).
  const auto alone = [](const std::string& args) {
    const result a = run(args + " --json");
    EXPECT_EQ(a.status, 0) << a.err;
    return nlohmann::json::parse(a.out)["runs"][0]["sequences"][0];
  };
  EXPECT_EQ(out[0]["generated_ids"], alone("generate -p 'In the beginning'" + small)["generated_ids"]);
  EXPECT_EQ(out[1]["generated_ids"],
            alone("generate -p 'And God said' --gen-length 8 --block-length 8 --steps 8")["generated_ids"]);
  EXPECT_EQ(out[3]["generated_ids"], alone("generate -p 'The LORD is my shepherd'" + small)["generated_ids"]);
  for (const auto& [bad, what] : std::vector<std::pair<std::string, std::string>>{
           {"{\"prompt\": \"x\", \"temprature\": 1}\n", "line 1: unknown key 'temprature'"},
           {"x\n{\"prompt\": \n", "line 2: not valid JSON"},
           {"{\"prompt\": 5}\n", "line 1: a value has the wrong type"},
           {"{\"id\": 5}\n", "line 1: no \"prompt\" or \"prompt_ids\""},
           {"{\"prompt\": \"x\", \"gen_length\": 0}\n", "line 1: \"gen_length\" must be an integer in [1, 1048576]"},
           {"\n\n", "no prompts"}}) {
    const result b = run("generate --batch " + temp_file("bad.jsonl", bad));
    EXPECT_EQ(b.status, 2) << bad << ": " << b.err;
    EXPECT_NE(b.err.find(what), std::string::npos) << bad << ": " << b.err;
    EXPECT_EQ(lines(b.err), 1) << b.err;
  }
}

// The first SIGINT finishes the step in flight and prints what was committed.
TEST(UnmaskCli, InterruptPrintsWhatWasCommitted) {
  int out_pipe[2], err_pipe[2];
  ASSERT_EQ(pipe(out_pipe), 0);
  ASSERT_EQ(pipe(err_pipe), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    close(out_pipe[0]), close(err_pipe[0]);
    execl(UNMASK_CLI, UNMASK_CLI, "generate", "-p", "In the beginning", "--gen-length", "256", "--block-length", "256",
          "--steps", "256", "--progress", "--json", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out_pipe[1]), close(err_pipe[1]);
  std::string err;
  std::array<char, 1024> buffer{};
  while (err.find("step 3/") == std::string::npos) {  // a few steps in: the run is under way
    const ssize_t n = read(err_pipe[0], buffer.data(), buffer.size());
    if (n <= 0) break;
    err.append(buffer.data(), std::size_t(n));
  }
  kill(pid, SIGINT);
  std::string out;
  for (ssize_t n; (n = read(out_pipe[0], buffer.data(), buffer.size())) > 0;) out.append(buffer.data(), std::size_t(n));
  for (ssize_t n; (n = read(err_pipe[0], buffer.data(), buffer.size())) > 0;) err.append(buffer.data(), std::size_t(n));
  int status = 0;
  waitpid(pid, &status, 0);
  close(out_pipe[0]), close(err_pipe[0]);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 130) << err;
  const nlohmann::json j = nlohmann::json::parse(out);
  expect_valid(j, "generate");
  const nlohmann::json& run0 = j["runs"][0];
  EXPECT_EQ(run0["finish_reason"], "interrupted");
  EXPECT_GE(run0["tokens"].get<int>(), 3);
  EXPECT_LT(run0["tokens"].get<int>(), 256);
  EXPECT_NE(run0["text"].get<std::string>().find("\u2591"), std::string::npos);  // the masks left, shown
  EXPECT_EQ(run0["sequences"][0]["generated_ids"].size(), 256u);
}

TEST(UnmaskCli, HelpShowsDefaultsAndMistakesGetSuggestions) {
  const result help = run("generate --help");
  EXPECT_EQ(help.status, 0);
  for (const char* d : {"--gen-length", "=128", "=low-confidence", "=0.9"})
    EXPECT_NE(help.out.find(d), std::string::npos) << d;
  for (const auto& [args, what] : std::vector<std::pair<std::string, std::string>>{
           {"generate -p x --gen-lenght 8", "unknown flag --gen-lenght (did you mean --gen-length?)"},
           {"generate -p x --policy thresold", "'thresold' is not one of"},
           {"generate -p x --policy thresold", "(did you mean 'threshold'?)"},
           {"chat --cache prefx", "(did you mean 'prefix'?)"},
           {"generate -p x --gen-length 30 --block-length 8", "--gen-length 30 is not a multiple of --block-length 8"},
           {"generate -p x --gen-length 600 --block-length 600 --steps 600", "the model's max_sequence_length is 512"},
           {"generate -p x --json --jsonl", "--json and --jsonl cannot be combined"}}) {
    const result r = run(args);
    EXPECT_EQ(r.status, 2) << args << ": " << r.err;
    EXPECT_NE(r.err.find(what), std::string::npos) << args << ": " << r.err;
    EXPECT_EQ(lines(r.err), 1) << args << ": " << r.err;
  }
}

// unmask score: the library's estimate (tests/decode/test_likelihood.cpp
// checks it against the PyTorch reference), keyed by line.
TEST(UnmaskCli, ScoreWritesALineOfLikelihoodPerInputLine) {
  std::ifstream in(std::string(UNMASK_TEST_DATA_DIR) + "/likelihood/goldens.json");
  const nlohmann::json goldens = nlohmann::json::parse(in);
  const nlohmann::json& creation = goldens["monte_carlo"][0];  // id 0: the first line's key
  ASSERT_EQ(creation["id"], 0);
  const std::string input = temp_file("score.jsonl", nlohmann::json{{"prompt_ids", creation["prompt"]},
                                                                     {"continuation_ids", creation["answer"]},
                                                                     {"id", "c"}}.dump() + "\n");
  const result r = run("score -f " + input + " --samples " + creation["mc_num"].dump() + " --batch-size " +
                       creation["batch"].dump() + " --seed " + creation["seed"].dump());
  ASSERT_EQ(r.status, 0) << r.err;
  const std::vector<nlohmann::json> out = json_lines(r.out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]["id"], "c");
  EXPECT_EQ(out[0]["samples"], creation["mc_num"]);
  EXPECT_NEAR(out[0]["log_likelihood"].get<double>(), creation["log_likelihood"].get<double>(),
              1e-4 * std::abs(creation["log_likelihood"].get<double>()));
  // Multiple choice from text: the tiny model answers 4 of the 5 committed questions.
  const result mc = run("score --samples 32 --batch-size 8 < " + std::string(UNMASK_TEST_DATA_DIR) +
                        "/likelihood/multiple_choice.jsonl");
  ASSERT_EQ(mc.status, 0) << mc.err;
  int correct = 0;
  const std::vector<nlohmann::json> lines_out = json_lines(mc.out);
  ASSERT_EQ(lines_out.size(), 5u);
  for (std::size_t i = 0; i < lines_out.size(); ++i) {
    EXPECT_EQ(lines_out[i]["index"], i);
    EXPECT_EQ(lines_out[i]["choices"].size(), 3u);
    correct += lines_out[i]["correct"].get<bool>();
  }
  EXPECT_EQ(correct, 4);
  for (const auto& [bad, what] : std::vector<std::pair<std::string, std::string>>{
           {"{\"prompt\": \"x\", \"continuation\": \"\"}\n", "line 1: "},
           {"{\"prompt\": \"x\", \"continuaton\": \"y\"}\n", "line 1: unknown key 'continuaton'"},
           {"{\"prompt\": \"x\"}\n", "no \"continuation\""},
           {"[1]\n", "not a JSON object"}}) {
    const result b = run("score -f " + temp_file("bad_score.jsonl", bad) + " --samples 4 --batch-size 4");
    EXPECT_EQ(b.status, 2) << bad << ": " << b.err;
    EXPECT_NE(b.err.find(what), std::string::npos) << bad << ": " << b.err;
  }
  const result batch = run("score --samples 10 --batch-size 4 < /dev/null");
  EXPECT_EQ(batch.status, 2) << batch.err;
  EXPECT_NE(batch.err.find("--samples 10 is not a multiple of --batch-size 4"), std::string::npos) << batch.err;
}

// --trace FILE: a header line, then one line per model call whose commits tile the generated positions.
TEST(UnmaskCli, TraceRecordsEveryCommit) {
  const std::string path = ::testing::TempDir() + "unmask_trace_" + std::to_string(getpid()) + ".jsonl";
  for (const std::string& flags : std::vector<std::string>{" --policy threshold --threshold 0.2", " --ar --no-eos-stop"}) {
    const result r = run("generate -p 'In the beginning' --gen-length 32 --block-length 16 --steps 16 --json --trace " +
                         path + flags);
    ASSERT_EQ(r.status, 0) << r.err;
    const nlohmann::json run0 = nlohmann::json::parse(r.out)["runs"][0];
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    const std::vector<nlohmann::json> lines_in = json_lines(text.str());
    ASSERT_GE(lines_in.size(), 2u);
    EXPECT_EQ(lines_in[0]["trace"], "unmask-decode") << flags;
    EXPECT_EQ(lines_in.size() - 1, run0["forwards"].get<std::size_t>()) << flags;
    std::vector<int> seen(32, 0);
    const int prompt = lines_in[0]["prompt_length"];
    for (std::size_t i = 1; i < lines_in.size(); ++i)
      for (const auto& p : lines_in[i]["positions"]) ++seen.at(std::size_t(p.get<int>() - prompt));
    EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), 32) << flags;
  }
  const result bad = run("generate -p x --gen-length 8 --block-length 8 --steps 8 --trace /nonexistent/dir/t.jsonl");
  EXPECT_EQ(bad.status, 1) << bad.err;
  EXPECT_NE(bad.err.find("/nonexistent/dir/t.jsonl"), std::string::npos) << bad.err;
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

namespace hostile {

// One line on stderr beginning "unmask: " that contains `fragment`, and the status.
void expect_refusal(const result& r, int status, const std::string& fragment, const std::string& what) {
  EXPECT_EQ(r.status, status) << what << ": " << r.err;
  EXPECT_EQ(lines(r.err), 1) << what << ": " << r.err;
  EXPECT_EQ(r.err.rfind("unmask: ", 0), 0u) << what << ": " << r.err;
  EXPECT_NE(r.err.find(fragment), std::string::npos) << what << ": " << r.err;
  EXPECT_EQ(r.out, "") << what;
}

TEST(UnmaskCliHostileInput, NonFiniteAndOutOfRangeFlagsExitTwo) {
  for (const auto& [args, fragment] : std::vector<std::pair<std::string, std::string>>{
           {"--policy threshold --threshold nan", "not a finite number"},
           {"--threshold inf", "not a finite number"},
           {"--temperature nan", "not a finite number"},
           {"--top-p=nan", "not a finite number"},
           {"--cfg 1e999", "not a finite number"},
           {"--seed 18446744073709551616", "larger than 2^64 - 1"},
           {"--seed 99999999999999999999999", "larger than 2^64 - 1"},
           {"--seed -1", "not a non-negative integer"}}) {
    expect_refusal(run("generate -p x " + args + small), 2, fragment, args);
  }
  EXPECT_EQ(run("generate -p x --seed 18446744073709551615" + small).status, 0);
}

TEST(UnmaskCliHostileInput, BatchValuesAreCheckedNotTruncated) {
  for (const auto& [line, fragment] : std::vector<std::pair<std::string, std::string>>{
           {R"({"prompt": "x", "seed": -1})", "\"seed\" must be an integer"},
           {R"({"prompt": "x", "seed": 1.5})", "\"seed\" must be an integer"},
           {R"({"prompt": "x", "gen_length": 4294967312})", "\"gen_length\" must be an integer in [1, 1048576]"},
           {R"({"prompt": "x", "steps": 2.5})", "\"steps\" must be an integer"},
           {R"({"prompt": "x", "temperature": 1e300})", "\"temperature\" must be a number in"},
           {R"({"prompt_ids": [5, 4294967301]})", "prompt_ids\" entry must be an integer"},
           {"{\"prompt\": " + std::string(5000, '[') + "}", "nested deeper than 64"}}) {
    const std::string file = temp_file("hostile_batch.jsonl", line + "\n");
    expect_refusal(run("generate --batch " + file + small), 2, fragment, line.substr(0, 80));
  }
}

TEST(UnmaskCliHostileInput, UnusableFilesExitOneWithoutHangingOrGarbage) {
  unmask::test::scratch_dir fifo_model;
  ASSERT_EQ(::mkfifo(fifo_model.file("config.json").c_str(), 0600), 0);
  // `timeout` turns a hang into status 124, which fails the expectation.
  expect_refusal(run("info --model " + fifo_model.str(), "timeout 20 " + std::string(UNMASK_CLI)), 1,
                 "config.json' is not a regular file", "a FIFO config.json");
  expect_refusal(run("generate -f /dev/zero" + small), 1, "holds more than the limit", "-f /dev/zero");
  // Another model's tokenizer (vocabulary 4096 against the checkpoint's 100).
  expect_refusal(run("generate -p x --model " + std::string(UNMASK_TEST_DATA_DIR) + "/tiny_llada_mha --tokenizer " +
                     UNMASK_SOURCE_DIR + "/models/tiny-llada/tokenizer.json" + small),
                 1, "beyond the vocabulary of 100", "a mismatched tokenizer");
  // A NaN weight: the error names the tensor, and is a model error (1), not a flag error (2).
  unmask::test::scratch_dir nan_model;
  const std::string tiny = std::string(UNMASK_SOURCE_DIR) + "/models/tiny-llada";
  unmask::test::copy_checkpoint(tiny, nan_model.str(), [](std::vector<unmask::test::tensor_spec>& specs, nlohmann::json&) {
    for (auto& s : specs)
      if (s.name == "model.transformer.blocks.2.ff_out.weight") s.bytes[0] = '\xc0', s.bytes[1] = '\x7f';
  });
  std::filesystem::copy_file(tiny + "/tokenizer.json", nan_model.file("tokenizer.json"));
  expect_refusal(run("generate -p x --model " + nan_model.str() + small), 1,
                 "tensor 'model.transformer.blocks.2.ff_out.weight' holds a NaN", "a NaN weight");
  // A configuration that narrows to garbage in fp32.
  unmask::test::scratch_dir theta;
  unmask::test::copy_checkpoint(tiny, theta.str(), [](std::vector<unmask::test::tensor_spec>&, nlohmann::json& c) {
    c["rope_theta"] = 1e-300;
  });
  expect_refusal(run("info --model " + theta.str()), 1, "'rope_theta' = 1e-300", "rope_theta 1e-300");
}

}  // namespace hostile
