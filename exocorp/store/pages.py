"""Keyset pagination: a page of rows and the cursor (the last row's id) that continues after it.

Keyset rather than OFFSET: a page stays correct while new rows are appended, and every page costs
the same index range scan however deep the reader goes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

MAX_PAGE_SIZE: Final = 500

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: int | None
    """Pass back as ``cursor`` for the next page; None when this page is the last."""


def clamp_limit(limit: int) -> int:
    if limit < 1:
        raise ValueError("limit must be at least 1")
    return min(limit, MAX_PAGE_SIZE)


def page_of(rows: Sequence[T], limit: int, cursor_of: Callable[[T], int]) -> Page[T]:
    """A page from ``limit + 1`` fetched rows (the extra row only says that there is more)."""
    items = list(rows[:limit])
    more = len(rows) > limit and bool(items)
    return Page(items=items, next_cursor=cursor_of(items[-1]) if more else None)
