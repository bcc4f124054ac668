// `unmask serve`: the OpenAI-compatible server (docs/serving.md). Loads the
// model once (its tokenizer and chat template when it has them; --shape 1b
// serves random weights of a real shape instead, prompts as token ids, for
// load tests), starts the decoding loop (serve_engine) and the HTTP service,
// prints the address it listens on as one line on stdout (with --port 0 the
// port the system chose), and serves until SIGTERM or SIGINT: then /health
// says draining, new requests get 503, the ones admitted run to the end
// (at most --drain-timeout seconds, after which they are cancelled), and the
// program exits 0.
#pragma once

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>

#include "cli_model.hpp"

#if defined(UNMASK_HAS_SERVER)
#include "serve/http_service.hpp"
#endif

namespace cli {

struct serve_options {
  std::string model, tokenizer, shape, model_name, host = "127.0.0.1", api_key, isa, compute = "f32", device = "cpu";
  int port = 8000;
  std::int64_t max_running = 16, max_queued = 256, max_canvas_rows = 16384, max_concurrent = 64;
  std::int64_t max_prompt_tokens = 2048, max_body_bytes = 1 << 20;
  int max_tokens = 1024, max_choices = 16;
  double request_timeout = 600.0, drain_timeout = 30.0, io_timeout = 30.0;
  generate_options defaults;  // the request fields' defaults
};

inline std::atomic<int> serve_signal{0};
extern "C" inline void on_serve_signal(int s) { serve_signal.store(s); }

#if defined(UNMASK_HAS_SERVER)
template <class Backend>
int serve_on(const serve_options& o) {
  namespace fs = std::filesystem;
  loaded_model m;
  std::string id = o.model_name;
  if (!o.shape.empty()) {
    const unmask::transformer_config c = o.shape == "8b" ? unmask::transformer_config::llada_8b()
                                                          : unmask::transformer_config::llada_1b_shape();
    std::fprintf(stderr, "unmask serve: building a random-weight model of the %s shape...\n", o.shape.c_str());
    m.dir = "random-" + o.shape;
    m.model = unmask::transformer_model::random(c, 1);
    m.stops.push_back(std::int32_t(c.eos_token_id));
    if (id.empty()) id = m.dir;
  } else {
    const std::string dir = o.model.empty() ? embedded_model("tiny-llada") : o.model;
    const std::string tok = o.tokenizer.empty() ? dir + "/tokenizer.json" : o.tokenizer;
    const unmask::tokenizer_config tc = fs::exists(tok) ? unmask::tokenizer_config::load_dir(dir) : unmask::tokenizer_config{};
    m = load_model(dir, tok, fs::exists(tok) && tc.chat_template.has_value());
    if (id.empty()) id = fs::path(dir).lexically_normal().filename().string();
    if (id.empty()) id = fs::path(dir).lexically_normal().parent_path().filename().string();
  }
  if (m.model.config().attention != unmask::trained_attention::bidirectional)
    throw unmask::argument_error(std::string("serve runs bidirectional masked diffusion models; this one was trained ") +
                                 unmask::to_string(m.model.config().attention) + " (unmask generate runs it)");
  unmask::scheduler_limits limits{o.max_queued, o.max_running, o.max_canvas_rows};
  serve::serve_engine<Backend> engine(m.model, limits, make_backend<Backend>(o.defaults));
  serve::server_options so;
  so.host = o.host;
  so.port = o.port;
  so.api_key = o.api_key;
  if (so.api_key.empty())
    if (const char* env = std::getenv("UNMASK_API_KEY")) so.api_key = env;
  so.model_id = id;
  so.limits = {o.max_prompt_tokens, o.max_tokens, o.max_choices};
  so.max_body_bytes = std::size_t(o.max_body_bytes);
  so.max_concurrent = o.max_concurrent;
  so.request_timeout = o.request_timeout;
  so.io_timeout = o.io_timeout;
  serve::http_service<Backend> service(m, o.defaults, so, engine);
  if (!service.bind())
    throw unmask::file_error("cannot listen on " + o.host + ":" + std::to_string(o.port) +
                             " (in use, or not an address of this machine)");
  // The handlers first: a supervisor may signal as soon as it reads the address.
  struct sigaction action {};
  action.sa_handler = on_serve_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a client gone mid-write is a failed write, not the end of the server
  std::thread listener([&] { service.listen(); });
  // Listening before the address is printed (and before a signal can stop
  // it: cpp-httplib's stop() does nothing to a server not yet running).
  while (!service.listening()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const std::string host = o.host.find(':') != std::string::npos ? "[" + o.host + "]" : o.host;
  std::printf("http://%s:%d\n", host.c_str(), service.port());
  std::fflush(stdout);
  std::fprintf(stderr, "unmask serve: %s on http://%s:%d (%s)%s\n", id.c_str(), host.c_str(), service.port(),
               Backend::name, so.api_key.empty() ? "" : ", API key required on /v1/");

  while (serve_signal.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::fprintf(stderr, "unmask serve: %s: draining (%lld in flight)\n", serve_signal.load() == SIGTERM ? "SIGTERM" : "SIGINT",
               static_cast<long long>(service.in_flight()));
  engine.begin_drain();
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::milliseconds(std::int64_t(o.drain_timeout * 1000));
  while ((service.in_flight() > 0 || !engine.idle()) && std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const bool drained = service.in_flight() == 0 && engine.idle();
  engine.stop();  // cancels what is left, so every handler returns
  service.stop();
  listener.join();
  std::fprintf(stderr, "unmask serve: %s\n", drained ? "drained, exiting" : "drain timeout: cancelled what was left");
  return 0;
}
#endif

}  // namespace cli
