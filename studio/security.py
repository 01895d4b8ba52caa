"""Security hooks: sign-in throttling (django-axes) and the chart pages' CSP exception.

Axes counts failed sign-ins per (username, client address) on the token endpoint, the
sign-in form and the admin; past ``STUDIO_LOGIN_FAILURE_LIMIT`` failures the pair is
locked out for the cool-off. These two functions are wired in settings
(``AXES_CLIENT_IP_CALLABLE`` and ``AXES_LOCKOUT_CALLABLE``).
"""

from __future__ import annotations

import math

from axes.helpers import get_cool_off
from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

LOCKOUT_TEMPLATE = "registration/locked_out.html"

# plotly.js styles its SVG through style attributes (d3's attr("style", ...)), which a
# policy without 'unsafe-inline' for attributes refuses, and on load it injects one fixed
# <style> element (its bundled maplibre CSS). Pages that draw plotly charts allow style
# *attributes* and that one element by its hash; scripts stay 'self'. The hash belongs to
# the installed plotly.js: tests/studio/test_csp.py recomputes it from the file.
PLOTLY_MAPLIBRE_STYLE = "'sha256-ji27qzEtxXZW+7dun6UwjHXJ18e6WAin1VvNtkzIE/o='"
chart_page = csp_update({"style-src-attr": [UNSAFE_INLINE], "style-src": [PLOTLY_MAPLIBRE_STYLE]})


def client_ip(request: HttpRequest) -> str:
    """Return the client's address, trusting ``X-Forwarded-For`` only behind known proxies.

    With ``STUDIO_TRUSTED_PROXIES`` = N (the number of reverse proxies in front of Studio),
    the client is the N-th address from the right of ``X-Forwarded-For``; the ones left of
    it are whatever the client chose to send. With 0 (the default) the header is ignored.
    """
    proxies = settings.STUDIO["TRUSTED_PROXIES"]
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies > 0 and forwarded:
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if len(hops) >= proxies:
            return hops[-proxies]
    return request.META.get("REMOTE_ADDR", "")


def _wait_words(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials=None
) -> HttpResponse:
    """Answer a locked-out sign-in: the API's error shape on /api/, a readable page elsewhere.

    Both answer 429 with ``Retry-After``, and neither says whether the password was right.
    """
    cool_off = get_cool_off(request)
    seconds = int(cool_off.total_seconds()) if cool_off else 0
    message = (
        "Too many failed sign-in attempts for this user from your address. "
        + (f"Try again in {_wait_words(seconds)}" if seconds else "Ask an administrator")
        + " (an administrator can unlock it now with manage.py axes_reset_username)."
    )
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse(
            {
                "error": {
                    "code": "locked_out",
                    "message": message,
                    "details": {"retry_after_seconds": seconds or None},
                }
            },
            status=429,
        )
    else:
        response = render(request, LOCKOUT_TEMPLATE, {"message": message}, status=429)
    if seconds:
        response["Retry-After"] = str(seconds)
    return response
