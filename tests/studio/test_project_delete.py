"""Deleting a project that holds annotations: counted, confirmed, then all of it goes.

Annotations protect their label classes, so a plain ``project.delete()`` raised
ProtectedError (a 500). Nothing is lost by surprise: without ``?confirm=<slug>`` the API
answers 409 with the numbers and deletes nothing.
"""

from __future__ import annotations

import pytest
from django.core.files.storage import default_storage

from annotation.models import Annotation, LabelClass
from annotation.services.labels import annotation_create, annotation_delete, label_class_create
from studio.models import Image, Project
from studio.services.ingest import upload_create
from studio.services.jobs import job_run
from tests.factories import image_bytes, upload


@pytest.fixture
def labelled(team, dataset):
    job = upload_create(actor=team["lead"], project=team["project"], dataset=dataset,
                        files=[upload(f"{n}.png", image_bytes(n, fmt="PNG")) for n in range(2)])  # fmt: skip
    job_run(job_id=job.pk)
    box = label_class_create(actor=team["lead"], project=team["project"], name="car", kind="box")
    for image in Image.objects.filter(project=team["project"]):
        annotation_create(actor=team["lead"], image=image, label_class=box, geometry=[1, 1, 5, 5])
    return team["project"]


def _files(folder: str) -> list[str]:
    if not default_storage.exists(folder):
        return []
    dirs, files = default_storage.listdir(folder)
    return files + [f for d in dirs for f in _files(f"{folder}/{d}")]


def _url(project) -> str:
    return f"/api/v1/projects/{project.slug}/"


def test_deleting_a_project_asks_first_and_says_what_it_removes(api, team, labelled):
    lead = api(team["lead"])
    for url in (_url(labelled), _url(labelled) + "?confirm=wrong"):
        r = lead.delete(url)
        assert r.status_code == 409, r.content
        error = r.json()["error"]
        assert error["code"] == "confirmation_required"
        assert error["details"]["counts"] == {"datasets": 1, "versions": 1, "images": 2,
                                               "annotations": 2, "label_classes": 1, "jobs": 1}  # fmt: skip
        assert "2 images, 2 annotations" in error["message"]
        assert f"confirm={labelled.slug}" in error["message"]
    assert Project.objects.filter(pk=labelled.pk).exists() and Annotation.objects.count() == 2


def test_a_confirmed_delete_removes_the_project_its_annotations_and_files(
    api, team, labelled, django_capture_on_commit_callbacks
):
    folder = f"projects/{labelled.pk}"
    assert _files(folder)
    with django_capture_on_commit_callbacks(execute=True):
        r = api(team["lead"]).delete(_url(labelled) + f"?confirm={labelled.slug}")
    assert r.status_code == 204, r.content
    assert not _files(folder)
    assert not Project.objects.filter(pk=labelled.pk).exists()
    assert not Annotation.objects.exists() and not LabelClass.objects.exists()
    assert not Image.objects.filter(project_id=labelled.pk).exists()
    assert Project.objects.filter(pk=team["other"].pk).exists()


def test_only_a_lead_deletes_a_project(api, team, labelled):
    url = _url(labelled) + f"?confirm={labelled.slug}"
    assert api(team["reviewer"]).delete(url).status_code == 403
    assert api(team["outsider"]).delete(url).status_code == 404
    assert Project.objects.filter(pk=labelled.pk).exists()


def test_a_class_only_deleted_annotations_refer_to_is_a_409_not_a_500(api, team, labelled):
    cls = LabelClass.objects.get(project=labelled)
    for annotation in Annotation.objects.all():
        annotation_delete(actor=team["lead"], annotation=annotation, expected_version=1)
    r = api(team["lead"]).delete(f"/api/v1/projects/{labelled.slug}/label-classes/{cls.pk}/")
    assert r.status_code == 409, r.content
    assert "2 deleted annotations of" in r.json()["error"]["message"]


def test_a_protected_error_a_service_let_through_is_a_409_naming_what_refers(team, labelled):
    from django.db.models import ProtectedError

    from studio.errors import api_exception_handler

    held = set(Annotation.objects.all())
    response = api_exception_handler(ProtectedError("protected", held), {})
    assert response.status_code == 409
    assert response.data["error"]["code"] == "conflict"
    assert response.data["error"]["details"] == {"annotations": 2}
