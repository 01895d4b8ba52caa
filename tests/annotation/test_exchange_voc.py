"""Pascal VOC against datumaro, an independent reader and writer of the format."""

from __future__ import annotations

import io
import zipfile

import datumaro as dm
import numpy as np
from datumaro.components.annotation import AnnotationType, Bbox, Mask
from datumaro.components.media import Image as DmImage

from annotation import geometry as geo
from annotation.models import Annotation
from annotation.services.labels import annotation_create
from studio.models import Image
from tests.annotation.exchange_helpers import archive_bytes, export, label, run_import, schema


def _unzip(data: bytes, path) -> str:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        zf.extractall(path)
    return str(path)


def _zip_dir(root) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for f in sorted(root.rglob("*")):
            if f.is_file():
                zf.write(f, f.relative_to(root).as_posix())
    return buf.getvalue()


def _datumaro_items(path) -> dict:
    dataset = dm.Dataset.import_from(path, "voc", coordinate_mode="voc-one-based")
    names = dataset.categories()[AnnotationType.label]
    out: dict = {}
    for item in dataset:
        for a in item.annotations:
            out.setdefault((item.id, names[a.label].name, a.type), []).append(a)
    return out


def test_voc_export_is_one_based_and_datumaro_reads_the_boxes_masks_and_flags(
    team, version, tmp_path
):
    classes = schema(team["lead"], team["project"])
    label(team["lead"], version, classes)
    coffee = Image.objects.get(original_name="coffee.jpg")
    # Whole-pixel boxes, one flagged occluded: VOC's own element, not a CVAT attribute.
    annotation_create(actor=team["lead"], image=coffee, label_class=classes["car"],
                      geometry=[0, 0, 10, 20], status="submitted")  # fmt: skip
    classes["car"].attributes = {**classes["car"].attributes, "occluded": ["yes", "no"]}
    classes["car"].save()
    annotation_create(actor=team["lead"], image=coffee, label_class=classes["car"],
                      geometry=[100, 50, 1, 1], attributes={"occluded": "yes"}, status="submitted")  # fmt: skip
    job = export(team["lead"], version, "voc")
    data = archive_bytes(job)
    xml = zipfile.ZipFile(io.BytesIO(data)).read("Annotations/coffee.xml").decode()
    # The 1×1 box at pixel (100, 50) is pixel (101, 51) in VOC's 1-based terms.
    assert "<xmin>101</xmin><ymin>51</ymin><xmax>101</xmax><ymax>51</ymax>" in xml
    assert "<xmin>1</xmin><ymin>1</ymin><xmax>10</xmax><ymax>20</ymax>" in xml

    found = _datumaro_items(_unzip(data, tmp_path))
    stored = Annotation.objects.filter(kind="box").select_related("image")
    for a in stored:
        stem = a.image.original_name.rsplit(".", 1)[0]
        boxes = [b.get_bbox() for b in found[(stem, "car", AnnotationType.bbox)]]
        x, y, w, h = a.geometry["box"]
        if all(float(v).is_integer() for v in (x, y, w, h)):
            assert [x, y, w, h] in boxes  # exactly
        else:  # datumaro keeps coordinates as float32 rounded to 2 decimals
            want = np.round(np.float32([x, y, w, h]), 2)
            assert any(np.allclose(b, want, rtol=0, atol=1e-4) for b in boxes), (a, boxes)
    flagged = [b for b in found[("coffee", "car", AnnotationType.bbox)] if b.attributes["occluded"]]
    assert [b.get_bbox() for b in flagged] == [[100.0, 50.0, 1.0, 1.0]]
    assert all("occluded" not in (b.attributes.get("attributes") or {}) for b in flagged)
    # Masks: datumaro reads each instance with its class, pixel for pixel.
    for a in Annotation.objects.filter(kind="mask").select_related("image"):
        stem = a.image.original_name.rsplit(".", 1)[0]
        mine = geo.to_mask(a.geometry, "mask", a.image.width, a.image.height)
        theirs = [m.image.astype(bool) for m in found[(stem, "cell", AnnotationType.mask)]]
        overlapping = any(n["annotation"] == a.pk for n in job.result["not_held"])
        assert overlapping or any(np.array_equal(mine, t) for t in theirs)


def test_voc_written_by_datumaro_with_rgb_label_map_masks_imports_exactly(team, version, tmp_path):
    classes = schema(team["lead"], team["project"])
    classes["car"].attributes = {"colour": ["red", "blue"], "truncated": ["yes", "no"]}
    classes["car"].save()
    first = np.zeros((400, 600), bool)
    first[10:50, 20:80] = True
    second = np.zeros((400, 600), bool)
    second[100:150, 200:230] = True
    second[150, 230] = True  # touches diagonally: still one instance
    camera = np.pad(first, ((0, 112), (0, 0)))[:, :512]
    dataset = dm.Dataset.from_iterable(
        [
            dm.DatasetItem(id="coffee", media=DmImage.from_numpy(np.zeros((400, 600, 3), np.uint8)),
                           annotations=[
                               Bbox(10, 20, 30, 40, label=0,
                                    attributes={"truncated": True, "colour": "red"}),
                               Bbox(0, 0, 600, 400, label=0),
                               Mask(first, label=1), Mask(second, label=1)]),
            # A mask-only item: datumaro writes no XML for it, only the PNGs.
            dm.DatasetItem(id="camera", media=DmImage.from_numpy(np.zeros((512, 512, 3), np.uint8)),
                           annotations=[Mask(camera, label=1)]),
        ],
        categories=["car", "cell"],
    )  # fmt: skip
    label_map = {"background": [(0, 0, 0), [], []], "car": [(250, 50, 50), [], []],
                 "cell": [(20, 200, 90), [], []]}  # fmt: skip
    out = tmp_path / "voc"
    dataset.export(str(out), "voc", save_media=False, label_map=label_map,
                   coordinate_mode="voc-one-based")  # fmt: skip
    assert (out / "SegmentationClass" / "coffee.png").exists()
    from PIL import Image as PILImage

    rgb = np.asarray(PILImage.open(out / "SegmentationClass" / "coffee.png").convert("RGB"))
    assert (rgb[20, 30] == (20, 200, 90)).all()  # the label map's colour, in RGB

    job = run_import(team["lead"], version, "voc", _zip_dir(out), "datumaro-voc.zip")
    assert job.status == "succeeded", (job.error, job.result.get("problems"))
    assert job.result["by_kind"] == {"box": 2, "mask": 3}
    boxes = {tuple(a.geometry["box"]): a.attributes for a in Annotation.objects.filter(kind="box")}
    assert boxes == {(10.0, 20.0, 30.0, 40.0): {"truncated": "yes", "colour": "red"},
                     (0.0, 0.0, 600.0, 400.0): {}}  # fmt: skip
    masks = {
        (a.image.original_name, geo.to_mask(a.geometry, "mask", a.image.width, a.image.height).tobytes())
        for a in Annotation.objects.filter(kind="mask").select_related("image")
    }  # fmt: skip
    assert masks == {("coffee.jpg", first.tobytes()), ("coffee.jpg", second.tobytes()),
                     ("camera.jpg", camera.tobytes())}  # fmt: skip


def test_voc_flag_the_class_cannot_hold_is_a_problem_not_dropped(team, version):
    schema(team["lead"], team["project"])
    xml = ("<annotation><filename>coffee.jpg</filename><object><name>car</name>"
           "<difficult>1</difficult><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax>"
           "<ymax>9</ymax></bndbox></object><object><name>car</name><truncated>2</truncated>"
           "<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object>"
           "<object><name>car</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>1e999</xmax>"
           "<ymax>9</ymax></bndbox></object></annotation>")  # fmt: skip
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("Annotations/coffee.xml", xml)
    job = run_import(team["lead"], version, "voc", buf.getvalue(), "v.zip")
    assert job.status == "failed"
    problems = {p["where"]: p["message"] for p in job.result["problems"]}
    assert "has no attribute 'difficult'" in problems["Annotations/coffee.xml object 1"]
    assert "VOC writes 0 or 1" in problems["Annotations/coffee.xml object 2"]
    assert "infinity" in problems["Annotations/coffee.xml object 3"]
    assert not Annotation.objects.exists()


def test_voc_layout_parts_actions_and_points_are_kept_or_reported(team, version):
    from annotation.services.labels import label_class_create

    classes = schema(team["lead"], team["project"])
    classes["car"].attributes = {**classes["car"].attributes, "jumping": ["yes", "no"]}
    classes["car"].save()
    label_class_create(actor=team["lead"], project=team["project"], name="hand", kind="box")
    xml = ("<annotation><filename>coffee.jpg</filename><object><name>car</name>"
           "<bndbox><xmin>11</xmin><ymin>21</ymin><xmax>40</xmax><ymax>60</ymax></bndbox>"
           "<part><name>hand</name><bndbox><xmin>12</xmin><ymin>22</ymin><xmax>15</xmax>"
           "<ymax>25</ymax></bndbox></part>"
           "<actions><jumping>1</jumping><running>0</running></actions>"
           "<point><x>5</x><y>6</y></point></object></annotation>")  # fmt: skip
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("Annotations/coffee.xml", xml)
    job = run_import(team["lead"], version, "voc", buf.getvalue(), "layout.zip")
    assert job.status == "succeeded", (job.error, job.result)
    got = sorted((a.label_class.name, tuple(a.geometry["box"]), repr(a.attributes))
                 for a in Annotation.objects.select_related("label_class"))  # fmt: skip
    assert got == [("car", (10.0, 20.0, 30.0, 40.0), "{'jumping': 'yes'}"),
                   ("hand", (11.0, 21.0, 4.0, 4.0), "{}")]  # fmt: skip
    assert job.result["not_kept"] == [
        {"where": "Annotations/coffee.xml object 1", "message": "its <point> is not kept (Studio has no points)"}
    ]  # fmt: skip
