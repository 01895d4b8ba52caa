"""Multi-part polygons through the annotation API and the formats; importing a file again
through the import API (skip, replace, append); an import is all or nothing."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.test import Client
from django.urls import reverse
from pycocotools.coco import COCO

from annotation import geometry as geo
from annotation.models import Annotation, AnnotationRevision
from studio.models import Image
from studio.services.jobs import job_run
from tests.annotation.exchange_helpers import (
    archive,
    archive_bytes,
    export,
    label,
    run_import,
    schema,
    twin,
)

TWO_PARTS = [[10, 10, 60, 10, 60, 50], [100, 100, 150, 100, 150, 160, 100, 160]]


def _base(team) -> str:
    return f"/api/v1/projects/{team['project'].slug}"


def test_the_annotation_api_stores_every_part_of_a_multi_part_polygon(api, team, version, tmp_path):
    classes = schema(team["lead"], team["project"])
    image = Image.objects.get(original_name="coffee.jpg")
    client = api(team["annotator"])
    url = f"{_base(team)}/images/{image.pk}/annotations/"
    # Two parts of equal length: this is the input that used to become one 6-vertex polygon.
    equal = [[10, 10, 60, 10, 60, 50], [100, 100, 150, 100, 150, 160]]
    for geometry in (TWO_PARTS, equal):
        r = client.post(
            url, {"label_class": classes["road"].pk, "geometry": geometry}, format="json"
        )
        assert r.status_code == 201, r.content
        body = r.json()
        assert body["geometry"] == geometry and body["kind"] == "polygon"
        stored = Annotation.objects.get(pk=body["id"])
        assert stored.geometry == {"parts": [[float(v) for v in p] for p in geometry]}
        drawn = geo.to_mask(stored.geometry, "polygon", image.width, image.height)
        assert (
            drawn[30, 50] and drawn[120, 120] and not drawn[80, 80]
        )  # both parts, nothing between
    assert body["area"] == 0.5 * 50 * 40 + 0.5 * 50 * 60
    assert body["bbox"] == [10.0, 10.0, 140.0, 150.0]
    # The image page draws every part.
    page = Client()
    page.force_login(team["lead"])
    html = page.get(
        reverse("annotation:image_detail", args=[team["project"].slug, image.pk])
    ).content
    assert html.count(b"<polygon ") == 4
    # One part in COCO's nesting is a plain polygon; a bad part names itself.
    r = client.post(
        url, {"label_class": classes["road"].pk, "geometry": [TWO_PARTS[0]]}, format="json"
    )
    assert Annotation.objects.get(pk=r.json()["id"]).geometry == {
        "points": [10.0, 10.0, 60.0, 10.0, 60.0, 50.0]
    }
    r = client.post(url, {"label_class": classes["road"].pk,
                          "geometry": [TWO_PARTS[0], [0, 0, 900, 0, 0, 5]]}, format="json")  # fmt: skip
    assert r.status_code == 400 and "Part 2 of the polygon" in r.json()["error"]["message"]

    # COCO writes the parts as COCO does; pycocotools draws them; an import gives them back.
    job = export(team["lead"], version, "coco")
    doc = json.loads(archive(job).read("annotations.json"))
    multi = [a for a in doc["annotations"] if len(a["segmentation"]) == 2]
    assert len(multi) == 2
    (tmp_path / "a.json").write_text(json.dumps(doc))
    coco = COCO(str(tmp_path / "a.json"))
    assert coco.annToMask(multi[0])[120, 120] == 1
    fresh = twin(team["lead"])
    schema(team["lead"], fresh.dataset.project)
    back = _import(api(team["lead"]), team, fresh, "coco", archive_bytes(job), "coco.zip")
    assert back["status"] == "succeeded", back
    imported = Annotation.objects.filter(image__project=fresh.dataset.project)
    assert sorted(json.dumps(a.geometry) for a in imported) == sorted(
        json.dumps(a.geometry) for a in Annotation.objects.filter(image__project=team["project"])
    )
    # Formats without multi-part polygons write each part and say so.
    for fmt in ("cvat", "yolo", "labelstudio"):
        reasons = [n["reason"] for n in export(team["lead"], version, fmt).result["not_held"]]
        assert sum("no multi-part polygons" in r for r in reasons) == 2, fmt


def _import(client, team, version, fmt: str, data: bytes, name: str, **fields) -> dict:
    f = io.BytesIO(data)
    f.name = name
    slug = version.dataset.project.slug
    url = f"/api/v1/projects/{slug}/datasets/{version.dataset_id}/versions/{version.number}/import/"
    r = client.post(url, {"format": fmt, "file": f, **fields}, format="multipart")
    assert r.status_code == 202, r.content
    job_run(job_id=r.json()["id"])
    return client.get(f"/api/v1/jobs/{r.json()['id']}/").json()


def test_importing_the_same_file_again_never_doubles_the_annotations(api, team, version):
    label(team["lead"], version, schema(team["lead"], team["project"]))
    job = export(team["lead"], version, "coco")
    data = archive_bytes(job)
    lead = api(team["lead"])
    total = Annotation.objects.filter(deleted=False).count()
    assert total == 35

    again = _import(lead, team, version, "coco", data, "same.zip")  # the default: skip
    assert again["status"] == "succeeded", again
    assert again["result"]["mode"] == "skip"
    assert again["result"]["skipped"] == 35 and again["result"]["imported"] == 0
    assert Annotation.objects.filter(deleted=False).count() == total

    # Someone moved one box; the file's box is now new, the rest are still skipped.
    moved = Annotation.objects.filter(kind="box").first()
    Annotation.objects.filter(pk=moved.pk).update(geometry={"box": [1.0, 1.0, 5.0, 5.0]})
    again = _import(lead, team, version, "coco", data, "same.zip", mode="skip")
    assert (again["result"]["skipped"], again["result"]["imported"]) == (34, 1)

    replaced = _import(lead, team, version, "coco", data, "same.zip", mode="replace")
    assert replaced["status"] == "succeeded", replaced
    assert replaced["result"]["replaced"] == 36 and replaced["result"]["imported"] == 35
    assert Annotation.objects.filter(deleted=False).count() == 35
    # The replaced ones are deleted softly, each with its history.
    gone = Annotation.objects.filter(deleted=True)
    assert gone.count() == 36
    assert AnnotationRevision.objects.filter(annotation__in=gone, action="delete").count() == 36

    appended = _import(lead, team, version, "coco", data, "same.zip", mode="append")
    assert appended["result"]["imported"] == 35 and appended["result"]["duplicates"] == 35
    assert Annotation.objects.filter(deleted=False).count() == 70

    # Replacing removes other people's work: leads only.
    annotator = api(team["annotator"])
    f = io.BytesIO(data)
    f.name = "same.zip"
    url = f"{_base(team)}/datasets/{version.dataset_id}/versions/{version.number}/import/"
    r = annotator.post(url, {"format": "coco", "file": f, "mode": "replace"}, format="multipart")
    assert r.status_code == 403


def test_a_failed_replace_changes_nothing(api, team, version):
    label(team["lead"], version, schema(team["lead"], team["project"]))
    before = sorted(Annotation.objects.values_list("pk", "deleted", "version"))
    revisions = AnnotationRevision.objects.count()
    doc = json.loads(archive(export(team["lead"], version, "coco")).read("annotations.json"))
    doc["annotations"][-1]["bbox"] = [0, 0, 10**6, 5]  # one bad record at the very end
    doc["annotations"][-1]["segmentation"] = []
    result = _import(api(team["lead"]), team, version, "coco", json.dumps(doc).encode(), "bad.json",
                     mode="replace")  # fmt: skip
    assert result["status"] == "failed" and result["result"]["problem_count"] == 1
    assert sorted(Annotation.objects.values_list("pk", "deleted", "version")) == before
    assert AnnotationRevision.objects.count() == revisions


def test_replace_touches_only_the_images_the_file_labels(api, team, version):
    label(team["lead"], version, schema(team["lead"], team["project"]))
    coffee = Image.objects.get(original_name="coffee.jpg")
    doc = {"images": [{"id": 1, "file_name": "coffee.jpg", "width": 600, "height": 400}],
           "categories": [{"id": 1, "name": "car"}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]}]}  # fmt: skip
    others = Annotation.objects.exclude(image=coffee).count()
    result = _import(api(team["lead"]), team, version, "coco", json.dumps(doc).encode(), "one.json",
                     mode="replace")  # fmt: skip
    assert result["status"] == "succeeded", result
    assert list(
        Annotation.objects.filter(image=coffee, deleted=False).values_list("geometry", flat=True)
    ) == [{"box": [1.0, 2.0, 3.0, 4.0]}]
    assert Annotation.objects.exclude(image=coffee).filter(deleted=False).count() == others
    assert result["result"]["replaced"] == Annotation.objects.filter(deleted=True).count() > 0


def test_vertices_beyond_the_image_in_a_yolo_zip_do_not_half_write(api, team, version):
    schema(team["lead"], team["project"])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("classes.txt", "car\n")
        zf.writestr("labels/coffee.txt", "0 0.5 0.5 0.2 0.2\n" * 3000 + "0 0.5 0.5 3 0.2\n")
    result = _import(api(team["lead"]), team, version, "yolo", buf.getvalue(), "y.zip")
    assert result["status"] == "failed"
    assert result["result"]["problems"] == [
        {
            "where": "labels/coffee.txt line 3001",
            "message": "the box goes outside the 600×400 image.",
        }
    ]
    assert not Annotation.objects.exists()


@pytest.mark.parametrize("fmt", ["coco", "yolo", "voc", "cvat", "labelstudio"])
def test_every_format_imported_again_adds_nothing_by_default(team, version, fmt):
    label(team["lead"], version, schema(team["lead"], team["project"]))
    before = Annotation.objects.filter(deleted=False).count()
    job = export(team["lead"], version, fmt)
    written = sum(job.result["written"].values())
    again = run_import(team["lead"], version, fmt, archive_bytes(job), f"{fmt}.zip")
    assert again.status == "succeeded", (again.error, again.result)
    assert again.result["skipped"] == written and again.result["imported"] == 0
    assert Annotation.objects.filter(deleted=False).count() == before


def test_the_job_page_says_what_was_skipped_and_not_kept(team, version):
    label(team["lead"], version, schema(team["lead"], team["project"]))
    doc = json.loads(archive(export(team["lead"], version, "coco")).read("annotations.json"))
    doc["annotations"][0]["num_keypoints"] = 3
    job = run_import(team["lead"], version, "coco", json.dumps(doc).encode(), "again.json")
    page = Client()
    page.force_login(team["lead"])
    html = page.get(reverse("studio:job_detail", args=[job.pk])).content.decode()
    assert '35</b><span class="muted">skipped' in html
    assert "1 thing in the file Studio does not keep" in html and "3 keypoints" in html
    exchange = page.get(
        reverse("annotation:exchange", args=[team["project"].slug, version.dataset_id])
    ).content.decode()
    assert "0 imported, 35 already there (skipped)" in exchange
