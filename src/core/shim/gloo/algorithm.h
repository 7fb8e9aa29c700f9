// Stand-in for gloo/algorithm.h (see README.md): a forward declaration.
#pragma once
namespace gloo {
class Algorithm;
}  // namespace gloo
