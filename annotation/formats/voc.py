"""Pascal VOC: boxes in per-image XML, masks as PNGs (SegmentationObject/Class).

Per image: ``Annotations/<name>.xml`` lists the objects; object *k* (1-based, in XML
order) owns the pixels of value *k* in ``SegmentationObject/<name>.png``; the same
pixels carry the class's index (``labelmap.txt`` order, 0 = background) in
``SegmentationClass/<name>.png``. Boxes are objects without pixels.

Coordinates are VOC's: 1-based pixel indices, ``xmax`` and ``ymax`` inclusive, so a box
that Studio stores as ``[x, y, w, h]`` (0-based, continuous) is written ``xmin = x + 1``,
``xmax = x + w`` and read back the same way (datumaro's ``voc-one-based`` mode, the
devkit's convention). ``truncated``, ``occluded`` and ``difficult`` are VOC's own
elements, written from and read into the class attributes of those names; other
attributes go as CVAT and datumaro write them
(``<attributes><attribute><name/><value/></attribute></attributes>``).

Masks are read as palette (P), grey (L) or RGB PNGs: RGB pixels are mapped back through
the VOC colour map (instances) and the colours of ``labelmap.txt`` (classes), as
datumaro writes them. Instances that no mask-class object of the XML claims (datumaro
writes masks without XML objects) take their class from ``SegmentationClass``.

VOC holds one object per pixel and 254 objects per image: a mask that overlaps an
earlier one, polygons, tags and crowd flags are reported as not held.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from xml.etree import ElementTree as ET  # noqa: S405 - expat refuses entity expansion bombs
from xml.sax.saxutils import escape

import numpy as np

from . import Bundle, Catalog, ExportContext, Format, FormatError, Note, Problem, Record, Row
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
    stems, segmented = [], []
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
            segmented.append(name)
            zf.writestr(f"SegmentationObject/{name}.png", _png(instances))
            zf.writestr(f"SegmentationClass/{name}.png", _png(classes))
    zf.writestr("ImageSets/Main/default.txt", "".join(f"{s}\n" for s in stems))
    # Readers (datumaro, the devkit) find the masks through this list.
    zf.writestr("ImageSets/Segmentation/default.txt", "".join(f"{s}\n" for s in segmented))


FLAGS = ("truncated", "occluded", "difficult")
TRUE = frozenset({"1", "yes", "true", "y", "on"})
# Pascal VOC's own classes: the label map of a dataset that ships no labelmap.txt.
VOC_CLASSES = [
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
]  # fmt: skip
VOID = 255  # VOC's "difficult border" pixels: neither object nor background


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
        ctx.report.crowd_not_held(row, "Pascal VOC")
        native = {
            k: int(str(row.attributes[k]).lower() in TRUE) for k in FLAGS if k in row.attributes
        }
        pose = escape(str(row.attributes.get("pose", "Unspecified")))
        parts.append(
            f"<object><name>{escape(cls.name)}</name><pose>{pose}</pose>"
            + "".join(f"<{k}>{native.get(k, 0)}</{k}>" for k in FLAGS)
            + f"<bndbox><xmin>{num(x + 1)}</xmin><ymin>{num(y + 1)}</ymin>"
            f"<xmax>{num(x + w)}</xmax><ymax>{num(y + h)}</ymax></bndbox>"
        )
        others = {k: v for k, v in row.attributes.items() if k not in (*FLAGS, "pose")}
        if others:
            parts.append(
                "<attributes>"
                + "".join(
                    f"<attribute><name>{escape(k)}</name><value>{escape(str(v))}</value></attribute>"
                    for k, v in others.items()
                )
                + "</attributes>"
            )
        parts.append("</object>")
    parts.append("</annotation>\n")
    return "\n".join(parts)


def _labelmap(bundle: Bundle) -> tuple[list[str], dict[tuple[int, int, int], int]] | str:
    """Class names in index order and their colours, from labelmap.txt (VOC's own without)."""
    found = [n for n in bundle.names() if n.rsplit("/", 1)[-1] == "labelmap.txt"]
    if not found:
        colours = palette()
        return VOC_CLASSES, {tuple(colours[3 * i : 3 * i + 3]): i for i in range(len(VOC_CLASSES))}
    names: list[str] = []
    by_colour: dict[tuple[int, int, int], int] = {}
    for n, line in enumerate(bundle.text(found[0]).splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, _, rest = line.partition(":")
        colour = rest.split(":", 1)[0].strip()
        if colour:
            try:
                rgb = tuple(int(v) for v in colour.split(","))
            except ValueError:
                return f"{found[0]} line {n}: the colour {colour!r} is not r,g,b"
            if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
                return f"{found[0]} line {n}: the colour {colour!r} is not r,g,b"
            by_colour[rgb] = len(names)  # type: ignore[index]
        names.append(name.strip())
    if not by_colour:  # no colours given: VOC's colour map by index, as datumaro reads it
        colours = palette()
        by_colour = {tuple(colours[3 * i : 3 * i + 3]): i for i in range(len(names))}  # type: ignore[misc]
    return names, by_colour


def _load_png(
    bundle: Bundle, path: str, colours: dict[tuple[int, int, int], int]
) -> np.ndarray | str:
    """The PNG's index array: palette and grey PNGs as they are, RGB through ``colours``.

    Its size and pixel count are checked before decoding (``studio.limits``).
    """
    from studio.limits import Rejected, open_image

    try:
        img = open_image(bundle.read(path), max_pixels=bundle.limits.max_pixels, formats=("PNG",))
        if img.mode in ("P", "L"):
            return np.asarray(img)
        if img.mode not in ("RGB", "RGBA"):
            return f"{path} is a {img.mode} image; VOC masks are palette, grey or RGB PNGs"
        rgb = np.asarray(img.convert("RGB")).astype(np.int64)
    except KeyError:
        return f"{path} is missing"
    except (FormatError, Rejected) as exc:
        return f"{path}: {exc}"
    except Exception as exc:  # noqa: BLE001 - a broken PNG is the record's problem
        return f"{path} cannot be read: {exc}"
    packed = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    values, inverse = np.unique(packed, return_inverse=True)
    lookup = {(r << 16) | (g << 8) | b: i for (r, g, b), i in colours.items()}
    indices = []
    for value in values.tolist():
        if value not in lookup:
            r, g, b = value >> 16, (value >> 8) & 255, value & 255
            return f"{path} holds the colour {r},{g},{b}, which the label map does not name"
        indices.append(lookup[value])
    return np.asarray(indices, np.uint8)[inverse.reshape(packed.shape)]


def _flags(obj, where: str) -> dict | str:
    """VOC's own per-object flags as booleans (the importer maps them to the class's values)."""
    found: dict = {}
    for key in FLAGS:
        text = (obj.findtext(key) or "").strip()
        if not text:
            continue
        if text not in ("0", "1"):
            return f"<{key}> is {text!r}; VOC writes 0 or 1"
        found[key] = text == "1"
    pose = (obj.findtext("pose") or "").strip()
    if pose and pose != "Unspecified":
        found["pose"] = pose
    actions = obj.find("actions")  # VOC's action classification: <jumping>1</jumping>, ...
    for el in actions if actions is not None else []:
        text = (el.text or "").strip()
        if text not in ("0", "1"):
            return f"action <{el.tag}> is {text!r}; VOC writes 0 or 1"
        found[el.tag] = text == "1"
    return found


def _bndbox(elem) -> list[float] | str:
    """A ``<bndbox>`` (1-based, inclusive: pixels xmin..xmax) as Studio's [x, y, w, h]."""
    box = elem.find("bndbox")
    try:
        x0, y0, x1, y1 = (float(box.findtext(t)) for t in ("xmin", "ymin", "xmax", "ymax"))
    except (AttributeError, TypeError, ValueError, OverflowError):
        return "a box needs numeric xmin, ymin, xmax and ymax"
    return tidy([x0 - 1, y0 - 1, x1 - x0 + 1, y1 - y0 + 1])


def read(bundle: Bundle, catalog: Catalog) -> Iterator[Record | Problem]:
    files = [n for n in bundle.find(".xml") if "Annotations/" in n]
    names = bundle.names()
    labelmap = any(n.rsplit("/", 1)[-1] == "labelmap.txt" for n in names)
    pngs = set(bundle.find(".png"))
    segmented = [n for n in pngs if "SegmentationObject/" in n or "SegmentationClass/" in n]
    if not bundle.is_zip or not (files or labelmap or segmented):
        raise FormatError("Not a Pascal VOC archive: upload a zip with Annotations/*.xml.")
    label_map = _labelmap(bundle)
    if isinstance(label_map, str):
        raise FormatError(label_map)
    items: dict[tuple[str, str], str | None] = {}  # (prefix, base) -> its XML, if any
    for path in files:
        prefix, base = path.split("Annotations/", 1)
        items[(prefix, base[: -len(".xml")])] = path
    for path in sorted(segmented):
        folder = "SegmentationObject/" if "SegmentationObject/" in path else "SegmentationClass/"
        prefix, base = path.split(folder, 1)
        items.setdefault((prefix, base[: -len(".png")]), None)
    for (prefix, base), path in items.items():
        yield from _item(bundle, catalog, pngs, label_map, prefix, base, path)


def _item(bundle, catalog, pngs, label_map, prefix, base, path) -> Iterator[Record | Problem]:
    class_names, class_colours = label_map
    root = None
    if path is not None:
        try:
            root = ET.fromstring(bundle.read(path))  # noqa: S314 - see the import
        except ET.ParseError as exc:
            yield Problem(path, f"not valid XML: {exc}")
            return
        except FormatError as exc:  # larger than a file read whole may be
            yield Problem(path, str(exc))
            return
        if root.tag != "annotation":
            yield Problem(path, f"the root element is <{root.tag}>, not <annotation>")
            return
    filename = (root.findtext("filename") or "").strip() if root is not None else ""
    image = filename or catalog.by_stem(base) or base
    seg_path = f"{prefix}SegmentationObject/{base}.png"
    cls_path = f"{prefix}SegmentationClass/{base}.png"
    cache: dict[str, np.ndarray | str] = {}

    def load(png: str, colours) -> np.ndarray | str:
        if png not in cache:
            found = _load_png(bundle, png, colours) if png in pngs else f"{png} is missing"
            size = catalog.size(image)
            if (
                not isinstance(found, str)
                and size is not None
                and found.shape != (size[1], size[0])
            ):
                found = (f"{png} is {found.shape[1]}×{found.shape[0]}, "
                         f"the image {size[0]}×{size[1]}")  # fmt: skip
            cache[png] = found
        return cache[png]

    from annotation.geometry import mask_from_array

    claimed: set[int] = set()
    for k, obj in enumerate(root.findall("object") if root is not None else [], start=1):
        where = f"{path} object {k}"
        label = (obj.findtext("name") or "").strip()
        attributes = _flags(obj, where)
        if isinstance(attributes, str):
            yield Problem(where, attributes)
            continue
        attributes.update(
            {
                (a.findtext("name") or "").strip(): (a.findtext("value") or "").strip()
                for a in obj.findall("attributes/attribute")
            }
        )
        # Person layout: each <part> (head, hand, foot) is a box of its own class.
        for j, part in enumerate(obj.findall("part"), start=1):
            values = _bndbox(part)
            if isinstance(values, str):
                yield Problem(f"{where} part {j}", values)
            else:
                name = (part.findtext("name") or "").strip()
                yield Record(f"{where} part {j}", image, name, "box", values, {})
        if obj.find("point") is not None:
            yield Note(where, "its <point> is not kept (Studio has no points)")
        if catalog.kinds.get(label) == "mask":
            instances = load(seg_path, _instance_colours())
            if isinstance(instances, str):
                yield Problem(where, instances)
                continue
            claimed.add(k)
            mask = instances == k
            if not mask.any():
                yield Problem(where, f"object {k} has no pixels in {seg_path}")
                continue
            yield Record(where, image, label, "mask", mask_from_array(mask), attributes)
            continue
        box_values = _bndbox(obj)
        if isinstance(box_values, str):
            yield Problem(where, box_values)
            continue
        yield Record(where, image, label, "box", box_values, attributes)
    yield from _unclaimed(
        load, seg_path, cls_path, pngs, claimed, image, class_names, class_colours
    )


def _unclaimed(load, seg_path, cls_path, pngs, claimed, image, class_names, class_colours):
    """Masks no XML object named: each instance (or, without instances, each class region)
    with its class from SegmentationClass, as datumaro reads them."""
    from annotation.geometry import mask_from_array

    if seg_path not in pngs and cls_path not in pngs:
        return
    classes = load(cls_path, class_colours) if cls_path in pngs else None
    if isinstance(classes, str):
        yield Problem(cls_path, classes)
        return
    if seg_path in pngs:
        instances = load(seg_path, _instance_colours())
        if isinstance(instances, str):
            yield Problem(seg_path, instances)
            return
        values = sorted(set(np.unique(instances).tolist()) - {0, VOID} - claimed)
        where_of, pixels_of = (lambda v: f"{seg_path} instance {v}"), (lambda v: instances == v)
    else:  # class regions only: one mask per class present
        values = sorted(set(np.unique(classes).tolist()) - {0, VOID})
        where_of, pixels_of = (lambda v: f"{cls_path} class {v}"), (lambda v: classes == v)
    for value in values:
        where, mask = where_of(value), pixels_of(value)
        if classes is None:
            yield Problem(where, f"{cls_path} is missing: the instance's class is unknown")
            continue
        found = set(np.unique(classes[mask]).tolist()) - {VOID}
        if len(found) != 1:
            yield Problem(
                where, f"its pixels carry {len(found)} classes in {cls_path}; one expected"
            )
            continue
        index = found.pop()
        if not 0 < index < len(class_names):
            yield Problem(where, f"class index {index} is not in the label map")
            continue
        yield Record(where, image, class_names[index], "mask", mask_from_array(mask), {})


def _instance_colours() -> dict[tuple[int, int, int], int]:
    colours = palette()
    return {tuple(colours[3 * i : 3 * i + 3]): i for i in range(256)}  # type: ignore[misc]


FORMAT = Format(
    name="voc",
    label="Pascal VOC (XML boxes, PNG masks)",
    write=write,
    read=read,
    holds="boxes (1-based), non-overlapping masks (PNG); no polygons, tags or crowd flags",
)
