#!/bin/bash
# Inside the test guest: start a headless Wayland compositor from the trixie
# chroot of setup-compositor.sh (weston 14 GL by default, or sway 1.10),
# run CMD as a client of it, stop the compositor, exit with CMD's status.
#
#   tests/guest/run.sh --virtio-gpu tests/guest/compositor.sh [OPTIONS] [--] CMD [ARGS...]
#
#   --weston      weston 14, headless backend, GL renderer, kiosk shell (default)
#   --sway        sway 1.10 (wlroots 0.18), headless backend, gles2 renderer
#   --mutter      mutter 48 headless (a 1024x768 virtual monitor, its own
#                 session bus), on the real path like --real: the DRM nodes
#                 stay 0600, so mutter (as nobody) makes a surfaceless
#                 renderer on llvmpipe and imports client dma-bufs
#                 (linux-dmabuf v3), waiting on their implicit fences
#                 before it reads them; it offers wp_fifo_v1 and
#                 wp_commit_timing_v1. llvmpipe runs with
#                 GALLIUM_OVERRIDE_CPU_CAPS=sse4.1: the AVX2 code LLVM 19
#                 generates for mutter's first paint crashes under qemu's
#                 TCG (SIGSEGV in JIT code). No screenshot tool.
#   --outside     with --mutter: CMD runs as root OUTSIDE the chroot (the
#                 guest's bookworm userland: bookworm's lavapipe, no SYNC_FD,
#                 so the layer takes the soft-fence path on vgem), while
#                 mutter stays on the real path (nodes 0600 for nobody)
#   --conformance the conformance compositor (tests/conformance-compositor,
#                 built on the host; SYNCBRIDGE_CONFORMANCE_BIN overrides
#                 where), run from the host's root as root with
#                 SYNCBRIDGE_CONFORMANCE_ARGS added to its command line: it
#                 offers wp_linux_drm_syncobj_v1 on the first render node
#                 with timelines (boot the guest with --virtio-gpu) and
#                 prints one line per commit into the log file. With
#                 --real (give it after --real) CMD runs in the chroot on
#                 trixie's lavapipe as with weston. No screenshots: its log
#                 has every frame's pixels.
#   --x11-relay   with --conformance: also an X server with DRI3 1.4
#                 explicit sync: the guest's Xvfb (bookworm's, outside the
#                 chroot) and the relay in front of it (dri3-syncobj-proxy,
#                 beside the compositor's binary; see
#                 tests/conformance-compositor/README.md), as root on the
#                 same render node; exports DISPLAY (the relay) and
#                 SYNCBRIDGE_X11_RELAY_LOGFILE (its lines)
#   --xwayland    also start Xwayland (weston --xwayland / sway "xwayland enable")
#                 and export DISPLAY; root may connect (xhost si:localuser:root)
#   --real        the real path (TESTBED.md): weston 14 GL with the guest's
#                 DRM nodes left 0600, so Mesa in weston (as nobody) takes
#                 the swrast path and reads client dma-bufs by mmap; CMD runs
#                 as root INSIDE the chroot, where trixie's lavapipe opens
#                 /dev/udmabuf and offers SYNC_FD. The current directory (the
#                 repository) is bind-mounted at /mnt/repo and CMD runs
#                 there (arguments under the current directory are
#                 translated); the layer cargo built (target/debug's,
#                 else target/release's, or SYNCBRIDGE_LAYER_LIB) gets a
#                 manifest in /tmp/syncbridge (SYNCBRIDGE_LAYER_DIR), next to
#                 syncbridge-info. Run the guest without --virtio-gpu.
#
# Xwayland offers DRI3 only with glamor, and refuses glamor when the GL
# renderer's name says llvmpipe or softpipe. Mesa's driconf option
# force_gl_renderer (an environment variable overrides it) renames the
# renderer, so Xwayland runs glamor on llvmpipe (on vgem's render node)
# and offers DRI3 + Present; it is set for the compositor and its
# Xwayland with --xwayland.
#
# linux-dmabuf needs the GL renderer (Mesa's llvmpipe, which Mesa puts on
# vgem's render node when it finds no vgem_dri.so). Run the guest WITHOUT
# --virtio-gpu for weston: with it weston picks virtio-gpu's node, which
# cannot import foreign dma-bufs in 6.12. See README.md for what works.
#
# CMD runs as root in the current directory with:
#   XDG_RUNTIME_DIR=/run/sbwl  WAYLAND_DISPLAY=wayland-N  (DISPLAY=:N)
#   SYNCBRIDGE_COMPOSITOR=weston|sway
#   SYNCBRIDGE_SCREENSHOT=/run/sbwl/screenshot  (`$SYNCBRIDGE_SCREENSHOT OUT`
#       writes a screenshot of the output: PNG for weston, PPM for sway)
#   SYNCBRIDGE_COMPOSITOR_LOGFILE=/run/sbwl/compositor.log
#   SYNCBRIDGE_COMPOSITOR_PID      the compositor's process id
#   with --x11-relay also DISPLAY=:91 and
#       SYNCBRIDGE_X11_RELAY_LOGFILE=/run/sbwl/x11-relay.log
#   with --real also SYNCBRIDGE_LAYER_DIR=/tmp/syncbridge (VK_LAYER_PATH for
#       the layer) and SYNCBRIDGE_REAL_PATH=1
# The compositor runs as nobody (sway refuses root) in the chroot; the
# guest's /dev/dri/*, /dev/dma_heap/system and /dev/udmabuf are made 0666.
#
# Environment:
#   SYNCBRIDGE_COMPOSITOR          weston|sway (instead of --weston/--sway)
#   SYNCBRIDGE_COMPOSITOR_ROOT     the chroot (default ~/.cache/syncbridge-guest/trixie-root)
#   SYNCBRIDGE_COMPOSITOR_TIMEOUT  seconds to wait for the compositor (default 240;
#                                  llvmpipe's start-up under TCG takes 10-60 s)
#   SYNCBRIDGE_RENDER_NODE         sway's render node (default /dev/dri/renderD128)
#   SYNCBRIDGE_WESTON_SHELL        weston shell (default kiosk; both crash, see README)
#   SYNCBRIDGE_COMPOSITOR_LOG=1    print the compositor's log afterwards
#   SYNCBRIDGE_LAYER_LIB           the layer library for --real (default: the
#                                  debug build's, else the release build's;
#                                  not the newest: tests/run.sh builds both,
#                                  and only the vkmark boot asks for release)
#                                  (it is printed anyway when it fails to start)
#
# Exit: CMD's status; 3 if the compositor did not come up; 2 on bad usage or
# a missing chroot.
set -uo pipefail

KIND="${SYNCBRIDGE_COMPOSITOR:-weston}"
XWAYLAND=0
X11RELAY=0
REAL=0
OUTSIDE=0
while [ $# -gt 0 ]; do
    case "$1" in
        --weston) KIND=weston; shift ;;
        --sway) KIND=sway; shift ;;
        --xwayland) XWAYLAND=1; shift ;;
        --x11-relay) X11RELAY=1; shift ;;
        --real) REAL=1; KIND=weston; shift ;;
        --mutter) REAL=1; KIND=mutter; shift ;;
        --outside) OUTSIDE=1; shift ;;
        --conformance) KIND=conformance; shift ;;
        --) shift; break ;;
        *) break ;;
    esac
done
[ $# -gt 0 ] || { echo "usage: $0 [--weston|--sway|--mutter|--conformance] [--xwayland] [--x11-relay] [--real] [--] CMD [ARGS...]" >&2; exit 2; }
log() { echo "compositor.sh: $*" >&2; }
ROOT="${SYNCBRIDGE_COMPOSITOR_ROOT:-$HOME/.cache/syncbridge-guest/trixie-root}"
TIMEOUT="${SYNCBRIDGE_COMPOSITOR_TIMEOUT:-240}"
if [ "$(id -u)" != 0 ] || [ -z "${SYNCBRIDGE_IN_GUEST:-}" ]; then
    log "run me inside the test guest: tests/guest/run.sh --virtio-gpu $0 CMD..."
    exit 2
fi
if [ ! -x "$ROOT/usr/bin/weston" ] || [ ! -x "$ROOT/usr/bin/sway" ]; then
    log "no compositor chroot at $ROOT: run tests/guest/setup-compositor.sh on the host"
    exit 2
fi
if [ "$KIND" = mutter ] && [ ! -x "$ROOT/usr/bin/mutter" ]; then
    log "the chroot at $ROOT has no mutter: run tests/guest/setup-compositor.sh on the host"
    exit 2
fi
if [ "$REAL" = 1 ] && { [ ! -x "$ROOT/usr/bin/vkcube" ] || ! ls "$ROOT"/usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1; }; then
    log "the chroot at $ROOT has no lavapipe/vkcube: run tests/guest/setup-compositor.sh on the host"
    exit 2
fi
T0=$(date +%s.%N)
elapsed() { echo "$(date +%s.%N) - $T0" | bc; }

# The render node for sway's gles2 renderer (vgem's: it imports any dma-buf).
NODE="${SYNCBRIDGE_RENDER_NODE:-/dev/dri/renderD128}"

# --real leaves the DRM nodes 0600: weston (nobody) then cannot open any,
# and Mesa's swrast path imports client dma-bufs by mmap (kms_swrast on a
# readable vgem node cannot map them; see README.md).
[ "$REAL" = 1 ] || chmod 0666 /dev/dri/* /dev/dma_heap/system /dev/udmabuf 2>/dev/null

RT=/run/sbwl
MOUNTS=()
mnt() { mount "$@" && MOUNTS=("${!#}" "${MOUNTS[@]}"); }
cleanup() {
    [ -n "${CPID:-}" ] && kill -0 "$CPID" 2>/dev/null && { kill "$CPID"; sleep 1; kill -9 "$CPID" 2>/dev/null; }
    for p in ${RELAYPID:-} ${XVFBPID:-}; do kill "$p" 2>/dev/null; done
    for m in "${MOUNTS[@]}"; do umount -l "$m" 2>/dev/null; done
}
trap cleanup EXIT
for d in dev proc sys; do mnt --rbind "/$d" "$ROOT/$d"; done
mnt -t tmpfs tmpfs "$ROOT/tmp"
mnt -t tmpfs tmpfs "$ROOT/run"
mkdir -p "$RT" "$ROOT$RT" "$ROOT/tmp/.X11-unix" "$ROOT/tmp/home" /tmp/.X11-unix
chown 65534:65534 "$ROOT/tmp/home"
mnt -t tmpfs -o mode=0700,uid=65534,gid=65534 tmpfs "$RT"
mnt --bind "$RT" "$ROOT$RT"
# The host's /tmp (seen through the guest's overlay) may hold stale X sockets.
mnt -t tmpfs -o mode=1777 tmpfs /tmp/.X11-unix
mnt --bind /tmp/.X11-unix "$ROOT/tmp/.X11-unix"

if [ "$REAL" = 1 ]; then
    # The repository (read-only, as the guest sees it) at /mnt/repo, and
    # the layer cargo built with a manifest in /tmp/syncbridge.
    REPO=/mnt/repo
    mnt -t tmpfs tmpfs "$ROOT/mnt"
    mkdir -p "$ROOT$REPO"
    mnt --rbind "$PWD" "$ROOT$REPO"
    LIB="${SYNCBRIDGE_LAYER_LIB:-}"
    if [ -z "$LIB" ]; then
        for d in debug release; do
            LIB=$(ls -t "$PWD"/target/$d/{,deps/}libVkLayer_syncbridge.so 2>/dev/null | head -n1)
            [ -n "$LIB" ] && break
        done
    fi
    [ -f "$LIB" ] || { log "no layer library built (cargo build), SYNCBRIDGE_LAYER_LIB=${SYNCBRIDGE_LAYER_LIB:-}"; exit 2; }
    LDIR=/tmp/syncbridge
    mkdir -p "$ROOT$LDIR"
    case "$LIB" in
        "$PWD"/*) CLIB=$REPO${LIB#"$PWD"} ;;
        *) cp "$LIB" "$ROOT$LDIR/" && CLIB=$LDIR/libVkLayer_syncbridge.so ;;
    esac
    sed "s|@LIBRARY_PATH@|$CLIB|" manifest/VkLayer_syncbridge.json.in >"$ROOT$LDIR/VkLayer_syncbridge.json"
    P=$(dirname "$LIB"); [ "${P##*/}" = deps ] && P=$(dirname "$P")
    if [ -x "$P/syncbridge-info" ]; then
        case "$P" in
            "$PWD"/*) ln -s "$REPO${P#"$PWD"}/syncbridge-info" "$ROOT$LDIR/syncbridge-info" ;;
            *) cp "$P/syncbridge-info" "$ROOT$LDIR/" ;;
        esac
    fi
    log "layer $LIB as $CLIB (manifest in $LDIR)"
fi

LOGFILE=$RT/compositor.log
XENV=()
[ "$XWAYLAND" = 1 ] && XENV=(force_gl_renderer=virtual-gpu)
inchroot() {
    chroot --userspec=65534:65534 "$ROOT" env -i PATH=/usr/bin:/bin HOME=/tmp/home \
        XDG_RUNTIME_DIR=$RT "${XENV[@]}" "$@"
}
case "$KIND" in
    weston)
        args=(weston --backend=headless --renderer=gl --width=1024 --height=768
              --shell="${SYNCBRIDGE_WESTON_SHELL:-kiosk}" --socket=wayland-1 --debug
              --idle-time=0)
        [ "$XWAYLAND" = 1 ] && args+=(--xwayland)
        inchroot "${args[@]}" >>"$LOGFILE" 2>&1 &
        SHOT='cd /run/sbwl/shots && rm -f wayland-screenshot-*.png && timeout 60 weston-screenshooter && mv wayland-screenshot-*.png "$1"'
        ;;
    sway)
        { echo "output HEADLESS-1 resolution 1024x768"
          [ "$XWAYLAND" = 1 ] && echo "xwayland enable" || echo "xwayland disable"
        } >"$ROOT/tmp/sway.cfg"
        inchroot WLR_BACKENDS=headless WLR_LIBINPUT_NO_DEVICES=1 WLR_RENDERER=gles2 \
            WLR_RENDERER_ALLOW_SOFTWARE=1 ${NODE:+WLR_RENDER_DRM_DEVICE=$NODE} \
            sway -c /tmp/sway.cfg -d >>"$LOGFILE" 2>&1 &
        SHOT='cd /run/sbwl/shots && grim -t ppm shot.ppm && mv shot.ppm "$1"'
        ;;
    mutter)
        inchroot GALLIUM_OVERRIDE_CPU_CAPS=sse4.1 dbus-run-session -- mutter --headless --wayland \
            --no-x11 --virtual-monitor 1024x768 --wayland-display=wayland-1 >>"$LOGFILE" 2>&1 &
        SHOT='echo "mutter: no screenshot tool in the chroot" >&2; exit 1'
        ;;
    conformance)
        CCBIN="${SYNCBRIDGE_CONFORMANCE_BIN:-$PWD/tests/conformance-compositor/target/debug/conformance-compositor}"
        if [ ! -x "$CCBIN" ]; then
            log "no $CCBIN: build it on the host (cargo build --manifest-path tests/conformance-compositor/Cargo.toml)"
            exit 2
        fi
        # Outside the chroot, as root (it opens the render node even where
        # --real leaves it 0600); its socket is in $RT, which the chroot
        # sees at the same path.
        # shellcheck disable=SC2086
        XDG_RUNTIME_DIR=$RT "$CCBIN" --socket wayland-1 ${SYNCBRIDGE_CONFORMANCE_ARGS:-} >>"$LOGFILE" 2>&1 &
        SHOT='echo "conformance: no screenshots; its log has each frame'"'"'s pixels" >&2; exit 1'
        ;;
    *) log "unknown compositor '$KIND'"; exit 2 ;;
esac
CPID=$!
mkdir -p "$RT/shots" && chown 65534:65534 "$RT/shots"
cat >"$RT/screenshot" <<EOF
#!/bin/bash
# \$1: output file (absolute path, or relative to the caller's directory).
# Runs in the guest or inside the chroot (--real clients).
out=\$(realpath -m "\${1:?usage: \$0 OUT}")
R=$ROOT; [ -d "\$R/usr/bin" ] || R=/
chroot --userspec=65534:65534 "\$R" env -i PATH=/usr/bin:/bin HOME=/tmp/home \\
    XDG_RUNTIME_DIR=$RT WAYLAND_DISPLAY=\$WAYLAND_DISPLAY bash -c '$SHOT' _ $RT/shots/out || exit 1
mv $RT/shots/out "\$out"
EOF
chmod 0755 "$RT/screenshot"

# Wait (bounded) for the socket, then for the compositor to answer.
SOCK=
while [ -z "$SOCK" ]; do
    for s in "$RT"/wayland-*; do [ -S "$s" ] && SOCK=$(basename "$s") && break; done
    [ -n "$SOCK" ] && break
    if ! kill -0 "$CPID" 2>/dev/null || [ "$(echo "$(elapsed) > $TIMEOUT" | bc)" = 1 ]; then
        log "$KIND did not create a socket in $(elapsed) s; its log:"
        cat "$LOGFILE" >&2
        exit 3
    fi
    sleep 0.2
done
export XDG_RUNTIME_DIR=$RT WAYLAND_DISPLAY=$SOCK SYNCBRIDGE_COMPOSITOR=$KIND
export SYNCBRIDGE_SCREENSHOT=$RT/screenshot SYNCBRIDGE_COMPOSITOR_LOGFILE=$LOGFILE
# A round trip through the chroot's wayland-info: the compositor is serving.
# (The conformance compositor says so itself; its socket is root's.)
until if [ "$KIND" = conformance ]; then grep -q '^ready ' "$LOGFILE"; else
        inchroot WAYLAND_DISPLAY=$SOCK wayland-info -i wl_compositor >/dev/null 2>&1; fi; do
    if ! kill -0 "$CPID" 2>/dev/null || [ "$(echo "$(elapsed) > $TIMEOUT" | bc)" = 1 ]; then
        log "$KIND does not answer on $SOCK after $(elapsed) s; its log:"
        cat "$LOGFILE" >&2
        exit 3
    fi
    sleep 0.5
done
CPROC=
[ "$KIND" = conformance ] || CPROC=$(pgrep -o -x "$KIND" || true)
export SYNCBRIDGE_COMPOSITOR_PID=${CPROC:-$CPID}
if [ "$REAL" = 1 ]; then
    log "$KIND ready on $RT/$SOCK after $(elapsed) s (GL without a DRM node: nodes left 0600)"
else
    log "$KIND ready on $RT/$SOCK after $(elapsed) s (render node: ${NODE:-none})"
fi

if [ "$XWAYLAND" = 1 ]; then
    X=
    while [ -z "$X" ]; do
        for s in /tmp/.X11-unix/X*; do [ -S "$s" ] && X=${s##*/X} && break; done
        [ -n "$X" ] && break
        if [ "$(echo "$(elapsed) > $TIMEOUT" | bc)" = 1 ]; then log "no X socket in $(elapsed) s"; break; fi
        sleep 0.2
    done
    if [ -n "$X" ]; then
        export DISPLAY=:$X
        # Xwayland admits only its own user (nobody); let root's clients in.
        until setpriv --reuid=65534 --regid=65534 --clear-groups env -i DISPLAY=$DISPLAY \
                xhost +si:localuser:root >/dev/null 2>&1; do
            if [ "$(echo "$(elapsed) > $TIMEOUT" | bc)" = 1 ]; then log "Xwayland does not answer on $DISPLAY"; break; fi
            sleep 0.5
        done
        log "Xwayland on $DISPLAY after $(elapsed) s"
    fi
fi

if [ "$X11RELAY" = 1 ]; then
    RELAYBIN="$(dirname "${CCBIN:-$PWD/tests/conformance-compositor/target/debug/x}")/dri3-syncobj-proxy"
    [ -x "$RELAYBIN" ] || { log "no $RELAYBIN: build tests/conformance-compositor on the host"; exit 2; }
    Xvfb :90 -screen 0 640x480x24 -nolisten tcp -ac >>"$RT/xvfb.log" 2>&1 &
    XVFBPID=$!
    until [ -S /tmp/.X11-unix/X90 ]; do
        if [ "$(echo "$(elapsed) > $TIMEOUT" | bc)" = 1 ]; then log "Xvfb did not start"; break; fi
        sleep 0.2
    done
    "$RELAYBIN" --display 91 --upstream 90 >>"$RT/x11-relay.log" 2>&1 &
    RELAYPID=$!
    until grep -q "listening on" "$RT/x11-relay.log" 2>/dev/null; do
        if [ "$(echo "$(elapsed) > $TIMEOUT" | bc)" = 1 ]; then log "the X11 relay did not start"; cat "$RT/x11-relay.log" >&2; break; fi
        sleep 0.2
    done
    export DISPLAY=:91 SYNCBRIDGE_X11_RELAY_LOGFILE=$RT/x11-relay.log
    log "X11 relay on $DISPLAY (Xvfb :90) after $(elapsed) s"
fi

if [ "$REAL" = 1 ] && [ "$OUTSIDE" = 0 ]; then
    # As root inside the chroot, in the repository; paths under the current
    # directory become paths under /mnt/repo.
    args=()
    for a in "$@"; do
        case "$a" in "$PWD"/*) a=$REPO${a#"$PWD"} ;; esac
        args+=("$a")
    done
    export SYNCBRIDGE_LAYER_DIR=$LDIR SYNCBRIDGE_REAL_PATH=1
    # A shader cache the chroot can write (its /tmp is a tmpfs).
    mkdir -p -m 1777 "$ROOT/tmp/mesa-shader-cache"
    export MESA_SHADER_CACHE_DIR=/tmp/mesa-shader-cache
    chroot "$ROOT" /bin/sh -c 'cd "$0" && exec "$@"' "$REPO" "${args[@]}"
    STATUS=$?
else
    "$@"
    STATUS=$?
fi

if ! kill -0 "$CPID" 2>/dev/null; then
    # It died under the command: say so, with what the kernel saw.
    log "$KIND exited during the command; the kernel log says:"
    dmesg 2>/dev/null | grep -iE 'segfault|traps:|general protection' | tail -n 5 >&2
fi
kill "$CPID" 2>/dev/null
for _ in $(seq 50); do kill -0 "$CPID" 2>/dev/null || break; sleep 0.1; done
[ "${SYNCBRIDGE_COMPOSITOR_LOG:-0}" = 1 ] && { log "$KIND log:"; cat "$LOGFILE" >&2; }
log "done after $(elapsed) s, command status $STATUS"
exit "$STATUS"
