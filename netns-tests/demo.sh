#!/usr/bin/env bash
# The virtual pool demo: real pppd clients dial through vmodem into nasd (see examples/demo.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
netns-tests/install-deps.sh
cargo build --release --bin nasd --bin nasctl --bin vmodem --example demo
exec target/release/examples/demo "$@"
