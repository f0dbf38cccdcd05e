#!/bin/bash
# Set up the syncbridge test guest: virtme-ng plus Debian trixie's 6.12
# kernel (udmabuf, dma-buf heaps, vgem). Idempotent; prints the kernel path.
#
#   tests/guest/setup.sh            # set up (or check) and print the kernel
#
# Cache: ${SYNCBRIDGE_GUEST_DIR:-$HOME/.cache/syncbridge-guest}
set -euo pipefail

GUEST_DIR="${SYNCBRIDGE_GUEST_DIR:-$HOME/.cache/syncbridge-guest}"
MIRROR="${SYNCBRIDGE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
mkdir -p "$GUEST_DIR"
log() { echo "setup.sh: $*" >&2; }

# 1. Host tools.
if ! command -v qemu-system-x86_64 >/dev/null || ! command -v depmod >/dev/null \
    || ! command -v busybox >/dev/null; then
    log "installing qemu-system-x86, kmod and busybox-static (virtme-ng's initramfs)"
    apt-get install -y qemu-system-x86 kmod busybox-static >&2
fi
if ! command -v vng >/dev/null; then
    log "installing virtme-ng with pip"
    pip install virtme-ng >&2
fi

# 2. Resolve the kernel package with a private apt configuration that knows
#    trixie, so the host's apt state is left alone.
APT="$GUEST_DIR/apt"
mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial" "$APT/etc/preferences.d"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR trixie main" \
    >"$APT/etc/sources.list"
APT_OPTS=(
    -o "Dir::Etc::sourcelist=$APT/etc/sources.list"
    -o "Dir::Etc::sourceparts=-"
    -o "Dir::Etc::preferencesparts=$APT/etc/preferences.d"
    -o "Dir::State::lists=$APT/lists"
    -o "Dir::State::status=$APT/status"
    -o "Dir::Cache=$APT/cache"
    -o "APT::Architecture=amd64"
    -o "APT::Sandbox::User=root"
)
touch "$APT/status"

KVER_FILE="$GUEST_DIR/kernel-version"
if [ ! -s "$KVER_FILE" ] || [ ! -f "$GUEST_DIR/K/boot/vmlinuz-$(cat "$KVER_FILE")" ]; then
    log "resolving linux-image-6.12.*+deb13-amd64 from trixie"
    apt-get "${APT_OPTS[@]}" update >&2
    PKG=$(apt-cache "${APT_OPTS[@]}" search --names-only '^linux-image-6\.12\..*\+deb13-amd64$' \
        | awk '{print $1}' | grep -v -- '-dbg$' | grep -v unsigned | sort -V | tail -n1)
    [ -n "$PKG" ] || { log "no linux-image-6.12.*+deb13-amd64 package found in trixie"; exit 1; }
    log "package: $PKG"
    (cd "$GUEST_DIR" && rm -f ./*.deb && apt-get "${APT_OPTS[@]}" download "$PKG" >&2)
    DEB=$(ls "$GUEST_DIR"/"$PKG"_*.deb | head -n1)
    rm -rf "$GUEST_DIR/K"
    mkdir -p "$GUEST_DIR/K"
    dpkg -x "$DEB" "$GUEST_DIR/K"
    KVER=$(ls "$GUEST_DIR/K/usr/lib/modules" | head -n1)
    echo "$KVER" >"$KVER_FILE"
fi
KVER=$(cat "$KVER_FILE")
K="$GUEST_DIR/K"

# 3. Modules where virtme-ng (and modprobe in the guest) look for them.
[ -e "$K/lib/modules" ] || { mkdir -p "$K/lib"; ln -s ../usr/lib/modules "$K/lib/modules"; }
if [ ! -f "$K/usr/lib/modules/$KVER/modules.dep" ] || [ ! -f "$K/usr/lib/modules/$KVER/modules.dep.bin" ]; then
    depmod -b "$K" "$KVER"
fi
mkdir -p /lib/modules
if [ "$(readlink "/lib/modules/$KVER" 2>/dev/null)" != "$K/usr/lib/modules/$KVER" ]; then
    rm -rf "/lib/modules/$KVER"
    ln -s "$K/usr/lib/modules/$KVER" "/lib/modules/$KVER"
fi

echo "$K/boot/vmlinuz-$KVER"
