#!/usr/bin/env bash
# The project's whole test command: installs the test dependencies, then runs every unit,
# integration and netns test in release mode. Extra arguments go to `cargo test`.
#   sudo netns-tests/test-all.sh [cargo test args...]
# The output is also written to $TEST_LOG (default target/test-all.log). The last line is a
# summary "N passed, N failed[, N skipped]"; the exit status is non-zero if anything failed.
set -uo pipefail

cd "$(dirname "$0")/.."

netns-tests/install-deps.sh || { echo "0 passed, 1 failed (install-deps.sh failed)"; exit 1; }

log=${TEST_LOG:-${CARGO_TARGET_DIR:-target}/test-all.log}
mkdir -p "$(dirname "$log")"

# The binaries and examples first: the tests run the demo as `target/release/examples/demo`.
cargo build --release --bins --examples 2>&1 | tee "$log"
build_rc=${PIPESTATUS[0]}
cargo test --release --all-targets "$@" 2>&1 | tee -a "$log"
cargo_rc=${PIPESTATUS[0]}
[ "$build_rc" -ne 0 ] && cargo_rc=$build_rc

# "test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; ..."
read -r passed failed ignored < <(
    awk '/^test result: / {
            for (i = 1; i <= NF; i++) {
                if ($(i) ~ /^(passed|failed|ignored);$/) n[substr($(i), 1, length($(i)) - 1)] += $(i - 1)
            }
         }
         END { printf "%d %d %d\n", n["passed"], n["failed"], n["ignored"] }' "$log"
)

summary="$passed passed, $failed failed"
[ "$ignored" -gt 0 ] && summary="$summary, $ignored skipped"
if [ "$cargo_rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
    echo "test-all: cargo test exited with status $cargo_rc (build error?), see $log" >&2
fi
echo "$summary"
[ "$cargo_rc" -eq 0 ] && [ "$failed" -eq 0 ]
