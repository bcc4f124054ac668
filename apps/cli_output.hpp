// apps/cli_output.hpp
//
// What the program prints, in the schema docs/cli.md documents (and
// tests/data/cli/schema.json checks): the settings a run used, each run's
// totals and each sequence's ids, text and finish reason, as one JSON
// document (--json) or one JSON line per sequence (--jsonl, --batch); the
// human-readable table of figures (on stderr).
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli_runs.hpp"

namespace cli {

inline nlohmann::json settings_json(const generate_options& o, const std::string& model) {
  return {{"model", model},
          {"gen_length", o.gen_length},
          {"block_length", o.block_length},
          {"steps", o.steps},
          {"policy", o.policy},
          {"schedule", o.schedule},
          {"threshold", o.threshold},
          {"factor", o.factor},
          {"gamma", o.gamma},
          {"temperature", o.temperature},
          {"top_k", o.top_k},
          {"top_p", o.top_p},
          {"seed", o.seed},
          {"cfg", o.cfg},
          {"remasking", o.remasking},
          {"noise", o.noise},
          {"eta", o.eta},
          {"cache", o.cache},
          {"cache_refresh", o.cache_refresh},
          {"stop_at_eos", !o.no_eos_stop},
          {"chat", o.chat},
          {"system", o.system},
          {"sub_block_length", o.sub_block_length},
          {"block_steps", o.block_steps},
          {"strategy", o.strategy},
          {"device", o.device},
          {"isa", o.isa.empty() ? unmask::cpu::isa_name(unmask::cpu::detected_isa()) : o.isa},
          {"compute", o.compute},
          {"threads", unmask::cpu::thread_count()},
          {"decoder", o.ar && !o.compare ? "autoregressive" : "diffusion"}};
}

inline nlohmann::json sequence_json(const sequence_result& s) {
  nlohmann::json j = {{"prompt_ids", s.prompt_ids},       {"generated_ids", s.generated_ids},
                      {"text", s.text},                   {"finish_reason", s.finish_reason},
                      {"tokens", s.tokens},               {"forwards", s.forwards},
                      {"stop_id", nullptr}};
  if (s.stop_id >= 0) j["stop_id"] = s.stop_id;
  return j;
}

inline nlohmann::json totals_json(const run_figures& f) {
  return {{"mode", f.mode},
          {"tokens", f.tokens},
          {"forwards", f.forwards},
          {"tokens_per_forward", f.tokens_per_forward()},
          {"wall_ms", f.seconds * 1e3},
          {"cpu_ms", f.cpu_seconds * 1e3},
          {"tokens_per_second", f.tokens_per_second()}};
}

inline nlohmann::json run_json(const run_figures& f) {
  nlohmann::json j = totals_json(f);
  j["text"] = f.sequences.empty() ? std::string() : f.sequences[0].text;
  j["finish_reason"] = f.sequences.empty() ? std::string("length") : f.sequences[0].finish_reason;
  j["sequences"] = nlohmann::json::array();
  for (const auto& s : f.sequences) j["sequences"].push_back(sequence_json(s));
  return j;
}

// The figures as a table (stderr: stdout carries the text).
inline void print_table(const std::vector<run_figures>& runs) {
  std::fprintf(stderr, "%-15s %8s %9s %11s %10s %10s %12s\n", "mode", "tokens", "forwards", "tokens/fwd", "wall ms",
               "cpu ms", "tokens/s");
  for (const auto& f : runs)
    std::fprintf(stderr, "%-15s %8lld %9lld %11.2f %10.1f %10.1f %12.1f\n", f.mode.c_str(), (long long)f.tokens,
                 (long long)f.forwards, f.tokens_per_forward(), f.seconds * 1e3, f.cpu_seconds * 1e3, f.tokens_per_second());
}

}  // namespace cli
