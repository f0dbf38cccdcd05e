#!/bin/bash
# The conformance compositor against its own smoke client, in the test
# guest (a render node with timelines, /dev/udmabuf, vgem):
#
#   cargo build --manifest-path tests/conformance-compositor/Cargo.toml
#   tests/guest/run.sh --virtio-gpu -- tests/conformance-compositor/smoke.sh [SCENARIO...]
#
# Scenarios (default: all): explicit hold implicit timeout abandoned frames misuse
# Each starts the compositor on its own socket, runs syncobj-smoke against
# it, stops it with SIGTERM, and checks both sides' lines: every frame's
# colour read back at the centre and the corners, each read only after its
# acquire point / fence (waited_us >= the client's delay), releases, the
# summary, the exit status. Prints "smoke.sh: SCENARIO ok|FAIL" lines and
# exits non-zero if any failed.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BIN="${CONFORMANCE_BIN:-$HERE/target/debug}"
CC="$BIN/conformance-compositor"
SMOKE="$BIN/syncobj-smoke"
DELAY_MS="${SMOKE_DELAY_MS:-400}"
FRAMES="${SMOKE_FRAMES:-6}"
[ -x "$CC" ] && [ -x "$SMOKE" ] || { echo "smoke.sh: build first: cargo build --manifest-path $HERE/Cargo.toml" >&2; exit 2; }
chmod 0666 /dev/udmabuf /dev/dri/* 2>/dev/null
export XDG_RUNTIME_DIR
XDG_RUNTIME_DIR=$(mktemp -d /tmp/cc-smoke.XXXXXX)
WORK="$XDG_RUNTIME_DIR"
trap 'rm -rf "$WORK"' EXIT
N=0
FAILED=0
fail() { echo "smoke.sh: $SCEN FAIL: $*"; OK=0; }

# start_cc ARGS...: starts the compositor; sets CPID, CLOG, and WAYLAND_DISPLAY.
start_cc() {
    N=$((N + 1))
    export WAYLAND_DISPLAY="cc-smoke-$N"
    CLOG="$WORK/cc-$N.log"
    "$CC" --socket "$WAYLAND_DISPLAY" "$@" >"$CLOG" 2>&1 &
    CPID=$!
    for _ in $(seq 200); do
        grep -q '^ready ' "$CLOG" && return 0
        kill -0 "$CPID" 2>/dev/null || break
        sleep 0.1
    done
    echo "smoke.sh: the compositor did not start:"; cat "$CLOG"
    return 1
}

# stop_cc: SIGTERM, wait; sets CSTATUS.
stop_cc() {
    kill -TERM "$CPID" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$CPID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$CPID" 2>/dev/null
    wait "$CPID"
    CSTATUS=$?
}

show() {
    echo "--- compositor ($*)"; cat "$CLOG"
    echo "--- client"; cat "$WORK/smoke.out"
}

# check_frames KIND WAIT: each smoke frame's colour in the commit line of
# the same number (the proof that the read came after the client's write,
# which it made just before signalling) and the wait kind. How long the
# compositor waited is printed, not checked: it starts the clock when it
# dispatches the commit, which on a loaded machine can be most of the
# client's delay later.
check_frames() {
    local kind=$1 wait=$2 f col line w waits=()
    while read -r f col; do
        line=$(grep "^commit seq=$f " "$CLOG") || { fail "no commit line for frame $f"; continue; }
        [[ "$line" == *" kind=$kind "* ]] || fail "frame $f: not kind=$kind: $line"
        [[ "$line" == *" wait=$wait "* ]] || fail "frame $f: not wait=$wait: $line"
        [[ "$line" == *" pixel=$col "* ]] || fail "frame $f: expected pixel=$col (the colour written just before the buffer was made ready): $line"
        [[ "$line" == *" corners=$col,$col,$col,$col "* ]] || fail "frame $f: corners not $col: $line"
        w=$(sed -n 's/.* waited_us=\([0-9]*\).*/\1/p' <<<"$line")
        waits+=("$((${w:-0} / 1000))")
    done < <(sed -n 's/^smoke: frame=\([0-9]*\) buffer=[0-9] colour=\(0x[0-9a-f]*\).*/\1 \2/p' "$WORK/smoke.out")
    echo "smoke.sh: $SCEN: waited_ms=${waits[*]} (client delay $DELAY_MS ms)"
    local frames
    frames=$(grep -c '^smoke: frame=[0-9]* buffer=[0-9] colour=' "$WORK/smoke.out")
    [ "$frames" = "$FRAMES" ] || fail "the client showed $frames frames, not $FRAMES"
}

scenario_explicit() {
    start_cc || return
    "$SMOKE" explicit --frames "$FRAMES" --delay-ms "$DELAY_MS" >"$WORK/smoke.out" 2>&1
    local s=$?
    stop_cc
    [ $s = 0 ] || fail "syncobj-smoke exited $s"
    grep -q '^ready .* syncobj=1' "$CLOG" || fail "no syncobj global"
    check_frames dmabuf point
    # Every commit's release point signalled: FRAMES releases (the last on
    # destruction).
    local rel; rel=$(grep -c '^release seq=' "$CLOG")
    [ "$rel" = "$FRAMES" ] || fail "$rel release lines, expected $FRAMES"
    grep -q "^summary commits=$FRAMES dmabuf=$FRAMES shm=0 explicit=$FRAMES .* errors=0" "$CLOG" || fail "summary"
    [ "$CSTATUS" = 0 ] || fail "compositor exit status $CSTATUS"
}

scenario_hold() {
    start_cc --hold-release || return
    "$SMOKE" explicit --frames 4 --delay-ms "$DELAY_MS" --compositor-pid "$CPID" >"$WORK/smoke.out" 2>&1
    local s=$?
    stop_cc
    [ $s = 0 ] || fail "syncobj-smoke exited $s"
    grep -q '^smoke: held release_point=1 unsignalled_for_ms=' "$WORK/smoke.out" || fail "the client did not see the held release"
    grep -q '^held seq=1 ' "$CLOG" || fail "the compositor did not hold seq 1"
    grep -q '^hold off released=' "$CLOG" || fail "SIGUSR1 did not let the releases go"
    [ "$CSTATUS" = 0 ] || fail "compositor exit status $CSTATUS"
}

scenario_implicit() {
    start_cc || return
    "$SMOKE" implicit --frames "$FRAMES" --delay-ms "$DELAY_MS" >"$WORK/smoke.out" 2>&1
    local s=$?
    stop_cc
    [ $s = 0 ] || fail "syncobj-smoke exited $s"
    check_frames dmabuf implicit
    grep -q "^summary commits=$FRAMES dmabuf=$FRAMES shm=0 explicit=0 implicit_waits=$FRAMES .* errors=0" "$CLOG" || fail "summary"
    [ "$CSTATUS" = 0 ] || fail "compositor exit status $CSTATUS"
}

scenario_timeout() {
    start_cc --acquire-timeout-ms 1000 || return
    # The client stays 5 s, well past the 1 s timeout even when loaded.
    "$SMOKE" timeout --delay-ms 5000 >"$WORK/smoke.out" 2>&1
    local s=$?
    stop_cc
    [ $s = 0 ] || fail "syncobj-smoke exited $s"
    grep -q '^error kind=acquire-timeout .* wait=point ' "$CLOG" || fail "no acquire-timeout error line"
    grep -q '^commit seq=1 .* wait=timeout .* pixel=none' "$CLOG" || fail "the timed-out commit was read or not applied"
    grep -q '^summary .* errors=1$' "$CLOG" || fail "summary errors != 1"
    [ "$CSTATUS" = 1 ] || fail "compositor exit status $CSTATUS, expected 1"
}

scenario_frames() {
    # --frames N: the compositor ends by itself after N commits, status 0.
    start_cc --frames 2 || return
    "$SMOKE" explicit --frames 2 --delay-ms 100 >"$WORK/smoke.out" 2>&1
    local s=$?
    for _ in $(seq 100); do kill -0 "$CPID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$CPID" 2>/dev/null && fail "still running after --frames 2"
    stop_cc
    grep -q '^summary commits=2 .* errors=0' "$CLOG" || fail "summary"
    grep -q '^signal ' "$CLOG" && fail "it had to be signalled"
    [ "$CSTATUS" = 0 ] || fail "compositor exit status $CSTATUS"
    # The client may see the compositor go before its last check: not
    # this scenario's concern.
    : "$s"
}

scenario_abandoned() {
    # A client that leaves with a commit still waiting for its acquire
    # point is not the compositor's error.
    start_cc --acquire-timeout-ms 2000 || return
    "$SMOKE" timeout --delay-ms 300 >"$WORK/smoke.out" 2>&1
    local s=$?
    sleep 3
    stop_cc
    [ $s = 0 ] || fail "syncobj-smoke exited $s"
    grep -q '^abandoned surface=[0-9]* wait=point ' "$CLOG" || fail "no abandoned line"
    grep -q '^commit ' "$CLOG" && fail "the abandoned commit was applied"
    grep -q '^summary .* errors=0$' "$CLOG" || fail "summary errors != 0"
    [ "$CSTATUS" = 0 ] || fail "compositor exit status $CSTATUS"
}

scenario_misuse() {
    local m
    for m in no-buffer no-release no-points conflicting shm-points surface-exists; do
        start_cc || return
        "$SMOKE" "misuse-$m" >"$WORK/smoke.out" 2>&1
        local s=$?
        stop_cc
        [ $s = 0 ] || { fail "misuse-$m: syncobj-smoke exited $s"; show "misuse-$m"; }
        grep -q '^protocol-error ' "$CLOG" || fail "misuse-$m: no protocol-error line"
        grep -q '^summary .* errors=1$' "$CLOG" || fail "misuse-$m: summary errors != 1"
        [ "$CSTATUS" = 1 ] || fail "misuse-$m: compositor exit status $CSTATUS, expected 1"
        echo "smoke.sh: misuse-$m: $(grep '^protocol-error ' "$CLOG")"
    done
}

SCENARIOS=("$@")
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=(explicit hold implicit timeout abandoned frames misuse)
for SCEN in "${SCENARIOS[@]}"; do
    OK=1
    T0=$(date +%s.%N)
    "scenario_$SCEN"
    T=$(echo "$(date +%s.%N) - $T0" | bc)
    if [ "$OK" = 1 ]; then
        echo "smoke.sh: $SCEN ok (${T}s)"
        [ -n "${SMOKE_VERBOSE:-}" ] && show "$SCEN"
    else
        FAILED=$((FAILED + 1))
        show "$SCEN"
        echo "smoke.sh: $SCEN FAIL (${T}s)"
    fi
done
echo "smoke.sh: $((${#SCENARIOS[@]} - FAILED)) of ${#SCENARIOS[@]} scenarios ok"
[ "$FAILED" = 0 ]
