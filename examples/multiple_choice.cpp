// multiple_choice: answers multiple-choice questions by likelihood.
//
//   multiple_choice [QUESTIONS.jsonl] [MODEL_DIR] [MC_NUM]
//
// Each line of QUESTIONS (tests/data/likelihood/multiple_choice.jsonl by
// default) is {"prompt": "...", "choices": [" ...", ...], "answer": i}; the
// answer index is optional. Every choice is scored with the Monte-Carlo
// log-likelihood of LLaDA's get_log_likelihood.py
// (unmask/decode/likelihood.hpp) on the tiny diffusion model
// (models/tiny-llada by default), all choices of a question in one call and
// under one random-number id, so equally long choices are scored on the same
// masks (common random numbers: the comparison has less noise than either
// score). The pick is the choice with the highest log-likelihood, as
// lm-eval's multiple-choice accuracy takes it. A choice's tokens are what
// encoding prompt + choice adds after the prompt's tokens (lm-eval's split),
// so a space at the seam belongs to the choice.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "example_models.hpp"
#include "unmask/decode/likelihood.hpp"
#include "unmask/unmask.hpp"

namespace {

// The continuation's ids: encode(prompt + continuation) past the prompt's own
// ids when those are its prefix, else the continuation encoded alone.
std::vector<std::int32_t> continuation_ids(const unmask::bpe_tokenizer& tok, const std::vector<std::int32_t>& context,
                                           const std::string& prompt, const std::string& continuation) {
  const std::vector<std::int32_t> whole = tok.encode(prompt + continuation, false);
  if (whole.size() > context.size() && std::equal(context.begin(), context.end(), whole.begin()))
    return {whole.begin() + std::ptrdiff_t(context.size()), whole.end()};
  return tok.encode(continuation, false);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string questions = argc > 1 ? argv[1] : example::model_dir("../tests/data/likelihood/multiple_choice.jsonl");
    const std::string dir = argc > 2 ? argv[2] : example::model_dir("tiny-llada");
    unmask::likelihood_settings settings;
    settings.mc_num = argc > 3 ? std::atoi(argv[3]) : 32;
    settings.batch = std::min(settings.batch, settings.mc_num);
    const unmask::transformer_model model = unmask::transformer_model::load(dir);
    const unmask::bpe_tokenizer tok = unmask::bpe_tokenizer::load(dir + "/tokenizer.json");
    unmask::likelihood_estimator<unmask::cpu_backend> estimator(model, settings);

    std::ifstream in(questions);
    if (!in) throw unmask::file_error("cannot open " + questions);
    std::string line;
    int asked = 0, known = 0, right = 0;
    double seconds = 0;
    while (std::getline(in, line)) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      const nlohmann::json q = nlohmann::json::parse(line);
      const std::string prompt = q.at("prompt").get<std::string>();
      const std::vector<std::int32_t> context = tok.encode(prompt, false);
      std::vector<unmask::likelihood_request> requests;
      for (const auto& choice : q.at("choices"))
        requests.push_back({context, continuation_ids(tok, context, prompt, choice.get<std::string>()),
                            std::uint32_t(asked)});
      const std::vector<unmask::likelihood_result> scores = estimator.score(requests);
      std::size_t best = 0;
      for (std::size_t c = 1; c < scores.size(); ++c)
        if (scores[c].log_likelihood > scores[best].log_likelihood) best = c;
      seconds += scores.front().seconds;
      std::printf("%s\n", prompt.c_str());
      for (std::size_t c = 0; c < scores.size(); ++c)
        std::printf("  %c %-34s log p = %8.3f +- %.3f  (%d tokens, %.3f per token)\n", c == best ? '*' : ' ',
                    q.at("choices")[c].get<std::string>().c_str(), scores[c].log_likelihood,
                    scores[c].standard_error, scores[c].tokens, scores[c].log_likelihood / scores[c].tokens);
      if (q.contains("answer")) {
        ++known;
        right += q.at("answer").get<std::size_t>() == best;
      }
      ++asked;
    }
    std::printf("%d questions, %d of %d answered as expected; mc_num %d, batch %d, %.2f s\n", asked, right, known,
                settings.mc_num, settings.batch, seconds);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "multiple_choice: %s\n", e.what());
    return 1;
  }
}
