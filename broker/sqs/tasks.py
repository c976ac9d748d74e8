"""Message move tasks on the wire: the opaque TaskHandle and the ListMessageMoveTasks result entries."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from broker.model import errors
from broker.model.sqs_movetask import RUNNING, MoveTask


def task_handle(task_id: int, source_arn: str) -> str:
    """Opaque to clients; names the task and its source queue (as AWS's handles do)."""
    raw = json.dumps({"taskId": str(task_id), "sourceArn": source_arn}, separators=(",", ":"))
    return base64.b64encode(raw.encode()).decode()


def parse_task_handle(handle: object) -> tuple[int, str]:
    """(task id, source ARN); InvalidParameterValue for anything that is not one of our handles."""
    if not isinstance(handle, str) or not handle:
        raise errors.MissingParameter("The request must contain the parameter TaskHandle.")
    try:
        parsed = json.loads(base64.b64decode(handle.encode(), validate=True))
        return int(parsed["taskId"]), str(parsed["sourceArn"])
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeError):
        raise errors.InvalidParameterValue("Value for parameter TaskHandle is invalid.") from None


def task_entry(task: MoveTask) -> dict[str, Any]:
    """One ListMessageMoveTasks result: the handle only while RUNNING, optional members only when set."""
    out: dict[str, Any] = {"Status": task.status, "SourceArn": task.source_arn,
                           "ApproximateNumberOfMessagesMoved": task.moved,
                           "ApproximateNumberOfMessagesToMove": task.to_move,
                           "StartedTimestamp": task.started_ts}
    if task.status == RUNNING:
        out["TaskHandle"] = task_handle(task.task_id, task.source_arn)
    if task.dest_arn is not None:
        out["DestinationArn"] = task.dest_arn
    if task.rate is not None:
        out["MaxNumberOfMessagesPerSecond"] = task.rate
    if task.failure is not None:
        out["FailureReason"] = task.failure
    return out
