"""COCO instances JSON: masks as RLE, polygons as segmentation lists, boxes as bbox.

Export writes ``annotations.json`` into the archive with ``images`` and ``categories``
first, so an import reads it in one streaming pass. Image-level tags have no place in
COCO's schema; Studio writes them on the image as ``"tags": [{"category_id", "attributes"}]``
(other tools ignore unknown keys). Each annotation carries its ``attributes`` (as CVAT
does) and ``iscrowd`` (Studio's ``is_crowd``: crowd regions, which COCO evaluation
ignores, are kept on import and written back). A box's ``segmentation`` is its outline
as a polygon, never ``[]``, so pycocotools' ``annToMask`` reads every annotation. Import accepts RLE with string or list counts, polygons and boxes, in any key
order (a file whose ``annotations`` come before ``images`` or ``categories`` is read twice).
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator

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
    unsafe_path,
)
from .shapes import polygon_parts

ENTRY = "annotations.json"
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def write(zf: zipfile.ZipFile, ctx: ExportContext, rows: Iterator[Row]) -> None:
    categories = {c.id: n for n, c in enumerate(ctx.classes, start=1)}
    with zf.open(ENTRY, "w", force_zip64=True) as raw:
        out = _Buffered(raw)
        out.write('{"info":{"description":"Studio export"},"images":[')
        for n, image in enumerate(ctx.images):
            entry = {"id": image.id, "file_name": image.name, "width": image.width,
                     "height": image.height}  # fmt: skip
            tags = ctx.tags.get(image.id)
            if tags:
                entry["tags"] = [
                    {"category_id": categories[t.label_class_id], "attributes": t.attributes}
                    for t in tags
                ]
                for _ in tags:
                    ctx.report.wrote("tag")
            out.write(("," if n else "") + _dumps(entry))
        out.write('],"categories":')
        out.write(
            _dumps(
                [
                    {
                        "id": categories[c.id],
                        "name": c.name,
                        "supercategory": "",
                        "studio_kind": c.kind,
                    }  # fmt: skip
                    for c in ctx.classes
                ]
            )
        )
        out.write(',"annotations":[')
        first = True
        for row in rows:
            if row.kind == "mask":
                segmentation = {"size": row.geometry["size"], "counts": row.geometry["counts"]}
            elif row.kind == "polygon":
                segmentation = polygon_parts(row.geometry)
            else:
                # The box's outline: COCO tools (pycocotools' annToMask, evaluation of
                # segm) read every annotation's segmentation, and an empty one breaks them.
                x, y, w, h = row.geometry["box"]
                segmentation = [[x, y, x + w, y, x + w, y + h, x, y + h]]
            entry = {"id": row.id, "image_id": row.image_id,
                     "category_id": categories[row.label_class_id], "segmentation": segmentation,
                     "area": row.area, "bbox": row.bbox, "iscrowd": int(row.is_crowd),
                     "attributes": row.attributes}  # fmt: skip
            out.write(("" if first else ",") + _dumps(entry))
            first = False
            ctx.report.wrote(row.kind)
        out.write("]}")
        out.flush()


class _Buffered:
    """Collect small writes into ~256 KiB blocks before they reach the zip stream."""

    def __init__(self, raw) -> None:
        self.raw, self.parts, self.size = raw, [], 0

    def write(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text)
        if self.size > 1 << 18:
            self.flush()

    def flush(self) -> None:
        self.raw.write("".join(self.parts).encode("utf-8"))
        self.parts, self.size = [], 0


def _json_entry(bundle: Bundle) -> str:
    names = [n for n in bundle.find(".json") if not n.startswith("__MACOSX/")]
    if len(names) != 1:
        found = ", ".join(names[:5]) or "none"
        raise FormatError(f"A COCO import holds exactly one .json file; found {found}.")
    return names[0]


def _header(images, categories) -> tuple[dict, dict, dict, list[Problem]]:
    problems: list[Problem] = []
    if not isinstance(images, list) or not isinstance(categories, list):
        raise FormatError(
            "Not a COCO instances file: 'images' and 'categories' must be lists "
            "(is it another format's JSON?)."
        )
    by_id: dict = {}
    for n, image in enumerate(images):
        where = f"images[{n}]"
        if (
            not isinstance(image, dict)
            or not isinstance(image.get("id"), int | str)
            or not isinstance(image.get("file_name"), str)
        ):
            problems.append(Problem(where, "an image needs an id (number) and a file_name (text)"))
            continue
        where += f" (id {image['id']})"
        unsafe = unsafe_path(str(image["file_name"]))
        if unsafe:
            problems.append(Problem(where, unsafe))
        elif image["id"] in by_id:
            problems.append(Problem(where, f"duplicate image id {image['id']}"))
        else:
            by_id[image["id"]] = image
    names: dict = {}
    kinds: dict = {}  # category id -> the kind Studio wrote it as (its own exports)
    for n, category in enumerate(categories):
        where = f"categories[{n}]"
        if (
            not isinstance(category, dict)
            or not isinstance(category.get("id"), int | str)
            or "name" not in category
        ):
            problems.append(Problem(where, "a category needs an id (number) and a name"))
        elif category["id"] in names:
            problems.append(Problem(f"{where} (id {category['id']})", "duplicate category id"))
        else:
            names[category["id"]] = str(category["name"])
            if category.get("studio_kind") in ("mask", "polygon", "box", "tag"):
                kinds[category["id"]] = category["studio_kind"]
    return by_id, names, kinds, problems


def read(bundle: Bundle, catalog: Catalog) -> Iterator[Record | Problem]:
    entry = _json_entry(bundle)
    header: dict = {}
    deferred = False
    keys = set()
    with bundle.open(entry) as fh:
        for key, value in jsonstream.top_level(fh, frozenset({"annotations"})):
            keys.add(key)
            if key in ("images", "categories"):
                header[key] = value
            elif key == "annotations":
                if isinstance(value, list | dict | str | int | float) or value is None:
                    raise FormatError("Not a COCO instances file: 'annotations' must be a list.")
                if "images" in header and "categories" in header:
                    images, names, kinds, problems = _header(header["images"], header["categories"])
                    yield from problems
                    yield from _annotations(value, images, names, kinds, catalog)
                else:
                    deferred = True  # its elements are skipped now and read in a second pass
    missing = {"images", "annotations", "categories"} - keys
    if missing:
        raise FormatError(
            f"Not a COCO instances file: no {', '.join(sorted(missing))} "
            f"(top-level keys: {', '.join(sorted(keys)) or 'none'})."
        )
    if deferred:
        images, names, kinds, problems = _header(header["images"], header["categories"])
        yield from problems
        with bundle.open(entry) as fh:
            for key, value in jsonstream.top_level(fh, frozenset({"annotations"})):
                if key == "annotations":
                    yield from _annotations(value, images, names, kinds, catalog)
    yield from _tags(header["images"], names)


def _tags(images: list, names: dict) -> Iterator[Record | Problem]:
    for n, image in enumerate(images):
        if not isinstance(image, dict) or not image.get("tags"):
            continue
        if not isinstance(image["tags"], list):
            yield Problem(f"images[{n}].tags", "tags must be a list")
            continue
        for t, tag in enumerate(image["tags"]):
            where = f"images[{n}].tags[{t}]"
            if (
                not isinstance(tag, dict)
                or not isinstance(tag.get("category_id"), int | str)
                or tag["category_id"] not in names
            ):
                yield Problem(where, "a tag needs a category_id from categories")
                continue
            yield Record(where, str(image.get("file_name", "")), names[tag["category_id"]], "tag",
                         None, tag.get("attributes") or {})  # fmt: skip


def _annotations(
    elements, images: dict, names: dict, written_as: dict, catalog: Catalog
) -> Iterator[Record | Problem]:
    # The hot loop of an import (once per annotation): plain lookups and tuple isinstance
    # checks, which are quicker than ``int | str`` unions.
    kinds = catalog.kinds
    file_names = {key: str(image["file_name"]) for key, image in images.items()}
    ids = (int, str)
    for n, ann in enumerate(elements):
        if type(ann) is not dict or "id" not in ann:
            yield Problem(f"annotations[{n}]", "an annotation needs an id")
            continue
        where = f"annotations[{n}] (id {ann['id']})"
        image_id, category_id = ann.get("image_id"), ann.get("category_id")
        if not isinstance(image_id, ids) or not isinstance(category_id, ids):
            yield Problem(where, "image_id and category_id must be numbers")
            continue
        image = file_names.get(image_id)
        if image is None:
            yield Problem(where, f"image_id {image_id!r} is not in images")
            continue
        label = names.get(category_id)
        if label is None:
            yield Problem(where, f"category_id {category_id!r} is not in categories")
            continue
        attributes = ann.get("attributes") or {}
        if type(attributes) is not dict:
            yield Problem(where, "attributes must be an object")
            continue
        crowd = ann.get("iscrowd", 0)
        if type(crowd) not in (int, bool, float) or crowd not in (0, 1):
            yield Problem(where, f"iscrowd must be 0 or 1; got {crowd!r}")
            continue
        segmentation = ann.get("segmentation")
        wanted = kinds.get(label) or written_as.get(category_id)
        if wanted == "box" or (not segmentation and wanted != "mask"):
            kind, geometry = "box", ann.get("bbox")
        elif type(segmentation) is dict:
            kind, geometry = "mask", segmentation
        elif type(segmentation) is list and segmentation:
            kind = "polygon"
            if type(segmentation[0]) is list and len(segmentation) == 1:
                geometry = segmentation[0]
            else:
                geometry = segmentation
        else:
            yield Problem(where, "no segmentation for a mask class")
            continue
        keypoints = ann.get("num_keypoints")
        if type(keypoints) is int and keypoints > 0:
            yield Note(where, f"its {keypoints} keypoints are not kept (Studio has no keypoints)")
        yield Record(
            where, image, label, kind, geometry, attributes, ref=str(ann["id"]), crowd=bool(crowd)
        )


FORMAT = Format(
    name="coco",
    label="COCO instances (JSON)",
    write=write,
    read=read,
    holds="masks (RLE), polygons, boxes; tags as image-level 'tags' (a Studio convention)",
)
