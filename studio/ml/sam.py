"""Segment Anything: official checkpoints loaded safely, image embeddings cached per image.

The image encoder runs once per image; every further click only runs the prompt encoder
and mask decoder, from the cached embedding. Checkpoints are the official files in the
weights folder, checked against the hash in their names, and read with
``torch.load(weights_only=True)`` (segment-anything's own loader does not do that).
No Django here.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studio.ml.backbones import WeightsError, file_sha256, read_state_dict

# name: (embed dim, depth, heads, global attention blocks, official file name)
SAM_ARCHS: dict[str, tuple[int, int, int, list[int], str | None]] = {
    "vit_b": (768, 12, 12, [2, 5, 8, 11], "sam_vit_b_01ec64.pth"),
    "vit_l": (1024, 24, 16, [5, 11, 17, 23], "sam_vit_l_0b3195.pth"),
    "vit_h": (1280, 32, 16, [7, 15, 23, 31], "sam_vit_h_4b8939.pth"),
    # A small encoder with the package's own modules, for tests and timing (no official file).
    "tiny": (64, 2, 2, [1], None),
}
SAM_HASH = re.compile(r"_([0-9a-f]{6})\.pth$")


def build_sam(arch: str):
    """Build the SAM architecture with random weights, through segment-anything's builder."""
    from segment_anything.build_sam import _build_sam

    if arch not in SAM_ARCHS:
        raise WeightsError(f"Unknown SAM model {arch!r}; choose one of {', '.join(SAM_ARCHS)}.")
    dim, depth, heads, global_attn, _ = SAM_ARCHS[arch]
    return _build_sam(dim, depth, heads, global_attn, checkpoint=None)


def sam_checkpoint_path(arch: str, weights_dir: Path, *, verify: bool = True) -> Path:
    """Return the official checkpoint for ``arch`` in the weights folder, hash-checked.

    ``verify=False`` only checks that the file is there (a quick check before queuing a
    job; the worker verifies the hash when it loads the file).
    """
    if arch not in SAM_ARCHS or SAM_ARCHS[arch][4] is None:
        raise WeightsError(f"SAM {arch!r} has no official checkpoint; use vit_b, vit_l or vit_h.")
    name = SAM_ARCHS[arch][4]
    path = Path(weights_dir) / name
    if not path.is_file():
        raise WeightsError(
            f"Segment Anything {arch} needs the official checkpoint {name} in the weights folder "
            f"{weights_dir} (STUDIO_WEIGHTS_DIR). Until then Studio pre-annotates with GrabCut."
        )
    expected = SAM_HASH.search(name).group(1)
    if verify and not file_sha256(path).startswith(expected):
        raise WeightsError(f"{name} does not match its official SHA-256 ({expected}…); replace it.")
    return path


def load_sam(arch: str, checkpoint: Path, device: str = "cpu"):
    """Load a SAM checkpoint of ``arch`` strictly; raise WeightsError if it does not fit."""
    model = build_sam(arch)
    state = read_state_dict(Path(checkpoint))
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if missing or unexpected or wrong:
        example = (missing or unexpected or wrong)[0]
        raise WeightsError(
            f"{Path(checkpoint).name} is not a SAM {arch} checkpoint "
            f"({len(missing)} missing, {len(unexpected)} unexpected, {len(wrong)} wrong-shaped weights, e.g. {example})."
        )
    model.load_state_dict(state, strict=True)
    return model.eval().to(device)


@dataclass
class _Cached:
    features: object  # torch.Tensor [1, 256, 64, 64]
    original_size: tuple[int, int]
    input_size: tuple[int, int]


class SamSession:
    """A predictor with an LRU cache of image embeddings, keyed by the caller (e.g. image id)."""

    def __init__(self, model, cache_size: int = 32) -> None:
        from segment_anything import SamPredictor

        self.predictor = SamPredictor(model)
        self.cache: OrderedDict[object, _Cached] = OrderedDict()
        self.cache_size = cache_size
        self.encoder_runs = 0
        # One predictor holds the current image's features: requests served by threads of
        # one process take turns, or one image's prompt could meet another's features.
        self.lock = threading.RLock()

    def embed(self, key, image: np.ndarray) -> bool:
        """Run the image encoder for ``key`` unless cached; True when it ran."""
        with self.lock:
            cached = key in self.cache
            self._use(key, image)
            return not cached

    def _use(self, key, image: np.ndarray | None) -> None:
        if key in self.cache:
            self.cache.move_to_end(key)
            c = self.cache[key]
            p = self.predictor
            p.features, p.original_size, p.input_size, p.is_image_set = (
                c.features,
                c.original_size,
                c.input_size,
                True,
            )
            return
        if image is None:
            raise KeyError(key)
        self.predictor.set_image(np.ascontiguousarray(image[..., :3]))
        self.encoder_runs += 1
        p = self.predictor
        self.cache[key] = _Cached(p.features, p.original_size, p.input_size)
        while len(self.cache) > self.cache_size:
            self.cache.popitem(last=False)

    def predict(
        self,
        key,
        image: np.ndarray | None = None,
        *,
        positive: list[tuple[float, float]] = (),
        negative: list[tuple[float, float]] = (),
        box: tuple[float, float, float, float] | None = None,
        multimask: bool = True,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return (masks bool [K, H, W], scores [K]) best first, for points and/or a box [x, y, w, h]."""
        with self.lock:
            return self._predict(key, image, positive, negative, box, multimask)

    def _predict(self, key, image, positive, negative, box, multimask):
        self._use(key, image)
        points = list(positive) + list(negative)
        coords = np.asarray(points, dtype=np.float32) if points else None
        labels = (
            np.asarray([1] * len(positive) + [0] * len(negative), dtype=np.int32)
            if points
            else None
        )
        xyxy = None
        if box is not None:
            x, y, w, h = box
            xyxy = np.asarray([x, y, x + w, y + h], dtype=np.float32)
        masks, scores, _ = self.predictor.predict(
            point_coords=coords, point_labels=labels, box=xyxy, multimask_output=multimask
        )
        order = np.argsort(-scores)
        return masks[order].astype(bool), scores[order]


@dataclass
class AutoMask:
    """One mask of the automatic generator: COCO RLE (string counts) and SAM's own scores."""

    rle: dict
    predicted_iou: float
    stability_score: float
    area: int


def automatic_masks(
    model,
    image: np.ndarray,
    *,
    points_per_side: int = 32,
    pred_iou_thresh: float = 0.88,
    stability_score_thresh: float = 0.95,
    min_mask_region_area: int = 0,
    points_per_batch: int = 64,
) -> list[AutoMask]:
    """Segment everything with segment-anything's SamAutomaticMaskGenerator; best first.

    A grid of ``points_per_side``² point prompts; masks whose predicted IoU or stability is
    under its threshold are dropped (0 keeps all), duplicates removed by box NMS, and with
    ``min_mask_region_area`` > 0 small holes and islands removed. Masks come back as RLE,
    so a large image with many masks does not hold them all as pixel arrays.
    """
    from segment_anything import SamAutomaticMaskGenerator

    generator = SamAutomaticMaskGenerator(
        model,
        points_per_side=points_per_side,
        points_per_batch=points_per_batch,
        pred_iou_thresh=pred_iou_thresh,
        stability_score_thresh=stability_score_thresh,
        min_mask_region_area=min_mask_region_area,
        output_mode="coco_rle",
    )
    records = generator.generate(np.ascontiguousarray(image[..., :3]))
    masks = [
        AutoMask(
            rle={
                "size": list(r["segmentation"]["size"]),
                "counts": _text(r["segmentation"]["counts"]),
            },
            predicted_iou=float(r["predicted_iou"]),
            stability_score=float(r["stability_score"]),
            area=int(r["area"]),
        )
        for r in records
        if r["area"] > 0
    ]
    masks.sort(key=lambda m: (-m.predicted_iou, -m.stability_score))
    return masks


def _text(counts) -> str:
    return counts.decode("ascii") if isinstance(counts, bytes) else str(counts)
