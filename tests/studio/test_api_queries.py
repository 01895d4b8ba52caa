"""Query parameters: a wrong value is a 400 that names it, never quietly replaced."""

from __future__ import annotations

import pytest

from tests.factories import image_bytes, upload

BAD = [
    ("images/{image}/similar/?k=abc", "k"),
    ("images/{image}/similar/?k=0", "k"),
    ("images/{image}/similar/?k=101", "k"),
    ("images/{image}/similar/?backbone=nope", "backbone"),
    ("datasets/{dataset}/versions/1/outliers/?limit=abc", "limit"),
    ("datasets/{dataset}/versions/1/outliers/?limit=100000", "limit"),
    ("images/?dataset=abc", "dataset"),
    ("images/?dataset={dataset}&version=x", "version"),
    ("images/?cluster=1.5", "cluster"),
    ("images/?cluster=-1", "cluster"),
    ("images/?split=holdout", "split"),
    ("images/{image}/annotations/?task=abc", "task"),
    ("annotations/1/?version=abc", "version"),
    ("/api/v1/jobs/?project=a b", "project"),
    ("/api/v1/jobs/1/files/?outcome=maybe", "outcome"),
]


@pytest.fixture
def image(team, dataset):
    from studio.models import Image
    from studio.services.ingest import upload_create
    from studio.services.jobs import job_run

    job = upload_create(actor=team["lead"], project=team["project"], dataset=dataset,
                        files=[upload("a.png", image_bytes(fmt="PNG"))])  # fmt: skip
    job_run(job_id=job.pk)
    return Image.objects.get(project=team["project"])


@pytest.mark.parametrize(("path", "name"), BAD)
def test_a_wrong_query_parameter_is_a_400_naming_it(api, team, dataset, image, path, name):
    path = path.format(image=image.pk, dataset=dataset.pk)
    url = path if path.startswith("/") else f"/api/v1/projects/{team['project'].slug}/{path}"
    method = "delete" if path.startswith("annotations/") else "get"
    r = getattr(api(team["lead"]), method)(url)
    assert r.status_code == 400, (r.status_code, r.content)
    error = r.json()["error"]
    assert error["code"] == "invalid" and name in (error["details"] or {}), error


def test_split_and_version_without_what_they_select_within_are_400(api, team, dataset):
    base = f"/api/v1/projects/{team['project'].slug}/images/"
    assert api(team["lead"]).get(base + "?version=1").status_code == 400
    assert api(team["lead"]).get(base + f"?dataset={dataset.pk}&split=val").status_code == 400


def test_a_huge_number_in_a_metadata_filter_matches_nothing(api, team, image):
    from studio.models import Project

    Project.objects.filter(pk=team["project"].pk).update(metadata_fields=["site"])
    url = f"/api/v1/projects/{team['project'].slug}/images/?meta.site={10**30}"
    r = api(team["lead"]).get(url)
    assert r.status_code == 200 and r.json()["results"] == []


def test_a_form_body_cannot_silently_empty_a_problem_statements_approaches(api, team):
    url = f"/api/v1/projects/{team['project'].slug}/problem/"
    lead = api(team["lead"])
    body = {"task_type": "instance_segmentation", "description": "cells",
            "approaches": [{"name": "Mask R-CNN", "priority": 1}]}  # fmt: skip
    assert lead.put(url, body, format="json").status_code == 200, lead.put(
        url, body, format="json"
    ).content
    form = {"task_type": "instance_segmentation", "description": "cells", "approaches": "junk"}
    r = lead.put(url, form, format="multipart")
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"
    assert len(lead.get(url).json()["approaches"]) == 1
