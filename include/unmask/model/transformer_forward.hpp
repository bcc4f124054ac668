// unmask/model/transformer_forward.hpp
//
// The forward pass of the dense masked transformer
// (unmask/model/transformer_config.hpp), once, for any backend. For each of
// the n_layers blocks, on the residual stream x:
//   q, k, v = q_proj(n) + q_bias, k_proj(n) + k_bias, v_proj(n) + v_bias,   n = attn_norm(x)
//   q, k    = rope(q_norm(q)), rope(k_norm(k))     (the norms per head, over head_dim; Qwen3 / SDAR)
//   h       = x + o_proj(Attention(q, k, v))
//   x'      = h + down_proj(silu(gate_proj(m)) * up_proj(m)),              m = mlp_norm(h)
// then logits = head(final_norm(x)), with no logit or embedding scaling;
// biases and q/k norms only where the configuration has them (LLaDA:
// GSAI-ML/LLaDA modeling_llada.py, llama block; Dream and Fast-dLLM v2:
// transformers' Qwen2 blocks; SDAR: Qwen3 blocks). The logit at row i
// predicts the token at row i: for a model with shifted logits (Dream,
// Fast-dLLM v2) row i's logits are the head's output at row i-1 of the same
// sequence, and row 0's its own output (Dream's generation_utils.py:
// logits = cat([logits[:, :1], logits[:, :-1]]), applied to whatever slice of
// the canvas is fed, as Fast-dLLM's cached Dream decoding feeds it);
// `logit_rows::raw` asks for the head's outputs unshifted (next-token
// logits, for autoregressive decoding). A batch is a canvas of
// (batch, seq_len) token ids with per-sequence lengths: sequence b occupies
// positions [0, lengths[b]) and the rest is padding, invisible to attention and
// zero in the logits. Activations are the backend's `activation` type (fp32
// on the CPU, which reads weights in their file dtype; bf16 on the GPU, whose
// backend uploads the weights when the forward object is built); logits are
// fp32. Scratch memory is kept between calls and grows to the largest batch.
// When only some rows' logits are asked for, the last layer runs its
// attention output and MLP for those rows alone (every op after the K/V
// projections is per row, and the GEMMs give a row the same bits in any
// batch, so this is exact): the rows a decoding step does not read cost the
// last layer only their K/V.
// A call is two halves: stage() checks the batch and copies token ids,
// positions and extents to the backend, run_staged() does the device work,
// which reads only staged buffers, so it can be captured once as a CUDA graph
// and replayed after staging another batch of the same shape.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <vector>

#include "unmask/core/error.hpp"
#include "unmask/model/non_finite.hpp"
#include "unmask/model/attention_mask.hpp"
#include "unmask/core/step_key.hpp"
#include "unmask/model/kv_cache.hpp"
#include "unmask/model/transformer_model.hpp"

namespace unmask {

// Token ids on the host: (batch, seq_len) rows, sequence b's valid rows are
// [0, lengths[b]) at absolute positions offsets[b] + i. Offsets other than 0
// need a K/V cache holding the earlier positions; with a cache, sequence b
// reads and writes cache slot cache_slots[b], so finished sequences can leave
// the batch while the others keep their slots.
struct token_batch {
  const std::int32_t* tokens = nullptr;   // (batch, seq_len)
  std::int64_t batch = 1;
  std::int64_t seq_len = 0;
  const std::int32_t* lengths = nullptr;  // (batch); null: every sequence has seq_len rows
  const std::int32_t* offsets = nullptr;  // (batch); null: every sequence starts at position 0
  const std::int32_t* cache_slots = nullptr;  // (batch); the cache slot of each sequence; null: slot b
  const std::int32_t* kv_lengths = nullptr;   // (batch); keys to attend to; null: offset + length (all cached
                                              // positions up to the last row; a dual cache passes more)
  const std::int32_t* mask_origins = nullptr; // (batch); block-causal origin per sequence; null: 0
};

// Which rows get logits: `rows` indexes the flattened (batch * seq_len) rows;
// the output then has shape (count, vocab_size). Null: every row, in order.
// `raw`: the head's output at each row itself, also for a model with shifted
// logits (where it predicts the next token).
struct logit_rows {
  const std::int32_t* rows = nullptr;
  std::int64_t count = 0;
  bool raw = false;
};

template <class Backend>
class transformer_forward {
 public:
  template <class T>
  using buffer = typename Backend::template buffer<T>;
  using activation = typename Backend::activation;
  using cache_type = kv_cache<Backend>;

  // `model` must outlive the forward object.
  explicit transformer_forward(const transformer_model&&, Backend = {}) = delete;  // the model must outlive the forward
  explicit transformer_forward(const transformer_model& model, Backend backend = {})
      : model_(model), backend_(std::move(backend)) {
    const transformer_config& c = model.config();
    backend_.upload_weights(model);
    grow_rope_table(std::min<std::int64_t>(c.max_sequence_length, 1024));
  }

  const transformer_model& model() const { return model_; }
  Backend& backend() { return backend_; }

  // Logits in fp32 in the backend's memory: (batch, seq_len, vocab_size) with
  // padding rows zeroed, or (rows.count, vocab_size) when rows are selected.
  // With a cache, the rows' K/V are stored at their positions and attention
  // covers every cached key up to the row's position (subject to the mask).
  void operator()(const token_batch& in, attention_mask mask, float* logits, cache_type* cache = nullptr,
                  logit_rows selected = {}) {
    stage(in, cache, selected);
    run_staged(mask, logits, cache);
  }

  // Checks the batch and copies its inputs to the backend.
  void stage(const token_batch& in, cache_type* cache = nullptr, logit_rows selected = {}) {
    check(in, cache, selected);
    const std::uint64_t addresses = address_fingerprint();
    std::int64_t positions = 0;  // the rows reach positions [0, positions)
    for (std::int64_t b = 0; b < in.batch; ++b)
      positions = std::max(positions, (in.offsets ? in.offsets[b] : 0) + (in.lengths ? in.lengths[b] : in.seq_len));
    grow_rope_table(positions);
    // A shifted model reads each output row's logits from the row before it:
    // the last layer then runs on those source rows (every row, when all are asked for).
    const bool shift = model_.config().shifted_logits && !selected.raw;
    const bool all_rows = !selected.rows;
    if (shift) {
      const std::int64_t count = all_rows ? in.batch * in.seq_len : selected.count;
      host_source_rows_.resize(std::size_t(count));
      for (std::int64_t r = 0; r < count; ++r) {
        const std::int32_t row = all_rows ? std::int32_t(r) : selected.rows[r];
        host_source_rows_[std::size_t(r)] = row % in.seq_len == 0 ? row : row - 1;
      }
      selected = logit_rows{host_source_rows_.data(), count, true};
    }
    stage_inputs(in, cache != nullptr, selected);
    staged_ = {in.batch, in.seq_len, selected.rows ? selected.count : 0, cache, shift && all_rows};
    // Scratch grows here, never in run_staged (a captured graph keeps the addresses).
    const transformer_config& c = model_.config();
    const std::size_t rows = std::size_t(in.batch * in.seq_len), hd = std::size_t(c.head_dim);
    const std::size_t q_width = std::size_t(c.n_heads) * hd, kv_width = std::size_t(c.n_kv_heads) * hd;
    x_.reserve_at_least(rows * std::size_t(c.d_model));
    normed_.reserve_at_least(rows * std::size_t(c.d_model));
    q_.reserve_at_least(rows * q_width);
    k_.reserve_at_least(rows * kv_width);
    v_.reserve_at_least(rows * kv_width);
    attended_.reserve_at_least(rows * q_width);
    gate_.reserve_at_least(rows * std::size_t(c.mlp_hidden_size));
    up_.reserve_at_least(rows * std::size_t(c.mlp_hidden_size));
    if (selected.rows) {
      sel_q_.reserve_at_least(std::size_t(selected.count) * q_width);
      sel_x_.reserve_at_least(std::size_t(selected.count) * std::size_t(c.d_model));
    }
    if (address_fingerprint() != addresses) ++generation_;
  }

  // Changes whenever stage() moved a buffer that run_staged reads: a step
  // captured as a graph before then would read freed memory, so callers that
  // key captured steps (resident_decoder) put it in the key.
  std::uint64_t generation() const { return generation_; }

  // The staged token ids, (batch, seq_len) in the backend's memory: resident
  // decoding commits into them between run_staged calls.
  std::int32_t* staged_tokens() { return tokens_.data(); }

  // The forward pass over the staged batch (`cache` must be the one staged with).
  void run_staged(attention_mask mask, float* logits, cache_type* cache = nullptr) {
    if (staged_.seq_len == 0) throw argument_error("forward: run_staged before stage");
    if (cache != staged_.cache) throw argument_error("forward: run_staged with another cache than was staged");
    last_mask_ = mask;
    const transformer_config& c = model_.config();
    const transformer_weights& w = model_.weights();
    token_batch in;
    in.batch = staged_.batch;
    in.seq_len = staged_.seq_len;
    const logit_rows selected{staged_.selected ? selected_.data() : nullptr, staged_.selected};
    const std::int64_t rows = in.batch * in.seq_len, d = c.d_model, hd = c.head_dim;
    const std::int64_t q_width = c.n_heads * hd, kv_width = c.n_kv_heads * hd, hidden = c.mlp_hidden_size;

    const float eps = float(c.rms_norm_eps);
    attention_shape shape;
    shape.batch = in.batch;
    shape.q_len = in.seq_len;
    shape.kv_capacity = cache ? cache->capacity() : in.seq_len;
    shape.heads = c.n_heads;
    shape.kv_heads = c.n_kv_heads;
    shape.head_dim = hd;
    const attention_extents extents{offsets_.data(), lengths_.data(), kv_lengths_.data(),
                                    cache ? slots_.data() : nullptr, origins_.data()};

    // The last layer for the selected rows alone: each is a one-query
    // "sequence" reading its own sequence's keys.
    attention_shape sel_shape = shape;
    sel_shape.batch = selected.count;
    sel_shape.q_len = 1;
    const attention_extents sel_extents{sel_offsets_.data(), sel_lengths_.data(), sel_kv_lengths_.data(),
                                        sel_slots_.data(), sel_origins_.data()};

    backend_.embedding(tokens_.data(), rows, w.embedding, x_.data());  // x (rows, d)
    for (std::size_t layer = 0; layer < w.layers.size(); ++layer) {
      const transformer_layer_weights& l = w.layers[layer];
      const bool compact = selected.rows && layer + 1 == w.layers.size();
      backend_.rmsnorm(x_.data(), rows, d, l.attn_norm, eps, normed_.data());
      {  // q (rows, heads, hd), k and v (rows, kv_heads, hd): one GEMM where the backend fuses them
        const tensor_ref* const w_qkv[3] = {&l.q_proj, &l.k_proj, &l.v_proj};
        const std::int64_t n_qkv[3] = {q_width, kv_width, kv_width};
        activation* const y_qkv[3] = {q_.data(), k_.data(), v_.data()};
        backend_.matmul_nt_group(normed_.data(), rows, w_qkv, n_qkv, y_qkv, 3);
      }
      if (c.qkv_bias) {
        backend_.add_bias(q_.data(), rows, q_width, l.q_bias);
        backend_.add_bias(k_.data(), rows, kv_width, l.k_bias);
        backend_.add_bias(v_.data(), rows, kv_width, l.v_bias);
      }
      if (c.qk_norm) {  // per head, in place: (rows * heads, hd)
        backend_.rmsnorm(q_.data(), rows * c.n_heads, hd, l.q_norm, eps, q_.data());
        backend_.rmsnorm(k_.data(), rows * c.n_kv_heads, hd, l.k_norm, eps, k_.data());
      }
      backend_.rope(q_.data(), rows, c.n_heads, hd, positions_.data(), rope_);
      backend_.rope(k_.data(), rows, c.n_kv_heads, hd, positions_.data(), rope_);
      const activation* keys = k_.data();
      const activation* values = v_.data();
      if (cache) {
        // (rows, kv_width) -> (batch, capacity, kv_width) at each row's position
        backend_.scatter_rows(k_.data(), in.batch, in.seq_len, kv_width, offsets_.data(), lengths_.data(),
                              slots_.data(), cache->capacity(), cache->keys(layer));
        backend_.scatter_rows(v_.data(), in.batch, in.seq_len, kv_width, offsets_.data(), lengths_.data(),
                              slots_.data(), cache->capacity(), cache->values(layer));
        keys = cache->keys(layer);
        values = cache->values(layer);
      }
      // From here on the rows are every row, or only the selected ones.
      std::int64_t n = rows;
      activation* x = x_.data();
      if (compact) {
        n = selected.count;
        backend_.gather_rows(q_.data(), selected_.data(), n, q_width, sel_q_.data());  // (count, heads, hd)
        backend_.gather_rows(x_.data(), selected_.data(), n, d, sel_x_.data());        // (count, d)
        x = sel_x_.data();
        backend_.attention(sel_q_.data(), keys, values, attended_.data(), sel_shape, sel_extents, mask);
      } else {
        backend_.attention(q_.data(), keys, values, attended_.data(), shape, extents, mask);
      }
      backend_.matmul_nt(attended_.data(), n, l.o_proj, d, x, true);  // x += o_proj(.)
      if (probing_) probe(x, n, compact, in.seq_len, layer, "attention");

      backend_.rmsnorm(x, n, d, l.mlp_norm, eps, normed_.data());
      {  // gate and up (n, hidden)
        const tensor_ref* const w_gate_up[2] = {&l.gate_proj, &l.up_proj};
        const std::int64_t n_gate_up[2] = {hidden, hidden};
        activation* const y_gate_up[2] = {gate_.data(), up_.data()};
        backend_.matmul_nt_group(normed_.data(), n, w_gate_up, n_gate_up, y_gate_up, 2);
      }
      backend_.swiglu(gate_.data(), up_.data(), n * hidden, gate_.data());
      backend_.matmul_nt(gate_.data(), n, l.down_proj, d, x, true);  // x += down_proj(.)
      if (probing_) probe(x, n, compact, in.seq_len, layer, "MLP");
    }
    if (probing_) return;
    if (selected.rows) {
      // Only the requested rows reach ln_f and the head: (count, d) -> (count, vocab)
      const activation* x = sel_x_.data();
      if (w.layers.empty()) {
        backend_.gather_rows(x_.data(), selected_.data(), selected.count, d, attended_.data());
        x = attended_.data();
      }
      backend_.rmsnorm(x, selected.count, d, w.final_norm, eps, normed_.data());
      backend_.matmul_nt(normed_.data(), selected.count, w.head, c.vocab_size, logits, false);
      if (staged_.zero_padding) backend_.zero_padding_rows(logits, in.batch, in.seq_len, c.vocab_size, lengths_.data());
      return;
    }
    backend_.rmsnorm(x_.data(), rows, d, w.final_norm, eps, normed_.data());
    backend_.matmul_nt(normed_.data(), rows, w.head, c.vocab_size, logits, false);  // (rows, vocab)
    backend_.zero_padding_rows(logits, in.batch, in.seq_len, c.vocab_size, lengths_.data());
  }

  // Where NaN or infinity first appears in the staged forward pass: the
  // first weight holding one, else the first layer (attention or MLP) whose
  // output is not finite, found by running the staged pass again with a
  // check after each; for numeric_error messages, never on the decoding path.
  std::string locate_non_finite() {
    const std::string weight = first_non_finite_weight(model_.weights());
    if (!weight.empty()) return weight;
    if (staged_.seq_len == 0) return "no weight holds a NaN or infinite value";
    probing_ = true;
    try {
      run_staged(last_mask_, nullptr, staged_.cache);
    } catch (const numeric_error& e) {
      probing_ = false;
      return e.what();
    }
    probing_ = false;
    return "no weight holds a NaN or infinite value and every layer's output is finite: the head's logits overflow fp32";
  }

  // f(), with the place non-finite values first appeared added to a numeric_error it throws.
  template <class F>
  auto locating_non_finite(F&& f) -> decltype(f()) {
    try {
      return f();
    } catch (const numeric_error& e) {
      throw numeric_error(concat(e.what(), "; ", locate_non_finite()));
    }
  }

 private:
  // With probing_: throws when a real row of x (n, d_model) is not finite.
  void probe(const activation* x, std::int64_t n, bool compact, std::int64_t seq_len, std::size_t layer,
             const char* part) {
    const std::int64_t d = model_.config().d_model;
    std::vector<activation> host(std::size_t(n * d));
    backend_.download(x, host.size(), host.data());
    for (std::int64_t r = 0; r < n; ++r) {
      if (!compact && !host_lengths_.empty() && r % seq_len >= host_lengths_[std::size_t(r / seq_len)]) continue;
      for (std::int64_t i = 0; i < d; ++i)
        if (!std::isfinite(to_float(host[std::size_t(r * d + i)])))
          throw numeric_error(concat("layer ", layer, ": the ", part, " output is not finite (row ", r, ", element ", i,
                                     "), though no weight holds a NaN or infinite value"));
    }
  }

  // The rotary table covers the positions used so far (doubling, up to
  // max_sequence_length), not the configuration's whole range: a model
  // trained for 2^20 positions costs nothing for the canvases it runs.
  void grow_rope_table(std::int64_t positions) {
    if (positions <= rope_positions_) return;
    const transformer_config& c = model_.config();
    const std::int64_t count = std::min(c.max_sequence_length, std::max(positions, 2 * rope_positions_));
    rope_ = backend_.make_rope_table(count, c.head_dim, float(c.rope_theta));
    rope_positions_ = count;
  }

  void check(const token_batch& in, const cache_type* cache, const logit_rows& selected) const {
    const transformer_config& c = model_.config();
    if (!in.tokens) throw argument_error("forward: token pointer is null");
    if (in.batch <= 0) throw argument_error(concat("forward: batch must be positive, got ", in.batch));
    if (in.seq_len <= 0) throw argument_error(concat("forward: seq_len must be positive, got ", in.seq_len));
    if (in.seq_len > c.max_sequence_length)
      throw argument_error(concat("forward: seq_len ", in.seq_len, " exceeds max_sequence_length ",
                                  c.max_sequence_length, " of ", model_.directory()));
    if (cache && !in.cache_slots && cache->batch() != in.batch)
      throw argument_error(concat("forward: cache holds ", cache->batch(), " sequences, the batch has ", in.batch));
    if (cache && in.cache_slots)
      for (std::int64_t b = 0; b < in.batch; ++b)
        if (in.cache_slots[b] < 0 || in.cache_slots[b] >= cache->batch())
          throw argument_error(concat("forward: cache slot ", in.cache_slots[b], " of sequence ", b,
                                      " is outside the cache's ", cache->batch(), " slots"));
    for (std::int64_t b = 0; b < in.batch; ++b) {
      const std::int64_t length = in.lengths ? in.lengths[b] : in.seq_len;
      const std::int64_t offset = in.offsets ? in.offsets[b] : 0;
      if (length < 1 || length > in.seq_len)
        throw argument_error(concat("forward: length ", length, " of sequence ", b, " is outside [1, ", in.seq_len, "]"));
      if (offset < 0 || (offset > 0 && !cache))
        throw argument_error(concat("forward: offset ", offset, " of sequence ", b, " needs a K/V cache"));
      if (in.kv_lengths && (!cache || in.kv_lengths[b] < offset + length || in.kv_lengths[b] > cache->capacity()))
        throw argument_error(concat("forward: kv_length ", in.kv_lengths[b], " of sequence ", b,
                                    " needs a cache and must cover the sequence's rows"));
      const std::int64_t limit = cache ? cache->capacity() : c.max_sequence_length;
      if (offset + length > limit)
        throw argument_error(concat("forward: sequence ", b, " reaches position ", offset + length, " beyond ",
                                    cache ? "the cache capacity " : "max_sequence_length ", limit));
      for (std::int64_t i = 0; i < length; ++i) {
        const std::int32_t t = in.tokens[b * in.seq_len + i];
        if (t < 0 || t >= c.vocab_size)
          throw argument_error(concat("forward: token id ", t, " at sequence ", b, ", position ", offset + i,
                                      " is outside the vocabulary [0, ", c.vocab_size, ")"));
      }
    }
    if (selected.rows) {
      if (selected.count <= 0) throw argument_error("forward: an empty logit row selection");
      for (std::int64_t r = 0; r < selected.count; ++r)
        if (selected.rows[r] < 0 || selected.rows[r] >= in.batch * in.seq_len)
          throw argument_error(concat("forward: logit row ", selected.rows[r], " is outside the batch's ",
                                      in.batch * in.seq_len, " rows"));
    }
  }

  // Token ids (padding replaced by 0), positions, extents and selected rows,
  // on the backend: packed into one host array and moved in one upload (one
  // host-to-device copy a forward on the GPU), each array starting on a
  // 16-byte boundary.
  void stage_inputs(const token_batch& in, bool cached, const logit_rows& selected) {
    const std::int64_t rows = in.batch * in.seq_len;
    host_tokens_.assign(std::size_t(rows), 0);
    host_positions_.resize(std::size_t(rows));
    host_lengths_.resize(std::size_t(in.batch));
    host_offsets_.resize(std::size_t(in.batch));
    host_kv_lengths_.resize(std::size_t(in.batch));
    host_slots_.resize(std::size_t(in.batch));
    host_origins_.resize(std::size_t(in.batch));
    for (std::int64_t b = 0; b < in.batch; ++b) {
      const std::int32_t length = in.lengths ? in.lengths[b] : std::int32_t(in.seq_len);
      const std::int32_t offset = in.offsets ? in.offsets[b] : 0;
      host_lengths_[std::size_t(b)] = length;
      host_offsets_[std::size_t(b)] = offset;
      host_kv_lengths_[std::size_t(b)] = in.kv_lengths ? in.kv_lengths[b] : (cached ? offset + length : length);
      host_origins_[std::size_t(b)] = in.mask_origins ? in.mask_origins[b] : 0;
      host_slots_[std::size_t(b)] = in.cache_slots ? in.cache_slots[b] : std::int32_t(b);
      for (std::int64_t i = 0; i < in.seq_len; ++i) {
        host_positions_[std::size_t(b * in.seq_len + i)] = std::int32_t(offset + std::min<std::int64_t>(i, length - 1));
        if (i < length) host_tokens_[std::size_t(b * in.seq_len + i)] = in.tokens[b * in.seq_len + i];
      }
    }
    const std::size_t count = selected.rows ? std::size_t(selected.count) : 0;
    host_selected_.assign(selected.rows, selected.rows + count);
    // Each selected row as a one-query sequence of its own: its position,
    // and its sequence's keys (cache slot, key count, block origin).
    host_sel_offsets_.resize(count);
    host_sel_lengths_.assign(count, 1);
    host_sel_kv_lengths_.resize(count);
    host_sel_slots_.resize(count);
    host_sel_origins_.resize(count);
    for (std::size_t r = 0; r < count; ++r) {
      const std::int32_t row = selected.rows[r];
      const std::size_t b = std::size_t(row / in.seq_len);
      host_sel_offsets_[r] = host_positions_[std::size_t(row)];
      host_sel_kv_lengths_[r] = host_kv_lengths_[b];
      host_sel_slots_[r] = cached ? host_slots_[b] : std::int32_t(b);
      host_sel_origins_[r] = host_origins_[b];
    }
    const std::vector<std::int32_t>* parts[] = {&host_tokens_,      &host_positions_,     &host_lengths_,
                                                &host_offsets_,     &host_kv_lengths_,    &host_slots_,
                                                &host_origins_,     &host_selected_,      &host_sel_offsets_,
                                                &host_sel_lengths_, &host_sel_kv_lengths_, &host_sel_slots_,
                                                &host_sel_origins_};
    staged_array* views[] = {&tokens_,  &positions_,   &lengths_,       &offsets_,    &kv_lengths_,
                             &slots_,   &origins_,     &selected_,      &sel_offsets_, &sel_lengths_,
                             &sel_kv_lengths_, &sel_slots_, &sel_origins_};
    std::size_t at[std::size(parts)], total = 0;
    for (std::size_t i = 0; i < std::size(parts); ++i) {
      at[i] = total;
      total += (parts[i]->size() + 3) / 4 * 4;  // 16-byte boundaries
    }
    host_packed_.assign(total, 0);
    for (std::size_t i = 0; i < std::size(parts); ++i)
      std::copy(parts[i]->begin(), parts[i]->end(), host_packed_.begin() + std::ptrdiff_t(at[i]));
    backend_.upload(host_packed_.data(), host_packed_.size(), packed_);
    for (std::size_t i = 0; i < std::size(parts); ++i) views[i]->at = packed_.data() + at[i];
  }

  const transformer_model& model_;
  Backend backend_;
  typename Backend::rope_table_type rope_;
  std::int64_t rope_positions_ = 0;  // positions rope_ covers
  attention_mask last_mask_ = attention_mask::full();
  bool probing_ = false;  // locate_non_finite's pass: check each layer's output, stop before the head
  std::vector<std::int32_t> host_source_rows_;
  std::vector<std::int32_t> host_tokens_, host_positions_, host_lengths_, host_offsets_, host_kv_lengths_, host_slots_,
      host_origins_, host_selected_, host_sel_offsets_, host_sel_lengths_, host_sel_kv_lengths_, host_sel_slots_,
      host_sel_origins_, host_packed_;
  // One staged array: a part of packed_.
  struct staged_array {
    std::int32_t* at = nullptr;
    std::int32_t* data() const { return at; }
  };
  buffer<std::int32_t> packed_;  // every staged array below, in one buffer
  staged_array tokens_, positions_, lengths_, offsets_, kv_lengths_, slots_, origins_, selected_;
  staged_array sel_offsets_, sel_lengths_, sel_kv_lengths_, sel_slots_, sel_origins_;
  buffer<activation> x_, normed_, q_, k_, v_, attended_, gate_, up_, sel_q_, sel_x_;
  std::uint64_t generation_ = 0;

  // The addresses run_staged reads (and the rope table's extent), hashed.
  std::uint64_t address_fingerprint() const {
    step_key key;
    for (const auto* b : {&tokens_, &positions_, &lengths_, &offsets_, &kv_lengths_, &slots_, &origins_, &selected_,
                          &sel_offsets_, &sel_lengths_, &sel_kv_lengths_, &sel_slots_, &sel_origins_})
      key.add(b->data());
    for (const auto* b : {&x_, &normed_, &q_, &k_, &v_, &attended_, &gate_, &up_, &sel_q_, &sel_x_}) key.add(b->data());
    return key.add(std::uint64_t(rope_positions_)).value;
  }
  struct staged_shape {
    std::int64_t batch = 0, seq_len = 0, selected = 0;
    cache_type* cache = nullptr;
    bool zero_padding = false;  // every row's logits through the selected path (shifted): zero the padding after
  } staged_;
};

}  // namespace unmask
