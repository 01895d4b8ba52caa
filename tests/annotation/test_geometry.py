"""Annotation geometry validation and canonical forms (annotation/geometry.py)."""

from __future__ import annotations

import numpy as np
import pytest

from annotation import geometry as g


def test_mask_round_trips_pixel_for_pixel_and_derives_area_and_box():
    mask = np.zeros((40, 60), bool)
    mask[5:15, 10:30] = True
    mask[20, 50] = True
    rle = g.mask_from_array(mask)
    geo = g.validate("mask", rle, 60, 40)
    assert geo.area == 201 and geo.bbox == (10.0, 5.0, 41.0, 16.0)
    assert (g.to_mask(geo, "mask", 60, 40) == mask).all()


def test_uncompressed_counts_must_cover_the_image():
    ok = g.validate("mask", {"size": [2, 3], "counts": [1, 2, 3]}, 3, 2)
    assert ok.area == 2
    with pytest.raises(g.GeometryError, match="sum to 5"):
        g.validate("mask", {"size": [2, 3], "counts": [1, 2, 2]}, 3, 2)
    with pytest.raises(g.GeometryError, match="image is"):
        g.validate("mask", {"size": [3, 3], "counts": [9]}, 3, 2)
    with pytest.raises(g.GeometryError, match="empty"):
        g.validate("mask", {"size": [2, 3], "counts": [6]}, 3, 2)
    with pytest.raises(g.GeometryError, match="non-ASCII"):
        g.validate("mask", {"size": [2, 3], "counts": "0é1"}, 3, 2)


@pytest.mark.parametrize(
    ("points", "message"),
    [
        ([0, 0, 10, 0, 10, 10, 0, 10, 5], "pairs"),
        ([0, 0, 10, 0], "at least 3"),
        ([0, 0, 10, 0, 10, 10, 0, float("nan")], "NaN"),
        ([0, 0, 10, 0, 10, 10, 0, 200], "outside"),
        ([0, 0, 10, 10, 10, 0, 0, 10], "crosses itself"),
        ([0, 0, 5, 0, 10, 0], "no area"),
        (list(range(2 * (g.MAX_VERTICES + 1))), "at most"),
    ],
)
def test_bad_polygons_are_named(points, message):
    with pytest.raises(g.GeometryError, match=message):
        g.validate("polygon", points, 100, 100)


def test_polygon_and_box_rasterise_and_boxes_are_checked():
    square = g.validate("polygon", [[10, 10], [30, 10], [30, 20], [10, 20]], 50, 40)
    assert square.area == 200 and square.bbox == (10.0, 10.0, 20.0, 10.0)
    # Pixel centres inside the polygon: exactly columns 10-29 of rows 10-19, nothing else.
    expected = np.zeros((40, 50), dtype=bool)
    expected[10:20, 10:30] = True
    assert np.array_equal(g.to_mask(square, "polygon", 50, 40).astype(bool), expected)
    b = g.validate("box", [5, 5, 10, 10], 50, 40)
    assert g.to_mask(b, "box", 50, 40).sum() == 100
    for bad, message in [
        ([0, 0, -1, 5], "positive"),
        ([45, 0, 10, 5], "outside"),
        ([1, 2, 3], r"\[x, y"),
    ]:
        with pytest.raises(g.GeometryError, match=message):
            g.validate("box", bad, 50, 40)
    with pytest.raises(g.GeometryError, match="Unknown geometry kind"):
        g.validate("circle", [], 50, 40)
