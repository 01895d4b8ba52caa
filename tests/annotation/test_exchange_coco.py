"""COCO export and import through the job services: round trip, reports, bad input."""

from __future__ import annotations

import json

import numpy as np
from django.db import connection
from pycocotools.coco import COCO

from annotation.models import Annotation, AnnotationRevision
from tests.annotation.exchange_helpers import (
    archive,
    archive_bytes,
    contents,
    decoded,
    export,
    label,
    run_import,
    schema,
    twin,
)


def test_coco_round_trip_is_pixel_exact(team, version):
    label(team["lead"], version, schema(team["lead"], team["project"]))
    job = export(team["lead"], version, "coco")
    assert job.result["written"] == {"tag": 3, "mask": 14, "polygon": 9, "box": 9}
    assert job.result["not_held_count"] == 0
    doc = json.loads(archive(job).read("annotations.json"))
    assert {c["name"] for c in doc["categories"]} == {"cell", "road", "car", "daytime"}

    fresh = twin(team["lead"])
    schema(team["lead"], fresh.dataset.project)
    imported = run_import(team["lead"], fresh, "coco", archive_bytes(job), "export.zip")
    assert imported.status == "succeeded", imported.error
    assert imported.result["imported"] == 35 and imported.result["problem_count"] == 0
    assert contents(fresh) == contents(version)
    before, after = decoded(version), decoded(fresh)
    assert before.keys() == after.keys()
    for key in before:
        assert all(np.array_equal(a, b) for a, b in zip(before[key], after[key], strict=True))
    rows = Annotation.objects.filter(image__project=fresh.dataset.project)
    assert {r.source for r in rows} == {"import"} and {r.status for r in rows} == {"submitted"}
    # One record of the import (the job), not one revision per annotation: see below.
    assert not AnnotationRevision.objects.filter(annotation__in=rows).exists()


def test_coco_export_filters_by_status_and_loads_in_pycocotools(team, version, tmp_path):
    classes = schema(team["lead"], team["project"])
    label(team["lead"], version, classes)
    Annotation.objects.filter(kind="box").update(status="accepted")
    job = export(team["lead"], version, "coco", statuses=["accepted"])
    assert job.result["written"] == {"box": 9}
    path = tmp_path / "a.json"
    path.write_bytes(archive(job).read("annotations.json"))
    coco = COCO(str(path))
    assert len(coco.getAnnIds()) == 9 and len(coco.getImgIds()) == 9


def _coco(images, annotations, categories=None):
    return json.dumps(
        {
            "images": images,
            "annotations": annotations,
            "categories": categories
            or [{"id": 1, "name": "cell"}, {"id": 2, "name": "road"}, {"id": 3, "name": "car"}],
        }  # fmt: skip
    ).encode()


def _failed(team, version, data, name="bad.json", fmt="coco"):
    count = Annotation.objects.count(), AnnotationRevision.objects.count()
    job = run_import(team["lead"], version, fmt, data, name)
    assert job.status == "failed"
    assert (Annotation.objects.count(), AnnotationRevision.objects.count()) == count
    return job


def test_coco_bad_records_fail_the_import_naming_each_and_change_nothing(team, version):
    schema(team["lead"], team["project"])
    images = [{"id": 1, "file_name": "coffee.jpg", "width": 600, "height": 400},
              {"id": 2, "file_name": "../etc/passwd", "width": 10, "height": 10},
              {"id": 3, "file_name": "/abs/camera.jpg", "width": 10, "height": 10},
              {"id": 4, "file_name": "nowhere.jpg", "width": 10, "height": 10}]  # fmt: skip
    big = [float(v) for i in range(1_000_000) for v in (i % 600, (i * 7) % 400)]
    anns = [
        {"id": 10, "image_id": 1, "category_id": 3, "bbox": [590, 10, 50, 50]},
        {
            "id": 11,
            "image_id": 1,
            "category_id": 2,
            "segmentation": [[0, 0, 100, 100, 100, 0, 0, 100]],
        },
        {
            "id": 12,
            "image_id": 1,
            "category_id": 2,
            "segmentation": [[0, 0, float("nan"), 10, 10, 0]],
        },
        {"id": 13, "image_id": 1, "category_id": 2, "segmentation": [big]},
        {
            "id": 14,
            "image_id": 1,
            "category_id": 1,
            "segmentation": {"size": [400, 600], "counts": [5, 10]},
        },
        {"id": 15, "image_id": 1, "category_id": 9, "bbox": [1, 1, 5, 5]},
        {
            "id": 16,
            "image_id": 1,
            "category_id": 3,
            "bbox": [1, 1, 5, 5],
            "attributes": {"colour": "green"},
        },
        {"id": 16, "image_id": 1, "category_id": 3, "bbox": [2, 2, 5, 5]},
        {"id": 17, "image_id": 4, "category_id": 3, "bbox": [1, 1, 5, 5]},
        {
            "id": 18,
            "image_id": 1,
            "category_id": 3,
            "bbox": [1, 1, 5, 5],
            "attributes": {"size": "big"},
        },
        {"id": 19, "image_id": 1, "category_id": 3, "bbox": [1, 1, 5, 5]},
    ]
    job = _failed(team, version, _coco(images, anns))
    problems = {p["where"]: p["message"] for p in job.result["problems"]}
    assert "escapes the dataset" in problems["images[1] (id 2)"]
    assert "is absolute" in problems["images[2] (id 3)"]
    assert "outside the 600×400 image" in problems["annotations[0] (id 10)"]
    assert "crosses itself" in problems["annotations[1] (id 11)"]
    assert "nan or infinity" in problems["annotations[2] (id 12)"].lower()
    assert "at most 10,000 vertices" in problems["annotations[3] (id 13)"]
    assert "sum to 15, not height × width = 240,000" in problems["annotations[4] (id 14)"]
    assert "category_id 9 is not in categories" in problems["annotations[5] (id 15)"]
    assert "must be one of red, blue; got 'green'" in problems["annotations[6] (id 16)"]
    assert "duplicate id 16" in problems["annotations[7] (id 16)"]
    assert "'nowhere.jpg' is not in version 1" in problems["annotations[8] (id 17)"]
    assert "has no attribute 'size'" in problems["annotations[9] (id 18)"]
    assert "annotations[10] (id 19)" not in problems
    assert job.result["problem_count"] == 12
    assert job.error.startswith("Nothing was imported: 12 records are wrong. images[1] (id 2)")


def test_unknown_class_is_an_error_unless_classes_may_be_created(team, version):
    data = _coco([{"id": 1, "file_name": "coffee.jpg", "width": 600, "height": 400}],
                 [{"id": 1, "image_id": 1, "category_id": 7, "bbox": [1, 2, 3, 4]}],
                 [{"id": 7, "name": "cup"}])  # fmt: skip
    job = _failed(team, version, data)
    assert "unknown class 'cup'" in job.result["problems"][0]["message"]
    job = run_import(team["lead"], version, "coco", data, "ok.json", create_classes=True)
    assert job.status == "succeeded", job.error
    a = Annotation.objects.get(image__original_name="coffee.jpg")
    assert (a.label_class.name, a.label_class.kind, a.geometry) == (
        "cup",
        "box",
        {"box": [1, 2, 3, 4]},
    )


def test_wrong_schema_is_refused_with_the_reason(team, version):
    ls = json.dumps([{"id": 1, "data": {"image": "coffee.jpg"}, "annotations": []}]).encode()
    job = _failed(team, version, ls, "tasks.json")
    assert "top level is a list; expected a JSON object" in job.error
    job = _failed(team, version, json.dumps({"images": []}).encode())
    assert "no annotations, categories" in job.error
    job = _failed(team, version, b"{not json")
    assert "not valid JSON" in job.error


def test_categories_after_annotations_are_read_in_two_passes(team, version):
    schema(team["lead"], team["project"])
    text = (
        '{"annotations": [{"id": 1, "image_id": 5, "category_id": 3, "bbox": [1, 2, 3, 4]}],'
        ' "images": [{"id": 5, "file_name": "coffee.jpg", "width": 600, "height": 400}],'
        ' "categories": [{"id": 3, "name": "car"}]}'
    )
    job = run_import(team["lead"], version, "coco", text.encode(), "late.json")
    assert job.status == "succeeded", job.error
    assert job.result["imported"] == 1


def test_polygons_for_a_mask_class_are_rasterised(team, version):
    schema(team["lead"], team["project"])
    data = _coco([{"id": 1, "file_name": "coffee.jpg", "width": 600, "height": 400}],
                 [{"id": 1, "image_id": 1, "category_id": 1,
                   "segmentation": [[10, 10, 50, 10, 50, 50, 10, 50], [100, 100, 120, 100, 120, 130]]}])  # fmt: skip
    job = run_import(team["lead"], version, "coco", data, "p.json")
    assert job.status == "succeeded", job.error
    a = Annotation.objects.get()
    assert a.kind == "mask" and a.area > 40 * 40


def test_images_sharing_a_name_are_reported_on_export_and_refused_on_import(team, version):
    from studio.models import Image

    schema(team["lead"], team["project"])
    Image.objects.filter(original_name="camera.jpg").update(original_name="coffee.jpg")
    job = export(team["lead"], version, "coco")
    assert job.result["ambiguous_image_names"] == ["coffee.jpg"]
    data = _coco([{"id": 1, "file_name": "coffee.jpg", "width": 600, "height": 400}],
                 [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [1, 2, 3, 4]}])  # fmt: skip
    job = _failed(team, version, data)
    assert "ambiguous" in job.result["problems"][0]["message"]
    assert job.result["problems"][0]["where"] == "annotations[0] (id 1)"


def test_ids_of_the_wrong_type_are_records_errors(team, version):
    schema(team["lead"], team["project"])
    data = _coco(
        [
            {"id": [1], "file_name": "coffee.jpg"},
            {"id": 2, "file_name": "coffee.jpg", "tags": {"a": 1}},
        ],
        [{"id": 1, "image_id": [2], "category_id": 3, "bbox": [1, 2, 3, 4]}],
    )
    job = _failed(team, version, data)
    problems = {p["where"]: p["message"] for p in job.result["problems"]}
    assert "needs an id (number)" in problems["images[0]"]
    assert "must be numbers" in problems["annotations[0] (id 1)"]
    assert "tags must be a list" in problems["images[1].tags"]


def test_import_writes_across_batches_and_history_keeps_each_imported_state(
    api, team, version, monkeypatch
):
    """Batches go to the writer thread (COPY on PostgreSQL, one JSON array on SQLite).
    No revision row per annotation: an untouched import's history is its row, and its
    create revision is written, with the imported state, author and time, when it first
    changes, so it can be restored after any edit, delete or submission."""
    from annotation.services import export as export_services
    from annotation.services import imports
    from annotation.services import queues as queue_services
    from annotation.services.labels import snapshot

    monkeypatch.setattr(export_services, "BATCH", 4)
    monkeypatch.setattr(imports, "BATCH", 4)
    classes = schema(team["lead"], team["project"])
    label(team["lead"], version, classes)
    job = export(team["lead"], version, "coco")
    fresh = twin(team["lead"])
    schema(team["lead"], fresh.dataset.project)
    imported = run_import(team["lead"], fresh, "coco", archive_bytes(job), "export.zip",
                          status="draft")  # fmt: skip
    assert imported.status == "succeeded", imported.error
    assert contents(fresh) == contents(version)
    project = fresh.dataset.project
    rows = Annotation.objects.filter(image__project=project).order_by("id")
    assert rows.count() == 35
    assert {a.source_detail for a in rows} == {f"coco import, job {imported.pk}"}
    assert {(a.author_id, a.version) for a in rows} == {(team["lead"].pk, 1)}

    lead, annotator = api(team["lead"]), api(team["annotator"])
    project.memberships.create(user=team["annotator"], role="annotator")
    base = f"/api/v1/projects/{project.slug}/annotations"
    for a in rows:
        (entry,) = lead.get(f"{base}/{a.pk}/history/").json()
        assert (entry["id"], entry["action"], entry["version"], entry["before"]) == (
            None, "create", 1, None)  # fmt: skip
        assert entry["author"] == team["lead"].pk and entry["after"] == snapshot(a)

    # An edit by someone else: the creation is kept, with the importer and the import time.
    box = rows.filter(kind="box").first()
    first_state = snapshot(box)
    r = annotator.patch(
        f"{base}/{box.pk}/", {"version": 1, "geometry": [0, 0, 5, 5]}, format="json"
    )
    assert r.status_code == 200, r.content
    history = annotator.get(f"{base}/{box.pk}/history/").json()
    assert [(h["action"], h["version"], h["author"]) for h in history] == [
        ("create", 1, team["lead"].pk), ("update", 2, team["annotator"].pk)]  # fmt: skip
    created = AnnotationRevision.objects.get(pk=history[0]["id"])
    assert created.after == first_state and created.created_at == box.created_at
    r = lead.post(f"{base}/{box.pk}/history/{created.pk}/restore/")
    assert r.status_code == 200 and r.json()["geometry"] == first_state["geometry"]["box"]

    # A delete, then the canvas's undo (restore the last live state).
    mask = rows.filter(kind="mask").first()
    assert annotator.delete(f"{base}/{mask.pk}/?version=1").json()["deleted"] is True
    history = annotator.get(f"{base}/{mask.pk}/history/").json()
    assert [h["action"] for h in history] == ["create", "delete"]
    assert history[0]["after"] == snapshot(Annotation.objects.get(pk=mask.pk)) | {"deleted": False}

    # Submitting an imported draft makes the submitter its author; the creation keeps the
    # importer.
    queue = queue_services.queue_create(actor=team["lead"], project=project, name="Check",
                                        version=fresh)  # fmt: skip
    item = queue_services.queue_next(actor=team["annotator"], queue=queue)
    untouched = rows.filter(image_id=item.image_id, version=1, deleted=False).first()
    queue_services.queue_submit(actor=team["annotator"], item=item)
    untouched.refresh_from_db()
    assert untouched.status == "submitted" and untouched.author_id == team["annotator"].pk
    created, submitted = untouched.revisions.order_by("version")
    assert (created.action, created.author_id, created.after["status"]) == (
        "create", team["lead"].pk, "draft")  # fmt: skip
    assert (submitted.version, submitted.author_id) == (2, team["annotator"].pk)


def test_a_failed_write_mid_import_leaves_nothing(team, version, monkeypatch):
    from annotation.services import export as export_services
    from annotation.services import imports
    from annotation.services.import_writer import ImportWriter

    monkeypatch.setattr(export_services, "BATCH", 4)
    monkeypatch.setattr(imports, "BATCH", 4)
    classes = schema(team["lead"], team["project"])
    label(team["lead"], version, classes)
    data = archive_bytes(export(team["lead"], version, "coco"))
    writes = []

    def broken(self, *args):
        writes.append(1)
        if len(writes) >= 3:  # every attempt fails on its third write
            raise RuntimeError("disk full")
        return original(self, *args)

    name = "_copy" if connection.vendor == "postgresql" else "_insert_json"
    original = getattr(ImportWriter, name)
    monkeypatch.setattr(ImportWriter, name, broken)
    fresh = twin(team["lead"])
    schema(team["lead"], fresh.dataset.project)
    before = Annotation.objects.count(), AnnotationRevision.objects.count()
    job = run_import(team["lead"], fresh, "coco", data, "export.zip")
    assert job.status in ("failed", "queued") and "RuntimeError: disk full" in job.error
    assert (Annotation.objects.count(), AnnotationRevision.objects.count()) == before


def test_classes_an_import_creates_take_the_attributes_the_file_uses(team, version):
    from annotation.models import LabelClass

    existing = LabelClass.objects.create(project=team["project"], name="plate", kind="box")
    data = _coco([{"id": 1, "file_name": "coffee.jpg", "width": 600, "height": 400}],
                 [{"id": 1, "image_id": 1, "category_id": 7, "bbox": [1, 2, 3, 4],
                   "attributes": {"full": "yes"}},
                  {"id": 2, "image_id": 1, "category_id": 7, "bbox": [5, 2, 3, 4],
                   "attributes": {"full": "no"}}],
                 [{"id": 7, "name": "cup"}])  # fmt: skip
    job = run_import(team["lead"], version, "coco", data, "ok.json", create_classes=True)
    assert job.status == "succeeded", job.error
    assert LabelClass.objects.get(name="cup").attributes == {"full": ["yes", "no"]}
    # A class the project already had keeps its schema: unknown attributes are errors.
    data = _coco([{"id": 1, "file_name": "coffee.jpg", "width": 600, "height": 400}],
                 [{"id": 1, "image_id": 1, "category_id": 8, "bbox": [1, 2, 3, 4],
                   "attributes": {"shiny": "yes"}}],
                 [{"id": 8, "name": "plate"}])  # fmt: skip
    job = run_import(team["lead"], version, "coco", data, "bad.json", create_classes=True)
    assert (
        job.status == "failed"
        and "has no attribute 'shiny'" in job.result["problems"][0]["message"]
    )
    existing.refresh_from_db()
    assert existing.attributes == {}
