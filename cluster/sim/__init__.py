"""Deterministic simulation of Raft clusters: seeded network, clock, disk faults, with safety checks per step."""
