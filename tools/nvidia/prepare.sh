#!/usr/bin/env bash
# Fills .gl/ (kept out of git) with what a run of the layer on the NVIDIA
# machine needs, then `tools/nvidia/run.sh` runs there with .gl carried:
# - Debian bookworm packages that machine lacks (Xvfb, vkcube, the Vulkan
#   loader, validation layers, xwd, libwayland), as .debs;
# - weston 10 headless (pixman) from this machine, with the libraries it
#   loads, as one tarball (the machine has no Wayland compositor);
# - the layer's release build, syncbridge-info, the wsi_probe example and
#   the manifest template.
# Run from the project root on the development machine (Debian 12 with
# weston installed: tests/install-deps.sh).
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
mkdir -p .git/info
grep -qx '/.gl/' .git/info/exclude 2>/dev/null || echo '/.gl/' >> .git/info/exclude
rm -rf .gl && mkdir -p .gl/deb .gl/sb /tmp/amd64-lists/partial
o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64-lists)
apt-get "${o[@]}" update -qq
# Never libc6 or libstdc++6: unpacked over that machine's newer ones they
# break it.
pkgs=(libvulkan1 vulkan-tools vulkan-validationlayers xvfb xserver-common libxfont2
  libpixman-1-0 libxkbfile1 xkb-data x11-xkb-utils libfontenc1 libxshmfence1 libgl1
  libglx0 libglvnd0 libopengl0 libegl1 libgles2 libxcb-shm0 libxcb-present0
  libxcb-dri3-0 libxcb-xfixes0 libxcb-randr0 libxcb-xkb1 libxkbcommon0 libxau6
  libxdmcp6 libbsd0 libmd0 libaudit1 libunwind8 x11-utils x11-apps libxmu6 libxt6
  libsm6 libice6 libxaw7 libxpm4 libxext6 libx11-6 libx11-xcb1 libxcb1 libxrender1
  libxft2 libxi6 libxmuu1 libxcursor1 libpng16-16 libfontconfig1 libfreetype6
  libwayland-client0 libwayland-server0 libwayland-cursor0 libwayland-egl1 libffi8)
(cd .gl/deb && apt-get "${o[@]}" download "${pkgs[@]}" 2>&1 | grep -v unsandboxed | tail -1)

# weston: the binary, the headless backend and desktop shell it loads from
# their built-in paths, the screenshooter, and every library they link
# against except the C runtime (that machine's own is newer).
lib=/usr/lib/x86_64-linux-gnu
files=(/usr/bin/weston /usr/bin/weston-screenshooter "$lib"/libweston-10/headless-backend.so
  "$lib"/weston/desktop-shell.so "$lib"/weston-desktop-shell "$lib"/weston/libexec_weston.so.0
  "$lib"/weston/libexec_weston.so.0.0.0 /usr/share/weston)
mkdir -p /tmp/sbweston/opt/sbweston/lib
for f in "${files[@]}"; do [ -d "$f" ] || ldd "$f"; done | awk '/=>/ {print $3}' | sort -u |
  grep -vE '/(libc|libm|libstdc\+\+|libgcc_s|ld-linux-x86-64|libdl|libpthread|librt)\.so' |
  xargs -I{} cp -L {} /tmp/sbweston/opt/sbweston/lib/
tar -C / -cf /tmp/sbweston/sys.tar "${files[@]#/}"
tar -C /tmp/sbweston -rf /tmp/sbweston/sys.tar opt
gzip -c /tmp/sbweston/sys.tar > .gl/weston.tar.gz
rm -rf /tmp/sbweston

cargo build --release --quiet --lib --bin syncbridge-info --example wsi_probe
cp target/release/libVkLayer_syncbridge.so target/release/syncbridge-info \
  target/release/examples/wsi_probe manifest/VkLayer_syncbridge.json.in .gl/sb/
# The release profile keeps line tables; the carried copies need none.
strip --strip-debug .gl/sb/libVkLayer_syncbridge.so .gl/sb/syncbridge-info .gl/sb/wsi_probe
cp tools/nvidia/run.sh .gl/
du -sh .gl
