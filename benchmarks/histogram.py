"""A small HDR-style latency histogram: log-bucketed, fixed relative error, cheap to record and to merge.

Why our own: the harness must merge histograms from several worker processes and stay dependency-free. Values are
non-negative integers (the harness records microseconds). Values below ``2**precision_bits`` are kept exactly;
above, each power-of-two range is split into ``2**(precision_bits-1)`` equal sub-buckets, so a reported value is
never more than ``2**-(precision_bits-1)`` (0.78 % with the default 8 bits) above the true one. Like HdrHistogram,
a percentile is reported as the highest value equivalent to the bucket that holds it, so it never under-reports.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any


class LogHistogram:
    """Counts of integer values in log-linear buckets; exact count, min, max and mean."""

    __slots__ = ("_counts", "_half", "_max", "_min", "_sub", "_sum", "count", "precision_bits")

    def __init__(self, precision_bits: int = 8) -> None:
        if not 2 <= precision_bits <= 16:
            raise ValueError("precision_bits must be in [2, 16]")
        self.precision_bits = precision_bits
        self._sub = 1 << precision_bits
        self._half = self._sub >> 1
        self._counts: dict[int, int] = {}
        self.count = 0
        self._sum = 0
        self._min = 0
        self._max = 0

    # -- bucket arithmetic -------------------------------------------------------------------------------------
    def index_of(self, value: int) -> int:
        """Bucket index of ``value``; indexes grow with the value."""
        if value < self._sub:
            return value
        shift = value.bit_length() - self.precision_bits
        return self._sub + (shift - 1) * self._half + ((value >> shift) - self._half)

    def bounds_of(self, index: int) -> tuple[int, int]:
        """Lowest and highest value that fall in bucket ``index``."""
        if index < self._sub:
            return index, index
        shift, offset = divmod(index - self._sub, self._half)
        shift += 1
        low = (self._half + offset) << shift
        return low, low + (1 << shift) - 1

    # -- recording -----------------------------------------------------------------------------------------------
    def record(self, value: int, times: int = 1) -> None:
        """Add ``value`` (negative values are clamped to 0: a clock step must not crash a long run)."""
        value = max(int(value), 0)
        idx = self.index_of(value)
        self._counts[idx] = self._counts.get(idx, 0) + times
        if self.count == 0 or value < self._min:
            self._min = value
        self._max = max(self._max, value)
        self.count += times
        self._sum += value * times

    def merge(self, other: LogHistogram) -> None:
        if other.precision_bits != self.precision_bits:
            raise ValueError("cannot merge histograms of different precision")
        if other.count == 0:
            return
        for idx, n in other._counts.items():
            self._counts[idx] = self._counts.get(idx, 0) + n
        self._min = other._min if self.count == 0 else min(self._min, other._min)
        self._max = max(self._max, other._max)
        self.count += other.count
        self._sum += other._sum

    # -- reading -------------------------------------------------------------------------------------------------
    @property
    def min(self) -> int:
        return self._min

    @property
    def max(self) -> int:
        return self._max

    @property
    def mean(self) -> float:
        return self._sum / self.count if self.count else 0.0

    def percentile(self, pct: float) -> int:
        """Smallest bucket value v (its highest equivalent, capped at the true max) with >= pct % of values <= v."""
        if not 0.0 <= pct <= 100.0:
            raise ValueError("pct must be in [0, 100]")
        if self.count == 0:
            return 0
        if pct == 0.0:
            return self._min
        rank = max(1, math.ceil(pct / 100.0 * self.count))
        seen = 0
        for idx in sorted(self._counts):
            seen += self._counts[idx]
            if seen >= rank:
                return min(self.bounds_of(idx)[1], self._max)
        return self._max  # unreachable: the counts sum to self.count

    def percentiles(self, pcts: Iterable[float] = (50.0, 95.0, 99.0, 99.9)) -> dict[str, int]:
        return {f"p{pct:g}": self.percentile(pct) for pct in pcts}

    def summary(self) -> dict[str, Any]:
        return {"count": self.count, "min": self.min, "mean": round(self.mean, 1), **self.percentiles(),
                "max": self.max}

    # -- transport between processes ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"precision_bits": self.precision_bits, "count": self.count, "sum": self._sum, "min": self._min,
                "max": self._max, "counts": sorted(self._counts.items())}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LogHistogram:
        hist = cls(int(data["precision_bits"]))
        hist._counts = {int(i): int(n) for i, n in data["counts"]}
        hist.count = int(data["count"])
        hist._sum = int(data["sum"])
        hist._min = int(data["min"])
        hist._max = int(data["max"])
        return hist
