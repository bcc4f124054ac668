// unmask/cuda/gemm.hpp
//
// The transformer's one GEMM shape on the GPU, the twin of
// unmask::cpu::matmul_nt: y (rows, n) = x (rows, k) w^T, or y += x w^T when
// `accumulate`, everything row-major; x is the activation, w a weight (n, k)
// exactly as a checkpoint stores it (PyTorch's Linear). The work goes to
// cuBLASLt with fp32 accumulation (CUBLAS_COMPUTE_32F, scale type float) for
// the element types (X, W, Y) = (bf16, bf16, bf16), (bf16, bf16, f32),
// (f16, f16, f16), (f16, f16, f32) and (f32, f32, f32); fp32 inputs are
// multiplied in full fp32 unless the engine was created with allow_tf32
// (CUBLAS_COMPUTE_32F_FAST_TF32). A 16-bit output is the fp32 result
// (alpha * x w^T + beta * y, alpha = 1, beta = 0 or 1) rounded once.
//
// A gemm_engine owns a cuBLASLt handle, one device workspace (32 MiB by
// default, NVIDIA's recommendation for Hopper) and the heuristic search
// preference, all created once by create(), plus a cache of plans keyed by
// (rows, n, k, input type, output type, accumulate). A plan holds what
// cuBLASLt needs per shape: the matmul descriptor, the three matrix layouts
// (C and D share one) and the algorithm cublasLtMatmulAlgoGetHeuristic picked
// for them, chosen once. After its shape's plan exists, matmul_nt does a map
// lookup and one cublasLtMatmul on the caller's stream: no allocation (alpha
// and beta are host floats, read at the call), no synchronisation, so it can
// be captured in a CUDA graph. Building a plan is host-only (descriptor
// objects and the heuristic query, no stream work), but cuBLASLt does not
// document the heuristic as capture-safe, so create every plan before
// capturing, by a first call per shape outside capture or by prepare(),
// which builds a plan without running it. A real first call outside capture
// is the safer warm-up, since it also loads the kernel (lazy module loading).
//
// Layout. cuBLASLt is column-major, and a row-major (a, b) matrix with row
// stride b is, read column-major with leading dimension b, its transpose
// (b, a). So the three buffers, unchanged, are
//   x: column-major x^T (k, rows), ld k
//   w: column-major w^T (k, n),    ld k
//   y: column-major y^T (n, rows), ld n
// and the row-major product y = x w^T is the column-major product
//   y^T = (x w^T)^T = w x^T = op_T(w^T) op_N(x^T),
// i.e. cuBLASLt's D (m, n') = op(A) (m, k') op(B) (k', n') with m = n,
// n' = rows, k' = k, A = w with TRANSA = T (its layout: (k, n), ld k, the
// matrix as stored, before the op), B = x with TRANSB = N (layout (k, rows),
// ld k), C = D = y (layout (n, rows), ld n). This "TN" form is the layout
// cuBLASLt supports for every data type (its FP8 kernels accept no other),
// and no buffer is copied or transposed.
//
// Constraints, checked on the host before any CUDA or cuBLAS call (so a bad
// call fails the same way with or without a GPU, and without a handle):
// rows in [0, 2^31) (rows == 0 succeeds and does nothing), n and k in
// [1, 2^31); x, w, y non-null and 16-byte aligned (the plans are chosen with
// CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_*_BYTES = 16, which admits the
// vectorised kernels and holds for cudaMalloc'ed buffers and for rows whose
// byte offset is a multiple of 16; the leading dimensions themselves may be
// anything, e.g. odd n, since the heuristic sees them in the layouts); y must
// not overlap x or w. Violations return CUBLAS_STATUS_INVALID_VALUE; a call
// on an engine without a handle returns CUBLAS_STATUS_NOT_INITIALIZED, a
// shape for which the heuristic finds no algorithm CUBLAS_STATUS_NOT_SUPPORTED.
// Errors are returned, never thrown; the CUDA backend turns them into
// exceptions (unmask/cuda/error.hpp). to_string() names a status.
//
// Numerics. The heuristic may pick split-K algorithms; the preference admits
// only those that keep the partial sums in the compute type (fp32) in the
// workspace and reduce them in a fixed order
// (CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE), not the in-place scheme, which
// reduces through the output buffer in the output type, nor the output-type
// one, which would round the partial sums of a bf16 output to bf16. Hence the
// same shape on the same GPU and cuBLAS version gives bit-identical results
// run after run. Unlike the CPU kernel, though, the algorithm (tiling,
// split-K) depends on rows, so a row's result may differ in the last bits
// with the number of rows it is batched with.
//
// An engine belongs to the device that was current when create() ran, and
// is not thread-safe (the plan cache is unsynchronised). Its one workspace is
// shared by all calls, so calls on different streams must not overlap in
// time: use one engine per concurrently running stream. This header defines
// no kernels, so plain C++ translation units may include it as well; link
// CUDA::cublasLt.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <tuple>
#include <type_traits>
#include <utility>

#include "unmask/core/dtype.hpp"

namespace unmask::cuda {

inline constexpr std::size_t gemm_default_workspace_bytes = std::size_t(32) << 20;  // 32 MiB
inline constexpr std::uintptr_t gemm_alignment = 16;  // bytes, of x, w and y

// The name of a cuBLAS status ("CUBLAS_STATUS_INVALID_VALUE"), without any
// library call.
inline const char* to_string(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
  }
  return "unknown cublasStatus_t";
}

namespace detail {

// cuBLASLt's name of an element type; the project's half / bfloat16 have the
// bit layout of __half / __nv_bfloat16.
template <class T>
constexpr cudaDataType_t cuda_data_type() {
  if constexpr (std::is_same_v<T, bfloat16>) return CUDA_R_16BF;
  else if constexpr (std::is_same_v<T, half>) return CUDA_R_16F;
  else return CUDA_R_32F;
}

// The supported (activation, weight, output) triples: equal 16-bit inputs
// with a like or fp32 output, or fp32 throughout.
template <class X, class W, class Y>
inline constexpr bool is_gemm_triple_v =
    std::is_same_v<X, W> &&
    (std::is_same_v<X, bfloat16> || std::is_same_v<X, half> || std::is_same_v<X, float>) &&
    (std::is_same_v<Y, X> || std::is_same_v<Y, float>);

inline bool overlaps(const void* a, std::size_t a_bytes, const void* b, std::size_t b_bytes) {
  const std::uintptr_t a0 = reinterpret_cast<std::uintptr_t>(a), b0 = reinterpret_cast<std::uintptr_t>(b);
  return a0 < b0 + b_bytes && b0 < a0 + a_bytes;
}

inline bool gemm_sizes_ok(std::int64_t rows, std::int64_t k, std::int64_t n) {
  return rows >= 0 && rows <= INT32_MAX && n >= 1 && n <= INT32_MAX && k >= 1 && k <= INT32_MAX;
}

// The host-side checks of matmul_nt, in order: sizes, pointers, alignment,
// aliasing. SUCCESS means "go on" (rows == 0 is handled by the caller).
template <class X, class W, class Y>
cublasStatus_t check_gemm_arguments(const X* x, std::int64_t rows, std::int64_t k, const W* w, std::int64_t n,
                                    const Y* y) {
  if (!gemm_sizes_ok(rows, k, n)) return CUBLAS_STATUS_INVALID_VALUE;
  if (rows == 0) return CUBLAS_STATUS_SUCCESS;
  if (x == nullptr || w == nullptr || y == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  const auto aligned = [](const void* p) { return reinterpret_cast<std::uintptr_t>(p) % gemm_alignment == 0; };
  if (!aligned(x) || !aligned(w) || !aligned(y)) return CUBLAS_STATUS_INVALID_VALUE;
  const std::size_t x_bytes = std::size_t(rows * k) * sizeof(X), w_bytes = std::size_t(n * k) * sizeof(W),
                    y_bytes = std::size_t(rows * n) * sizeof(Y);
  if (overlaps(y, y_bytes, x, x_bytes) || overlaps(y, y_bytes, w, w_bytes)) return CUBLAS_STATUS_INVALID_VALUE;
  return CUBLAS_STATUS_SUCCESS;
}

}  // namespace detail

class gemm_engine {
 public:
  gemm_engine() = default;
  gemm_engine(const gemm_engine&) = delete;
  gemm_engine& operator=(const gemm_engine&) = delete;
  gemm_engine(gemm_engine&& other) noexcept { take(other); }
  gemm_engine& operator=(gemm_engine&& other) noexcept {
    if (this != &other) {
      release();
      take(other);
    }
    return *this;
  }
  ~gemm_engine() { release(); }

  // Creates the handle, the workspace (on the current device) and the search
  // preference, releasing whatever the engine held before. On failure the
  // engine is left empty. allow_tf32 lets fp32 inputs use TF32 tensor cores.
  cublasStatus_t create(std::size_t workspace_bytes = gemm_default_workspace_bytes, bool allow_tf32 = false) {
    release();
    cublasStatus_t status = cublasLtCreate(&handle_);
    if (status != CUBLAS_STATUS_SUCCESS) {
      handle_ = nullptr;
      return status;
    }
    if (workspace_bytes > 0 && cudaMalloc(&workspace_, workspace_bytes) != cudaSuccess) {
      cudaGetLastError();  // the allocation error is not sticky: clear it for later launch checks
      workspace_ = nullptr;
      release();
      return CUBLAS_STATUS_ALLOC_FAILED;
    }
    workspace_bytes_ = workspace_bytes;
    allow_tf32_ = allow_tf32;
    status = create_preference();
    if (status != CUBLAS_STATUS_SUCCESS) release();
    return status;
  }

  bool ready() const { return handle_ != nullptr; }
  std::size_t workspace_bytes() const { return workspace_bytes_; }
  bool allow_tf32() const { return allow_tf32_; }
  std::size_t plan_count() const { return plans_.size(); }

  // y (rows, n) = x (rows, k) w (n, k)^T, or y += x w^T when `accumulate`;
  // all row-major, see the file comment for the errors. Asynchronous on
  // `stream`; builds the shape's plan on first use.
  template <class X, class W, class Y>
  cublasStatus_t matmul_nt(const X* x, std::int64_t rows, std::int64_t k, const W* w, std::int64_t n, Y* y,
                           bool accumulate, cudaStream_t stream) {
    static_assert(detail::is_gemm_triple_v<X, W, Y>,
                  "gemm_engine::matmul_nt supports (X, W, Y) = (bf16, bf16, bf16 | f32), (f16, f16, f16 | f32) "
                  "and (f32, f32, f32)");
    const cublasStatus_t checked = detail::check_gemm_arguments(x, rows, k, w, n, y);
    if (checked != CUBLAS_STATUS_SUCCESS || rows == 0) return checked;
    if (handle_ == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
    const plan* found = nullptr;
    const cublasStatus_t planned = find_or_build<X, Y>(rows, n, k, accumulate, found);
    if (planned != CUBLAS_STATUS_SUCCESS) return planned;
    const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;  // beta 0: y is not read
    // D = op_T(A = w) op_N(B = x) (+ C = y), D = y; see the file comment.
    return cublasLtMatmul(handle_, found->operation, &alpha, w, found->weight, x, found->activation, &beta, y,
                          found->output, y, found->output, &found->algorithm, workspace_, workspace_bytes_, stream);
  }

  // Builds the plan of a shape without running it, e.g. before a CUDA graph
  // capture. Same size checks and errors as matmul_nt (no pointers to check).
  template <class X, class W, class Y>
  cublasStatus_t prepare(std::int64_t rows, std::int64_t k, std::int64_t n, bool accumulate) {
    static_assert(detail::is_gemm_triple_v<X, W, Y>,
                  "gemm_engine::prepare supports (X, W, Y) = (bf16, bf16, bf16 | f32), (f16, f16, f16 | f32) "
                  "and (f32, f32, f32)");
    if (!detail::gemm_sizes_ok(rows, k, n)) return CUBLAS_STATUS_INVALID_VALUE;
    if (rows == 0) return CUBLAS_STATUS_SUCCESS;
    if (handle_ == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
    const plan* found = nullptr;
    return find_or_build<X, Y>(rows, n, k, accumulate, found);
  }

  // Frees the plans, the preference, the workspace and the handle. The
  // caller must make sure no matmul_nt issued by this engine is still running
  // (or captured in a graph that will still run) before release or
  // destruction, since the workspace goes with it.
  void release() {
    plans_.clear();
    if (preference_ != nullptr) cublasLtMatmulPreferenceDestroy(preference_);
    if (workspace_ != nullptr) cudaFree(workspace_);
    if (handle_ != nullptr) cublasLtDestroy(handle_);
    preference_ = nullptr;
    workspace_ = nullptr;
    handle_ = nullptr;
    workspace_bytes_ = 0;
    allow_tf32_ = false;
  }

 private:
  // What cuBLASLt needs to run one shape; owns its descriptors.
  struct plan {
    cublasLtMatmulDesc_t operation = nullptr;
    cublasLtMatrixLayout_t weight = nullptr;      // A = w: column-major (k, n), ld k, op T
    cublasLtMatrixLayout_t activation = nullptr;  // B = x: column-major (k, rows), ld k, op N
    cublasLtMatrixLayout_t output = nullptr;      // C = D = y: column-major (n, rows), ld n
    cublasLtMatmulAlgo_t algorithm{};

    plan() = default;
    plan(const plan&) = delete;
    plan& operator=(const plan&) = delete;
    plan(plan&& other) noexcept
        : operation(std::exchange(other.operation, nullptr)),
          weight(std::exchange(other.weight, nullptr)),
          activation(std::exchange(other.activation, nullptr)),
          output(std::exchange(other.output, nullptr)),
          algorithm(other.algorithm) {}
    plan& operator=(plan&&) = delete;
    ~plan() {
      if (output != nullptr) cublasLtMatrixLayoutDestroy(output);
      if (activation != nullptr) cublasLtMatrixLayoutDestroy(activation);
      if (weight != nullptr) cublasLtMatrixLayoutDestroy(weight);
      if (operation != nullptr) cublasLtMatmulDescDestroy(operation);
    }
  };

  struct plan_key {
    std::int64_t rows, n, k;
    cudaDataType_t input, output;
    bool accumulate;
    bool operator<(const plan_key& o) const {
      return std::tie(rows, n, k, input, output, accumulate) <
             std::tie(o.rows, o.n, o.k, o.input, o.output, o.accumulate);
    }
  };

  void take(gemm_engine& other) noexcept {
    handle_ = std::exchange(other.handle_, nullptr);
    preference_ = std::exchange(other.preference_, nullptr);
    workspace_ = std::exchange(other.workspace_, nullptr);
    workspace_bytes_ = std::exchange(other.workspace_bytes_, 0);
    allow_tf32_ = std::exchange(other.allow_tf32_, false);
    plans_ = std::move(other.plans_);
    other.plans_.clear();
  }

  // Workspace limit, 16-byte minimum alignment of every matrix, and the
  // deterministic fp32 split-K reduction only (see the file comment).
  cublasStatus_t create_preference() {
    cublasStatus_t status = cublasLtMatmulPreferenceCreate(&preference_);
    if (status != CUBLAS_STATUS_SUCCESS) {
      preference_ = nullptr;
      return status;
    }
    const std::uint64_t workspace_limit = workspace_bytes_;
    status = cublasLtMatmulPreferenceSetAttribute(preference_, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                  &workspace_limit, sizeof workspace_limit);
    const std::uint32_t alignment = std::uint32_t(gemm_alignment);
    for (cublasLtMatmulPreferenceAttributes_t attribute :
         {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
          CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES})
      if (status == CUBLAS_STATUS_SUCCESS)
        status = cublasLtMatmulPreferenceSetAttribute(preference_, attribute, &alignment, sizeof alignment);
    // Algorithms without split-K (scheme NONE) pass any mask.
    const std::uint32_t reductions = CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE;
    if (status == CUBLAS_STATUS_SUCCESS)
      status = cublasLtMatmulPreferenceSetAttribute(preference_, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK,
                                                    &reductions, sizeof reductions);
    return status;
  }

  template <class X, class Y>
  cublasStatus_t find_or_build(std::int64_t rows, std::int64_t n, std::int64_t k, bool accumulate,
                               const plan*& found) {
    const plan_key key{rows, n, k, detail::cuda_data_type<X>(), detail::cuda_data_type<Y>(), accumulate};
    const auto it = plans_.find(key);
    if (it != plans_.end()) {
      found = &it->second;
      return CUBLAS_STATUS_SUCCESS;
    }
    plan built;
    const cublasStatus_t status = build_plan(key, built);
    if (status != CUBLAS_STATUS_SUCCESS) return status;  // `built` frees what it holds
    found = &plans_.emplace(key, std::move(built)).first->second;
    return CUBLAS_STATUS_SUCCESS;
  }

  cublasStatus_t build_plan(const plan_key& key, plan& out) const {
    const bool tf32 = allow_tf32_ && key.input == CUDA_R_32F;
    cublasStatus_t status =
        cublasLtMatmulDescCreate(&out.operation, tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F, CUDA_R_32F);
    if (status != CUBLAS_STATUS_SUCCESS) {
      out.operation = nullptr;
      return status;
    }
    const cublasOperation_t transpose = CUBLAS_OP_T, keep = CUBLAS_OP_N;
    status = cublasLtMatmulDescSetAttribute(out.operation, CUBLASLT_MATMUL_DESC_TRANSA, &transpose, sizeof transpose);
    if (status == CUBLAS_STATUS_SUCCESS)
      status = cublasLtMatmulDescSetAttribute(out.operation, CUBLASLT_MATMUL_DESC_TRANSB, &keep, sizeof keep);
    // Layouts as stored (before the op): rows, columns, leading dimension.
    const auto layout = [&status](cublasLtMatrixLayout_t& made, cudaDataType_t type, std::int64_t layout_rows,
                                  std::int64_t layout_cols, std::int64_t ld) {
      if (status != CUBLAS_STATUS_SUCCESS) return;
      status = cublasLtMatrixLayoutCreate(&made, type, std::uint64_t(layout_rows), std::uint64_t(layout_cols), ld);
      if (status != CUBLAS_STATUS_SUCCESS) made = nullptr;
    };
    layout(out.weight, key.input, key.k, key.n, key.k);         // w^T (k, n)
    layout(out.activation, key.input, key.k, key.rows, key.k);  // x^T (k, rows)
    layout(out.output, key.output, key.n, key.rows, key.n);     // y^T (n, rows)
    if (status != CUBLAS_STATUS_SUCCESS) return status;
    cublasLtMatmulHeuristicResult_t best{};
    int returned = 0;
    status = cublasLtMatmulAlgoGetHeuristic(handle_, out.operation, out.weight, out.activation, out.output,
                                            out.output, preference_, 1, &best, &returned);
    if (status != CUBLAS_STATUS_SUCCESS) return status;
    if (returned < 1 || best.state != CUBLAS_STATUS_SUCCESS || best.workspaceSize > workspace_bytes_)
      return CUBLAS_STATUS_NOT_SUPPORTED;
    out.algorithm = best.algo;
    return CUBLAS_STATUS_SUCCESS;
  }

  cublasLtHandle_t handle_ = nullptr;
  cublasLtMatmulPreference_t preference_ = nullptr;
  void* workspace_ = nullptr;
  std::size_t workspace_bytes_ = 0;
  bool allow_tf32_ = false;
  std::map<plan_key, plan> plans_;
};

}  // namespace unmask::cuda
