"""Role × endpoint × verb: what each role may do, and that outsiders learn nothing (404)."""

from __future__ import annotations

import pytest

from annotation.services.labels import label_class_create
from studio.models import Membership
from studio.services.ingest import upload_create
from studio.services.jobs import job_run
from studio.services.projects import objective_create, problem_statement_set
from tests.factories import image_bytes, make_user, upload

VIEW, CONTRIBUTE, MANAGE, ANNOTATE = "view", "contribute", "manage", "annotate"
ALLOWED = {
    "lead": {VIEW, CONTRIBUTE, MANAGE, ANNOTATE},
    "reviewer": {VIEW, CONTRIBUTE, ANNOTATE},
    "annotator": {VIEW, ANNOTATE},
    "viewer": {VIEW},
    "outsider": set(),
}

# (method, path template, body, capability). Bodies are valid, so refusals are permission's.
ENDPOINTS = [
    ("get", "/api/v1/projects/{slug}/", None, VIEW),
    ("patch", "/api/v1/projects/{slug}/", {"name": "Renamed"}, MANAGE),
    ("delete", "/api/v1/projects/{slug}/?confirm={slug}", None, MANAGE),
    ("get", "/api/v1/projects/{slug}/members/", None, VIEW),
    (
        "post",
        "/api/v1/projects/{slug}/members/",
        {"username": "newcomer", "role": "viewer"},
        MANAGE,
    ),
    ("get", "/api/v1/projects/{slug}/members/{member}/", None, VIEW),
    ("patch", "/api/v1/projects/{slug}/members/{member}/", {"role": "reviewer"}, MANAGE),
    ("delete", "/api/v1/projects/{slug}/members/{member}/", None, MANAGE),
    ("get", "/api/v1/projects/{slug}/objectives/", None, VIEW),
    (
        "post",
        "/api/v1/projects/{slug}/objectives/",
        {"title": "t", "kpi": "k", "target_value": 1},
        MANAGE,
    ),
    ("get", "/api/v1/projects/{slug}/objectives/{objective}/", None, VIEW),
    ("patch", "/api/v1/projects/{slug}/objectives/{objective}/", {"status": "met"}, MANAGE),
    ("delete", "/api/v1/projects/{slug}/objectives/{objective}/", None, MANAGE),
    ("get", "/api/v1/projects/{slug}/problem/", None, VIEW),
    ("put", "/api/v1/projects/{slug}/problem/", {"task_type": "detection"}, MANAGE),
    ("get", "/api/v1/projects/{slug}/datasets/", None, VIEW),
    ("post", "/api/v1/projects/{slug}/datasets/", {"name": "New set"}, CONTRIBUTE),
    ("get", "/api/v1/projects/{slug}/datasets/{dataset}/", None, VIEW),
    ("get", "/api/v1/projects/{slug}/datasets/{dataset}/versions/", None, VIEW),
    ("post", "/api/v1/projects/{slug}/datasets/{dataset}/versions/", {"note": "n"}, CONTRIBUTE),
    ("get", "/api/v1/projects/{slug}/datasets/{dataset}/versions/1/", None, VIEW),
    ("post", "/api/v1/projects/{slug}/datasets/{dataset}/versions/1/embed/", {}, CONTRIBUTE),
    ("get", "/api/v1/projects/{slug}/images/", None, VIEW),
    ("get", "/api/v1/projects/{slug}/images/{image}/", None, VIEW),
    ("post", "/api/v1/projects/{slug}/images/metadata/", "metadata", CONTRIBUTE),
    ("post", "/api/v1/projects/{slug}/uploads/", "upload", CONTRIBUTE),
    ("get", "/api/v1/jobs/{job}/", None, VIEW),
    ("get", "/api/v1/jobs/{job}/files/", None, VIEW),
    ("post", "/api/v1/jobs/{queued_job}/cancel/", None, CONTRIBUTE),
    ("get", "/files/images/{image}/thumb", None, VIEW),
    ("get", "/api/v1/projects/{slug}/label-classes/", None, VIEW),
    ("post", "/api/v1/projects/{slug}/label-classes/", {"name": "wheel", "kind": "box"}, MANAGE),
    ("get", "/api/v1/projects/{slug}/images/{image}/annotations/", None, VIEW),
    ("post", "/api/v1/projects/{slug}/images/{image}/annotations/", "annotation", ANNOTATE),
]


@pytest.fixture
def world(team, dataset):
    project = team["project"]
    lead = team["lead"]
    make_user("newcomer")
    extra = Membership.objects.create(project=project, user=make_user("extra"), role="annotator")
    objective = objective_create(
        actor=lead, project=project, title="Goal", kpi="kpi", target_value=1
    )
    problem_statement_set(actor=lead, project=project, task_type="classification")
    done = upload_create(
        actor=lead, project=project, dataset=dataset, files=[upload("a.jpg", image_bytes(1))]
    )
    job_run(job_id=done.pk)
    queued = upload_create(
        actor=lead, project=project, dataset=dataset, files=[upload("b.jpg", image_bytes(2))]
    )
    label_class = label_class_create(actor=lead, project=project, name="sign", kind="box")
    return {
        "slug": project.slug,
        "member": extra.pk,
        "objective": objective.pk,
        "dataset": dataset.pk,
        "image": dataset.images.get().pk,
        "job": done.pk,
        "queued_job": queued.pk,
        "label_class": label_class.pk,
    }


def _body(body, world):
    if body == "annotation":
        return {"label_class": world["label_class"], "geometry": [1, 1, 5, 5]}, "json"
    if body == "metadata":
        return {"file": upload("m.csv", b"file_name,site\na.jpg,north\n")}, "multipart"
    if body == "upload":
        return {
            "dataset": world["dataset"],
            "files": [upload("c.jpg", image_bytes(3))],
        }, "multipart"
    return body, "json"


@pytest.mark.parametrize("role", list(ALLOWED))
@pytest.mark.parametrize(
    ("method", "template", "body", "capability"),
    ENDPOINTS,
    ids=[f"{m} {t}" for m, t, _, _ in ENDPOINTS],
)
def test_permission_matrix(api, team, world, role, method, template, body, capability):
    client = api(team[role])
    data, fmt = _body(body, world)
    url = template.format(**world)
    response = (
        getattr(client, method)(url, data, format=fmt)
        if data is not None
        else getattr(client, method)(url)
    )
    if capability in ALLOWED[role]:
        assert 200 <= response.status_code < 300, (
            response.status_code,
            getattr(response, "content", b"")[:300],
        )
    elif role == "outsider":
        assert response.status_code == 404
        assert (
            b"Team project" not in b"".join(response)
            if hasattr(response, "streaming_content")
            else b"Team project" not in response.content
        )
    else:
        assert response.status_code == 403, response.status_code
        assert response.json()["error"]["code"] == "forbidden"


def test_outsider_sees_no_other_projects_jobs_in_lists(api, team, world):
    client = api(team["outsider"])
    assert client.get("/api/v1/jobs/").json()["count"] == 0
    assert [p["slug"] for p in client.get("/api/v1/projects/").json()["results"]] == [
        team["other"].slug
    ]
    assert client.get(f"/api/v1/jobs/?project={world['slug']}").status_code == 404
