#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time.
#
#   tests/fuzz.sh [SECONDS]    each target for SECONDS (default 20)
#
# Needs cargo-fuzz (tests/install-deps.sh installs it). cargo-fuzz passes
# nightly-only flags (-Zsanitizer=address); RUSTC_BOOTSTRAP=1 lets the
# stable toolchain take them. A crash leaves its input in
# fuzz/artifacts/<target>/; replay it with
#   cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run -O <target> artifacts/<target>/<file>
set -euo pipefail

secs=${1:-20}
cd "$(dirname "$0")/../fuzz"
if [[ -d "$HOME/.cargo/bin" && ":$PATH:" != *":$HOME/.cargo/bin:"* ]]; then
    PATH="$HOME/.cargo/bin:$PATH"
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: cargo-fuzz is missing; run tests/install-deps.sh" >&2
    exit 1
fi
export RUSTC_BOOTSTRAP=1

cargo fuzz build -O
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
for target in $(cargo fuzz list); do
    mkdir -p "corpus/$target"
    if cargo fuzz run -O "$target" -- -max_total_time="$secs" -timeout=10 >"$log" 2>&1; then
        echo "fuzz: $target: $(grep -E '^Done [0-9]+ runs' "$log" || echo done) (${secs}s)"
    else
        echo "fuzz: $target FAILED" >&2
        grep -vE '^#[0-9]+' "$log" | tail -40 >&2
        status=1
    fi
done
exit $status
