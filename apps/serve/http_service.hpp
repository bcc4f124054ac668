// apps/serve/http_service.hpp
//
// The HTTP side of `unmask serve` on cpp-httplib: routes, the API key, the
// limits, streaming, and the figures of /metrics (docs/serving.md).
//   GET  /                      the canvas page (apps/serve/page.html)
//   GET  /openapi.json          the API's description (docs/openapi.json)
//   GET  /health                200 {"status": "ok"}, 503 while draining
//   GET  /metrics               Prometheus text
//   GET  /v1/models[/{id}]      the one model served
//   POST /v1/completions, /v1/chat/completions
// Each generation request becomes jobs of the serve_engine; its handler waits
// for them (the whole response) or streams them (server-sent events, one
// chunk per choice per step that added text, and `event: canvas` events when
// asked for). A client that goes away cancels its jobs: a stream sees it when
// the socket is no longer writable, a plain request by watching its
// connection (the peer closing it) while it waits. A request past
// --request-timeout is cancelled and answered 504 (or an error event).
// Nothing about a request can crash the server: bodies, fields and sizes are
// checked first (openai_api.hpp), and a failure of the model fails only the
// jobs of that step, with a 500.
#pragma once

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "openai_api.hpp"
#include "serve_embedded_files.hpp"
#include "serve_engine.hpp"

namespace serve {

struct server_options {
  std::string host = "127.0.0.1";
  int port = 8000;  // 0: any free port
  std::string api_key;  // empty: none
  std::string model_id;
  request_limits limits;
  std::size_t max_body_bytes = std::size_t(1) << 20;
  std::int64_t max_concurrent = 64;  // generation requests in flight (HTTP); the scheduler's queue bounds the jobs
  double request_timeout = 600.0;    // seconds from arrival to the last token
  double io_timeout = 30.0;          // seconds a read or write of the connection may block
};

// Equal without a timing that depends on where they first differ (the key's
// length is not secret: the loop runs over the longer of the two).
inline bool same_secret(const std::string& given, const std::string& key) {
  const std::size_t n = std::max(given.size(), key.size());
  unsigned diff = given.size() == key.size() ? 0u : 1u;
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned a = i < given.size() ? static_cast<unsigned char>(given[i]) : 0u;
    const unsigned b = i < key.size() ? static_cast<unsigned char>(key[i]) : 0u;
    diff |= a ^ b;
  }
  return diff == 0;
}

// One end of a TCP connection: address (text) and port.
struct socket_end {
  std::string address;
  int port = -1;
};

inline socket_end end_of(const sockaddr_storage& a) {
  char text[INET6_ADDRSTRLEN] = {};
  if (a.ss_family == AF_INET) {
    const auto* p = reinterpret_cast<const sockaddr_in*>(&a);
    inet_ntop(AF_INET, &p->sin_addr, text, sizeof(text));
    return {text, ntohs(p->sin_port)};
  }
  if (a.ss_family == AF_INET6) {
    const auto* p = reinterpret_cast<const sockaddr_in6*>(&a);
    inet_ntop(AF_INET6, &p->sin6_addr, text, sizeof(text));
    return {text, ntohs(p->sin6_port)};
  }
  return {};
}

// Calls visit(fd, local, peer) for every connected TCP socket of this
// process until it returns true; that descriptor, or -1.
template <class Visit>
int find_connected_socket(Visit visit) {
  DIR* dir = opendir("/proc/self/fd");
  if (!dir) return -1;
  int found = -1;
  while (dirent* entry = readdir(dir)) {
    const int fd = std::atoi(entry->d_name);
    if (fd <= 2) continue;
    sockaddr_storage local{}, peer{};
    socklen_t local_size = sizeof(local), peer_size = sizeof(peer);
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_size) != 0) continue;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_size) != 0) continue;
    const socket_end l = end_of(local), r = end_of(peer);
    if (l.port < 0 || r.port < 0) continue;
    if (visit(fd, l, r)) {
      found = fd;
      break;
    }
  }
  closedir(dir);
  return found;
}

// The socket of this process connected to (address, port) on local_port, or
// -1: cpp-httplib does not hand a handler its connection, so a waiting
// handler finds it to watch for the client going away. Only the handler's
// own thread closes it, after the handler returns, so the descriptor stays
// valid while it is watched.
inline int client_socket(const std::string& address, int port, int local_port) {
  const std::string unscoped = address.substr(0, address.find('%'));  // fe80::1%eth0: inet_ntop has no scope
  return find_connected_socket([&](int, const socket_end& local, const socket_end& peer) {
    return peer.port == port && local.port == local_port && peer.address == unscoped;
  });
}

// Whether the client of a connection is still there: it has not closed its
// side (a read would see end of file) and the connection has no error.
inline bool client_present(int fd) {
  if (fd < 0) return true;
  char byte;
  const ssize_t n = recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n > 0) return true;  // a pipelined request waiting: still there
  if (n == 0) return false;
  return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

// Shuts down (both directions) every connected socket of this process on
// local_port: the server's connections.
inline void shut_connections(int local_port) {
  find_connected_socket([&](int fd, const socket_end& local, const socket_end&) {
    if (local.port == local_port) shutdown(fd, SHUT_RDWR);
    return false;
  });
}

template <class Backend>
class http_service {
 public:
  http_service(const cli::loaded_model& model, const cli::generate_options& defaults, server_options options,
               serve_engine<Backend>& engine)
      : m_(model), defaults_(defaults), options_(std::move(options)), engine_(engine),
        seeds_(std::random_device{}()), started_(std::time(nullptr)) {
    // Every request in flight holds a thread, and so does an idle keep-alive
    // connection (up to 5 s): twice the limit and some, so that requests past
    // it reach their handler and get 429, and /health and /metrics answer.
    const std::size_t threads = 2 * std::size_t(options_.max_concurrent) + 16;
    server_.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    server_.set_payload_max_length(options_.max_body_bytes);
    const auto io = std::chrono::milliseconds(std::int64_t(options_.io_timeout * 1000.0));
    server_.set_read_timeout(io);
    server_.set_write_timeout(io);
    server_.set_keep_alive_timeout(5);
    server_.set_tcp_nodelay(true);
    for (const auto& l : m_.model.weights().layers)
      for (const unmask::tensor_ref* t : {&l.q_proj, &l.k_proj, &l.v_proj, &l.o_proj, &l.gate_proj, &l.up_proj, &l.down_proj})
        layer_gemm_params_ += double(t->shape.numel());
    routes();
  }

  // Binds the address (port 0: any free one); false when it cannot.
  bool bind() {
    if (options_.port == 0) {
      port_ = server_.bind_to_any_port(options_.host);
      return port_ > 0;
    }
    port_ = options_.port;
    return server_.bind_to_port(options_.host, options_.port);
  }
  int port() const { return port_; }
  void listen() { server_.listen_after_bind(); }
  // Stops listening and ends every connection: the idle keep-alive ones,
  // which cpp-httplib would otherwise wait out (5 s) before stop() returns,
  // are shut down, so their threads see end of file at once.
  void stop() {
    server_.stop();
    shut_connections(port_);
  }
  bool listening() const { return server_.is_running(); }
  std::int64_t in_flight() const { return in_flight_.load(); }

  std::string metrics_text() const;

 private:
  using Request = httplib::Request;
  using Response = httplib::Response;

  // Everything a generation request's handler (and its stream) holds.
  struct request_state {
    std::shared_ptr<parsed_request> parsed;
    std::vector<std::shared_ptr<channel>> channels;
    std::vector<text_stream> texts;
    std::vector<std::int64_t> seen_steps;
    std::vector<bool> finished;
    clock_type::time_point arrived, deadline, last_write;
    std::string id, object;
    std::time_t created = 0;
    bool role_sent = false, timed_out = false, cancelled = false, closed = false;
    std::shared_ptr<void> ticket;  // holds a place among max_concurrent until the response is gone
  };

  void routes() {
    server_.set_pre_routing_handler([this](const Request& req, Response& res) {
      if (options_.api_key.empty() || req.path.rfind("/v1/", 0) != 0) return httplib::Server::HandlerResponse::Unhandled;
      const std::string auth = req.get_header_value("Authorization");
      const std::string bearer = "Bearer ";
      const bool ok = auth.size() > bearer.size() && auth.compare(0, bearer.size(), bearer) == 0 &&
                      same_secret(auth.substr(bearer.size()), options_.api_key);
      if (ok) return httplib::Server::HandlerResponse::Unhandled;
      send(res, api_error(401, "a valid API key is required: send 'Authorization: Bearer KEY'",
                          "invalid_request_error", "", "invalid_api_key"));
      return httplib::Server::HandlerResponse::Handled;
    });
    server_.set_error_handler([](const Request& req, Response& res) {
      if (!res.body.empty()) return;
      if (res.status == 413)
        send(res, api_error(413, "the request body is larger than this server's limit", "invalid_request_error", "",
                            "request_too_large"));
      else if (res.status == 404)
        send(res, api_error(404, "no such endpoint: " + req.method + " " + req.path, "invalid_request_error", "",
                            "not_found"));
      else
        send(res, api_error(res.status, "the request cannot be handled (HTTP " + std::to_string(res.status) + ")"));
    });
    server_.set_exception_handler([](const Request&, Response& res, std::exception_ptr ep) {
      std::string what = "unknown error";
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      send(res, api_error(500, "internal error: " + what, "server_error"));
    });
    server_.set_logger([this](const Request& req, const Response& res) { count(req, res); });

    server_.Get("/", [](const Request&, Response& res) { res.set_content(embedded::page_html, "text/html; charset=utf-8"); });
    server_.Get("/openapi.json", [](const Request&, Response& res) { res.set_content(embedded::openapi_json, "application/json"); });
    server_.Get("/health", [this](const Request&, Response& res) {
      const bool draining = engine_.draining();
      res.status = draining ? 503 : 200;
      res.set_content(dump(json{{"status", draining ? "draining" : "ok"}}), "application/json");
    });
    server_.Get("/metrics", [this](const Request&, Response& res) {
      res.set_content(metrics_text(), "text/plain; version=0.0.4; charset=utf-8");
    });
    server_.Get("/v1/models", [this](const Request&, Response& res) {
      res.set_content(dump(json{{"object", "list"}, {"data", json::array({model_card()})}}), "application/json");
    });
    server_.Get(R"(/v1/models/(.+))", [this](const Request& req, Response& res) {
      if (req.matches[1] != options_.model_id)
        return send(res, api_error(404, "the model '" + std::string(req.matches[1]) + "' does not exist",
                                   "invalid_request_error", "model", "model_not_found"));
      res.set_content(dump(model_card()), "application/json");
    });
    server_.Post("/v1/completions", [this](const Request& req, Response& res) { generate(req, res, false); });
    server_.Post("/v1/chat/completions", [this](const Request& req, Response& res) { generate(req, res, true); });
  }

  json model_card() const {
    return {{"id", options_.model_id}, {"object", "model"}, {"created", started_}, {"owned_by", "unmask"}};
  }

  static void send(Response& res, const api_error& e) {
    res.status = e.status;
    if (e.status == 429 || e.status == 503) res.set_header("Connection", "close");  // its thread goes back to the pool
    res.set_content(dump(error_body(e)), "application/json");
  }

  // A whole response that holds `hold` (the request's place among those in
  // flight) until it is written: a drain waits for the bytes, not only the handler.
  static void send_held(Response& res, int status, std::string body, std::shared_ptr<void> hold) {
    res.status = status;
    auto text = std::make_shared<std::string>(std::move(body));
    res.set_content_provider(
        text->size(), "application/json",
        [text](std::size_t offset, std::size_t length, httplib::DataSink& sink) {
          return sink.write(text->data() + offset, length);
        },
        [hold](bool) {});
  }
  static void send_held(Response& res, const api_error& e, std::shared_ptr<void> hold) {
    send_held(res, e.status, dump(error_body(e)), std::move(hold));
  }

  void generate(const Request& req, Response& res, bool chat) {
    auto state = std::make_shared<request_state>();
    state->arrived = clock_type::now();
    json body;
    try {
      body = json::parse(req.body);
    } catch (const json::exception& e) {
      return send(res, invalid("", std::string("the body is not valid JSON: ") + e.what(), "invalid_json"));
    }
    state->parsed = std::make_shared<parsed_request>();
    try {
      *state->parsed = parse_request(body, chat, m_, defaults_, options_.model_id, options_.limits);
    } catch (const api_error& e) {
      return send(res, e);
    } catch (const unmask::error& e) {
      return send(res, invalid("", e.what()));
    }
    parsed_request& p = *state->parsed;
    if (!p.seed_given) {
      std::lock_guard<std::mutex> lock(seed_mutex_);
      p.settings.seed = seeds_() >> 1;
    }
    if (in_flight_.fetch_add(1) >= options_.max_concurrent) {
      --in_flight_;
      return send(res, api_error(429, "too many requests in flight (this server's limit is " +
                                          std::to_string(options_.max_concurrent) + "): retry later",
                                 "rate_limit_error", "", "too_many_requests"));
    }
    state->ticket = std::shared_ptr<void>(nullptr, [this](void*) { --in_flight_; });

    std::vector<job> jobs;
    for (const auto& prompt : p.prompts)
      for (std::int32_t k = 0; k < p.n; ++k) jobs.push_back({prompt, std::uint32_t(jobs.size()), p.settings});
    admission_result a = engine_.submit(std::move(jobs), p.canvas_events);
    if (a.status == admission::queue_full)
      return send(res, api_error(429, "the request queue is full: retry later", "rate_limit_error", "", "queue_full"));
    if (a.status == admission::draining)
      return send(res, api_error(503, "the server is shutting down", "server_error", "", "shutting_down"));
    if (a.status == admission::invalid) return send(res, invalid("", a.message));

    state->channels = std::move(a.channels);
    const std::size_t choices = state->channels.size();
    for (std::size_t i = 0; i < choices; ++i) state->texts.emplace_back(m_, p);
    state->seen_steps.assign(choices, 0);
    state->finished.assign(choices, false);
    state->deadline = state->arrived + std::chrono::milliseconds(std::int64_t(options_.request_timeout * 1000.0));
    state->created = std::time(nullptr);
    state->id = (chat ? "chatcmpl-" : "cmpl-") + std::to_string(state->channels.front()->handle);
    state->object = chat ? "chat.completion" : "text_completion";

    if (!p.stream) {
      const int fd = client_socket(req.remote_addr, req.remote_port, port_);
      wait_whole(*state, fd);
      return respond_whole(*state, res);
    }
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
    state->last_write = clock_type::now();
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, state](std::size_t, httplib::DataSink& sink) { return stream_some(*state, sink); },
        [this, state](bool) {
          if (!state->closed) cancel_all(*state);  // the connection ended before the stream did
          record_latency(*state);
        });
  }

  void cancel_all(request_state& s) {
    for (auto& c : s.channels) engine_.cancel(c);
    s.cancelled = true;
  }

  bool all_done(request_state& s) {
    for (auto& c : s.channels) {
      std::lock_guard<std::mutex> lock(c->mutex);
      if (!c->done) return false;
    }
    return true;
  }

  // A plain request: waits for every job, watching the client and the deadline.
  void wait_whole(request_state& s, int fd) {
    for (auto& c : s.channels) {
      std::unique_lock<std::mutex> lock(c->mutex);
      while (!c->done) {
        c->changed.wait_for(lock, std::chrono::milliseconds(50));
        if (c->done) break;
        lock.unlock();
        if (!s.cancelled && !client_present(fd)) cancel_all(s);
        if (!s.cancelled && clock_type::now() > s.deadline) {
          s.timed_out = true;
          cancel_all(s);
        }
        lock.lock();
      }
    }
    s.closed = true;
    record_latency(s);
  }

  void respond_whole(request_state& s, Response& res) {
    const parsed_request& p = *s.parsed;
    json choices = json::array();
    std::int64_t completion_tokens = 0, forwards = 0;
    for (std::size_t i = 0; i < s.channels.size(); ++i) {
      channel& c = *s.channels[i];
      std::lock_guard<std::mutex> lock(c.mutex);
      if (!c.failure.empty()) return send_held(res, api_error(500, "decoding failed: " + c.failure, "server_error"), s.ticket);
      if (s.timed_out)
        return send_held(res, api_error(504, "the request took longer than this server's limit of " +
                                            dump(json(options_.request_timeout)) + " s", "timeout", "", "timeout"),
                         s.ticket);
      if (!c.output || c.output->stop == unmask::stop_reason::cancelled || s.cancelled)
        return send_held(res, api_error(503, "the request was cancelled (the server is shutting down)", "server_error", "",
                                   "cancelled"),
                         s.ticket);
      const std::vector<std::int32_t> generated(c.output->canvas.begin() + c.output->prompt_length, c.output->canvas.end());
      const std::string text = s.texts[i].delta(generated, true);
      completion_tokens += s.texts[i].tokens();
      forwards += c.output->forwards;
      json choice = {{"index", i}, {"finish_reason", finish_reason(*c.output, s.texts[i].stopped_by_string())},
                     {"logprobs", nullptr}};
      if (p.chat) choice["message"] = {{"role", "assistant"}, {"content", text}};
      else choice["text"] = text;
      choice["forwards"] = c.output->forwards;
      choices.push_back(std::move(choice));
    }
    json out = {{"id", s.id}, {"object", s.object}, {"created", s.created}, {"model", options_.model_id},
                {"choices", std::move(choices)}, {"usage", usage(p, completion_tokens, forwards)}};
    send_held(res, 200, dump(out), s.ticket);
  }

  json usage(const parsed_request& p, std::int64_t completion_tokens, std::int64_t forwards) const {
    const std::int64_t prompt = p.prompt_tokens * p.n;
    return {{"prompt_tokens", prompt}, {"completion_tokens", completion_tokens},
            {"total_tokens", prompt + completion_tokens}, {"forwards", forwards}};
  }

  json chunk(const request_state& s, json choices) const {
    return {{"id", s.id}, {"object", s.parsed->chat ? "chat.completion.chunk" : "text_completion"},
            {"created", s.created}, {"model", options_.model_id}, {"choices", std::move(choices)}};
  }

  json chunk_choice(const request_state& s, std::size_t index, const std::string& text, const char* finish) const {
    json choice = {{"index", index}, {"finish_reason", finish ? json(finish) : json(nullptr)}, {"logprobs", nullptr}};
    if (s.parsed->chat) choice["delta"] = text.empty() && finish ? json::object() : json{{"content", text}};
    else choice["text"] = text;
    return choice;
  }

  // One call of the stream's provider. cpp-httplib runs providers outside
  // its exception handling, so a failure here becomes an error event that
  // ends the stream instead of ending the process.
  bool stream_some(request_state& s, httplib::DataSink& sink) {
    try {
      return stream_step(s, sink);
    } catch (const std::exception& e) {
      cancel_all(s);
      s.closed = true;
      const std::string out = sse(error_body(api_error(500, std::string("internal error: ") + e.what(), "server_error"))) +
                              "data: [DONE]\n\n";
      if (!sink.write(out.data(), out.size())) return false;
      sink.done();
      return true;
    }
  }

  // Waits briefly for a step, then writes what it added. Returns false to
  // drop the connection.
  bool stream_step(request_state& s, httplib::DataSink& sink) {
    std::string out;
    if (s.parsed->chat && !s.role_sent) {
      json choices = json::array();
      for (std::size_t i = 0; i < s.channels.size(); ++i)
        choices.push_back({{"index", i}, {"delta", {{"role", "assistant"}, {"content", ""}}}, {"finish_reason", nullptr},
                           {"logprobs", nullptr}});
      out += sse(chunk(s, std::move(choices)));
      s.role_sent = true;
    }
    // Wait for news on the first unfinished choice (any step moves them all).
    for (std::size_t i = 0; i < s.channels.size(); ++i) {
      if (s.finished[i]) continue;
      channel& c = *s.channels[i];
      std::unique_lock<std::mutex> lock(c.mutex);
      c.changed.wait_for(lock, std::chrono::milliseconds(50), [&] { return c.done || c.steps != s.seen_steps[i]; });
      break;
    }
    if (!sink.is_writable()) {
      cancel_all(s);
      return false;
    }
    if (!s.cancelled && clock_type::now() > s.deadline) {
      s.timed_out = true;
      cancel_all(s);
    }
    bool all_finished = true;
    for (std::size_t i = 0; i < s.channels.size(); ++i) {
      if (s.finished[i]) continue;
      channel& c = *s.channels[i];
      std::deque<step_event> events;
      std::vector<std::int32_t> generated;
      bool done = false;
      std::string failure;
      std::optional<unmask::sequence_output> output;
      {
        std::lock_guard<std::mutex> lock(c.mutex);
        events.swap(c.events);
        generated = c.generated;
        s.seen_steps[i] = c.steps;
        done = c.done;
        failure = c.failure;
        if (done) output = c.output;
      }
      for (const step_event& e : events) out += sse("canvas", canvas_event(i, e, generated));
      if (done && (!failure.empty() || !output || output->stop == unmask::stop_reason::cancelled)) {
        const api_error e = !failure.empty() ? api_error(500, "decoding failed: " + failure, "server_error")
                            : s.timed_out    ? api_error(504, "the request took longer than this server's limit", "timeout", "", "timeout")
                                             : api_error(503, "the request was cancelled", "server_error", "", "cancelled");
        out += sse(error_body(e));
        s.finished[i] = true;
        continue;
      }
      if (done) generated.assign(output->canvas.begin() + output->prompt_length, output->canvas.end());
      const std::string text = s.texts[i].delta(generated, done);
      const bool finished = done || s.texts[i].stopped_by_string();
      if (!text.empty()) out += sse(chunk(s, json::array({chunk_choice(s, i, text, nullptr)})));
      if (finished) {
        const char* reason = output ? finish_reason(*output, s.texts[i].stopped_by_string()) : "stop";
        out += sse(chunk(s, json::array({chunk_choice(s, i, "", reason)})));
        s.finished[i] = true;
        if (!done) engine_.cancel(s.channels[i]);  // a stop string ended it before the decoder did
      } else {
        all_finished = false;
      }
    }
    if (all_finished) {
      if (s.parsed->include_usage) {
        std::int64_t tokens = 0, forwards = 0;
        for (std::size_t i = 0; i < s.channels.size(); ++i) {
          tokens += s.texts[i].tokens();
          std::lock_guard<std::mutex> lock(s.channels[i]->mutex);
          forwards += s.channels[i]->steps;
        }
        json last = chunk(s, json::array());
        last["usage"] = usage(*s.parsed, tokens, forwards);
        out += sse(last);
      }
      out += "data: [DONE]\n\n";
    }
    const auto now = clock_type::now();
    if (out.empty() && now - s.last_write > std::chrono::seconds(5)) out = ": keep-alive\n\n";
    if (!out.empty()) {
      if (!sink.write(out.data(), out.size())) {
        cancel_all(s);
        return false;
      }
      s.last_write = now;
    }
    if (all_finished) {
      s.closed = true;
      sink.done();
    }
    return true;
  }

  json canvas_event(std::size_t index, const step_event& e, const std::vector<std::int32_t>& generated) const {
    json pieces = json::array();
    for (const std::int32_t t : e.tokens) pieces.push_back(decode_text(m_, {t}));
    return {{"index", index}, {"block", e.block}, {"step", e.step}, {"length", generated.size()},
            {"positions", e.positions}, {"tokens", e.tokens}, {"pieces", pieces}, {"masks_left", e.masks_left}};
  }

  void record_latency(request_state& s) {
    std::lock_guard<std::mutex> lock(metrics_mutex_);
    for (auto& c : s.channels) {
      std::lock_guard<std::mutex> inner(c->mutex);
      if (c->committed_any) {
        ttfc_sum_ += std::chrono::duration<double>(c->first_commit - s.arrived).count();
        ++ttfc_count_;
      }
      if (c->done) {
        e2e_sum_ += std::chrono::duration<double>(c->finished - s.arrived).count();
        ++e2e_count_;
      }
    }
  }

  void count(const Request& req, const Response& res) {
    static const std::vector<std::string> known = {"/", "/openapi.json", "/health", "/metrics", "/v1/models",
                                                   "/v1/completions", "/v1/chat/completions"};
    std::string path = req.path;
    if (path.rfind("/v1/models/", 0) == 0) path = "/v1/models/{id}";
    else if (std::find(known.begin(), known.end(), path) == known.end()) path = "other";
    std::lock_guard<std::mutex> lock(metrics_mutex_);
    ++requests_[{path, res.status}];
  }

  const cli::loaded_model& m_;
  cli::generate_options defaults_;
  server_options options_;
  serve_engine<Backend>& engine_;
  httplib::Server server_;
  int port_ = 0;
  std::atomic<std::int64_t> in_flight_{0};
  std::mutex seed_mutex_;
  std::mt19937_64 seeds_;
  std::time_t started_;
  double layer_gemm_params_ = 0.0;
  mutable std::mutex metrics_mutex_;
  std::map<std::pair<std::string, int>, std::int64_t> requests_;
  double ttfc_sum_ = 0.0, e2e_sum_ = 0.0;
  std::int64_t ttfc_count_ = 0, e2e_count_ = 0;
};

template <class Backend>
std::string http_service<Backend>::metrics_text() const {
  const engine_figures f = engine_.figures();
  std::ostringstream o;
  auto metric = [&](const char* name, const char* type, const char* help) {
    o << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
  };
  metric("unmask_requests_total", "counter", "HTTP requests answered, by path and status.");
  {
    std::lock_guard<std::mutex> lock(metrics_mutex_);
    for (const auto& [key, n] : requests_)
      o << "unmask_requests_total{path=\"" << key.first << "\",status=\"" << key.second << "\"} " << n << '\n';
    metric("unmask_time_to_first_commit_seconds", "summary", "From a request's arrival to its first committed token, per choice.");
    o << "unmask_time_to_first_commit_seconds_sum " << ttfc_sum_ << "\nunmask_time_to_first_commit_seconds_count "
      << ttfc_count_ << '\n';
    metric("unmask_request_seconds", "summary", "From a request's arrival to its last token, per choice.");
    o << "unmask_request_seconds_sum " << e2e_sum_ << "\nunmask_request_seconds_count " << e2e_count_ << '\n';
  }
  metric("unmask_in_flight_requests", "gauge", "Generation requests being answered.");
  o << "unmask_in_flight_requests " << in_flight_.load() << '\n';
  metric("unmask_queue_depth", "gauge", "Jobs (choices) waiting to join the running batch.");
  o << "unmask_queue_depth " << f.queued << '\n';
  metric("unmask_running_jobs", "gauge", "Jobs (choices) in the running batch.");
  o << "unmask_running_jobs " << f.running << '\n';
  metric("unmask_model_calls_total", "counter", "Forward passes of the model (one per denoising step of the batch).");
  o << "unmask_model_calls_total " << f.model_calls << '\n';
  metric("unmask_sequence_forwards_total", "counter", "Sequences fed, summed over the forward passes.");
  o << "unmask_sequence_forwards_total " << f.sequence_forwards << '\n';
  metric("unmask_canvas_rows_total", "counter", "Canvas positions (prompt and generated) fed to the model, summed over sequences and forward passes.");
  o << "unmask_canvas_rows_total " << f.canvas_rows << '\n';
  metric("unmask_model_layer_gemm_parameters", "gauge", "Weights of the layers' projections, multiplied at every canvas position: 2 x this x unmask_canvas_rows_total is the layers' GEMM FLOPs (the head, scored on the masked positions of each block only, comes on top).");
  o << "unmask_model_layer_gemm_parameters " << layer_gemm_params_ << '\n';
  metric("unmask_committed_tokens_total", "counter", "Tokens committed to canvases.");
  o << "unmask_committed_tokens_total " << f.committed_tokens << '\n';
  metric("unmask_finished_jobs_total", "counter", "Jobs finished, stopped or cancelled.");
  o << "unmask_finished_jobs_total " << f.finished_jobs << '\n';
  metric("unmask_tokens_per_forward", "gauge", "Committed tokens per forward pass of the model, since the start.");
  o << "unmask_tokens_per_forward " << (f.model_calls ? double(f.committed_tokens) / double(f.model_calls) : 0.0) << '\n';
  metric("unmask_tokens_per_second", "gauge", "Committed tokens per second over the last 10 s.");
  o << "unmask_tokens_per_second " << f.tokens_per_second(clock_type::now()) << '\n';
  metric("unmask_step_seconds", "histogram", "Wall time of one denoising step of the running batch.");
  for (std::size_t i = 0; i < std::size(engine_figures::bounds); ++i)
    o << "unmask_step_seconds_bucket{le=\"" << engine_figures::bounds[i] << "\"} " << f.step_buckets[i] << '\n';
  o << "unmask_step_seconds_bucket{le=\"+Inf\"} " << f.model_calls << '\n';
  o << "unmask_step_seconds_sum " << f.step_seconds_sum << "\nunmask_step_seconds_count " << f.model_calls << '\n';
  return o.str();
}

}  // namespace serve
