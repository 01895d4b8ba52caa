"""The REST API driven over HTTP, as an integration would use it."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token

from studio.models import Image, Job
from studio.services.jobs import job_run
from tests.factories import PASSWORD, image_bytes, upload, zip_bytes


def test_token_auth_and_project_lifecycle(client, team):
    r = client.post("/api/v1/auth/token/", {"username": "lead", "password": PASSWORD})
    assert r.status_code == 200
    token = r.json()["token"]
    assert Token.objects.get(user=team["lead"]).key == token
    headers = {"HTTP_AUTHORIZATION": f"Token {token}"}
    r = client.post(
        "/api/v1/projects/",
        {"name": "Defects", "business_problem": "Find dents"},
        content_type="application/json",
        **headers,
    )
    assert r.status_code == 201, r.content
    slug = r.json()["slug"]
    assert r.json()["my_role"] == "lead"
    r = client.get("/api/v1/projects/", **headers)
    assert {p["slug"] for p in r.json()["results"]} == {slug, team["project"].slug}
    r = client.patch(
        f"/api/v1/projects/{slug}/",
        {"name": "Dent finder"},
        content_type="application/json",
        **headers,
    )
    assert r.json()["name"] == "Dent finder"
    r = client.get("/api/v1/projects/")  # no token, no session
    assert r.status_code == 401 and r["WWW-Authenticate"] == "Token"


def test_objectives_and_problem_statement_through_the_api(api, team):
    c = api(team["lead"])
    base = f"/api/v1/projects/{team['project'].slug}"
    r = c.post(
        f"{base}/objectives/",
        {
            "title": "Fewer misses",
            "kpi": "recall",
            "target_value": 0.95,
            "direction": "higher",
            "deadline": "2027-03-01",
            "owner": team["reviewer"].pk,
        },
        format="json",
    )
    assert r.status_code == 201, r.content
    oid = r.json()["id"]
    r = c.patch(f"{base}/objectives/{oid}/", {"status": "at_risk"}, format="json")
    assert r.json()["status"] == "at_risk"
    r = c.post(
        f"{base}/objectives/", {"title": "x", "kpi": "y", "target_value": "lots"}, format="json"
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid"

    assert c.get(f"{base}/problem/").status_code == 404
    body = {
        "task_type": "instance_segmentation",
        "serving_mode": "batch",
        "model_size_budget_mb": 100,
        "criteria": [
            {"metric": "mIoU", "threshold": 0.8, "comparison": "gte", "slice": "lighting=dark"}
        ],
        "approaches": [{"name": "SAM + review", "priority": 1, "status": "chosen"}],
    }
    r = c.put(f"{base}/problem/", body, format="json")
    assert r.status_code == 200, r.content
    got = c.get(f"{base}/problem/").json()
    assert got["criteria"] == body["criteria"] and got["approaches"][0]["name"] == "SAM + review"
    bad = {
        **body,
        "criteria": [{"metric": "mIoU", "threshold": 0.8, "comparison": "gte", "slice": "dark"}],
    }
    r = c.put(f"{base}/problem/", bad, format="json")
    assert r.status_code == 400 and "field=value" in r.json()["error"]["message"]


def test_upload_zip_then_follow_the_job_and_browse_images(api, team, dataset):
    c = api(team["lead"])
    base = f"/api/v1/projects/{team['project'].slug}"
    archive = zip_bytes({"a.jpg": image_bytes(1), "b.jpg": image_bytes(2), "junk.jpg": b"nope"})
    r = c.post(
        f"{base}/uploads/",
        {
            "dataset": dataset.pk,
            "files": [upload("set.zip", archive), upload("c.png", image_bytes(3, fmt="PNG"))],
        },
        format="multipart",
    )
    assert r.status_code == 202, r.content
    job_id = r.json()["id"]
    assert r.json()["status"] == "queued"
    job_run(job_id=job_id)  # what the worker does with the message

    job = c.get(f"/api/v1/jobs/{job_id}/").json()
    assert (
        job["status"] == "succeeded"
        and job["result"]["accepted"] == 3
        and job["result"]["rejected"] == 1
    )
    rejected = c.get(f"/api/v1/jobs/{job_id}/files/?outcome=rejected").json()["results"]
    assert [(f["name"], "not a supported image" in f["reason"]) for f in rejected] == [
        ("set.zip/junk.jpg", True)
    ]

    images = c.get(f"{base}/images/?dataset={dataset.pk}&version=1").json()
    assert images["count"] == 3
    first = images["results"][0]
    assert first["thumbnail_url"].endswith("/thumb")
    r = c.get(first["file_url"])
    assert (
        r.status_code == 200
        and r["X-Content-Type-Options"] == "nosniff"
        and r["Content-Type"] == "image/jpeg"
    )
    detail = c.get(f"{base}/datasets/{dataset.pk}/versions/1/").json()
    assert len(detail["manifest"]) == 3 and {m["split"] for m in detail["manifest"]} <= {
        "train",
        "val",
        "test",
    }


def test_metadata_upload_and_filter_allowlist(api, team, dataset):
    c = api(team["lead"])
    base = f"/api/v1/projects/{team['project'].slug}"
    job = c.post(
        f"{base}/uploads/",
        {
            "dataset": dataset.pk,
            "files": [upload("a.jpg", image_bytes(1)), upload("b.jpg", image_bytes(2))],
        },
        format="multipart",
    ).json()
    job_run(job_id=job["id"])
    csv = upload("meta.csv", b"file_name,weather\na.jpg,rain\nb.jpg,sun\n")
    r = c.post(f"{base}/images/metadata/", {"file": csv}, format="multipart")
    assert r.status_code == 200 and r.json()["updated"] == 2
    r = c.get(f"{base}/images/?meta.weather=rain")
    assert [i["original_name"] for i in r.json()["results"]] == ["a.jpg"]
    r = c.get(f"{base}/images/?meta.password=x")
    assert r.status_code == 400 and r.json()["error"]["details"] == {"allowed": ["weather"]}


def test_whole_archive_rejection_is_a_clear_400(api, team, dataset, settings):
    settings.STUDIO = {**settings.STUDIO, "MAX_ARCHIVE_ENTRIES": 1}
    c = api(team["lead"])
    r = c.post(
        f"/api/v1/projects/{team['project'].slug}/uploads/",
        {
            "dataset": dataset.pk,
            "files": [upload("x.zip", zip_bytes({"a.jpg": b"1", "b.jpg": b"2"}))],
        },
        format="multipart",
    )
    assert r.status_code == 400
    assert r.json()["error"] == {
        "code": "upload_rejected",
        "message": "x.zip: archive has 2 files; the limit is 1",
        "details": None,
    }
    assert not Job.objects.exists()
    r = c.post(
        f"/api/v1/projects/{team['project'].slug}/uploads/",
        {"dataset": dataset.pk},
        format="multipart",
    )
    assert r.status_code == 400


def test_job_cancel_and_versions_snapshot(api, team, dataset):
    c = api(team["reviewer"])
    base = f"/api/v1/projects/{team['project'].slug}"
    job = c.post(
        f"{base}/uploads/",
        {"dataset": dataset.pk, "files": [upload("a.jpg", image_bytes(1))]},
        format="multipart",
    ).json()
    r = c.post(f"/api/v1/jobs/{job['id']}/cancel/")
    assert r.json()["status"] == "cancelled"
    # Cancelling discards the staged upload, so a retry ends with a clear error.
    r = c.post(f"/api/v1/jobs/{job['id']}/retry/")
    assert r.json()["status"] == "queued"
    job_run(job_id=job["id"])
    failed = c.get(f"/api/v1/jobs/{job['id']}/").json()
    assert failed["status"] == "failed" and "upload them again" in failed["error"]
    assert Image.objects.count() == 0
    job = c.post(
        f"{base}/uploads/",
        {"dataset": dataset.pk, "files": [upload("a.jpg", image_bytes(1))]},
        format="multipart",
    ).json()
    job_run(job_id=job["id"])
    r = c.post(f"{base}/datasets/{dataset.pk}/versions/", {"note": "again"}, format="json")
    assert r.status_code == 200 and r.json()["number"] == 1  # nothing changed


def test_openapi_schema_and_offline_docs(client, lead):
    r = client.get("/api/schema/")
    assert r.status_code == 200
    schema = r.content.decode()
    for path in (
        "/api/v1/projects/{slug}/uploads/",
        "/api/v1/jobs/{id}/files/",
        "/api/v1/projects/{slug}/problem/",
    ):
        assert path in schema
    docs = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in docs and "cdn" not in docs.lower()


@pytest.mark.parametrize("path", ["/api/v1/projects/", "/api/v1/jobs/"])
def test_anonymous_callers_are_refused(client, path):
    r = client.get(path)
    assert r.status_code == 401 and r["WWW-Authenticate"] == "Token"
    assert r.json()["error"]["code"] == "not_authenticated"


def test_dataset_latest_version_and_objective_owner_privacy(api, team, dataset):
    c = api(team["lead"])
    base = f"/api/v1/projects/{team['project'].slug}"
    job = c.post(
        f"{base}/uploads/",
        {"dataset": dataset.pk, "files": [upload("a.jpg", image_bytes(1))]},
        format="multipart",
    ).json()
    job_run(job_id=job["id"])
    assert c.get(f"{base}/datasets/{dataset.pk}/").json()["latest_version"] == 1
    body = {"title": "t", "kpi": "k", "target_value": 1}
    outsider = c.post(
        f"{base}/objectives/", {**body, "owner": team["outsider"].pk}, format="json"
    ).json()
    nobody = c.post(f"{base}/objectives/", {**body, "owner": 999_999}, format="json").json()
    assert outsider == nobody and "must be a member" in nobody["error"]["message"]
    r = c.post(f"{base}/objectives/", {**body, "owner": team["viewer"].pk}, format="json")
    assert r.status_code == 201 and r.json()["owner"] == team["viewer"].pk


def test_openapi_schema_validates_without_warnings(tmp_path):
    from django.core.management import call_command

    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    assert (
        "/api/v1/projects/{slug}/datasets/{id}/versions/{number}/map/" in text
        and "BackboneEnum" in text
    )


def test_json_nested_too_deeply_is_a_clear_400(api, team):
    body = '{"name": ' + "[" * 100_000 + "]" * 100_000 + "}"
    r = api(team["lead"]).generic(
        "PATCH", f"/api/v1/projects/{team['project'].slug}/", body, content_type="application/json"
    )
    assert r.status_code == 400
    assert "too deeply" in r.json()["error"]["message"]
