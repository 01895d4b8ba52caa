"""The pieces under the formats: batch validation agrees with geometry, the JSON stream."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from pycocotools import mask as coco

from annotation import geometry as geo
from annotation.formats import FormatError, jsonstream, unsafe_path
from annotation.formats.cvat import crop_rle
from annotation.formats.shapes import exact_polygon
from annotation.formats.validation import validate_many


def _reference(kind, payload, w, h):
    try:
        return geo.validate(kind, payload, w, h)
    except geo.GeometryError as exc:
        return str(exc)


def _cases():
    rng = np.random.default_rng(7)
    items = []
    for t in range(600):
        h, w = int(rng.integers(3, 40)), int(rng.integers(3, 40))
        m = rng.random((h, w)) < rng.random()
        counts = coco.encode(np.asfortranarray(m.astype(np.uint8)))["counts"].decode()
        if t % 7 == 0 and len(counts) > 2:  # a changed last count: sums go wrong
            counts = counts[:-1] + chr(48 + (ord(counts[-1]) - 48 + 1) % 32)
        if t % 11 == 0:
            counts = counts[: len(counts) // 2]
        items.append(("mask", {"size": [h, w], "counts": counts}, w, h))
    for t in range(600):
        n = int(rng.integers(3, 14))
        points = rng.uniform(-1, 50, n * 2).round(2).tolist()
        if t % 9 == 0:
            points[0] = float("nan")
        items.append(("polygon", points, 50, 50))
    for _ in range(400):  # on a small grid: collinear edges, touching vertices, zero areas
        n = int(rng.integers(3, 9))
        items.append(("polygon", rng.integers(0, 6, n * 2).astype(float).tolist(), 50, 50))
    items += [("box", [1, 2, 3, 4], 50, 50), ("box", [48, 2, 3, 4], 50, 50), ("tag", None, 5, 5),
              ("mask", {"size": [2, 2], "counts": [1, 2, 1]}, 2, 2),
              ("mask", {"size": [2, 2], "counts": "0:"}, 2, 2),
              ("polygon", [[0, 0], [10, 0], [10, 10]], 50, 50)]  # fmt: skip
    return items


def test_batch_validation_gives_geometrys_verdicts_and_stored_forms():
    items = _cases()
    ours, theirs = validate_many(items), [_reference(*i) for i in items]
    valid = 0
    for item, a, b in zip(items, ours, theirs, strict=True):
        assert isinstance(a, str) == isinstance(b, str), (item, a, b)
        if not isinstance(a, str):
            valid += 1
            assert (a.kind, a.data, a.bbox) == (b.kind, b.data, b.bbox), item
            assert a.area == pytest.approx(b.area)
    assert 300 < valid < len(items) - 100  # both kinds of verdict are exercised


def test_rle_that_does_not_cover_the_image_is_refused_with_the_sums():
    rle = geo.mask_from_array(np.ones((4, 5), bool))
    assert validate_many([("mask", rle, 5, 4)])[0].area == 20
    short = coco.encode(np.asfortranarray(np.ones((4, 4), np.uint8)))["counts"].decode()
    assert validate_many([("mask", {"size": [4, 5], "counts": short}, 5, 4)]) == [
        "Mask counts sum to 16, not height × width = 20."
    ]
    assert validate_many([("mask", {"size": [4, 5], "counts": "é0"}, 5, 4)]) == [
        "The mask counts cannot be decoded: not a COCO RLE string."
    ]


def test_json_stream_reads_elements_across_window_edges(monkeypatch):
    monkeypatch.setattr(jsonstream, "READ", 7)
    doc = {"images": [{"id": 1, "file_name": "é.jpg"}], "annotations": [
        {"id": n, "v": 12345678901234 + n, "s": "x" * n} for n in range(40)], "categories": []}  # fmt: skip
    seen = {}
    for key, value in jsonstream.top_level(
        io.BytesIO(json.dumps(doc).encode()), frozenset({"annotations"})
    ):
        seen[key] = list(value) if key == "annotations" else value
    assert seen == doc
    assert list(jsonstream.items(io.BytesIO(b" [1, 22, 333] "))) == [1, 22, 333]
    with pytest.raises(FormatError, match="not valid JSON"):
        list(jsonstream.items(io.BytesIO(b"[1, 2")))
    with pytest.raises(FormatError, match="expected a JSON object"):
        list(jsonstream.top_level(io.BytesIO(b"[]"), frozenset()))


@pytest.mark.parametrize("read", [64, 300, 1 << 20])
def test_json_stream_decodes_many_elements_at_once_only_at_real_boundaries(monkeypatch, read):
    """The bulk path cuts at the window's last "}, {": inside strings and nested lists of
    objects that text is no boundary; NaN (which msgspec refuses) goes the careful way."""
    monkeypatch.setattr(jsonstream, "READ", read)
    monkeypatch.setattr(jsonstream, "TAIL", 40)
    bulk = []
    real = jsonstream._decode_list

    def counted(text):
        decoded = real(text)
        bulk.extend(decoded)
        return decoded

    monkeypatch.setattr(jsonstream, "_decode_list", counted)
    elements = []
    for n in range(300):
        element = {"id": n, "text": "a}, {b" * (n % 4), "parts": [{"x": n}, {"y": [n, {}]}]}
        if n in (3, 295):
            element["v"] = float("nan")
        elements.append(element)
    for indent in (None, 2):
        text = json.dumps(elements, indent=indent, ensure_ascii=False)
        got = list(jsonstream.items(io.BytesIO(text.encode())))
        assert json.dumps(got) == json.dumps(elements)  # NaN != NaN: compare the text
    assert len(bulk) > 200  # many elements came by the bulk path, around the NaNs
    deep = '[{"a": ' + "[" * 100_000 + "]" * 100_000 + "}]"
    with pytest.raises(FormatError, match="too deeply"):
        list(jsonstream.items(io.BytesIO(deep.encode())))


def test_paths_that_escape_the_dataset_are_named():
    assert unsafe_path("a/b.jpg") is None
    assert "escapes" in unsafe_path("a/../../b.jpg")
    assert "absolute" in unsafe_path("/etc/passwd")
    assert "absolute" in unsafe_path("C:\\x.jpg")
    assert "escapes" in unsafe_path("..\\x.jpg")


def test_masks_become_polygons_only_when_exact():
    square = np.zeros((20, 30), bool)
    square[5:10, 4:12] = True
    assert exact_polygon(square) == [4, 5, 12, 5, 12, 10, 4, 10]
    ring = np.zeros((40, 40), bool)
    ring[5:30, 5:30] = True
    ring[12:20, 12:20] = False
    assert exact_polygon(ring) is None


def test_cvat_crop_rle_starts_with_background():
    m = np.zeros((4, 6), bool)
    m[1, 2:4] = True
    m[2, 3] = True
    runs, left, top, w, h = crop_rle(m)
    assert (left, top, w, h) == (2, 1, 2, 2)
    assert runs == [0, 2, 1, 1]


def test_label_studio_brush_rle_round_trips_and_reads_literal_blocks():
    from annotation.formats import lsbrush

    rng = np.random.default_rng(3)
    mask = rng.random((37, 23)) < 0.3
    assert np.array_equal(lsbrush.decode(lsbrush.encode(mask), 23, 37), mask)
    # A hand-made stream: a 1×1 image, one literal block of 4 words (R, G, B, alpha).
    bits = f"{4:032b}{7:05b}" + "".join(f"{s - 1:04b}" for s in lsbrush.SIZES)
    bits += "0" + "00" + f"{3:03b}" + "".join(f"{v:08b}" for v in (9, 9, 9, 200))
    bits += "0" * (-len(bits) % 8)
    rle = list(int(bits, 2).to_bytes(len(bits) // 8, "big"))
    assert lsbrush.decode(rle, 1, 1).tolist() == [[True]]
    with pytest.raises(lsbrush.BrushError, match="2×1 RGBA image has 8"):
        lsbrush.decode(rle, 2, 1)
