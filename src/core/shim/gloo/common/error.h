// Stand-in for gloo/common/error.h (see README.md): nothing of it is used by the c10d header.
#pragma once
#include <stdexcept>
