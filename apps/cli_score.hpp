// apps/cli_score.hpp
//
// unmask score: the Monte-Carlo log-likelihood of continuations
// (unmask::likelihood_estimator, LLaDA's get_log_likelihood.py), reading JSON
// lines and writing one JSON line per input line, in order:
//   in   {"prompt": "...", "continuation": "..."}          one continuation
//        {"prompt_ids": [...], "continuation_ids": [...]}  the same as ids
//        {"prompt": "...", "choices": ["...", ...]}        multiple choice (with
//                                                         "answer": its index, optional)
//        with an optional "id" (echoed)
//   out  {"index", "id"?, "log_likelihood", "standard_error", "samples",
//         "tokens", "forwards"}, or for choices {"index", "id"?, "choices":
//         [{...}], "best": the index of the highest log-likelihood, "correct"
//         when an answer was given}
// Text is tokenised as lm-eval does it: the prompt as tokenizer(prompt), the
// continuation as what encoding prompt + continuation adds after the
// prompt's ids (or encoded alone when those are not a prefix). The random key
// of a line is its index, shared by its choices, so choices of equal length
// are scored on the same masks and a line scores the same in any file.
#pragma once

#include <cmath>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli_model.hpp"
#include "unmask/decode/likelihood.hpp"

namespace cli {

struct score_options {
  std::string model, tokenizer, input = "-";
  int samples = 128, batch_size = 16;
  float cfg = 0.0f;
  std::uint64_t seed = 0;
  std::string device = "cpu", isa, compute = "f32";
};

inline std::vector<std::int32_t> continuation_ids(const unmask::bpe_tokenizer& tok, const std::vector<std::int32_t>& context,
                                                  const std::string& prompt, const std::string& continuation) {
  const std::vector<std::int32_t> whole = tok.encode(prompt + continuation);
  if (whole.size() > context.size() && std::equal(context.begin(), context.end(), whole.begin()))
    return {whole.begin() + std::ptrdiff_t(context.size()), whole.end()};
  return tok.encode(continuation, false);
}

inline nlohmann::json result_json(const unmask::likelihood_result& r) {
  return {{"log_likelihood", r.log_likelihood},
          {"standard_error", std::isfinite(r.standard_error) ? nlohmann::json(r.standard_error) : nlohmann::json(nullptr)},
          {"samples", r.samples},
          {"tokens", r.tokens},
          {"forwards", r.forwards}};
}

template <class Backend>
Backend score_backend(const score_options& o) {
  if constexpr (std::is_same_v<Backend, unmask::cpu_backend>) return unmask::cpu_backend(cpu_options(o.isa, o.compute));
  else return Backend{};
}

template <class Backend>
int score_on(const score_options& o) {
  const std::string dir = o.model.empty() ? embedded_model("tiny-llada") : o.model;
  const std::string tokenizer_path = o.tokenizer.empty() ? (fs::path(dir) / "tokenizer.json").string() : o.tokenizer;
  const loaded_model m = load_model(dir, tokenizer_path, false);
  if (o.samples % o.batch_size != 0)
    throw unmask::argument_error("--samples " + std::to_string(o.samples) + " is not a multiple of --batch-size " +
                                 std::to_string(o.batch_size));
  unmask::likelihood_settings s;
  s.mc_num = o.samples, s.batch = o.batch_size, s.cfg = o.cfg, s.seed = o.seed;
  unmask::likelihood_estimator<Backend> estimator(m.model, s, score_backend<Backend>(o));

  std::istringstream in(read_prompt_file(o.input, "score"));
  std::string line;
  std::size_t index = 0;
  for (int number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = "score: line " + std::to_string(number) + ": ";
    const nlohmann::json j = parse_json_line(line, where);
    if (!j.is_object()) throw unmask::argument_error(where + "not a JSON object");
    for (auto it = j.begin(); it != j.end(); ++it)
      if (it.key() != "prompt" && it.key() != "continuation" && it.key() != "prompt_ids" &&
          it.key() != "continuation_ids" && it.key() != "choices" && it.key() != "id" && it.key() != "answer")
        throw unmask::argument_error(where + "unknown key '" + it.key() +
                                     "' (prompt, continuation, prompt_ids, continuation_ids, choices, answer, id)");
    std::vector<unmask::likelihood_request> requests;
    try {
      std::vector<std::int32_t> prompt;
      std::string prompt_text;
      if (j.contains("prompt_ids")) {
        prompt = json_token_ids(j.at("prompt_ids"), where + "\"prompt_ids\"");
      } else if (j.contains("prompt")) {
        if (!m.tok.tokenizer) throw unmask::file_error("score: the model has no tokenizer: give prompt_ids and continuation_ids");
        prompt_text = j.at("prompt").get<std::string>();
        prompt = m.tok.tokenizer->encode(prompt_text);
      } else {
        throw unmask::argument_error(where + "no \"prompt\" or \"prompt_ids\"");
      }
      const auto answer_of = [&](const std::string& text) {
        if (!m.tok.tokenizer) throw unmask::file_error("score: the model has no tokenizer: give prompt_ids and continuation_ids");
        return continuation_ids(*m.tok.tokenizer, prompt, prompt_text, text);
      };
      if (j.contains("continuation_ids")) requests.push_back({prompt, json_token_ids(j.at("continuation_ids"), where + "\"continuation_ids\""), std::uint32_t(index)});
      else if (j.contains("continuation")) requests.push_back({prompt, answer_of(j.at("continuation").get<std::string>()), std::uint32_t(index)});
      else if (j.contains("choices") && j.at("choices").is_array() && !j.at("choices").empty())
        for (const auto& c : j.at("choices")) requests.push_back({prompt, answer_of(c.get<std::string>()), std::uint32_t(index)});
      else
        throw unmask::argument_error(where + "no \"continuation\", \"continuation_ids\" or non-empty \"choices\"");
    } catch (const nlohmann::json::exception& e) {
      throw unmask::argument_error(where + "a value has the wrong type (" + e.what() + ")");
    }
    std::vector<unmask::likelihood_result> results;
    try {
      results = estimator.score(requests);
    } catch (const unmask::argument_error& e) {
      throw unmask::argument_error(where + e.what());
    }
    nlohmann::json out = {{"index", index}};
    if (j.contains("id")) out["id"] = j["id"];
    if (j.contains("choices")) {
      out["choices"] = nlohmann::json::array();
      std::size_t best = 0;
      for (std::size_t i = 0; i < results.size(); ++i) {
        out["choices"].push_back(result_json(results[i]));
        if (results[i].log_likelihood > results[best].log_likelihood) best = i;
      }
      out["best"] = best;
      if (j.contains("answer")) {
        if (!j["answer"].is_number_integer()) throw unmask::argument_error(where + "\"answer\" must be a choice's index");
        out["correct"] = j["answer"].get<std::int64_t>() == std::int64_t(best);
      }
    } else {
      out.update(result_json(results[0]));
    }
    std::cout << out.dump() << "\n" << std::flush;
    ++index;
  }
  return 0;
}

}  // namespace cli
