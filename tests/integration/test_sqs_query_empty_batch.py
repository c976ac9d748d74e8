"""Empty batches over the Query protocol, as botocore <= 1.31.80 sends them (``Entries=``, the empty-list form of
the Query serializer): AWS answers AWS.SimpleQueueService.EmptyBatchRequest ("There should be at least one
SendMessageBatchRequestEntry in the request."), exactly as over JSON."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.conftest import both_protocols
from tests.integration.helpers import error_code, http_status


@both_protocols
@pytest.mark.parametrize("operation", ["send_message_batch", "delete_message_batch",
                                       "change_message_visibility_batch"])
def test_empty_batches_are_empty_batch_request(sqs: Any, queue_url: str, operation: str) -> None:
    with pytest.raises(sqs.exceptions.EmptyBatchRequest) as info:
        getattr(sqs, operation)(QueueUrl=queue_url, Entries=[])
    assert error_code(info.value) == "AWS.SimpleQueueService.EmptyBatchRequest"
    assert http_status(info.value) == 400
