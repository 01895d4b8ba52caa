"""COCO, Label Studio and YOLO exports and imports checked against the tools teams use:
pycocotools, label-studio-converter, and Ultralytics' own layout and path rules."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from pycocotools.coco import COCO

from annotation import geometry as geo
from annotation.models import Annotation
from annotation.services.labels import annotation_create
from studio.models import Image
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


def _zip(entries: dict[str, bytes | str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


# --- COCO ---------------------------------------------------------------------------------


def test_coco_export_every_annotation_rasterises_with_pycocotools_ann_to_mask(
    team, version, tmp_path
):
    label(team["lead"], version, schema(team["lead"], team["project"]))
    job = export(team["lead"], version, "coco")
    path = tmp_path / "annotations.json"
    path.write_bytes(archive(job).read("annotations.json"))
    coco = COCO(str(path))
    stored = {a.pk: a for a in Annotation.objects.exclude(kind="tag").select_related("image")}
    assert len(coco.getAnnIds()) == len(stored) == 32
    for ann in coco.loadAnns(coco.getAnnIds()):
        drawn = coco.annToMask(ann).astype(bool)  # box-only ones too: no empty segmentation
        a = stored[ann["id"]]
        assert np.array_equal(drawn, geo.to_mask(a.geometry, a.kind, a.image.width, a.image.height))


def test_coco_crowd_regions_are_kept_exported_and_reported_where_not_held(team, version):
    schema(team["lead"], team["project"])
    crowd = np.zeros((400, 600), bool)
    crowd[100:200, 50:300] = True
    counts = geo.mask_from_array(crowd)
    # COCO's crowd regions are uncompressed RLE (list counts).
    from pycocotools import mask as coco_mask

    rle = coco_mask.encode(np.asfortranarray(crowd.astype(np.uint8)))
    decoded = coco_mask.decode(rle)
    runs, last, n = [], 0, 0
    for v in decoded.ravel(order="F"):
        if v != last:
            runs.append(n)
            n, last = 0, v
        n += 1
    runs.append(n)
    doc = {
        "images": [{"id": 1, "file_name": "coffee.jpg", "width": 600, "height": 400}],
        "categories": [{"id": 1, "name": "cell"}, {"id": 2, "name": "car"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 1,
             "segmentation": {"size": [400, 600], "counts": runs}, "bbox": [50, 100, 250, 100]},
            {"id": 2, "image_id": 1, "category_id": 2, "iscrowd": 0, "bbox": [1, 2, 3, 4]},
            {"id": 3, "image_id": 1, "category_id": 2, "iscrowd": 1, "bbox": [10, 20, 30, 40]},
        ],
    }  # fmt: skip
    job = run_import(team["lead"], version, "coco", json.dumps(doc).encode(), "crowd.json")
    assert job.status == "succeeded", (job.error, job.result)
    by_id = {a.kind: a for a in Annotation.objects.filter(is_crowd=True)}
    assert set(by_id) == {"mask", "box"} and by_id["mask"].geometry["counts"] == counts["counts"]
    assert Annotation.objects.filter(is_crowd=False).count() == 1

    exported = export(team["lead"], version, "coco")
    anns = json.loads(archive(exported).read("annotations.json"))["annotations"]
    assert sorted((a["bbox"], a["iscrowd"]) for a in anns) == [
        ([1.0, 2.0, 3.0, 4.0], 0), ([10.0, 20.0, 30.0, 40.0], 1), ([50.0, 100.0, 250.0, 100.0], 1),
    ]  # fmt: skip
    fresh = twin(team["lead"])
    schema(team["lead"], fresh.dataset.project)
    back = run_import(team["lead"], fresh, "coco", archive_bytes(exported), "again.zip")
    assert back.status == "succeeded", back.error
    assert (
        Annotation.objects.filter(image__project=fresh.dataset.project, is_crowd=True).count() == 2
    )
    # Formats without a crowd flag write the shape and say so.
    for fmt in ("cvat", "voc", "yolo", "labelstudio"):
        reasons = [n["reason"] for n in export(team["lead"], version, fmt).result["not_held"]]
        assert sum("no crowd flag" in r for r in reasons) == 2, (fmt, reasons)


def test_coco_bad_crowd_and_huge_numbers_are_per_record_problems(team, version):
    schema(team["lead"], team["project"])
    doc = {
        "images": [{"id": 1, "file_name": "coffee.jpg", "width": 600, "height": 400}],
        "categories": [{"id": 2, "name": "car"}, {"id": 3, "name": "road"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 2, "iscrowd": "yes", "bbox": [1, 2, 3, 4]},
            {"id": 2, "image_id": 1, "category_id": 2, "bbox": [10**400, 2, 3, 4]},
            {"id": 3, "image_id": 1, "category_id": 3, "segmentation": [[10**400, 0, 5, 5, 0, 5]]},
            {"id": 4, "image_id": 1, "category_id": 2, "bbox": [1e-300, 1e-300, 1e-300, 1e-300]},
            {"id": 5, "image_id": 1, "category_id": 2, "bbox": ["1", None, {}, []]},
        ],
    }  # fmt: skip
    job = run_import(team["lead"], version, "coco", json.dumps(doc).encode(), "bad.json")
    assert job.status == "failed"
    problems = {p["where"]: p["message"] for p in job.result["problems"]}
    assert "iscrowd must be 0 or 1" in problems["annotations[0] (id 1)"]
    assert "must be numbers" in problems["annotations[1] (id 2)"]
    assert "must be numbers" in problems["annotations[2] (id 3)"]
    assert "annotations[3] (id 4)" not in problems  # tiny but positive: a valid box
    assert "annotations[4] (id 5)" in problems
    assert not Annotation.objects.exists()


# --- Label Studio ---------------------------------------------------------------------------


def test_label_studio_export_converts_with_label_studio_converter(team, version, tmp_path):
    import label_studio_converter as converter_module

    Converter = converter_module.Converter
    from label_studio_converter import brush

    label(team["lead"], version, schema(team["lead"], team["project"]))
    zf = archive(export(team["lead"], version, "labelstudio"))
    (tmp_path / "tasks.json").write_bytes(zf.read("tasks.json"))
    (tmp_path / "config.xml").write_bytes(zf.read("config.xml"))
    converter = Converter(str(tmp_path / "config.xml"), str(tmp_path), download_resources=False)
    converter.convert_to_coco(str(tmp_path / "tasks.json"), str(tmp_path / "coco"), is_dir=False)
    result = json.loads((tmp_path / "coco" / "result.json").read_text())
    names = {c["id"]: c["name"] for c in result["categories"]}
    files = {i["id"]: os.path.basename(i["file_name"]) for i in result["images"]}
    theirs = sorted(
        (files[a["image_id"]], names[a["category_id"]], tuple(np.round(a["bbox"], 6)))
        for a in result["annotations"]
        if names[a["category_id"]] == "car"
    )
    ours = sorted(
        (a.image.original_name, "car", tuple(np.round(a.geometry["box"], 6)))
        for a in Annotation.objects.filter(kind="box").select_related("image")
    )
    assert theirs == ours
    polygons = [a for a in result["annotations"] if names[a["category_id"]] == "road"]
    assert len(polygons) == Annotation.objects.filter(kind="polygon").count()
    # Brushes: the converter's own RLE decoder gives back Studio's masks pixel for pixel.
    tasks = json.loads(zf.read("tasks.json"))
    masks = Annotation.objects.filter(kind="mask").select_related("image")
    by_region = {f"s{a.pk}": a for a in masks}
    seen = 0
    for task in tasks:
        for r in task["annotations"][0]["result"] if task["annotations"] else []:
            if r["type"] == "brushlabels":
                a = by_region[r["id"]]
                h, w = r["original_height"], r["original_width"]
                alpha = brush.decode_rle(r["value"]["rle"]).reshape(h, w, 4)[:, :, 3] > 127
                assert np.array_equal(alpha, geo.to_mask(a.geometry, "mask", w, h))
                seen += 1
    assert seen == masks.count() == 14


def test_label_studio_upload_paths_and_choices_of_any_control(team, version):
    classes = schema(team["lead"], team["project"])
    box = {"x": 10, "y": 10, "width": 20, "height": 20, "rectanglelabels": ["car"]}
    tasks = [
        {"id": 7, "data": {"image": "/data/upload/3/1a2b3c4d-coffee.jpg"}, "annotations": [{"result": [
            {"id": "r1", "type": "rectanglelabels", "from_name": "label", "value": box},
            {"id": "r1", "type": "choices", "from_name": "colour", "value": {"choices": ["blue"]}},
            {"id": "c1", "type": "choices", "from_name": "choice", "value": {"choices": ["daytime"]}},
        ]}]},
        {"id": 8, "data": {"image": "http://host/data/upload/3/0f0e0d0c-camera.jpg"},
         "annotations": [{"result": [
             {"id": "c2", "type": "choices", "from_name": "weather", "value": {"choices": ["daytime"]}}]}]},
    ]  # fmt: skip
    job = run_import(team["lead"], version, "labelstudio", json.dumps(tasks).encode(), "ls.json")
    assert job.status == "succeeded", (job.error, job.result)
    got = sorted(
        (a.image.original_name, a.label_class.name, repr(a.attributes))
        for a in Annotation.objects.select_related("image", "label_class")
    )
    assert got == [("camera.jpg", "daytime", "{}"), ("coffee.jpg", "car", "{'colour': 'blue'}"),
                   ("coffee.jpg", "daytime", "{}")]  # fmt: skip
    assert classes["car"].pk in set(Annotation.objects.values_list("label_class", flat=True))

    # A choice that names no class is reported, per record; nothing is written.
    tasks[1]["annotations"][0]["result"][0]["value"]["choices"] = ["sunny"]
    tasks[0]["annotations"][0]["result"][1]["value"]["choices"] = ["red", "blue"]
    before = Annotation.objects.count()
    job = run_import(team["lead"], version, "labelstudio", json.dumps(tasks).encode(), "ls.json",
                     mode="append")  # fmt: skip
    assert job.status == "failed"
    problems = {p["where"]: p["message"] for p in job.result["problems"]}
    assert "unknown class 'sunny'" in problems["tasks[1] (id 8) result 0 (id c2)"]
    assert "has 2 choices" in problems["tasks[0] (id 7) result 1 (id r1)"]
    assert Annotation.objects.count() == before


def test_label_studio_huge_numbers_are_problems(team, version):
    schema(team["lead"], team["project"])
    box = {"x": 10**400, "y": 10, "width": 20, "height": 20, "rectanglelabels": ["car"]}
    brushed = {"format": "rle", "rle": [10**400], "brushlabels": ["cell"]}
    tasks = [{"id": 1, "data": {"image": "coffee.jpg"}, "annotations": [{"result": [
        {"id": "a", "type": "rectanglelabels", "value": box},
        {"id": "b", "type": "brushlabels", "value": brushed}]}]}]  # fmt: skip
    job = run_import(team["lead"], version, "labelstudio", json.dumps(tasks).encode(), "t.json")
    assert job.status == "failed"
    problems = {p["where"]: p["message"] for p in job.result["problems"]}
    assert "not numbers" in problems["tasks[0] (id 1) result 0 (id a)"]
    assert "byte values" in problems["tasks[0] (id 1) result 1 (id b)"]


# --- YOLO -----------------------------------------------------------------------------------


def _ultralytics_root(yaml_file: Path, datasets_dir: Path) -> Path:
    """Where Ultralytics (``ultralytics/data/utils.py``, check_det_dataset) puts the dataset
    root of a data.yaml: its ``path``, else the folder of the yaml file; a relative one
    that does not exist from the current directory goes under the datasets directory."""
    data = yaml.safe_load(yaml_file.read_text())
    path = Path(data.get("path") or yaml_file.parent)
    if not path.exists() and not path.is_absolute():
        path = (datasets_dir / path).resolve()
    return path


def test_yolo_export_data_yaml_resolves_from_anywhere_as_ultralytics_does(
    team, version, tmp_path, monkeypatch
):
    label(team["lead"], version, schema(team["lead"], team["project"]))
    zf = archive(export(team["lead"], version, "yolo"))
    root = tmp_path / "unpacked" / "dataset"
    zf.extractall(root)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # training runs from some other folder
    found = _ultralytics_root(root / "data.yaml", tmp_path / "datasets")
    assert found.resolve() == root.resolve()
    doc = yaml.safe_load((root / "data.yaml").read_text())
    listed = (found / doc["train"]).resolve()
    assert listed == (root / "images.txt").resolve()
    # Ultralytics reads "./x" lines of an image list relative to the list's folder.
    first = listed.read_text().splitlines()[0]
    assert first.startswith("./images/")
    image = first.replace("./", str(listed.parent) + os.sep, 1)
    # ... and its labels where the last /images/ becomes /labels/, .txt for the extension.
    label_file = Path(image.replace(f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"))
    assert label_file.with_suffix(".txt").exists()
    assert doc["names"] == {0: "car", 1: "cell", 2: "road"}


def test_yolo_exports_every_mask_whose_pixel_outline_is_exact(team, version):
    from scipy import ndimage

    classes = schema(team["lead"], team["project"])
    rng = np.random.default_rng(7)
    coffee = Image.objects.get(original_name="coffee.jpg")
    made = []
    while len(made) < 20:
        noise = ndimage.gaussian_filter(rng.random((400, 600)), 12) > 0.5 + rng.uniform(0, 0.02)
        labelled, n = ndimage.label(noise, structure=np.ones((3, 3)))
        if not n:
            continue
        piece = labelled == np.bincount(labelled.ravel())[1:].argmax() + 1
        if (ndimage.binary_fill_holes(piece) != piece).any():
            piece = ndimage.binary_fill_holes(piece)
        made.append(annotation_create(actor=team["lead"], image=coffee, label_class=classes["cell"],
                                      geometry=geo.mask_from_array(piece), status="submitted"))  # fmt: skip
    # Two real losses, still reported: a ring (a hole) and two separate pieces.
    ring = np.zeros((400, 600), bool)
    ring[50:150, 50:150] = True
    ring[80:120, 80:120] = False
    pair = np.zeros((400, 600), bool)
    pair[10:20, 10:20] = pair[30:40, 30:40] = True
    lost = [annotation_create(actor=team["lead"], image=coffee, label_class=classes["cell"],
                              geometry=geo.mask_from_array(m), status="submitted") for m in (ring, pair)]  # fmt: skip
    job = export(team["lead"], version, "yolo")
    assert job.result["written"] == {"mask": 20}
    assert sorted(n["annotation"] for n in job.result["not_held"]) == sorted(a.pk for a in lost)

    fresh = twin(team["lead"])
    schema(team["lead"], fresh.dataset.project)
    back = run_import(team["lead"], fresh, "yolo", archive_bytes(job), "yolo.zip")
    assert back.status == "succeeded", back.error
    assert shapes(fresh) == shapes(version, {a.pk for a in lost})  # pixel for pixel


def test_yolo_imports_the_ultralytics_layout(team, version):
    schema(team["lead"], team["project"])
    data_yaml = "path: ../datasets/coffee\ntrain: images/train\nval: images/val\nnames:\n  0: car\n  1: road\n"
    archive_data = _zip({
        "coffee-ds/data.yaml": data_yaml,
        "coffee-ds/images/train/coffee.jpg": b"not needed",
        "coffee-ds/labels/train/coffee.txt": "0 0.5 0.5 0.25 0.5\n",
        "coffee-ds/labels/val/camera.txt": "1 0.1 0.1 0.5 0.1 0.5 0.5\n",
        "coffee-ds/labels/train.cache": b"\x00",
    })  # fmt: skip
    job = run_import(team["lead"], version, "yolo", archive_data, "ultralytics.zip")
    assert job.status == "succeeded", (job.error, job.result)
    got = {
        (a.image.original_name, a.kind): a.geometry
        for a in Annotation.objects.select_related("image")
    }
    assert got[("coffee.jpg", "box")] == {"box": [225.0, 100.0, 150.0, 200.0]}
    assert got[("camera.jpg", "polygon")] == {"points": [51.2, 51.2, 256.0, 51.2, 256.0, 256.0]}
    # Roboflow's variant: <split>/labels/..., names as a list.
    roboflow = _zip({"data.yaml": "train: ../train/images\nnames: ['car', 'road']\n",
                     "train/labels/coffee.txt": "0 0.5 0.5 0.25 0.5\n"})  # fmt: skip
    job = run_import(team["lead"], version, "yolo", roboflow, "rf.zip", mode="append")
    assert job.status == "succeeded", (job.error, job.result)
    assert job.result["imported"] == 1 and job.result["duplicates"] == 1
    bad = _zip({"data.yaml": "names: [car\n", "labels/coffee.txt": "0 0.5 0.5 0.2 0.2\n"})
    job = run_import(team["lead"], version, "yolo", bad, "bad.zip")
    assert job.status == "failed" and "not valid YAML" in job.error


@pytest.mark.parametrize("line", ["0 1e999 0.5 0.1 0.1", "9999999999999999999999 0.5 0.5 0.1 0.1",
                                  "0 nan 0.5 0.1 0.1", "0 0.5 0.5 1e-320 0.1"])  # fmt: skip
def test_yolo_extreme_numbers_are_problems_not_crashes(team, version, line):
    schema(team["lead"], team["project"])
    job = run_import(team["lead"], version, "yolo",
                     _zip({"classes.txt": "car\n", "labels/coffee.txt": line + "\n"}), "y.zip")  # fmt: skip
    assert job.status == "failed"  # 1e-320 of the width is 0 px to 1e-9: no width
    assert [p["where"] for p in job.result["problems"]] == ["labels/coffee.txt line 1"]


def test_what_studio_does_not_keep_is_listed_in_the_import_report(team, version):
    schema(team["lead"], team["project"])
    doc = {"images": [{"id": 1, "file_name": "coffee.jpg", "width": 600, "height": 400}],
           "categories": [{"id": 1, "name": "car"}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4],
                            "num_keypoints": 2, "keypoints": [2, 3, 2, 3, 4, 2]}]}  # fmt: skip
    job = run_import(team["lead"], version, "coco", json.dumps(doc).encode(), "kp.json")
    assert job.status == "succeeded" and job.result["imported"] == 1
    assert (
        job.result["not_kept"][0]["message"]
        == "its 2 keypoints are not kept (Studio has no keypoints)"
    )

    box = {"x": 10, "y": 10, "width": 20, "height": 20, "rectanglelabels": ["car"]}
    tasks = [{"id": 1, "data": {"image": "camera.jpg"},
              "annotations": [{"id": 5, "was_cancelled": True,
                               "result": [{"id": "a", "type": "rectanglelabels", "value": box}]}],
              "predictions": [{"result": [{"id": "p", "type": "rectanglelabels", "value": box}]}]}]  # fmt: skip
    job = run_import(team["lead"], version, "labelstudio", json.dumps(tasks).encode(), "t.json")
    assert job.status == "succeeded" and job.result["imported"] == 0
    assert [n["message"][:30] for n in job.result["not_kept"]] == [
        "annotation 5 was cancelled (sk", "1 prediction(s) are not import"]  # fmt: skip

    pose = _zip({"data.yaml": "kpt_shape: [2, 3]\nnames: [car]\n",
                 "labels/coffee.txt": "0 0.5 0.5 0.2 0.2 0.5 0.5 2 0.6 0.6 2\n"})  # fmt: skip
    job = run_import(team["lead"], version, "yolo", pose, "pose.zip")
    assert job.status == "succeeded", job.error
    boxes = Annotation.objects.filter(image__original_name="coffee.jpg", kind="box")
    assert {"box": [240.0, 160.0, 120.0, 80.0]} in [a.geometry for a in boxes]
    assert job.result["not_kept_count"] == 1


def test_yolo_export_reads_in_datumaro_and_datumaro_ultralytics_imports(team, version, tmp_path):
    import datumaro as dm
    from datumaro.components.annotation import AnnotationType, Bbox
    from datumaro.components.media import Image as DmImage
    from PIL import Image as PILImage

    label(team["lead"], version, schema(team["lead"], team["project"]))
    Annotation.objects.filter(kind="box").update(status="accepted")
    root = tmp_path / "studio-yolo"  # datumaro reads YOLO boxes only: export the boxes
    archive(export(team["lead"], version, "yolo", statuses=["accepted"])).extractall(root)
    for image in Image.objects.all():  # the photos go under images/, as data.yaml says
        (root / "images").mkdir(exist_ok=True)
        PILImage.new("RGB", (image.width, image.height)).save(root / "images" / image.original_name)
    dataset = dm.Dataset.import_from(str(root), "yolo")
    names = dataset.categories()[AnnotationType.label]
    theirs = sorted(
        (item.id, names[a.label].name, tuple(np.round(a.get_bbox(), 2)))
        for item in dataset for a in item.annotations if a.type == AnnotationType.bbox
    )  # fmt: skip
    ours = sorted(
        (a.image.original_name.rsplit(".", 1)[0], "car", tuple(np.round(a.geometry["box"], 2)))
        for a in Annotation.objects.filter(kind="box").select_related("image")
    )
    assert [t for t in theirs if t[1] == "car"] == ours

    items = [
        dm.DatasetItem(id="coffee", subset="train", annotations=[Bbox(10, 20, 30, 40, label=0)],
                       media=DmImage.from_numpy(np.zeros((400, 600, 3), np.uint8))),
        dm.DatasetItem(id="camera", subset="val", annotations=[Bbox(100, 50, 200, 10, label=0)],
                       media=DmImage.from_numpy(np.zeros((512, 512, 3), np.uint8))),
    ]  # fmt: skip
    out = tmp_path / "datumaro-yolo"
    dm.Dataset.from_iterable(items, categories=["car"]).export(str(out), "yolo_ultralytics",
                                                               save_media=True)  # fmt: skip
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for f in sorted(out.rglob("*")):
            if f.is_file():
                zf.write(f, f.relative_to(out).as_posix())
    fresh = twin(team["lead"])
    schema(team["lead"], fresh.dataset.project)
    job = run_import(team["lead"], fresh, "yolo", buf.getvalue(), "datumaro.zip")
    assert job.status == "succeeded", (job.error, job.result)
    got = {a.image.original_name: a.geometry["box"]
           for a in Annotation.objects.filter(image__project=fresh.dataset.project)}  # fmt: skip
    assert got.keys() == {"camera.jpg", "coffee.jpg"}
    # datumaro writes normalised values to 6 decimals: 1e-6 of 512 px is 5e-4 px.
    assert np.allclose(got["camera.jpg"], [100, 50, 200, 10], rtol=0, atol=1e-3)
    assert np.allclose(got["coffee.jpg"], [10, 20, 30, 40], rtol=0, atol=1e-3)


def test_cvat_occluded_flag_follows_the_class_attribute_as_datumaro_reads_it(
    team, version, tmp_path
):
    import datumaro as dm
    from datumaro.components.annotation import AnnotationType

    classes = schema(team["lead"], team["project"])
    coffee = Image.objects.get(original_name="coffee.jpg")
    cell = np.zeros((400, 600), bool)
    cell[5:9, 5:9] = True
    annotation_create(actor=team["lead"], image=coffee, label_class=classes["cell"],
                      geometry=geo.mask_from_array(cell), attributes={"occluded": "yes"})  # fmt: skip
    annotation_create(actor=team["lead"], image=coffee, label_class=classes["cell"],
                      geometry=geo.mask_from_array(~cell), attributes={"occluded": "no"})  # fmt: skip
    job = export(team["lead"], version, "cvat")
    (tmp_path / "annotations.xml").write_bytes(archive(job).read("annotations.xml"))
    from PIL import Image as PILImage

    (tmp_path / "images").mkdir()
    for image in Image.objects.all():  # datumaro wants the photos beside the XML
        PILImage.new("RGB", (image.width, image.height)).save(
            tmp_path / "images" / image.original_name
        )
    dataset = dm.Dataset.import_from(str(tmp_path), "cvat")
    flags = sorted(
        (int(a.image.sum()), a.attributes["occluded"])
        for item in dataset for a in item.annotations if a.type == AnnotationType.mask
    )  # fmt: skip
    assert flags == [(16, True), (600 * 400 - 16, False)]
    # A CVAT file that flags a shape occluded, with no attribute element: the class's yes.
    xml = ('<annotations><image id="0" name="coffee.jpg" width="600" height="400">'
           '<box label="car" occluded="1" xtl="1" ytl="2" xbr="3" ybr="4"/></image></annotations>')  # fmt: skip
    classes["car"].attributes = {"occluded": ["true", "false"]}
    classes["car"].save()
    back = run_import(team["lead"], version, "cvat", xml.encode(), "a.xml")
    assert back.status == "succeeded", back.error
    assert Annotation.objects.get(kind="box").attributes == {"occluded": "true"}


def test_yolo_reports_a_mask_whose_outline_is_longer_than_an_import_reads(
    team, version, monkeypatch
):
    classes = schema(team["lead"], team["project"])
    coffee = Image.objects.get(original_name="coffee.jpg")
    comb = np.zeros((400, 600), bool)
    comb[10:390, 299:301] = True  # a spine with teeth both ways, one pixel apart:
    comb[10:390:2, 10:590] = True  # 4 corners a tooth, about 1,500 in all
    stairs = np.tri(400, 600, dtype=bool)  # a staircase of 400 steps: 800 corners
    big = annotation_create(actor=team["lead"], image=coffee, label_class=classes["cell"],
                            geometry=geo.mask_from_array(comb), status="submitted")  # fmt: skip
    annotation_create(actor=team["lead"], image=coffee, label_class=classes["cell"],
                      geometry=geo.mask_from_array(stairs), status="submitted")  # fmt: skip
    import annotation.formats.yolo as yolo

    monkeypatch.setattr(yolo, "MAX_VERTICES", 1000)  # the comb is over, the stairs under
    job = export(team["lead"], version, "yolo")
    assert job.result["written"] == {"mask": 1}
    assert [n["annotation"] for n in job.result["not_held"]] == [big.pk]
    assert "at most 1,000" in job.result["not_held"][0]["reason"]
