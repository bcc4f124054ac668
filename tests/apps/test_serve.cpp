// `unmask serve`: the request checks of openai_api.hpp (every malformed or
// out-of-range field a 4xx naming it, the diffusion extensions' defaults),
// the streamed text's hold-back (stop strings, unfinished UTF-8), the API key
// comparison, and the program end to end over HTTP on loopback: a completion
// is the text `unmask generate` makes of the same prompt and settings, its
// stream (text deltas and canvas events) adds up to the same, errors are
// OpenAI error objects with the right status (400, 401, 404, 413), and
// SIGTERM ends the program with status 0. The official openai client,
// concurrency, disconnects, schemathesis and the page in a browser are
// tests/serve/ (Python, CI stage 6).
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <httplib.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "../../apps/serve/http_service.hpp"
#include "unmask/chat/chat_template.hpp"

namespace {

using nlohmann::json;

const cli::loaded_model& tiny_chat_model() {
  static const cli::loaded_model m = [] {
    const std::string dir = std::string(UNMASK_MODELS_DIR) + "/tiny-llada";
    return cli::load_model(dir, dir + "/tokenizer.json", true);
  }();
  return m;
}

cli::generate_options serve_defaults() {
  cli::generate_options o;
  o.gen_length = 64;
  o.block_length = 32;
  o.temperature = 0.0f;
  return o;
}

serve::parsed_request parse(const json& body, bool chat = false, serve::request_limits limits = {}) {
  return serve::parse_request(body, chat, tiny_chat_model(), serve_defaults(), "tiny-llada", limits);
}

// The api_error a body gets: its status and the field it names.
serve::api_error refusal(const json& body, bool chat = false, serve::request_limits limits = {}) {
  try {
    parse(body, chat, limits);
  } catch (const serve::api_error& e) {
    return e;
  }
  ADD_FAILURE() << "accepted: " << body.dump();
  return serve::api_error(0, "");
}

TEST(ServeRequest, DefaultsAreTheCommandLinesAndTheExtensionsApply) {
  const serve::parsed_request r = parse({{"prompt", "In the beginning"}});
  ASSERT_EQ(r.prompts.size(), 1u);
  EXPECT_EQ(r.prompts[0], tiny_chat_model().tok.tokenizer->encode("In the beginning"));
  EXPECT_EQ(r.settings.layout.gen_length, 64);
  EXPECT_EQ(r.settings.layout.block_length, 32);
  EXPECT_EQ(r.settings.layout.steps, 64);
  EXPECT_FALSE(r.stream);
  EXPECT_FALSE(r.seed_given);

  const serve::parsed_request e = parse({{"prompt", {1, 2, 3}}, {"max_tokens", 48}, {"steps", 12}, {"seed", 7},
                                         {"stream", true}, {"canvas_events", true}, {"n", 2}});
  EXPECT_EQ(e.prompts[0], (std::vector<std::int32_t>{1, 2, 3}));
  EXPECT_EQ(e.settings.layout.gen_length, 48);
  EXPECT_EQ(e.settings.layout.block_length, 48) << "32 does not divide 48: one block";
  EXPECT_EQ(e.settings.layout.steps, 12);
  EXPECT_EQ(e.settings.seed, 7u);
  EXPECT_TRUE(e.seed_given && e.stream && e.canvas_events);
  EXPECT_EQ(e.n, 2);

  const serve::parsed_request several = parse({{"prompt", json::array({"a", json::array({5, 6})})}, {"block_length", 16}});
  ASSERT_EQ(several.prompts.size(), 2u);
  EXPECT_EQ(several.prompts[1], (std::vector<std::int32_t>{5, 6}));
  EXPECT_EQ(several.settings.layout.block_length, 16);
}

TEST(ServeRequest, ChatMessagesAreTheTemplatesRendering) {
  const cli::loaded_model& m = tiny_chat_model();
  ASSERT_TRUE(m.chat.has_value()) << "tiny-llada carries a chat template";
  const json body = {{"messages", {{{"role", "system"}, {"content", "Be brief."}},
                                   {{"role", "user"}, {"content", {{{"type", "text"}, {"text", "Who made "}},
                                                                   {{"type", "text"}, {"text", "the light?"}}}}}}}};
  const serve::parsed_request r = parse(body, true);
  const std::string rendered = cli::render_chat(m, {{"system", "Be brief."}, {"user", "Who made the light?"}});
  EXPECT_EQ(r.prompts.at(0), m.tok.tokenizer->encode(rendered, false));
  for (std::int32_t id : m.end_of_turn)
    EXPECT_NE(std::find(r.settings.stop.token_ids.begin(), r.settings.stop.token_ids.end(), id),
              r.settings.stop.token_ids.end());
}

TEST(ServeRequest, EveryBadFieldIsA4xxNamingIt) {
  struct bad {
    json body;
    int status;
    std::string param;
  };
  const std::vector<bad> cases = {
      {json::array(), 400, ""},
      {json::object(), 400, "prompt"},
      {{{"prompt", 5}}, 400, "prompt"},
      {{{"prompt", json::array()}}, 400, "prompt"},
      {{{"prompt", {1, -2}}}, 400, "prompt"},
      {{{"prompt", {1, 1 << 30}}}, 400, "prompt"},
      {{{"prompt", json::array({"a", 3})}}, 400, "prompt[1]"},
      {{{"prompt", "x"}, {"model", "gpt-4"}}, 404, "model"},
      {{{"prompt", "x"}, {"max_tokens", 0}}, 400, "max_tokens"},
      {{{"prompt", "x"}, {"max_tokens", 1025}}, 400, "max_tokens"},
      {{{"prompt", "x"}, {"max_tokens", 512}}, 400, "max_tokens"},  // past the model's 512 positions with the prompt
      {{{"prompt", "x"}, {"max_tokens", "many"}}, 400, "max_tokens"},
      {{{"prompt", "x"}, {"max_tokens", 2.5}}, 400, "max_tokens"},
      {{{"prompt", "x"}, {"max_tokens", 64}, {"block_length", 24}}, 400, "block_length"},
      {{{"prompt", "x"}, {"max_tokens", 64}, {"block_length", 16}, {"steps", 6}}, 400, "steps"},
      {{{"prompt", "x"}, {"temperature", 3}}, 400, "temperature"},
      {{{"prompt", "x"}, {"temperature", "hot"}}, 400, "temperature"},
      {{{"prompt", "x"}, {"top_p", -0.1}}, 400, "top_p"},
      {{{"prompt", "x"}, {"policy", "best"}}, 400, "policy"},
      {{{"prompt", "x"}, {"threshold", 1.5}}, 400, "threshold"},
      {{{"prompt", "x"}, {"schedule", "cosine-ish"}}, 400, "schedule"},
      {{{"prompt", "x"}, {"cache", "dual"}}, 400, "cache"},
      {{{"prompt", "x"}, {"cfg", -1}}, 400, "cfg"},
      {{{"prompt", "x"}, {"seed", -1}}, 400, "seed"},
      {{{"prompt", "x"}, {"seed", 1e19}}, 400, "seed"},  // beyond int64 as a float: refused, never cast
      {{{"prompt", "x"}, {"seed", 9223372036854775808ull}}, 400, "seed"},
      {{{"prompt", "x"}, {"max_tokens", 1e300}}, 400, "max_tokens"},
      {{{"prompt", "x"}, {"max_tokens", -1e300}}, 400, "max_tokens"},
      {{{"prompt", "x"}, {"response_format", {{"type", 1}}}}, 400, "response_format"},
      {{{"prompt", "x"}, {"n", 0}}, 400, "n"},
      {{{"prompt", "x"}, {"n", 17}}, 400, "n"},
      {{{"prompt", json::array({"a", "b", "c", "d"})}, {"n", 5}}, 400, "n"},
      {{{"prompt", "x"}, {"stream", "yes"}}, 400, "stream"},
      {{{"prompt", "x"}, {"stream_options", {{"include_usage", true}}}}, 400, "stream_options"},
      {{{"prompt", "x"}, {"canvas_events", true}}, 400, "canvas_events"},
      {{{"prompt", "x"}, {"stop", 3}}, 400, "stop"},
      {{{"prompt", "x"}, {"stop", ""}}, 400, "stop"},
      {{{"prompt", "x"}, {"stop", {"a", "b", "c", "d", "e"}}}, 400, "stop"},
      {{{"prompt", "x"}, {"presence_penalty", 0.5}}, 400, "presence_penalty"},
      {{{"prompt", "x"}, {"logit_bias", {{"5", 10}}}}, 400, "logit_bias"},
      {{{"prompt", "x"}, {"logprobs", 3}}, 400, "logprobs"},
      {{{"prompt", "x"}, {"echo", true}}, 400, "echo"},
      {{{"prompt", "x"}, {"best_of", 2}}, 400, "best_of"},
      {{{"prompt", "x"}, {"suffix", "end"}}, 400, "suffix"},
      {{{"prompt", "x"}, {"response_format", {{"type", "json_object"}}}}, 400, "response_format"},
  };
  for (const bad& c : cases) {
    const serve::api_error e = refusal(c.body);
    EXPECT_EQ(e.status, c.status) << c.body.dump() << ": " << e.what();
    EXPECT_EQ(e.param, c.param) << c.body.dump() << ": " << e.what();
    EXPECT_FALSE(std::string(e.what()).empty());
    const json error = serve::error_body(e)["error"];
    EXPECT_TRUE(error["message"].is_string() && error["type"].is_string()) << error.dump();
  }
  // A prompt past the server's limit.
  serve::request_limits small;
  small.max_prompt_tokens = 3;
  EXPECT_EQ(refusal({{"prompt", {1, 2, 3, 4}}}, false, small).code, "context_length_exceeded");
  EXPECT_NO_THROW(parse({{"prompt", {1, 2, 3}}}, false, small));
  // Chat: the messages themselves.
  for (const json& messages : {json(nullptr), json("hi"), json::array(), json::array({{{"role", "user"}}}),
                               json::array({{{"role", "robot"}, {"content", "hi"}}}),
                               json::array({{{"role", "user"}, {"content", {{{"type", "image_url"}}}}}}),
                               json::array({{{"role", "user"}, {"content", {{{"type", nullptr}, {"text", "a"}}}}}})}) {
    const serve::api_error e = refusal({{"messages", messages}}, true);
    EXPECT_EQ(e.status, 400) << messages.dump();
    EXPECT_EQ(e.param.rfind("messages", 0), 0u) << messages.dump() << ": " << e.param;
  }
  // Integral floats are integers; the largest seed is accepted.
  EXPECT_EQ(parse({{"prompt", "x"}, {"max_tokens", 16.0}}).settings.layout.gen_length, 16);
  EXPECT_EQ(parse({{"prompt", "x"}, {"seed", 9223372036854775807ll}}).settings.seed, 9223372036854775807ull);
  // top_p 0 (OpenAI's range includes it) is the most likely token: temperature 0.
  const serve::parsed_request greedy = parse({{"prompt", "x"}, {"top_p", 0}, {"temperature", 1.0}});
  EXPECT_EQ(greedy.settings.sampling.temperature, 0.0f);
  // Neutral values of the unsupported fields are accepted.
  EXPECT_NO_THROW(parse({{"prompt", "x"}, {"presence_penalty", 0}, {"logprobs", nullptr}, {"best_of", 1},
                         {"logit_bias", json::object()}, {"response_format", {{"type", "text"}}}}));
}

// Bytes that are not UTF-8, echoed into an error message, never throw.
TEST(ServeRequest, ErrorsWithInvalidUtf8AreStillJson) {
  const serve::api_error e = refusal({{"prompt", "x"}, {"policy", std::string("\xff\xfe")}});
  const std::string text = serve::dump(serve::error_body(e));
  EXPECT_TRUE(json::accept(text)) << text;
}

TEST(ServeTextStream, HoldsBackWhatAStopStringCouldClaim) {
  const cli::loaded_model& m = tiny_chat_model();
  const auto& tok = *m.tok.tokenizer;
  serve::parsed_request r = parse({{"prompt", "x"}, {"stop", "the end"}});
  const std::vector<std::int32_t> ids = tok.encode(" and it was good, the end of it");
  std::vector<std::int32_t> generated(ids.size() + 4, -1);
  serve::text_stream stream(m, r);
  std::string sent;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    generated[i] = ids[i];
    sent += stream.delta(generated, false);
    // Never anything a stop string might still turn out to begin.
    const std::string full = tok.decode({ids.begin(), ids.begin() + std::ptrdiff_t(i) + 1}, true);
    EXPECT_LE(sent.size(), full.size() > 6 ? full.size() - 6 : 0) << "sent '" << sent << "' of '" << full << "'";
    EXPECT_EQ(full.compare(0, sent.size(), sent), 0) << "not a prefix: '" << sent << "' of '" << full << "'";
  }
  sent += stream.delta(generated, true);
  EXPECT_EQ(sent, " and it was good, ");
  EXPECT_TRUE(stream.stopped_by_string());
  // The completion's tokens are those that begin before the cut (" the" does, "end" does not).
  EXPECT_EQ(stream.tokens(), std::int64_t(tok.encode(" and it was good,").size()) + 1);

  // Uncommitted positions end the visible text: nothing after a gap is sent.
  serve::parsed_request plain = parse({{"prompt", "x"}});
  serve::text_stream gap(m, plain);
  std::vector<std::int32_t> holes = {ids[0], -1, ids[2]};
  EXPECT_EQ(gap.delta(holes, false), tok.decode({ids[0]}, true));
  EXPECT_EQ(gap.tokens(), 1);
}

TEST(ServeTextStream, NeverSplitsAUtf8Character) {
  const std::string euro = "a\xE2\x82\xAC";  // a€
  EXPECT_EQ(serve::text_stream::complete_utf8(euro, 4), 4u);
  EXPECT_EQ(serve::text_stream::complete_utf8(euro, 3), 1u);
  EXPECT_EQ(serve::text_stream::complete_utf8(euro, 2), 1u);
  EXPECT_EQ(serve::text_stream::complete_utf8(euro, 1), 1u);
  const std::string emoji = "\xF0\x9F\x98\x80!";
  EXPECT_EQ(serve::text_stream::complete_utf8(emoji, 3), 0u);
  EXPECT_EQ(serve::text_stream::complete_utf8(emoji, 4), 4u);
  EXPECT_EQ(serve::text_stream::complete_utf8(emoji, 5), 5u);
  EXPECT_EQ(serve::text_stream::complete_utf8("ok\xEF\xBF\xBD", 5), 2u) << "a trailing U+FFFD waits for its token";
}

TEST(ServeApiKey, ComparesWholeKeys) {
  EXPECT_TRUE(serve::same_secret("s3cret", "s3cret"));
  EXPECT_FALSE(serve::same_secret("s3cre", "s3cret"));
  EXPECT_FALSE(serve::same_secret("s3cret!", "s3cret"));
  EXPECT_FALSE(serve::same_secret("S3cret", "s3cret"));
  EXPECT_FALSE(serve::same_secret("", "s3cret"));
  EXPECT_FALSE(serve::same_secret(std::string("s3cret\0", 7), "s3cret"));
}

// --- the program over HTTP -------------------------------------------------

// `unmask serve --port 0 ARGS` started in the background; its first line on
// stdout is the address it listens on.
class server_process {
 public:
  explicit server_process(const std::vector<std::string>& args) {
    int out[2];
    if (pipe(out) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], 1);
      close(out[0]);
      close(out[1]);
      const std::string err = ::testing::TempDir() + "unmask_serve_stderr_" + std::to_string(getpid()) + ".txt";
      const int fd = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) dup2(fd, 2);
      std::vector<std::string> all = {UNMASK_CLI, "serve", "--port", "0"};
      all.insert(all.end(), args.begin(), args.end());
      std::vector<char*> argv;
      for (auto& a : all) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(out[1]);
    // The address line, within 60 s (loading the tiny model takes well under one).
    std::string line;
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < give_up) {
      char c;
      const ssize_t n = read(out[0], &c, 1);
      if (n == 1) line += c;
      else if (n == 0) break;
      else std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    close(out[0]);
    const std::size_t colon = line.rfind(':');
    if (line.rfind("http://127.0.0.1:", 0) == 0 && colon != std::string::npos) port_ = std::atoi(line.c_str() + colon + 1);
  }
  ~server_process() {
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  int port() const { return port_; }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(120, 0);
    return c;
  }
  // SIGTERM, then the exit status (-1: killed or not within 30 s).
  int terminate() {
    kill(pid_, SIGTERM);
    for (int i = 0; i < 3000; ++i) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        reaped_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -1;
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  bool reaped_ = false;
};

std::string generate_text(const std::string& args) {
  const std::string command = std::string(UNMASK_CLI) + " generate -q " + args;
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  std::array<char, 4096> buffer{};
  std::size_t n;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) out.append(buffer.data(), n);
  pclose(pipe);
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// The data lines of a server-sent event stream, with each one's event name.
std::vector<std::pair<std::string, std::string>> events(const std::string& body) {
  std::vector<std::pair<std::string, std::string>> out;
  std::string name;
  std::size_t at = 0;
  while (at < body.size()) {
    std::size_t end = body.find('\n', at);
    if (end == std::string::npos) end = body.size();
    const std::string line = body.substr(at, end - at);
    at = end + 1;
    if (line.rfind("event: ", 0) == 0) name = line.substr(7);
    else if (line.rfind("data: ", 0) == 0) out.push_back({name, line.substr(6)}), name.clear();
  }
  return out;
}

TEST(ServeProgram, ACompletionIsWhatGenerateMakes) {
  server_process server({"--gen-length", "32", "--block-length", "32"});
  ASSERT_GT(server.port(), 0);
  auto c = server.client();
  const auto health = c.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  const json body = {{"prompt", "In the beginning"}, {"max_tokens", 32}, {"steps", 16}, {"seed", 1}};
  const auto res = c.Post("/v1/completions", body.dump(), "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const json r = json::parse(res->body);
  EXPECT_EQ(r["object"], "text_completion");
  EXPECT_EQ(r["model"], "tiny-llada");
  const std::string expected = generate_text("-p 'In the beginning' --gen-length 32 --block-length 32 --steps 16");
  ASSERT_FALSE(expected.empty());
  EXPECT_EQ(r["choices"][0]["text"], expected);
  EXPECT_EQ(r["usage"]["prompt_tokens"], std::int64_t(tiny_chat_model().tok.tokenizer->encode("In the beginning").size()));
  EXPECT_GT(r["usage"]["completion_tokens"].get<int>(), 0);
  EXPECT_EQ(r["usage"]["total_tokens"].get<int>(),
            r["usage"]["prompt_tokens"].get<int>() + r["usage"]["completion_tokens"].get<int>());

  // The same request streamed, with canvas events: its deltas add up to the
  // same text, the canvas events commit every position once, and it ends with [DONE].
  json streamed = body;
  streamed["stream"] = true;
  streamed["canvas_events"] = true;
  const auto s = c.Post("/v1/completions", streamed.dump(), "application/json");
  ASSERT_TRUE(s);
  ASSERT_EQ(s->status, 200) << s->body;
  EXPECT_EQ(s->get_header_value("Content-Type").rfind("text/event-stream", 0), 0u);
  const auto list = events(s->body);
  ASSERT_FALSE(list.empty());
  EXPECT_EQ(list.back().second, "[DONE]");
  std::string text;
  std::set<int> committed;
  int canvas_events = 0, finishes = 0;
  for (std::size_t i = 0; i + 1 < list.size(); ++i) {
    const json e = json::parse(list[i].second);
    if (list[i].first == "canvas") {
      ++canvas_events;
      EXPECT_EQ(e["length"], 32);
      EXPECT_EQ(e["positions"].size(), e["tokens"].size());
      for (const json& p : e["positions"]) EXPECT_TRUE(committed.insert(p.get<int>()).second) << "committed twice: " << p;
      continue;
    }
    ASSERT_EQ(e["object"], "text_completion") << list[i].second;
    text += e["choices"][0]["text"].get<std::string>();
    if (!e["choices"][0]["finish_reason"].is_null()) ++finishes;
  }
  EXPECT_EQ(text, expected);
  EXPECT_EQ(finishes, 1);
  EXPECT_GE(canvas_events, 1);
  EXPECT_LE(canvas_events, 16) << "at most one per step";
  EXPECT_FALSE(committed.empty());
  EXPECT_LT(*committed.rbegin(), 32);

  // Guided (classifier-free guidance, the unconditional copy in the same batch): what generate --cfg makes.
  json guided = body;
  guided["cfg"] = 1.5;
  const auto g = c.Post("/v1/completions", guided.dump(), "application/json");
  ASSERT_TRUE(g);
  ASSERT_EQ(g->status, 200) << g->body;
  EXPECT_EQ(json::parse(g->body)["choices"][0]["text"],
            generate_text("-p 'In the beginning' --gen-length 32 --block-length 32 --steps 16 --cfg 1.5"));

  // Chat, with the template: an assistant message.
  const json chat = {{"messages", {{{"role", "user"}, {"content", "Who made the light?"}}}}, {"max_tokens", 16}};
  const auto cr = c.Post("/v1/chat/completions", chat.dump(), "application/json");
  ASSERT_TRUE(cr);
  ASSERT_EQ(cr->status, 200) << cr->body;
  const json cj = json::parse(cr->body);
  EXPECT_EQ(cj["object"], "chat.completion");
  EXPECT_EQ(cj["choices"][0]["message"]["role"], "assistant");
  EXPECT_TRUE(cj["choices"][0]["message"]["content"].is_string());

  const auto metrics = c.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("unmask_requests_total{path=\"/v1/completions\",status=\"200\"} 3"), std::string::npos)
      << metrics->body;
  EXPECT_NE(metrics->body.find("unmask_running_jobs 0"), std::string::npos) << metrics->body;
  EXPECT_EQ(server.terminate(), 0);
}

TEST(ServeProgram, ErrorsAreOpenAiErrorObjects) {
  server_process server({"--api-key", "k3y", "--max-body-bytes", "2000", "--max-tokens", "64", "--max-queued", "4"});
  ASSERT_GT(server.port(), 0);
  auto c = server.client();
  auto error_of = [](const httplib::Result& r) { return json::parse(r->body).at("error"); };
  const httplib::Headers key = {{"Authorization", "Bearer k3y"}};

  // The key: required on /v1/, compared whole; /health and /metrics stay open.
  auto no_key = c.Get("/v1/models");
  ASSERT_TRUE(no_key);
  EXPECT_EQ(no_key->status, 401);
  EXPECT_EQ(error_of(no_key)["code"], "invalid_api_key");
  auto wrong = c.Get("/v1/models", {{"Authorization", "Bearer k3"}});
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 401);
  auto models = c.Get("/v1/models", key);
  ASSERT_TRUE(models);
  EXPECT_EQ(models->status, 200);
  EXPECT_EQ(json::parse(models->body)["data"][0]["id"], "tiny-llada");
  EXPECT_EQ(c.Get("/health")->status, 200);

  struct bad {
    std::string path, body;
    int status;
    std::string param;
  };
  const std::vector<bad> cases = {
      {"/v1/completions", "{not json", 400, ""},
      {"/v1/completions", R"({"prompt": "x", "max_tokens": 65})", 400, "max_tokens"},
      {"/v1/completions", R"({"prompt": "x", "model": "other"})", 404, "model"},
      {"/v1/chat/completions", R"({"messages": []})", 400, "messages"},
      {"/v1/completions", R"({"prompt": "x", "n": 5})", 400, ""},  // more choices than the queue holds: never admissible
      {"/v1/completions", R"({"prompt": ")" + std::string(3000, 'a') + R"("})", 413, ""},
      {"/v1/nothing", "{}", 404, ""},
  };
  for (const bad& b : cases) {
    const auto r = c.Post(b.path, key, b.body, "application/json");
    ASSERT_TRUE(r) << b.path;
    EXPECT_EQ(r->status, b.status) << b.body.substr(0, 80) << ": " << r->body;
    const json e = error_of(r);
    EXPECT_TRUE(e["message"].is_string()) << r->body;
    EXPECT_EQ(e["param"].is_null() ? std::string() : e["param"].get<std::string>(), b.param) << r->body;
  }
  EXPECT_EQ(c.Get("/v1/models/tiny-llada", key)->status, 200);
  EXPECT_EQ(c.Get("/v1/models/other", key)->status, 404);
  // After all that, the server still serves.
  const auto ok = c.Post("/v1/completions", key, R"({"prompt": "x", "max_tokens": 8})", "application/json");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;
  EXPECT_EQ(server.terminate(), 0);
}

// Bad flags are refused before anything listens.
TEST(ServeProgram, BadFlagsAreRefused) {
  for (const std::string args : {"--port 70000", "--max-running 0", "--shape 3b", "--model /nonexistent",
                                 "--max-tokens 0", "--host not-an-address"}) {
    const std::string command = std::string(UNMASK_CLI) + " serve " + args + " </dev/null >/dev/null 2>&1";
    const int raw = std::system(command.c_str());
    ASSERT_TRUE(WIFEXITED(raw)) << args;
    EXPECT_NE(WEXITSTATUS(raw), 0) << args;
  }
}

}  // namespace
