#!/usr/bin/env bash
# Interleaved A/B of the broker's code: the checkout at $BASE (say `git worktree add /tmp/base REV`) against this
# one, both driven by this checkout's harness, each run on its own freshly spawned server or cluster. Rounds
# alternate base, main, so both meet the VM's fast and slow phases alike (2 shared cores swing +-30 % here).
#
#   BASE=/tmp/base benchmarks/ab.sh OUT_DIR "LABEL harness-args..." ["LABEL harness-args..." ...]
#   e.g. BASE=/tmp/base benchmarks/ab.sh out "grpc3 grpc-batch --spawn-cluster 3 --connections 16 --batch 200"
#   env: ROUNDS=3 DURATION=10 WARMUP=2
# Writes OUT_DIR/LABEL-{base,main}-rN.json and prints each run's headline; then
# `python -m benchmarks report OUT_DIR/LABEL-base-r*.json OUT_DIR/LABEL-main-r*.json` tabulates them.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=$1; shift
BASE=${BASE:?BASE must name the base checkout}
mkdir -p "$OUT"
for round in $(seq "${ROUNDS:-3}"); do
  for side in base main; do
    for spec in "$@"; do
      read -r label args <<< "$spec"
      pythonpath=""; [ "$side" = base ] && pythonpath=$BASE  # the spawned servers import the base's code
      echo -n "$label $side r$round: "
      # shellcheck disable=SC2086  # args is a list of harness arguments
      env ${pythonpath:+PYTHONPATH=$pythonpath} python -m benchmarks run $args \
        --duration "${DURATION:-10}" --warmup "${WARMUP:-2}" --no-progress --json "$OUT/$label-$side-r$round.json" 2>&1 \
        | grep -E "msgs/s|msgs acked/s|generator CPU|per node" | tr -s ' ' | tr '\n' ' '
      echo
    done
  done
done
