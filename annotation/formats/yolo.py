"""YOLO (Ultralytics) detection and segmentation labels.

The archive holds ``data.yaml`` and ``classes.txt`` (the class names, index order),
``images.txt`` (the image names) and ``labels/<image name without extension>.txt`` with
one line per object: ``class cx cy w h`` for a box, ``class x1 y1 x2 y2 ...`` for a
polygon, all normalised to 0–1 by the image size. A mask is written as a polygon only
when one reproduces it pixel for pixel; otherwise it is reported as not held. Tags and
attributes have no place in YOLO and are reported.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator

from . import Bundle, Catalog, ExportContext, Format, FormatError, Problem, Record, Row
from .shapes import by_image, decode, exact_polygon, num, stem, tidy


def write(zf: zipfile.ZipFile, ctx: ExportContext, rows: Iterator[Row]) -> None:
    shapes = [c for c in ctx.classes if c.kind != "tag"]
    index = {c.id: n for n, c in enumerate(shapes)}
    names = "\n".join(f"  {n}: {_quote(c.name)}" for n, c in enumerate(shapes))
    zf.writestr("data.yaml", f"path: .\ntrain: images.txt\nval: images.txt\nnames:\n{names}\n")
    zf.writestr("classes.txt", "".join(f"{c.name}\n" for c in shapes))
    zf.writestr("images.txt", "".join(f"images/{i.name}\n" for i in ctx.images))
    for image, mine in by_image(ctx, rows):
        for tag in ctx.tags.get(image.id, []):
            ctx.report.cannot_hold(tag, "YOLO has no image-level tags")
        lines = []
        for row in mine:
            w, h = image.width, image.height
            if row.kind == "box":
                x, y, bw, bh = row.geometry["box"]
                values = [(x + bw / 2) / w, (y + bh / 2) / h, bw / w, bh / h]
            else:
                points = row.geometry.get("points")
                if row.kind == "mask":
                    points = exact_polygon(decode(row.geometry))
                    if points is None:
                        ctx.report.cannot_hold(
                            row, "YOLO polygons cannot hold this mask pixel for pixel"
                        )
                        continue
                values = [v / (w if k % 2 == 0 else h) for k, v in enumerate(points)]
            if row.attributes:
                ctx.report.cannot_hold(
                    row, "YOLO has no attributes; the shape was written without them"
                )
            lines.append(f"{index[row.label_class_id]} " + " ".join(num(v) for v in values))
            ctx.report.wrote(row.kind)
        if lines:
            zf.writestr(f"labels/{stem(image.name)}.txt", "\n".join(lines) + "\n")


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _names(bundle: Bundle) -> list[str]:
    texts = [n for n in bundle.names() if n.rsplit("/", 1)[-1] in ("classes.txt", "obj.names")]
    if texts:
        return [line.strip() for line in bundle.text(texts[0]).splitlines() if line.strip()]
    yamls = [n for n in bundle.names() if n.rsplit("/", 1)[-1] in ("data.yaml", "dataset.yaml")]
    if not yamls:
        raise FormatError(
            "Not a YOLO archive: it needs classes.txt (or obj.names) or data.yaml naming the classes."
        )
    text = bundle.text(yamls[0])
    inline = re.search(r"^names:\s*\[(.*)\]\s*$", text, re.M)
    if inline:
        return [_unquote(v) for v in inline.group(1).split(",") if v.strip()]
    block = re.search(r"^names:\s*\n((?:[ \t]+.*\n?)+)", text, re.M)
    if not block:
        raise FormatError(f"{yamls[0]}: no 'names' list of classes.")
    names = {}
    for line in block.group(1).splitlines():
        item = re.match(r"\s*(?:(\d+)\s*:|-)\s*(.+?)\s*$", line)
        if item:
            names[int(item.group(1)) if item.group(1) else len(names)] = _unquote(item.group(2))
    return [names[k] for k in sorted(names)]


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return text


def read(bundle: Bundle, catalog: Catalog) -> Iterator[Record | Problem]:
    if not bundle.is_zip:
        raise FormatError(
            "Not a YOLO archive: upload a zip of classes.txt or data.yaml and labels/*.txt."
        )
    names = _names(bundle)
    labels = [n for n in bundle.find(".txt") if "/labels/" in f"/{n}"]  # none: nothing labelled
    for path in labels:
        relative = f"/{path}".split("/labels/", 1)[1]
        image = catalog.by_stem(relative[: -len(".txt")])
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
            except ValueError:
                yield Problem(where, "expected a class index then numbers")
                continue
            if not 0 <= cls < len(names):
                yield Problem(where, f"class index {cls} is not in the {len(names)} class names")
                continue
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
    holds="boxes, polygons; masks only when a polygon reproduces them exactly; no tags or attributes",
)
