"""Errors a user can read, and the one API handler that turns them into JSON.

Services raise ``ApplicationError`` subclasses; the API answers
``{"error": {"code": ..., "message": ..., "details": ...}}`` with a stable code.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import OperationalError
from django.db.models import ProtectedError, RestrictedError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler


class ApplicationError(Exception):
    """A failure the caller caused and can fix; its message is shown to the user."""

    code = "invalid"
    http_status = status.HTTP_400_BAD_REQUEST

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(ApplicationError):
    code = "not_found"
    http_status = status.HTTP_404_NOT_FOUND


class Forbidden(ApplicationError):
    code = "forbidden"
    http_status = status.HTTP_403_FORBIDDEN


class Conflict(ApplicationError):
    code = "conflict"
    http_status = status.HTTP_409_CONFLICT


class ConfirmationRequired(Conflict):
    """An action that removes data was asked for without its confirmation; the message says
    in numbers what it would remove, and ``details`` how to confirm it."""

    code = "confirmation_required"


class Locked(ApplicationError):
    """Someone else holds it for now (a queue task under a live lease)."""

    code = "locked"
    http_status = status.HTTP_423_LOCKED


class Gone(ApplicationError):
    """It existed and was removed on purpose (an expired export, say)."""

    code = "gone"
    http_status = status.HTTP_410_GONE


class UploadRejected(ApplicationError):
    code = "upload_rejected"


class InvalidValues(ApplicationError):
    """A model's own validation refused the values: ``details`` maps each field to its
    messages (a list when they belong to no field), ``messages`` lists them all."""

    def __init__(self, details: dict | list, messages: list[str]) -> None:
        super().__init__("Some values are not valid.", details=details)
        self.messages = messages


def validate_model(instance, **kwargs) -> None:
    """Run the instance's ``full_clean(**kwargs)``; raise InvalidValues for what it refuses.

    Services validate through this, so they raise ApplicationError only and neither the
    API nor the pages need to know Django's ValidationError.
    """
    try:
        instance.full_clean(**kwargs)
    except DjangoValidationError as exc:
        details = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        raise InvalidValues(details, exc.messages) from exc


logger = logging.getLogger(__name__)

# Seconds a client is asked to wait before sending a request the database could not take.
RETRY_AFTER_S = 1
UNAVAILABLE = {
    "code": "unavailable",
    "message": "The database is busy for a moment; send the request again.",
    "details": None,
}


def database_unavailable(exc: OperationalError) -> Response:
    """Answer a request the database could not take (SQLite still locked after its wait, a
    PostgreSQL connection lost) as 503 with Retry-After: a moment's state, not a bug, and
    a client may send it again. Logged, since many of them say the server needs tuning."""
    logger.warning("Database unavailable, answered 503: %s", exc)
    return Response(
        {"error": UNAVAILABLE},
        status=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, OperationalError):
        return database_unavailable(exc)
    if isinstance(exc, ApplicationError):
        body = {"error": {"code": exc.code, "message": exc.message, "details": exc.details}}
        return Response(body, status=exc.http_status)
    if isinstance(exc, ProtectedError | RestrictedError):
        # A service that deletes should say first what stands in the way (as project and
        # class deletion do); this keeps one that does not from answering 500.
        held = exc.protected_objects if isinstance(exc, ProtectedError) else exc.restricted_objects
        counts = Counter(str(o._meta.verbose_name_plural) for o in held)
        body = {
            "error": {
                "code": Conflict.code,
                "message": "Other records still refer to this; delete or change them first.",
                "details": dict(counts),
            }
        }
        return Response(body, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, DjangoValidationError):
        details = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        body = {
            "error": {
                "code": "invalid",
                "message": "Some values are not valid.",
                "details": details,
            }
        }
        return Response(body, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is not None and isinstance(exc, exceptions.APIException):
        details = response.data
        message = details.get("detail") if isinstance(details, dict) else None
        code = exc.get_codes() if not isinstance(exc, exceptions.ValidationError) else "invalid"
        if not isinstance(code, str):
            code = "invalid"
        response.data = {
            "error": {
                "code": code,
                "message": str(message) if message else "The request is not valid.",
                "details": None if message else details,
            }
        }
    return response
