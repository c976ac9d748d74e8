#!/bin/bash
# Interleaved A/B of this session's server changes: base = df3197e (main at the session's start, a worktree at
# $BASE) vs this checkout. Each run starts its own fresh server or 3-node cluster (the harness's --spawn-*);
# 3 rounds, order base, main.  usage: BASE=/tmp/base bash ab.sh OUTDIR
set -u
OUT=${1:-.}; BASE=${BASE:-/tmp/base}; DUR=${DUR:-10}
run() {  # $1 label, $2 PYTHONPATH ('' = this checkout), $3 round, rest: harness args
  local label=$1 pp=$2 round=$3; shift 3
  echo -n "$label r$round: "
  env ${pp:+PYTHONPATH=$pp} python -m benchmarks run "$@" --duration $DUR --warmup 2 --no-progress \
    --json "$OUT/$label-r$round.json" 2>&1 | grep -E "msgs/s|msgs acked/s|server CPU" | tr -s ' ' | tr '\n' ' '
  echo
}
for r in 1 2 3; do
  for b in base main; do
    pp=""; [ $b = base ] && pp=$BASE
    run "$b-grpc1" "$pp" $r grpc-batch --spawn-server --processes 1 --connections 8 --batch 200
    run "$b-grpc3" "$pp" $r grpc-batch --spawn-cluster 3 --processes 1 --connections 16 --batch 200
    run "$b-stream1" "$pp" $r grpc-stream --spawn-server --processes 2 --connections 2 --batch 100
    run "$b-stream3" "$pp" $r grpc-stream --spawn-cluster 3 --processes 2 --connections 2 --batch 100
    run "$b-sqs1" "$pp" $r sqs-cycle --spawn-server --processes 1 --connections 8
    run "$b-sqs3" "$pp" $r sqs-cycle --spawn-cluster 3 --processes 2 --connections 64
  done
done
