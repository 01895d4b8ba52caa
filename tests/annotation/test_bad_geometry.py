"""Hostile geometry: wrong JSON types, NaN, infinity and numbers too large for a float.

Every kind (mask RLE, polygon, multi-part polygon, box, tag) is refused with a message,
never a crash: through ``geometry.validate``, through the batch validator of imports, as
a 400 from the API, and as a per-record problem of an import job that fails once, for
good, without a retry.
"""

from __future__ import annotations

import io
import json
import math

import pytest

from annotation import geometry as geo
from annotation.formats.validation import validate_many
from annotation.services.labels import label_class_create
from studio.models import DatasetVersion, Image, Job
from studio.services.ingest import upload_create
from studio.services.jobs import job_run
from tests.factories import image_bytes, upload

W, H = 60, 40
HUGE = 10**400  # JSON allows it; a float cannot hold it
HOSTILE = {
    "mask": [
        5, "x", [], None, {"size": 5, "counts": "abc"}, {"size": None, "counts": "a"},
        {"size": "ab", "counts": "0"}, {"size": [H, W, 3], "counts": "0"},
        {"size": [1e400, W], "counts": [1]}, {"size": [H, W], "counts": 5},
        {"size": [H, W], "counts": {"a": 1}}, {"size": [H, W], "counts": [10**30]},
        {"size": [H, W], "counts": [2**70, 1]}, {"size": [H, W], "counts": [math.nan]},
        {"size": [H, W], "counts": [HUGE]}, {"size": [H, W], "counts": [True, H * W - 1]},
        {"size": [H, W], "counts": "\u00e9\u00e9"},
    ],
    "polygon": [
        5, "x", {"a": 1}, None, [1e400] * 6, [math.nan] * 6, [HUGE] * 6, [2**70] * 6,
        [1, 1, 10, 1, HUGE, 10], [[1, 2], [3]], [[1, 2, 3]], [[[1, 2]]] * 3, [True] * 6,
        [None] * 6, [[1, 2], [3, 4], [5, "a"]], [{"x": 1}] * 6,
        [[1, 1, 10, 1, 10, 10], [HUGE, 1, 20, 1, 20, 10]],  # multi-part, one part hostile
    ],
    "box": [
        5, "x", {"a": 1}, {"size": 5}, None, [1e400, 1, 1, 1], [1, 1, 1e400, 1], [math.nan] * 4,
        [HUGE, 1, 1, 1], [1, 1, HUGE, 1], [2**70] * 4, [1, 2, 3], [[1], 2, 3, 4], [None] * 4,
        "abcd", [True, True, True, True],
    ],
    "tag": [5, "x", [1], {"a": 1}],
}  # fmt: skip
CASES = [(kind, payload) for kind, payloads in HOSTILE.items() for payload in payloads]


@pytest.mark.parametrize(
    ("kind", "payload"), CASES, ids=[f"{k}-{i}" for i, (k, _) in enumerate(CASES)]
)
def test_hostile_geometry_is_refused_with_a_message(kind, payload):
    with pytest.raises(geo.GeometryError):
        geo.validate(kind, payload, W, H)
    (verdict,) = validate_many([(kind, payload, W, H)])
    assert isinstance(verdict, str) and verdict


@pytest.fixture
def image(team, dataset) -> Image:
    job = upload_create(actor=team["lead"], project=team["project"], dataset=dataset,
                        files=[upload("small.png", image_bytes(size=(W, H), fmt="PNG"))])  # fmt: skip
    job_run(job_id=job.pk)
    return Image.objects.get(project=team["project"])


@pytest.fixture
def classes(team) -> dict:
    return {
        kind: label_class_create(actor=team["lead"], project=team["project"], name=kind, kind=kind)
        for kind in HOSTILE
    }


def _raw(value) -> str:
    """JSON text as a hostile client writes it: 1e400 as is, huge integers in full."""
    if isinstance(value, float) and math.isinf(value):
        return "1e400"
    if isinstance(value, float) and math.isnan(value):
        return "1e999999"  # JSON has no NaN literal; another infinity stands in
    if isinstance(value, list):
        return "[" + ",".join(_raw(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{_raw(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


@pytest.mark.parametrize(
    ("kind", "payload"), CASES, ids=[f"{k}-{i}" for i, (k, _) in enumerate(CASES)]
)
def test_the_api_answers_400_for_hostile_geometry(api, team, image, classes, kind, payload):
    url = f"/api/v1/projects/{team['project'].slug}/images/{image.pk}/annotations/"
    body = f'{{"label_class": {classes[kind].pk}, "geometry": {_raw(payload)}}}'
    r = api(team["lead"]).post(url, body, content_type="application/json")
    assert r.status_code == 400, r.content
    assert r.json()["error"]["code"] == "invalid" and r.json()["error"]["message"]


def test_hostile_geometry_in_an_import_file_is_each_records_problem(team, image, classes):
    from annotation.services.imports import import_start

    version = DatasetVersion.objects.get(dataset__project=team["project"])
    categories = [{"id": n, "name": kind} for n, kind in enumerate(HOSTILE, start=1)]
    category = {c["name"]: c["id"] for c in categories}
    annotations = []
    for n, (kind, payload) in enumerate(CASES):
        ann = {"id": n, "image_id": 1, "category_id": category[kind]}
        if kind == "box":
            ann["bbox"] = payload
        elif kind != "tag":
            ann["segmentation"] = payload
        else:
            continue  # COCO carries tags on the image
        annotations.append(ann)
    text = ('{"images": [{"id": 1, "file_name": "small.png", "width": 60, "height": 40}], '
            f'"categories": {json.dumps(categories)}, "annotations": '
            f"{_raw(annotations)}}}")  # fmt: skip
    f = io.BytesIO(text.encode())
    f.name = "hostile.json"
    job = import_start(actor=team["lead"], version=version, fmt="coco", upload=f)
    job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and job.attempts == 1, job.error
    assert "Internal error" not in job.error
    assert job.result["problem_count"] == len(annotations), job.result["problems"]
    assert not image.annotations.exists()


LS_VALUES = [
    {"rectanglelabels": ["box"], "x": HUGE, "y": 1, "width": 5, "height": 5},
    {"rectanglelabels": ["box"], "x": 1e400, "y": 1, "width": 5, "height": 5},
    {"rectanglelabels": ["box"], "x": "abc", "y": 1, "width": 5, "height": 5},
    {"rectanglelabels": ["box"], "x": [1], "y": 1, "width": 5, "height": 5},
    {"rectanglelabels": 5, "x": 1, "y": 1, "width": 5, "height": 5},
    {"rectanglelabels": [{"a": 1}], "x": 1, "y": 1, "width": 5, "height": 5},
    {"polygonlabels": ["polygon"], "points": 5},
    {"polygonlabels": ["polygon"], "points": [[HUGE, 1], [2, 2], [3, 1]]},
    {"polygonlabels": ["polygon"], "points": [5, 6, 7]},
    {"brushlabels": ["mask"], "format": "rle", "rle": 5},
    {"brushlabels": ["mask"], "format": "rle", "rle": [HUGE, 300, -1]},
    {"brushlabels": ["mask"], "format": "rle", "rle": {"a": 1}},
]


def test_hostile_values_in_a_label_studio_file_are_each_records_problem(team, image, classes):
    from annotation.services.imports import import_start

    version = DatasetVersion.objects.get(dataset__project=team["project"])
    kinds = {"rectanglelabels": "box", "polygonlabels": "polygon", "brushlabels": "mask"}
    results = [
        {"id": f"r{n}", "type": next(k for k in kinds if k in value), "from_name": "label",
         "to_name": "image", "value": value}
        for n, value in enumerate(LS_VALUES)
    ]  # fmt: skip
    tasks = [
        {"id": 1, "data": {"image": "small.png"}, "annotations": [{"result": results}]},
        {"id": 2, "data": {"image": "small.png"}, "annotations": 5},
        {"id": 3, "data": {"image": "small.png"}, "annotations": [{"result": {"a": 1}}]},
        {"id": 4, "data": {"image": "small.png"}, "annotations": [{"result": [
            {"id": "c", "type": "choices", "from_name": "tags", "value": {"choices": 5}}]}]},
    ]  # fmt: skip
    f = io.BytesIO(_raw(tasks).encode())
    f.name = "tasks.json"
    job = import_start(actor=team["lead"], version=version, fmt="labelstudio", upload=f)
    job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and job.attempts == 1, job.error
    assert "Internal error" not in job.error and "cannot be read after" not in job.error
    assert job.result["problem_count"] == len(LS_VALUES) + 3, job.result["problems"]
