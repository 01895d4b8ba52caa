"""The pages a user sees when something goes wrong with DEBUG off (``handler404`` and co).

Browser paths get a Studio page that says what happened and where to go next; paths under
``/api/`` get the API's JSON error shape, so an integration never has to parse HTML.
"""

from __future__ import annotations

import sys

from django.db import OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template import loader

from studio.errors import RETRY_AFTER_S

MESSAGES = {
    400: ("bad_request", "The request could not be understood."),
    403: ("forbidden", "You do not have permission to do this."),
    404: ("not_found", "Not found."),
    500: ("server_error", "Something went wrong on our side. It has been logged."),
    503: ("unavailable", "The database is busy for a moment; send the request again."),
}


def _api(request: HttpRequest) -> bool:
    """Whether the path is the API's (``/files/`` serves the API's image bytes)."""
    return request.path.startswith(("/api/", "/files/"))


def _json(status: int, message: str | None = None) -> JsonResponse:
    code, default = MESSAGES[status]
    body = {"error": {"code": code, "message": message or default, "details": None}}
    return JsonResponse(body, status=status)


def _reason(exception: Exception | None) -> str | None:
    """Return the message a view gave its Http404 / PermissionDenied, when it gave one."""
    if exception is None or not exception.args:
        return None
    message = exception.args[0]
    return message if isinstance(message, str) and message else None


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _api(request):
        return _json(400)
    return render(request, "errors/400.html", status=400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _api(request):
        return _json(403, _reason(exception))
    return render(request, "errors/403.html", {"reason": _reason(exception)}, status=403)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _api(request):
        return _json(404, _reason(exception))
    return render(request, "errors/404.html", {"reason": _reason(exception)}, status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    """Render without a request context: the database may be what failed.

    Django calls this while it handles the exception: a database that could not take the
    request (``OperationalError``: SQLite still locked after its wait, a lost connection)
    is a 503 with Retry-After, since sending it again a moment later is the remedy.
    """
    if isinstance(sys.exc_info()[1], OperationalError):
        response = (
            _json(503)
            if _api(request)
            else HttpResponse(loader.get_template("errors/503.html").render(), status=503)
        )
        response["Retry-After"] = str(RETRY_AFTER_S)
        return response
    if _api(request):
        return _json(500)
    return HttpResponse(loader.get_template("errors/500.html").render(), status=500)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form older than the session, or a page opened in another browser: say so."""
    if _api(request):
        return _json(403, "CSRF check failed: send the X-CSRFToken header with session auth.")
    return render(request, "errors/403_csrf.html", status=403)
