#!/bin/bash
# Interleaved A/B: base build (session start, 16f7d3c) vs main (SSE default) vs main with an SSE-off queue.
# grpc-batch, 1 process x 8 connections, batch 200, 10 s each, 3 rounds.
set -u
cd /work/main
OUT=/work/perf/final; DUR=${DUR:-10}
base_run() {
  rm -rf /tmp/basedata; (cd /tmp/base && PYTHONPATH=/tmp/base python -m broker.cli serve --data-dir /tmp/basedata --port 0 --grpc-port 50555 --log-level warning > /tmp/base.log 2>&1 &)
  sleep 3; PID=$(pgrep -f "grpc-port 50555" | head -1); EP=$(grep -o "endpoint=[^ ]*" /tmp/base.log | cut -d= -f2)
  python -m benchmarks run grpc-batch --target "$EP" --grpc-target 127.0.0.1:50555 --server-pid $PID \
    --processes 1 --connections 8 --batch 200 --duration $DUR --no-progress --json $OUT/base-$1.json 2>&1 | grep -E "msgs/s|server CPU"
  kill $PID; sleep 2
}
new_run() {  # $1 round, $2 sse on|off
  rm -rf /tmp/newdata; (raftmq serve --data-dir /tmp/newdata --port 0 --grpc-port 50556 --log-level warning > /tmp/new.log 2>&1 &)
  sleep 3; PID=$(pgrep -f "grpc-port 50556" | head -1); EP=$(grep -o "endpoint=[^ ]*" /tmp/new.log | cut -d= -f2)
  Q=""
  if [ "$2" = off ]; then
    python -c "
import grpc; from proto.broker.v1 import queues_pb2 as pb, queues_pb2_grpc as rpc
rpc.QueuesStub(grpc.insecure_channel('127.0.0.1:50556')).CreateQueue(pb.CreateQueueRequest(queue='plain', attributes={'SqsManagedSseEnabled': 'false'}))"
    Q="--queue plain --keep-queue"
  fi
  python -m benchmarks run grpc-batch --target "$EP" --grpc-target 127.0.0.1:50556 --server-pid $PID $Q \
    --processes 1 --connections 8 --batch 200 --duration $DUR --no-progress --json $OUT/new-sse$2-$1.json 2>&1 | grep -E "msgs/s|server CPU"
  kill $PID; sleep 2
}
for r in 1 2 3; do
  echo "== round $r $(date +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg)"
  echo -n "base: "; base_run $r | tr '\n' ' '; echo
  echo -n "new sse on: "; new_run $r on | tr '\n' ' '; echo
  echo -n "new sse off: "; new_run $r off | tr '\n' ' '; echo
done
