"""What an import does with the annotations a version already holds: skip, replace, append.

Importing the same file twice must not double a version's annotations without a word.
An import runs in one of three modes, and its report counts what each did:

- ``skip`` (the default, because it is the only mode that can neither double nor lose
  work): a record whose shape is already on the image, in the same class, with the same
  geometry, is not written; the report counts it in ``skipped``. Everything else is added.
- ``replace``: on every image the file labels, the live annotations are deleted (softly:
  each keeps its history and can be restored) and the file's are written; the report
  counts them in ``replaced``. Leads only, since it removes other people's work.
- ``append``: every record is written, as before; the report still counts in
  ``duplicates`` how many were already there.

Shapes are compared in their stored form (masks by their canonical RLE, polygons by
their vertices to the stored 3 decimals, boxes to 1e-6 px), so a file exported by Studio
and imported again matches what it was exported from.
"""

from __future__ import annotations

from django.db.models import F

from annotation import geometry as geo
from annotation.models import Annotation, AnnotationRevision
from annotation.services.labels import snapshot

MODES = ("skip", "replace", "append")


def shape_key(class_id: int, kind: str, data: dict) -> tuple:
    """What makes two annotations of one image the same shape."""
    if kind == "box":
        return class_id, kind, tuple(round(float(v), 6) for v in data["box"])
    if kind == "polygon":
        parts = data.get("parts") or [data["points"]]
        return class_id, kind, tuple(tuple(round(float(v), 3) for v in p) for p in parts)
    if kind == "mask":
        return class_id, kind, data["counts"]
    return class_id, kind


class Existing:
    """The live annotations of the images an import touches, loaded once per image.

    Precondition: used inside the import's transaction, and asked about an image before
    any of the import's own rows for that image are written (the importer checks a batch
    before it queues the batch's rows), so the import never matches its own rows.
    """

    def __init__(self, *, mode: str, actor_id: int | None, dry_run: bool) -> None:
        self.mode, self.actor_id, self.dry_run = mode, actor_id, dry_run
        self.keys: dict[int, set[tuple]] = {}
        self.skipped = self.duplicates = self.replaced = 0

    def load(self, image_ids: set[int]) -> None:
        """Learn (or, replacing, delete) the live annotations of images not seen before."""
        new = image_ids - self.keys.keys()
        if not new:
            return
        for image_id in new:
            self.keys[image_id] = set()
        live = Annotation.objects.filter(image_id__in=new, deleted=False)
        if self.mode == "replace":
            self._delete(list(live))
            return
        for image_id, class_id, kind, data in live.values_list(
            "image_id", "label_class_id", "kind", "geometry"
        ):
            self.keys[image_id].add(shape_key(class_id, kind, data))

    def keep(self, image_id: int, class_id: int, shape: geo.Geometry) -> bool:
        """Say whether the import writes this shape (False: skipped as already there)."""
        known = self.keys[image_id]
        if not known or self.mode == "replace":  # nothing there (the common case): no key
            return True
        if shape_key(class_id, shape.kind, shape.data) not in known:
            return True
        self.duplicates += 1
        if self.mode == "append":
            return True
        self.skipped += 1
        return False

    def _delete(self, annotations: list[Annotation]) -> None:
        self.replaced += len(annotations)
        if not annotations or self.dry_run:
            return
        # An imported annotation that never changed has no create revision yet: write it
        # from its row first, so its history survives the deletion (as labels does).
        has_history = set(
            AnnotationRevision.objects.filter(annotation__in=annotations).values_list(
                "annotation_id", flat=True
            )
        )
        revisions = []
        for a in annotations:
            before = snapshot(a)
            if a.pk not in has_history:
                revisions.append(
                    AnnotationRevision(annotation=a, version=a.version, action="create",
                                       author_id=a.author_id, before=None, after=before)
                )  # fmt: skip
            revisions.append(
                AnnotationRevision(annotation=a, version=a.version + 1, action="delete",
                                   author_id=self.actor_id, before=before,
                                   after={**before, "deleted": True})
            )  # fmt: skip
        Annotation.objects.filter(pk__in=[a.pk for a in annotations]).update(
            deleted=True, version=F("version") + 1
        )
        AnnotationRevision.objects.bulk_create(revisions, batch_size=1000)

    def report(self) -> dict:
        return {"mode": self.mode, "skipped": self.skipped, "replaced": self.replaced,
                "duplicates": self.duplicates}  # fmt: skip
