"""Export and import through the REST API: who may do what, the download, the report."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import timedelta

from django.core.files.storage import default_storage
from django.core.management import call_command
from django.utils import timezone

from annotation.models import Annotation
from annotation.tasks import expire_exports
from studio.models import Job
from studio.services.jobs import job_run
from tests.annotation.exchange_helpers import label, schema


def _url(team, version, action: str) -> str:
    slug = team["project"].slug
    return (
        f"/api/v1/projects/{slug}/datasets/{version.dataset_id}/versions/{version.number}/{action}/"
    )


def _coco_file(name="a.json"):
    doc = {"images": [{"id": 1, "file_name": "coffee.jpg", "width": 600, "height": 400}],
           "annotations": [{"id": 5, "image_id": 1, "category_id": 1, "bbox": [10, 20, 30, 40]}],
           "categories": [{"id": 1, "name": "car"}]}  # fmt: skip
    f = io.BytesIO(json.dumps(doc).encode())
    f.name = name
    return f


def test_export_then_download_through_the_api(api, team, version):
    label(team["lead"], version, schema(team["lead"], team["project"]))
    Annotation.objects.filter(kind="polygon").update(status="accepted")
    viewer = api(team["viewer"])
    r = viewer.post(_url(team, version, "export"), {"format": "coco", "statuses": ["accepted"]},
                    format="json")  # fmt: skip
    assert r.status_code == 202, r.json()
    job_id = r.json()["id"]
    assert viewer.get(f"/api/v1/jobs/{job_id}/download/").status_code == 400  # not run yet
    job_run(job_id=job_id)
    body = viewer.get(f"/api/v1/jobs/{job_id}/").json()
    assert body["status"] == "succeeded" and body["result"]["written"] == {"polygon": 9}
    r = viewer.get(f"/api/v1/jobs/{job_id}/download/")
    assert r.status_code == 200 and r["Content-Type"] == "application/zip"
    assert "attachment" in r["Content-Disposition"]
    doc = json.loads(
        zipfile.ZipFile(io.BytesIO(b"".join(r.streaming_content))).read("annotations.json")
    )
    assert len(doc["annotations"]) == 9

    outsider = api(team["outsider"])
    assert outsider.get(f"/api/v1/jobs/{job_id}/download/").status_code == 404
    assert (
        outsider.post(_url(team, version, "export"), {"format": "coco"}, format="json").status_code
        == 404
    )


def test_import_through_the_api_reports_per_record(api, team, version):
    schema(team["lead"], team["project"])
    annotator = api(team["annotator"])
    r = annotator.post(_url(team, version, "import"), {"format": "coco", "file": _coco_file(),
                                                       "status": "draft"}, format="multipart")  # fmt: skip
    assert r.status_code == 202, r.json()
    job_run(job_id=r.json()["id"])
    body = annotator.get(f"/api/v1/jobs/{r.json()['id']}/").json()
    assert body["status"] == "succeeded", body
    assert body["result"]["imported"] == 1 and body["result"]["by_kind"] == {"box": 1}
    a = Annotation.objects.get()
    assert (a.status, a.source, a.author, a.geometry) == (
        "draft",
        "import",
        team["annotator"],
        {"box": [10, 20, 30, 40]},
    )


def test_who_may_import(api, team, version):
    schema(team["lead"], team["project"])
    url = _url(team, version, "import")
    r = api(team["viewer"]).post(url, {"format": "coco", "file": _coco_file()}, format="multipart")
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    r = api(team["outsider"]).post(
        url, {"format": "coco", "file": _coco_file()}, format="multipart"
    )
    assert r.status_code == 404
    r = api(team["annotator"]).post(url, {"format": "coco", "file": _coco_file(), "create_classes": True},
                                    format="multipart")  # fmt: skip
    assert r.status_code == 403  # adding classes is a lead's call
    r = api(team["annotator"]).post(
        url, {"format": "pdf", "file": _coco_file()}, format="multipart"
    )
    assert r.status_code == 400


def test_download_refuses_other_jobs_and_projects(api, team, version):
    r = api(team["lead"]).post(_url(team, version, "import"), {"format": "coco", "file": _coco_file()},
                               format="multipart")  # fmt: skip
    assert api(team["lead"]).get(f"/api/v1/jobs/{r.json()['id']}/download/").status_code == 404


def test_formats_are_listed(api, team):
    names = [f["name"] for f in api(team["viewer"]).get("/api/v1/formats/").json()]
    assert names == ["coco", "yolo", "voc", "labelstudio", "cvat"]


def test_dry_run_reports_and_writes_nothing(api, team, version):
    schema(team["lead"], team["project"])
    url = _url(team, version, "import")
    r = api(team["lead"]).post(url, {"format": "coco", "file": _coco_file(), "dry_run": True},
                               format="multipart")  # fmt: skip
    job_run(job_id=r.json()["id"])
    body = api(team["lead"]).get(f"/api/v1/jobs/{r.json()['id']}/").json()
    assert body["status"] == "succeeded"
    assert body["result"]["dry_run"] and body["result"]["by_kind"] == {"box": 1}
    assert body["result"]["imported"] == 0 and not Annotation.objects.exists()


def test_annotators_cannot_export(api, team, version):
    r = api(team["annotator"]).post(
        _url(team, version, "export"), {"format": "coco"}, format="json"
    )
    assert r.status_code == 403 and "honeypot" in r.json()["error"]["message"]


def test_old_export_archives_are_deleted_and_say_so(api, team, version, client, settings):
    """Celery beat's task (and the management command) delete archives older than
    STUDIO_EXPORT_KEEP_DAYS; the job stays, its page and the download say what happened."""
    settings.STUDIO = {**settings.STUDIO, "EXPORT_KEEP_DAYS": 7}
    label(team["lead"], version, schema(team["lead"], team["project"]))
    lead = api(team["lead"])
    jobs = []
    for _ in range(2):
        r = lead.post(_url(team, version, "export"), {"format": "yolo"}, format="json")
        job_run(job_id=r.json()["id"])
        jobs.append(Job.objects.get(pk=r.json()["id"]))
    old, recent = jobs
    Job.objects.filter(pk=old.pk).update(finished_at=timezone.now() - timedelta(days=8))
    assert default_storage.exists(old.result["path"])

    assert expire_exports() == [old.pk]
    old.refresh_from_db()
    assert not default_storage.exists(old.result["path"]) and old.result["expired_at"]
    assert default_storage.exists(recent.result["path"])
    r = lead.get(f"/api/v1/jobs/{old.pk}/download/")
    assert r.status_code == 410 and r.json()["error"]["code"] == "gone"
    assert "kept 7 days" in r.json()["error"]["message"]
    assert lead.get(f"/api/v1/jobs/{recent.pk}/download/").status_code == 200

    client.force_login(team["lead"])
    page = client.get(f"/jobs/{old.pk}/").content.decode()
    assert "was deleted on" in page and f"/api/v1/jobs/{old.pk}/download/" not in page
    assert "kept 7 days" in client.get(f"/jobs/{recent.pk}/").content.decode()

    # Nothing more to do; the command says so. 0 keeps everything.
    out = io.StringIO()
    call_command("expire_exports", stdout=out)
    assert "archives of 0 exports" in out.getvalue()
    settings.STUDIO = {**settings.STUDIO, "EXPORT_KEEP_DAYS": 0}
    Job.objects.filter(pk=recent.pk).update(finished_at=timezone.now() - timedelta(days=400))
    assert expire_exports() == [] and default_storage.exists(recent.result["path"])
