"""CVAT for images 1.1 (``annotations.xml``): boxes, polygons, masks and tags.

Each ``<image name= width= height=>`` holds ``<box xtl ytl xbr ybr>``, ``<polygon
points="x,y;x,y">``, ``<mask rle left top width height>`` and ``<tag>`` elements, each
with ``<attribute name=>value</attribute>`` children. CVAT's mask RLE is the run
lengths of the mask's crop (``left``, ``top``, ``width``, ``height``) in row-major order,
starting with a background run. The file is written one image at a time and read with
``iterparse``, clearing each image once read, so neither side holds the whole file.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from xml.etree import ElementTree as ET  # noqa: S405 - expat refuses entity expansion bombs
from xml.sax.saxutils import escape, quoteattr

import numpy as np

from . import Bundle, Catalog, ExportContext, Format, FormatError, Problem, Record, Row
from .shapes import by_image, decode, num, polygon_parts, tidy

ENTRY = "annotations.xml"
TRUE = frozenset({"1", "yes", "true", "y", "on"})
TYPES = {"box": "rectangle", "polygon": "polygon", "mask": "mask", "tag": "tag"}


def _attrs(attributes: dict) -> str:
    return "".join(
        f"<attribute name={quoteattr(str(k))}>{escape(str(v))}</attribute>"
        for k, v in attributes.items()
    )


def crop_rle(mask: np.ndarray) -> tuple[list[int], int, int, int, int]:
    """CVAT's mask form: row-major runs of the bounding crop, background first."""
    ys, xs = np.nonzero(mask)
    left, top = int(xs.min()), int(ys.min())
    right, bottom = int(xs.max()), int(ys.max())
    flat = mask[top : bottom + 1, left : right + 1].ravel().astype(np.int8)
    changes = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate(([0], changes, [len(flat)]))
    runs = np.diff(bounds).tolist()
    if flat[0]:
        runs = [0, *runs]
    return runs, left, top, right - left + 1, bottom - top + 1


def write(zf: zipfile.ZipFile, ctx: ExportContext, rows: Iterator[Row]) -> None:
    with zf.open(ENTRY, "w", force_zip64=True) as raw:
        out = _Writer(raw)
        out.write('<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n<version>1.1</version>\n')
        out.write("<meta><task><name>Studio export</name><labels>")
        for c in ctx.classes:
            out.write(
                f"<label><name>{escape(c.name)}</name><type>{TYPES[c.kind]}</type><attributes>"
            )
            for name, values in c.attributes.items():
                out.write(
                    f"<attribute><name>{escape(name)}</name><input_type>select</input_type>"
                    f"<values>{escape(chr(10).join(values))}</values></attribute>"
                )
            out.write("</attributes></label>")
        out.write("</labels></task></meta>\n")
        for n, (image, mine) in enumerate(by_image(ctx, rows)):
            out.write(
                f'<image id="{n}" name={quoteattr(image.name)} width="{image.width}" '
                f'height="{image.height}">\n'
            )
            for row in [*mine, *ctx.tags.get(image.id, [])]:
                label = quoteattr(ctx.class_by_id[row.label_class_id].name)
                inner = _attrs(row.attributes)
                # CVAT's own occluded flag says what the class attribute of that name says.
                occluded = int(str(row.attributes.get("occluded", "")).lower() in TRUE)
                if row.kind != "tag":
                    ctx.report.crowd_not_held(row, "CVAT for images")
                if row.kind == "box":
                    x, y, w, h = row.geometry["box"]
                    out.write(f'<box label={label} source="manual" occluded="{occluded}" xtl="{num(x)}" '
                              f'ytl="{num(y)}" xbr="{num(x + w)}" ybr="{num(y + h)}" z_order="0">'
                              f"{inner}</box>\n")  # fmt: skip
                elif row.kind == "polygon":
                    parts = polygon_parts(row.geometry)
                    if len(parts) > 1:
                        ctx.report.cannot_hold(row, f"CVAT has no multi-part polygons; its "
                                               f"{len(parts)} parts were written as "
                                               f"{len(parts)} polygons")  # fmt: skip
                    for p in parts:
                        points = ";".join(
                            f"{num(p[k])},{num(p[k + 1])}" for k in range(0, len(p), 2)
                        )
                        out.write(f'<polygon label={label} source="manual" occluded="{occluded}" '
                                  f'points="{points}" z_order="0">{inner}</polygon>\n')  # fmt: skip
                elif row.kind == "mask":
                    runs, left, top, w, h = crop_rle(decode(row.geometry))
                    out.write(f'<mask label={label} source="manual" occluded="{occluded}" '
                              f'rle="{", ".join(map(str, runs))}" left="{left}" top="{top}" '
                              f'width="{w}" height="{h}" z_order="0">{inner}</mask>\n')  # fmt: skip
                else:
                    out.write(f'<tag label={label} source="manual">{inner}</tag>\n')
                ctx.report.wrote(row.kind)
            out.write("</image>\n")
        out.write("</annotations>\n")
        out.flush()


class _Writer:
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


def _mask(el, where: str, size) -> dict | str:
    from annotation.geometry import mask_from_array

    try:
        runs = [int(v) for v in el.get("rle", "").replace(" ", "").split(",") if v != ""]
        left, top = int(el.get("left")), int(el.get("top"))
        w, h = int(el.get("width")), int(el.get("height"))
    except (TypeError, ValueError):
        return "a mask needs integer rle, left, top, width and height"
    if size is None:
        return "unknown image size"
    width, height = size
    if min(left, top) < 0 or w <= 0 or h <= 0 or left + w > width or top + h > height:
        return f"the mask's crop goes outside the {width}×{height} image"
    if any(r < 0 for r in runs) or sum(runs) != w * h:
        return f"mask runs sum to {sum(runs):,}, not width × height = {w * h:,}"
    values = np.zeros(len(runs), np.uint8)
    values[1::2] = 1
    crop = np.repeat(values, runs).reshape(h, w).astype(bool)
    mask = np.zeros((height, width), bool)
    mask[top : top + h, left : left + w] = crop
    return mask_from_array(mask)


def read(bundle: Bundle, catalog: Catalog) -> Iterator[Record | Problem]:
    names = [n for n in bundle.find(".xml")]
    if len(names) != 1:
        raise FormatError(f"A CVAT import holds one annotations.xml; found {len(names)} XML files.")
    with bundle.open(names[0]) as fh:
        try:
            events = ET.iterparse(fh, events=("start", "end"))  # noqa: S314 - see the import
            _, root = next(events)
            if root.tag != "annotations":
                raise FormatError(f"Not CVAT for images 1.1: the root element is <{root.tag}>.")
            n = -1
            for event, el in events:
                if event != "end" or el.tag != "image":
                    continue
                n += 1
                yield from _image(el, n, catalog)
                root.clear()
            if n < 0 and root.find("track") is not None:
                raise FormatError(
                    "This is CVAT for video (tracks); export it as CVAT for images 1.1."
                )
        except ET.ParseError as exc:
            raise FormatError(f"Not valid XML: {exc}")


def _image(el, n: int, catalog: Catalog) -> Iterator[Record | Problem]:
    image = el.get("name", "")
    size = catalog.size(image)
    for k, shape in enumerate(el):
        tag = shape.tag
        where = f"image {n} ({image}) <{tag}> {k}"
        label = shape.get("label", "")
        attributes = {a.get("name", ""): (a.text or "") for a in shape.findall("attribute")}
        if shape.get("occluded") == "1":  # CVAT's own flag; the importer maps it to the class
            attributes.setdefault("occluded", True)
        try:
            if tag == "box":
                x0, y0, x1, y1 = (float(shape.get(a)) for a in ("xtl", "ytl", "xbr", "ybr"))
                yield Record(
                    where, image, label, "box", tidy([x0, y0, x1 - x0, y1 - y0]), attributes
                )
            elif tag == "polygon":
                points = [
                    float(v) for pair in shape.get("points", "").split(";") for v in pair.split(",")
                ]
                yield Record(where, image, label, "polygon", points, attributes)
            elif tag == "mask":
                mask = _mask(shape, where, size)
                if isinstance(mask, str):
                    yield Problem(where, mask)
                else:
                    yield Record(where, image, label, "mask", mask, attributes)
            elif tag == "tag":
                yield Record(where, image, label, "tag", None, attributes)
            else:
                yield Problem(where, f"<{tag}> is not supported (box, polygon, mask and tag are)")
        except (TypeError, ValueError, OverflowError):
            yield Problem(where, "its coordinates are not numbers")


FORMAT = Format(
    name="cvat",
    label="CVAT for images 1.1 (XML)",
    write=write,
    read=read,
    holds="boxes, polygons, masks (CVAT crop RLE), tags, attributes",
)
