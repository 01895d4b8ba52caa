"""Job pages read as sentences: outcomes in words, figures with labels, and chains shown whole."""

from __future__ import annotations

import io

import pytest
import skimage.data
from PIL import Image as PILImage

from studio.models import Job
from studio.services.jobs import job_run
from tests.factories import image_bytes


def _jpeg(arr) -> bytes:
    out = io.BytesIO()
    PILImage.fromarray(arr).convert("RGB").save(out, "JPEG", quality=90)
    return out.getvalue()


def _upload_page(client, team, dataset, files: dict[str, bytes]) -> Job:
    """Upload through the browser's form, run the job, return it."""
    payload = []
    for name, data in files.items():
        f = io.BytesIO(data)
        f.name = name
        payload.append(f)
    r = client.post(f"/p/{team['project'].slug}/datasets/{dataset.pk}/upload/", {"files": payload})
    assert r.status_code == 302, r.content[:500]
    job = Job.objects.get(pk=int(r["Location"].split("/")[2]))
    job_run(job_id=job.pk)
    job.refresh_from_db()
    return job


def test_an_upload_whose_every_file_was_rejected_is_not_green(client, team, dataset):
    client.force_login(team["lead"])
    job = _upload_page(
        client, team, dataset, {"notes.txt": b"not an image", "cut.jpg": image_bytes()[:200]}
    )
    assert job.status == "succeeded"  # it ran to its end; nothing was added
    html = client.get(f"/jobs/{job.pk}/").content.decode()
    assert 'class="badge warning" id="job-badge">Nothing added<' in html
    assert (
        "Nothing was added: every file was rejected (0 duplicates skipped, 2 files rejected)."
        in html
    )
    assert "Done." not in html


def test_an_upload_reads_as_a_sentence_with_singulars(client, team, dataset):
    client.force_login(team["lead"])
    photo = _jpeg(skimage.data.coffee())
    job = _upload_page(client, team, dataset, {"a.jpg": photo, "b.jpg": photo, "c.txt": b"x"})
    html = client.get(f"/jobs/{job.pk}/").content.decode()
    assert "1 image added, 1 duplicate skipped, 1 file rejected." in html
    assert 'class="badge warning" id="job-badge">Some files rejected<' in html


def test_a_clean_upload_is_green(client, team, dataset):
    client.force_login(team["lead"])
    job = _upload_page(client, team, dataset, {"a.jpg": _jpeg(skimage.data.coffee())})
    html = client.get(f"/jobs/{job.pk}/").content.decode()
    assert 'class="badge succeeded" id="job-badge">Succeeded<' in html
    assert "1 image added, 0 duplicates skipped, 0 files rejected." in html


def test_a_failed_job_says_failed_once(client, team, dataset):
    client.force_login(team["lead"])
    job = Job.objects.create(
        project=team["project"], kind=Job.Kind.CLUSTER, created_by=team["lead"],
        params={"version": 10**9}, max_attempts=1,  # no such version: it fails at once
    )  # fmt: skip
    job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "failed"
    html = client.get(f"/jobs/{job.pk}/").content.decode()
    assert html.count("Failed") == 1  # the badge, not "Failed. Failed."
    assert "Stopped: see the error below." in html and job.error in html


@pytest.mark.parametrize(
    ("result", "expected", "absent"),
    [
        (
            {"format": "coco", "records": 12, "imported": 0, "dry_run": False,
             "problem_count": 1, "problems": [{"where": "x", "message": "y"}]},
            [("format", "coco"), ("records read", "12"), ("annotations imported", "0"),
             ("problem", "1")],
            ["False", "dry run", "problems"],
        ),
        (
            {"measured": 1, "duplicate_groups": 2500, "failed": []},
            [("image measured", "1"), ("near-duplicate groups", "2,500")],
            ["failed"],
        ),
    ],
)  # fmt: skip
def test_figures_have_labels_and_no_python_values(client, team, result, expected, absent):
    job = Job.objects.create(
        project=team["project"], kind=Job.Kind.IMPORT, created_by=team["lead"],
        status=Job.Status.SUCCEEDED, result=result,
    )  # fmt: skip
    client.force_login(team["lead"])
    r = client.get(f"/jobs/{job.pk}/")
    assert r.context["result_rows"] == expected
    html = r.content.decode()
    for text in absent:
        assert f'<span class="muted">{text}</span>' not in html and f"<b>{text}</b>" not in html


def test_the_one_click_chain_is_shown_until_its_last_job_ends(client, team, dataset):
    client.force_login(team["lead"])
    photos = {f"{n}.jpg": _jpeg(getattr(skimage.data, n)()) for n in ("coffee", "rocket", "moon")}
    _upload_page(client, team, dataset, photos)
    url = f"/p/{team['project'].slug}/datasets/{dataset.pk}/curate/run/embed/"
    r = client.post(url, {"version": 1, "backbone": "efficientnet_lite0", "then": "all"})
    embed = Job.objects.get(pk=int(r["Location"].split("/")[2]))
    page = f"/jobs/{embed.pk}/"

    html = client.get(page).content.decode()
    assert 'id="chain"' in html
    assert 'Quality, duplicates and outliers <span class="muted">starts when' in html
    assert 'Cluster images <span class="muted">starts when' in html

    job_run(job_id=embed.pk)
    r = client.get(page)
    html = r.content.decode()
    follow = Job.objects.filter(
        pk__in=embed.__class__.objects.get(pk=embed.pk).result["follow_ups"]
    )
    analyze, cluster = follow.order_by("pk")
    assert f'href="/jobs/{analyze.pk}/">Quality, duplicates and outliers #{analyze.pk}</a>' in html
    assert f'href="/jobs/{cluster.pk}/">Cluster images #{cluster.pk}</a>' in html
    # The embedding is done but the chain is not: the page keeps polling and does not yet
    # send the user back to a Curate page that has nothing new on it.
    assert r.context["polling"] and 'hx-trigger="every 1s"' in html
    assert "Back to curating" not in html

    job_run(job_id=analyze.pk)
    job_run(job_id=cluster.pk)
    r = client.get(page)
    html = r.content.decode()
    assert not r.context["polling"] and "every 1s" not in html
    assert html.count('class="badge succeeded"') == 3  # this job and both follow-ups
    assert "Back to curating" in html
