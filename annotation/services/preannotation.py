"""Pre-annotation from prompts: the result is a draft that people accept, edit or delete.

GrabCut runs without any weights, so Studio pre-annotates even with no Segment Anything
checkpoint installed; the draft says which method made it. Human work is never
overwritten: each call adds a new draft.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from django.core.files.storage import default_storage

from annotation import geometry as geo
from annotation.models import Annotation, LabelClass
from annotation.services.labels import annotation_create, require_annotator
from studio.errors import ApplicationError
from studio.limits import open_stored
from studio.ml.clicks import Click, finish
from studio.ml.grabcut import grabcut_mask
from studio.models import Image

MAX_CLICKS = 50


def _clicks(*, clicks, positive, negative, image: Image) -> list[Click]:
    """Return the prompt's clicks in order, each checked to lie on the image.

    ``clicks`` is the ordered list ({"x", "y", "positive"}); the older separate lists are
    read as all ``positive`` clicks first, then all ``negative`` ones.
    """
    if clicks and (positive or negative):
        raise ApplicationError("Send clicks, or positive and negative lists, not both.")
    raw = [
        (c.get("x"), c.get("y"), c.get("positive")) if isinstance(c, dict) else c
        for c in clicks or []
    ]
    raw += [(*_pair(p, "Positive"), True) for p in positive or []]
    raw += [(*_pair(p, "Negative"), False) for p in negative or []]
    out = []
    for x, y, is_positive in raw:
        try:
            x, y = float(x), float(y)
        except (TypeError, ValueError):
            raise ApplicationError("A click has a number x and y.")
        what = "positive" if is_positive else "negative"
        if not (math.isfinite(x) and math.isfinite(y)) or not (
            0 <= x < image.width and 0 <= y < image.height
        ):
            raise ApplicationError(
                f"A {what} click is outside the {image.width}×{image.height} image."
            )
        out.append(Click(x, y, bool(is_positive)))
    if max(sum(c.positive for c in out), sum(not c.positive for c in out), 0) > MAX_CLICKS:
        raise ApplicationError(f"At most {MAX_CLICKS} clicks of each kind.")
    return out


def _pair(p, what: str) -> tuple:
    if not isinstance(p, list | tuple) or len(p) != 2:
        raise ApplicationError(f"{what} clicks are [x, y] pairs.")
    return tuple(p)


_SESSIONS: dict[tuple[str, str], object] = {}


def sam_weights(*, verify: bool = True) -> tuple[str, str]:
    """Return (architecture, checkpoint file) of the configured SAM, without loading it.

    Raise ApplicationError saying which checkpoint to put where. ``verify=False`` skips the
    hash (a quick check in a web request; the worker checks it when it loads the file).
    """
    from django.conf import settings

    from studio.ml.backbones import WeightsError
    from studio.ml.sam import sam_checkpoint_path

    arch = settings.STUDIO["SAM_MODEL"]
    custom = settings.STUDIO.get("SAM_CHECKPOINT")
    if custom:
        if not Path(custom).is_file():
            raise ApplicationError(
                f"STUDIO_SAM_CHECKPOINT names {custom}, which is not there; fix the setting."
            )
        return arch, str(custom)
    try:
        return arch, str(sam_checkpoint_path(arch, settings.STUDIO["WEIGHTS_DIR"], verify=verify))
    except WeightsError as exc:
        raise ApplicationError(str(exc))


def sam_session():
    """Return the process's SAM session (model loaded once), or raise ApplicationError saying
    which checkpoint to put where."""
    from studio.ml.backbones import WeightsError, best_device
    from studio.ml.sam import SamSession, load_sam

    # The hash is checked once, when the file is loaded, not on every click.
    arch, path = sam_weights(verify=False)
    key = (arch, path)
    if key not in _SESSIONS:
        sam_weights(verify=True)
        try:
            session = SamSession(load_sam(arch, path, best_device()))
        except WeightsError as exc:
            raise ApplicationError(str(exc))
        _SESSIONS.clear()
        _SESSIONS[key] = session
    return _SESSIONS[key]


def sam_installed() -> bool:
    """Whether a SAM checkpoint file is in place, without loading it (cheap, for pages)."""
    try:
        sam_weights(verify=False)
    except ApplicationError:
        return False
    return True


def sam_available() -> bool:
    try:
        sam_session()
    except ApplicationError:
        return False
    return True


def _prompts(*, actor, image: Image, label_class: LabelClass, box, positive, negative, clicks):
    """Check who asks, the class and the prompts; return (box or None, ordered clicks)."""
    require_annotator(actor, image.project)
    if label_class.kind != LabelClass.Kind.MASK:
        raise ApplicationError(
            f"{label_class.name!r} is a {label_class.kind} class; click-to-mask needs a mask class."
        )
    ordered = _clicks(clicks=clicks, positive=positive, negative=negative, image=image)
    if box is not None:
        try:
            box = geo.validate("box", box, image.width, image.height).data["box"]
        except geo.GeometryError as exc:
            raise ApplicationError(str(exc))
    if box is None and not any(c.positive for c in ordered):
        raise ApplicationError("Draw a box or click inside the object.")
    return box, ordered


def preannotate_sam(
    *, actor, image: Image, label_class: LabelClass, box=None, positive=(), negative=(),
    clicks=(), previous: Annotation | None = None, previous_clicks: int | None = None,
) -> Annotation:  # fmt: skip
    """Make a draft mask with Segment Anything; the image's embedding is computed once and cached.

    The decoder sees every click at once (``previous`` is not needed); then each click's
    pixel is put on its side, in click order, so the last click wins.
    """
    from django.conf import settings

    box, ordered = _prompts(
        actor=actor, image=image, label_class=label_class, box=box,
        positive=positive, negative=negative, clicks=clicks,
    )  # fmt: skip
    session = sam_session()
    key = (image.pk, image.sha256)
    pixels = None if key in session.cache else _pixels(image)
    masks, scores = session.predict(
        key, pixels, positive=[(c.x, c.y) for c in ordered if c.positive],
        negative=[(c.x, c.y) for c in ordered if not c.positive], box=box, multimask=True,
    )  # fmt: skip
    mask = finish(masks[0], ordered, box)
    if not mask.any():
        raise ApplicationError("Segment Anything found nothing there; add a click or draw a box.")
    return annotation_create(
        actor=actor, image=image, label_class=label_class, geometry=geo.mask_from_array(mask),
        source=Annotation.Source.SAM, source_detail=f"Segment Anything {settings.STUDIO['SAM_MODEL']}",
        confidence=float(min(1.0, max(0.0, scores[0]))),
    )  # fmt: skip


def preannotate_prepare(*, actor, image: Image) -> dict:
    """Run the SAM image encoder before the first click, so that every click is decoder-only.

    The canvas calls this when it opens an image. GrabCut needs no preparation.
    """
    require_annotator(actor, image.project)
    if not sam_available():
        return {"method": "grabcut", "encoded": False}
    session = sam_session()
    key = (image.pk, image.sha256)
    encoded = key not in session.cache and session.embed(key, _pixels(image))
    return {"method": "sam", "encoded": bool(encoded)}


def _pixels(image: Image) -> np.ndarray:
    with default_storage.open(image.file.name, "rb") as fh:
        return np.asarray(open_stored(image, fh.read()).convert("RGB"))


def preannotate(*, method: str = "auto", **kwargs) -> Annotation:
    """Pre-annotate with SAM when its checkpoint is installed (or asked for), else GrabCut."""
    if method == "sam" or (method == "auto" and sam_available()):
        return preannotate_sam(**kwargs)
    if method in ("grabcut", "auto"):
        return preannotate_grabcut(**kwargs)
    raise ApplicationError("The method is auto, sam or grabcut.")


def preannotate_grabcut(
    *, actor, image: Image, label_class: LabelClass, box=None, positive=(), negative=(),
    clicks=(), previous: Annotation | None = None, previous_clicks: int | None = None,
) -> Annotation:  # fmt: skip
    """Make a draft mask with GrabCut from a box and/or ordered clicks (include, exclude).

    With ``previous`` (the draft the first ``previous_clicks`` clicks made, default all but
    the last), only the later clicks are applied to it; a previous draft deleted since is
    ignored and every click is applied from the start, which gives the same mask.
    """
    box, ordered = _prompts(
        actor=actor, image=image, label_class=label_class, box=box,
        positive=positive, negative=negative, clicks=clicks,
    )  # fmt: skip
    start, done = _previous_mask(image, previous, previous_clicks, len(ordered))
    mask = grabcut_mask(
        _pixels(image), box=box, clicks=ordered, previous=start, previous_clicks=done
    )
    if not mask.any():
        raise ApplicationError("GrabCut found nothing there; draw a tighter box or add clicks.")
    return annotation_create(
        actor=actor, image=image, label_class=label_class, geometry=geo.mask_from_array(mask),
        source=Annotation.Source.GRABCUT, source_detail="OpenCV GrabCut (no SAM checkpoint needed)",
    )  # fmt: skip


def _previous_mask(
    image: Image, previous: Annotation | None, previous_clicks: int | None, total: int
) -> tuple[np.ndarray | None, int]:
    """Return (the previous draft's pixels or None, how many clicks it already holds)."""
    if previous is None or previous.deleted:
        return None, 0
    if previous.image_id != image.pk or previous.kind != LabelClass.Kind.MASK:
        raise ApplicationError("The previous draft is a mask on this image.")
    done = total - 1 if previous_clicks is None else previous_clicks
    if not 0 <= done <= total:
        raise ApplicationError(f"previous_clicks is between 0 and the {total} clicks sent.")
    return geo.to_mask(previous.geometry, "mask", image.width, image.height), done


def propagate_tags(*, actor, version, k: int = 5, min_confidence: float = 0.5) -> dict:
    """Pre-fill tags by nearest-neighbour votes among the version's tagged images.

    Images of the version with no tag yet get a **draft** tag: the class most of their
    k nearest tagged neighbours (cosine, in the version's embedding space) carry, with
    that share as its confidence. Ties and shares below ``min_confidence`` are left alone.
    Only accepted or submitted tags vote; nothing people made is changed.
    """
    from collections import Counter

    from annotation.services.curation import _version_vectors, version_space
    from studio.ml import clustering
    from studio.permissions import Capability, require

    require(actor, version.dataset.project, Capability.CONTRIBUTE)
    if not 1 <= k <= 50:
        raise ApplicationError("k is between 1 and 50.")
    space = version_space(version)
    ids, vectors = _version_vectors(version, space)
    tags = Annotation.objects.filter(
        image_id__in=ids.tolist(), kind=LabelClass.Kind.TAG, deleted=False
    )
    voters: dict[int, set[int]] = {}
    for image_id, class_id, status in tags.values_list("image_id", "label_class_id", "status"):
        if status in (Annotation.Status.ACCEPTED, Annotation.Status.SUBMITTED):
            voters.setdefault(image_id, set()).add(class_id)
    tagged_at_all = set(tags.values_list("image_id", flat=True))
    voter_rows = [r for r, i in enumerate(ids.tolist()) if len(voters.get(i, ())) == 1]
    target_rows = [r for r, i in enumerate(ids.tolist()) if i not in tagged_at_all]
    if not voter_rows:
        raise ApplicationError(
            "Tag some images first (submitted or accepted): their neighbours vote."
        )
    if not target_rows:
        return {"tagged": 0, "left": 0}
    _, nearest = clustering.knn(
        vectors[voter_rows], k=min(k, len(voter_rows)), queries=vectors[target_rows]
    )
    classes = {
        c.pk: c
        for c in LabelClass.objects.filter(
            project=version.dataset.project, kind=LabelClass.Kind.TAG
        )
    }
    made, left = 0, 0
    for row, found in zip(target_rows, nearest, strict=True):
        votes = Counter(next(iter(voters[int(ids[voter_rows[j]])])) for j in found if j >= 0)
        (best, count), *rest = votes.most_common() or [(None, 0)]
        share = count / max(1, sum(votes.values()))
        if best is None or share < min_confidence or (rest and rest[0][1] == count):
            left += 1
            continue
        annotation_create(
            actor=actor, image=Image.objects.get(pk=int(ids[row])), label_class=classes[best], geometry=None,
            source=Annotation.Source.MODEL, confidence=round(share, 3),
            source_detail=f"nearest-neighbour tag propagation (k={k}, {space.backbone})",
        )  # fmt: skip
        made += 1
    return {"tagged": made, "left": left}
