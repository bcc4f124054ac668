// unmask/cuda/backend.hpp
//
// The CUDA backend: the operations transformer_forward, diffusion_decoder and
// ar_decoder are written against (see unmask/cpu/backend.hpp), over GPU
// memory, so the model and both decode loops run on the GPU unchanged:
//   diffusion_decoder<cuda_backend> decoder(model, settings);
// Everything runs in order on one stream owned by the backend. Weights are
// uploaded once, when the forward object is built, and looked up by their
// host address afterwards; a weight whose file dtype is not the activation
// type is converted once on upload (LLaDA, Dream and the embedded models are
// stored in bf16 and used as stored by cuda_backend). Activations, the
// residual stream and K/V caches are `Activation` (bf16 by default; fp32 with
// cuda_backend_f32, which the end-to-end tests use to compare tokens with the
// CPU); every kernel accumulates in fp32, GEMMs go through cuBLASLt with fp32
// accumulation, attention runs on tensor cores for 16-bit activations
// (unmask/cuda/attention.hpp) and logits come out in fp32. Token choice runs the fused
// vocabulary pass on the device (Dream's top-k / top-p filters included), and
// only (token, confidence) per masked row crosses to the host, in one copy
// into pinned memory; resident decoding keeps even those on the device. A
// forward's inputs arrive packed in one upload (transformer_forward), sent
// from a pinned staging ring (unmask/cuda/pinned_staging.hpp), so a stepwise
// step makes three transfers: inputs, draw sites, choices.
// Every CUDA or cuBLAS failure throws device_error naming the operation;
// failed allocations throw device_memory_error with the size asked for.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "unmask/core/dtype.hpp"
#include "unmask/core/tensor_view.hpp"
#include "unmask/cuda/attention.hpp"
#include "unmask/cuda/bias.hpp"
#include "unmask/cuda/device_buffer.hpp"
#include "unmask/cuda/embedding.hpp"
#include "unmask/cuda/error.hpp"
#include "unmask/cuda/gemm.hpp"
#include "unmask/cuda/pinned_staging.hpp"
#include "unmask/cuda/guidance.hpp"
#include "unmask/cuda/resident_step.hpp"
#include "unmask/cuda/rmsnorm.hpp"
#include "unmask/cuda/rope.hpp"
#include "unmask/cuda/rows.hpp"
#include "unmask/cuda/selection.hpp"
#include "unmask/cuda/split_columns.hpp"
#include "unmask/cuda/step_graph.hpp"
#include "unmask/cuda/swiglu.hpp"
#include "unmask/cuda/vocab_pass.hpp"
#include "unmask/model/attention_mask.hpp"
#include "unmask/model/transformer_model.hpp"
#include "unmask/policy/sampling.hpp"

namespace unmask {

struct cuda_backend_options {
  int device = 0;
  bool synchronous = false;  // synchronise after every operation, so errors name the failing one
  std::size_t gemm_workspace_bytes = std::size_t(32) << 20;
  bool graphs = true;        // resident decoding replays each step as a CUDA graph
  bool graph_failure_throws = false;  // a failed capture throws rather than turning graphs off (graph_failure())
};

template <class Activation>
class cuda_backend_of {
 public:
  static_assert(cuda::is_element_v<Activation>, "activations are float, unmask::half or unmask::bfloat16");
  using activation = Activation;
  template <class T>
  using buffer = cuda::device_buffer<T>;
  using rope_table_type = float;  // theta: the kernel computes the angles

  static constexpr const char* name = "cuda";

  // Selects the device and creates the stream, the cuBLASLt handle and its
  // workspace; throws device_error when there is no usable device.
  cuda_backend_of() : cuda_backend_of(cuda_backend_options{}) {}
  explicit cuda_backend_of(cuda_backend_options options) : state_(std::make_shared<state>()) {
    state_->options = options;
    int count = 0;
    const cudaError_t found = cudaGetDeviceCount(&count);
    if (found != cudaSuccess || count == 0) {
      cudaGetLastError();
      throw device_error(concat("CUDA backend: no usable CUDA device (",
                                found == cudaSuccess ? "none found" : cudaGetErrorString(found), ")"),
                         int(found == cudaSuccess ? cudaErrorNoDevice : found));
    }
    if (options.device < 0 || options.device >= count)
      throw argument_error(concat("CUDA backend: device ", options.device, " does not exist (", count, " found)"));
    cuda::check(cudaSetDevice(options.device), concat("cudaSetDevice(", options.device, ")"));
    cuda::check(cudaStreamCreateWithFlags(&state_->stream, cudaStreamNonBlocking), "creating the stream");
    cuda::check(state_->gemm.create(options.gemm_workspace_bytes), "creating the cuBLASLt handle and workspace");
  }

  cudaStream_t stream() const { return state_->stream; }
  void synchronize() const { cuda::check(cudaStreamSynchronize(state_->stream), "synchronising the stream"); }
  // Bytes of weights held on the device.
  std::size_t weight_bytes() const { return state_->weight_bytes; }

  // Host -> device on the stream (dst grows when needed, keeping its address
  // otherwise); src may change as soon as this returns. Up to
  // pinned_upload_bytes go through the pinned staging ring (one DMA the host
  // does not wait for), larger ones and any made while a step is captured
  // from the pageable source.
  template <class T>
  void upload(const T* src, std::size_t count, buffer<T>& dst) const {
    dst.reserve_at_least(count);
    if (count == 0) return;
    const std::size_t bytes = count * sizeof(T);
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    cuda::check(cudaStreamIsCapturing(state_->stream, &capture), "upload (capture status)");
    if (bytes <= pinned_upload_bytes && capture == cudaStreamCaptureStatusNone) {
      after(state_->upload_ring.copy_to_device(dst.data(), src, bytes, state_->stream), "upload (pinned)");
      return;
    }
    after(cudaMemcpyAsync(dst.data(), src, bytes, cudaMemcpyHostToDevice, state_->stream), "upload");
  }
  static constexpr std::size_t pinned_upload_bytes = std::size_t(4) << 20;
  // Device -> host; waits for the copy (and for everything queued before it).
  template <class T>
  void download(const T* src, std::size_t count, T* dst) const {
    if (count == 0) return;
    cuda::check(cudaMemcpyAsync(dst, src, count * sizeof(T), cudaMemcpyDeviceToHost, state_->stream), "download");
    synchronize();
  }

  // Uploads every weight tensor once (a tied head shares the embedding's copy).
  void upload_weights(const transformer_model& model) { upload_weights(model.weights()); }
  // Q, K and V of a layer, and its gate and up, side by side (matmul_nt_group).
  void upload_weights(const transformer_weights& w) {
    for (const tensor_ref* t : {&w.embedding, &w.final_norm, &w.head})
      if (t->data) upload_weight_group({t});
    for (const transformer_layer_weights& l : w.layers) {
      upload_weight_group({&l.q_proj, &l.k_proj, &l.v_proj});
      upload_weight_group({&l.gate_proj, &l.up_proj});
      for (const tensor_ref* t : l.all())
        if (t->data) upload_weight_group({t});
    }
    synchronize();
  }

  rope_table_type make_rope_table(std::int64_t, std::int64_t, float theta) const { return theta; }

  void embedding(const std::int32_t* tokens, std::int64_t rows, const tensor_ref& wte, Activation* out) const {
    after(cuda::embedding(tokens, rows, weight(wte), wte.shape[0], wte.shape[1], out, state_->stream),
          "embedding");
  }
  void rmsnorm(const Activation* x, std::int64_t rows, std::int64_t dim, const tensor_ref& w, float eps,
               Activation* out) const {
    after(cuda::rmsnorm(x, weight(w), rows, dim, eps, out, state_->stream), concat("rmsnorm ", w.name));
  }
  // y (rows, n) = x (rows, k) w^T (+ y); Y is Activation, or float for logits.
  template <class Y>
  void matmul_nt(const Activation* x, std::int64_t rows, const tensor_ref& w, std::int64_t n, Y* y,
                 bool accumulate) const {
    after(state_->gemm.matmul_nt(x, rows, w.shape[1], weight(w), n, y, accumulate, state_->stream),
          concat("GEMM ", w.name, " (", rows, " x ", w.shape[1], " -> ", n, ")"));
  }
  // y (rows, n) += bias (n).
  void add_bias(Activation* y, std::int64_t rows, std::int64_t n, const tensor_ref& bias) const {
    after(cuda::add_bias(y, weight(bias), rows, n, state_->stream), concat("bias ", bias.name));
  }
  // y[i] (rows, n[i]) = x w[i]^T for i < count (the projections that read
  // one input). Up to fused_group_rows rows (decoding: the weight-streaming
  // regime), weights uploaded side by side are one (sum n, k) GEMM whose
  // output is split into the y[i]; more rows run one GEMM each.
  void matmul_nt_group(const Activation* x, std::int64_t rows, const tensor_ref* const* w, const std::int64_t* n,
                       Activation* const* y, int count) const {
    const std::int64_t k = count > 0 ? w[0]->shape[1] : 0;
    bool fused = count > 1 && count <= cuda::max_column_parts && rows > 0 && rows <= fused_group_rows;
    std::int64_t total = 0;
    for (int i = 0; i < count && fused; ++i) {
      fused = w[i]->shape[1] == k && w[i]->shape[0] == n[i] && weight(*w[i]) == weight(*w[0]) + total * k;
      total += n[i];
    }
    if (!fused) {
      for (int i = 0; i < count; ++i) matmul_nt(x, rows, *w[i], n[i], y[i], false);
      return;
    }
    state& s = *state_;
    reserve_step_buffer(s.group_out, std::size_t(fused_group_rows * total));
    after(s.gemm.matmul_nt(x, rows, k, weight(*w[0]), total, s.group_out.data(), false, s.stream),
          concat("fused GEMM ", w[0]->name, " + ", count - 1, " (", rows, " x ", k, " -> ", total, ")"));
    cuda::column_parts<Activation> parts;
    parts.count = count;
    for (int i = 0; i < count; ++i) parts.out[i] = y[i], parts.widths[i] = n[i];
    after(cuda::split_columns(static_cast<const Activation*>(s.group_out.data()), rows, parts, s.stream),
          "splitting the fused GEMM's columns");
  }
  static constexpr std::int64_t fused_group_rows = 64;
  void rope(Activation* x, std::int64_t rows, std::int64_t heads, std::int64_t head_dim,
            const std::int32_t* positions, rope_table_type theta) const {
    after(cuda::rope(x, rows, heads, head_dim, positions, theta, state_->stream), "rope");
  }
  void attention(const Activation* q, const Activation* k, const Activation* v, Activation* out,
                 const attention_shape& s, const attention_extents& e, attention_mask mask) const {
    // The key splits of few-query calls need a workspace; growing it moves
    // it, so the captured step graphs (which would read the old address) are dropped.
    buffer<unsigned char>& workspace = state_->attention_workspace;
    const std::size_t bytes = cuda::attention_workspace_bytes<Activation>(s);
    reserve_step_buffer(workspace, bytes);
    after(cuda::attention(q, k, v, out, s, e, mask, workspace.data(), workspace.size(), state_->stream),
          concat("attention (", to_string(mask.kind), ", batch ", s.batch, ", ", s.q_len, " queries, ",
                 s.kv_capacity, " keys)"));
  }
  template <class T>
  void scatter_rows(const T* src, std::int64_t batch, std::int64_t seq_len, std::int64_t width,
                    const std::int32_t* offsets, const std::int32_t* lengths, const std::int32_t* slots,
                    std::int64_t capacity, T* dst) const {
    after(cuda::scatter_rows(src, batch, seq_len, width, offsets, lengths, slots, capacity, dst, state_->stream),
          "K/V cache write");
  }
  template <class T>
  void gather_rows(const T* src, const std::int32_t* rows, std::int64_t count, std::int64_t width, T* dst) const {
    after(cuda::gather_rows(src, rows, count, width, dst, state_->stream), "row gather");
  }
  void swiglu(const Activation* gate, const Activation* up, std::int64_t n, Activation* out) const {
    after(cuda::swiglu(gate, up, n, out, state_->stream), "swiglu");
  }
  void zero_padding_rows(float* x, std::int64_t batch, std::int64_t seq_len, std::int64_t width,
                         const std::int32_t* lengths) const {
    after(cuda::zero_padding_rows(x, batch, seq_len, width, lengths, state_->stream), "zeroing padding rows");
  }

  // ---- decoding ----
  // logits (2 * rows, vocab): the first rows become the guided logits.
  void apply_guidance(float* logits, std::int64_t rows, std::int64_t vocab, float scale) const {
    after(cuda::apply_guidance(logits, rows * vocab, scale, state_->stream), "classifier-free guidance");
  }
  // out[i] = choose_token(logits row i, ...) for i < count; sites on the host.
  template <class Processor = no_logits_processor>
  void choose_tokens(const float* logits, std::int64_t count, std::int64_t vocab, const sampling_settings& sampling,
                     confidence_metric metric, std::int32_t excluded, const counter_rng& rng,
                     const draw_site* sites, token_choice* out, const Processor& processor = {}) const {
    if (count <= 0) return;
    state& s = *state_;
    identity_rows(count, s.rows);
    upload(sites, std::size_t(count), s.sites);
    // Tokens and confidences side by side in one device buffer: one copy back to pinned memory.
    const std::size_t half = std::size_t(count) * sizeof(std::int32_t);
    s.choices.reserve_at_least(2 * half);
    std::int32_t* tokens = reinterpret_cast<std::int32_t*>(s.choices.data());
    float* confidence = reinterpret_cast<float*>(s.choices.data() + half);
    s.workspace.reserve_at_least(cuda::vocab_pass_workspace_bytes(count, vocab, cuda::vocab_pass_variant::automatic,
                                                                  cuda::vocab_pass_filters(sampling)));
    cuda::vocab_pass_options options;
    options.sampling = sampling;
    options.metric = metric;
    options.excluded_token = excluded;
    options.rng = rng;
    after(cuda::vocab_pass(logits, count, vocab, s.rows.data(), std::int32_t(count), s.sites.data(), options,
                           tokens, confidence, s.workspace.data(), s.workspace.size(), state_->stream, processor),
          concat("vocabulary pass (", count, " rows of ", vocab, ")"));
    s.host_choices.reserve_at_least(2 * half, "the chosen tokens");
    cuda::check(cudaMemcpyAsync(s.host_choices.data(), s.choices.data(), 2 * half, cudaMemcpyDeviceToHost,
                                state_->stream),
                "download of chosen tokens");
    synchronize();
    const std::int32_t* host_tokens = static_cast<const std::int32_t*>(s.host_choices.data());
    const float* host_confidence = reinterpret_cast<const float*>(static_cast<const unsigned char*>(s.host_choices.data()) + half);
    for (std::int64_t i = 0; i < count; ++i) {
      out[i] = {host_tokens[i], host_confidence[i]};
      if (out[i].token < 0)
        throw device_error(concat("vocabulary pass: row ", i, " has no token to choose (no finite logit, or the ",
                                  "filters kept only the excluded token)"),
                           int(cudaErrorInvalidValue));
    }
  }

  // ---- resident decoding (unmask/decode/resident_decoder.hpp): every operand in device memory ----
  void resident_sites(const resident_sequence* seqs, std::int64_t n, std::int32_t block_length,
                      draw_site* sites) const {
    after(cuda::resident_sites(seqs, n, block_length, sites, state_->stream), "resident draw sites");
  }
  template <class Processor = no_logits_processor>
  void propose_tokens(const float* logits, std::int64_t count, std::int64_t vocab, const sampling_settings& sampling,
                      confidence_metric metric, std::int32_t excluded, const counter_rng& rng, const draw_site* sites,
                      std::int32_t* tokens, float* confidence, const Processor& processor = {}) const {
    state& s = *state_;
    identity_rows(count, s.identity);
    s.resident_workspace.reserve_at_least(cuda::vocab_pass_workspace_bytes(
        count, vocab, cuda::vocab_pass_variant::automatic, cuda::vocab_pass_filters(sampling)));
    cuda::vocab_pass_options options;
    options.sampling = sampling;
    options.metric = metric;
    options.excluded_token = excluded;
    options.rng = rng;
    after(cuda::vocab_pass(logits, count, vocab, s.identity.data(), std::int32_t(count), sites, options, tokens,
                           confidence, s.resident_workspace.data(), s.resident_workspace.size(), state_->stream,
                           processor),
          concat("vocabulary pass (", count, " rows of ", vocab, ")"));
  }
  void resident_candidates(const resident_sequence* seqs, std::int64_t n, std::int32_t block_length,
                           std::int32_t steps, const std::int32_t* canvas, std::int32_t mask,
                           const std::int32_t* proposed, const float* confidence, std::int32_t* positions,
                           std::int32_t* tokens, float* confidences, selection_sequence* selection) const {
    after(cuda::resident_candidates(seqs, n, block_length, steps, canvas, mask, proposed, confidence, positions, tokens,
                                    confidences, selection, state_->stream),
          "resident candidates");
  }
  template <class Selection, class Schedule>
  void select_and_commit(const selection_sequence* selection, std::int64_t n, std::int32_t max_candidates,
                         const std::int32_t* positions, const std::int32_t* tokens, const float* confidence,
                         const basic_selection_options<Selection, Schedule>& options, std::int32_t* canvas,
                         std::int32_t* committed) const {
    after(cuda::select_and_commit(selection, std::int32_t(n), max_candidates, positions, tokens, confidence, options,
                                  canvas, committed, state_->stream),
          concat("selection (", n, " sequences, up to ", max_candidates, " candidates)"));
  }
  void resident_advance(resident_sequence* seqs, const selection_sequence* selection, const std::int32_t* committed,
                        std::int64_t n, std::int32_t* remaining) const {
    after(cuda::resident_advance(seqs, selection, committed, n, remaining, state_->stream), "resident advance");
  }
  // Runs one step: eagerly the first time a (owner, shape) pair is seen,
  // which builds GEMM plans and loads the kernels; captured as a CUDA graph
  // the second time and replayed from then on (options.graphs off: always
  // eager). `owner` (a number unique to the calling object) and `shape`
  // identify the buffers and sizes the step uses: a graph replays only for
  // the same pair, so a caller keys every address its step reads into
  // `shape`. The last few pairs keep their graphs (a cached block alternates
  // two kinds of step); older ones are dropped. A capture that
  // fails (an operation that cannot be captured) turns graphs off for this
  // backend and runs the step eagerly instead; graph_failure() then says
  // why (the program prints it as a warning), and
  // cuda_backend_options::graph_failure_throws makes it an error instead.
  template <class Step>
  void run_step(Step&& step, std::uint64_t owner, std::uint64_t shape) const {
    state& s = *state_;
    if (!s.options.graphs || s.options.synchronous || !s.graph_failure.empty()) return step();
    auto found = std::find_if(s.graphs.begin(), s.graphs.end(),
                              [&](const captured_step& g) { return g.owner == owner && g.shape == shape; });
    if (found == s.graphs.end()) {
      if (s.graphs.size() >= kept_graphs) s.graphs.erase(s.graphs.begin());  // the least recently used
      s.graphs.push_back({owner, shape, 0, nullptr});
      found = s.graphs.end() - 1;
    } else {
      std::rotate(found, found + 1, s.graphs.end());  // now the most recently used
      found = s.graphs.end() - 1;
    }
    if (found->seen++ == 0) return step();
    if (!found->graph) {
      auto graph = std::make_unique<cuda::step_graph>(s.stream);
      try {
        graph->capture(step);
      } catch (const device_error& e) {
        if (s.options.graph_failure_throws) throw;
        s.graph_failure = e.what();  // (never empty: it names the failing call)
        s.graphs.clear();
        return step();
      }
      // (Refound: a step that grew the attention workspace while captured would have cleared the list.)
      found = std::find_if(s.graphs.begin(), s.graphs.end(),
                           [&](const captured_step& g) { return g.owner == owner && g.shape == shape; });
      if (found == s.graphs.end()) {
        s.graphs.push_back({owner, shape, 2, nullptr});
        found = s.graphs.end() - 1;
      }
      found->graph = std::move(graph);
    }
    found->graph->replay();
  }
  // Kernels and copies in the most recently used captured step graph (0 before a capture).
  std::size_t step_graph_nodes() const {
    const auto& graphs = state_->graphs;
    return !graphs.empty() && graphs.back().graph ? graphs.back().graph->nodes() : 0;
  }
  // Captured step graphs kept (at most kept_graphs).
  std::size_t step_graphs() const {
    std::size_t count = 0;
    for (const captured_step& g : state_->graphs) count += g.graph != nullptr;
    return count;
  }
  static constexpr std::size_t kept_graphs = 4;
  // Why step graphs were turned off (the failed capture's error), or empty.
  const std::string& graph_failure() const { return state_->graph_failure; }

 private:
  struct captured_step {
    std::uint64_t owner;
    std::uint64_t shape;
    int seen;
    std::unique_ptr<cuda::step_graph> graph;
  };
  struct state {
    cuda_backend_options options;
    cudaStream_t stream = nullptr;
    cuda::gemm_engine gemm;
    std::vector<buffer<Activation>> weight_storage;               // one allocation per tensor or group
    std::unordered_map<const void*, const Activation*> weights;  // host tensor -> its device copy
    std::size_t weight_bytes = 0;
    buffer<Activation> group_out;  // matmul_nt_group's fused product before the split
    buffer<std::int32_t> rows;
    buffer<draw_site> sites;
    buffer<unsigned char> choices;  // the stepwise vocabulary pass's tokens, then its confidences
    buffer<unsigned char> workspace;
    cuda::pinned_ring upload_ring;  // per-step inputs
    cuda::pinned_buffer host_choices;
    buffer<std::int32_t> identity;
    buffer<unsigned char> resident_workspace;
    buffer<unsigned char> attention_workspace;  // key splits of few-query attention
    std::vector<captured_step> graphs;  // least recently used first
    std::string graph_failure;  // non-empty: graphs are off (run_step)

    state() = default;
    state(const state&) = delete;
    state& operator=(const state&) = delete;
    ~state() {
      graphs.clear();
      weights.clear();
      weight_storage.clear();  // device memory first, then the stream
      group_out = buffer<Activation>();
      if (stream) cudaStreamDestroy(stream);
    }
  };

  // rows holds 0 .. count - 1 (on the stream, ordered before the pass that
  // reads it); it is rewritten only when it grows. The stepwise and the
  // resident loop keep separate lists: growing one must not move the
  // addresses a captured step graph reads.
  void identity_rows(std::int64_t count, buffer<std::int32_t>& rows) const {
    if (std::int64_t(rows.size()) >= count) return;
    std::vector<std::int32_t> host(static_cast<std::size_t>(count));
    for (std::int64_t i = 0; i < count; ++i) host[std::size_t(i)] = std::int32_t(i);
    upload(host.data(), host.size(), rows);
  }

  // Checks a launch; in synchronous mode also waits for it, so a failing
  // kernel is reported under its own name.
  template <class Status>
  void after(Status status, const std::string& operation) const {
    cuda::check(status, operation);
    if (state_->options.synchronous) cuda::check(cudaStreamSynchronize(state_->stream), operation);
  }

  // Uploads tensors side by side in one device allocation (a group: Q, K,
  // V; gate, up), each converted to Activation where its dtype differs, so
  // that matmul_nt_group can multiply them as one (sum n, k) weight. A
  // tensor already on the device (shared) or absent leaves the group to be
  // uploaded one by one.
  void upload_weight_group(std::initializer_list<const tensor_ref*> group) {
    bool whole = group.size() > 1;
    for (const tensor_ref* t : group)
      whole = whole && t->data && !state_->weights.count(t->data) && t->shape.rank == 2 &&
              t->shape[1] == (*group.begin())->shape[1];
    if (!whole) {
      for (const tensor_ref* t : group)
        if (t->data) upload_side_by_side({t});
      return;
    }
    upload_side_by_side(group);
  }
  // Each tensor starts on a 16-byte boundary (the GEMMs' alignment), so a
  // group whose sizes are not multiples of 8 elements is not contiguous and
  // matmul_nt_group multiplies its members one by one.
  void upload_side_by_side(std::initializer_list<const tensor_ref*> group) {
    constexpr std::size_t align = 16 / sizeof(Activation);
    std::size_t total = 0;
    for (const tensor_ref* t : group) total += (std::size_t(t->shape.numel()) + align - 1) / align * align;
    const tensor_ref& first = **group.begin();
    if (state_->weights.count(first.data)) return;  // (one shared tensor, uploaded before)
    buffer<Activation> device(total, concat("weight ", first.name, group.size() > 1 ? " and the rest of its group" : ""));
    std::size_t at = 0;
    for (const tensor_ref* t : group) {
      const std::size_t n = std::size_t(t->shape.numel());
      const void* source = t->data;
      std::vector<Activation> converted;
      if (t->type != dtype_of<Activation>::value) {
        if (t->type != dtype::bf16 && t->type != dtype::f16 && t->type != dtype::f32)
          throw checkpoint_error(concat("CUDA backend: weight '", t->name, "' has dtype ", dtype_name(t->type),
                                        "; expected bf16, f16 or f32"));
        converted.resize(n);
        for (std::size_t i = 0; i < n; ++i)
          converted[i] = cuda::from_float<Activation>(load_as_float(t->data, t->type, i));
        source = converted.data();
      }
      // On the backend's stream (a non-blocking stream does not wait for the legacy one).
      cuda::check(cudaMemcpyAsync(device.data() + at, source, n * sizeof(Activation), cudaMemcpyHostToDevice,
                                  state_->stream),
                  concat("uploading weight ", t->name));
      if (!converted.empty()) synchronize();  // `converted` is freed at the end of the iteration
      state_->weights.emplace(t->data, device.data() + at);
      at += (n + align - 1) / align * align;
    }
    state_->weight_bytes += total * sizeof(Activation);
    state_->weight_storage.push_back(std::move(device));
  }

  const Activation* weight(const tensor_ref& t) const {
    const auto found = state_->weights.find(t.data);
    if (found == state_->weights.end())
      throw argument_error(concat("CUDA backend: weight '", t.name, "' was not uploaded (call upload_weights first)"));
    return found->second;
  }

  // Reserves a buffer a step reads or writes; moving it drops the captured
  // step graphs, which would use the old address.
  template <class T>
  void reserve_step_buffer(buffer<T>& b, std::size_t count) const {
    if (count <= b.size()) return;
    b.reserve_at_least(count);
    state_->graphs.clear();
  }

  std::shared_ptr<state> state_;
};

using cuda_backend = cuda_backend_of<bfloat16>;
using cuda_backend_f32 = cuda_backend_of<float>;

}  // namespace unmask
