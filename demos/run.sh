#!/usr/bin/env bash
# Runs vkcube through the syncbridge layer on a headless compositor and
# leaves a screenshot and a frame-statistics report in out/demo/.
#
#   demos/run.sh [--x11|--guest] [--frames N] [--out DIR]
#
#   (default)  weston, headless (pixman renderer), vkcube-wayland: the
#              shared-memory path (the host cannot make dma-bufs)
#   --x11      Xvfb, vkcube (XCB), MIT-SHM
#   --guest    the sync_file path: vkcube (100 frames unless --frames) on
#              weston 14 GL inside the qemu test guest, with trixie's
#              lavapipe exporting the render fence as a sync_file into each
#              dma-buf; takes a few minutes (TCG)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
platform=wayland
frames=600
frames_given=0
out="$here/out/demo"
while [ $# -gt 0 ]; do
    case "$1" in
        --x11) platform=x11 ;;
        --guest) platform=guest ;;
        --wayland) platform=wayland ;;
        --frames) frames=$2; frames_given=1; shift ;;
        --out) out=$2; shift ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

need=(vkcube vkcube-wayland weston weston-screenshooter Xvfb import identify python3 cargo)
missing=0
for t in "${need[@]}"; do command -v "$t" >/dev/null 2>&1 || missing=1; done
[ -e /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ] || missing=1
# The host demo needs only the demo's packages; the guest demo also qemu.
if [ $platform = guest ]; then
    command -v qemu-system-x86_64 >/dev/null 2>&1 || missing=1
    deps=()
else
    deps=(--demo)
fi
if [ $missing = 1 ]; then
    echo "demo: installing what is missing (tests/install-deps.sh ${deps[*]})"
    "$here/tests/install-deps.sh" "${deps[@]}"
fi

mkdir -p "$out"
rm -f "$out"/stats.jsonl "$out"/screenshot.png "$out"/report.txt "$out"/layer.log
if [ -n "${SYNCBRIDGE_DEMO_LIBRARY:-}" ]; then
    # An already-built layer (the tests use this; cargo is busy there).
    lib=$SYNCBRIDGE_DEMO_LIBRARY
else
    echo "demo: building the layer (release)"
    (cd "$here" && cargo build --release --quiet)
    lib="$here/target/release/libVkLayer_syncbridge.so"
fi
mkdir -p "$out/layers"
sed "s|@LIBRARY_PATH@|$lib|" "$here/manifest/VkLayer_syncbridge.json.in" > "$out/layers/VkLayer_syncbridge.json"

run=$(mktemp -d)
chmod 700 "$run"
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$run"
}
trap cleanup EXIT

export VK_LAYER_PATH="$out/layers"
export VK_INSTANCE_LAYERS=VK_LAYER_SYNCBRIDGE_wsi
export SYNCBRIDGE_STATS="$out/stats.jsonl"
export SYNCBRIDGE_LOG=${SYNCBRIDGE_LOG:-info}
unset DISPLAY WAYLAND_DISPLAY

if [ $platform = guest ]; then
    bash "$here/tests/guest/setup.sh" >/dev/null
    bash "$here/tests/guest/setup-compositor.sh" >/dev/null
    # vkcube runs as root inside the guest's trixie chroot (trixie's
    # lavapipe offers SYNC_FD there) on weston 14 GL, which reads the
    # layer's dma-bufs (tests/guest/compositor.sh --real). The host's tree
    # is read-only there: the log, the statistics and the screenshot come
    # back on stdout.
    [ "$frames_given" = 1 ] || frames=100
    script=$(cat <<INNER
export VK_LAYER_PATH=\$SYNCBRIDGE_LAYER_DIR VK_INSTANCE_LAYERS=VK_LAYER_SYNCBRIDGE_wsi SYNCBRIDGE_LOG=info
export SYNCBRIDGE_STATS=/tmp/syncbridge-demo-stats.jsonl
vkcube --wsi wayland --c $frames >/dev/null 2>/tmp/syncbridge-demo-layer.log &
app=\$!
for _ in \$(seq 600); do
    grep -q ' on wayland: ' /tmp/syncbridge-demo-layer.log 2>/dev/null && break
    kill -0 \$app 2>/dev/null || break
    sleep 0.5
done
sleep 10
\$SYNCBRIDGE_SCREENSHOT /tmp/syncbridge-demo.png && echo "@@PNG \$(base64 -w0 /tmp/syncbridge-demo.png)"
wait \$app
status=\$?
sed 's/^/@@LOG /' /tmp/syncbridge-demo-layer.log
sed 's/^/@@STATS /' /tmp/syncbridge-demo-stats.jsonl 2>/dev/null
exit \$status
INNER
)
    echo "demo: vkcube --wsi wayland --c $frames through VK_LAYER_SYNCBRIDGE_wsi on weston 14 GL in the test guest (trixie's lavapipe)"
    start=$(date +%s)
    (cd "$here" && SYNCBRIDGE_LAYER_LIB="$lib" SYNCBRIDGE_GUEST_TIMEOUT=1200 tests/guest/run.sh \
        tests/guest/compositor.sh --real bash -c "$script") >"$out/guest.log" 2>&1 &
    guest_pid=$!
    while kill -0 "$guest_pid" 2>/dev/null; do
        printf '\rdemo: guest running %4ss' "$(( $(date +%s) - start ))"
        sleep 1
    done
    printf '\n'
    wait "$guest_pid" || { echo "demo: the guest run failed; see $out/guest.log" >&2; exit 1; }
    sed -n 's/^@@LOG //p' "$out/guest.log" >"$out/layer.log"
    sed -n 's/^@@STATS //p' "$out/guest.log" >"$out/stats.jsonl"
    sed -n 's/^@@PNG //p' "$out/guest.log" | base64 -d >"$out/screenshot.png" 2>/dev/null
    [ -s "$out/screenshot.png" ] || rm -f "$out/screenshot.png"
    [ -s "$out/stats.jsonl" ] || { echo "demo: no statistics came back; see $out/guest.log" >&2; exit 1; }
    root="${SYNCBRIDGE_GUEST_DIR:-$HOME/.cache/syncbridge-guest}"
    ver() { dpkg-query --admindir="$root/trixie-root/var/lib/dpkg" -W -f '${Version}' "$1" 2>/dev/null; }
    compositor="weston $(ver weston) GL (Mesa swrast) in the qemu guest (Linux $(cat "$root/kernel-version")), lavapipe $(ver mesa-vulkan-drivers)"
    app=(vkcube --wsi wayland --c "$frames")
elif [ $platform = wayland ]; then
    XDG_RUNTIME_DIR=$run weston --backend=headless-backend.so --use-pixman --width=640 --height=480 \
        --idle-time=0 --debug --socket=wl-demo >"$out/compositor.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 100); do [ -S "$run/wl-demo" ] && break; sleep 0.1; done
    [ -S "$run/wl-demo" ] || { echo "demo: weston did not start (see $out/compositor.log)" >&2; exit 1; }
    export XDG_RUNTIME_DIR=$run WAYLAND_DISPLAY=wl-demo
    app=(vkcube-wayland --c "$frames")
    shoot() { (cd "$run" && weston-screenshooter >/dev/null 2>&1 && mv "$run"/wayland-screenshot-*.png "$out/screenshot.png"); }
    compositor="weston $(weston --version 2>/dev/null | awk '{print $2}') headless (pixman)"
else
    exec 3< <(Xvfb -displayfd 1 -screen 0 640x480x24 -nolisten tcp 2>"$out/compositor.log")
    server_pid=$!
    read -r -t 30 dpy <&3 || { echo "demo: Xvfb did not start" >&2; exit 1; }
    export DISPLAY=":$dpy"
    app=(vkcube --c "$frames")
    shoot() { import -display "$DISPLAY" -window root "png:$out/screenshot.png" 2>/dev/null; }
    compositor="Xvfb $(dpkg-query -W -f '${Version}' xvfb 2>/dev/null || true)"
fi

if [ $platform != guest ]; then
echo "demo: ${app[*]} through VK_LAYER_SYNCBRIDGE_wsi on $compositor"
start=$(date +%s.%N)
"${app[@]}" >"$out/app.log" 2>"$out/layer.log" &
app_pid=$!
# The first frames can take a while on a loaded machine: shoot every half
# second from 2.5 s on (eight shots at most) and keep the one with the most
# colours (an empty root window or a black surface has one or two, a
# cube frame thousands), so the screenshot never races the first frames.
shots=0
best=0
next_shot=2.5
while kill -0 "$app_pid" 2>/dev/null; do
    now=$(date +%s.%N)
    el=$(python3 -c "print(f'{$now-$start:.1f}')")
    printf '\rdemo: running %5ss' "$el"
    if [ $shots -lt 8 ] && python3 -c "import sys; sys.exit(0 if $now-$start > $next_shot else 1)"; then
        shots=$((shots + 1))
        if shoot; then
            colours=$(identify -format %k "$out/screenshot.png" 2>/dev/null || echo 0)
            if [ "$colours" -gt "$best" ]; then
                best=$colours
                cp "$out/screenshot.png" "$out/.best.png"
            fi
        fi
        next_shot=$(python3 -c "print($now-$start+0.5)")
    fi
    sleep 0.25
done
[ -f "$out/.best.png" ] && mv "$out/.best.png" "$out/screenshot.png"
printf '\n'
wait "$app_pid" || { echo "demo: the application failed; see $out/layer.log" >&2; exit 1; }
[ -s "$out/stats.jsonl" ] || { echo "demo: no statistics were written (was the layer loaded?)" >&2; exit 1; }
fi

python3 - "$out" "$compositor" "${app[*]}" <<'PY' | tee "$out/report.txt"
import json, sys, os
out, compositor, app = sys.argv[1:4]
print(f"syncbridge demo: {app}")
print(f"  window system : {compositor}")
for i, line in enumerate(open(os.path.join(out, "stats.jsonl"))):
    s = json.loads(line)
    lat = s["release_latency_us"]
    fmt = lambda v: "n/a" if v is None else f"{v/1000:.2f} ms"
    print(f"  swapchain {i}   : {s['extent']} on {s['platform']}, {s['present_mode']}, "
          f"{s['buffers']} buffers, sync path {s['sync']}")
    print(f"    frames presented  : {s['frames_presented']} (skipped {s['frames_skipped']})")
    print(f"    frames per second : {s['fps']:.1f}")
    print(f"    present-to-release: p50 {fmt(lat['p50'])}, p90 {fmt(lat['p90'])}, p99 {fmt(lat['p99'])}")
shot = os.path.join(out, "screenshot.png")
print(f"  screenshot    : {shot if os.path.exists(shot) else 'not taken'}")
print(f"  layer log     : {os.path.join(out, 'layer.log')}")
PY
