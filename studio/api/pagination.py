"""Seek pagination for the API's lists that grow with a dataset (images, duplicate groups).

The answer keeps the page-number shape existing clients read (``count``, ``next``,
``previous``, ``results``) and adds ``count_exact``. ``next`` and ``previous`` seek by id
(``?after=`` / ``?before=``), so following them costs one page at any depth; ``?page=``
still works for clients that ask for numbers, at the cost of the rows it skips. ``count``
is exact when ``count_exact`` is true; otherwise the list holds more than ``count``
(it is counted up to ``studio.pagination.COUNT_CAP``). See docs/api.md.
"""

from __future__ import annotations

from rest_framework.exceptions import NotFound
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.utils.urls import remove_query_param, replace_query_param

from studio.errors import ApplicationError
from studio.pagination import COUNT_CAP, SeekPage, Total, seek_page

MAX_ID = 2**63 - 1


def _positive(request: Request, name: str, most: int = MAX_ID) -> int | None:
    raw = request.query_params.get(name, "")
    if raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= most:
        raise ApplicationError(
            f"{name} must be a whole number from 1 to {most}.", details={name: raw[:40]}
        )
    return value


class SeekPagination(BasePagination):
    page_size = api_settings.PAGE_SIZE
    key = "pk"

    def paginate_queryset(self, queryset, request, view=None, total: Total | None = None):
        """Return one page of ``queryset``; ``total``, when known without counting, is used."""
        after, before = _positive(request, "after"), _positive(request, "before")
        page = _positive(request, "page", most=MAX_ID // self.page_size)
        if sum(p is not None for p in (after, before, page)) > 1:
            raise ApplicationError("Give one of after, before and page.")
        self.request = request
        self.page: SeekPage = seek_page(
            queryset, size=self.page_size, after=after, before=before,
            offset=((page or 1) - 1) * self.page_size, key=self.key, total=total,
        )  # fmt: skip
        if page and page > 1 and not self.page.object_list:
            raise NotFound("Invalid page.")
        return self.page.object_list

    def _link(self, name: str, value: int | None) -> str | None:
        if value is None:
            return None
        url = self.request.build_absolute_uri()
        for other in ("page", "after", "before"):
            url = remove_query_param(url, other)
        return replace_query_param(url, name, value)

    def get_paginated_response(self, data) -> Response:
        return Response(
            {
                "count": self.page.total.value,
                "count_exact": self.page.total.exact,
                "next": self._link("after", self.page.after),
                "previous": self._link("before", self.page.before),
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema: dict) -> dict:
        return {
            "type": "object",
            "required": ["count", "count_exact", "results"],
            "properties": {
                "count": {
                    "type": "integer",
                    "description": "How many results; when count_exact is false, more than "
                    f"this (lists are counted up to {COUNT_CAP:,}).",
                },
                "count_exact": {"type": "boolean"},
                "next": {"type": "string", "nullable": True, "format": "uri"},
                "previous": {"type": "string", "nullable": True, "format": "uri"},
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view) -> list[dict]:
        def param(name: str, description: str) -> dict:
            return {
                "name": name,
                "required": False,
                "in": "query",
                "description": description,
                "schema": {"type": "integer", "minimum": 1},
            }

        return [
            param("after", "The page after this id (what `next` links give)."),
            param("before", "The page before this id (what `previous` links give)."),
            param("page", "A page number; costs the rows it skips: prefer `next`."),
        ]
