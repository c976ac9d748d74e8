"""AWS wire protocols, driven by the pinned service models in ``proto/aws``.

- ``service_model``: ``load_service_model(service, protocol) -> ServiceModel`` (cached; shapes linked, traits merged)
- ``protocol``: the codec interfaces (``TargetCodec`` for X-Amz-Target protocols, ``FormCodec`` for Query) and
  ``wire_error`` (how a ``BrokerError`` looks for one service)
- ``json_protocol.JsonCodec``: AWS JSON 1.0/1.1; ``query_protocol.QueryCodec``: Query requests, XML responses
- ``gateway.AwsGateway``: the ``HttpHandler`` that picks service, protocol and operation per request
"""
