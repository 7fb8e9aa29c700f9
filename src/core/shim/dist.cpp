// The distributed part of the C++ shim (see `src/core/src/dist/`): libtorch's own c10d engine, nothing of
// ours on the wire.
//
// * a TCPStore (the rendezvous of PyTorch's `env://`: rank 0 hosts it at MASTER_ADDR:MASTER_PORT, or
//   every rank is a client of the store torchrun's agent hosts there), wrapped in a PrefixStore;
// * a ProcessGroupGloo (CPU) or ProcessGroupNCCL (CUDA; compiled only when build.rs found `nccl.h` and the
//   CUDA headers: SB_HAVE_NCCL);
// * all-reduce of flattened buckets (many gradients in one buffer, several buckets in flight at once),
//   broadcast, all-gather and barrier, each waited for with the group's timeout;
// * synchronised batch norm: an autograd function whose forward normalises with the statistics of the
//   world's batch (all-gathered per-rank mean, variance and count) and whose backward all-reduces the
//   two sums the input gradient needs, as PyTorch's SyncBatchNorm.
//
// The PyTorch wheels carry no gloo headers: `shim/gloo/` holds the few declarations ProcessGroupGloo.hpp
// needs (see shim/gloo/README.md).
//
// Same conventions as shim.cpp: tensors are tch's `at::Tensor*`, errors come back as malloc'd messages
// (NULL on success) freed with `sb_free`; nothing unwinds into Rust.
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#endif
#ifdef SB_HAVE_NCCL
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL 1
#endif
#endif

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef SB_HAVE_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <string>
#include <vector>

typedef at::Tensor *tensor;

struct sb_group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> backend;
  std::chrono::milliseconds timeout;
};

namespace {

char *dist_error(const char *what) {
  char *out = static_cast<char *>(std::malloc(std::strlen(what) + 1));
  if (out != nullptr) std::strcpy(out, what);
  return out;
}

std::vector<at::Tensor> tensor_list(tensor *ts, int64_t n) {
  std::vector<at::Tensor> out;
  out.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out.push_back(*ts[i]);
  return out;
}

void wait(const c10::intrusive_ptr<c10d::Work> &work, std::chrono::milliseconds timeout) {
  if (!work->wait(timeout)) throw std::runtime_error("collective timed out");
}

// The first error of a collective inside the autograd graph (synchronised batch norm), where nothing may
// throw: the Rust side collects it after the forward and the backward pass (`sb_dist_take_error`).
std::mutex deferred_mutex;
std::string deferred_error;

void defer(const char *what, const std::exception &e) {
  std::lock_guard<std::mutex> lock(deferred_mutex);
  if (deferred_error.empty()) deferred_error = std::string(what) + ": " + e.what();
}

// Reduction dims of a batch-norm input (N, C, *): all but the channels.
std::vector<int64_t> bn_dims(const at::Tensor &x) {
  std::vector<int64_t> dims{0};
  for (int64_t d = 2; d < x.dim(); ++d) dims.push_back(d);
  return dims;
}

std::vector<int64_t> channel_shape(const at::Tensor &x) {
  std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
  shape[1] = x.size(1);
  return shape;
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// PyTorch's SyncBatchNorm maths (torch/nn/modules/_functions.py), in float32 whatever the input's dtype.
struct SyncBatchNorm : public torch::autograd::Function<SyncBatchNorm> {
  static at::Tensor forward(AutogradContext *ctx, const at::Tensor &input, const at::Tensor &weight,
                            const at::Tensor &bias, at::Tensor running_mean, at::Tensor running_var, double eps,
                            double momentum, int64_t group) {
    auto *g = reinterpret_cast<sb_group *>(group);
    auto x = input.to(at::kFloat);
    auto dims = bn_dims(x);
    const int64_t c = x.size(1);
    const double count = static_cast<double>(x.numel() / std::max<int64_t>(c, 1));
    // Per rank: mean, biased variance (two-pass, accurate), count; gathered and combined like
    // batch_norm_gather_stats_with_counts.
    auto vm = at::var_mean(x, dims, /*correction=*/0, /*keepdim=*/false);
    auto local = at::cat({std::get<1>(vm), std::get<0>(vm), at::full({1}, count, x.options())});
    const int64_t world = g->backend->getSize();
    std::vector<at::Tensor> gathered;
    for (int64_t r = 0; r < world; ++r) gathered.push_back(at::empty_like(local));
    try {
      std::vector<std::vector<at::Tensor>> outs{gathered};
      std::vector<at::Tensor> in{local};
      c10d::AllgatherOptions opts;
      opts.timeout = g->timeout;
      wait(g->backend->allgather(outs, in, opts), g->timeout);
      gathered = outs[0];
    } catch (const std::exception &e) {
      defer("synchronised batch norm (all-gather)", e);
      gathered.assign(static_cast<size_t>(world), local);
    }
    auto all = at::stack(gathered);                     // [world, 2C + 1]
    auto means = all.narrow(1, 0, c);                   // [world, C]
    auto vars = all.narrow(1, c, c);
    auto counts = all.narrow(1, 2 * c, 1);              // [world, 1]
    auto n = counts.sum();
    auto mean = (means * counts).sum(0) / n;
    auto var = ((vars + (means - mean).pow(2)) * counts).sum(0) / n;
    auto invstd = (var + eps).rsqrt();
    const double total = n.item<double>();
    {
      at::NoGradGuard no_grad;
      running_mean.mul_(1.0 - momentum).add_(mean.to(running_mean.scalar_type()), momentum);
      auto unbiased = total > 1.0 ? var * (total / (total - 1.0)) : var;
      running_var.mul_(1.0 - momentum).add_(unbiased.to(running_var.scalar_type()), momentum);
    }
    auto shape = channel_shape(x);
    auto xmu = x - mean.view(shape);
    auto w = weight.to(at::kFloat);
    auto out = xmu * (invstd * w).view(shape) + bias.to(at::kFloat).view(shape);
    ctx->save_for_backward({xmu, invstd, w});
    ctx->saved_data["total"] = total;
    ctx->saved_data["group"] = group;
    return out.to(input.scalar_type());
  }

  static variable_list backward(AutogradContext *ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    auto xmu = saved[0], invstd = saved[1], w = saved[2];
    const double total = ctx->saved_data["total"].toDouble();
    auto *g = reinterpret_cast<sb_group *>(ctx->saved_data["group"].toInt());
    auto dy = grads[0].to(at::kFloat);
    auto dims = bn_dims(dy);
    const int64_t c = dy.size(1);
    auto sum_dy = dy.sum(dims);
    auto sum_dy_xmu = (dy * xmu).sum(dims);
    // The parameters' gradients of this rank's batch: the gradient reducer averages them afterwards.
    auto grad_weight = sum_dy_xmu * invstd;
    auto grad_bias = sum_dy;
    auto sums = at::cat({sum_dy, sum_dy_xmu});
    try {
      std::vector<at::Tensor> one{sums};
      c10d::AllreduceOptions opts;
      opts.timeout = g->timeout;
      wait(g->backend->allreduce(one, opts), g->timeout);
    } catch (const std::exception &e) {
      defer("synchronised batch norm (all-reduce)", e);
    }
    auto shape = channel_shape(dy);
    auto mean_dy = (sums.narrow(0, 0, c) / total).view(shape);
    auto mean_dy_xmu = (sums.narrow(0, c, c) / total).view(shape);
    auto iv = invstd.view(shape);
    auto grad_input = (dy - mean_dy - xmu * iv * iv * mean_dy_xmu) * iv * w.view(shape);
    return {grad_input.to(grads[0].scalar_type()), grad_weight, grad_bias, at::Tensor(), at::Tensor(),
            at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

#define SB_DIST_PROTECT(...)                               \
  try {                                                    \
    __VA_ARGS__                                            \
    return nullptr;                                        \
  } catch (const std::exception &e) {                      \
    return dist_error(e.what());                           \
  } catch (...) {                                          \
    return dist_error("unknown C++ exception in the shim"); \
  }

extern "C" {

// 1 when this build can make NCCL process groups.
int sb_dist_has_nccl() {
#ifdef SB_HAVE_NCCL
  return 1;
#else
  return 0;
#endif
}

// Connects to (rank 0 without `agent_store`: hosts) the TCPStore at host:port, waits up to `timeout_ms`
// for all `world` ranks, and makes the backend ("gloo" or "nccl") under `prefix`.
char *sb_dist_init(const char *backend, const char *host, int port, int rank, int world, int agent_store,
                   int64_t timeout_ms, const char *prefix, sb_group **out) {
  SB_DIST_PROTECT({
    *out = nullptr;
    auto timeout = std::chrono::milliseconds(timeout_ms);
    c10d::TCPStoreOptions opts;
    opts.port = static_cast<std::uint16_t>(port);
    opts.isServer = agent_store == 0 && rank == 0;
    opts.numWorkers = static_cast<std::size_t>(world);
    opts.waitWorkers = true;
    opts.timeout = timeout;
    opts.multiTenant = true;
    auto tcp = c10::make_intrusive<c10d::TCPStore>(std::string(host), opts);
    c10::intrusive_ptr<c10d::Store> store = c10::make_intrusive<c10d::PrefixStore>(std::string(prefix), tcp);
    auto group = new sb_group{store, {}, timeout};
    try {
      std::string name(backend);
      if (name == "gloo") {
        auto options = c10d::ProcessGroupGloo::Options::create(timeout);
        const char *ifname = std::getenv("GLOO_SOCKET_IFNAME");
        if (ifname != nullptr && *ifname != '\0') {
          options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
        } else {
          options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
        }
        group->backend = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world, options);
      } else if (name == "nccl") {
#ifdef SB_HAVE_NCCL
        auto options = c10d::ProcessGroupNCCL::Options::create();
        options->timeout = timeout;
        group->backend = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, world, options);
#else
        throw std::runtime_error("this build has no NCCL (nccl.h was not found when it was compiled)");
#endif
      } else {
        throw std::runtime_error("unknown backend " + name);
      }
    } catch (...) {
      delete group;
      throw;
    }
    *out = group;
  })
}

void sb_dist_free(sb_group *g) {
  try {
    if (g != nullptr && g->backend) g->backend->shutdown();
  } catch (...) {
  }
  delete g;
}

// Sums every bucket across the ranks and multiplies it by `scale` (1/world: the mean). Bucket b holds the
// tensors ts[starts[b] .. starts[b+1]] (one dtype and device each): they are flattened into one buffer,
// all buckets are sent before the first is waited for, and the results are copied back in place.
char *sb_dist_allreduce_buckets(sb_group *g, tensor *ts, const int64_t *starts, int64_t buckets, double scale) {
  SB_DIST_PROTECT({
    std::vector<at::Tensor> flats;
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    c10d::AllreduceOptions opts;
    opts.reduceOp = c10d::ReduceOp::SUM;
    opts.timeout = g->timeout;
    for (int64_t b = 0; b < buckets; ++b) {
      std::vector<at::Tensor> parts;
      for (int64_t i = starts[b]; i < starts[b + 1]; ++i) parts.push_back(ts[i]->reshape({-1}));
      flats.push_back(parts.size() == 1 ? parts[0].clone() : at::cat(parts));
      std::vector<at::Tensor> one{flats.back()};
      works.push_back(g->backend->allreduce(one, opts));
    }
    for (int64_t b = 0; b < buckets; ++b) {
      wait(works[b], g->timeout);
      if (scale != 1.0) flats[b].mul_(scale);
      int64_t offset = 0;
      for (int64_t i = starts[b]; i < starts[b + 1]; ++i) {
        int64_t n = ts[i]->numel();
        ts[i]->copy_(flats[b].narrow(0, offset, n).view(ts[i]->sizes()));
        offset += n;
      }
    }
  })
}

// Sums `t` in place across the ranks.
char *sb_dist_allreduce_sum(sb_group *g, tensor t) {
  SB_DIST_PROTECT({
    c10d::AllreduceOptions opts;
    opts.timeout = g->timeout;
    std::vector<at::Tensor> one{*t};
    wait(g->backend->allreduce(one, opts), g->timeout);
  })
}

// Overwrites every tensor with rank `root`'s.
char *sb_dist_broadcast(sb_group *g, tensor *ts, int64_t n, int root) {
  SB_DIST_PROTECT({
    c10d::BroadcastOptions opts;
    opts.rootRank = root;
    opts.timeout = g->timeout;
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    for (auto &t : tensor_list(ts, n)) {
      std::vector<at::Tensor> one{t};
      works.push_back(g->backend->broadcast(one, opts));
    }
    for (auto &w : works) wait(w, g->timeout);
  })
}

// Every rank's `input` (same shape everywhere) into `outputs[r]` (allocated like `input`).
char *sb_dist_allgather(sb_group *g, tensor input, tensor *outputs, int64_t world) {
  SB_DIST_PROTECT({
    c10d::AllgatherOptions opts;
    opts.timeout = g->timeout;
    std::vector<std::vector<at::Tensor>> outs{tensor_list(outputs, world)};
    std::vector<at::Tensor> in{*input};
    wait(g->backend->allgather(outs, in, opts), g->timeout);
    for (int64_t r = 0; r < world; ++r) outputs[r]->copy_(outs[0][static_cast<size_t>(r)]);
  })
}

// Batch norm of `input` (N, C, *) in training mode with the statistics of every rank's batch; updates the
// running statistics like torch.nn.SyncBatchNorm. The result is part of the autograd graph.
char *sb_dist_sync_batch_norm(sb_group *g, tensor input, tensor weight, tensor bias, tensor running_mean,
                              tensor running_var, double eps, double momentum, tensor *out) {
  SB_DIST_PROTECT({
    *out = nullptr;
    auto y = SyncBatchNorm::apply(*input, *weight, *bias, *running_mean, *running_var, eps, momentum,
                                  reinterpret_cast<int64_t>(g));
    *out = new at::Tensor(std::move(y));
  })
}

// The first deferred error since the last call (NULL: none), see `defer`.
char *sb_dist_take_error() {
  std::lock_guard<std::mutex> lock(deferred_mutex);
  if (deferred_error.empty()) return nullptr;
  char *out = dist_error(deferred_error.c_str());
  deferred_error.clear();
  return out;
}

char *sb_dist_barrier(sb_group *g) {
  SB_DIST_PROTECT({
    c10d::BarrierOptions opts;
    opts.timeout = g->timeout;
    wait(g->backend->barrier(opts), g->timeout);
  })
}

}  // extern "C"
