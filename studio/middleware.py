"""Middleware of Studio's own."""

from __future__ import annotations

from django.conf import settings
from django.middleware.gzip import GZipMiddleware


class StaticGZipMiddleware(GZipMiddleware):
    """Gzip static files only, for when WhiteNoise has no pre-compressed copy to serve.

    In production ``collectstatic`` writes ``.gz`` files that WhiteNoise serves directly
    (a response that already has a ``Content-Encoding`` is left alone). In development it
    serves the source files through the finders, so plotly.js went out as 4.8 MB. Pages
    are never compressed here: compressing HTML that carries a CSRF token next to
    reflected input is what BREACH exploits.
    """

    def process_response(self, request, response):
        if not request.path.startswith(f"/{settings.STATIC_URL.lstrip('/')}"):
            return response
        return super().process_response(request, response)
