"""A node's one sealer: the key file (if any) and the roots of the AWS-managed keys in the replicated state.

``alias/aws/kinesis`` derives from the Kinesis iterator key (replicated by the first CreateStream, as before);
``alias/aws/sqs`` (SqsManagedSseEnabled and KmsMasterKeyId=alias/aws/sqs) derives from the cluster's SNS signing
key, the one secret the cluster replicates on demand ("first proposed wins", ``broker.sns.keys``), so no new
command is needed. A key file entry with either alias takes its place for new data.
"""

from __future__ import annotations

import logging

from broker.kms.keyring import Keyring, load_keyring
from broker.kms.sealer import KINESIS_MANAGED, SQS_MANAGED, Sealer
from broker.model.kinesis_model import KinesisModel
from broker.model.sns_model import SnsModel

log = logging.getLogger("raftmq")


def load_key_file(key_file: str | None) -> Keyring:
    """The ``--kms-keys`` file's keys, empty without one (KeyFileError, a ValueError, when it is wrong)."""
    if not key_file:
        return Keyring()
    keyring = load_keyring(key_file)
    log.info("event=kms key_file=%s keys=%d", key_file, len(keyring))  # counts only, never material
    return keyring


def node_sealer(keyring: Keyring, kinesis: KinesisModel, sns: SnsModel) -> Sealer:
    """The sealer every service of a node shares."""

    def sqs_root() -> bytes | None:
        return None if sns.signing is None else sns.signing[0].encode("utf-8")

    return Sealer(keyring, {SQS_MANAGED: sqs_root, KINESIS_MANAGED: lambda: kinesis.iterator_key})
