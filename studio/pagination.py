"""Pages that cost the same at a million rows as at a thousand: seek by key, count to a cap.

An OFFSET page reads and discards every row before it, and "N results" is a ``COUNT(*)``
over the whole list: at a million images both grow with the dataset. A seek page asks
for the rows after (or before) the last key it showed, which an index answers in the
page's own time. Its count is exact when it is known without counting (a version's or a
working set's stored ``image_count``), and otherwise counted up to ``COUNT_CAP`` + 1
rows: more than that reads "1,000+".

The browser grid (``studio.views.dataset_detail``) and the API's growing lists
(``studio.api.pagination.SeekPagination``) share this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import QuerySet

COUNT_CAP = 1_000


@dataclass(frozen=True)
class Total:
    """How many rows a list holds: ``value`` exactly, or more than ``value`` when not exact."""

    value: int
    exact: bool = True

    def __str__(self) -> str:
        return f"{self.value:,}" if self.exact else f"{self.value:,}+"


def capped_count(queryset: QuerySet, cap: int | None = None) -> Total:
    """Count the rows, reading at most ``cap`` (default ``COUNT_CAP``) + 1 of them."""
    cap = COUNT_CAP if cap is None else cap
    found = queryset.order_by().values("pk")[: cap + 1].count()
    return Total(min(found, cap), exact=found <= cap)


@dataclass
class SeekPage:
    """One page of a list ordered by ``key``, with the keys its neighbours start from."""

    object_list: list
    total: Total
    after: int | None = None  # pass as ``after`` for the next page; None on the last
    before: int | None = None  # pass as ``before`` for the previous page; None on the first
    keys: list = field(default_factory=list)

    def __iter__(self):
        return iter(self.object_list)

    def __len__(self) -> int:
        return len(self.object_list)

    @property
    def has_next(self) -> bool:
        return self.after is not None

    @property
    def has_previous(self) -> bool:
        return self.before is not None


def seek_page(
    queryset: QuerySet,
    *,
    size: int,
    after: int | None = None,
    before: int | None = None,
    offset: int = 0,
    key: str = "pk",
    total: Total | None = None,
) -> SeekPage:
    """Return the ``size`` rows after ``after`` (or before ``before``; else from ``offset``).

    The queryset's own ordering is replaced by ``key`` ascending, which must be unique
    (the primary key, or a position unique in the list). ``total``, when the caller
    knows it without counting, saves the capped count. ``offset`` serves clients that
    ask for page numbers; it costs what it skips, where ``after`` costs one page.
    """
    if after is not None:
        rows = list(queryset.filter(**{f"{key}__gt": after}).order_by(key)[: size + 1])
        more_after, more_before = len(rows) > size, True
        rows = rows[:size]
    elif before is not None:
        rows = list(queryset.filter(**{f"{key}__lt": before}).order_by(f"-{key}")[: size + 1])
        more_after, more_before = True, len(rows) > size
        rows = rows[:size][::-1]
    else:
        rows = list(queryset.order_by(key)[offset : offset + size + 1])
        more_after, more_before = len(rows) > size, offset > 0
        rows = rows[:size]
    keys = [getattr(row, "pk" if key == "pk" else key) for row in rows]
    return SeekPage(
        object_list=rows,
        total=total if total is not None else capped_count(queryset),
        after=keys[-1] if rows and more_after else None,
        before=keys[0] if rows and more_before else None,
        keys=keys,
    )
