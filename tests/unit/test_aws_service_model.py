"""The pinned models resolve into linked shapes with botocore's merged traits, once per process."""

from __future__ import annotations

import botocore.session
import pytest

from broker.aws.service_model import UnknownModel, has_model, load_service_model


@pytest.mark.parametrize(("service", "protocol", "botocore_name"),
                         [("sqs", "json", "sqs"), ("sns", "query", "sns"), ("sts", "query", "sts"),
                          ("kinesis", "json", "kinesis")])
def test_models_match_botocore(service: str, protocol: str, botocore_name: str) -> None:
    model = load_service_model(service, protocol)
    reference = botocore.session.get_session().get_service_model(botocore_name)
    assert set(model.operations) == set(reference.operation_names)
    assert model.protocol == reference.protocol
    assert model.api_version == reference.api_version
    for name in reference.operation_names:
        op, ref = model.operations[name], reference.operation_model(name)
        assert (op.input.name if op.input else None) == (ref.input_shape.name if ref.input_shape else None)
        assert (op.output.name if op.output else None) == (ref.output_shape.name if ref.output_shape else None)
        if op.input is not None:
            assert op.input.required == frozenset(ref.input_shape.required_members)


def test_loaded_once() -> None:
    assert load_service_model("sqs", "json") is load_service_model("sqs", "json")


def test_metadata() -> None:
    sqs = load_service_model("sqs", "json")
    assert (sqs.target_prefix, sqs.json_version, sqs.query_compatible) == ("AmazonSQS", "1.0", True)
    kinesis = load_service_model("kinesis", "json")
    assert (kinesis.target_prefix, kinesis.json_version, kinesis.query_compatible) == ("Kinesis_20131202", "1.1", False)
    assert load_service_model("sts", "query").xml_namespace == "https://sts.amazonaws.com/doc/2011-06-15/"
    assert load_service_model("sns", "query").operations["Publish"].result_wrapper == "PublishResult"


def test_member_traits_are_merged_from_the_reference() -> None:
    sns = load_service_model("sns", "query")
    attrs = sns.shapes["MessageAttributeMap"]
    assert attrs.key is not None and attrs.value is not None
    assert (attrs.key.location_name, attrs.value.location_name) == ("Name", "Value")
    assert attrs.value.shape is sns.shapes["MessageAttributeValue"]
    sqs = load_service_model("sqs", "json")
    assert sqs.shapes["SendMessageBatchRequest"].members["Entries"].shape.flattened
    entry = sqs.shapes["SendMessageBatchRequestEntry"]
    assert entry.required == {"Id", "MessageBody"}
    assert entry.members["MessageAttributes"].shape is sqs.shapes["MessageBodyAttributeMap"]


def test_constraints() -> None:
    kinesis = load_service_model("kinesis", "json")
    name = kinesis.shapes["StreamName"]
    assert (name.min, name.max, name.pattern) == (1, 128, "[a-zA-Z0-9_.-]+")
    assert kinesis.shapes["ShardIteratorType"].enum is not None
    assert "AT_TIMESTAMP" in kinesis.shapes["ShardIteratorType"].enum


def test_error_info() -> None:
    sns = load_service_model("sns", "query")
    info = sns.error_info("NotFoundException")
    assert info is not None
    assert (info.code, info.query_code, info.status, info.sender_fault) == ("NotFoundException", "NotFound", 404, True)
    assert sns.error_info("NotFound") is info  # also found by its Query code
    # SQS's JSON model keeps the shapes but not the "error" trait: the codecs fall back to BrokerError's values.
    sqs = load_service_model("sqs", "json").error_info("QueueDoesNotExist")
    assert sqs is not None and (sqs.query_code, sqs.status, sqs.sender_fault) == (None, None, None)
    assert load_service_model("sqs", "json").error_info("NoSuchThing") is None


def test_unknown_model() -> None:
    assert has_model("sqs", "query")  # the frozen SQS Query model
    assert not has_model("sts", "json")
    assert has_model("sts", "query")
    with pytest.raises(UnknownModel):
        load_service_model("kinesis", "query")
    with pytest.raises(UnknownModel):
        load_service_model("dynamodb", "json")
