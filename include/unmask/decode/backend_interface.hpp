// unmask/decode/backend_interface.hpp
//
// What a backend provides: the operations the forward pass
// (unmask/model/transformer_forward.hpp) and the decoders are written against,
// which cpu_backend (unmask/cpu/backend.hpp) and cuda_backend
// (unmask/cuda/backend.hpp) implement over host and device memory. A is the
// backend's activation type; every pointer is in the backend's memory unless
// it says host. Shapes follow the row-major convention of the kernels:
//   types     activation; buffer<T> (data(), size(), reserve_at_least(n));
//             rope_table_type
//   memory    upload(host src, n, buffer<T>&); download(src, n, host dst);
//             upload_weights(const transformer_model&): once, before any forward
//   forward   embedding(tokens, rows, embedding, A* out (rows, d))
//             rmsnorm(x, rows, dim, weight, eps, out)
//             matmul_nt(x (rows, k), rows, w (n, k), n, y (rows, n), accumulate), y A* or float*
//             matmul_nt_group(x, rows, w[count], n[count], y[count], count)
//             add_bias(y (rows, n), rows, n, bias (n))   (y += bias per row)
//             rope(x (rows, heads, head_dim), rows, heads, head_dim, positions, table)
//             make_rope_table(positions, head_dim, theta)
//             attention(q, k, v, out, attention_shape, attention_extents, attention_mask)
//             scatter_rows / gather_rows (K/V cache and selected rows), swiglu,
//             zero_padding_rows (logits rows past each sequence's length)
//   decoding  apply_guidance(logits (2 rows, vocab), rows, vocab, scale)
//             choose_tokens(logits, count, vocab, sampling, metric, excluded,
//                           rng, host sites, host token_choice out
//                           [, const Processor& logits processor])
//   resident  resident_sites, propose_tokens, resident_candidates,
//             select_and_commit (a template over the decoding policy's
//             types), resident_advance, gather_rows of token ids,
//             run_step(step, owner, shape)
//             (unmask/decode/resident_state.hpp has their meaning)
// The logits processor argument (unmask/policy/logits_processor.hpp; with a
// confidence metric of one's own, token_rules, unmask/policy/token_rules.hpp)
// of choose_tokens and propose_tokens is optional: a backend without it
// decodes until a policy's processor is active or its metric is not the
// built-in one, which is then an error naming it.
// The checks below name the first member a type lacks, in a static_assert
// (check_forward_backend, check_decoding_backend, check_resident_backend)
// and at run time (missing_backend_member, for tests). The documented way to
// try a kernel of one's own is to derive from cpu_backend or cuda_backend
// and hide the member (docs/extending.md, examples/counting_backend.cpp):
// the decoders call the derived type's member, everything else stays.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "unmask/decode/resident_state.hpp"
#include "unmask/io/checkpoint.hpp"
#include "unmask/model/attention_mask.hpp"
#include "unmask/model/transformer_model.hpp"
#include "unmask/core/error.hpp"
#include "unmask/policy/commit.hpp"
#include "unmask/policy/logits_processor.hpp"
#include "unmask/policy/token_rules.hpp"
#include "unmask/policy/sampling.hpp"

namespace unmask {

namespace detail::backend_traits {

template <class B>
using act = typename B::activation;
template <class B, class T>
using buf = typename B::template buffer<T>;
template <class T>
T& ref();
template <class T>
T* ptr();

#define UNMASK_BACKEND_TRAIT(trait, ...)                                                       \
  template <class B, class = void>                                                             \
  struct trait : std::false_type {};                                                           \
  template <class B>                                                                           \
  struct trait<B, std::void_t<decltype(__VA_ARGS__)>> : std::true_type {}

using i32 = std::int32_t;
using i64 = std::int64_t;

UNMASK_BACKEND_TRAIT(has_activation, std::declval<act<B>*>());
UNMASK_BACKEND_TRAIT(has_buffer, ptr<act<B>>() == ref<buf<B, act<B>>>().data(), ref<buf<B, float>>().size(),
                     ref<buf<B, i32>>().reserve_at_least(std::size_t(1)));
UNMASK_BACKEND_TRAIT(has_rope_table, std::declval<typename B::rope_table_type>());
UNMASK_BACKEND_TRAIT(has_upload_weights, ref<B>().upload_weights(ref<const transformer_model>()));
UNMASK_BACKEND_TRAIT(has_upload, ref<B>().upload(ptr<const i32>(), std::size_t(1), ref<buf<B, i32>>()));
UNMASK_BACKEND_TRAIT(has_download, ref<B>().download(ptr<const float>(), std::size_t(1), ptr<float>()));
UNMASK_BACKEND_TRAIT(has_make_rope_table,
                     ref<typename B::rope_table_type>() = ref<B>().make_rope_table(i64(1), i64(1), 1.0f));
UNMASK_BACKEND_TRAIT(has_embedding, ref<B>().embedding(ptr<const i32>(), i64(1), ref<const tensor_ref>(), ptr<act<B>>()));
UNMASK_BACKEND_TRAIT(has_rmsnorm, ref<B>().rmsnorm(ptr<const act<B>>(), i64(1), i64(1), ref<const tensor_ref>(), 1.0f,
                                                   ptr<act<B>>()));
UNMASK_BACKEND_TRAIT(has_matmul_nt,
                     ref<B>().matmul_nt(ptr<const act<B>>(), i64(1), ref<const tensor_ref>(), i64(1), ptr<act<B>>(), true),
                     ref<B>().matmul_nt(ptr<const act<B>>(), i64(1), ref<const tensor_ref>(), i64(1), ptr<float>(), true));
UNMASK_BACKEND_TRAIT(has_matmul_nt_group,
                     ref<B>().matmul_nt_group(ptr<const act<B>>(), i64(1), ptr<const tensor_ref* const>(),
                                              ptr<const i64>(), ptr<act<B>* const>(), 1));
UNMASK_BACKEND_TRAIT(has_add_bias, ref<B>().add_bias(ptr<act<B>>(), i64(1), i64(1), ref<const tensor_ref>()));
UNMASK_BACKEND_TRAIT(has_rope, ref<B>().rope(ptr<act<B>>(), i64(1), i64(1), i64(1), ptr<const i32>(),
                                             ref<const typename B::rope_table_type>()));
UNMASK_BACKEND_TRAIT(has_attention,
                     ref<B>().attention(ptr<const act<B>>(), ptr<const act<B>>(), ptr<const act<B>>(), ptr<act<B>>(),
                                        ref<const attention_shape>(), ref<const attention_extents>(),
                                        attention_mask::full()));
UNMASK_BACKEND_TRAIT(has_scatter_rows,
                     ref<B>().scatter_rows(ptr<const act<B>>(), i64(1), i64(1), i64(1), ptr<const i32>(),
                                           ptr<const i32>(), ptr<const i32>(), i64(1), ptr<act<B>>()));
UNMASK_BACKEND_TRAIT(has_gather_rows,
                     ref<B>().gather_rows(ptr<const act<B>>(), ptr<const i32>(), i64(1), i64(1), ptr<act<B>>()));
UNMASK_BACKEND_TRAIT(has_swiglu, ref<B>().swiglu(ptr<const act<B>>(), ptr<const act<B>>(), i64(1), ptr<act<B>>()));
UNMASK_BACKEND_TRAIT(has_zero_padding_rows,
                     ref<B>().zero_padding_rows(ptr<float>(), i64(1), i64(1), i64(1), ptr<const i32>()));
UNMASK_BACKEND_TRAIT(has_apply_guidance, ref<B>().apply_guidance(ptr<float>(), i64(1), i64(1), 1.0f));
UNMASK_BACKEND_TRAIT(has_choose_tokens,
                     ref<B>().choose_tokens(ptr<const float>(), i64(1), i64(1), ref<const sampling_settings>(),
                                            confidence_metric::max_prob, i32(0), ref<const counter_rng>(),
                                            ptr<const draw_site>(), ptr<token_choice>()));
UNMASK_BACKEND_TRAIT(has_resident_sites,
                     ref<B>().resident_sites(ptr<const resident_sequence>(), i64(1), i32(1), ptr<draw_site>()));
UNMASK_BACKEND_TRAIT(has_propose_tokens,
                     ref<B>().propose_tokens(ptr<const float>(), i64(1), i64(1), ref<const sampling_settings>(),
                                             confidence_metric::max_prob, i32(0), ref<const counter_rng>(),
                                             ptr<const draw_site>(), ptr<i32>(), ptr<float>()));
UNMASK_BACKEND_TRAIT(has_resident_candidates,
                     ref<B>().resident_candidates(ptr<const resident_sequence>(), i64(1), i32(1), i32(1),
                                                  ptr<const i32>(), i32(0), ptr<const i32>(), ptr<const float>(),
                                                  ptr<i32>(), ptr<i32>(), ptr<float>(), ptr<selection_sequence>()));
UNMASK_BACKEND_TRAIT(has_select_and_commit,
                     ref<B>().select_and_commit(ptr<const selection_sequence>(), i64(1), i32(1), ptr<const i32>(),
                                                ptr<const i32>(), ptr<const float>(), ref<const selection_options>(),
                                                ptr<i32>(), ptr<i32>()));
UNMASK_BACKEND_TRAIT(has_resident_advance,
                     ref<B>().resident_advance(ptr<resident_sequence>(), ptr<const selection_sequence>(),
                                               ptr<const i32>(), i64(1), ptr<i32>()));
UNMASK_BACKEND_TRAIT(has_token_gather,
                     ref<B>().gather_rows(ptr<const i32>(), ptr<const i32>(), i64(1), i64(1), ptr<i32>()));
struct empty_step {
  void operator()() const {}
};
UNMASK_BACKEND_TRAIT(has_run_step, ref<B>().run_step(empty_step{}, std::uint64_t(0), std::uint64_t(0)));

#undef UNMASK_BACKEND_TRAIT

}  // namespace detail::backend_traits

// The first member of the forward pass's interface B lacks, or nullptr.
template <class B>
constexpr const char* missing_forward_member() {
  namespace t = detail::backend_traits;
  if (!t::has_activation<B>::value) return "activation";
  if (!t::has_buffer<B>::value) return "buffer<T>";
  if (!t::has_rope_table<B>::value) return "rope_table_type";
  if (!t::has_upload_weights<B>::value) return "upload_weights";
  if (!t::has_upload<B>::value) return "upload";
  if (!t::has_download<B>::value) return "download";
  if (!t::has_make_rope_table<B>::value) return "make_rope_table";
  if (!t::has_embedding<B>::value) return "embedding";
  if (!t::has_rmsnorm<B>::value) return "rmsnorm";
  if (!t::has_matmul_nt<B>::value) return "matmul_nt";
  if (!t::has_matmul_nt_group<B>::value) return "matmul_nt_group";
  if (!t::has_add_bias<B>::value) return "add_bias";
  if (!t::has_rope<B>::value) return "rope";
  if (!t::has_attention<B>::value) return "attention";
  if (!t::has_scatter_rows<B>::value) return "scatter_rows";
  if (!t::has_gather_rows<B>::value) return "gather_rows";
  if (!t::has_swiglu<B>::value) return "swiglu";
  if (!t::has_zero_padding_rows<B>::value) return "zero_padding_rows";
  return nullptr;
}

// ... of diffusion_decoder's and ar_decoder's (the forward pass's included).
template <class B>
constexpr const char* missing_decoding_member() {
  namespace t = detail::backend_traits;
  if (const char* m = missing_forward_member<B>()) return m;
  if (!t::has_apply_guidance<B>::value) return "apply_guidance";
  if (!t::has_choose_tokens<B>::value) return "choose_tokens";
  return nullptr;
}

// ... of resident_decoder's.
template <class B>
constexpr const char* missing_resident_member() {
  namespace t = detail::backend_traits;
  if (const char* m = missing_decoding_member<B>()) return m;
  if (!t::has_resident_sites<B>::value) return "resident_sites";
  if (!t::has_propose_tokens<B>::value) return "propose_tokens";
  if (!t::has_resident_candidates<B>::value) return "resident_candidates";
  if (!t::has_select_and_commit<B>::value) return "select_and_commit";
  if (!t::has_resident_advance<B>::value) return "resident_advance";
  if (!t::has_token_gather<B>::value) return "gather_rows (of token ids)";
  if (!t::has_run_step<B>::value) return "run_step";
  return nullptr;
}

// static_asserts naming each missing member (one message per member).
template <class B>
constexpr bool check_forward_backend() {
  namespace t = detail::backend_traits;
  static_assert(t::has_activation<B>::value, "backend: needs `using activation = ...` (float, half or bfloat16)");
  static_assert(t::has_buffer<B>::value, "backend: needs `template <class T> using buffer = ...` with data(), size() "
                                         "and reserve_at_least(n)");
  static_assert(t::has_rope_table<B>::value, "backend: needs `using rope_table_type = ...`");
  static_assert(t::has_upload_weights<B>::value, "backend: needs `void upload_weights(const transformer_model&)`");
  static_assert(t::has_upload<B>::value, "backend: needs `template <class T> void upload(const T*, std::size_t, "
                                         "buffer<T>&)`");
  static_assert(t::has_download<B>::value, "backend: needs `template <class T> void download(const T*, std::size_t, "
                                           "T*)`");
  static_assert(t::has_make_rope_table<B>::value, "backend: needs `rope_table_type make_rope_table(std::int64_t "
                                                  "count, std::int64_t head_dim, float theta)`");
  static_assert(t::has_embedding<B>::value, "backend: needs `void embedding(const std::int32_t* tokens, "
                                            "std::int64_t rows, const tensor_ref& wte, activation* out)`");
  static_assert(t::has_rmsnorm<B>::value, "backend: needs `void rmsnorm(const activation* x, std::int64_t rows, "
                                          "std::int64_t dim, const tensor_ref& w, float eps, activation* out)`");
  static_assert(t::has_matmul_nt<B>::value, "backend: needs `void matmul_nt(const activation* x, std::int64_t rows, "
                                            "const tensor_ref& w, std::int64_t n, Y* y, bool accumulate)` for Y = "
                                            "activation and float");
  static_assert(t::has_matmul_nt_group<B>::value,
                "backend: needs `void matmul_nt_group(const activation* x, std::int64_t rows, const tensor_ref* "
                "const* w, const std::int64_t* n, activation* const* y, int count)`");
  static_assert(t::has_add_bias<B>::value, "backend: needs `void add_bias(activation* y, std::int64_t rows, "
                                           "std::int64_t n, const tensor_ref& bias)`");
  static_assert(t::has_rope<B>::value, "backend: needs `void rope(activation* x, std::int64_t rows, std::int64_t "
                                       "heads, std::int64_t head_dim, const std::int32_t* positions, const "
                                       "rope_table_type&)`");
  static_assert(t::has_attention<B>::value, "backend: needs `void attention(const activation* q, const activation* "
                                            "k, const activation* v, activation* out, const attention_shape&, "
                                            "const attention_extents&, attention_mask)`");
  static_assert(t::has_scatter_rows<B>::value, "backend: needs `void scatter_rows(const activation* src, "
                                               "std::int64_t batch, std::int64_t seq_len, std::int64_t width, const "
                                               "std::int32_t* offsets, const std::int32_t* lengths, const "
                                               "std::int32_t* slots, std::int64_t capacity, activation* dst)`");
  static_assert(t::has_gather_rows<B>::value, "backend: needs `void gather_rows(const activation* src, const "
                                              "std::int32_t* rows, std::int64_t count, std::int64_t width, "
                                              "activation* dst)`");
  static_assert(t::has_swiglu<B>::value, "backend: needs `void swiglu(const activation* gate, const activation* up, "
                                         "std::int64_t n, activation* out)`");
  static_assert(t::has_zero_padding_rows<B>::value, "backend: needs `void zero_padding_rows(float* x, std::int64_t "
                                                    "batch, std::int64_t seq_len, std::int64_t width, const "
                                                    "std::int32_t* lengths)`");
  return true;
}

template <class B>
constexpr bool check_decoding_backend() {
  namespace t = detail::backend_traits;
  static_assert(check_forward_backend<B>());
  static_assert(t::has_apply_guidance<B>::value, "backend: needs `void apply_guidance(float* logits, std::int64_t "
                                                 "rows, std::int64_t vocab, float scale)`");
  static_assert(t::has_choose_tokens<B>::value,
                "backend: needs `void choose_tokens(const float* logits, std::int64_t count, std::int64_t vocab, "
                "const sampling_settings&, confidence_metric, std::int32_t excluded, const counter_rng&, const "
                "draw_site* host_sites, token_choice* host_out)`");
  return true;
}

namespace detail {

template <class B, class P, class = void>
struct has_processed_choose_tokens : std::false_type {};
template <class B, class P>
struct has_processed_choose_tokens<
    B, P,
    std::void_t<decltype(std::declval<B&>().choose_tokens(
        backend_traits::ptr<const float>(), backend_traits::i64(1), backend_traits::i64(1),
        std::declval<const sampling_settings&>(), confidence_metric::max_prob, backend_traits::i32(0),
        std::declval<const counter_rng&>(), backend_traits::ptr<const draw_site>(), backend_traits::ptr<token_choice>(),
        std::declval<const P&>()))>> : std::true_type {};

template <class B, class P, class = void>
struct has_processed_propose_tokens : std::false_type {};
template <class B, class P>
struct has_processed_propose_tokens<
    B, P,
    std::void_t<decltype(std::declval<B&>().propose_tokens(
        backend_traits::ptr<const float>(), backend_traits::i64(1), backend_traits::i64(1),
        std::declval<const sampling_settings&>(), confidence_metric::max_prob, backend_traits::i32(0),
        std::declval<const counter_rng&>(), backend_traits::ptr<const draw_site>(), backend_traits::ptr<backend_traits::i32>(),
        backend_traits::ptr<float>(), std::declval<const P&>()))>> : std::true_type {};

inline void processor_unsupported(const char* member) {
  throw argument_error(concat("the backend's ", member, " takes no logits processor, and the decoding policy has an "
                              "active one or a confidence metric of its own (give it a `const Processor&` last "
                              "argument; unmask/decode/backend_interface.hpp)"));
}

}  // namespace detail

// backend.choose_tokens(...) with the processor when the backend takes one.
template <class B, class Processor>
void choose_tokens_with(B& backend, const float* logits, std::int64_t count, std::int64_t vocab,
                        const sampling_settings& sampling, confidence_metric metric, std::int32_t excluded,
                        const counter_rng& rng, const draw_site* sites, token_choice* out, const Processor& processor) {
  if constexpr (detail::has_processed_choose_tokens<B, Processor>::value) {
    backend.choose_tokens(logits, count, vocab, sampling, metric, excluded, rng, sites, out, processor);
  } else {
    if (processor_active(processor) || detail::has_rule_confidence<Processor>::value)
      detail::processor_unsupported("choose_tokens");
    backend.choose_tokens(logits, count, vocab, sampling, metric, excluded, rng, sites, out);
  }
}

// backend.propose_tokens(...) likewise.
template <class B, class Processor>
void propose_tokens_with(B& backend, const float* logits, std::int64_t count, std::int64_t vocab,
                         const sampling_settings& sampling, confidence_metric metric, std::int32_t excluded,
                         const counter_rng& rng, const draw_site* sites, std::int32_t* tokens, float* confidence,
                         const Processor& processor) {
  if constexpr (detail::has_processed_propose_tokens<B, Processor>::value) {
    backend.propose_tokens(logits, count, vocab, sampling, metric, excluded, rng, sites, tokens, confidence, processor);
  } else {
    if (processor_active(processor) || detail::has_rule_confidence<Processor>::value)
      detail::processor_unsupported("propose_tokens");
    backend.propose_tokens(logits, count, vocab, sampling, metric, excluded, rng, sites, tokens, confidence);
  }
}

template <class B>
constexpr bool check_resident_backend() {
  namespace t = detail::backend_traits;
  static_assert(check_decoding_backend<B>());
  static_assert(t::has_resident_sites<B>::value, "backend: needs `void resident_sites(const resident_sequence*, "
                                                 "std::int64_t n, std::int32_t block_length, draw_site* sites)`");
  static_assert(t::has_propose_tokens<B>::value,
                "backend: needs `void propose_tokens(const float* logits, std::int64_t count, std::int64_t vocab, "
                "const sampling_settings&, confidence_metric, std::int32_t excluded, const counter_rng&, const "
                "draw_site* sites, std::int32_t* tokens, float* confidence)`");
  static_assert(t::has_resident_candidates<B>::value,
                "backend: needs `void resident_candidates(const resident_sequence*, std::int64_t n, std::int32_t "
                "block_length, std::int32_t steps, const std::int32_t* canvas, std::int32_t mask, const "
                "std::int32_t* proposed, const float* confidence, std::int32_t* positions, std::int32_t* tokens, "
                "float* confidences, selection_sequence* selection)`");
  static_assert(t::has_select_and_commit<B>::value,
                "backend: needs `template <class Selection, class Schedule> void select_and_commit(const "
                "selection_sequence*, std::int64_t n, std::int32_t max_candidates, const std::int32_t* positions, "
                "const std::int32_t* tokens, const float* confidence, const basic_selection_options<Selection, "
                "Schedule>&, std::int32_t* canvas, std::int32_t* committed)`");
  static_assert(t::has_resident_advance<B>::value,
                "backend: needs `void resident_advance(resident_sequence*, const selection_sequence*, const "
                "std::int32_t* committed, std::int64_t n, std::int32_t* remaining)`");
  static_assert(t::has_token_gather<B>::value, "backend: needs `void gather_rows(const std::int32_t* src, const "
                                               "std::int32_t* rows, std::int64_t count, std::int64_t width, "
                                               "std::int32_t* dst)` (token ids; a template over the element type "
                                               "serves both)");
  static_assert(t::has_run_step<B>::value, "backend: needs `template <class Step> void run_step(Step&& step, "
                                           "std::uint64_t owner, std::uint64_t shape)`");
  return true;
}

}  // namespace unmask
