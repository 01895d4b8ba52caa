"""Template context shared by every page."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def vendor(request: HttpRequest) -> dict[str, str]:
    """Name the versioned static path of plotly.js (``{% static PLOTLY_JS %}``)."""
    return {"PLOTLY_JS": settings.PLOTLY_JS}
