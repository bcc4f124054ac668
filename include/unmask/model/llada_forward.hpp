// unmask/model/llada_forward.hpp
//
// The LLaDA forward pass (GSAI-ML/LLaDA modeling_llada.py, llama block), once,
// for any backend. For each of the n_layers blocks, on the residual stream x:
//   h   = x + attn_out(Attention(rope(q_proj(n)), rope(k_proj(n)), v_proj(n))),  n = attn_norm(x)
//   x'  = h + ff_out(silu(ff_proj(m)) * up_proj(m)),                             m = ff_norm(h)
// then logits = head(ln_f(x)), with no logit or embedding scaling; the logit at
// position i predicts token i (no shift). A batch is a canvas of
// (batch, seq_len) token ids with per-sequence lengths: sequence b occupies
// positions [0, lengths[b]) and the rest is padding, invisible to attention and
// zero in the logits. Activations are fp32; weights are read in their file
// dtype. Scratch memory is kept between calls and grows to the largest batch.
#pragma once

#include <cstdint>
#include <vector>

#include "unmask/core/error.hpp"
#include "unmask/model/attention_mask.hpp"
#include "unmask/model/llada_model.hpp"

namespace unmask {

// A canvas of token ids on the host.
struct token_batch {
  const std::int32_t* tokens = nullptr;   // (batch, seq_len)
  std::int64_t batch = 1;
  std::int64_t seq_len = 0;
  const std::int32_t* lengths = nullptr;  // (batch); null: every sequence is seq_len long
};

template <class Backend>
class llada_forward {
 public:
  template <class T>
  using buffer = typename Backend::template buffer<T>;

  explicit llada_forward(const llada_model& model, Backend backend = {})
      : model_(model), backend_(std::move(backend)) {
    const llada_config& c = model.config();
    rope_ = backend_.make_rope_table(c.max_sequence_length, c.head_dim(), float(c.rope_theta));
  }

  const llada_model& model() const { return model_; }
  Backend& backend() { return backend_; }

  // logits (batch, seq_len, vocab_size), fp32, in the backend's memory.
  void operator()(const token_batch& in, attention_mask mask, float* logits) {
    const llada_config& c = model_.config();
    const llada_weights& w = model_.weights();
    check(in);
    const std::int64_t rows = in.batch * in.seq_len, d = c.d_model, hd = c.head_dim();
    const std::int64_t q_width = c.n_heads * hd, kv_width = c.n_kv_heads * hd, hidden = c.mlp_hidden_size;
    stage_inputs(in);
    x_.reserve_at_least(std::size_t(rows * d));
    normed_.reserve_at_least(std::size_t(rows * d));
    q_.reserve_at_least(std::size_t(rows * q_width));
    k_.reserve_at_least(std::size_t(rows * kv_width));
    v_.reserve_at_least(std::size_t(rows * kv_width));
    attended_.reserve_at_least(std::size_t(rows * q_width));
    gate_.reserve_at_least(std::size_t(rows * hidden));
    up_.reserve_at_least(std::size_t(rows * hidden));

    const float eps = float(c.rms_norm_eps);
    attention_shape shape;
    shape.batch = in.batch;
    shape.q_len = shape.kv_len = in.seq_len;
    shape.heads = c.n_heads;
    shape.kv_heads = c.n_kv_heads;
    shape.head_dim = hd;

    backend_.embedding(tokens_.data(), rows, w.wte, x_.data());  // x (rows, d)
    for (const llada_layer_weights& l : w.layers) {
      backend_.rmsnorm(x_.data(), rows, d, l.attn_norm, eps, normed_.data());
      backend_.matmul_nt(normed_.data(), rows, l.q_proj, q_width, q_.data(), false);  // (rows, heads, hd)
      backend_.matmul_nt(normed_.data(), rows, l.k_proj, kv_width, k_.data(), false);  // (rows, kv_heads, hd)
      backend_.matmul_nt(normed_.data(), rows, l.v_proj, kv_width, v_.data(), false);
      backend_.rope(q_.data(), rows, c.n_heads, hd, positions_.data(), rope_);
      backend_.rope(k_.data(), rows, c.n_kv_heads, hd, positions_.data(), rope_);
      backend_.attention(q_.data(), k_.data(), v_.data(), attended_.data(), shape, lengths_.data(), mask);
      backend_.matmul_nt(attended_.data(), rows, l.attn_out, d, x_.data(), true);  // x += attn_out(.)

      backend_.rmsnorm(x_.data(), rows, d, l.ff_norm, eps, normed_.data());
      backend_.matmul_nt(normed_.data(), rows, l.ff_proj, hidden, gate_.data(), false);  // (rows, hidden)
      backend_.matmul_nt(normed_.data(), rows, l.up_proj, hidden, up_.data(), false);
      backend_.swiglu(gate_.data(), up_.data(), rows * hidden, gate_.data());
      backend_.matmul_nt(gate_.data(), rows, l.ff_out, d, x_.data(), true);  // x += ff_out(.)
    }
    backend_.rmsnorm(x_.data(), rows, d, w.ln_f, eps, normed_.data());
    backend_.matmul_nt(normed_.data(), rows, w.head, c.vocab_size, logits, false);  // (rows, vocab)
    backend_.zero_padding_rows(logits, in.batch, in.seq_len, c.vocab_size, lengths_.data());
  }

 private:
  void check(const token_batch& in) const {
    const llada_config& c = model_.config();
    if (!in.tokens) throw argument_error("forward: token pointer is null");
    if (in.batch <= 0) throw argument_error(concat("forward: batch must be positive, got ", in.batch));
    if (in.seq_len <= 0) throw argument_error(concat("forward: seq_len must be positive, got ", in.seq_len));
    if (in.seq_len > c.max_sequence_length)
      throw argument_error(concat("forward: seq_len ", in.seq_len, " exceeds max_sequence_length ",
                                  c.max_sequence_length, " of ", model_.directory()));
    for (std::int64_t b = 0; b < in.batch; ++b) {
      const std::int64_t length = in.lengths ? in.lengths[b] : in.seq_len;
      if (length < 1 || length > in.seq_len)
        throw argument_error(concat("forward: length ", length, " of sequence ", b, " is outside [1, ", in.seq_len, "]"));
      for (std::int64_t i = 0; i < length; ++i) {
        const std::int32_t t = in.tokens[b * in.seq_len + i];
        if (t < 0 || t >= c.vocab_size)
          throw argument_error(concat("forward: token id ", t, " at sequence ", b, ", position ", i,
                                      " is outside the vocabulary [0, ", c.vocab_size, ")"));
      }
    }
  }

  // Token ids with padding replaced by 0, positions, and lengths, on the backend.
  void stage_inputs(const token_batch& in) {
    const std::int64_t rows = in.batch * in.seq_len;
    host_tokens_.assign(std::size_t(rows), 0);
    host_positions_.resize(std::size_t(rows));
    host_lengths_.resize(std::size_t(in.batch));
    for (std::int64_t b = 0; b < in.batch; ++b) {
      const std::int64_t length = in.lengths ? in.lengths[b] : in.seq_len;
      host_lengths_[std::size_t(b)] = std::int32_t(length);
      for (std::int64_t i = 0; i < in.seq_len; ++i) {
        host_positions_[std::size_t(b * in.seq_len + i)] = std::int32_t(i);
        if (i < length) host_tokens_[std::size_t(b * in.seq_len + i)] = in.tokens[b * in.seq_len + i];
      }
    }
    backend_.upload(host_tokens_.data(), host_tokens_.size(), tokens_);
    backend_.upload(host_positions_.data(), host_positions_.size(), positions_);
    backend_.upload(host_lengths_.data(), host_lengths_.size(), lengths_);
  }

  const llada_model& model_;
  Backend backend_;
  typename Backend::rope_table_type rope_;
  std::vector<std::int32_t> host_tokens_, host_positions_, host_lengths_;
  buffer<std::int32_t> tokens_, positions_, lengths_;
  buffer<float> x_, normed_, q_, k_, v_, attended_, gate_, up_;
};

}  // namespace unmask
