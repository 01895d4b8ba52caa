"""What every API view of every app builds on: the base view and its request helpers.

``ApiView`` resolves the project of a ``projects/<slug>/`` URL through the caller's
memberships; ``paginate``, ``validated`` and ``query`` are the three steps almost every
view takes (validate the body or the query string, answer a page). Other apps import
these from here, never from another app's views module.
"""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from studio import selectors


def paginate(view: APIView, request: Request, queryset, serializer_class) -> Response:
    """Answer one page of the queryset, serialized, with the paginator's links."""
    paginator = view.pagination_class()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)


def validated(serializer_class, data, **kwargs):
    """Return the serializer's validated data, or raise DRF's 400 naming each bad field."""
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def validated_query(serializer_class, request: Request) -> dict:
    """Validate the query parameters a view declares (``extend_schema(parameters=[...])``
    takes the same serializer): a wrong value is a 400 naming it, never quietly replaced
    by a default. An empty value counts as absent."""
    params = {k: v for k, v in request.query_params.items() if v != ""}
    return validated(serializer_class, params)


class ApiView(APIView):
    # Lists are paginated (``paginate``) and the schema says so; a view that answers a
    # plain list sets ``pagination_class = None``, or its schema describes a page.
    pagination_class = api_settings.DEFAULT_PAGINATION_CLASS

    def project(self):
        if not hasattr(self, "_project"):
            self._project = selectors.project_get(user=self.request.user, slug=self.kwargs["slug"])
        return self._project
