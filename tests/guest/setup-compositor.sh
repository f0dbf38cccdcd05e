#!/bin/bash
# Set up the compositors for the test guest: a Debian trixie chroot (weston
# 14, sway 1.10 / wlroots 0.18, Xwayland 24.1, Mesa 25 with llvmpipe, grim,
# wayland-info, xdpyinfo; and for the real path, compositor.sh --real:
# trixie's lavapipe, which offers SYNC_FD to a process that can open
# /dev/udmabuf, vkcube/vulkaninfo and the Khronos validation layer; mutter
# 48 with a session bus for compositor.sh --mutter: dbus-x11 names the
# session bus dconf-service needs, which debootstrap does not choose) that
# tests/guest/compositor.sh enters inside the guest, plus the dma-buf probe
# client (tests/guest/dmabuf-probe.c) built on the host. Bookworm's own
# weston 10 / wlroots 0.15 offer no linux-dmabuf without a GPU; trixie's do
# (README.md says where and how).
#
# Idempotent: the chroot is made once (debootstrap into a temporary folder,
# renamed when complete) and kept while its package list is unchanged.
#
#   tests/guest/setup-compositor.sh     # prints the chroot's path
#
# Cache: ${SYNCBRIDGE_GUEST_DIR:-$HOME/.cache/syncbridge-guest}/trixie-root
set -euo pipefail

GUEST_DIR="${SYNCBRIDGE_GUEST_DIR:-$HOME/.cache/syncbridge-guest}"
MIRROR="${SYNCBRIDGE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
ROOT="$GUEST_DIR/trixie-root"
PACKAGES="weston,sway,grim,xwayland,x11-utils,wayland-utils,mesa-vulkan-drivers,vulkan-tools,vulkan-validationlayers,mutter,dbus-daemon,dbus-x11,valgrind,vkmark,strace"
HERE=$(cd "$(dirname "$0")" && pwd)
log() { echo "setup-compositor.sh: $*" >&2; }
mkdir -p "$GUEST_DIR"

# 1. Host tools: debootstrap for the chroot; a C compiler, libwayland and
#    wayland-protocols for the probe client.
need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v cc >/dev/null || need+=(gcc libc6-dev)
command -v wayland-scanner >/dev/null || need+=(libwayland-bin)
[ -f /usr/include/wayland-client.h ] || need+=(libwayland-dev)
[ -f /usr/share/wayland-protocols/stable/xdg-shell/xdg-shell.xml ] || need+=(wayland-protocols)
if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >&2
fi

# 2. The trixie chroot.
if [ "$(cat "$ROOT/.syncbridge-packages" 2>/dev/null)" != "$PACKAGES" ]; then
    log "debootstrap trixie (minbase + $PACKAGES) into $ROOT"
    rm -rf "$ROOT.tmp"
    debootstrap --variant=minbase --include="$PACKAGES" trixie "$ROOT.tmp" "$MIRROR" >&2
    # Not needed inside: the package cache.
    rm -rf "$ROOT.tmp/var/cache/apt/archives/"*.deb
    echo "$PACKAGES" >"$ROOT.tmp/.syncbridge-packages"
    rm -rf "$ROOT"
    mv "$ROOT.tmp" "$ROOT"
fi

# 3. The probe client (runs outside the chroot, with the host's libwayland).
BIN="$GUEST_DIR/bin"
PROBE="$BIN/dmabuf-probe"
if [ ! -x "$PROBE" ] || [ "$HERE/dmabuf-probe.c" -nt "$PROBE" ]; then
    log "building $PROBE"
    mkdir -p "$BIN/gen"
    WP=/usr/share/wayland-protocols
    for x in "$WP/stable/xdg-shell/xdg-shell.xml" \
             "$WP/unstable/linux-dmabuf/linux-dmabuf-unstable-v1.xml"; do
        n=$(basename "$x" .xml)
        wayland-scanner client-header "$x" "$BIN/gen/$n-client-protocol.h"
        wayland-scanner private-code "$x" "$BIN/gen/$n-protocol.c"
    done
    cc -O2 -Wall -o "$PROBE" -I"$BIN/gen" "$HERE/dmabuf-probe.c" \
        "$BIN/gen/xdg-shell-protocol.c" "$BIN/gen/linux-dmabuf-unstable-v1-protocol.c" \
        -lwayland-client
fi

echo "$ROOT"
