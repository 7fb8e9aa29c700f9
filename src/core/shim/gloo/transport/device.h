// Stand-in for gloo/transport/device.h (see README.md): forward declarations.
#pragma once
namespace gloo {
namespace transport {
class Device;
class UnboundBuffer;
}  // namespace transport
}  // namespace gloo
