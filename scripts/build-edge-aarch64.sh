#!/usr/bin/env bash
# Cross-compiles skipblock-edge (the libtorch-free predictor, docs/edge.md) for 64-bit ARM Linux
# (Raspberry Pi 4/5, Jetson, Graviton): installs the Rust target and Debian's cross linker when missing,
# builds, then prints the binary's `file` description and size.
#   scripts/build-edge-aarch64.sh            # -> target/aarch64-unknown-linux-gnu/release/skipblock-edge
# Run it on the board, or on this machine through qemu-user (apt-get install qemu-user):
#   qemu-aarch64 -L /usr/aarch64-linux-gnu target/aarch64-unknown-linux-gnu/release/skipblock-edge info --model m.onnx
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=aarch64-unknown-linux-gnu
say() { printf '\033[1m[edge-aarch64]\033[0m %s\n' "$*"; }
die() { printf '\033[31m[edge-aarch64] error:\033[0m %s\n' "$*" >&2; exit 1; }

command -v cargo >/dev/null || die "cargo not found: install Rust (https://rustup.rs) first"
if ! rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
  say "adding the Rust target $TARGET"
  rustup target add "$TARGET" || die "rustup target add $TARGET failed"
fi
if ! command -v aarch64-linux-gnu-gcc >/dev/null; then
  say "installing Debian's gcc-aarch64-linux-gnu (the linker, .cargo/config.toml)"
  SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
  $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc-aarch64-linux-gnu \
    || die "apt-get install gcc-aarch64-linux-gnu failed"
fi
# Only the edge crate: no libtorch, no OpenCV (nothing of torch-sys or opencv is built for the target).
say "cargo build --release -p skipblock-edge --target $TARGET"
start=$(date +%s)
cargo build --release -p skipblock-edge --target "$TARGET" || die "cargo build failed (see above)"
bin="${CARGO_TARGET_DIR:-target}/$TARGET/release/skipblock-edge"
say "built in $(( $(date +%s) - start )) s: $bin"
file "$bin"
say "size: $(stat -c %s "$bin") bytes ($(du -h "$bin" | cut -f1))"
