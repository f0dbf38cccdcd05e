#!/usr/bin/env bash
# The syncbridge test suite: formatting, lints, the build, then every cargo
# test (unit tests, the loader tests against the real Vulkan loader and
# lavapipe, and the kernel tests, which run in a qemu guest when
# tests/guest/setup.sh has prepared one), then each fuzz target for 20 s.
#
# Installs missing dependencies first (tests/install-deps.sh, a no-op when
# everything is there). Exits non-zero on the first failure.
set -euo pipefail

cd "$(dirname "$0")/.."
if [[ -d "$HOME/.cargo/bin" && ":$PATH:" != *":$HOME/.cargo/bin:"* ]]; then
    PATH="$HOME/.cargo/bin:$PATH"
fi

step() { printf '\n==> %s\n' "$*"; }

step "dependencies"
tests/install-deps.sh

step "cargo fmt --check"
cargo fmt --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

step "cargo build"
cargo build --all-targets

if [[ -f tests/guest/setup.sh ]]; then
    step "tests/guest/setup.sh"
    bash tests/guest/setup.sh
fi
if [[ -f tests/guest/setup-compositor.sh ]]; then
    # The compositor the guest's dma-buf tests run against (a cached
    # trixie chroot: the first run downloads about 200 MB).
    step "tests/guest/setup-compositor.sh"
    bash tests/guest/setup-compositor.sh
fi

step "cargo test"
cargo test

step "tests/fuzz.sh 20"
exec tests/fuzz.sh 20
