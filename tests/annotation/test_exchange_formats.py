"""Round trips and bad input for YOLO, Pascal VOC, CVAT 1.1 and Label Studio."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image as PILImage

from annotation.models import Annotation, AnnotationRevision
from tests.annotation.exchange_helpers import (
    archive,
    archive_bytes,
    export,
    label,
    run_import,
    schema,
    shapes,
    twin,
)


def _not_written(job) -> set[int]:
    return {n["annotation"] for n in job.result["not_held"] if "attributes" not in n["reason"]}


@pytest.mark.parametrize(
    ("fmt", "written", "keeps_attributes"),
    [
        ("yolo", {"mask": 5, "polygon": 9, "box": 9}, False),
        ("voc", {"mask": 11, "box": 9}, True),
        ("cvat", {"mask": 14, "polygon": 9, "box": 9, "tag": 3}, True),
        ("labelstudio", {"mask": 14, "polygon": 9, "box": 9, "tag": 3}, True),
    ],
)
def test_round_trip_keeps_what_the_format_holds_and_reports_the_rest(
    team, version, fmt, written, keeps_attributes
):
    made = label(team["lead"], version, schema(team["lead"], team["project"]))
    job = export(team["lead"], version, fmt)
    assert job.status == "succeeded", job.error
    assert job.result["written"] == written
    skipped = _not_written(job)
    assert len(skipped) == len(made) - sum(written.values())
    for item in job.result["not_held"]:
        assert item["reason"] and item["annotation"] in {a.pk for a in made}

    fresh = twin(team["lead"])
    schema(team["lead"], fresh.dataset.project)
    imported = run_import(team["lead"], fresh, fmt, archive_bytes(job), f"{fmt}.zip")
    assert imported.status == "succeeded", (imported.error, imported.result)
    assert imported.result["imported"] == sum(written.values())
    assert shapes(fresh, attributes=keeps_attributes) == shapes(
        version, skipped, attributes=keeps_attributes
    )


def test_yolo_reports_masks_no_polygon_holds_and_writes_exact_ones(team, version):
    label(team["lead"], version, schema(team["lead"], team["project"]))
    job = export(team["lead"], version, "yolo")
    reasons = [n["reason"] for n in job.result["not_held"]]
    assert (
        reasons.count(
            "YOLO polygons cannot hold this mask pixel for pixel (it has holes or several pieces)"
        )
        == 9
    )
    assert reasons.count("YOLO has no image-level tags") == 3
    zf = archive(job)
    assert zf.read("classes.txt").decode().split() == ["car", "cell", "road"]
    line = zf.read("labels/coffee.txt").decode().splitlines()[0]
    assert line.split()[0] in {"0", "1", "2"} and all(0 <= float(v) <= 1 for v in line.split()[1:])


def test_voc_writes_palette_pngs_whose_pixels_are_the_objects(team, version):
    label(team["lead"], version, schema(team["lead"], team["project"]))
    zf = archive(export(team["lead"], version, "voc"))
    png = PILImage.open(io.BytesIO(zf.read("SegmentationObject/coffee.png")))
    assert png.mode == "P"
    assert set(np.unique(np.asarray(png))) <= {0, 1, 2, 3}
    assert b"<bndbox>" in zf.read("Annotations/coffee.xml")


def _zip(entries: dict[str, bytes | str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _fails(team, version, fmt, data, name):
    counts = Annotation.objects.count(), AnnotationRevision.objects.count()
    job = run_import(team["lead"], version, fmt, data, name)
    assert job.status == "failed"
    assert (Annotation.objects.count(), AnnotationRevision.objects.count()) == counts
    return job, {p["where"]: p["message"] for p in job.result.get("problems", [])}


def test_yolo_bad_lines_are_named(team, version):
    schema(team["lead"], team["project"])
    data = _zip({
        "classes.txt": "car\ncell\nroad\n",
        "labels/coffee.txt": "0 0.5 0.5 0.2 0.2\n7 0.5 0.5 0.1 0.1\n0 0.99 0.5 0.2 0.2\n0 0.5 0.5\n",
        "labels/nope.txt": "0 0.5 0.5 0.2 0.2\n",
    })  # fmt: skip
    job, problems = _fails(team, version, "yolo", data, "y.zip")
    assert "class index 7" in problems["labels/coffee.txt line 2"]
    assert "outside the 600×400 image" in problems["labels/coffee.txt line 3"]
    assert "2 numbers" in problems["labels/coffee.txt line 4"]
    assert "no image of the version is named 'nope'" in problems["labels/nope.txt"]
    job, _ = _fails(team, version, "yolo", b'{"images": []}', "coco.json")
    assert "Not a YOLO archive" in job.error


def test_voc_bad_objects_are_named(team, version):
    schema(team["lead"], team["project"])
    xml = ("<annotation><filename>coffee.jpg</filename>"
           "<object><name>car</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object>"
           "<object><name>cell</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object>"
           "<object><name>bus</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object>"
           "<object><name>car</name><bndbox><xmin>1</xmin></bndbox></object></annotation>")  # fmt: skip
    png = io.BytesIO()
    PILImage.fromarray(np.ones((400, 600), np.uint8), mode="P").save(png, "PNG")
    data = _zip({"Annotations/coffee.xml": xml, "SegmentationObject/coffee.png": png.getvalue(),
                 "Annotations/evil.xml": "<annotation><filename>../../etc/x.jpg</filename><object><name>car</name>"
                 "<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object></annotation>"})  # fmt: skip
    job, problems = _fails(team, version, "voc", data, "v.zip")
    assert "object 2 has no pixels" in problems["Annotations/coffee.xml object 2"]
    assert "unknown class 'bus'" in problems["Annotations/coffee.xml object 3"]
    assert "numeric xmin" in problems["Annotations/coffee.xml object 4"]
    assert "escapes the dataset" in problems["Annotations/evil.xml object 1"]
    assert "Annotations/coffee.xml object 1" not in problems


def test_cvat_bad_shapes_are_named(team, version):
    schema(team["lead"], team["project"])
    xml = ('<annotations><version>1.1</version><image id="0" name="coffee.jpg" width="600" height="400">'
           '<mask label="cell" rle="3, 4" left="0" top="0" width="3" height="3"/>'
           '<polygon label="road" points="0,0;10,10;10,0;0,10"/>'
           '<points label="road" points="1,1"/>'
           '<box label="car" xtl="1" ytl="1" xbr="9" ybr="9"><attribute name="colour">red</attribute></box>'
           '<tag label="daytime"/>'
           '</image></annotations>')  # fmt: skip
    job, problems = _fails(team, version, "cvat", xml.encode(), "annotations.xml")
    assert "runs sum to 7, not width × height = 9" in problems["image 0 (coffee.jpg) <mask> 0"]
    assert "crosses itself" in problems["image 0 (coffee.jpg) <polygon> 1"]
    assert "<points> is not supported" in problems["image 0 (coffee.jpg) <points> 2"]
    assert len(problems) == 3
    job, _ = _fails(team, version, "cvat", json.dumps({"images": []}).encode(), "a.xml")
    assert "Not valid XML" in job.error


def test_label_studio_bad_regions_are_named(team, version):
    schema(team["lead"], team["project"])
    box = {"x": 10, "y": 10, "width": 20, "height": 20, "rectanglelabels": ["car"]}
    tasks = [
        {"id": 1, "data": {"image": "/data/upload/3/coffee.jpg"}, "annotations": [{"result": [
            {"id": "a", "type": "rectanglelabels", "value": box},
            {"id": "a", "type": "rectanglelabels", "value": box},
            {"id": "a2", "type": "rectanglelabels", "value": {**box, "x": 95}},
            {"id": "b", "type": "rectanglelabels", "value": {**box, "rectanglelabels": ["bus"]}},
            {"id": "c", "type": "brushlabels", "value": {"rle": [1], "brushlabels": ["cell"]}},
        ]}]},
        {"id": 2, "data": {"image": "../coffee.jpg"}, "annotations": [{"result": [
            {"id": "d", "type": "rectanglelabels", "value": box}]}]},
    ]  # fmt: skip
    job, problems = _fails(team, version, "labelstudio", json.dumps(tasks).encode(), "t.json")
    assert "duplicate id a" in problems["tasks[0] (id 1) result 1 (id a)"]
    assert "outside the 600×400 image" in problems["tasks[0] (id 1) result 2 (id a2)"]
    assert "unknown class 'bus'" in problems["tasks[0] (id 1) result 3 (id b)"]
    assert "brush RLE ends early" in problems["tasks[0] (id 1) result 4 (id c)"]
    assert "tasks[0] (id 1) result 0 (id a)" not in problems
    assert "escapes the dataset" in problems["tasks[1] (id 2) result 0 (id d)"]
    coco = json.dumps({"images": [], "annotations": [], "categories": []}).encode()
    job, _ = _fails(team, version, "labelstudio", coco, "coco.json")
    assert "Not a Label Studio export" in job.error


def test_a_damaged_archive_fails_with_a_reason(team, version):
    data = bytearray(
        _zip({"classes.txt": "car\n", "labels/coffee.txt": "0 0.5 0.5 0.2 0.2\n" * 50})
    )
    data[40:60] = b"\0" * 20  # inside the first entry's compressed bytes
    job, _ = _fails(team, version, "yolo", bytes(data), "y.zip")
    assert job.error.startswith("Nothing was imported: y.zip: The file cannot be read"), job.error


def test_the_staged_upload_is_deleted_once_the_import_is_final(team, version, settings):
    schema(team["lead"], team["project"])
    job = run_import(team["lead"], version, "cvat", b"<annotations/>", "a.xml")
    assert job.status == "succeeded" and job.result["imported"] == 0
    assert not list((settings.MEDIA_ROOT / "projects").rglob("a.xml"))


@pytest.mark.parametrize("fmt", ["coco", "yolo", "voc", "cvat", "labelstudio"])
def test_an_unlabelled_version_exports_and_imports_as_nothing(team, version, fmt):
    schema(team["lead"], team["project"])
    job = export(team["lead"], version, fmt)
    assert job.status == "succeeded" and job.result["annotations"] == 0
    back = run_import(team["lead"], version, fmt, archive_bytes(job), f"{fmt}.zip")
    assert back.status == "succeeded", back.error
    assert back.result["imported"] == 0 and not Annotation.objects.exists()
