"""Who sees which job: a job is visible to those who may see what its result holds.

Exports hold every label of a version (honeypot answers, every consensus replica), so
only the roles that may start an export may list, open or download one. Imports and
pre-annotations report on labels too: an annotator sees the ones they started, no others.
Checked through the real API and page URLs for every role.
"""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from annotation.models import Annotation
from annotation.services import export as export_services
from annotation.services import imports as import_services
from annotation.services.labels import label_class_create
from studio.models import DatasetVersion, Job
from studio.services.ingest import upload_create
from studio.services.jobs import job_create, job_run
from tests.factories import image_bytes, upload

ROLES = ["lead", "reviewer", "annotator", "viewer", "outsider"]
# What each role gets for a job the lead started, by kind.
EXPECTED = {
    "export": {"lead": 200, "reviewer": 200, "annotator": 403, "viewer": 200, "outsider": 404},
    "import": {"lead": 200, "reviewer": 200, "annotator": 403, "viewer": 200, "outsider": 404},
    "preannotate": {"lead": 200, "reviewer": 200, "annotator": 403, "viewer": 200, "outsider": 404},
    "ingest": {"lead": 200, "reviewer": 200, "annotator": 200, "viewer": 200, "outsider": 404},
}


def _coco() -> SimpleUploadedFile:
    body = (
        b'{"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],'
        b' "annotations": [], "categories": [{"id": 1, "name": "sign"}]}'
    )
    return SimpleUploadedFile("answers.json", body)


@pytest.fixture
def jobs(team, dataset):
    project, lead = team["project"], team["lead"]
    ingest = upload_create(
        actor=lead, project=project, dataset=dataset, files=[upload("a.jpg", image_bytes(1))]
    )
    job_run(job_id=ingest.pk)
    version = DatasetVersion.objects.get(dataset=dataset)
    sign = label_class_create(actor=lead, project=project, name="sign", kind="box")
    image = version.items.get().image
    # A lead's answer on the image: what an annotator must never read through a job.
    Annotation.objects.create(
        image=image, label_class=sign, kind="box", geometry={"box": [1, 1, 5, 5]},
        bbox=[1, 1, 5, 5], area=25, author=lead, status="accepted",
    )  # fmt: skip
    export = export_services.export_start(actor=lead, version=version, fmt="coco")
    job_run(job_id=export.pk)
    export.refresh_from_db()
    assert export.status == "succeeded", export.error
    imported = import_services.import_start(
        actor=lead, version=version, fmt="coco", upload=_coco(), dry_run=True
    )
    preannotate = job_create(
        project=project, kind=Job.Kind.PREANNOTATE, created_by=lead,
        params={"version": version.pk, "label_class": sign.pk},
    )  # fmt: skip
    return {
        "export": export.pk,
        "import": imported.pk,
        "preannotate": preannotate.pk,
        "ingest": ingest.pk,
        "version": version,
    }


def _page_client(client, user):
    client.force_login(user)
    return client


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("kind", list(EXPECTED))
def test_job_detail_api_and_page_follow_the_kind(api, client, team, jobs, role, kind):
    expected = EXPECTED[kind][role]
    job_id = jobs[kind]
    r = api(team[role]).get(f"/api/v1/jobs/{job_id}/")
    assert r.status_code == expected, r.content[:300]
    if expected == 403:
        assert r.json()["error"]["code"] == "forbidden"
    page = _page_client(client, team[role]).get(f"/jobs/{job_id}/")
    assert page.status_code == expected
    if expected == 403:  # a readable page that says why
        assert "cannot see this job" in page.content.decode()


@pytest.mark.parametrize("role", ROLES)
def test_job_lists_hide_what_the_role_may_not_see(api, client, team, jobs, role):
    visible = {jobs[k] for k in EXPECTED if EXPECTED[k][role] == 200}
    client_api = api(team[role])
    listed = {j["id"] for j in client_api.get("/api/v1/jobs/").json()["results"]}
    assert listed == visible
    if role != "outsider":
        slug = team["project"].slug
        in_project = client_api.get(f"/api/v1/jobs/?project={slug}").json()["results"]
        assert {j["id"] for j in in_project} == visible
    body = _page_client(client, team[role]).get("/jobs/").content.decode()
    for kind in EXPECTED:
        assert (f"/jobs/{jobs[kind]}/" in body) == (jobs[kind] in visible), kind


@pytest.mark.parametrize("role", ROLES)
def test_export_download_follows_the_rule_for_starting_an_export(api, team, jobs, role):
    r = api(team[role]).get(f"/api/v1/jobs/{jobs['export']}/download/")
    expected = EXPECTED["export"][role]
    assert r.status_code == expected
    if expected == 200:
        assert b"".join(r.streaming_content)[:2] == b"PK"
    else:
        assert r.json()["error"]["code"] == ("forbidden" if expected == 403 else "not_found")


def test_annotator_project_and_exchange_pages_show_no_export(client, team, jobs):
    client.force_login(team["annotator"])
    slug, version = team["project"].slug, jobs["version"]
    for url in (f"/p/{slug}/", f"/p/{slug}/datasets/{version.dataset_id}/exchange/"):
        body = client.get(url).content.decode()
        assert f"/jobs/{jobs['export']}/" not in body, url
        assert f"/api/v1/jobs/{jobs['export']}/download/" not in body, url
        assert f"/jobs/{jobs['import']}/" not in body, url


def test_annotator_sees_their_own_import(api, team, jobs):
    job = import_services.import_start(
        actor=team["annotator"], version=jobs["version"], fmt="coco", upload=_coco(), dry_run=True
    )
    client = api(team["annotator"])
    assert client.get(f"/api/v1/jobs/{job.pk}/").status_code == 200
    assert job.pk in {j["id"] for j in client.get("/api/v1/jobs/").json()["results"]}


def test_a_lead_demoted_to_annotator_loses_their_own_export(api, team, jobs):
    from studio.models import Membership

    Membership.objects.filter(user=team["reviewer"]).update(role="annotator")
    reviewer_export = export_services.export_start(
        actor=team["lead"], version=jobs["version"], fmt="coco"
    )
    Job.objects.filter(pk=reviewer_export.pk).update(created_by=team["reviewer"])
    r = api(team["reviewer"]).get(f"/api/v1/jobs/{reviewer_export.pk}/")
    assert r.status_code == 403


def test_job_cancel_and_files_refuse_a_hidden_job(api, team, jobs):
    client = api(team["annotator"])
    assert client.post(f"/api/v1/jobs/{jobs['import']}/cancel/").status_code == 403
    assert client.get(f"/api/v1/jobs/{jobs['export']}/files/").status_code == 403
