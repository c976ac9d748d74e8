"""The Kinesis Data Streams service over the replicated model."""
