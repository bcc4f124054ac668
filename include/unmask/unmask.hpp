// unmask/unmask.hpp
//
// The umbrella header: everything that builds with a plain C++17 compiler.
// CUDA kernels live under unmask/cuda/ and are included on their own.
#pragma once

#include "unmask/core/config.hpp"
#include "unmask/core/dtype.hpp"
#include "unmask/core/error.hpp"
#include "unmask/core/host_buffer.hpp"
#include "unmask/core/tensor_view.hpp"
#include "unmask/cpu/attention.hpp"
#include "unmask/cpu/backend.hpp"
#include "unmask/cpu/embedding.hpp"
#include "unmask/cpu/matmul.hpp"
#include "unmask/cpu/parallel.hpp"
#include "unmask/cpu/rmsnorm.hpp"
#include "unmask/cpu/rope.hpp"
#include "unmask/cpu/swiglu.hpp"
#include "unmask/io/checkpoint.hpp"
#include "unmask/io/json_file.hpp"
#include "unmask/io/mapped_file.hpp"
#include "unmask/io/safetensors.hpp"
#include "unmask/model/attention_mask.hpp"
#include "unmask/model/llada_config.hpp"
#include "unmask/model/llada_forward.hpp"
#include "unmask/model/llada_model.hpp"
#include "unmask/model/llada_weights.hpp"
#include "unmask/model/rotary.hpp"
