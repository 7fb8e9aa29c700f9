// Stand-in for gloo/context.h (see README.md): gloo::Context as far as ProcessGroupGloo.hpp names it (only
// through shared_ptr, and in the inline `setTimeout`, which skipblock never calls: declared, not defined).
#pragma once
#include <chrono>
namespace gloo {
class Context {
 public:
  void setTimeout(std::chrono::milliseconds timeout);
};
}  // namespace gloo
