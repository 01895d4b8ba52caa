"""The browser pages, driven through Django's test client with a signed-in user."""

from __future__ import annotations

import pytest

from studio.models import Job, Objective, ProblemStatement
from studio.services.ingest import upload_create
from studio.services.jobs import job_run
from tests.factories import PASSWORD, image_bytes, upload


@pytest.fixture
def signed_in(client, team):
    def as_(role):
        client.force_login(team[role])
        return client

    return as_


def test_sign_in_and_project_list(client, team):
    assert client.get("/").status_code == 302
    r = client.post("/accounts/login/", {"username": "viewer", "password": PASSWORD}, follow=True)
    assert b"Team project" in r.content and b"Outsider project" not in r.content


def test_create_project_with_objective_and_problem(signed_in, team):
    c = signed_in("lead")
    r = c.post("/projects/new/", {"name": "Cracks", "business_problem": "Find cracks"}, follow=True)
    assert r.redirect_chain[-1][0] == "/p/cracks/"
    r = c.post(
        "/p/cracks/objectives/new/",
        {
            "title": "Catch cracks",
            "kpi": "recall",
            "target_value": "0.9",
            "direction": "higher",
            "status": "on_track",
            "deadline": "2027-01-31",
        },
        follow=True,
    )
    assert b"Catch cracks" in r.content
    assert Objective.objects.get(project__slug="cracks").target_value == 0.9
    form = {
        "task_type": "semantic_segmentation",
        "serving_mode": "batch",
        "description": "",
        "latency_budget_ms": "",
        "model_size_budget_mb": "20",
        "criteria-TOTAL_FORMS": "2",
        "criteria-INITIAL_FORMS": "0",
        "criteria-0-metric": "mIoU",
        "criteria-0-comparison": "gte",
        "criteria-0-threshold": "0.7",
        "criteria-0-slice": "surface=wet",
        "criteria-1-metric": "",
        "criteria-1-comparison": "gte",
        "criteria-1-threshold": "",
        "criteria-1-slice": "",
        "approaches-TOTAL_FORMS": "1",
        "approaches-INITIAL_FORMS": "0",
        "approaches-0-name": "U-Net",
        "approaches-0-notes": "",
        "approaches-0-priority": "1",
        "approaches-0-status": "proposed",
    }
    r = c.post("/p/cracks/problem/", form, follow=True)
    assert r.status_code == 200 and b"surface=wet" in r.content, r.content[:2000]
    problem = ProblemStatement.objects.get(project__slug="cracks")
    assert [(x.metric, x.threshold, x.slice) for x in problem.criteria.all()] == [
        ("mIoU", 0.7, "surface=wet")
    ]
    form["criteria-0-slice"] = "wet"
    r = c.post("/p/cracks/problem/", form)
    assert b"field=value" in r.content


def test_viewer_sees_no_edit_controls_and_cannot_post(signed_in, team):
    c = signed_in("viewer")
    page = c.get(f"/p/{team['project'].slug}/").content
    assert b"Add objective" not in page and b"New dataset" not in page
    r = c.post(
        f"/p/{team['project'].slug}/objectives/new/",
        {
            "title": "x",
            "kpi": "y",
            "target_value": "1",
            "direction": "higher",
            "status": "on_track",
        },
    )
    assert b"does not allow" in r.content
    assert not Objective.objects.exists()


def test_outsider_gets_404_on_pages_and_files(signed_in, team, dataset):
    job = upload_create(
        actor=team["lead"],
        project=team["project"],
        dataset=dataset,
        files=[upload("a.jpg", image_bytes(1))],
    )
    job_run(job_id=job.pk)
    image = dataset.images.get()
    c = signed_in("outsider")
    slug = team["project"].slug
    for url in [
        f"/p/{slug}/",
        f"/p/{slug}/datasets/{dataset.pk}/",
        f"/p/{slug}/images/{image.pk}/",
        f"/jobs/{job.pk}/",
        f"/files/images/{image.pk}/original",
        f"/p/{slug}/members/",
    ]:
        assert c.get(url).status_code == 404, url


def test_upload_page_runs_to_job_page_with_per_file_results(signed_in, team, dataset):
    c = signed_in("reviewer")
    slug = team["project"].slug
    r = c.post(
        f"/p/{slug}/datasets/{dataset.pk}/upload/",
        {"files": [upload("a.jpg", image_bytes(1)), upload("bad.jpg", b"no")]},
    )
    job = Job.objects.get()
    assert r.status_code == 302 and r["Location"] == f"/jobs/{job.pk}/"
    page = c.get(f"/jobs/{job.pk}/").content.decode()
    assert 'hx-trigger="every 1s"' in page  # live progress while queued
    job_run(job_id=job.pk)
    fragment = c.get(f"/jobs/{job.pk}/?fragment=status", HTTP_HX_REQUEST="true").content.decode()
    assert 'data-status="succeeded"' in fragment and "every 1s" not in fragment
    page = c.get(f"/jobs/{job.pk}/?outcome=rejected").content.decode()
    assert "bad.jpg" in page and "not a supported image" in page and "a.jpg" not in page
    grid = c.get(f"/p/{slug}/datasets/{dataset.pk}/").content.decode()
    assert f"/files/images/{dataset.images.get().pk}/thumb" in grid
    r = c.get(f"/files/images/{dataset.images.get().pk}/thumb")
    assert r["Content-Type"] == "image/jpeg" and r["X-Content-Type-Options"] == "nosniff"


def test_dataset_grid_filters_by_metadata_and_version(signed_in, team, dataset):
    job = upload_create(
        actor=team["lead"],
        project=team["project"],
        dataset=dataset,
        files=[upload(f"{n}.jpg", image_bytes(i)) for i, n in enumerate("abc")],
    )
    job_run(job_id=job.pk)
    c = signed_in("lead")
    slug = team["project"].slug
    r = c.post(
        f"/p/{slug}/datasets/{dataset.pk}/metadata/",
        {"file": upload("m.csv", b"file_name,light\na.jpg,dark\nb.jpg,day\nzzz.jpg,day\n")},
        follow=True,
    )
    assert b"Metadata set on 2 images" in r.content and b"zzz.jpg" in r.content
    grid = c.get(
        f"/p/{slug}/datasets/{dataset.pk}/?meta.light=dark", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "1 image" in grid and "a.jpg" in grid and "b.jpg" not in grid
    bad = c.get(f"/p/{slug}/datasets/{dataset.pk}/?meta.nope=1").content.decode()
    assert "Cannot filter on metadata field" in bad
    page = c.get(f"/p/{slug}/datasets/{dataset.pk}/?version=1&split=train").content.decode()
    assert "in v1" in page
    assert c.get(f"/p/{slug}/datasets/{dataset.pk}/?version=9").status_code == 404


def test_members_page_role_changes(signed_in, team):
    c = signed_in("lead")
    slug = team["project"].slug
    r = c.post(f"/p/{slug}/members/", {"username": "outsider", "role": "viewer"}, follow=True)
    assert b"outsider added" in r.content
    from studio.models import Membership

    m = Membership.objects.get(project=team["project"], user=team["outsider"])
    c.post(f"/p/{slug}/members/{m.pk}/", {"role": "reviewer"})
    assert Membership.objects.get(pk=m.pk).role == "reviewer"
    own = Membership.objects.get(project=team["project"], user=team["lead"])
    r = c.post(f"/p/{slug}/members/{own.pk}/", {"role": "viewer"}, follow=True)
    assert b"own role" in r.content


def test_admin_job_actions(client, team, dataset):
    from django.contrib.auth import get_user_model

    admin = get_user_model().objects.create_superuser("root", "root@example.invalid", PASSWORD)
    client.force_login(admin)
    job = upload_create(
        actor=team["lead"],
        project=team["project"],
        dataset=dataset,
        files=[upload("a.jpg", image_bytes(1))],
    )
    r = client.post(
        "/admin/studio/job/", {"action": "cancel", "_selected_action": [job.pk]}, follow=True
    )
    assert r.status_code == 200
    job.refresh_from_db()
    assert job.status == "cancelled"
    client.post("/admin/studio/job/", {"action": "retry", "_selected_action": [job.pk]})
    job.refresh_from_db()
    assert job.status == "queued"
    for url in [
        "/admin/studio/project/",
        "/admin/studio/datasetversion/",
        f"/admin/studio/job/{job.pk}/change/",
    ]:
        assert client.get(url).status_code == 200, url


def test_saving_the_problem_form_unchanged_keeps_criteria_and_approaches(signed_in, team):
    from studio.services.projects import problem_statement_set

    problem_statement_set(
        actor=team["lead"],
        project=team["project"],
        task_type="detection",
        criteria=[{"metric": "AP50", "threshold": 0.8, "comparison": "gte", "slice": ""}],
        approaches=[{"name": "YOLO", "priority": 1, "status": "chosen"}],
    )
    c = signed_in("lead")
    url = f"/p/{team['project'].slug}/problem/"
    page = c.get(url)
    form = page.context["form"]
    data = {k: ("" if v is None else v) for k, v in form.initial.items()}
    data["description"] = "Edited only the description"
    for fs in (page.context["criteria"], page.context["approaches"]):
        data.update(
            {
                f"{fs.prefix}-TOTAL_FORMS": str(len(fs.forms)),
                f"{fs.prefix}-INITIAL_FORMS": str(fs.initial_form_count()),
            }
        )
        for f in fs.forms:
            for name, field in f.fields.items():
                if name != "DELETE":
                    value = f.initial.get(name, field.initial)
                    data[f.add_prefix(name)] = "" if value is None else value
    r = c.post(url, data)
    assert r.status_code == 302, r.content[:500]
    problem = ProblemStatement.objects.get(project=team["project"])
    assert problem.description == "Edited only the description"
    assert [c.metric for c in problem.criteria.all()] == ["AP50"] and [
        a.name for a in problem.approaches.all()
    ] == ["YOLO"]
