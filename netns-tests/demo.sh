#!/usr/bin/env bash
# The demo: a real pppd client dials in to nasd over a virtual line (see examples/demo.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
netns-tests/install-deps.sh
cargo build --release --bin nasd-line --example demo
exec target/release/examples/demo
