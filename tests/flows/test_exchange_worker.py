"""Export and import driven through the API and run by a real Celery worker process."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from studio.models import Job
from tests.annotation.exchange_helpers import label, schema, shapes, twin
from tests.worker import wait_for

pytestmark = pytest.mark.worker


def _done(pk: int) -> bool:
    return Job.objects.get(pk=pk).status in Job.FINISHED


def test_api_export_then_import_through_the_worker(worker, api, lead):
    version = twin(lead, "Source")
    project = version.dataset.project
    label(lead, version, schema(lead, project))
    client = api(lead)
    base = f"/api/v1/projects/{project.slug}/datasets/{version.dataset_id}/versions/1/"
    r = client.post(base + "export/", {"format": "cvat"}, format="json")
    assert r.status_code == 202
    export_id = r.json()["id"]
    wait_for(lambda: _done(export_id), 120, "the export job", worker)
    assert Job.objects.get(pk=export_id).status == "succeeded", Job.objects.get(pk=export_id).error
    archive = b"".join(client.get(f"/api/v1/jobs/{export_id}/download/").streaming_content)

    fresh = twin(lead)
    schema(lead, fresh.dataset.project)
    slug = fresh.dataset.project.slug
    r = client.post(
        f"/api/v1/projects/{slug}/datasets/{fresh.dataset_id}/versions/{fresh.number}/import/",
        {"format": "cvat", "file": SimpleUploadedFile("cvat.zip", archive)},
        format="multipart",
    )
    assert r.status_code == 202, r.json()
    import_id = r.json()["id"]
    wait_for(lambda: _done(import_id), 120, "the import job", worker)
    job = Job.objects.get(pk=import_id)
    assert job.status == "succeeded", (job.error, job.result)
    assert job.result["imported"] == 35
    assert shapes(fresh) == shapes(version)
