"""Agreement between reviewers (Django-free): Cohen's κ for two reviewers, Fleiss' κ for several.

κ = (observed agreement − chance agreement) / (1 − chance agreement): 1 is perfect agreement, 0 is
what raters picking at random with the same frequencies would reach, below 0 is worse than chance.
Undefined (None) when there is nothing to compare or when chance agreement is already 1 (every
verdict the same category).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence


def cohen_kappa(pairs: Sequence[tuple[Hashable, Hashable]]) -> float | None:
    """κ of two reviewers from their verdicts on the same items: [(a's verdict, b's verdict), ...]."""
    n = len(pairs)
    if n == 0:
        return None
    observed = sum(1 for a, b in pairs if a == b) / n
    first, second = Counter(a for a, _ in pairs), Counter(b for _, b in pairs)
    chance = sum(first[c] * second[c] for c in set(first) | set(second)) / (n * n)
    if chance >= 1.0:
        return None
    return (observed - chance) / (1 - chance)


def fleiss_kappa(items: Sequence[Sequence[Hashable]]) -> float | None:
    """κ of any number of reviewers: each item is the list of its verdicts, every item with the same
    number of verdicts (≥ 2). Items with a different count are a caller's error."""
    items = [list(verdicts) for verdicts in items]
    if not items:
        return None
    raters = len(items[0])
    if raters < 2 or any(len(v) != raters for v in items):
        raise ValueError("Fleiss' kappa needs the same number (≥ 2) of verdicts on every item")
    categories = sorted({v for verdicts in items for v in verdicts}, key=str)
    total = len(items) * raters
    shares = {c: sum(verdicts.count(c) for verdicts in items) / total for c in categories}
    per_item = [(sum(verdicts.count(c) ** 2 for c in categories) - raters) / (raters * (raters - 1))
                for verdicts in items]
    observed = sum(per_item) / len(items)
    chance = sum(p * p for p in shares.values())
    if chance >= 1.0:
        return None
    return (observed - chance) / (1 - chance)
