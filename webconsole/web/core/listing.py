"""Server-side search, sort and pagination for every list page, with the state in the URL."""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil
from typing import Any, Sequence
from urllib.parse import urlencode

from fastapi import Request

PER_PAGE_CHOICES = (10, 25, 50, 100)


@dataclass(frozen=True)
class Page:
    """One page of a filtered, sorted list, plus what the template needs to link to others."""

    rows: list[dict[str, Any]]
    total: int
    page: int
    pages: int
    per_page: int
    q: str
    sort: str
    order: str
    base_url: str
    params: dict[str, str]

    def url(self, **changes: Any) -> str:
        """This list's URL with some parameters changed (others kept, defaults dropped)."""
        params = {**self.params, **{key: str(value) for key, value in changes.items()}}
        clean = {key: value for key, value in params.items() if value not in ("", None)}
        return self.base_url + ("?" + urlencode(clean) if clean else "")

    def sort_url(self, column: str) -> str:
        order = "desc" if self.sort == column and self.order == "asc" else "asc"
        return self.url(sort=column, order=order, page=1)

    def sort_mark(self, column: str) -> str:
        if self.sort != column:
            return ""
        return "▲" if self.order == "asc" else "▼"

    @property
    def first_index(self) -> int:
        return 0 if self.total == 0 else (self.page - 1) * self.per_page + 1

    @property
    def last_index(self) -> int:
        return min(self.total, self.page * self.per_page)


def _sort_key(value: Any) -> tuple[int, Any]:
    # Numbers before text, text case-insensitively, missing values last.
    if value is None:
        return (2, "")
    if isinstance(value, bool):
        return (1, str(value))
    if isinstance(value, (int, float)):
        return (0, value)
    return (1, str(value).lower())


def paginate(
    request: Request,
    records: Sequence[dict[str, Any]],
    *,
    search: Sequence[str],
    sortable: Sequence[str],
    default_sort: str,
    default_order: str = "asc",
    extra_params: Sequence[str] = (),
) -> Page:
    """Filter ``records`` by ``?q=`` over ``search`` columns, sort by ``?sort=&order=``, cut ``?page=``."""
    query = request.query_params
    q = query.get("q", "").strip()
    sort = query.get("sort", default_sort)
    if sort not in sortable:
        sort = default_sort
    order = query.get("order", default_order)
    if order not in ("asc", "desc"):
        order = default_order
    try:
        per_page = int(query.get("per_page", "25"))
    except ValueError:
        per_page = 25
    if per_page not in PER_PAGE_CHOICES:
        per_page = 25
    rows = list(records)
    if q:
        needle = q.lower()
        rows = [row for row in rows if any(needle in str(row.get(col, "")).lower() for col in search)]
    # missing values stay last in both directions
    missing = [row for row in rows if row.get(sort) is None]
    rows = [row for row in rows if row.get(sort) is not None]
    rows.sort(key=lambda row: _sort_key(row.get(sort)), reverse=(order == "desc"))
    rows += missing
    total = len(rows)
    pages = max(1, ceil(total / per_page))
    try:
        page = min(max(1, int(query.get("page", "1"))), pages)
    except ValueError:
        page = 1
    params = {"q": q, "sort": sort, "order": order, "per_page": str(per_page), "page": str(page)}
    for name in extra_params:
        if query.get(name):
            params[name] = query[name]
    return Page(
        rows=rows[(page - 1) * per_page: page * per_page],
        total=total, page=page, pages=pages, per_page=per_page, q=q, sort=sort, order=order,
        base_url=str(request.url.path), params=params,
    )
