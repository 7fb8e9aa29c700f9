// The distributed part of the C++ shim (see `src/core/src/dist/`): libtorch's own c10d engine, nothing of
// ours on the wire.
//
// * a TCPStore (the rendezvous of PyTorch's `env://`: rank 0 hosts it at MASTER_ADDR:MASTER_PORT, or
//   every rank is a client of the store torchrun's agent hosts there), wrapped in a PrefixStore;
// * a ProcessGroupGloo (CPU) or ProcessGroupNCCL (CUDA; compiled only when build.rs found `nccl.h` and the
//   CUDA headers: SB_HAVE_NCCL);
// * all-reduce of flattened buckets (many gradients in one buffer, several buckets in flight at once),
//   broadcast, all-gather and barrier, each waited for with the group's timeout.
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

char *sb_dist_barrier(sb_group *g) {
  SB_DIST_PROTECT({
    c10d::BarrierOptions opts;
    opts.timeout = g->timeout;
    wait(g->backend->barrier(opts), g->timeout);
  })
}

}  // extern "C"
