"""The label schema and annotations: every change is a revision; stale saves get a 409.

``annotation_update`` takes the version the client last saw and updates the row only if
it is still that version (a conditional UPDATE), so two people editing the same
annotation cannot overwrite each other: the second gets ``StaleAnnotation`` carrying the
current state.
"""

from __future__ import annotations

import re
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import BooleanField, Exists, ExpressionWrapper, F, OuterRef, Subquery
from django.utils import timezone

from annotation import geometry as geo
from annotation.models import (
    Annotation,
    AnnotationQueue,
    AnnotationRevision,
    LabelClass,
    QueueItem,
)
from studio.errors import ApplicationError, Conflict, Locked
from studio.models import Image, Project
from studio.permissions import Capability, require, role_can

COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


class StaleAnnotation(Conflict):
    """The annotation changed since the client read it; ``details`` holds its current state."""

    code = "stale_version"


def require_annotator(actor, project: Project) -> str:
    """Refuse viewers (roles without ANNOTATE); return the actor's role."""
    return require(
        actor,
        project,
        Capability.ANNOTATE,
        "Viewers cannot change annotations; ask a project lead for the annotator role.",
    )


def image_tasks(image: Image, label_class: LabelClass | None = None) -> list[QueueItem]:
    """Return the tasks in progress on the image, each marked ``takes_class`` when its queue
    takes ``label_class`` (one query for both checks below)."""
    tasks = QueueItem.objects.filter(image=image, status=QueueItem.Status.IN_PROGRESS)
    if label_class is not None:
        limits = AnnotationQueue.label_classes.through.objects.filter(
            annotationqueue_id=OuterRef("queue_id")
        )
        takes = ~Exists(limits) | Exists(limits.filter(labelclass_id=label_class.pk))
        tasks = tasks.annotate(takes_class=ExpressionWrapper(takes, output_field=BooleanField()))
    # Queue and assignee are read only to word a refusal: not joined on every write.
    return list(tasks)


def _held(task: QueueItem, now) -> bool:
    """Whether the task's lease is live; a honeypot task stays its annotator's past its lease
    (as in queues.queue_next)."""
    live = task.lease_expires_at is not None and task.lease_expires_at > now
    return live or task.honeypot_id is not None


def require_image_free(
    actor, image: Image, role: str, tasks: list[QueueItem] | None = None
) -> None:
    """Refuse an annotator's change to an image that another annotator holds in a queue.

    A task's lease runs out; the queue then hands the image to the next person. Whoever
    held it before must not go on changing it beside them, so while someone else holds a
    live lease on the image, and the actor holds none (consensus and honeypot tasks give
    one image to several people, each under their own lease), changes are refused.
    Reviewers and leads are not held back: they review and fix work in progress.
    ``tasks``: ``image_tasks(image)`` when the caller has read it already.
    """
    if role_can(role, Capability.REVIEW):
        return
    tasks = image_tasks(image) if tasks is None else tasks
    now = timezone.now()
    other = next(
        (
            t
            for t in tasks
            if t.lease_expires_at is not None
            and t.lease_expires_at > now
            and t.assignee_id != actor.pk
        ),
        None,
    )
    if other is None or any(t.assignee_id == actor.pk and _held(t, now) for t in tasks):
        return
    until = timezone.localtime(other.lease_expires_at).strftime("%H:%M")
    raise Locked(
        f"{other.assignee} is working on this image in “{other.queue.name}” (their task is "
        f"leased until {until}); your change was not saved. If this was your task, its lease "
        "ran out: take your next task from the queue."
    )


def require_task_class(
    actor, image: Image, label_class: LabelClass, tasks: list[QueueItem] | None = None
) -> None:
    """Refuse a class that the queue of the actor's task on this image does not take.

    A queue limited to some classes (``AnnotationQueue.label_classes``) offers only those on
    its task canvas; this holds writes through the API to the same rule while the actor
    holds a task of that queue on the image. Work outside queues is not limited.
    ``tasks``: ``image_tasks(image, label_class)`` when the caller has read it already.
    """
    tasks = image_tasks(image, label_class) if tasks is None else tasks
    now = timezone.now()
    for item in tasks:
        if item.assignee_id != actor.pk or not _held(item, now) or item.takes_class:
            continue
        allowed = list(item.queue.label_classes.order_by("name"))
        names = ", ".join(c.name for c in allowed)
        raise ApplicationError(
            f"The queue “{item.queue.name}” takes only {names}; {label_class.name!r} is not "
            "one of its classes."
        )


def _clean_attributes(attributes: Any) -> dict[str, list[str]]:
    if attributes in (None, ""):
        return {}
    if not isinstance(attributes, dict):
        raise ApplicationError('Attributes are {"name": ["allowed", "values"]}.')
    clean = {}
    for name, values in attributes.items():
        if (
            not isinstance(values, list)
            or not values
            or not all(isinstance(v, str) and v for v in values)
        ):
            raise ApplicationError(f"Attribute {name!r} needs a list of allowed text values.")
        clean[str(name)] = list(dict.fromkeys(values))
    return clean


@transaction.atomic
def label_class_create(
    *, actor, project: Project, name: str, kind: str, colour: str = "#3559e0", attributes=None
) -> LabelClass:
    require(actor, project, Capability.MANAGE)
    name = (name or "").strip()
    if not name:
        raise ApplicationError("A label class needs a name.")
    if kind not in LabelClass.Kind.values:
        raise ApplicationError(f"Unknown kind {kind!r}; use mask, polygon, box or tag.")
    if not COLOUR.fullmatch(colour or ""):
        raise ApplicationError("The colour is #rrggbb.")
    try:
        with transaction.atomic():
            return LabelClass.objects.create(
                project=project,
                name=name,
                kind=kind,
                colour=colour,
                attributes=_clean_attributes(attributes),
            )
    except IntegrityError:
        raise Conflict(f"The project already has a label class named {name!r}.")


@transaction.atomic
def label_class_update(
    *,
    actor,
    label_class: LabelClass,
    name: str | None = None,
    colour: str | None = None,
    attributes=None,
) -> LabelClass:
    """Rename (keeping the old name in ``previous_names``), recolour or change attributes."""
    require(actor, label_class.project, Capability.MANAGE)
    if name is not None and name.strip() and name.strip() != label_class.name:
        if LabelClass.objects.filter(project=label_class.project, name=name.strip()).exists():
            raise Conflict(f"The project already has a label class named {name.strip()!r}.")
        label_class.previous_names = [*label_class.previous_names, label_class.name]
        label_class.name = name.strip()
    if colour is not None:
        if not COLOUR.fullmatch(colour):
            raise ApplicationError("The colour is #rrggbb.")
        label_class.colour = colour
    if attributes is not None:
        label_class.attributes = _clean_attributes(attributes)
    label_class.save()
    return label_class


@transaction.atomic
def label_class_delete(*, actor, label_class: LabelClass) -> None:
    """Delete a class; refused while any annotation, live or deleted, uses it.

    Deleted annotations are kept so their history can be restored; deleting their class
    would lose them (and the database protects them), so the answer says to rename it.
    """
    require(actor, label_class.project, Capability.MANAGE)
    used = Annotation.objects.filter(label_class=label_class, deleted=False).count()
    if used:
        raise Conflict(
            f"{used} annotation{'s' if used != 1 else ''} use {label_class.name!r}; relabel or delete them first."
        )
    kept = Annotation.objects.filter(label_class=label_class, deleted=True).count()
    if kept:
        raise Conflict(
            f"{kept} deleted annotation{'s' if kept != 1 else ''} of {label_class.name!r} "
            f"{'are' if kept != 1 else 'is'} kept so {'they' if kept != 1 else 'it'} can be "
            "restored; rename the class instead of deleting it."
        )
    # A queue limited to some classes takes every class once its list is empty: deleting
    # its last one would silently undo the lead's restriction.
    queues = sorted(label_class.queues.values_list("name", flat=True))
    if queues:
        names = ", ".join(repr(q) for q in queues)
        raise Conflict(
            f"The queue{'s' if len(queues) != 1 else ''} {names} "
            f"{'take' if len(queues) != 1 else 'takes'} only some classes, "
            f"{label_class.name!r} among them: change {'their' if len(queues) != 1 else 'its'} "
            "classes first."
        )
    label_class.delete()


def snapshot(annotation: Annotation) -> dict:
    """The annotation's state as stored in a revision."""
    return {
        "label_class": annotation.label_class_id,
        "kind": annotation.kind,
        "geometry": annotation.geometry,
        "attributes": annotation.attributes,
        "source": annotation.source,
        "confidence": annotation.confidence,
        "is_crowd": annotation.is_crowd,
        "status": annotation.status,
        "deleted": annotation.deleted,
    }


def record_revision(
    *, annotation: Annotation, action: str, actor, before: dict | None
) -> AnnotationRevision:
    """Write the revision of a change just saved (``annotation`` holds the saved state).

    An import writes no revision per annotation (the import job records who brought which
    file when, and each row its author, time and job); an imported annotation's create
    revision is written here, from ``before``, when it first changes. Until then its
    history is its row (see ``annotation_history``).
    """
    if before is not None and annotation.version == 2 and not annotation.revisions.exists():
        _write_creation(annotation, before)
    return AnnotationRevision.objects.create(
        annotation=annotation, version=annotation.version, action=action, author=actor,
        before=before, after=snapshot(annotation),
    )  # fmt: skip


def annotations_with_history(annotations) -> list[Annotation]:
    """Read the annotations, each marked ``has_history``: whether it has revision rows yet
    (an imported one that never changed has none), for ``annotations_submit``."""
    revisions = AnnotationRevision.objects.filter(annotation=OuterRef("pk"))
    return list(annotations.annotate(has_history=Exists(revisions)))


def annotations_submit(*, actor, annotations: list[Annotation]) -> list[Annotation]:
    """Mark the annotations submitted by the actor (now their author), with a revision each.

    Precondition: they come from ``annotations_with_history``, and the caller holds the
    task they belong to (``queues.queue_submit``). Two statements however many there are;
    an imported annotation's create revision is written first, from its row, keeping its
    own author and time (``record_revision`` cannot see around a change of author).
    """
    now = timezone.now()
    revisions, imported = [], []
    for annotation in annotations:
        before = snapshot(annotation)
        if annotation.version == 1 and not annotation.has_history:
            imported.append(annotation.pk)
            revisions.append(
                AnnotationRevision(annotation=annotation, version=1, action="create",
                                   author_id=annotation.author_id, before=None, after=before)
            )  # fmt: skip
        annotation.status = Annotation.Status.SUBMITTED
        annotation.version += 1
        annotation.author = actor
        annotation.updated_at = now
        revisions.append(
            AnnotationRevision(annotation=annotation, version=annotation.version, action="update",
                               author=actor, before=before, after=snapshot(annotation))
        )  # fmt: skip
    # One UPDATE for all (the same change to each: the version is counted by the database).
    Annotation.objects.filter(pk__in=[a.pk for a in annotations]).update(
        status=Annotation.Status.SUBMITTED, version=F("version") + 1, author=actor, updated_at=now
    )
    AnnotationRevision.objects.bulk_create(revisions)
    if imported:  # when the annotation was made, not now (created_at is set on insert)
        AnnotationRevision.objects.filter(
            annotation_id__in=imported, version=1, action="create"
        ).update(created_at=Subquery(
            Annotation.objects.filter(pk=OuterRef("annotation_id")).values("created_at")[:1]
        ))  # fmt: skip
    return annotations


def _write_creation(annotation: Annotation, state: dict) -> None:
    created = AnnotationRevision.objects.create(
        annotation=annotation, version=1, action="create", author_id=annotation.author_id,
        before=None, after=state,
    )  # fmt: skip
    # When the annotation was made, not now (created_at is set on insert).
    AnnotationRevision.objects.filter(pk=created.pk).update(created_at=annotation.created_at)


def annotation_history(annotation: Annotation) -> list[AnnotationRevision]:
    """Every revision of the annotation, oldest first. An imported annotation that has not
    changed since has no revision row yet: its create revision is its row as it stands
    (unsaved, so it has no id and nothing to restore: the annotation is in that state)."""
    revisions = list(annotation.revisions.order_by("version", "id"))
    if not revisions and annotation.version == 1:
        revisions.append(
            AnnotationRevision(
                annotation=annotation,
                version=1,
                action="create",
                author_id=annotation.author_id,
                before=None,
                after=snapshot(annotation),
                created_at=annotation.created_at,
            )  # fmt: skip
        )
    return revisions


def stale_annotation(annotation: Annotation, expected_version: int) -> StaleAnnotation:
    annotation.refresh_from_db()
    return StaleAnnotation(
        f"The annotation changed (now version {annotation.version}) since you loaded version "
        f"{expected_version}; reload it and apply your edit again.",
        details={"version": annotation.version, "current": snapshot(annotation)},
    )


def _check_attributes(label_class: LabelClass, attributes: Any) -> dict:
    attributes = attributes or {}
    if not isinstance(attributes, dict):
        raise ApplicationError("Attributes are an object of name: value.")
    for name, value in attributes.items():
        allowed = label_class.attributes.get(name)
        if allowed is None:
            raise ApplicationError(f"{label_class.name!r} has no attribute {name!r}.")
        if value not in allowed:
            raise ApplicationError(f"{name!r} must be one of {', '.join(allowed)}; got {value!r}.")
    return attributes


def _geometry(label_class: LabelClass, image: Image, payload) -> geo.Geometry:
    try:
        return geo.validate(label_class.kind, payload, image.width, image.height)
    except geo.GeometryError as exc:
        raise ApplicationError(str(exc))


@transaction.atomic
def annotation_create(
    *, actor, image: Image, label_class: LabelClass, geometry, attributes=None,
    source: str = Annotation.Source.HUMAN, source_detail: str = "", confidence: float | None = None,
    status: str = Annotation.Status.DRAFT, is_crowd: bool = False,
) -> Annotation:  # fmt: skip
    if label_class.project_id != image.project_id:
        raise ApplicationError("That label class belongs to another project.")
    tasks = image_tasks(image, label_class)
    require_image_free(actor, image, require_annotator(actor, image.project), tasks)
    require_task_class(actor, image, label_class, tasks)
    if status not in (Annotation.Status.DRAFT, Annotation.Status.SUBMITTED):
        raise ApplicationError(
            "New annotations are drafts or submitted; reviewers accept or reject them."
        )
    if confidence is not None and not 0 <= confidence <= 1:
        raise ApplicationError("Confidence is between 0 and 1.")
    shape = _geometry(label_class, image, geometry)
    if is_crowd and shape.kind == "tag":
        raise ApplicationError("A tag cannot be a crowd region.")
    annotation = Annotation.objects.create(is_crowd=is_crowd,
        image=image, label_class=label_class, kind=shape.kind, geometry=shape.data, area=shape.area,
        bbox=list(shape.bbox), attributes=_check_attributes(label_class, attributes), source=source,
        source_detail=source_detail[:200], confidence=confidence, status=status, author=actor,
    )  # fmt: skip
    record_revision(annotation=annotation, action="create", actor=actor, before=None)
    return annotation


@transaction.atomic
def annotation_update(
    *, actor, annotation: Annotation, expected_version: int, **changes
) -> Annotation:
    """Apply changes if the annotation is still at ``expected_version``; else StaleAnnotation.

    Changeable: label_class, geometry, attributes, status (draft/submitted), confidence.
    """
    require_image_free(actor, annotation.image, require_annotator(actor, annotation.image.project))
    unknown = set(changes) - {"label_class", "geometry", "attributes", "status", "confidence"}
    if unknown:
        raise ApplicationError(f"Cannot change {', '.join(sorted(unknown))}.")
    current = Annotation.objects.select_related("label_class", "image").get(pk=annotation.pk)
    if current.version != expected_version or current.deleted:
        raise stale_annotation(current, expected_version)
    before = snapshot(current)
    label_class = changes.get("label_class", current.label_class)
    if label_class.project_id != current.image.project_id:
        raise ApplicationError("That label class belongs to another project.")
    if label_class.pk != current.label_class_id:
        require_task_class(actor, current.image, label_class)
    fields: dict[str, Any] = {"label_class": label_class}
    if "geometry" in changes or label_class.kind != current.kind:
        shape = _geometry(
            label_class,
            current.image,
            changes.get("geometry", current.geometry if label_class.kind == current.kind else None),
        )
        fields.update(kind=shape.kind, geometry=shape.data, area=shape.area, bbox=list(shape.bbox))
    if "attributes" in changes or label_class.pk != current.label_class_id:
        # Checked when they change: values a later schema edit disallowed do not block a move.
        fields["attributes"] = _check_attributes(
            label_class, changes.get("attributes", current.attributes)
        )
    if "status" in changes:
        if changes["status"] not in (Annotation.Status.DRAFT, Annotation.Status.SUBMITTED):
            raise ApplicationError("Annotators set draft or submitted; reviewers accept or reject.")
        fields["status"] = changes["status"]
    if "confidence" in changes:
        fields["confidence"] = changes["confidence"]
    content = {"label_class", "geometry", "attributes"} & set(changes)
    if content and current.status == Annotation.Status.ACCEPTED and "status" not in changes:
        fields["status"] = Annotation.Status.SUBMITTED  # changed accepted work is reviewed again
    # ``author`` stays: whoever made the annotation answers for it (rejections go back to
    # them); each revision records who changed what.
    updated = Annotation.objects.filter(pk=current.pk, version=expected_version).update(
        version=F("version") + 1, **fields
    )
    if not updated:  # someone saved between our read and our write
        raise stale_annotation(current, expected_version)
    current.refresh_from_db()
    record_revision(annotation=current, action="update", actor=actor, before=before)
    return current


@transaction.atomic
def annotation_delete(*, actor, annotation: Annotation, expected_version: int) -> Annotation:
    """Delete (softly: the history stays and the annotation can be restored)."""
    require_image_free(actor, annotation.image, require_annotator(actor, annotation.image.project))
    annotation = Annotation.objects.get(pk=annotation.pk)  # its stored state, not the caller's copy
    before = snapshot(annotation)
    if not Annotation.objects.filter(
        pk=annotation.pk, version=expected_version, deleted=False
    ).update(deleted=True, version=F("version") + 1):
        raise stale_annotation(annotation, expected_version)
    annotation.refresh_from_db()
    record_revision(annotation=annotation, action="delete", actor=actor, before=before)
    return annotation


@transaction.atomic
def annotation_restore(*, actor, revision: AnnotationRevision) -> Annotation:
    """Bring an annotation back to the state recorded after ``revision`` (a new version)."""
    annotation = Annotation.objects.select_for_update().get(pk=revision.annotation_id)
    require_image_free(actor, annotation.image, require_annotator(actor, annotation.image.project))
    state = revision.after or revision.before
    if state is None:
        raise ApplicationError("That revision holds no state to restore.")
    label_class = LabelClass.objects.filter(
        pk=state["label_class"], project=annotation.image.project
    ).first()
    if label_class is None:
        raise ApplicationError(
            "The label class of that revision was deleted; it cannot be restored."
        )
    before = snapshot(annotation)
    shape = _geometry(label_class, annotation.image, _client_form(state["kind"], state["geometry"]))
    Annotation.objects.filter(pk=annotation.pk).update(
        label_class=label_class, kind=shape.kind, geometry=shape.data, area=shape.area, bbox=list(shape.bbox),
        attributes=state["attributes"], status=_restored_status(state["status"]),
        confidence=state["confidence"], is_crowd=state.get("is_crowd", False),
        deleted=state.get("deleted", False), version=F("version") + 1,
    )  # fmt: skip
    annotation.refresh_from_db()
    record_revision(annotation=annotation, action="restore", actor=actor, before=before)
    return annotation


def _restored_status(status: str) -> str:
    """A restore brings back content, not a review: accepted or rejected states come back as
    submitted, for a reviewer to decide again."""
    if status in (Annotation.Status.DRAFT, Annotation.Status.SUBMITTED):
        return status
    return Annotation.Status.SUBMITTED


def _client_form(kind: str, stored: dict):
    """Turn a stored geometry back into what ``geometry.validate`` takes."""
    if kind == "polygon":  # one part: its vertices; several: the list of parts
        return stored["parts"] if "parts" in stored else stored["points"]
    if kind == "box":
        return stored["box"]
    if kind == "mask":
        return {"size": stored["size"], "counts": stored["counts"]}
    return None


def client_geometry(annotation: Annotation):
    return _client_form(annotation.kind, annotation.geometry)
