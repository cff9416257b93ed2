"""`Kept`: a run of generated record indexes with a few removed, indexable without building a list.

Generated records live in compact arrays addressed by index, and lists page through them by
arithmetic. When a record vanishes (`/_sandbox/remove`, or the activity's vanish rates), its index
joins a short sorted list of removed indexes; `Kept` answers "how many are left" and "which is the
n-th left" with binary searches over that list, so paging stays cheap at any scale.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence


class Kept:
    """Indexes `lo..hi-1` minus the removed ones (`removed` is sorted; only those in range count)."""

    __slots__ = ("hi", "lo", "removed")

    def __init__(self, lo: int, hi: int, removed: Sequence[int] = ()) -> None:
        self.lo, self.hi = lo, max(lo, hi)
        self.removed = list(removed[bisect_left(removed, lo) : bisect_left(removed, self.hi)]) if removed else []

    def __len__(self) -> int:
        return self.hi - self.lo - len(self.removed)

    def __contains__(self, i: object) -> bool:
        if not isinstance(i, int) or not self.lo <= i < self.hi:
            return False
        j = bisect_left(self.removed, i)
        return j == len(self.removed) or self.removed[j] != i

    def _removed_in(self, a: int, b: int) -> int:
        """Removed indexes in [a, b]."""
        return bisect_right(self.removed, b) - bisect_left(self.removed, a)

    def count_from(self, i: int) -> int:
        """Kept indexes in [i, hi)."""
        i = max(i, self.lo)
        return max(0, self.hi - i - self._removed_in(i, self.hi - 1))

    def count_below(self, i: int) -> int:
        """Kept indexes in [lo, i)."""
        i = min(i, self.hi)
        return max(0, i - self.lo - self._removed_in(self.lo, i - 1))

    def nth(self, n: int) -> int:
        """The n-th kept index counting up from `lo` (0-based).

        The least fixed point of idx = lo + n + removed(lo..idx) is kept (a removed one would
        leave a smaller fixed point just below it), and iterating up from lo + n reaches it.
        """
        if not self.removed:
            return self.lo + n
        idx = self.lo + n
        while True:
            nxt = self.lo + n + self._removed_in(self.lo, idx)
            if nxt == idx:
                return idx
            idx = nxt

    def nth_desc(self, q: int) -> int:
        """The q-th kept index counting down from `hi - 1` (0-based): the same search, mirrored."""
        top = self.hi - 1
        if not self.removed:
            return top - q
        idx = top - q
        while True:
            nxt = top - q - self._removed_in(idx, top)
            if nxt == idx:
                return idx
            idx = nxt
