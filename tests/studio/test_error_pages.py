"""What a user sees when something goes wrong with DEBUG off, and how static files travel."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import Client, RequestFactory
from django.urls import get_resolver


@pytest.fixture
def production(settings):
    settings.DEBUG = False
    return settings


def signed_in(user) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def test_a_missing_page_is_a_studio_page_that_says_where_to_go(production, team):
    client = signed_in(team["annotator"])
    response = client.get("/p/no-such-project/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "This page does not exist, or you cannot see it" in html
    assert "Project not found." in html and 'href="/"' in html
    # An unknown URL (no view at all) gets the same page, without a reason.
    response = client.get("/no/such/url/")
    assert response.status_code == 404 and "does not exist" in response.content.decode()


def test_another_teams_project_looks_missing_not_forbidden(production, team):
    response = signed_in(team["annotator"]).get(f"/p/{team['other'].slug}/")
    assert response.status_code == 404


def test_a_role_refused_by_a_service_is_a_403_page_not_a_form_error_or_500(production, team):
    project = team["project"]
    response = signed_in(team["viewer"]).post(
        f"/p/{project.slug}/edit/", {"name": "Taken over", "business_problem": "x"}
    )
    assert response.status_code == 403
    html = response.content.decode()
    assert "Your role does not allow this" in html and "Members page" in html
    project.refresh_from_db()
    assert project.name == "Team project"


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("edit/", {"lead"}),
        ("objectives/new/", {"lead"}),
        ("problem/", {"lead"}),
        ("datasets/new/", {"lead", "reviewer"}),
    ],
)
def test_form_pages_are_refused_to_roles_that_could_not_submit_them(
    production, team, path, allowed
):
    for role in ("lead", "reviewer", "annotator", "viewer"):
        response = signed_in(team[role]).get(f"/p/{team['project'].slug}/{path}")
        if role in allowed:
            assert response.status_code == 200, role
            assert "<form" in response.content.decode()
        else:
            assert response.status_code == 403, role
            assert "Only the project" in response.content.decode()


def test_api_errors_stay_json_with_debug_off(production, team):
    client = signed_in(team["lead"])
    response = client.get("/api/v1/no-such-route/")
    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "not_found", "message": "Not found.", "details": None}
    }


def test_a_server_error_page_renders_without_the_database(production):
    """No db fixture: any query here would raise (the database may be what failed)."""
    handler = get_resolver().resolve_error_handler(500)
    response = handler(RequestFactory().get("/p/demo/"))
    assert response.status_code == 500
    assert "Something went wrong on our side" in response.content.decode()
    api = handler(RequestFactory().get("/api/v1/projects/"))
    assert api.status_code == 500 and api["Content-Type"] == "application/json"


def test_a_database_that_cannot_take_the_request_is_a_503_with_retry_after(production):
    """Django calls the 500 handler while it handles the exception; no db fixture again."""
    from django.db import OperationalError

    handler = get_resolver().resolve_error_handler(500)
    try:
        raise OperationalError("database is locked")
    except OperationalError:
        page = handler(RequestFactory().get("/p/demo/"))
        api = handler(RequestFactory().get("/api/v1/projects/"))
    assert page.status_code == 503 and page["Retry-After"] == "1"
    assert "busy for a moment" in page.content.decode()
    assert api.status_code == 503 and api["Retry-After"] == "1"
    assert json.loads(api.content)["error"]["code"] == "unavailable"


def test_a_stale_form_explains_itself(production, team):
    client = Client(enforce_csrf_checks=True)
    client.force_login(team["lead"])
    response = client.post(f"/p/{team['project'].slug}/edit/", {"name": "x"})
    assert response.status_code == 403
    assert "This form has expired" in response.content.decode()


def test_plotly_js_is_versioned_cached_for_good_and_gzipped(client, settings, team):
    # As `make demo` serves it (DEBUG): from the finders, no collectstatic, no .gz copies.
    # (pytest-django turns DEBUG off, which WhiteNoise reads when a client first loads it.)
    settings.WHITENOISE_USE_FINDERS = True
    settings.WHITENOISE_AUTOREFRESH = True
    client.force_login(team["lead"])
    url = f"/static/{django_settings.PLOTLY_JS}"
    response = client.get(url, HTTP_ACCEPT_ENCODING="gzip")
    assert response.status_code == 200
    assert response["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response["Content-Encoding"] == "gzip"
    body = gzip.decompress(b"".join(response.streaming_content))
    source = Path(__import__("plotly").__file__).parent / "package_data" / "plotly.min.js"
    assert body == source.read_bytes()
    # A client that does not accept gzip gets the file as it is.
    plain = client.get(url)
    assert "Content-Encoding" not in plain and b"".join(plain.streaming_content) == body


def test_pages_are_not_compressed(client, team):
    """HTML carrying a CSRF token is never gzipped (BREACH)."""
    client.force_login(team["lead"])
    response = client.get(f"/p/{team['project'].slug}/", HTTP_ACCEPT_ENCODING="gzip")
    assert response.status_code == 200 and "Content-Encoding" not in response
