"""Encryption at rest: a local key file standing in for KMS, and AES-256-GCM sealing that names its key.

``keyring`` loads and validates the key file (``raftmq serve --kms-keys FILE``); ``sealer`` seals and opens data
under those keys or under the AWS-managed keys (``alias/aws/sqs``, ``alias/aws/kinesis``) derived from a secret the
cluster already replicates; ``errors`` carries KMS failures to each service's AWS error codes.
"""
