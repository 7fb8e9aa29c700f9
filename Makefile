# The two commands of the README: `make demo` (the main job) and `make test` (the test suite).
# Both run scripts/setup.sh first, which installs what is missing and builds (idempotent).
SHELL := /bin/bash
export PATH := $(CURDIR)/.venv/bin:$(PATH)
export VIRTUAL_ENV := $(CURDIR)/.venv
export LIBTORCH_USE_PYTORCH := 1

.PHONY: setup demo test test-headless build
setup:
	@scripts/setup.sh

build: setup

demo: setup
	@scripts/demo.sh

# The whole suite: formatting, lints (warnings are errors) and tests, with OpenCV (default features), then
# the headless build (no OpenCV). Lints use the release profile so dependencies are not built twice.
CLIPPY := cargo clippy --release --workspace --all-targets
test: setup
	cargo fmt --all --check
	$(CLIPPY) -- -D warnings
	cargo test --release --workspace
	$(CLIPPY) --no-default-features -- -D warnings
	cargo test --release --workspace --no-default-features

test-headless:
	SKIPBLOCK_NO_OPENCV=1 scripts/setup.sh
	cargo fmt --all --check
	$(CLIPPY) --no-default-features -- -D warnings
	cargo test --release --workspace --no-default-features
