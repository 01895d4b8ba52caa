"""Label Studio JSON: one task per image, regions in percent of the image size.

A task is ``{"data": {"image": name}, "annotations": [{"result": [...]}]}``. Boxes are
``rectanglelabels`` (``x``, ``y``, ``width``, ``height`` in percent), polygons
``polygonlabels`` (``points`` in percent), tags ``choices`` from the ``tags`` control,
and a region's attributes are ``choices`` results with the region's id and the
attribute's name as ``from_name`` (how Label Studio ties per-region controls to a
region). Masks are ``brushlabels`` in Label Studio's own RLE (``lsbrush.py``), so they
come back pixel for pixel. ``config.xml`` beside the tasks is the labeling config of a
project that holds them (one control per kind of region, ``tags``, and one per-region
``Choices`` per attribute), for Label Studio and its converter.

On import, an image reference that is a URL or an upload path (``/data/...``) is
matched by its file name; an upload's name loses the ``<8 hex digits>-`` prefix Label
Studio gives it when the version holds the name without it. A ``choices`` result that
belongs to no region is an image-level choice whatever its control is called: each
chosen name is a tag, and a name that is not a class is reported, never dropped.
"""

from __future__ import annotations

import json
import posixpath
import re
import zipfile
from collections.abc import Iterator
from urllib.parse import unquote, urlparse
from xml.sax.saxutils import quoteattr

from . import (
    Bundle,
    Catalog,
    ExportContext,
    Format,
    FormatError,
    Note,
    Problem,
    Record,
    Row,
    jsonstream,
    lsbrush,
)
from .shapes import by_image, decode, polygon_parts, tidy

ENTRY = "tasks.json"
CONFIG = "config.xml"
# The labeling-config control each kind of region belongs to (names must be unique in a
# config, so boxes, polygons and brushes each have their own).
CONTROLS = {"box": ("RectangleLabels", "label"), "polygon": ("PolygonLabels", "polygon"),
            "mask": ("BrushLabels", "brush")}  # fmt: skip
_dumps = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode


def config(ctx: ExportContext) -> str:
    """The labeling config of a Label Studio project that holds these tasks."""
    lines = ["<View>", '  <Image name="image" value="$image"/>']
    for kind, (tag, name) in CONTROLS.items():
        labels = [c.name for c in ctx.classes if c.kind == kind]
        if labels:
            lines.append(f'  <{tag} name="{name}" toName="image">')
            lines += [f"    <Label value={quoteattr(label)}/>" for label in labels]
            lines.append(f"  </{tag}>")
    tags = [c.name for c in ctx.classes if c.kind == "tag"]
    if tags:
        lines.append('  <Choices name="tags" toName="image" choice="multiple">')
        lines += [f"    <Choice value={quoteattr(t)}/>" for t in tags]
        lines.append("  </Choices>")
    attributes: dict[str, list[str]] = {}
    for c in ctx.classes:
        for name, values in c.attributes.items():
            known = attributes.setdefault(name, [])
            known += [str(v) for v in values if str(v) not in known]
    for name, values in attributes.items():
        lines.append(f'  <Choices name={quoteattr(name)} toName="image" perRegion="true">')
        lines += [f"    <Choice value={quoteattr(v)}/>" for v in values]
        lines.append("  </Choices>")
    lines.append("</View>")
    return "\n".join(lines) + "\n"


def write(zf: zipfile.ZipFile, ctx: ExportContext, rows: Iterator[Row]) -> None:
    zf.writestr(CONFIG, config(ctx))
    with zf.open(ENTRY, "w", force_zip64=True) as raw:
        raw.write(b"[")
        first = True
        for image, mine in by_image(ctx, rows):
            w, h = image.width, image.height
            result = []
            for row in mine:
                cls = ctx.class_by_id[row.label_class_id].name
                region = f"s{row.id}"
                base = {"id": region, "from_name": CONTROLS[row.kind][1], "to_name": "image",
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
                    parts = polygon_parts(row.geometry)
                    if len(parts) > 1:
                        ctx.report.cannot_hold(row, f"Label Studio has no multi-part polygons; "
                                               f"its {len(parts)} parts were written as "
                                               f"{len(parts)} regions")  # fmt: skip
                    for n, p in enumerate(parts):
                        value = {
                            "points": [
                                [p[k] / w * 100, p[k + 1] / h * 100] for k in range(0, len(p), 2)
                            ],
                            "closed": True,
                            "polygonlabels": [cls],
                        }
                        part = {**base, "id": region if n == 0 else f"{region}-{n + 1}"}
                        result.append({**part, "type": "polygonlabels", "value": value})
                ctx.report.crowd_not_held(row, "Label Studio")
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


# Label Studio stores an upload as /data/upload/<project>/<8 hex digits>-<file name>.
_UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-(.+)$")


def _image_name(reference: str, catalog: Catalog) -> str:
    """The image a task refers to: a URL or upload path is matched by its file name, and
    an upload's file name without the prefix Label Studio gave it when that is the one
    the version holds."""
    if re.match(r"^[a-z][a-z0-9+.-]*://", reference, re.I) or reference.startswith("/data/"):
        parsed = urlparse(reference)
        query = dict(p.split("=", 1) for p in parsed.query.split("&") if "=" in p)
        name = posixpath.basename(unquote(query.get("d", parsed.path)))
        prefixed = _UPLOAD_PREFIX.match(name)
        if prefixed and catalog.size(name) is None and catalog.size(prefixed.group(1)):
            return prefixed.group(1)
        return name
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
    data = task["data"]
    reference = data.get("image") if isinstance(data.get("image"), str) else None
    if reference is None:
        reference = next((v for v in data.values() if isinstance(v, str)), "")
    image = _image_name(reference, catalog)
    size = catalog.size(image)
    annotations = task.get("annotations") or []
    if not isinstance(annotations, list) or not all(
        isinstance(a, dict) and isinstance(a.get("result") or [], list) for a in annotations
    ):
        yield Problem(where_task, "'annotations' is a list of objects, each with a 'result' list")
        return
    for a in annotations:
        if a.get("was_cancelled") and a.get("result"):
            yield Note(where_task, f"annotation {a.get('id')} was cancelled (skipped) in Label "
                       "Studio; its results are not imported")  # fmt: skip
    results = [r for a in annotations if not a.get("was_cancelled") for r in a.get("result") or []]
    predictions = task.get("predictions")
    if isinstance(predictions, list) and predictions:
        yield Note(where_task, f"{len(predictions)} prediction(s) are not imported: they are "
                   "model output; import reviewed annotations, or pre-annotate in Studio")  # fmt: skip
    regions: dict[str, dict] = {}
    extras: dict[str, dict] = {}
    chosen: list[tuple[str, str, str, list[str]]] = []
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
        elif kind == "choices":
            choices = value.get("choices")
            if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
                yield Problem(where, "'choices' must be a list of names")
                continue
            chosen.append((where, str(r.get("id")), str(r.get("from_name")), choices))
        else:
            yield Problem(where, f"result type {kind!r} is not supported")
    # A choice tied to a region (same id) is that region's attribute, named by its control
    # (from_name); any other is an image-level choice: each chosen name a tag, whatever its
    # control is called (an unknown class is the importer's problem to report).
    for where, region_id, control, choices in chosen:
        if region_id in regions:
            if len(choices) != 1:
                yield Problem(where, f"attribute {control!r} of region {region_id} has "
                              f"{len(choices)} choices; an attribute takes one")  # fmt: skip
                continue
            extras.setdefault(region_id, {})[control] = choices[0]
        else:
            for choice in choices:
                yield Record(where, image, choice, "tag", None, {}, ref=None)
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
