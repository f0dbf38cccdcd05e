#!/bin/bash
# Inside the test guest: run CMD beside busy loops, the guest's share of a
# loaded CI machine (its vCPUs then run the compositor and the client a
# fraction of the time), and exit with CMD's status.
#
#   tests/guest/run.sh [--virtio-gpu] tests/guest/loaded.sh [-n N] CMD [ARGS...]
#
#   -n N   how many busy loops (default 2: one per vCPU)
N=2
if [ "${1:-}" = -n ]; then N=$2; shift 2; fi
[ $# -gt 0 ] || { echo "usage: $0 [-n N] CMD [ARGS...]" >&2; exit 2; }
pids=()
for _ in $(seq "$N"); do (while :; do :; done) & pids+=($!); done
"$@"
status=$?
kill "${pids[@]}" 2>/dev/null
exit "$status"
