"""Every format reader turns huge, tiny and wrongly typed values into problems of their
record, never a crash: each import below either succeeds or fails naming its records."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from annotation.models import Annotation
from tests.annotation.exchange_helpers import run_import, schema

BAD = [10**400, -(10**400), 1e308, -1e-320, 5e-324, "1e999", "nan", None, True, [], {}, [1, 2],
       {"a": 1}, "", "x" * 5000, -1, 2**63, 1.5]  # fmt: skip


def _zip(entries: dict[str, str | bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _outcome(job) -> None:
    if job.status == "succeeded":
        return
    assert job.status == "failed"
    assert job.error.startswith("Nothing was imported:"), job.error
    assert job.result.get("problems"), job.result


def _coco(field: str, value) -> bytes:
    ann = {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "iscrowd": 0,
           "segmentation": [[1, 1, 20, 1, 20, 20]], "attributes": {}}  # fmt: skip
    image = {"id": 1, "file_name": "coffee.jpg", "width": 600, "height": 400}
    if field.startswith("bbox"):
        ann["bbox"][int(field[-1])] = value
    elif field.startswith("poly"):
        ann["segmentation"][0][int(field[-1])] = value
    elif field == "rle":
        ann["segmentation"] = {"size": [400, 600], "counts": value}
    elif field == "size":
        ann["segmentation"] = {"size": value, "counts": "PPYo1"}
    else:
        ann[field] = value
    cats = [{"id": 1, "name": "road"}]
    return json.dumps({"images": [image], "categories": cats, "annotations": [ann]}).encode()


@pytest.mark.parametrize("field", ["bbox0", "bbox3", "poly0", "poly5", "rle", "size", "iscrowd",
                                   "attributes", "image_id", "category_id", "segmentation", "id"])  # fmt: skip
def test_coco(team, version, field):
    schema(team["lead"], team["project"])
    for value in BAD:
        _outcome(run_import(team["lead"], version, "coco", _coco(field, value), "c.json"))
    assert Annotation.objects.count() <= len(BAD)


@pytest.mark.parametrize("field", ["x", "width", "points", "rle", "original_width", "choices",
                                   "image", "rotation"])  # fmt: skip
def test_label_studio(team, version, field):
    schema(team["lead"], team["project"])
    for value in BAD:
        box = {"x": 1, "y": 1, "width": 5, "height": 5, "rectanglelabels": ["car"]}
        poly = {"points": [[1, 1], [5, 1], [5, 5]], "polygonlabels": ["road"]}
        brush = {"format": "rle", "rle": [0, 0, 0, 1], "brushlabels": ["cell"]}
        choice = {"choices": ["daytime"]}
        data = {"image": "coffee.jpg"}
        region = {"id": "r", "type": "rectanglelabels", "value": box,
                  "original_width": 600, "original_height": 400}  # fmt: skip
        if field in ("x", "width", "rotation"):
            box[field] = value
        elif field == "points":
            poly["points"] = [[value, 1], [5, 1], [5, 5]]
            region = {"id": "r", "type": "polygonlabels", "value": poly}
        elif field == "rle":
            brush["rle"] = value
            region = {"id": "r", "type": "brushlabels", "value": brush}
        elif field == "original_width":
            data["image"] = "nowhere.jpg"
            region["original_width"] = value
        elif field == "choices":
            choice["choices"] = value
            region = {"id": "c", "type": "choices", "from_name": "tags", "value": choice}
        elif field == "image":
            data["image"] = value
        tasks = [{"id": 1, "data": data, "annotations": [{"result": [region]}]}]
        _outcome(
            run_import(team["lead"], version, "labelstudio", json.dumps(tasks).encode(), "t.json")
        )


def test_cvat_voc_yolo(team, version):
    schema(team["lead"], team["project"])
    for value in BAD:
        text = str(value)[:100]
        xml = (f'<annotations><image id="0" name="coffee.jpg" width="600" height="400">'
               f'<box label="car" xtl="{text}" ytl="1" xbr="9" ybr="9"/>'
               f'<polygon label="road" points="{text},1;5,1;5,5"/>'
               f'<mask label="cell" rle="{text}" left="0" top="0" width="2" height="2"/>'
               f'<mask label="cell" rle="1, 3" left="{text}" top="0" width="{text}" height="2"/>'
               f"</image></annotations>")  # fmt: skip
        _outcome(run_import(team["lead"], version, "cvat", xml.encode(), "a.xml"))
        voc = (f"<annotation><filename>coffee.jpg</filename><object><name>car</name>"
               f"<truncated>{text}</truncated><bndbox><xmin>{text}</xmin><ymin>1</ymin>"
               f"<xmax>9</xmax><ymax>9</ymax></bndbox></object></annotation>")  # fmt: skip
        _outcome(
            run_import(team["lead"], version, "voc", _zip({"Annotations/coffee.xml": voc}), "v.zip")
        )
        yolo = _zip({"classes.txt": "car\nroad\n",
                     "labels/coffee.txt": f"0 {text} 0.5 0.1 0.1\n1 0.1 0.1 {text} 0.1 0.5 0.5\n{text} 0.5 0.5 0.1 0.1\n"})  # fmt: skip
        _outcome(run_import(team["lead"], version, "yolo", yolo, "y.zip"))
