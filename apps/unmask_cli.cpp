// unmask: the command-line program (docs/cli.md documents every subcommand,
// flag, default, exit status and the JSON schema).
//
//   unmask generate -p "In the beginning" [--model DIR] [--gen-length 64] [--policy threshold] ...
//   unmask generate -p - < prompt.txt | -f prompt.txt    the prompt from stdin or a file
//   unmask generate --batch prompts.jsonl                one prompt per line (or JSON lines with per-prompt
//                                                        settings), one JSON line out per prompt, in order
//   unmask generate -p "..." --compare [--json]          diffusion and its autoregressive twin side by side
//   unmask generate --prompt-ids 5,17,42 --model DIR     prompt as token ids, for a checkpoint without a
//                                                        tokenizer (the output is ids too)
//   unmask generate -p "..." --chat [--system TEXT]      the prompt as one user turn of the model's chat template
//   unmask chat [--model DIR] [generate's flags]         multi-turn: typed turns on a terminal ("> "),
//                                                        otherwise one turn per line of stdin
//   unmask score [-f pairs.jsonl] [--samples 128]     Monte-Carlo log-likelihood of continuations (LLaDA's
//                                                        get_log_likelihood.py), JSON lines in and out
//   unmask info [--model DIR] [--json]                   the model's configuration, the CPU engine's level and
//                                                        threads, its resident weights and peak RSS
//
// Streams: stdout carries the generated text (or one JSON document with
// --json, JSON lines with --jsonl / --batch); progress, the --visual view and
// the table of figures go to stderr. Exit status: 0 done, 1 a file or model
// that cannot be used, 2 bad flags or values, 130 interrupted (the first
// Ctrl-C finishes the current step and prints what was committed, masks shown,
// finish reason "interrupted"; a second one exits at once).
//
// The model's family picks the decoder: block-causal checkpoints (Fast-dLLM v2,
// SDAR) decode block by block (unmask::block_diffusion_decoder, with the
// family's published defaults), the others with unmask::diffusion_decoder.
// A chat reply ends at any of the model's stop ids (config.json and
// generation_config.json eos_token_id), the tokenizer_config.json eos_token and
// the end-of-turn tokens the tokenizer has (<|eot_id|>, <|im_end|>,
// <|endoftext|>, <|end_of_text|>); each turn re-renders the whole conversation
// and decodes it afresh (no K/V cache is kept between turns).
//
// Without --model it runs the embedded tiny diffusion model (models/tiny-llada)
// and, for --ar and --compare, its autoregressive twin (models/tiny-ar), found
// in $UNMASK_MODELS_DIR, the installed share directory, or the source tree.
// Built with nvcc (target unmask-cuda, executable `unmask-cuda`) the same
// program takes --device cuda, which runs the model and the decode loops on the
// GPU (unmask::cuda_backend; without --visual, unguided confidence decoding,
// cached or not, uses the device-resident loop, unmask::resident_decoder).
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "cli_flags.hpp"
#include "cli_model.hpp"
#include "cli_serve.hpp"
#include "cli_output.hpp"
#include "cli_progress.hpp"
#include "cli_runs.hpp"
#include "cli_score.hpp"

namespace {

namespace fs = std::filesystem;
using cli::generate_options;
using cli::loaded_model;
using cli::run_figures;

// --tokenizer, else the model directory's tokenizer.json.
std::string tokenizer_for(const generate_options& o, const std::string& model) {
  return o.tokenizer.empty() ? (fs::path(model) / "tokenizer.json").string() : o.tokenizer;
}

// The diffusion model of the flags (or, with --ar, the autoregressive one).
std::string model_dir(const generate_options& o) {
  if (!o.model.empty()) return o.model;
  return cli::embedded_model(o.ar && !o.compare ? "tiny-ar" : "tiny-llada");
}

// The one prompt of -p TEXT, -p - (stdin), -f FILE or --prompt-ids.
cli::prompt_input single_prompt(const generate_options& o) {
  cli::prompt_input p;
  if (!o.prompt_ids.empty()) {
    p.ids = cli::parse_ids(o.prompt_ids);
    p.has_ids = true;
  } else if (!o.prompt_file.empty()) {
    p.text = cli::read_prompt_file(o.prompt_file, "-f");
  } else {
    p.text = o.prompt == "-" ? cli::read_prompt_file("-", "-p -") : o.prompt;
  }
  p.chat = o.chat;
  p.system = o.system;
  return p;
}

int exit_status(const std::vector<run_figures>& runs) {
  for (const auto& f : runs)
    if (f.interrupted) return 130;
  return 0;
}

template <class Backend>
int generate_on(const generate_options& o) {
  const cli::prompt_input input = single_prompt(o);
  std::vector<run_figures> runs;
  std::string dir = model_dir(o);
  {
    const loaded_model m = cli::load_model(dir, tokenizer_for(o, dir), o.chat);
    runs.push_back(cli::run_model<Backend>(o, m, {cli::encode_prompt(input, m)}));
  }
  if (o.compare && !cli::interrupt_token().cancelled()) {
    const std::string ar_dir = o.ar_model.empty() ? cli::embedded_model("tiny-ar") : o.ar_model;
    const loaded_model m = cli::load_model(ar_dir, tokenizer_for(o, ar_dir), o.chat);
    generate_options twin = o;
    twin.trace.clear();  // --trace records the diffusion run
    runs.push_back(cli::run_ar<Backend>(twin, m, {cli::encode_prompt(input, m)}, {}));
  }
  if (o.json) {
    nlohmann::json j = {{"prompt", input.has_ids ? nlohmann::json(nullptr) : nlohmann::json(input.text)},
                        {"settings", cli::settings_json(o, dir)},
                        {"runs", nlohmann::json::array()}};
    if (input.has_ids) j["prompt_ids"] = input.ids;
    for (const auto& f : runs) j["runs"].push_back(cli::run_json(f));
    std::cout << j.dump(2) << "\n";
  } else if (o.jsonl) {
    for (const auto& f : runs) {
      nlohmann::json line = cli::sequence_json(f.sequences[0]);
      line.update(cli::totals_json(f));
      std::cout << line.dump() << "\n";
    }
  } else {
    for (const auto& f : runs)
      std::printf("%s%s\n", runs.size() > 1 ? ("[" + f.mode + "] ").c_str() : "", f.sequences[0].text.c_str());
    std::fflush(stdout);
    if (!o.quiet) cli::print_table(runs);
  }
  return exit_status(runs);
}

// --batch FILE: one prompt per line, or JSON lines {"prompt" | "prompt_ids",
// "id", "chat", "system", and per-prompt settings}. Prompts with the same
// settings decode as one batch; each sequence's random stream is keyed by its
// line, so a prompt decodes the same whatever else is in the file.
struct batch_line {
  cli::prompt_input prompt;
  nlohmann::json id;  // echoed
  generate_options options;
  std::string group = "{}";  // the per-prompt settings, as JSON
};

std::vector<batch_line> read_batch(const generate_options& o) {
  std::istringstream in(cli::read_prompt_file(o.batch, "--batch"));
  std::vector<batch_line> out;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const std::string where = "--batch " + o.batch + " line " + std::to_string(number) + ": ";
    batch_line b;
    b.options = o;
    b.prompt.chat = o.chat;
    b.prompt.system = o.system;
    if (line.front() != '{') {
      b.prompt.text = line;
      out.push_back(std::move(b));
      continue;
    }
    const nlohmann::json j = cli::parse_json_line(line, where);
    nlohmann::json group = nlohmann::json::object();
    try {
      for (auto it = j.begin(); it != j.end(); ++it) {
        const std::string& k = it.key();
        if (k == "prompt") b.prompt.text = it->get<std::string>();
        else if (k == "prompt_ids") b.prompt.ids = cli::json_token_ids(*it, where + "\"prompt_ids\""), b.prompt.has_ids = true;
        else if (k == "id") b.id = *it;
        else if (k == "chat") b.prompt.chat = it->get<bool>();
        else if (k == "system") b.prompt.system = it->get<std::string>();
        else if (k == "gen_length") b.options.gen_length = cli::json_int(*it, 1, 1 << 20, where + "\"" + k + "\""), group[k] = *it;
        else if (k == "block_length") b.options.block_length = cli::json_int(*it, 1, 1 << 20, where + "\"" + k + "\""), group[k] = *it;
        else if (k == "steps") b.options.steps = cli::json_int(*it, 1, 1 << 20, where + "\"" + k + "\""), group[k] = *it;
        else if (k == "temperature") b.options.temperature = cli::json_real(*it, 0, 100, where + "\"" + k + "\""), group[k] = *it;
        else if (k == "top_k") b.options.top_k = cli::json_int(*it, 0, 1 << 24, where + "\"" + k + "\""), group[k] = *it;
        else if (k == "top_p") b.options.top_p = cli::json_real(*it, 0, 1, where + "\"" + k + "\""), group[k] = *it;
        else if (k == "threshold")
          b.options.threshold = cli::json_real(*it, 0, 1, where + "\"" + k + "\""), b.options.threshold_given = true, group[k] = *it;
        else if (k == "seed") {
          if (!it->is_number_unsigned()) throw unmask::argument_error(where + "\"seed\" must be an integer in [0, 2^64)");
          b.options.seed = it->get<std::uint64_t>(), group[k] = *it;
        }
        else
          throw unmask::argument_error(where + "unknown key '" + k +
                                       "' (prompt, prompt_ids, id, chat, system, gen_length, block_length, steps, "
                                       "temperature, top_k, top_p, threshold, seed)");
      }
    } catch (const nlohmann::json::exception& e) {
      throw unmask::argument_error(where + "a value has the wrong type (" + e.what() + ")");
    }
    if (!j.contains("prompt") && !j.contains("prompt_ids")) throw unmask::argument_error(where + "no \"prompt\" or \"prompt_ids\"");
    if (b.options.gen_length < 1 || b.options.block_length < 1 || b.options.steps < 1 || b.options.top_k < 0 ||
        !(b.options.temperature >= 0) || !(b.options.top_p >= 0 && b.options.top_p <= 1) ||
        !(b.options.threshold >= 0 && b.options.threshold <= 1))
      throw unmask::argument_error(where + "a setting is out of range (gen_length, block_length, steps >= 1; top_k >= 0; "
                                           "temperature >= 0; top_p and threshold in [0, 1])");
    b.group = group.dump();
    out.push_back(std::move(b));
  }
  if (out.empty()) throw unmask::argument_error("--batch " + o.batch + ": no prompts");
  return out;
}

template <class Backend>
int batch_on(const generate_options& o) {
  const std::vector<batch_line> lines = read_batch(o);
  const std::string dir = model_dir(o);
  bool chat = false;
  for (const auto& b : lines) chat = chat || b.prompt.chat;
  const loaded_model m = cli::load_model(dir, tokenizer_for(o, dir), chat);
  std::map<std::string, std::vector<std::size_t>> groups;  // settings -> lines
  for (std::size_t i = 0; i < lines.size(); ++i) groups[lines[i].group].push_back(i);
  std::vector<nlohmann::json> results(lines.size());
  std::vector<run_figures> runs;
  for (const auto& [group, members] : groups) {
    if (cli::interrupt_token().cancelled()) break;
    std::vector<std::vector<std::int32_t>> prompts;
    std::vector<std::uint32_t> ids;
    for (std::size_t i : members) prompts.push_back(cli::encode_prompt(lines[i].prompt, m)), ids.push_back(std::uint32_t(i));
    runs.push_back(cli::run_model<Backend>(lines[members.front()].options, m, prompts, ids));
    for (std::size_t k = 0; k < members.size(); ++k) {
      const std::size_t i = members[k];
      nlohmann::json j = {{"index", i}};
      if (!lines[i].id.is_null()) j["id"] = lines[i].id;
      j["mode"] = runs.back().mode;
      j.update(cli::sequence_json(runs.back().sequences[k]));
      j["settings"] = nlohmann::json::parse(group);
      results[i] = std::move(j);
    }
  }
  for (const auto& r : results)
    if (!r.is_null()) std::cout << r.dump() << "\n";
  std::fflush(stdout);
  if (!o.quiet) cli::print_table(runs);
  return cli::interrupt_token().cancelled() ? 130 : 0;
}

// unmask chat: one user turn per line (typed after "> " on a terminal), each
// answered with the whole conversation rendered by the model's template.
template <class Backend>
int chat_on(const generate_options& o) {
  const std::string dir = model_dir(o);
  const loaded_model m = cli::load_model(dir, tokenizer_for(o, dir), true);
  std::vector<unmask::chat_message> messages;
  if (!o.system.empty()) messages.push_back({"system", o.system});
  const bool tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
  std::string line;
  for (int turn = 1; !cli::interrupt_token().cancelled(); ++turn) {
    if (tty) {
      std::fputs("> ", stdout);
      std::fflush(stdout);
    }
    if (!cli::read_line(std::cin, line, "chat")) break;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (tty && (line == "/quit" || line == "/exit")) break;
    messages.push_back({"user", line});
    const std::string rendered = cli::render_chat(m, messages);
    const std::vector<std::int32_t> prompt = m.tok.tokenizer->encode(rendered, false);
    const run_figures f = cli::run_model<Backend>(o, m, {prompt});
    const cli::sequence_result& reply = f.sequences[0];
    if (o.json || o.jsonl) {
      nlohmann::json j = {{"turn", turn}, {"user", line}, {"assistant", reply.text}, {"prompt_tokens", prompt.size()},
                          {"finish_reason", reply.finish_reason}, {"run", cli::run_json(f)}};
      std::cout << j.dump() << "\n";
    } else {
      std::printf("%s\n", reply.text.c_str());
      if (tty) std::printf("\n");
    }
    std::fflush(stdout);
    if (f.interrupted) return 130;
    messages.push_back({"assistant", reply.text});
  }
  return cli::interrupt_token().cancelled() ? 130 : 0;
}

int generate(const generate_options& o) {
#if defined(UNMASK_CLI_CUDA)
  if (o.device == "cuda") return o.batch.empty() ? generate_on<unmask::cuda_backend>(o) : batch_on<unmask::cuda_backend>(o);
#endif
  return o.batch.empty() ? generate_on<unmask::cpu_backend>(o) : batch_on<unmask::cpu_backend>(o);
}

int score(const cli::score_options& o) {
#if defined(UNMASK_CLI_CUDA)
  if (o.device == "cuda") return cli::score_on<unmask::cuda_backend>(o);
#endif
  return cli::score_on<unmask::cpu_backend>(o);
}

int chat(const generate_options& o) {
#if defined(UNMASK_CLI_CUDA)
  if (o.device == "cuda") return chat_on<unmask::cuda_backend>(o);
#endif
  return chat_on<unmask::cpu_backend>(o);
}

double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / 1024.0;
}

// What generate runs for a model's family, with the defaults that apply.
std::string decoding_defaults(const unmask::transformer_config& c) {
  if (c.objective == unmask::training_objective::autoregressive) return "autoregressive (generate --ar)";
  if (c.attention == unmask::trained_attention::block_causal) {
    const unmask::block_diffusion_settings s =
        c.family == "SDAR" ? unmask::block_diffusion_settings::sdar() : unmask::block_diffusion_settings::fast_dllm_v2();
    if (s.rule == unmask::block_step_rule::counted)
      return "block diffusion, SDAR's low_confidence_dynamic: threshold " + std::to_string(s.threshold).substr(0, 4) +
             ", steps per block = the block length";
    return "block diffusion, Fast-dLLM v2's sub-block threshold: threshold " + std::to_string(s.threshold).substr(0, 3) +
           ", sub-blocks of 8 (or the block)";
  }
  if (c.family == "Dream")
    return "diffusion; Dream's samplers: --schedule dream --policy entropy|margin|low-confidence (its demos: "
           "entropy, temperature 0.2, top-p 0.95)";
  return "diffusion; LLaDA's generate.py: --policy low-confidence, 128 tokens, block 128, 128 steps";
}

// unmask info: the model's configuration and what the CPU engine holds of it,
// as text or (--json) one JSON object with the same facts.
int serve_command(const cli::serve_options& o) {
#if !defined(UNMASK_HAS_SERVER)
  (void)o;
  throw unmask::file_error("this unmask was built without the server: cpp-httplib was not found when it was "
                           "configured (Debian: libcpp-httplib-dev)");
#else
#if defined(UNMASK_CLI_CUDA)
  if (o.device == "cuda") return cli::serve_on<unmask::cuda_backend>(o);
#endif
  return cli::serve_on<unmask::cpu_backend>(o);
#endif
}

int info(const std::string& dir_flag, const std::string& isa, const std::string& compute, bool json) {
  const std::string dir = dir_flag.empty() ? cli::embedded_model("tiny-llada") : dir_flag;
  const unmask::transformer_model model = unmask::transformer_model::load(dir);
  const auto& c = model.config();
  const bool block_causal = c.attention == unmask::trained_attention::block_causal;
  nlohmann::json j = {
      {"model", dir},
      {"family", c.family},
      {"tensor_layout", c.layout == unmask::tensor_layout::llada ? "LLaDA" : "Qwen"},
      {"objective", unmask::to_string(c.objective)},
      {"diffusion", c.objective == unmask::training_objective::masked_diffusion},
      {"attention", unmask::to_string(c.attention)},
      {"attention_block", block_causal ? nlohmann::json(c.attention_block) : nlohmann::json(nullptr)},
      {"shifted_logits", c.shifted_logits},
      {"qkv_bias", c.qkv_bias},
      {"qk_norm", c.qk_norm},
      {"decoding", decoding_defaults(c)},
      {"n_layers", c.n_layers},
      {"d_model", c.d_model},
      {"n_heads", c.n_heads},
      {"n_kv_heads", c.n_kv_heads},
      {"head_dim", c.head_dim},
      {"mlp_hidden_size", c.mlp_hidden_size},
      {"vocab_size", c.vocab_size},
      {"embedding_size", c.embedding_size},
      {"rope_theta", c.rope_theta},
      {"rms_norm_eps", c.rms_norm_eps},
      {"max_sequence_length", c.max_sequence_length},
      {"mask_token_id", c.mask_token_id},
      {"eos_token_id", c.eos_token_id},
      {"stop_token_ids", c.stop_token_ids},
      {"tied_head", c.tied_head},
      {"weights", {{"tensors", model.tensors().names().size()},
                   {"bytes", model.weights().bytes()},
                   {"dtype", unmask::dtype_name(model.weights().embedding.type)}}},
      {"tokenizer", nullptr},
      {"chat_template", false}};
  const fs::path tokenizer = fs::path(dir) / "tokenizer.json";
  if (fs::exists(tokenizer)) {
    unmask::bpe_tokenizer t = unmask::bpe_tokenizer::load(tokenizer.string());
    const unmask::tokenizer_config tc = unmask::tokenizer_config::load_dir(dir);
    tc.apply(t);
    j["tokenizer"] = {{"path", tokenizer.string()},
                      {"entries", t.size()},
                      {"pre_tokenizer", unmask::split_pattern_name(t.pre_tokenizer_pattern())},
                      {"nfc", t.normalizes_nfc()},
                      {"adds_before", t.added_special_before()}};
    j["chat_template"] = bool(tc.chat_template);
  }
  // The CPU engine as generate would run it: pack the weights, then measure.
  unmask::cpu_backend cpu(cli::cpu_options(isa, compute));
  cpu.upload_weights(model);
  const unmask::transformer_weights& w = model.weights();
  double in_place = double(w.embedding.bytes() + w.final_norm.bytes());  // the embedding is gathered, the norms read as stored
  for (const auto& l : w.layers) in_place += double(l.attn_norm.bytes() + l.mlp_norm.bytes());
  const double packed = double(cpu.packed()->bytes());
  j["cpu_engine"] = {{"isa", unmask::cpu::isa_name(cpu.isa())},
                     {"detected_isa", unmask::cpu::isa_name(unmask::cpu::detected_isa())},
                     {"compute", unmask::cpu::compute_mode_name(cpu.compute())},
                     {"threads", unmask::cpu::thread_count()},
                     {"resident_bytes", packed + in_place},
                     {"packed_bytes", packed}};
  j["peak_rss_mib"] = peak_rss_mib();
  if (json) {
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::printf("model                %s\n", dir.c_str());
  std::printf("family               %s (%s tensor layout)\n", c.family.c_str(), j["tensor_layout"].get<std::string>().c_str());
  std::printf("objective            %s\n", unmask::to_string(c.objective));
  if (block_causal)
    std::printf("attention            block-causal, blocks of %lld\n", (long long)c.attention_block);
  else
    std::printf("attention            %s\n", unmask::to_string(c.attention));
  std::printf("logits               %s\n", c.shifted_logits ? "shifted (position i from the output at i-1)"
                                                              : "position i from the output at i");
  std::printf("q/k/v bias, q/k norm %s, %s\n", c.qkv_bias ? "yes" : "no", c.qk_norm ? "yes" : "no");
  std::printf("decoding             %s\n", decoding_defaults(c).c_str());
  std::printf("layers               %lld\n", (long long)c.n_layers);
  std::printf("d_model              %lld\n", (long long)c.d_model);
  std::printf("heads / kv heads     %lld / %lld (head_dim %lld)\n", (long long)c.n_heads, (long long)c.n_kv_heads, (long long)c.head_dim);
  std::printf("mlp_hidden_size      %lld\n", (long long)c.mlp_hidden_size);
  std::printf("vocab / embedding    %lld / %lld\n", (long long)c.vocab_size, (long long)c.embedding_size);
  std::printf("rope_theta           %g\n", c.rope_theta);
  std::printf("rms_norm_eps         %g\n", c.rms_norm_eps);
  std::printf("max_sequence_length  %lld\n", (long long)c.max_sequence_length);
  std::printf("mask / eos token     %lld / %lld\n", (long long)c.mask_token_id, (long long)c.eos_token_id);
  std::string stops;
  for (std::int64_t id : c.stop_token_ids) stops += (stops.empty() ? "" : ", ") + std::to_string(id);
  std::printf("stop ids             %s\n", stops.c_str());
  std::printf("tied head            %s\n", c.tied_head ? "yes" : "no");
  std::printf("weights              %zu tensors, %.2f MB (%s)\n", model.tensors().names().size(),
              double(model.weights().bytes()) / 1e6, unmask::dtype_name(model.weights().embedding.type));
  if (!j["tokenizer"].is_null()) {
    const nlohmann::json& t = j["tokenizer"];
    std::printf("tokenizer            %s (%lld entries; %s pre-tokenizer%s%s)\n", tokenizer.c_str(),
                (long long)t["entries"].get<std::int64_t>(), t["pre_tokenizer"].get<std::string>().c_str(),
                t["nfc"].get<bool>() ? ", NFC" : "", t["adds_before"].empty() ? "" : ", adds a bos token");
    std::printf("chat template        %s\n", j["chat_template"].get<bool>() ? "yes (generate --chat, unmask chat)" : "none");
  }
  std::printf("cpu engine           %s (detected %s), %s GEMMs, %d threads\n", unmask::cpu::isa_name(cpu.isa()),
              unmask::cpu::isa_name(unmask::cpu::detected_isa()), unmask::cpu::compute_mode_name(cpu.compute()),
              unmask::cpu::thread_count());
  std::printf("resident weights     %.2f MB (%.2f MB packed projections and head, %.2f MB read in place)\n",
              (packed + in_place) / 1e6, packed / 1e6, in_place / 1e6);
  std::printf("peak RSS             %.1f MiB\n", peak_rss_mib());
  return 0;
}

// The first SIGINT cancels the decode (it stops after the current step); a
// second one exits at once.
std::atomic<int> sigint_count{0};
unmask::cancel_token* sigint_token = nullptr;

extern "C" void on_sigint(int) {
  if (sigint_count.fetch_add(1) > 0 || !sigint_token) _exit(130);
  sigint_token->cancel();
}

}  // namespace

// The flags generate and chat share.
struct shared_flags {
  CLI::Option* threshold = nullptr;
  CLI::Option* block_length = nullptr;
};

void add_generation_options(CLI::App* sub, cli::generate_options& g, int& threads, shared_flags& f) {
  CLI::Option*& threshold = f.threshold;
  CLI::Option*& block_length = f.block_length;
  sub->add_option("--model", g.model, "Model directory: LLaDA, Dream, Fast-dLLM v2, SDAR (default: the embedded tiny model)")->check(CLI::ExistingDirectory);
  sub->add_option("--ar-model", g.ar_model, "Autoregressive model for --compare (default: the embedded twin)")->check(CLI::ExistingDirectory);
  sub->add_option("--tokenizer", g.tokenizer, "tokenizer.json (default: the model directory's)")->check(CLI::ExistingFile);
  sub->add_option("--gen-length", g.gen_length, "Tokens to generate")->check(CLI::Range(1, 1 << 20));
  block_length = sub->add_option("--block-length", g.block_length, "Semi-autoregressive block length (block-diffusion models: their trained block)")->check(CLI::Range(1, 1 << 20));
  sub->add_option("--steps", g.steps, "Denoising steps in total (top-k policies)")->check(CLI::Range(1, 1 << 20));
  sub->add_option("--policy", g.policy, "Which masked positions to commit")
      ->check(cli::one_of({"low-confidence", "margin", "entropy", "random", "threshold", "factor", "eb"}));
  sub->add_option("--schedule", g.schedule, "Tokens per step for top-k policies")->check(cli::one_of({"llada", "dream", "llama_cpp"}));
  threshold = sub->add_option("--threshold", g.threshold, "Confidence threshold (--policy threshold; block-diffusion models)")->check(cli::finite_range(0.0, 1.0));
  sub->add_option("--sub-block-length", g.sub_block_length, "Block-diffusion models: sub-blocks of the threshold rule (Fast-dLLM v2; default 8)")->check(CLI::Range(1, 1 << 20));
  sub->add_option("--strategy", g.strategy, "Block-diffusion models: counted strategy (SDAR's remasking_strategy)")
      ->check(cli::one_of({"sequential", "low_confidence_static", "low_confidence_dynamic"}));
  sub->add_option("--block-steps", g.block_steps, "Block-diffusion models: steps per block of the counted rule (default: the block length)")->check(CLI::Range(1, 1 << 20));
  sub->add_option("--factor", g.factor, "Fast-dLLM factor (--policy factor)")->check(cli::finite_range(1e-6, 1e6));
  sub->add_option("--gamma", g.gamma, "Entropy bound (--policy eb)")->check(cli::finite_range(0.0, 1e6));
  sub->add_option("--temperature", g.temperature, "Sampling temperature (0: greedy)")->check(cli::finite_range(0.0, 100.0));
  sub->add_option("--top-k", g.top_k, "Keep the k most likely tokens (0: off)")->check(CLI::Range(0, 1 << 24));
  sub->add_option("--top-p", g.top_p, "Nucleus sampling mass (1: off)")->check(cli::finite_range(0.0, 1.0));
  sub->add_option("--seed", g.seed, "Random seed")->check(cli::uint64_value());
  sub->add_option("--remasking", g.remasking, "Ancestral sampling with ReMDM remasking (mdlm: none)")
      ->check(cli::one_of({"none", "mdlm", "cap", "rescale", "conf", "loop"}));
  sub->add_option("--noise", g.noise, "Noise schedule for ancestral sampling")->check(cli::one_of({"log-linear", "cosine", "linear"}));
  sub->add_option("--eta", g.eta, "ReMDM eta")->check(cli::finite_range(0.0, 1.0));
  sub->add_option("--cfg", g.cfg, "Classifier-free guidance scale (0: off)")->check(cli::finite_range(0.0, 100.0));
  sub->add_option("--cache", g.cache, "K/V cache (block-causal: for block-diffusion models)")
      ->check(cli::one_of({"none", "prefix", "dual", "block-causal"}));
  sub->add_option("--cache-refresh", g.cache_refresh, "Recompute cached K/V every N steps (0: at block starts)")
      ->check(CLI::Range(0, 1 << 20));
  sub->add_flag("--visual", g.visual, "Redraw the canvas as masks turn into tokens");
  sub->add_flag("--ar", g.ar, "Decode with the autoregressive twin instead");
  sub->add_flag("--compare", g.compare, "Run diffusion and autoregressive decoding and compare");
  sub->add_flag("--json", g.json, "Print the figures as JSON");
  sub->add_flag("--no-eos-stop", g.no_eos_stop, "Do not stop at the end-of-sequence token");
  sub->add_flag("--logits-eos-inf", g.logits_eos_inf, "Never choose the end-of-sequence token (LLaDA's logits_eos_inf)");
  sub->add_flag("--confidence-eos-eot-inf", g.confidence_eos_eot_inf,
                "End-of-turn logit -inf in the confidence's softmax (LLaDA's confidence_eos_eot_inf)");
  sub->add_option("--eot-id", g.eot_id, "End-of-turn token id (default: the tokenizer's <|eot_id|>)")
      ->check(CLI::Range(0, 1 << 30));
  const std::vector<std::string> levels = {"portable", "avx2", "avx512", "avx512_bf16"};
  sub->add_option("--threads", threads, "CPU threads (default: $UNMASK_NUM_THREADS, else the physical cores)")
      ->check(CLI::Range(1, 1024));
  sub->add_option("--isa", g.isa, "CPU instruction set, at most the detected one (default: detected, or $UNMASK_CPU_ISA)")
      ->check(cli::one_of(levels));
  sub->add_option("--compute", g.compute, "CPU GEMMs: f32, or bf16 (bf16 products, fp32 sums)")
      ->check(cli::one_of({"f32", "bf16"}));
#if defined(UNMASK_CLI_CUDA)
  sub->add_option("--device", g.device, "Where to run: cpu, or cuda (the GPU, bf16 activations)")
      ->check(cli::one_of({"cpu", "cuda"}));
#else
  sub->add_option("--device", g.device, "Where to run (the unmask-cuda build also runs on the GPU: cuda)")
      ->check(cli::one_of({"cpu"}));
#endif
  sub->add_option("--system", g.system, "System message of the chat template (--chat, chat)");
  sub->add_flag("--progress", g.progress, "Show progress on stderr even when it is not a terminal");
  sub->add_flag("-q,--quiet", g.quiet, "No progress line and no table of figures");
  sub->add_flag("--jsonl", g.jsonl, "One JSON line per sequence");
  sub->add_option("--trace", g.trace, "Write each step's commits (positions, tokens, confidences) as JSON lines (docs/trace.md)");
}

// The subcommand the user named (for suggestions), or the app itself.
const CLI::App& active(const CLI::App& app) {
  for (const CLI::App* sub : app.get_subcommands()) return *sub;
  return app;
}

int main(int argc, char** argv) {
  CLI::App app{"unmask: fast inference for masked diffusion language models"};
  app.require_subcommand(1);
  app.option_defaults()->always_capture_default();
  generate_options g;
  CLI::App* gen = app.add_subcommand("generate", "Generate text with a masked diffusion model");
  CLI::Option* prompt_text = gen->add_option("-p,--prompt", g.prompt, "Prompt text (-: read it from stdin)");
  CLI::Option* prompt_file = gen->add_option("-f,--prompt-file", g.prompt_file, "Read the prompt from a file");
  CLI::Option* prompt_ids = gen->add_option("--prompt-ids", g.prompt_ids, "Prompt as token ids (5,17,42): for a model without a tokenizer");
  CLI::Option* batch = gen->add_option("--batch", g.batch, "One prompt per line (or JSON lines with per-prompt settings); JSON lines out");
  for (CLI::Option* a : {prompt_text, prompt_file, prompt_ids, batch})
    for (CLI::Option* b : {prompt_text, prompt_file, prompt_ids, batch})
      if (a != b) a->excludes(b);
  int threads = 0;
  shared_flags gen_flags, chat_flags;
  add_generation_options(gen, g, threads, gen_flags);
  gen->add_flag("--chat", g.chat, "The prompt is a user turn of the model's chat template");
  generate_options c;
  CLI::App* cht = app.add_subcommand("chat", "Chat with an instruct model: turns from the terminal or one per line of stdin");
  add_generation_options(cht, c, threads, chat_flags);
  const std::vector<std::string> levels = {"portable", "avx2", "avx512", "avx512_bf16"};
  cli::score_options sc;
  CLI::App* scr = app.add_subcommand("score", "Log-likelihood of continuations (JSON lines in, JSON lines out)");
  scr->add_option("-f,--input", sc.input, "JSON lines of {prompt, continuation | choices} (-: stdin)");
  scr->add_option("--model", sc.model, "Model directory (a bidirectional masked diffusion model)")->check(CLI::ExistingDirectory);
  scr->add_option("--tokenizer", sc.tokenizer, "tokenizer.json (default: the model directory's)")->check(CLI::ExistingFile);
  scr->add_option("--samples", sc.samples, "Monte-Carlo samples per continuation (LLaDA's mc_num)")->check(CLI::Range(1, 1 << 20));
  scr->add_option("--batch-size", sc.batch_size, "Samples per mini-batch, which share one masking ratio")->check(CLI::Range(1, 1 << 16));
  scr->add_option("--cfg", sc.cfg, "Classifier-free guidance scale (0: off)")->check(cli::finite_range(0.0, 100.0));
  scr->add_option("--seed", sc.seed, "Random seed of the mask plan")->check(cli::uint64_value());
  scr->add_option("--threads", threads, "CPU threads")->check(CLI::Range(1, 1024));
  scr->add_option("--isa", sc.isa, "CPU instruction set")->check(cli::one_of(levels));
  scr->add_option("--compute", sc.compute, "CPU GEMMs: f32 or bf16")->check(cli::one_of({"f32", "bf16"}));
#if defined(UNMASK_CLI_CUDA)
  scr->add_option("--device", sc.device, "Where to run: cpu or cuda")->check(cli::one_of({"cpu", "cuda"}));
#endif
  std::string info_model, info_isa, info_compute = "f32";
  bool info_json = false;
  CLI::App* inf = app.add_subcommand("info", "Print a model's configuration and what the CPU engine holds of it");
  inf->add_option("--model", info_model, "Model directory (LLaDA, Dream, Fast-dLLM v2, SDAR, Qwen2, Qwen3)")->check(CLI::ExistingDirectory);
  inf->add_option("--threads", threads, "CPU threads")->check(CLI::Range(1, 1024));
  inf->add_option("--isa", info_isa, "CPU instruction set")->check(cli::one_of(levels));
  inf->add_option("--compute", info_compute, "CPU GEMMs: f32 or bf16")->check(cli::one_of({"f32", "bf16"}));
  inf->add_flag("--json", info_json, "Print the facts as one JSON object");

  cli::serve_options sv;
  sv.defaults.gen_length = 64;
  sv.defaults.block_length = 32;
  sv.defaults.temperature = 0.0f;
  CLI::App* srv = app.add_subcommand("serve", "Serve a model over an OpenAI-compatible HTTP API (docs/serving.md)");
  CLI::Option* serve_model = srv->add_option("--model", sv.model, "Model directory (a bidirectional masked diffusion model)")->check(CLI::ExistingDirectory);
  srv->add_option("--tokenizer", sv.tokenizer, "tokenizer.json (default: the model directory's)")->check(CLI::ExistingFile);
  srv->add_option("--shape", sv.shape, "Serve random weights of a real shape instead (prompts as token ids): for load tests")
      ->check(CLI::IsMember({"1b", "8b"}))->excludes(serve_model);
  srv->add_option("--model-name", sv.model_name, "The model's id in the API (default: the directory's name)");
  srv->add_option("--host", sv.host, "Address to listen on (loopback by default; 0.0.0.0: every interface)");
  srv->add_option("--port", sv.port, "Port (0: any free one; the address is printed on stdout)")->check(CLI::Range(0, 65535));
  srv->add_option("--api-key", sv.api_key, "Require 'Authorization: Bearer KEY' on /v1/ (default: $UNMASK_API_KEY, else none)");
  srv->add_option("--max-running", sv.max_running, "Jobs (choices) decoded together in one batch")->check(CLI::Range(1, 4096));
  srv->add_option("--max-queued", sv.max_queued, "Jobs waiting to join the batch; beyond it requests get 429")->check(CLI::Range(0, 1 << 20));
  srv->add_option("--max-canvas-rows", sv.max_canvas_rows, "Prompt + generated positions across the batch")->check(CLI::Range(1, 1 << 24));
  srv->add_option("--max-concurrent", sv.max_concurrent, "Generation requests in flight; beyond it requests get 429")->check(CLI::Range(1, 4096));
  srv->add_option("--max-prompt-tokens", sv.max_prompt_tokens, "Longest prompt, in tokens")->check(CLI::Range(1, 1 << 20));
  srv->add_option("--max-tokens", sv.max_tokens, "Largest max_tokens (generated positions) a request may ask for")->check(CLI::Range(1, 1 << 16));
  srv->add_option("--max-choices", sv.max_choices, "Most prompts x n in one request")->check(CLI::Range(1, 1024));
  srv->add_option("--max-body-bytes", sv.max_body_bytes, "Largest request body")->check(CLI::Range(1024, 1 << 30));
  srv->add_option("--request-timeout", sv.request_timeout, "Seconds a request may take; then it is cancelled (504)")->check(cli::finite_range(0.001, 86400.0));
  srv->add_option("--drain-timeout", sv.drain_timeout, "Seconds SIGTERM waits for the requests admitted")->check(cli::finite_range(0.0, 86400.0));
  srv->add_option("--io-timeout", sv.io_timeout, "Seconds a read or write of a connection may block")->check(cli::finite_range(0.001, 3600.0));
  srv->add_option("--gen-length", sv.defaults.gen_length, "max_tokens when a request gives none")->check(CLI::Range(1, 1 << 16));
  srv->add_option("--block-length", sv.defaults.block_length, "block_length when a request gives none (and it divides max_tokens)")->check(CLI::Range(1, 1 << 16));
  srv->add_option("--policy", sv.defaults.policy, "policy when a request gives none")
      ->check(cli::one_of({"low-confidence", "margin", "entropy", "random", "threshold", "factor", "eb"}));
  srv->add_option("--threshold", sv.defaults.threshold, "threshold when a request gives none")->check(cli::finite_range(0.0, 1.0));
  srv->add_option("--temperature", sv.defaults.temperature, "temperature when a request gives none")->check(cli::finite_range(0.0, 2.0));
  srv->add_option("--schedule", sv.defaults.schedule, "schedule when a request gives none")->check(cli::one_of({"llada", "dream", "llama_cpp"}));
  srv->add_option("--threads", threads, "CPU threads")->check(CLI::Range(1, 1024));
  srv->add_option("--isa", sv.defaults.isa, "CPU instruction set")->check(cli::one_of(levels));
  srv->add_option("--compute", sv.defaults.compute, "CPU GEMMs: f32 or bf16")->check(cli::one_of({"f32", "bf16"}));
#if defined(UNMASK_CLI_CUDA)
  srv->add_option("--device", sv.device, "Where to run: cpu or cuda")->check(cli::one_of({"cpu", "cuda"}));
#endif

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ExtrasError& e) {
    std::vector<std::string> extras = active(app).remaining();
    std::fprintf(stderr, "unmask: %s\n", cli::unknown_flag_message(active(app), extras).c_str());
    return 2;
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "unmask: %s (see unmask --help)\n", e.what());
    return 2;
  }
  g.threshold_given = gen_flags.threshold->count() > 0;
  g.block_length_given = gen_flags.block_length->count() > 0;
  c.threshold_given = chat_flags.threshold->count() > 0;
  c.block_length_given = chat_flags.block_length->count() > 0;
  c.chat = true;
  unmask::cancel_token& token = cli::interrupt_token();
  sigint_token = &token;
  struct sigaction action {};
  action.sa_handler = on_sigint;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  try {
    if (threads > 0) unmask::cpu::set_thread_count(threads);
    if (*gen && g.prompt_ids.empty() && prompt_text->count() == 0 && prompt_file->count() == 0 && g.batch.empty())
      throw unmask::argument_error("generate needs a prompt: -p TEXT, -p - (stdin), -f FILE, --prompt-ids LIST or --batch FILE");
    if (*inf) return info(info_model, info_isa, info_compute, info_json);
    if (*srv) return serve_command(sv);
    if (*scr) return score(sc);
    if (*cht) {
      if (c.compare) throw unmask::argument_error("chat runs one model: --compare does not apply");
      return chat(c);
    }
    if (g.ar && g.compare) throw unmask::argument_error("--ar and --compare cannot be combined");
    if (!g.batch.empty() && g.compare) throw unmask::argument_error("--batch runs one model: --compare does not apply");
    if (g.json && g.jsonl) throw unmask::argument_error("--json and --jsonl cannot be combined");
    if (g.remasking != "none" && g.policy != "low-confidence")
      throw unmask::argument_error("--remasking uses ancestral sampling and cannot be combined with --policy " + g.policy);
    return generate(g);
  } catch (const unmask::argument_error& e) {
    std::fprintf(stderr, "unmask: %s\n", cli::with_flag_names(e.what()).c_str());
    return 2;
  } catch (const unmask::error& e) {
    std::fprintf(stderr, "unmask: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {  // not expected: a bug, reported rather than aborting
    std::fprintf(stderr, "unmask: internal error: %s\n", e.what());
    return 1;
  }
}
