#!/usr/bin/env bash
# Measure RaftMQ and its peers with the same scenarios in one session (`python -m benchmarks compare`).
# Peers are installed under $PEERS_DIR (default /tmp/raftmq-peers), never into the project or its environment:
#   moto[server] in its own venv (PyPI), kinesalite with npm.
# kinesalite binds every interface by itself, so the whole comparison (every server and its load generator) runs
# inside a fresh network namespace with only loopback up (`unshare -n`, needs root): nothing is reachable from
# outside and no other address is ever a target.
#   benchmarks/run_peers.sh [OUT_DIR]   (DURATION=15 REPEAT=3 CONNECTIONS=8 SCENARIOS="kinesis-put kinesis-cycle")
set -euo pipefail
cd "$(dirname "$0")/.."
PEERS=${PEERS_DIR:-/tmp/raftmq-peers}
OUT=${1:-benchmarks/results/$(date -u +%F)/compare-$(date -u +%H%M)}
RUN=(--duration "${DURATION:-15}" --warmup 2 --repeat "${REPEAT:-3}" --no-progress
     --processes 1 --connections "${CONNECTIONS:-8}")

if [ "${IN_NETNS:-}" != 1 ]; then
  [ -x "$PEERS/moto/bin/moto_server" ] || { python -m venv "$PEERS/moto" && "$PEERS/moto/bin/pip" install -q 'moto[server]'; }
  [ -x "$PEERS/kl/node_modules/.bin/kinesalite" ] || npm install --prefix "$PEERS/kl" --no-audit --no-fund kinesalite
  exec env IN_NETNS=1 unshare -n "$0" "$OUT"
fi

ip link set lo up
KINESALITE="cmd:node $PEERS/kl/node_modules/.bin/kinesalite --port {port} --createStreamMs 0 --deleteStreamMs 0"
MOTO="cmd:$PEERS/moto/bin/moto_server -H 127.0.0.1 -p {port}"
for scenario in ${SCENARIOS:-kinesis-put kinesis-cycle}; do
  python -m benchmarks compare "$scenario" --out "$OUT/$scenario" --peer raftmq=spawn-server \
    --peer "kinesalite=$KINESALITE" --peer "moto=$MOTO" -- "${RUN[@]}" --shards 4 --records 100
done
