// Stand-in for gloo/rendezvous/store.h (see README.md): gloo::rendezvous::Store, the base of c10d's inline
// GlooStore, with the virtual functions in libtorch_cpu.so's (torch 2.11.0) vtable order. The default
// bodies throw; skipblock never calls them.
#pragma once
#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "gloo/common/error.h"
#include "gloo/common/store.h"

// The c10d header then declares GlooStore's extended-API overrides (they exist in the real vtable).
#define GLOO_STORE_HAS_STORE_V2 1

namespace gloo {
namespace rendezvous {

class Store : public IStore {
 public:
  static constexpr std::chrono::milliseconds kDefaultTimeout = std::chrono::seconds(30);
  ~Store() override = default;
  void set(const std::string& key, const std::vector<char>& data) override = 0;
  std::vector<char> get(const std::string& key) override = 0;
  virtual void wait(const std::vector<std::string>& keys) = 0;
  void wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& /*timeout*/) override {
    wait(keys);
  }
  bool has_v2_support() override { return false; }
  std::vector<std::vector<char>> multi_get(const std::vector<std::string>&) override { throw unsupported(); }
  void multi_set(const std::vector<std::string>&, const std::vector<std::vector<char>>&) override {
    throw unsupported();
  }
  void append(const std::string&, const std::vector<char>&) override { throw unsupported(); }
  int64_t add(const std::string&, int64_t) override { throw unsupported(); }

 private:
  static std::runtime_error unsupported() { return std::runtime_error("gloo store: not supported"); }
};

}  // namespace rendezvous
}  // namespace gloo
