"""Ids beyond 64 bits, in every URL, body and query parameter: a 4xx, never a 500.

The URL patterns are walked, not listed by hand, so a route added later is checked too:
every id in its path becomes 2**70 (and 2**64, one past what any database column holds)
and every verb is tried as a project lead.
"""

from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

HUGE = (2**64, 2**70, 10**30)


def _routes(patterns=None, prefix: str = "") -> list[str]:
    out = []
    for p in patterns if patterns is not None else get_resolver().url_patterns:
        route = prefix + str(p.pattern)
        if isinstance(p, URLResolver):
            out += _routes(p.url_patterns, route)
        elif isinstance(p, URLPattern):
            out.append(route)
    return out


def _fill(route: str, slug: str, value: int) -> str | None:
    if "<" not in route or "^" in route:
        return None
    ids = re.findall(r"<(\w+):(\w+)>", route)
    if not any(kind not in ("slug", "str", "path") for kind, _ in ids):
        return None

    def sub(m: re.Match) -> str:
        kind = m.group(1)
        return slug if kind == "slug" else "original" if kind == "str" else str(value)

    return "/" + re.sub(r"<(\w+):(\w+)>", sub, route)


def test_the_walk_finds_the_id_routes():
    routes = [r for r in _routes() if _fill(r, "p", 1)]
    assert len(routes) > 40, routes
    assert any("annotations/" in r for r in routes) and any(r.startswith("p/") for r in routes)


@pytest.mark.parametrize("value", HUGE)
def test_every_route_answers_a_huge_id_with_404(client, api, team, value):
    slug = team["project"].slug
    lead_api = api(team["lead"])
    client.force_login(team["lead"])
    failures = []
    for route in _routes():
        url = _fill(route, slug, value)
        if url is None:
            continue
        c = lead_api if url.startswith("/api/") else client
        for method in ("get", "post", "patch", "put", "delete"):
            r = getattr(c, method)(url)
            if r.status_code >= 500 or (r.status_code not in (404, 405)):
                failures.append((method, url, r.status_code))
            elif url.startswith("/api/") and r.status_code == 404:
                assert r.json()["error"]["code"] == "not_found"
    assert not failures, failures


ID_BODIES = [
    ("post", "images/{image}/annotations/", {"label_class": 2**70, "geometry": None}),
    ("post", "queues/", {"name": "q", "dataset": 2**70, "version": 2**70}),
    ("post", "queues/", {"name": "q", "image_ids": [2**70]}),
    ("post", "objectives/", {"title": "t", "kpi": "k", "owner": 2**70}),
    ("post", "datasets/{dataset}/curate/", {"action": "exclude", "cluster": 2**70}),
    ("post", "datasets/{dataset}/curate/", {"action": "exclude", "version": 2**70}),
    ("post", "images/{image}/preannotate/", {"label_class": 2**70, "box": [1, 1, 5, 5]}),
    ("post", "uploads/", {"dataset": 2**70}),
]


@pytest.mark.parametrize(("method", "path", "body"), ID_BODIES)
def test_huge_ids_in_bodies_are_a_4xx(api, team, dataset, method, path, body):
    from studio.models import Image
    from studio.services.ingest import upload_create
    from studio.services.jobs import job_run
    from tests.factories import image_bytes, upload

    job = upload_create(actor=team["lead"], project=team["project"], dataset=dataset,
                        files=[upload("a.png", image_bytes(fmt="PNG"))])  # fmt: skip
    job_run(job_id=job.pk)
    image = Image.objects.get(project=team["project"])
    url = f"/api/v1/projects/{team['project'].slug}/" + path.format(
        image=image.pk, dataset=dataset.pk
    )
    r = getattr(api(team["lead"]), method)(url, body, format="json")
    assert 400 <= r.status_code < 500, (r.status_code, r.content)
    assert "error" in r.json()


QUERIES = [
    "images/?dataset={huge}",
    "images/?dataset={dataset}&version={huge}",
    "images/?cluster={huge}",
    "images/{image}/annotations/?task={huge}",
]


@pytest.mark.parametrize("query", QUERIES)
def test_huge_ids_in_query_parameters_are_a_4xx(api, team, dataset, query):
    url = f"/api/v1/projects/{team['project'].slug}/" + query.format(
        huge=2**70, dataset=dataset.pk, image=1
    )
    r = api(team["lead"]).get(url)
    assert 400 <= r.status_code < 500, (r.status_code, r.content)
    assert "error" in r.json()
