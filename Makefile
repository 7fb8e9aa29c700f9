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

# The whole suite, with OpenCV (default features), then the headless build (no OpenCV).
test: setup
	cargo test --release --workspace
	cargo test --release --workspace --no-default-features

test-headless:
	SKIPBLOCK_NO_OPENCV=1 scripts/setup.sh
	cargo test --release --workspace --no-default-features
