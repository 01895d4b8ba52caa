"""The canvas's RLE code (static/js/rle.js), run in Node against pycocotools' encoding."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
from pycocotools import mask as coco

RLE_JS = Path(__file__).resolve().parents[2] / "static" / "js" / "rle.js"

SCRIPT = """
const RLE = require(process.argv[1]);
const cases = JSON.parse(require("fs").readFileSync(0, "utf8"));
const out = cases.map(({ rle, w, h }) => {
  const bits = RLE.decode(rle);
  return { on: Array.from(bits.keys()).filter((i) => bits[i]), counts: RLE.encode(bits, w, h),
           extent: RLE.extent(bits, w, h) };
});
process.stdout.write(JSON.stringify(out));
"""


def test_decode_and_encode_match_pycocotools():
    node = shutil.which("node")
    assert node, "Node.js runs the canvas's RLE code in this test"
    rng = np.random.default_rng(4)
    masks = [np.zeros((7, 5), bool), rng.random((37, 53)) > 0.5, np.ones((3, 4), bool)]
    big = np.zeros((300, 400), bool)
    big[50:250, 100:390] = True  # long runs: multi-character counts and negative deltas
    big[120:130, :] = False
    masks.append(big)
    masks[0][2:5, 1:3] = True
    cases = []
    for m in masks:
        rle = coco.encode(np.asfortranarray(m.astype(np.uint8)))
        cases.append({"rle": {"size": list(rle["size"]), "counts": rle["counts"].decode()},
                      "w": m.shape[1], "h": m.shape[0]})  # fmt: skip
    done = subprocess.run(
        [node, "-e", SCRIPT, str(RLE_JS)], input=json.dumps(cases), capture_output=True,
        text=True, check=True, timeout=60,
    )  # fmt: skip
    for m, result in zip(masks, json.loads(done.stdout), strict=True):
        assert result["on"] == np.flatnonzero(m.ravel()).tolist()
        uncompressed = coco.frPyObjects(
            {"size": list(m.shape), "counts": result["counts"]}, *m.shape
        )
        assert np.array_equal(coco.decode(uncompressed).astype(bool), m)
        ys, xs = np.nonzero(m)
        expected = None if not len(xs) else [
            int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)
        ]  # fmt: skip
        assert result["extent"] == expected
