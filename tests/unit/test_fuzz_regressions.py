"""Bugs the protocol fuzzer (tests/integration/test_fuzz_http.py) found, each pinned by the smallest reproducer."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.aws.gateway import AwsGateway
from broker.aws.query_protocol import QueryCodec
from broker.aws.service_model import load_service_model
from broker.http.types import HttpRequest
from broker.model.errors import BrokerError, InvalidAction
from broker.sts import StsService


def _sns() -> QueryCodec:
    return QueryCodec(load_service_model("sns", "query"))


def test_query_error_echoing_a_control_character_is_still_xml() -> None:
    """``Action=%1F`` was answered with the raw U+001F inside <Message>: no XML parser (botocore's included) could
    read the error. Characters XML 1.0 cannot carry are replaced with U+FFFD."""
    response = _sns().encode_error(InvalidAction("The action \x1f is not valid for this web service."), "rid")
    root = ET.fromstring(response.body)
    message = root.findtext("{http://sns.amazonaws.com/doc/2010-03-31/}Error/"
                            "{http://sns.amazonaws.com/doc/2010-03-31/}Message")
    assert message == "The action \ufffd is not valid for this web service."


def test_query_output_with_a_lone_surrogate_is_encodable_xml() -> None:
    """A lone surrogate made ``body.encode()`` raise (a 500); it is replaced like the other characters XML lacks."""
    codec = _sns()
    operation = codec.model.operation("GetTopicAttributes")
    assert operation is not None
    response = codec.encode_output(operation, {"Attributes": {"DisplayName": "a\ud800b\x00c\ufffe"}}, "rid")
    assert "a\ufffdb\ufffdc\ufffd" in ET.fromstring(response.body).itertext()


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF)))
def test_any_message_text_makes_a_parseable_xml_error(text: str) -> None:
    response = _sns().encode_error(BrokerError(text, code="InvalidParameter"), "rid")
    root = ET.fromstring(response.body)
    assert root.tag.endswith("ErrorResponse")


def _gateway() -> AwsGateway:
    return AwsGateway({"sts": StsService()}, "123456789012", "us-east-1")


@pytest.mark.parametrize(("sent", "answered"), [
    ("application/x-amz-json", "application/x-amz-json-1.0"),
    ("application/x-amz-json-9.9", "application/x-amz-json-1.0"),
    ("application/x-amz-json-1.1", "application/x-amz-json-1.1"),
    ("application/x-amz-json-1.0; charset=utf-8", "application/x-amz-json-1.0"),
])
@pytest.mark.parametrize("target", [None, "NoSuchService_20200101.Op"])
async def test_errors_are_worded_in_a_real_json_version_not_the_one_the_client_made_up(
        sent: str, answered: str, target: str | None) -> None:
    """An unknown target (or none) sent with ``Content-Type: application/x-amz-json`` was answered with that same
    made-up media type; the error now names 1.0 or 1.1, whichever real version the client asked for."""
    headers = {"host": "localhost", "content-type": sent, **({"x-amz-target": target} if target else {})}
    response = await _gateway()(HttpRequest("POST", "/", "", headers, b"{}"))
    assert response.status == 400
    assert response.content_type == answered
    assert orjson.loads(response.body)["__type"] == "UnknownOperationException"
