"""Every HTML page carries the Content-Security-Policy, and none needs inline script."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from annotation.models import AnnotationQueue
from annotation.services.labels import label_class_create
from annotation.services.queues import queue_create
from studio.models import DatasetVersion, Membership
from studio.security import PLOTLY_MAPLIBRE_STYLE
from studio.services.ingest import upload_create
from studio.services.jobs import job_run
from studio.services.projects import objective_create
from tests.factories import image_bytes, upload

SKIP_PREFIXES = ("api/v1/", "api/schema/", "admin/", "static/", "files/")


def _ui_patterns(resolver: URLResolver | None = None, prefix: str = ""):
    """Yield (route, pattern) for every browser page: the URLconf minus API and files."""
    for entry in (resolver or get_resolver()).url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _ui_patterns(entry, route)
        elif isinstance(entry, URLPattern) and not route.startswith(SKIP_PREFIXES):
            yield route, entry


@pytest.fixture
def ids(team, dataset):
    project, lead = team["project"], team["lead"]
    job = upload_create(
        actor=lead, project=project, dataset=dataset, files=[upload("a.jpg", image_bytes(1))]
    )
    job_run(job_id=job.pk)
    version = DatasetVersion.objects.get(dataset=dataset)
    label_class_create(actor=lead, project=project, name="sign", kind="box")
    queue_create(actor=lead, project=project, name="q", version=version, assignees=[])
    objective = objective_create(actor=lead, project=project, title="t", kpi="k", target_value=1)
    return {
        "slug": project.slug,
        "dataset_id": dataset.pk,
        "number": version.number,
        "image_id": version.items.get().image_id,
        "job_id": job.pk,
        "queue_id": AnnotationQueue.objects.get().pk,
        "objective_id": objective.pk,
        "membership_id": Membership.objects.get(user=team["viewer"]).pk,
        "kind": "embed",
        "action": "cancel",
    }


def _fill(route: str, ids: dict) -> str:
    def value(match: re.Match) -> str:
        return str(ids.get(match.group(2), 1))

    return "/" + re.sub(r"<(?:(\w+):)?(\w+)>", value, route)


# Pages that draw plotly charts, whose SVG is styled through style attributes.
CHART_PAGES = re.compile(r"^/p/[^/]+/(datasets/\d+/curate|queues/\d+/stats)/$")


def _assert_policy(response, url: str) -> None:
    policy = response.get("Content-Security-Policy", "")
    assert policy, f"{url} ({response.status_code}) has no Content-Security-Policy"
    directives = dict(
        (part.split()[0], part.split()[1:]) for part in policy.split(";") if part.strip()
    )
    assert directives["script-src"] == ["'self'"], url
    assert directives["default-src"] == ["'self'"], url
    assert "'unsafe-inline'" not in directives["style-src"], url
    assert "'unsafe-eval'" not in policy, url
    assert directives["object-src"] == ["'none'"] and directives["frame-ancestors"] == ["'none'"]
    if response.status_code == 200 and CHART_PAGES.match(url):
        assert directives["style-src-attr"] == ["'unsafe-inline'"], url
        assert PLOTLY_MAPLIBRE_STYLE in directives["style-src"], url
    else:
        assert "style-src-attr" not in directives, url
        assert PLOTLY_MAPLIBRE_STYLE not in directives["style-src"], url


def test_every_browser_page_carries_the_policy(client, team, ids):
    client.force_login(team["lead"])
    routes = list(_ui_patterns())
    assert len(routes) > 30  # the walk found the pages, not just the root
    html_pages = 0
    for route, _ in routes:
        url = _fill(route, ids)
        response = client.get(url)
        _assert_policy(response, url)
        if response.status_code == 200 and response["Content-Type"].startswith("text/html"):
            html_pages += 1
            body = response.content.decode()
            # No inline script or handler for the policy to refuse.
            assert not re.search(r"<script(?![^>]*(\bsrc=|type=\"application/json\"))", body), url
            assert not re.search(r"\son[a-z]+=\"", body), url
            assert ' style="' not in body, url
    assert html_pages >= 20


@pytest.mark.parametrize(
    "url", ["/accounts/login/", "/api/docs/", "/admin/login/", "/no-such-page/"]
)
def test_sign_in_docs_admin_and_errors_carry_the_policy(client, db, url):
    _assert_policy(client.get(url), url)


def test_api_docs_load_their_start_up_script_as_a_file(client, lead):
    client.force_login(lead)
    page = client.get("/api/docs/").content.decode()
    assert "<style>" not in page and re.search(r'<script src="[^"]*\?script=', page)
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200 and "SwaggerUIBundle" in script.content.decode()


def test_the_plotly_style_hash_matches_the_installed_plotly():
    """plotly.js injects one fixed <style> on load; an upgrade changes its hash."""
    import base64
    import hashlib
    from importlib.util import find_spec

    folder = Path(find_spec("plotly").submodule_search_locations[0])
    bundle = (folder / "package_data" / "plotly.min.js").read_text(encoding="utf-8")
    start = bundle.index("e.textContent='.maplibregl-map") + len("e.textContent='")
    css = bundle[start : bundle.index("'", start)]
    assert "\\" not in css  # a plain literal: the file's text is the element's text
    digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    assert f"'sha256-{digest}'" == PLOTLY_MAPLIBRE_STYLE, "update studio/security.py"
