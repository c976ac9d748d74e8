"""The harness's latency histogram: exact where it promises, bounded relative error elsewhere, mergeable."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.histogram import LogHistogram


def exact_percentile(values: list[int], pct: float) -> int:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(pct / 100 * len(ordered))) - 1]


def test_small_values_are_exact() -> None:
    hist = LogHistogram()
    for v in range(1, 101):  # 1..100 us, below 2**8: one bucket per value
        hist.record(v)
    assert hist.percentiles() == {"p50": 50, "p95": 95, "p99": 99, "p99.9": 100}
    assert (hist.count, hist.min, hist.max, hist.mean) == (100, 1, 100, 50.5)


def test_known_large_data_within_relative_error() -> None:
    hist = LogHistogram()
    values = list(range(1_000, 1_001_000, 1_000))  # 1 ms .. 1 s in 1 ms steps
    for v in values:
        hist.record(v)
    for pct, expected in ((50, 500_000), (95, 950_000), (99, 990_000), (99.9, 999_000)):
        got = hist.percentile(pct)
        assert expected <= got <= expected * (1 + 2 ** -7), (pct, got)
    assert hist.percentile(100) == 1_000_000 and hist.percentile(0) == 1_000


def test_skewed_distribution_picks_the_tail() -> None:
    hist = LogHistogram()
    hist.record(100, times=990)
    hist.record(50_000, times=10)
    assert hist.percentile(99) == 100
    assert 50_000 <= hist.percentile(99.9) <= 50_000 * (1 + 2 ** -7)
    assert hist.mean == pytest.approx((100 * 990 + 50_000 * 10) / 1000)


def test_percentile_never_exceeds_max_and_empty_is_zero() -> None:
    hist = LogHistogram()
    assert hist.percentile(99) == 0 and hist.count == 0
    hist.record(1_000_001)
    assert hist.percentile(50) == 1_000_001
    with pytest.raises(ValueError):
        hist.percentile(101)


def test_negative_values_clamp_to_zero() -> None:
    hist = LogHistogram()
    hist.record(-5)
    assert (hist.min, hist.max, hist.percentile(50)) == (0, 0, 0)


def test_bucket_bounds_tile_the_integers() -> None:
    hist = LogHistogram(precision_bits=4)
    expected_low = 0
    for idx in range(200):
        low, high = hist.bounds_of(idx)
        assert low == expected_low and high >= low
        assert hist.index_of(low) == idx and hist.index_of(high) == idx
        expected_low = high + 1


@given(st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=300),
       st.sampled_from([50.0, 90.0, 95.0, 99.0, 99.9, 100.0]))
def test_percentile_matches_exact_within_precision(values: list[int], pct: float) -> None:
    hist = LogHistogram()
    for v in values:
        hist.record(v)
    exact = exact_percentile(values, pct)
    got = hist.percentile(pct)
    assert exact <= got <= max(exact, math.floor(exact * (1 + 2 ** -7)))


def test_merge_equals_recording_everything_in_one() -> None:
    rng = random.Random(7)
    parts = [[rng.randrange(1, 5_000_000) for _ in range(500)] for _ in range(3)]
    whole = LogHistogram()
    merged = LogHistogram()
    for part in parts:
        piece = LogHistogram()
        for v in part:
            piece.record(v)
            whole.record(v)
        merged.merge(LogHistogram.from_dict(piece.to_dict()))  # as it travels between processes
    assert merged.to_dict() == whole.to_dict()
    assert merged.summary() == whole.summary()


def test_merge_rejects_other_precision() -> None:
    with pytest.raises(ValueError):
        LogHistogram(8).merge(LogHistogram(6))
