#!/bin/bash
# Build an integration-test target and run its ignored (guest-only) tests in
# the test guest, one thread at a time.
#
#   tests/guest/run-tests.sh [--virtio-gpu] <test-target> [filter] [extra libtest args...]
#   tests/guest/run-tests.sh kernel
#   tests/guest/run-tests.sh kernel soft_fence
#
# With SYNCBRIDGE_TEST_EXE set, that binary is run instead of building.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
RUN_OPTS=()
if [ "${1:-}" = --virtio-gpu ]; then RUN_OPTS+=(--virtio-gpu); shift; fi
TARGET="${1:?usage: $0 [--virtio-gpu] <test-target> [filter] [libtest args...]}"
shift

EXE="${SYNCBRIDGE_TEST_EXE:-}"
if [ -z "$EXE" ]; then
    EXE=$(cd "$HERE/../.." && cargo test --no-run --message-format=json --test "$TARGET" 2>/dev/null \
        | python3 -c '
import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == sys.argv[1]:
        print(m["executable"])
' "$TARGET" | tail -n1)
    [ -n "$EXE" ] || { echo "run-tests.sh: could not build test target '$TARGET'" >&2; exit 2; }
fi
cd "$HERE/../.."
exec "$HERE/run.sh" "${RUN_OPTS[@]}" -- "$EXE" --ignored --test-threads=1 "$@"
