// unmask/cpu/kernels/instances.inl: the kernels the public headers call
// (unmask/cpu/matmul.hpp, attention.hpp, ...), named for one copy's `ops`,
// included by unmask/cpu/simd/kernels.hpp inside each copy's namespace and
// target region when a program compiles the kernels once (see there):
// UNMASK_CPU_KERNEL_INSTANCE is `extern template` in every translation unit
// but one, which has `template` and so holds every copy. A signature that
// drifts from its kernel's is a compile error, not a silent second copy.
#if defined(UNMASK_CPU_KERNEL_INSTANCE)
UNMASK_CPU_KERNEL_INSTANCE void gemm_packed<ops>(const float*, std::int64_t, std::int64_t, const packed_matrix&,
                                                 float* const*, const std::int64_t*, bool);
#if !defined(UNMASK_SIMD_WITH_BF16)  // the bf16 level has only its GEMM
UNMASK_CPU_KERNEL_INSTANCE void attention_fused<ops>(const float*, const float*, const float*, float*,
                                                     const attention_shape&, const attention_extents&, attention_mask);
UNMASK_CPU_KERNEL_INSTANCE void rmsnorm_rows<ops>(const float*, std::int64_t, std::int64_t, const tensor_ref&, float,
                                                  float*);
UNMASK_CPU_KERNEL_INSTANCE void swiglu_values<ops>(const float*, const float*, std::int64_t, float*);
UNMASK_CPU_KERNEL_INSTANCE void rope_rows<ops>(float*, std::int64_t, std::int64_t, std::int64_t, const std::int32_t*,
                                               const float*);
UNMASK_CPU_KERNEL_INSTANCE void add_bias_rows<ops>(float*, std::int64_t, std::int64_t, const tensor_ref&);
UNMASK_CPU_KERNEL_INSTANCE void embedding_rows<ops>(const std::int32_t*, std::int64_t, const tensor_ref&, float*);
UNMASK_CPU_KERNEL_INSTANCE std::int32_t row_best_token<ops>(const float*, std::int64_t, std::int32_t);
UNMASK_CPU_KERNEL_INSTANCE void vocab_row_stats<ops>(const float*, std::int64_t, std::int32_t, vocab_stats&,
                                                     std::int32_t&);
#endif
#endif
