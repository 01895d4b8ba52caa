"""Label Studio JSON: one task per image, regions in percent of the image size.

A task is ``{"data": {"image": name}, "annotations": [{"result": [...]}]}``. Boxes are
``rectanglelabels`` (``x``, ``y``, ``width``, ``height`` in percent), polygons
``polygonlabels`` (``points`` in percent), tags ``choices`` from the ``tags`` control,
and a region's attributes are ``choices`` results with the region's id and the
attribute's name as ``from_name`` (how Label Studio ties per-region controls to a
region). Masks are ``brushlabels`` in Label Studio's own RLE (``lsbrush.py``), so they
come back pixel for pixel. On import, an image
reference that is a URL or an upload path (``/data/...``) is matched by its file name.
"""

from __future__ import annotations

import json
import posixpath
import re
import zipfile
from collections.abc import Iterator
from urllib.parse import unquote, urlparse

from . import (
    Bundle,
    Catalog,
    ExportContext,
    Format,
    FormatError,
    Problem,
    Record,
    Row,
    jsonstream,
    lsbrush,
)
from .shapes import by_image, decode, tidy

ENTRY = "tasks.json"
_dumps = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode


def write(zf: zipfile.ZipFile, ctx: ExportContext, rows: Iterator[Row]) -> None:
    with zf.open(ENTRY, "w", force_zip64=True) as raw:
        raw.write(b"[")
        first = True
        for image, mine in by_image(ctx, rows):
            w, h = image.width, image.height
            result = []
            for row in mine:
                cls = ctx.class_by_id[row.label_class_id].name
                region = f"s{row.id}"
                base = {"id": region, "from_name": "label", "to_name": "image",
                        "original_width": w, "original_height": h, "image_rotation": 0}  # fmt: skip
                if row.kind == "mask":
                    value = {"format": "rle", "rle": lsbrush.encode(decode(row.geometry)),
                             "brushlabels": [cls]}  # fmt: skip
                    result.append({**base, "type": "brushlabels", "value": value})
                elif row.kind == "box":
                    x, y, bw, bh = row.geometry["box"]
                    value = {"x": x / w * 100, "y": y / h * 100, "width": bw / w * 100,
                             "height": bh / h * 100, "rotation": 0, "rectanglelabels": [cls]}  # fmt: skip
                    result.append({**base, "type": "rectanglelabels", "value": value})
                else:
                    p = row.geometry["points"]
                    value = {
                        "points": [
                            [p[k] / w * 100, p[k + 1] / h * 100] for k in range(0, len(p), 2)
                        ],
                        "closed": True,
                        "polygonlabels": [cls],
                    }
                    result.append({**base, "type": "polygonlabels", "value": value})
                for name, chosen in row.attributes.items():
                    result.append({"id": region, "from_name": name, "to_name": "image",
                                   "type": "choices", "value": {"choices": [chosen]}})  # fmt: skip
                ctx.report.wrote(row.kind)
            for tag in ctx.tags.get(image.id, []):
                cls = ctx.class_by_id[tag.label_class_id].name
                result.append({"id": f"s{tag.id}", "from_name": "tags", "to_name": "image",
                               "type": "choices", "value": {"choices": [cls]}})  # fmt: skip
                if tag.attributes:
                    ctx.report.cannot_hold(tag, "Label Studio tags (choices) carry no attributes")
                ctx.report.wrote("tag")
            task = {"id": image.id, "data": {"image": image.name},
                    "annotations": [{"result": result}] if result else []}  # fmt: skip
            raw.write((("" if first else ",\n") + _dumps(task)).encode("utf-8"))
            first = False
        raw.write(b"]\n")


def _image_name(reference: str) -> str:
    if re.match(r"^[a-z][a-z0-9+.-]*://", reference, re.I) or reference.startswith("/data/"):
        parsed = urlparse(reference)
        query = dict(p.split("=", 1) for p in parsed.query.split("&") if "=" in p)
        return posixpath.basename(unquote(query.get("d", parsed.path)))
    return reference


def read(bundle: Bundle, catalog: Catalog) -> Iterator[Record | Problem]:
    names = bundle.find(".json")
    if len(names) != 1:
        raise FormatError(f"A Label Studio import holds one JSON file; found {len(names)}.")
    with bundle.open(names[0]) as fh:
        try:
            tasks = jsonstream.items(fh)
            for n, task in enumerate(tasks):
                yield from _task(n, task, catalog)
        except FormatError as exc:
            if "Expected a JSON list" in str(exc):
                raise FormatError(
                    "Not a Label Studio export: the file is not a JSON list of tasks "
                    "(is it a COCO file?)."
                )
            raise


def _task(n: int, task, catalog: Catalog) -> Iterator[Record | Problem]:
    if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
        yield Problem(f"tasks[{n}]", "a task is an object with 'data'")
        return
    where_task = f"tasks[{n}] (id {task.get('id')})"
    reference = next((v for v in task["data"].values() if isinstance(v, str)), "")
    image = _image_name(reference)
    size = catalog.size(image)
    annotations = task.get("annotations") or []
    if not isinstance(annotations, list) or not all(
        isinstance(a, dict) and isinstance(a.get("result") or [], list) for a in annotations
    ):
        yield Problem(where_task, "'annotations' is a list of objects, each with a 'result' list")
        return
    results = [r for a in annotations for r in a.get("result") or []]
    regions: dict[str, dict] = {}
    extras: dict[str, dict] = {}
    for k, r in enumerate(results):
        where = f"{where_task} result {k} (id {r.get('id') if isinstance(r, dict) else None})"
        if not isinstance(r, dict) or not isinstance(r.get("value"), dict):
            yield Problem(where, "a result is an object with a 'value'")
            continue
        kind, value = r.get("type"), r["value"]
        if kind in ("rectanglelabels", "polygonlabels", "brushlabels"):
            if str(r.get("id")) in regions:
                yield Problem(where, f"duplicate id {r.get('id')} (a region id appears twice)")
                continue
            regions[str(r.get("id"))] = {"where": where, "type": kind, "value": value, "r": r}
        elif kind == "choices" and not _texts(value.get("choices") or []):
            yield Problem(where, "'choices' is a list of text")
        elif kind == "choices" and r.get("from_name") == "tags":
            for choice in value.get("choices") or []:
                yield Record(where, image, choice, "tag", None, {}, ref=None)
        elif kind == "choices":
            extras.setdefault(str(r.get("id")), {})[str(r.get("from_name"))] = (
                value.get("choices") or [None]
            )[0]
        else:
            yield Problem(where, f"result type {kind!r} is not supported")
    for region_id, region in regions.items():
        where, value = region["where"], region["value"]
        labels = value.get(region["type"]) or []
        if not _texts(labels):
            yield Problem(where, f"'{region['type']}' is a list of label names")
            continue
        if len(labels) != 1:
            yield Problem(where, f"a region needs exactly one label; it has {len(labels)}")
            continue
        if size is None:
            w, h = region["r"].get("original_width"), region["r"].get("original_height")
        else:
            w, h = size
        if not w or not h:
            yield Problem(where, f"image {image!r} is not in the version")
            continue
        attributes = extras.get(region_id, {})
        ref = f"{task.get('id')}/{region_id}"
        try:
            if region["type"] == "rectanglelabels":
                if value.get("rotation"):
                    yield Problem(where, "rotated rectangles are not supported")
                    continue
                box = [float(value["x"]) * w / 100, float(value["y"]) * h / 100,
                       float(value["width"]) * w / 100, float(value["height"]) * h / 100]  # fmt: skip
                yield Record(where, image, labels[0], "box", tidy(box), attributes, ref=ref)
            elif region["type"] == "polygonlabels":
                points = [float(v) * (w if i % 2 == 0 else h) / 100
                          for pt in value["points"] for i, v in enumerate(pt)]  # fmt: skip
                yield Record(where, image, labels[0], "polygon", points, attributes, ref=ref)
            else:
                if value.get("format", "rle") != "rle":
                    yield Problem(where, f"brush format {value.get('format')!r} is not supported")
                    continue
                if size is None:
                    # The importer reports the missing image; a size the file declares
                    # for it is not decoded (it could claim any number of pixels).
                    yield Record(where, image, labels[0], "mask", None, attributes, ref=ref)
                    continue
                try:
                    mask = lsbrush.decode(value["rle"], w, h)
                except lsbrush.BrushError as exc:
                    yield Problem(where, str(exc))
                    continue
                from annotation.geometry import mask_from_array

                yield Record(
                    where, image, labels[0], "mask", mask_from_array(mask), attributes, ref=ref
                )
        except (KeyError, TypeError, ValueError, OverflowError):
            yield Problem(where, "its coordinates are missing or not numbers")


def _texts(values) -> bool:
    return isinstance(values, list) and all(isinstance(v, str) for v in values)


FORMAT = Format(
    name="labelstudio",
    label="Label Studio JSON",
    write=write,
    read=read,
    holds="boxes, polygons, masks (brush RLE), tags (choices), attributes",
)
