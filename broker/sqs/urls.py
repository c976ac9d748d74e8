"""Queue URLs and ARNs: built from the endpoint the client used, parsed from whatever form a client sends."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from broker.model import errors


def queue_url(endpoint_url: str, account: str, name: str) -> str:
    return f"{endpoint_url.rstrip('/')}/{account}/{name}"


def queue_arn(region: str, account: str, name: str) -> str:
    return f"arn:aws:sqs:{region}:{account}:{name}"


def parse_queue_url(url: object, default_account: str) -> tuple[str, str]:
    """(account, name) from a queue URL; only the last two path segments count.

    Accepts ``http://host:port/ACCOUNT/NAME``, the ``sqs.<region>.amazonaws.com`` and
    ``<region>.queue.amazonaws.com`` host forms, a bare path ``/ACCOUNT/NAME``, a trailing slash, and a URL whose
    next-to-last segment is not an account id (``/queue/NAME``, ``/NAME``: the caller's account).
    """
    if not isinstance(url, str) or not url:
        raise errors.MissingParameter("The request must contain the parameter QueueUrl.")
    path = urlsplit(url).path if "://" in url else url
    parts = [unquote(p) for p in path.split("/") if p]
    if len(parts) >= 2 and parts[-2].isdigit():
        return parts[-2], parts[-1]
    if parts:
        return default_account, parts[-1]
    raise errors.InvalidAddress(f"The address {url} is not valid for this endpoint.")
