// The C++ shim of skipblock-core: the few libtorch calls tch 0.24 does not wrap.
//
// * multi-tensor optimiser steps (SGD with momentum / Nesterov / weight decay: `at::_fused_sgd_` when
//   every tensor is on CUDA, `at::_foreach_*` elsewhere; RMSProp in TensorFlow's form) and the EMA update,
//   a handful of kernels per parameter *group* instead of several per parameter;
// * autocast with a device type and a dtype (tch's `autocast` is CUDA-only and fp16-only);
// * memory-format conversion (channels-last).
//
// Tensors cross the FFI as tch's `C_tensor` pointers, which are `at::Tensor*` (see torch-sys's
// libtch/torch_api.h). Every function catches C++ exceptions and returns them as a malloc'd message
// (NULL on success) that the caller frees with `sb_free`: nothing here may unwind into Rust.
#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <ATen/core/grad_mode.h>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <vector>

typedef at::Tensor *tensor;

namespace {

char *error_of(const char *what) {
  char *out = static_cast<char *>(std::malloc(std::strlen(what) + 1));
  if (out != nullptr) std::strcpy(out, what);
  return out;
}

std::vector<at::Tensor> list(tensor *ts, int64_t n) {
  std::vector<at::Tensor> out;
  out.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out.push_back(*ts[i]);
  return out;
}

bool all_cuda(const std::vector<at::Tensor> &ts) {
  for (const auto &t : ts)
    if (!t.is_cuda()) return false;
  return !ts.empty();
}

// `_fused_sgd_` needs every list on one device with one dtype and the same strides element by element
// (a channels-last weight may receive an NCHW gradient): otherwise the `_foreach_*` path runs.
bool fusable(const std::vector<at::Tensor> &p, const std::vector<at::Tensor> &g, const std::vector<at::Tensor> &b) {
  if (!all_cuda(p)) return false;
  for (size_t i = 0; i < p.size(); ++i) {
    if (!g[i].is_cuda() || g[i].scalar_type() != p[i].scalar_type() || g[i].strides() != p[i].strides() ||
        p[i].device() != p[0].device())
      return false;
    if (!b.empty() && (b[i].scalar_type() != p[i].scalar_type() || b[i].strides() != p[i].strides())) return false;
  }
  return true;
}

// A gradient with L2 weight decay, `g + wd·p` (new tensors), or the gradients themselves.
std::vector<at::Tensor> decayed(const std::vector<at::Tensor> &grads, const std::vector<at::Tensor> &params,
                                double wd) {
  if (wd == 0.0) return grads;
  return at::_foreach_add(grads, params, wd);
}

}  // namespace

#define SB_PROTECT(body)                                   \
  try {                                                    \
    body                                                   \
    return nullptr;                                        \
  } catch (const std::exception &e) {                      \
    return error_of(e.what());                             \
  } catch (...) {                                          \
    return error_of("unknown C++ exception in the shim");  \
  }

extern "C" {

void sb_free(char *p) { std::free(p); }

// SGD, PyTorch's rule: g = grad + wd·p; buf = m·buf + g; g = nesterov ? g + m·buf : buf; p -= lr·g.
// `bufs` (ignored when momentum is 0) must be allocated; zeros make the first step PyTorch's `buf = g`.
// `fused`: use `_fused_sgd_` when every tensor is on CUDA.
char *sb_sgd_step(tensor *params, tensor *grads, tensor *bufs, int64_t n, double lr, double momentum,
                  double weight_decay, int nesterov, int fused) {
  SB_PROTECT({
    if (n == 0) return nullptr;
    at::NoGradGuard no_grad;
    auto p = list(params, n);
    auto g = list(grads, n);
    std::vector<at::Tensor> b = momentum > 0.0 ? list(bufs, n) : std::vector<at::Tensor>();
    if (fused && fusable(p, g, b)) {
      at::_fused_sgd_(p, g, b, weight_decay, momentum, lr, 0.0, nesterov != 0, false, false);
      return nullptr;
    }
    auto d = decayed(g, p, weight_decay);
    if (momentum > 0.0) {
      at::_foreach_mul_(b, momentum);
      at::_foreach_add_(b, d);
      if (nesterov) {
        d = at::_foreach_add(d, b, momentum);
      } else {
        d = b;
      }
    }
    at::_foreach_add_(p, d, -lr);
  })
}

// RMSProp in TensorFlow's form: g = grad + wd·p; sq = ρ·sq + (1 − ρ)·g²; step = lr·g / sqrt(sq + ε);
// buf = m·buf + step (when m > 0); p -= buf (or step). `sq` starts at ones, `bufs` at zeros.
char *sb_rmsprop_tf_step(tensor *params, tensor *grads, tensor *square_avgs, tensor *bufs, int64_t n, double lr,
                         double decay, double eps, double momentum, double weight_decay) {
  SB_PROTECT({
    if (n == 0) return nullptr;
    at::NoGradGuard no_grad;
    auto p = list(params, n);
    auto g = decayed(list(grads, n), p, weight_decay);
    auto sq = list(square_avgs, n);
    at::_foreach_mul_(sq, decay);
    at::_foreach_addcmul_(sq, g, g, 1.0 - decay);
    auto denom = at::_foreach_add(sq, eps);
    at::_foreach_sqrt_(denom);
    auto step = at::_foreach_mul(g, lr);
    at::_foreach_div_(step, denom);
    if (momentum > 0.0) {
      auto b = list(bufs, n);
      at::_foreach_mul_(b, momentum);
      at::_foreach_add_(b, step);
      at::_foreach_sub_(p, b);
    } else {
      at::_foreach_sub_(p, step);
    }
  })
}

// shadow = d·shadow + (1 − d)·live for floating-point tensors (one `_foreach_lerp_`).
char *sb_ema_update(tensor *shadow, tensor *live, int64_t n, double decay) {
  SB_PROTECT({
    if (n == 0) return nullptr;
    at::NoGradGuard no_grad;
    auto s = list(shadow, n);
    auto l = list(live, n);
    at::_foreach_lerp_(s, l, 1.0 - decay);
  })
}

// dst[i].copy_(src[i]) for all i.
char *sb_copy(tensor *dst, tensor *src, int64_t n) {
  SB_PROTECT({
    if (n == 0) return nullptr;
    at::NoGradGuard no_grad;
    auto d = list(dst, n);
    at::_foreach_copy_(d, list(src, n));
  })
}

// Zeroes the tensors (gradients) in place.
char *sb_zero(tensor *ts, int64_t n) {
  SB_PROTECT({
    if (n == 0) return nullptr;
    at::NoGradGuard no_grad;
    auto t = list(ts, n);
    at::_foreach_zero_(t);
  })
}

// Gradient unscaling for fp16 loss scaling: grads *= inv_scale; found_inf = 1 when any is not finite.
char *sb_unscale(tensor *grads, int64_t n, tensor found_inf, tensor inv_scale) {
  SB_PROTECT({
    if (n == 0) return nullptr;
    at::NoGradGuard no_grad;
    auto g = list(grads, n);
    at::_amp_foreach_non_finite_check_and_unscale_(g, *found_inf, *inv_scale);
  })
}

// device: 0 = CPU, 1 = CUDA; dtype: 0 = bfloat16, 1 = float16. Writes the previous state (enabled,
// dtype code; -1 for another dtype) to `prev_*` and enters a nesting level.
char *sb_autocast_enter(int device, int enabled, int dtype, int *prev_enabled, int *prev_dtype) {
  SB_PROTECT({
    auto dev = device == 1 ? at::kCUDA : at::kCPU;
    *prev_enabled = at::autocast::is_autocast_enabled(dev) ? 1 : 0;
    auto old = at::autocast::get_autocast_dtype(dev);
    *prev_dtype = old == at::kBFloat16 ? 0 : (old == at::kHalf ? 1 : -1);
    at::autocast::set_autocast_dtype(dev, dtype == 1 ? at::kHalf : at::kBFloat16);
    at::autocast::set_autocast_enabled(dev, enabled != 0);
    at::autocast::increment_nesting();
  })
}

// Leaves the nesting level entered by `sb_autocast_enter`, restoring the previous state; the cache
// of cast weights is cleared when the outermost level ends.
char *sb_autocast_exit(int device, int prev_enabled, int prev_dtype) {
  SB_PROTECT({
    auto dev = device == 1 ? at::kCUDA : at::kCPU;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(dev, prev_enabled != 0);
    if (prev_dtype >= 0) at::autocast::set_autocast_dtype(dev, prev_dtype == 1 ? at::kHalf : at::kBFloat16);
  })
}

// A copy of `t` in memory format `channels_last` (1: NHWC for 4-D tensors) or contiguous (0).
char *sb_contiguous(tensor t, int channels_last, tensor *out) {
  SB_PROTECT({
    auto fmt = channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
    *out = new at::Tensor(t->contiguous(fmt));
  })
}

// 1 when `t` is laid out channels-last.
char *sb_is_channels_last(tensor t, int *out) {
  SB_PROTECT({ *out = t->is_contiguous(at::MemoryFormat::ChannelsLast) && t->dim() == 4 ? 1 : 0; })
}

}  // extern "C"
