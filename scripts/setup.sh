#!/usr/bin/env bash
# One-command set-up for a fresh Debian 12 machine (root, or a user with sudo). Idempotent: when
# everything is present it only re-checks and re-runs an (up-to-date) cargo build, in seconds.
#   1. Debian packages: libopencv-dev clang libclang-dev (OpenCV for image/video I/O; clang for the
#      OpenCV binding generator). Skipped with SKIPBLOCK_NO_OPENCV=1 (headless build).
#   2. .venv with torch==2.11.0 from PyPI (the libtorch that tch 0.24.0 is built for), and
#      tensorboard==2.21.0 (to view runs/<name>/tb/; the tests read the event files with it) and
#      torchvision==0.26.0 (the model-zoo parity tests) with pillow==13.0.0 (the reference of our resizing
#      and of `bench loaders`; Pillow 13 fixed the order of its two resize passes), onnx==1.23.2 and onnxruntime==1.32.0 (the
#      export tests: onnx.checker, onnxruntime as the reference of skipblock export and skipblock-edge).
#   3. cargo build --release with LIBTORCH_USE_PYTORCH=1 against that torch (the workspace: skipblock and
#      the libtorch-free skipblock-edge).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TORCH_VERSION=2.11.0
TENSORBOARD_VERSION=2.21.0
TORCHVISION_VERSION=0.26.0
PILLOW_VERSION=13.0.0
ONNX_VERSION=1.23.2
ONNXRUNTIME_VERSION=1.32.0
say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
die() { printf '\033[31m[setup] error:\033[0m %s\n' "$*" >&2; exit 1; }

command -v cargo >/dev/null || die "cargo not found: install Rust (https://rustup.rs) first"
# `make test` checks formatting and lints: rustfmt and clippy (rustup components).
for tool in fmt clippy; do
  if ! cargo "$tool" --version >/dev/null 2>&1; then
    component=$([ "$tool" = fmt ] && echo rustfmt || echo clippy)
    command -v rustup >/dev/null || die "cargo $tool not found: install the $component component"
    say "installing the $component component"
    rustup component add "$component" || die "rustup component add $component failed"
  fi
done
PYTHON=${PYTHON:-python3}
command -v "$PYTHON" >/dev/null || die "python3 not found: install Python 3 (apt-get install python3 python3-venv)"

# 1. System packages.
if [ "${SKIPBLOCK_NO_OPENCV:-0}" = 1 ]; then
  say "SKIPBLOCK_NO_OPENCV=1: building without OpenCV (image crate decodes; no video/webcam)"
  CARGO_FEATURES=(--no-default-features)
else
  CARGO_FEATURES=()
  missing=()
  for pkg in libopencv-dev clang libclang-dev; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    if [ "$(id -u)" != 0 ]; then
      command -v sudo >/dev/null || die "need root or sudo to install: ${missing[*]}"
      SUDO=sudo
    fi
    command -v apt-get >/dev/null || die "apt-get not found: install ${missing[*]} with your package manager"
    say "installing Debian packages: ${missing[*]}"
    $SUDO apt-get update -qq || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null \
      || die "apt-get install ${missing[*]} failed"
  else
    say "Debian packages present: libopencv-dev clang libclang-dev"
  fi
fi

# 2. Python venv with torch and tensorboard.
if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  "$PYTHON" -m venv .venv 2>/dev/null || {
    die "python3 -m venv failed: install python3-venv (apt-get install python3-venv)"; }
fi
have=$(.venv/bin/python -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null || true)
if [ "$have" != "$TORCH_VERSION" ]; then
  say "installing torch==$TORCH_VERSION into .venv (a large download, about 2 minutes)"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  .venv/bin/python -m pip install -q "torch==$TORCH_VERSION" || die "pip install torch==$TORCH_VERSION failed"
else
  say "torch $have present in .venv"
fi
if ! .venv/bin/python -c 'import tensorboard' >/dev/null 2>&1; then
  say "installing tensorboard==$TENSORBOARD_VERSION into .venv"
  .venv/bin/python -m pip install -q "tensorboard==$TENSORBOARD_VERSION" \
    || die "pip install tensorboard==$TENSORBOARD_VERSION failed"
else
  say "tensorboard present in .venv"
fi
# torchvision (the model-zoo parity tests compare our ShuffleNetV2/MobileNetV2/SqueezeNet/DenseNet/ResNet
# with it); the version built for this torch, so pip keeps the torch above.
if ! .venv/bin/python -c 'import torchvision' >/dev/null 2>&1; then
  say "installing torchvision==$TORCHVISION_VERSION into .venv"
  .venv/bin/python -m pip install -q "torchvision==$TORCHVISION_VERSION" \
    || die "pip install torchvision==$TORCHVISION_VERSION failed"
else
  say "torchvision present in .venv"
fi
# Pillow, pinned: tests/pixels_reference.rs compares our resizing with torchvision's PIL-based transforms
# pixel for pixel (to ±1), and Pillow 13 changed the order of the two passes for some shapes.
if ! .venv/bin/python -c "import PIL, sys; sys.exit(PIL.__version__ != '$PILLOW_VERSION')" >/dev/null 2>&1; then
  say "installing pillow==$PILLOW_VERSION into .venv"
  .venv/bin/python -m pip install -q "pillow==$PILLOW_VERSION" || die "pip install pillow==$PILLOW_VERSION failed"
else
  say "pillow $PILLOW_VERSION present in .venv"
fi
# The CUDA C runtime and CCCL headers the NCCL process group needs to compile (data-parallel training on
# GPUs, src/core/build.rs): the CUDA wheels of torch ship nccl.h and cuda_runtime_api.h but not
# crt/host_config.h and nv/target. Headers only, the CUDA version of torch's own runtime package; without
# them the build has Gloo only (CPU collectives).
cuda_rt=$(.venv/bin/python -m pip show nvidia-cuda-runtime 2>/dev/null | sed -n 's/^Version: \([0-9]*\.[0-9]*\).*/\1/p')
if [ -n "$cuda_rt" ] && ! .venv/bin/python -m pip show nvidia-cuda-crt >/dev/null 2>&1; then
  say "installing the CUDA $cuda_rt C runtime and CCCL headers into .venv (NCCL process groups)"
  .venv/bin/python -m pip install -q "nvidia-cuda-crt==$cuda_rt.*" "nvidia-cuda-cccl==$cuda_rt.*" \
    || say "warning: no CUDA headers for NCCL: distributed training will use Gloo only"
fi

# onnx and onnxruntime: the export tests check `skipblock export`'s files with them (onnx.checker, the same
# outputs from onnxruntime), skipblock-edge's tests use onnxruntime as their reference
# (tests/python/edge_ref.py), and `bench export` times onnxruntime as the reference.
if ! .venv/bin/python -c 'import onnx, onnxruntime' >/dev/null 2>&1; then
  say "installing onnx==$ONNX_VERSION onnxruntime==$ONNXRUNTIME_VERSION into .venv"
  .venv/bin/python -m pip install -q "onnx==$ONNX_VERSION" "onnxruntime==$ONNXRUNTIME_VERSION" \
    || die "pip install onnx onnxruntime failed"
else
  say "onnx and onnxruntime present in .venv"
fi

# 3. Build.
export PATH="$ROOT/.venv/bin:$PATH" VIRTUAL_ENV="$ROOT/.venv" LIBTORCH_USE_PYTORCH=1
say "cargo build --release ${CARGO_FEATURES[*]:-} (first build: about 5 minutes, a few more for skipblock-edge's tract)"
cargo build --release --workspace ${CARGO_FEATURES[@]+"${CARGO_FEATURES[@]}"} \
  || die "cargo build failed (see above)"
say "ready: target/release/skipblock"
