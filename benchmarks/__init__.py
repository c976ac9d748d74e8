"""RaftMQ load harness: drives a server over the network only, never by importing it.

Layout (shaped to grow into the full harness of issue 9):

- ``histogram``  HDR-style log-bucketed latency histogram (mergeable across processes)
- ``sigv4``      cheap AWS Signature V4 signer, so requests look exactly like botocore's
- ``http1``      raw HTTP/1.1 keep-alive client on asyncio + httptools (boto3 tops out near 1,200 calls/s)
- ``awsjson``    AWS JSON 1.0/1.1 calls over ``http1``
- ``procstat``   server CPU from ``/proc`` and discovery of the pid listening on a port
- ``server``     spawn ``raftmq serve`` on a temp dir and port 0 for one-command reproductions
- ``runner``     closed-loop driver: worker processes x connections, live progress, merged results
- ``awsquery``   AWS Query (form POST, XML) calls over ``http1``, for SNS
- ``grpcload``   raw ``grpc.aio`` channels and timed calls for the gRPC scenarios
- ``scenarios``  what one connection does in a loop: ``sqs-cycle``, ``sns-fanout``, ``kinesis-put/cycle``, ``grpc-*``
- ``report``     final summary text and JSON; ``summarize``/``plots``/``pngplots``: tables and charts
- ``fakesqs``, ``fakesns``, ``fakegrpc``: servers with known behaviour for the tests and the generator's ceiling

Run ``python -m benchmarks run sqs-cycle --help``.
"""
