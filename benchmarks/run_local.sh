#!/usr/bin/env bash
# Reproduce the sqs-cycle figure of RESULTS.md with one command: starts `raftmq serve` on a temp data dir and
# port 0, runs 3 x 20 s, prints medians, writes JSON, stops the server.
#   benchmarks/run_local.sh [extra options for `python -m benchmarks run sqs-cycle`, e.g. --processes 1]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${RAFTMQ_BENCH_JSON:-/tmp/raftmq-sqs-cycle.json}"
exec python -m benchmarks run sqs-cycle --spawn-server --processes 2 --connections 64 --duration 20 --repeat 3 \
  --batch 10 --json "$out" "$@"
