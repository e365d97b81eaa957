"""The equal-latency audit: is every arm answered as late as control, once baseline is over? Pure.

The hold exists so that latency cannot differ between arms (supplementary section 3). The audit checks that
it did not, from the rollups' served-time histograms of post-baseline slates:

1. pool the histograms of each arm on each platform (and on all platforms together) over the days and
   content types asked for; histograms add up exactly, unlike daily percentiles;
2. read p50 and p95 off each pooled histogram, to the millisecond;
3. compare each arm's p50 with control's on the same platform, and flag the cell when the difference is
   over ``P50_TOLERANCE_MS`` or when more than ``LATE_SHARE_LIMIT`` of its answers came later than their
   hold + ``LATE_MARGIN_MS``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

P50_TOLERANCE_MS = 5.0
LATE_MARGIN_MS = 50.0  # an answer later than its hold + this is late (counted per slate, in the rollup)
LATE_SHARE_LIMIT = 0.01
ALL_PLATFORMS = ""  # the platform of a cell pooled over every platform


@dataclass(frozen=True)
class AuditInput:
    """One rollup row's share of the audit: post-baseline slates of one arm on one platform."""

    arm_slug: str
    platform: str
    slates: int
    late: int
    served_hist: Mapping[str, int]  # whole ms (as text, JSON keys) -> slates


@dataclass(frozen=True)
class AuditCell:
    arm_slug: str
    platform: str  # ALL_PLATFORMS for the pooled cell
    slates: int
    p50_ms: float | None
    p95_ms: float | None
    late_share: float | None
    p50_diff_ms: float | None  # this arm's p50 minus control's on the same platform
    flags: tuple[str, ...]

    @property
    def flagged(self) -> bool:
        return bool(self.flags)


@dataclass(frozen=True)
class LatencyAudit:
    control_slug: str
    cells: list[AuditCell]

    @property
    def flagged(self) -> bool:
        return any(cell.flagged for cell in self.cells)

    @property
    def largest_p50_diff(self) -> AuditCell | None:
        """The cell whose p50 is furthest from control's (a platform's rather than the pooled one on a tie)."""
        compared = [cell for cell in self.cells if cell.p50_diff_ms is not None and cell.arm_slug != self.control_slug]
        return max(
            compared, key=lambda cell: (abs(cell.p50_diff_ms or 0.0), cell.platform != ALL_PLATFORMS), default=None
        )


def percentile(hist: Mapping[int, int], fraction: float) -> float | None:
    """The nearest-rank percentile of a histogram of whole milliseconds, as the bucket's midpoint."""
    total = sum(hist.values())
    if total <= 0:
        return None
    rank = max(1, math.ceil(fraction * total))
    seen = 0
    for bucket in sorted(hist):
        seen += hist[bucket]
        if seen >= rank:
            return bucket + 0.5
    return None  # unreachable: seen ends at total


def latency_audit(rows: Iterable[AuditInput], *, control_slug: str) -> LatencyAudit:
    hists: dict[tuple[str, str], Counter[int]] = {}
    slates: Counter[tuple[str, str]] = Counter()
    late: Counter[tuple[str, str]] = Counter()
    for row in rows:
        for key in ((row.arm_slug, row.platform), (row.arm_slug, ALL_PLATFORMS)):
            hist = hists.setdefault(key, Counter())
            hist.update({int(float(ms)): n for ms, n in row.served_hist.items()})
            slates[key] += row.slates
            late[key] += row.late
    p50 = {key: percentile(hist, 0.5) for key, hist in hists.items()}
    cells = []
    for key in sorted(hists, key=lambda k: (k[1] != ALL_PLATFORMS, k[1], k[0] != control_slug, k[0])):
        arm_slug, platform = key
        control_p50 = p50.get((control_slug, platform))
        own_p50 = p50[key]
        diff = own_p50 - control_p50 if own_p50 is not None and control_p50 is not None else None
        late_share = late[key] / slates[key] if slates[key] else None
        cells.append(
            AuditCell(
                arm_slug=arm_slug,
                platform=platform,
                slates=slates[key],
                p50_ms=own_p50,
                p95_ms=percentile(hists[key], 0.95),
                late_share=late_share,
                p50_diff_ms=diff,
                flags=_flags(diff, late_share),
            )
        )
    return LatencyAudit(control_slug=control_slug, cells=cells)


def _flags(p50_diff_ms: float | None, late_share: float | None) -> tuple[str, ...]:
    flags = []
    if p50_diff_ms is not None and abs(p50_diff_ms) > P50_TOLERANCE_MS:
        flags.append(f"p50 differs from control by {p50_diff_ms:+.0f} ms (limit ±{P50_TOLERANCE_MS:.0f})")
    if late_share is not None and late_share > LATE_SHARE_LIMIT:
        flags.append(
            f"{late_share:.1%} of answers later than hold + {LATE_MARGIN_MS:.0f} ms (limit {LATE_SHARE_LIMIT:.0%})"
        )
    return tuple(flags)
