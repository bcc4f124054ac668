// unmask/cuda/step_graph.hpp
//
// A denoising step as a CUDA graph. A step of the 8B model launches a few
// hundred kernels (nine per layer plus the GEMMs); launched one by one from
// the host, their launch latency (~3-5 us each) rivals the work itself when
// only a block's rows are fed. Stream capture (cudaStreamBeginCapture ..
// cudaStreamEndCapture) records those launches once into a graph that is
// replayed with one cudaGraphLaunch. A graph replays fixed kernel arguments:
// the same device addresses and the same shapes. transformer_forward is split for
// this: stage() writes a batch's token ids, positions and extents into
// buffers that keep their addresses while the shape does not grow, and
// run_staged() only reads those buffers, so the usual pattern is
//   forward.stage(batch, cache, rows);  forward.run_staged(mask, logits, cache);  // warm-up: plans, scratch
//   step_graph graph(backend.stream());
//   graph.capture([&] { forward.run_staged(mask, logits, cache); /* + vocab pass */ });
//   for each step: forward.stage(next batch of the same shape, ...); graph.replay();
// Capture records without executing; operations that cannot be captured
// (allocation, synchronisation, pageable copies) fail the capture, which
// throws device_error naming it. Capture mode is thread-local, so other
// threads may keep using CUDA meanwhile.
#pragma once

#include <cuda_runtime.h>

#include <utility>

#include "unmask/cuda/error.hpp"

namespace unmask::cuda {

class step_graph {
 public:
  explicit step_graph(cudaStream_t stream) : stream_(stream) {}
  step_graph(const step_graph&) = delete;
  step_graph& operator=(const step_graph&) = delete;
  ~step_graph() { release(); }

  // Records what `work` enqueues on the stream; replaces an earlier capture.
  template <class Work>
  void capture(Work&& work) {
    release();
    check(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), "beginning graph capture");
    try {
      std::forward<Work>(work)();
    } catch (...) {
      cudaGraph_t broken = nullptr;
      cudaStreamEndCapture(stream_, &broken);  // leave the stream usable
      if (broken) cudaGraphDestroy(broken);
      cudaGetLastError();
      throw;
    }
    check(cudaStreamEndCapture(stream_, &graph_), "ending graph capture (an operation in the step cannot be captured)");
    check(cudaGraphInstantiate(&exec_, graph_, 0), "instantiating the step graph");
    check(cudaGraphGetNodes(graph_, nullptr, &nodes_), "counting the step graph's nodes");
  }

  bool captured() const { return exec_ != nullptr; }
  std::size_t nodes() const { return nodes_; }  // kernels and copies recorded

  // Enqueues the recorded step on the stream.
  void replay() const {
    if (!exec_) throw argument_error("step_graph: replay before capture");
    check(cudaGraphLaunch(exec_, stream_), "replaying the step graph");
  }

 private:
  void release() {
    if (exec_) cudaGraphExecDestroy(exec_);
    if (graph_) cudaGraphDestroy(graph_);
    exec_ = nullptr;
    graph_ = nullptr;
    nodes_ = 0;
  }

  cudaStream_t stream_;
  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t exec_ = nullptr;
  std::size_t nodes_ = 0;
};

}  // namespace unmask::cuda
