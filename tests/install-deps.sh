#!/usr/bin/env bash
# Installs what building and testing syncbridge needs on Debian 12 (bookworm).
#
# Idempotent and cheap when everything is there: apt is only run for missing
# packages. Needs root or sudo for apt. The guest kernel for the kernel tests
# is not installed here: tests/guest/setup.sh does that.
#
#   tests/install-deps.sh           install what is missing
#   tests/install-deps.sh --check   only report; exit 1 when something is missing
#   tests/install-deps.sh --demo    only what demos/run.sh needs on the host
#                                   (no qemu, valgrind, cargo-fuzz, lints)
set -euo pipefail

check_only=0
demo_only=0
case "${1:-}" in
--check) check_only=1 ;;
--demo) demo_only=1 ;;
"") ;;
*)
    echo "usage: $0 [--check|--demo]" >&2
    exit 2
    ;;
esac

APT_PACKAGES=(
    # Vulkan: the loader, lavapipe, vkcube/vulkaninfo, the validation layers
    mesa-vulkan-drivers libvulkan1 libvulkan-dev vulkan-tools vulkan-validationlayers
    # headless window systems and their tools
    weston xvfb x11-utils x11-xserver-utils wayland-utils imagemagick
    # the kernel tests run in a qemu guest
    qemu-system-x86 kmod
    # libraries the crate links against
    libwayland-dev libxcb1-dev libx11-xcb-dev libxcb-present-dev libxcb-dri3-dev
    libxcb-shm0-dev pkg-config
    # tests/conformance-compositor: smithay links libxkbcommon (its input
    # module, built whatever features are chosen)
    libxkbcommon-dev
    # memory checking in tests/reliability.rs
    valgrind
    # general tools the scripts use
    python3-pip curl xz-utils ca-certificates binutils make
)

if ((demo_only)); then
    # vkcube through the layer on weston and Xvfb, a screenshot, the build.
    APT_PACKAGES=(mesa-vulkan-drivers libvulkan1 libvulkan-dev vulkan-tools weston xvfb
        imagemagick libwayland-dev libxcb1-dev libx11-xcb-dev libxcb-present-dev
        libxcb-dri3-dev libxcb-shm0-dev pkg-config python3 ca-certificates)
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
    [[ "$status" == ii* ]] || missing+=("$p")
done

rust_missing=()
command -v cargo >/dev/null 2>&1 || rust_missing+=(cargo)
if ((!demo_only)); then
    cargo fmt --version >/dev/null 2>&1 || rust_missing+=(rustfmt)
    cargo clippy --version >/dev/null 2>&1 || rust_missing+=(clippy)
    # cargo-fuzz runs the fuzz targets (tests/fuzz.sh); built from
    # crates.io, about 4-6 minutes on a 2-core machine.
    cargo fuzz --version >/dev/null 2>&1 || rust_missing+=(cargo-fuzz)
fi

if ((check_only)); then
    if ((${#missing[@]} + ${#rust_missing[@]})); then
        echo "install-deps: missing: ${missing[*]} ${rust_missing[*]}" >&2
        echo "install-deps: run tests/install-deps.sh" >&2
        exit 1
    fi
    echo "install-deps: all dependencies present"
    exit 0
fi

if ((${#missing[@]})); then
    echo "install-deps: installing ${missing[*]}"
    if [[ $(id -u) -eq 0 ]]; then
        sudo=()
    elif command -v sudo >/dev/null 2>&1; then
        sudo=(sudo)
    else
        echo "install-deps: need root or sudo to install: ${missing[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -q
    "${sudo[@]}" apt-get install -y -q "${missing[@]}"
else
    echo "install-deps: apt packages present"
fi

if [[ " ${rust_missing[*]} " == *" cargo-fuzz "* ]] && command -v cargo >/dev/null 2>&1; then
    echo "install-deps: cargo install cargo-fuzz --locked"
    cargo install cargo-fuzz --locked
    rust_missing=("${rust_missing[@]/cargo-fuzz/}")
    read -r -a rust_missing <<<"${rust_missing[*]}"
fi

if ((${#rust_missing[@]})); then
    if [[ " ${rust_missing[*]} " == *" cargo "* ]]; then
        echo "install-deps: no cargo on PATH; install a Rust toolchain with rustup first" >&2
        exit 1
    fi
    if ! command -v rustup >/dev/null 2>&1; then
        echo "install-deps: ${rust_missing[*]} missing and no rustup to add them" >&2
        exit 1
    fi
    echo "install-deps: rustup component add ${rust_missing[*]}"
    rustup component add "${rust_missing[@]}"
else
    echo "install-deps: rust toolchain with rustfmt and clippy present"
fi
