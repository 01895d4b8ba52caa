"""Pascal VOC: boxes in per-image XML, masks as palette PNGs (SegmentationObject/Class).

Per image: ``Annotations/<name>.xml`` lists the objects; object *k* (1-based, in XML
order) owns the pixels of value *k* in ``SegmentationObject/<name>.png``; the same
pixels carry the class's index (``labelmap.txt`` order, 0 = background) in
``SegmentationClass/<name>.png``. Boxes are objects without pixels. Coordinates are
written as Studio stores them (0-based, continuous), and attributes as CVAT does
(``<attributes><attribute><name/><value/></attribute></attributes>``).

VOC holds one object per pixel and 254 objects per image: a mask that overlaps an
earlier one, polygons and tags are reported as not held.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from xml.etree import ElementTree as ET  # noqa: S405 - expat refuses entity expansion bombs
from xml.sax.saxutils import escape

import numpy as np

from . import Bundle, Catalog, ExportContext, Format, FormatError, Problem, Record, Row
from .shapes import by_image, decode, num, stem, tidy


def palette() -> list[int]:
    """The VOC colour map: 256 colours from the bits of the index."""
    colours = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        colours += [r, g, b]
    return colours


def _png(array: np.ndarray) -> bytes:
    from PIL import Image

    img = Image.fromarray(array, mode="P")
    img.putpalette(palette())
    out = io.BytesIO()
    img.save(out, "PNG", optimize=False)
    return out.getvalue()


def write(zf: zipfile.ZipFile, ctx: ExportContext, rows: Iterator[Row]) -> None:
    shapes = [c for c in ctx.classes if c.kind in ("box", "mask")]
    class_index = {c.id: n for n, c in enumerate(shapes, start=1)}
    colours = palette()
    zf.writestr(
        "labelmap.txt",
        "# label:color_rgb:parts:actions\nbackground:0,0,0::\n"
        + "".join(
            f"{c.name}:{','.join(str(v) for v in colours[3 * n : 3 * n + 3])}::\n"
            for n, c in enumerate(shapes, start=1)
        ),
    )
    stems = []
    for image, mine in by_image(ctx, rows):
        for tag in ctx.tags.get(image.id, []):
            ctx.report.cannot_hold(tag, "Pascal VOC has no image-level tags")
        objects, instances, classes = [], None, None
        for row in mine:
            if row.kind not in ("box", "mask"):
                ctx.report.cannot_hold(row, f"Pascal VOC holds boxes and masks, not {row.kind}s")
                continue
            if len(objects) >= 254:
                ctx.report.cannot_hold(row, "Pascal VOC's object PNG holds at most 254 objects")
                continue
            if row.kind == "mask":
                mask = decode(row.geometry)
                if instances is None:
                    instances = np.zeros(mask.shape, np.uint8)
                    classes = np.zeros(mask.shape, np.uint8)
                if (instances[mask] != 0).any():
                    ctx.report.cannot_hold(
                        row,
                        "the mask overlaps an earlier one; a VOC object PNG has one object per pixel",
                    )
                    continue
                instances[mask] = len(objects) + 1
                classes[mask] = class_index[row.label_class_id]
            objects.append(row)
            ctx.report.wrote(row.kind)
        if not objects:
            continue
        name = stem(image.name)
        stems.append(name)
        zf.writestr(f"Annotations/{name}.xml", _xml(ctx, image, objects, instances is not None))
        if instances is not None:
            zf.writestr(f"SegmentationObject/{name}.png", _png(instances))
            zf.writestr(f"SegmentationClass/{name}.png", _png(classes))
    zf.writestr("ImageSets/Main/default.txt", "".join(f"{s}\n" for s in stems))


def _xml(ctx: ExportContext, image, objects: list[Row], segmented: bool) -> str:
    parts = [
        "<annotation>",
        f"<filename>{escape(image.name)}</filename>",
        f"<size><width>{image.width}</width><height>{image.height}</height><depth>3</depth></size>",
        f"<segmented>{int(segmented)}</segmented>",
    ]
    for row in objects:
        x, y, w, h = row.geometry["box"] if row.kind == "box" else row.bbox
        cls = ctx.class_by_id[row.label_class_id]
        parts.append(
            f"<object><name>{escape(cls.name)}</name><pose>Unspecified</pose>"
            f"<truncated>0</truncated><difficult>0</difficult><occluded>0</occluded>"
            f"<bndbox><xmin>{num(x)}</xmin><ymin>{num(y)}</ymin><xmax>{num(x + w)}</xmax>"
            f"<ymax>{num(y + h)}</ymax></bndbox>"
        )
        if row.attributes:
            parts.append(
                "<attributes>"
                + "".join(
                    f"<attribute><name>{escape(k)}</name><value>{escape(str(v))}</value></attribute>"
                    for k, v in row.attributes.items()
                )
                + "</attributes>"
            )
        parts.append("</object>")
    parts.append("</annotation>\n")
    return "\n".join(parts)


def _load_png(bundle: Bundle, path: str) -> np.ndarray | str:
    """Decode an object PNG, its size and pixel count checked first (``studio.limits``)."""
    from studio.limits import Rejected, open_image

    try:
        img = open_image(bundle.read(path), max_pixels=bundle.limits.max_pixels, formats=("PNG",))
        if img.mode not in ("P", "L"):
            return f"{path} is a {img.mode} image; VOC object masks are palette (P) PNGs"
        return np.asarray(img)
    except KeyError:
        return f"{path} is missing"
    except (FormatError, Rejected) as exc:
        return f"{path}: {exc}"
    except Exception as exc:  # noqa: BLE001 - a broken PNG is the record's problem
        return f"{path} cannot be read: {exc}"


def read(bundle: Bundle, catalog: Catalog) -> Iterator[Record | Problem]:
    files = [n for n in bundle.find(".xml") if "Annotations/" in n]
    labelmap = any(n.rsplit("/", 1)[-1] == "labelmap.txt" for n in bundle.names())
    if not bundle.is_zip or not (files or labelmap):  # a labelmap alone: nothing labelled
        raise FormatError("Not a Pascal VOC archive: upload a zip with Annotations/*.xml.")
    pngs = set(bundle.find(".png"))
    for path in files:
        try:
            root = ET.fromstring(bundle.read(path))  # noqa: S314 - see the import
        except ET.ParseError as exc:
            yield Problem(path, f"not valid XML: {exc}")
            continue
        except FormatError as exc:  # larger than a file read whole may be
            yield Problem(path, str(exc))
            continue
        if root.tag != "annotation":
            yield Problem(path, f"the root element is <{root.tag}>, not <annotation>")
            continue
        base = path.split("Annotations/", 1)[1][: -len(".xml")]
        image = (root.findtext("filename") or "").strip() or catalog.by_stem(base) or base
        prefix = path.split("Annotations/", 1)[0]
        seg_path = f"{prefix}SegmentationObject/{base}.png"
        instances = None
        for k, obj in enumerate(root.findall("object"), start=1):
            where = f"{path} object {k}"
            label = (obj.findtext("name") or "").strip()
            attributes = {
                (a.findtext("name") or "").strip(): (a.findtext("value") or "").strip()
                for a in obj.findall("attributes/attribute")
            }
            if catalog.kinds.get(label) == "mask":
                if instances is None:
                    instances = (
                        _load_png(bundle, seg_path)
                        if seg_path in pngs
                        else f"{seg_path} is missing"
                    )
                if isinstance(instances, str):
                    yield Problem(where, instances)
                    continue
                size = catalog.size(image)
                if size is not None and instances.shape != (size[1], size[0]):
                    yield Problem(where, f"{seg_path} is {instances.shape[1]}×{instances.shape[0]}, "
                                         f"the image {size[0]}×{size[1]}")  # fmt: skip
                    continue
                mask = instances == k
                if not mask.any():
                    yield Problem(where, f"object {k} has no pixels in {seg_path}")
                    continue
                from annotation.geometry import mask_from_array

                yield Record(where, image, label, "mask", mask_from_array(mask), attributes)
                continue
            box = obj.find("bndbox")
            try:
                x0, y0, x1, y1 = (float(box.findtext(t)) for t in ("xmin", "ymin", "xmax", "ymax"))
            except (AttributeError, TypeError, ValueError):
                yield Problem(where, "a box needs numeric xmin, ymin, xmax and ymax")
                continue
            yield Record(where, image, label, "box", tidy([x0, y0, x1 - x0, y1 - y0]), attributes)


FORMAT = Format(
    name="voc",
    label="Pascal VOC (XML boxes, PNG masks)",
    write=write,
    read=read,
    holds="boxes, non-overlapping masks (palette PNG); no polygons or tags",
)
