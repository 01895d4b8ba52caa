"""The OpenAPI schema's view of errors: what ``studio.errors.api_exception_handler`` answers.

Every operation can fail the way every view does: a 400 for a body or query parameter
that is not valid, 401 without credentials, 403 for a role that may not, 404 for what
the caller cannot see (and a page past the last); writes can also meet a 409 (a stale
version, a conflict, a confirmation asked for) or a 423 (someone else holds the image),
and a body in a content type the view does not parse is a 415.
Documenting those once, here, with the one error body, keeps the schema true without
repeating them on each view; a view adds what only it answers (a 410 for an expired
export) with ``extend_schema(responses={410: ErrorSerializer})``.
"""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

COMMON = ("400", "401", "403", "404")
WRITES = ("409", "423")


@extend_schema_field(OpenApiTypes.ANY)
class _AnyField(serializers.Field):
    pass


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField(
        help_text="Stable, for programs: invalid, not_found, conflict, ..."
    )
    message = serializers.CharField(help_text="For people: what is wrong and how to fix it.")
    details = _AnyField(allow_null=True, help_text="Per-field messages or figures; may be null.")


class ErrorSerializer(serializers.Serializer):
    error = ErrorBodySerializer()


class AutoSchema(SpectacularAutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        codes = list(COMMON)
        if self.method in ("POST", "PUT", "PATCH", "DELETE"):
            codes += WRITES
        if self.method in ("POST", "PUT", "PATCH"):
            codes.append("415")  # a body in a content type the view does not parse
        if settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_CLASSES"):
            codes.append("429")
        for code in codes:
            if code not in responses or "content" not in responses[code]:
                responses[code] = self._get_response_for_code(
                    ErrorSerializer, code, direction=direction
                )
        return responses
