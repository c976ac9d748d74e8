#!/usr/bin/env bash
# The whole comparison in one session: every scenario against RaftMQ (1 node and a 3-node cluster) and each peer
# that speaks its API, measured back to back by the same harness with the same options; writes per-variant JSON,
# summary.md, timeline/latency charts (PNG with the `bench` extra, SVG always) and one session.md with every table.
#
#   benchmarks/run_session.sh [OUT_DIR]      (default benchmarks/results/DATE/session-HHMM)
#   env: DURATION=4 WARMUP=1 REPEAT=3 (per run), ONLY="sqs grpc-batch" (variants to run), PEERS_DIR=/tmp/raftmq-peers,
#        RAFTMQ_REV (the revision to name in session.md when not run from a git checkout)
#
# Peers are installed under $PEERS_DIR, never into the project or its environment: moto[server] (PyPI, own venv),
# kinesalite and kinesis-local (npm), LocalStack (PyPI localstack-core, host mode, needs Python >= 3.13: its own
# venv, with the pins it needs to start, see RESULTS.md). kinesalite, kinesis-local and LocalStack bind every
# interface by themselves, so the whole session (every server and its load generator) runs inside a fresh network
# namespace with only loopback up (`unshare -n`, needs root): nothing is reachable from outside and no other address
# is ever a target. A peer that could not be installed is skipped and named in session.md.
# Runtime with the defaults: ~13 minutes on 2 cores (40 targets x 3 runs; see RESULTS.md, 19:14-19:26).
set -euo pipefail
cd "$(dirname "$0")/.."
PEERS=${PEERS_DIR:-/tmp/raftmq-peers}
OUT=${1:-benchmarks/results/$(date -u +%F)/session-$(date -u +%H%M)}

install_peers() {
  mkdir -p "$PEERS"
  [ -x "$PEERS/moto/bin/moto_server" ] || { python -m venv "$PEERS/moto" && "$PEERS/moto/bin/pip" install -q 'moto[server]'; } || true
  if [ ! -x "$PEERS/kl/node_modules/.bin/kinesalite" ]; then
    mkdir -p "$PEERS/kl" && npm install --prefix "$PEERS/kl" --no-audit --no-fund kinesalite || true
  fi
  if [ ! -f "$PEERS/kinesis-local/node_modules/kinesis-local/main.js" ]; then
    mkdir -p "$PEERS/kinesis-local" && [ -f "$PEERS/kinesis-local/package.json" ] \
      || echo '{"name": "raftmq-peers", "private": true}' > "$PEERS/kinesis-local/package.json"
    npm install --prefix "$PEERS/kinesis-local" --no-audit --no-fund kinesis-local || true
  fi
  if [ ! -x "$PEERS/ls/bin/python" ] || ! "$PEERS/ls/bin/python" -c 'import localstack.aws.components' 2>/dev/null; then
    local py313
    py313=$(command -v python3.13 || ls /root/.pyenv/versions/3.13*/bin/python 2>/dev/null | head -1 || true)
    if [ -n "$py313" ]; then
      # the pins: localstack-core 2026.3 imports cbor2._decoder (gone in cbor2 6), calls X509.add_extensions
      # (gone in pyOpenSSL 25, which needs cryptography < 45) and needs service_identity for its TLS listener
      "$py313" -m venv "$PEERS/ls" && "$PEERS/ls/bin/pip" install -q 'localstack-core[runtime]' 'cbor2<6' \
        'cryptography<45' 'pyopenssl<25' 'service_identity<24.3' || true
    fi
  fi
  # LocalStack fetches its Kinesis engine (npm kinesis-local) on first use, which the namespace cannot: now
  [ ! -x "$PEERS/ls/bin/python" ] || "$PEERS/ls/bin/python" -m localstack.cli.lpm install kinesis-mock || true
}

if [ "${IN_NETNS:-}" != 1 ]; then
  install_peers
  exec env IN_NETNS=1 unshare -n "$0" "$OUT"
fi

ip link set lo up
mkdir -p "$OUT"
RUN=(--duration "${DURATION:-4}" --warmup "${WARMUP:-1}" --repeat "${REPEAT:-3}" --no-progress)
KL_DIR="$PEERS/kinesis-local/node_modules/kinesis-local"

declare -A WHERE=(
  [raftmq]="spawn-server"
  [raftmq3]="cluster:3"
  [moto]="cmd:$PEERS/moto/bin/moto_server -H 127.0.0.1 -p {port}"
  [kinesalite]="cmd:node $PEERS/kl/node_modules/.bin/kinesalite --port {port} --createStreamMs 0 --deleteStreamMs 0"
  # kinesis-local reads server.json from its working directory; its TLS port (unused) is fixed: one peer runs at a time inside the namespace
  [kinesis-local]="cmd:sh -c 'cd $KL_DIR && exec env KINESIS_MOCK_PLAIN_PORT={port} KINESIS_MOCK_TLS_PORT=4567 LOG_LEVEL=WARN CREATE_STREAM_DURATION=0ms DELETE_STREAM_DURATION=0ms node main.js'"
  [localstack]="cmd:env GATEWAY_LISTEN=127.0.0.1:{port} SERVICES=sqs,sns,kinesis LOCALSTACK_VOLUME_DIR={dir}/vol DISABLE_EVENTS=1 DNS_ADDRESS=0 SKIP_SSL_CERT_DOWNLOAD=1 $PEERS/ls/bin/python -m localstack.runtime.main"
)
declare -A PRESENT=(
  [raftmq]=1 [raftmq3]=1
  [moto]=$([ -x "$PEERS/moto/bin/moto_server" ] && echo 1 || echo 0)
  [kinesalite]=$([ -x "$PEERS/kl/node_modules/.bin/kinesalite" ] && echo 1 || echo 0)
  [kinesis-local]=$([ -f "$KL_DIR/main.js" ] && echo 1 || echo 0)
  [localstack]=$("$PEERS/ls/bin/python" -c 'import localstack.aws.components' 2>/dev/null && echo 1 || echo 0)
)

# variant | scenario | targets | scenario options (the same for every target of the variant)
VARIANTS="
sqs|sqs-cycle|raftmq raftmq3 moto localstack|--processes 1 --connections 8 --batch 10
sqs-batch1|sqs-cycle|raftmq moto localstack|--processes 1 --connections 8 --batch 1
sqs-fifo|sqs-cycle|raftmq raftmq3 moto|--processes 1 --connections 8 --batch 10 --fifo
sqs-2x64|sqs-cycle|raftmq raftmq3|--processes 2 --connections 64 --batch 10
sns|sns-fanout|raftmq raftmq3 moto localstack|--processes 1 --connections 16 --subscribers 4 --consumers-per-queue 2
kinesis-put|kinesis-put|raftmq raftmq3 kinesalite kinesis-local moto localstack|--processes 1 --connections 8 --shards 4 --records 100
kinesis-cycle|kinesis-cycle|raftmq raftmq3 kinesalite kinesis-local moto localstack|--processes 1 --connections 8 --shards 4 --records 100
grpc-batch|grpc-batch|raftmq raftmq3|--processes 2 --connections 8 --batch 100
grpc-batch-1000|grpc-batch|raftmq raftmq3|--processes 1 --connections 4 --batch 1000
grpc-stream|grpc-stream|raftmq raftmq3|--processes 2 --connections 2 --batch 100 --consumers 2
grpc-stream-1000|grpc-stream|raftmq raftmq3|--processes 2 --connections 2 --batch 1000 --consumers 2 --max-in-flight 4000
grpc-put|grpc-streams-put|raftmq raftmq3|--processes 2 --connections 4 --records 500
grpc-tail|grpc-streams-tail|raftmq raftmq3|--processes 2 --connections 4 --shards 4 --records 100
"

started=$(date -u +%FT%TZ)
SESSION="$OUT/session.md"
{
  echo "Session $started to END, \`benchmarks/run_session.sh\` (DURATION=${DURATION:-4} WARMUP=${WARMUP:-1}" \
       "REPEAT=${REPEAT:-3}), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
       "load average at start $(cut -d' ' -f1-3 /proc/loadavg), HEAD ${RAFTMQ_REV:-$(git rev-parse --short HEAD 2>/dev/null || echo '?')}."
  echo
} > "$SESSION"
while IFS='|' read -r variant scenario targets options; do
  [ -n "$variant" ] || continue
  if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $variant "* ]]; then continue; fi
  peers=() skipped=()
  for t in $targets; do
    if [ "${PRESENT[$t]}" = 1 ]; then peers+=(--peer "$t=${WHERE[$t]}"); else skipped+=("$t"); fi
  done
  # shellcheck disable=SC2086  # the options are words on purpose
  python -m benchmarks compare "$scenario" --out "$OUT/$variant" "${peers[@]}" -- "${RUN[@]}" $options || true
  chart=svg; [ -f "$OUT/$variant/timeline.png" ] && chart=png
  {
    echo "### $variant: \`$scenario $options\`"
    echo
    [ ${#skipped[@]} -eq 0 ] || { echo "Not installed here, skipped: ${skipped[*]}."; echo; }
    cat "$OUT/$variant/summary.md" 2>/dev/null || echo "(no result: see the log above)"
    echo
    echo "![${variant} throughput per second]($variant/timeline.$chart) ![${variant} latency]($variant/latency.$chart)"
    echo
  } >> "$SESSION"
done <<< "$VARIANTS"
sed -i "1s/to END/to $(date -u +%FT%TZ)/" "$SESSION"
echo "session table: $SESSION"
