#!/bin/bash
# Boot the syncbridge test guest (trixie 6.12 kernel, TCG, 1 vCPU), load
# vgem, run CMD inside with the host's root file system (read-only) and the
# current directory as working directory, print CMD's output and exit with
# CMD's exit status.
#
#   tests/guest/run.sh [--virtio-gpu] [--] CMD [ARGS...]
#
#   --virtio-gpu   add `-device virtio-gpu-pci` (a KMS device, driver
#                  virtio_gpu) to the guest
#
# Environment:
#   SYNCBRIDGE_GUEST_DIR       cache from setup.sh (default ~/.cache/syncbridge-guest)
#   SYNCBRIDGE_GUEST_TIMEOUT   overall timeout in seconds (default 300)
#   SYNCBRIDGE_GUEST_MODULES   modules to modprobe in the guest (default "vgem")
#   SYNCBRIDGE_GUEST_RWDIR     a host folder the guest may write to (e.g. for
#                              screenshots); read-only like the rest otherwise
#   SYNCBRIDGE_GUEST_CPUS      vCPUs (default 1: two guests with 2 vCPUs each
#                              on a 2-core host ran the same work 3x slower
#                              than two with 1 each; tests/guest/README.md)
#   RUST_BACKTRACE, RUST_LOG, RUST_TEST_THREADS, RUST_TEST_NOCAPTURE and
#   SYNCBRIDGE_* are passed in.
#
# Exit status: CMD's status; 124 on timeout; 125 if the guest could not be
# booted or did not report a status; 2 if the guest is not set up.
set -euo pipefail

GUEST_DIR="${SYNCBRIDGE_GUEST_DIR:-$HOME/.cache/syncbridge-guest}"
TIMEOUT="${SYNCBRIDGE_GUEST_TIMEOUT:-300}"
MODULES="${SYNCBRIDGE_GUEST_MODULES:-vgem}"
QEMU_OPTS=()
[ -n "${SYNCBRIDGE_GUEST_RWDIR:-}" ] && QEMU_OPTS+=("--rwdir=$SYNCBRIDGE_GUEST_RWDIR")
while [ $# -gt 0 ]; do
    case "$1" in
        --virtio-gpu) QEMU_OPTS+=("--qemu-opts=-device virtio-gpu-pci"); MODULES="$MODULES virtio_gpu"; shift ;;
        --) shift; break ;;
        *) break ;;
    esac
done
[ $# -gt 0 ] || { echo "usage: $0 [--virtio-gpu] [--] CMD [ARGS...]" >&2; exit 2; }

KVER=$(cat "$GUEST_DIR/kernel-version" 2>/dev/null || true)
KERNEL="$GUEST_DIR/K/boot/vmlinuz-$KVER"
if [ -z "$KVER" ] || [ ! -f "$KERNEL" ] || [ ! -e "/lib/modules/$KVER" ] || ! command -v vng >/dev/null; then
    echo "run.sh: the test guest is not set up: run tests/guest/setup.sh" >&2
    exit 2
fi

OUT=$(mktemp -d /tmp/syncbridge-guest.XXXXXX)
trap 'rm -rf "$OUT"' EXIT

# The command line, quoted for the guest's shell.
QUOTED=$(printf '%q ' "$@")
ENV_LINES=$(env | grep -E '^(RUST_BACKTRACE|RUST_LOG|RUST_TEST_THREADS|RUST_TEST_NOCAPTURE|SYNCBRIDGE_[A-Z_]*)=' \
    | grep -v '^SYNCBRIDGE_GUEST_' | while IFS= read -r kv; do printf 'export %q\n' "$kv"; done || true)
cat >"$OUT/guest.sh" <<INNER
#!/bin/bash
exec >"$OUT/output" 2>&1
$ENV_LINES
export SYNCBRIDGE_IN_GUEST=1
# The root file system is read-only: without a writable cache Mesa compiles
# every shader again in every process (a probe client's start 5-6 s instead
# of 3-4 s under TCG).
mkdir -p -m 1777 "$OUT/mesa-shader-cache" && export MESA_SHADER_CACHE_DIR="$OUT/mesa-shader-cache"
for m in $MODULES; do modprobe "\$m" || echo "run.sh(guest): modprobe \$m failed"; done
cd $(printf '%q' "$PWD")
$QUOTED
echo \$? >"$OUT/status"
INNER
chmod +x "$OUT/guest.sh"

# The kernel's console goes to vng.log (--verbose), shown when the guest
# fails to report a status: a guest that dies while booting says why there.
boot() {
    rm -f "$OUT/output" "$OUT/status"
    set +e
    timeout --kill-after=10 "$TIMEOUT" vng --verbose --run "$KERNEL" --disable-kvm --force-9p --cpus "${SYNCBRIDGE_GUEST_CPUS:-1}" \
        --rwdir "$OUT" "${QEMU_OPTS[@]}" --exec "$OUT/guest.sh" >"$OUT/vng.log" 2>&1 </dev/null
    VNG_STATUS=$?
    set -e
}

START=$(date +%s.%N)
boot
# A guest that died before it started the command (qemu under TCG once
# exited 6 s into a boot, nothing logged, in one of many CI boots) ran
# nothing of the tests: boot once more, and say so.
if [ "$VNG_STATUS" != 124 ] && [ "$VNG_STATUS" != 137 ] && [ ! -e "$OUT/output" ]; then
    echo "run.sh: the guest died before it started the command (vng exit $VNG_STATUS); its console:" >&2
    tail -n 30 "$OUT/vng.log" >&2
    echo "run.sh: booting once more" >&2
    boot
fi
END=$(date +%s.%N)

cat "$OUT/output" 2>/dev/null || true
ELAPSED=$(echo "$END - $START" | bc 2>/dev/null || awk "BEGIN{print $END - $START}")
echo "run.sh: guest ${KVER} ran for ${ELAPSED}s (boot + command + power-off)" >&2
if [ "$VNG_STATUS" = 124 ] || [ "$VNG_STATUS" = 137 ]; then
    echo "run.sh: timed out after ${TIMEOUT}s" >&2
    tail -n 30 "$OUT/vng.log" >&2
    exit 124
fi
if [ ! -s "$OUT/status" ]; then
    echo "run.sh: the guest reported no exit status (vng exit $VNG_STATUS); vng log:" >&2
    tail -n 30 "$OUT/vng.log" >&2
    exit 125
fi
exit "$(cat "$OUT/status")"
