#!/usr/bin/env bash
# The syncbridge test suite: formatting, lints, the build, each fuzz target
# for 20 s, then every cargo test: unit tests; the layer under the real
# Vulkan loader and lavapipe on weston and Xvfb (loader, wayland, x11,
# reliability); and the guest tier, which boots a qemu guest (trixie's
# kernel: dma-bufs, vgem fences, syncobjs) for the kernel tests, for the
# dma-buf path against sway and for the sync_file path (trixie's lavapipe
# on weston 14 GL) (tests/guest/setup.sh and
# tests/guest/setup-compositor.sh prepare it, cached under
# ~/.cache/syncbridge-guest).
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
# The conformance compositor is its own crate (the tests build it).
cargo fmt --check --manifest-path tests/conformance-compositor/Cargo.toml

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

step "cargo build"
cargo build --all-targets
# The layer as it ships, for the guest's vkmark scores (tests/guest.rs).
cargo build --release --lib

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

step "tests/fuzz.sh 20"
tests/fuzz.sh 20

# Last, so that its summary lines close the output. The crate has no doc
# tests: leaving them out keeps a "0 passed" doc-test summary from being
# the last line.
step "cargo test"
exec cargo test --lib --bins --tests
