"""How often a shadow policy agrees with the served ranking."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ShadowAgreement:
    decisions: int
    top1_agreement: float | None
    rank_correlation: float | None
    """Mean Spearman correlation over decisions with at least two items in both rankings."""


def spearman(first: Sequence[str], second: Sequence[str]) -> float | None:
    """Spearman's rho of two rankings over the ids they share (None with fewer than two).

    Rankings hold distinct ids, so there are no ties: rho = 1 - 6Σd² / (m(m² - 1)).
    """
    in_second = set(second)
    common = [i for i in first if i in in_second]
    m = len(common)
    if m < 2:
        return None
    shared = set(common)
    position = {item: rank for rank, item in enumerate(i for i in second if i in shared)}
    d2 = sum((rank - position[item]) ** 2 for rank, item in enumerate(common))
    return 1.0 - 6.0 * d2 / (m * (m * m - 1))


def shadow_agreement(
    served: Sequence[Sequence[str]], shadow: Sequence[Sequence[str]]
) -> ShadowAgreement:
    if len(served) != len(shadow):
        raise ValueError("served and shadow need one ranking per decision each")
    pairs = [(a, b) for a, b in zip(served, shadow, strict=True) if a and b]
    if not pairs:
        return ShadowAgreement(0, None, None)
    top1 = sum(a[0] == b[0] for a, b in pairs) / len(pairs)
    rhos = [rho for a, b in pairs if (rho := spearman(a, b)) is not None]
    return ShadowAgreement(len(pairs), top1, sum(rhos) / len(rhos) if rhos else None)
