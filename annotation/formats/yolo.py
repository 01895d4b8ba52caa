"""YOLO (Ultralytics) detection and segmentation labels.

Export writes ``data.yaml`` (``train``/``val`` and ``names``; no ``path``, so Ultralytics
takes the folder that holds ``data.yaml`` as the dataset root wherever it is unpacked:
``path: .`` would mean the current directory), ``classes.txt`` (the class names, index
order), ``images.txt`` (``./images/<name>``, which Ultralytics reads relative to the list
itself) and ``labels/<image name without extension>.txt`` with one line per object:
``class cx cy w h`` for a box, ``class x1 y1 x2 y2 ...`` for a polygon, all normalised to
0–1 by the image size. Put the photos under ``images/`` next to it and it trains as is.

A mask is written as its pixel outline when that polygon reproduces it pixel for pixel
(any mask of one piece without holes: ``shapes.exact_polygon``); otherwise, and for
tags, attributes, crowd flags and the extra parts of multi-part polygons, the report
says what was not held.

Import reads Studio's layout and the Ultralytics one (``data.yaml`` naming the classes,
``images/<split>/...`` and ``labels/<split>/...``, or ``<split>/labels/...``): a label file
is matched to the image with its path below the split folder, or its file name.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator

from annotation.geometry import MAX_VERTICES

from . import Bundle, Catalog, ExportContext, Format, FormatError, Note, Problem, Record, Row
from .shapes import by_image, decode, exact_polygon, num, polygon_parts, stem, tidy


def write(zf: zipfile.ZipFile, ctx: ExportContext, rows: Iterator[Row]) -> None:
    shapes = [c for c in ctx.classes if c.kind != "tag"]
    index = {c.id: n for n, c in enumerate(shapes)}
    names = "\n".join(f"  {n}: {_quote(c.name)}" for n, c in enumerate(shapes))
    zf.writestr("data.yaml", f"train: images.txt\nval: images.txt\nnames:\n{names}\n")
    zf.writestr("classes.txt", "".join(f"{c.name}\n" for c in shapes))
    zf.writestr("images.txt", "".join(f"./images/{i.name}\n" for i in ctx.images))
    for image, mine in by_image(ctx, rows):
        for tag in ctx.tags.get(image.id, []):
            ctx.report.cannot_hold(tag, "YOLO has no image-level tags")
        lines = []
        for row in mine:
            w, h = image.width, image.height
            if row.kind == "box":
                x, y, bw, bh = row.geometry["box"]
                polygons = [[(x + bw / 2) / w, (y + bh / 2) / h, bw / w, bh / h]]
            else:
                if row.kind == "mask":
                    points = exact_polygon(decode(row.geometry))
                    if points is None:
                        ctx.report.cannot_hold(row, "YOLO polygons cannot hold this mask pixel "
                                               "for pixel (it has holes or several pieces)")  # fmt: skip
                        continue
                    if len(points) // 2 > MAX_VERTICES:  # an import would refuse it
                        ctx.report.cannot_hold(row, f"the mask's outline has {len(points) // 2:,} "
                                               f"vertices; a polygon has at most {MAX_VERTICES:,}")  # fmt: skip
                        continue
                    parts = [points]
                else:
                    parts = polygon_parts(row.geometry)
                    if len(parts) > 1:
                        ctx.report.cannot_hold(row, f"YOLO has no multi-part polygons; its "
                                               f"{len(parts)} parts were written as "
                                               f"{len(parts)} objects")  # fmt: skip
                polygons = [[v / (w if k % 2 == 0 else h) for k, v in enumerate(p)] for p in parts]
            if row.attributes:
                ctx.report.cannot_hold(
                    row, "YOLO has no attributes; the shape was written without them"
                )
            ctx.report.crowd_not_held(row, "YOLO")
            for values in polygons:
                lines.append(f"{index[row.label_class_id]} " + " ".join(num(v) for v in values))
            ctx.report.wrote(row.kind)
        if lines:
            zf.writestr(f"labels/{stem(image.name)}.txt", "\n".join(lines) + "\n")


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _names(bundle: Bundle) -> tuple[list[str], int]:
    """The class names, and how many numbers of a line are keypoints (Ultralytics pose
    datasets: ``kpt_shape: [K, 2 or 3]`` in data.yaml; 0 otherwise)."""
    doc = _data_yaml(bundle)
    keypoints = 0
    if isinstance(doc, dict) and doc.get("kpt_shape") is not None:
        shape = doc["kpt_shape"]
        if (not isinstance(shape, list) or len(shape) != 2
                or not all(type(v) is int and v > 0 for v in shape)):  # fmt: skip
            raise FormatError("data.yaml: kpt_shape must be [keypoints, 2 or 3].")
        keypoints = shape[0] * shape[1]
    texts = [n for n in bundle.names() if n.rsplit("/", 1)[-1] in ("classes.txt", "obj.names")]
    if texts:
        names = [line.strip() for line in bundle.text(texts[0]).splitlines() if line.strip()]
        return names, keypoints
    if doc is None:
        raise FormatError(
            "Not a YOLO archive: it needs classes.txt (or obj.names) or data.yaml naming the classes."
        )
    names = doc.get("names") if isinstance(doc, dict) else None
    if isinstance(names, dict):  # {0: person, 1: car}, as Ultralytics writes it
        try:
            ordered = sorted((int(k), v) for k, v in names.items())
        except (TypeError, ValueError):
            raise FormatError("data.yaml: the keys of 'names' must be class indices.")
        if [k for k, _ in ordered] != list(range(len(ordered))):
            raise FormatError("data.yaml: the class indices of 'names' must be 0, 1, 2, ...")
        names = [v for _, v in ordered]
    if not isinstance(names, list) or not names:
        raise FormatError("data.yaml: no 'names' list of classes.")
    return [str(n) for n in names], keypoints


def _data_yaml(bundle: Bundle):
    """The parsed data.yaml (the shallowest one), or None when the archive has none."""
    yamls = sorted(
        (n for n in bundle.names() if n.rsplit("/", 1)[-1] in ("data.yaml", "dataset.yaml")),
        key=lambda n: (n.count("/"), n),
    )
    if not yamls:
        return None
    import yaml

    try:
        return yaml.safe_load(bundle.text(yamls[0]))
    except yaml.YAMLError as exc:
        raise FormatError(f"{yamls[0]} is not valid YAML: {exc}")


def _image_for(relative: str, catalog: Catalog) -> str | None:
    """The image a label file (path below ``labels/``, without .txt) belongs to.

    Ultralytics pairs ``images/<split>/a/b.jpg`` with ``labels/<split>/a/b.txt``: try the
    whole path, then without its leading folders (the split), down to the file name.
    """
    parts = relative.split("/")
    for k in range(len(parts)):
        found = catalog.by_stem("/".join(parts[k:]))
        if found is not None:
            return found
    return None


def read(bundle: Bundle, catalog: Catalog) -> Iterator[Record | Problem]:
    if not bundle.is_zip:
        raise FormatError(
            "Not a YOLO archive: upload a zip of classes.txt or data.yaml and labels/*.txt."
        )
    names, keypoints = _names(bundle)
    labels = [n for n in bundle.find(".txt") if "/labels/" in f"/{n}"]  # none: nothing labelled
    for path in labels:
        relative = f"/{path}".split("/labels/", 1)[1]
        image = _image_for(relative[: -len(".txt")], catalog)
        if image is None:
            yield Problem(
                path, f"no image of the version is named {relative[:-4]!r} (any extension)"
            )
            continue
        size = catalog.size(image)
        if size is None:
            yield Problem(path, f"image {image!r} is not in the version")
            continue
        w, h = size
        for n, line in enumerate(bundle.text(path).splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{path} line {n}"
            parts = line.split()
            try:
                cls = int(parts[0])
                values = [float(v) for v in parts[1:]]
            except (ValueError, OverflowError):
                yield Problem(where, "expected a class index then numbers")
                continue
            if not 0 <= cls < len(names):
                yield Problem(where, f"class index {cls} is not in the {len(names)} class names")
                continue
            if keypoints and len(values) == 4 + keypoints:  # a pose line: box, then keypoints
                yield Note(where, f"its {keypoints} keypoint values are not kept "
                           "(Studio has no keypoints); its box is")  # fmt: skip
                values = values[:4]
            if len(values) == 4:
                cx, cy, bw, bh = values
                yield Record(where, image, names[cls], "box",
                             tidy([(cx - bw / 2) * w, (cy - bh / 2) * h, bw * w, bh * h]))  # fmt: skip
            elif len(values) >= 6 and len(values) % 2 == 0:
                points = [v * (w if k % 2 == 0 else h) for k, v in enumerate(values)]
                yield Record(where, image, names[cls], "polygon", points)
            else:
                yield Problem(
                    where, f"{len(values)} numbers: a box has 4, a polygon an even 6 or more"
                )


FORMAT = Format(
    name="yolo",
    label="YOLO detection and segmentation (Ultralytics)",
    write=write,
    read=read,
    holds="boxes, polygons; masks of one piece without holes (as their exact pixel outline); "
    "no tags, attributes, crowd flags or multi-part polygons",
)
