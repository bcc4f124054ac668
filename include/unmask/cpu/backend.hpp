// unmask/cpu/backend.hpp
//
// The CPU backend: the set of operations the model's forward pass is written
// against, implemented with the fp32 kernels of unmask/cpu. The forward pass
// (unmask/model/transformer_forward.hpp) takes the backend as a template parameter;
// the CUDA backend provides the same members over device memory, so the model
// and the decode loops exist once.
//
// Every kernel runs at one instruction-set level, chosen when the backend is
// made (cpu_backend_options::isa: the detected level, capped by
// UNMASK_CPU_ISA; unmask/cpu/isa.hpp). upload_weights packs the model's
// projections once for that level and compute mode (shared by every backend
// of the same model: unmask/cpu/packed_weights.hpp); GEMMs then read the
// packed panels, and the Q/K/V and gate/up projections run as one GEMM each.
// Threads come from the process-wide pool (unmask/cpu/parallel.hpp).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "unmask/core/host_buffer.hpp"
#include "unmask/cpu/attention.hpp"
#include "unmask/cpu/bias.hpp"
#include "unmask/cpu/choose.hpp"
#include "unmask/cpu/embedding.hpp"
#include "unmask/cpu/isa.hpp"
#include "unmask/cpu/matmul.hpp"
#include "unmask/cpu/packed_weights.hpp"
#include "unmask/cpu/rmsnorm.hpp"
#include "unmask/cpu/rope.hpp"
#include "unmask/cpu/swiglu.hpp"
#include "unmask/decode/resident_state.hpp"
#include "unmask/model/transformer_model.hpp"
#include "unmask/policy/guidance.hpp"
#include "unmask/policy/sampling.hpp"

namespace unmask {

struct cpu_backend_options {
  cpu::isa_level isa = cpu::default_isa();            // capped at what the CPU supports
  cpu::compute_mode compute = cpu::compute_mode::f32;  // bf16: bf16-pair GEMMs with fp32 accumulation
};

struct cpu_backend {
  using activation = float;
  template <class T>
  using buffer = host_buffer<T>;
  using rope_table_type = std::vector<float>;

  static constexpr const char* name = "cpu";

  cpu_backend() : cpu_backend(cpu_backend_options{}) {}
  explicit cpu_backend(cpu_backend_options options)
      : level_(cpu::capped_isa(options.isa)), mode_(options.compute) {}

  cpu::isa_level isa() const { return level_; }
  cpu::compute_mode compute() const { return mode_; }
  cpu::packed_layout layout() const { return cpu::layout_for(level_, mode_); }
  // The packed weights (null before upload_weights).
  const cpu::packed_weights* packed() const { return packed_.get(); }

  // Packs the model's projections for this backend's level and mode, once
  // per model (a second backend of the same model and layout shares them).
  void upload_weights(const transformer_model& model) {
    const cpu::packed_layout l = layout();
    packed_ = model.prepared<cpu::packed_weights>(cpu::packed_weights::key(l), [&] {
      return std::make_shared<const cpu::packed_weights>(model, l);
    });
  }

  // Copies host memory into a backend buffer (a plain copy here).
  template <class T>
  void upload(const T* src, std::size_t count, buffer<T>& dst) const {
    dst.reserve_at_least(count);
    std::copy(src, src + count, dst.data());
  }
  template <class T>
  void download(const T* src, std::size_t count, T* dst) const {
    std::copy(src, src + count, dst);
  }

  rope_table_type make_rope_table(std::int64_t count, std::int64_t head_dim, float theta) const {
    return cpu::rope_table(count, head_dim, theta);
  }

  void embedding(const std::int32_t* tokens, std::int64_t rows, const tensor_ref& wte, float* out) const {
    cpu::embedding(tokens, rows, wte, out, level_);
  }
  void rmsnorm(const float* x, std::int64_t rows, std::int64_t dim, const tensor_ref& w, float eps, float* out) const {
    cpu::rmsnorm(x, rows, dim, w, eps, out, level_);
  }
  // y (rows, n) (+)= x (rows, k) w^T; the packed copy of w when there is one.
  void matmul_nt(const float* x, std::int64_t rows, const tensor_ref& w, std::int64_t n, float* y,
                 bool accumulate) const {
    const cpu::packed_matrix* p = packed_ ? packed_->find(w) : nullptr;
    if (p && p->segments().size() == 1 && p->columns() == n) {
      cpu::gemm(level_, x, rows, *p, y, accumulate);
      return;
    }
    cpu::matmul_nt(x, rows, w, n, y, accumulate, level_, mode_);
  }
  // y (rows, n) += bias (n), the bias in its file dtype.
  void add_bias(float* y, std::int64_t rows, std::int64_t n, const tensor_ref& bias) const {
    cpu::add_bias(y, rows, n, bias, level_);
  }
  // y[i] (rows, n[i]) = x (rows, k) w[i]^T for i < count, one GEMM over the
  // fused packed matrix when w[0..count) were packed together.
  void matmul_nt_group(const float* x, std::int64_t rows, const tensor_ref* const* w, const std::int64_t* n,
                       float* const* y, int count) const {
    const cpu::packed_matrix* p = packed_ ? packed_->find(*w[0]) : nullptr;
    bool fused = p && int(p->segments().size()) == count;
    for (int i = 0; fused && i < count; ++i)
      fused = p->segments()[std::size_t(i)].name == w[i]->name && p->segments()[std::size_t(i)].columns == n[i];
    if (fused) {
      std::vector<std::int64_t> ld(n, n + count);
      cpu::gemm(level_, x, rows, p->k(), *p, y, ld.data(), false);
      return;
    }
    for (int i = 0; i < count; ++i) matmul_nt(x, rows, *w[i], n[i], y[i], false);
  }
  void rope(float* x, std::int64_t rows, std::int64_t heads, std::int64_t head_dim, const std::int32_t* positions,
            const rope_table_type& table) const {
    cpu::rope(x, rows, heads, head_dim, positions, table, level_);
  }
  void attention(const float* q, const float* k, const float* v, float* out, const attention_shape& s,
                 const attention_extents& e, attention_mask mask) const {
    cpu::attention(q, k, v, out, s, e, mask, level_);
  }
  // src (batch, seq_len, width) rows i < lengths[b] -> dst (slots, capacity, width)
  // at slot slots[b], row offsets[b] + i.
  void scatter_rows(const float* src, std::int64_t batch, std::int64_t seq_len, std::int64_t width,
                    const std::int32_t* offsets, const std::int32_t* lengths, const std::int32_t* slots,
                    std::int64_t capacity, float* dst) const {
    for (std::int64_t b = 0; b < batch; ++b)
      std::copy(src + b * seq_len * width, src + (b * seq_len + lengths[b]) * width,
                dst + (std::int64_t(slots[b]) * capacity + offsets[b]) * width);
  }
  // dst (count, width) = src rows[i] (activations, or token ids).
  template <class T>
  void gather_rows(const T* src, const std::int32_t* rows, std::int64_t count, std::int64_t width, T* dst) const {
    for (std::int64_t i = 0; i < count; ++i) std::copy(src + rows[i] * width, src + (rows[i] + 1) * width, dst + i * width);
  }
  void swiglu(const float* gate, const float* up, std::int64_t n, float* out) const {
    cpu::swiglu(gate, up, n, out, level_);
  }
  // Zeroes the rows of x (batch, seq_len, width) at positions >= lengths[b].
  void zero_padding_rows(float* x, std::int64_t batch, std::int64_t seq_len, std::int64_t width,
                         const std::int32_t* lengths) const {
    for (std::int64_t b = 0; b < batch; ++b)
      std::fill(x + (b * seq_len + lengths[b]) * width, x + (b + 1) * seq_len * width, 0.0f);
  }

  // ---- decoding ----
  // logits (2 * rows, vocab): the first rows become the guided logits.
  void apply_guidance(float* logits, std::int64_t rows, std::int64_t vocab, float scale) const {
    const std::int64_t count = rows * vocab;
    for (std::int64_t i = 0; i < count; ++i) logits[i] = guided_logit(logits[i], logits[count + i], scale);
  }
  // out[i] = choose_token(logits row i, ...) for i < count (unmask/cpu/choose.hpp).
  template <class Processor = no_logits_processor>
  void choose_tokens(const float* logits, std::int64_t count, std::int64_t vocab, const sampling_settings& sampling,
                     confidence_metric metric, std::int32_t excluded, const counter_rng& rng,
                     const draw_site* sites, token_choice* out, const Processor& processor = {}) const {
    cpu::choose_tokens(logits, count, vocab, sampling, metric, excluded, rng, sites, out, level_, processor);
  }

  // ---- resident decoding (unmask/decode/resident_decoder.hpp) ----
  void resident_sites(const resident_sequence* seqs, std::int64_t n, std::int32_t block_length,
                      draw_site* sites) const {
    detail::resident_sites_host(seqs, n, block_length, sites);
  }
  // tokens[i], confidence[i] of logits row i, sites in backend memory.
  template <class Processor = no_logits_processor>
  void propose_tokens(const float* logits, std::int64_t count, std::int64_t vocab, const sampling_settings& sampling,
                      confidence_metric metric, std::int32_t excluded, const counter_rng& rng, const draw_site* sites,
                      std::int32_t* tokens, float* confidence, const Processor& processor = {}) const {
    thread_local std::vector<token_choice> choices;
    choices.resize(std::size_t(count));
    cpu::choose_tokens(logits, count, vocab, sampling, metric, excluded, rng, sites, choices.data(), level_,
                       processor);
    for (std::int64_t i = 0; i < count; ++i) {
      tokens[i] = choices[std::size_t(i)].token;
      confidence[i] = choices[std::size_t(i)].confidence;
    }
  }
  void resident_candidates(const resident_sequence* seqs, std::int64_t n, std::int32_t block_length,
                           std::int32_t steps, const std::int32_t* canvas, std::int32_t mask,
                           const std::int32_t* proposed, const float* confidence, std::int32_t* positions,
                           std::int32_t* tokens, float* confidences, selection_sequence* selection) const {
    detail::resident_candidates_host(seqs, n, block_length, steps, canvas, mask, proposed, confidence, positions,
                                     tokens, confidences, selection);
  }
  template <class Selection, class Schedule>
  void select_and_commit(const selection_sequence* selection, std::int64_t n, std::int32_t,
                         const std::int32_t* positions, const std::int32_t* tokens, const float* confidence,
                         const basic_selection_options<Selection, Schedule>& options, std::int32_t* canvas,
                         std::int32_t* committed) const {
    for (std::int64_t s = 0; s < n; ++s)
      committed[s] = commit_selection(selection[s], positions, tokens, confidence, options, canvas);
  }
  void resident_advance(resident_sequence* seqs, const selection_sequence* selection, const std::int32_t* committed,
                        std::int64_t n, std::int32_t* remaining) const {
    detail::resident_advance_host(seqs, selection, committed, n, remaining);
  }
  // Runs one step (the CUDA backend records it as a graph and replays it).
  template <class Step>
  void run_step(Step&& step, std::uint64_t, std::uint64_t) const {
    step();
  }

 private:
  cpu::isa_level level_;
  cpu::compute_mode mode_;
  std::shared_ptr<const cpu::packed_weights> packed_;
};

}  // namespace unmask
