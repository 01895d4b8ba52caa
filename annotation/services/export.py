"""Export of a version's annotations as a job, in the formats of ``annotation/formats``.

Export streams a version's annotations (ordered by image, read in chunks) through a
format's writer into a zip on local disk, then stores it as ``exports/<job>/<name>.zip``.
What the format cannot hold is listed in the result, never dropped silently. The job is
idempotent: a finished one keeps its result in the checkpoint, one that died writes the
archive again from scratch. Import is in ``imports.py``.
"""

from __future__ import annotations

import logging
import os
import posixpath
import tempfile
import zipfile
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from annotation.formats import ClassInfo, ExportContext, ImageInfo, Row
from annotation.models import Annotation, LabelClass
from annotation.services.exchange import BATCH, exchange_format, job_version
from studio.errors import ApplicationError, Forbidden, Gone, NotFound
from studio.models import DatasetVersion, Job
from studio.permissions import Capability, can, require
from studio.services.jobs import JobContext, job_create, job_enqueue, register
from studio.storage import storage_delete_tree

log = logging.getLogger(__name__)


def export_start(
    *, actor, version: DatasetVersion, fmt: str, statuses: list[str] | None = None
) -> Job:
    """Queue a job that writes the version's annotations (of these statuses) in a format.

    Leads, reviewers and viewers may export. Annotators may not: an export holds every
    label of the version, including honeypot answers and the other replicas of consensus
    images, which annotators must not see.
    """
    project = version.dataset.project
    _require_exporter(actor, project)
    exchange_format(fmt)
    statuses = list(statuses or Annotation.Status.values)
    unknown = [s for s in statuses if s not in Annotation.Status.values]
    if unknown:
        raise ApplicationError(
            f"Unknown status {unknown[0]!r}; use {', '.join(Annotation.Status.values)}."
        )
    with transaction.atomic():
        job = job_create(project=project, kind=Job.Kind.EXPORT, created_by=actor,
                         params={"version": version.pk, "format": fmt, "statuses": statuses})  # fmt: skip
        job_enqueue(job)
    return job


def _require_exporter(user, project) -> None:
    """Refuse non-members (NotFound) and roles that may not see every label (Forbidden)."""
    require(user, project, Capability.VIEW)
    if not can(user, project, Capability.SEE_ALL_LABELS):
        raise Forbidden(
            "Annotators cannot export: exports hold honeypot answers and other people's "
            "consensus work. Ask a reviewer or a lead."
        )


def _images(version: DatasetVersion) -> list[ImageInfo]:
    rows = version.items.order_by("image_id").values_list(
        "image_id", "image__original_name", "image__width", "image__height"
    )
    return [ImageInfo(*r) for r in rows]


def _export_rows(version, statuses, ctx: JobContext, total: int) -> Iterator[Row]:
    qs = (
        Annotation.objects.filter(
            image__in=version.items.values("image_id"), deleted=False, status__in=statuses
        )
        .exclude(kind=LabelClass.Kind.TAG)
        .order_by("image_id", "id")
        .values_list(
            "id",
            "image_id",
            "label_class_id",
            "kind",
            "geometry",
            "attributes",
            "area",
            "bbox",
            "is_crowd",
        )
    )
    for n, values in enumerate(qs.iterator(chunk_size=BATCH)):
        if n % BATCH == 0:
            ctx.progress(n, total, f"Wrote {n:,} of {total:,} annotations")
        yield Row(*values)


@register(Job.Kind.EXPORT)
def export_run(job: Job, ctx: JobContext) -> dict:
    """Write the export archive (again, from scratch, if an earlier attempt died)."""
    done = job.checkpoint.get("result")
    if done and default_storage.exists(done["path"]):
        return done
    version = job_version(job)
    fmt = exchange_format(job.params["format"])
    statuses = job.params["statuses"]
    images = _images(version)
    classes = [
        ClassInfo(c.pk, c.name, c.kind, c.attributes)
        for c in LabelClass.objects.filter(project=job.project).order_by("name")
    ]
    tags: dict[int, list[Row]] = {}
    live = Annotation.objects.filter(
        image__in=version.items.values("image_id"), deleted=False, status__in=statuses
    )
    for values in (
        live.filter(kind=LabelClass.Kind.TAG)
        .order_by("image_id", "id")
        .values_list("id", "image_id", "label_class_id", "kind", "geometry", "attributes")
    ):
        tags.setdefault(values[1], []).append(Row(*values))
    total = live.exclude(kind=LabelClass.Kind.TAG).count()
    context = ExportContext(images=images, classes=classes, tags=tags)
    name = f"{slugify(version.dataset.name) or 'dataset'}-v{version.number}-{fmt.name}.zip"
    path = f"exports/{job.pk}/{name}"
    with tempfile.TemporaryDirectory() as tmp:
        local = os.path.join(tmp, name)
        with zipfile.ZipFile(local, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
            fmt.write(zf, context, _export_rows(version, statuses, ctx, total))
        if default_storage.exists(path):
            default_storage.delete(path)
        with open(local, "rb") as fh:
            path = default_storage.save(path, File(fh, name=name))
        size = os.path.getsize(local)
    ambiguous = sorted(n for n, c in Counter(i.name for i in images).items() if c > 1)
    report = context.report
    result = {
        "format": fmt.name, "path": path, "name": name, "size": size, "version": version.number,
        "statuses": statuses, "images": len(images), "annotations": sum(report.written.values()),
        "written": report.written, "not_held_count": report.not_held_count,
        "not_held": report.not_held, "ambiguous_image_names": ambiguous[:50],
    }  # fmt: skip
    ctx.save_checkpoint({"result": result}, done=1, total=1, message="Archive written.")
    return result


def export_archive(*, user, job: Job) -> tuple[str, str]:
    """Return (storage path, file name) of a finished export the user may download.

    The same rule as starting an export: whoever may not export may not download one.
    """
    _require_exporter(user, job.project)
    if job.kind != Job.Kind.EXPORT:
        raise NotFound("That job is not an export.")
    if job.status != Job.Status.SUCCEEDED:
        raise ApplicationError(f"The export has not finished (it is {job.status}).")
    if job.result.get("expired_at"):
        raise Gone(
            f"This export was deleted on {job.result['expired_at'][:10]}: exports are kept "
            f"{settings.STUDIO['EXPORT_KEEP_DAYS']} days. Run the export again."
        )
    path = job.result.get("path", "")
    if not path or not default_storage.exists(path):
        raise NotFound("The export archive is gone; run the export again.")
    return path, job.result.get("name") or posixpath.basename(path)


def exports_expire(*, now=None) -> list[int]:
    """Delete the archives of exports that finished more than ``EXPORT_KEEP_DAYS`` ago.

    Housekeeping across all projects (run by Celery beat or ``manage.py expire_exports``,
    never on a user's request). The job stays, with ``expired_at`` in its result, so its
    page and the download say what happened. Returns the ids of the jobs expired.
    """
    keep = settings.STUDIO["EXPORT_KEEP_DAYS"]
    if keep <= 0:
        return []
    now = now or timezone.now()
    old = Job.objects.filter(
        kind=Job.Kind.EXPORT,
        status=Job.Status.SUCCEEDED,
        finished_at__lt=now - timedelta(days=keep),
    ).exclude(result__has_key="expired_at")
    expired = []
    for job in old.only("pk", "result").iterator():
        storage_delete_tree(f"exports/{job.pk}")
        # Only this job's result changes, and only if nothing else expired it meanwhile.
        if (
            Job.objects.filter(pk=job.pk)
            .exclude(result__has_key="expired_at")
            .update(result={**job.result, "expired_at": now.isoformat()})
        ):
            expired.append(job.pk)
    if expired:
        log.info("deleted the archives of %d expired exports: %s", len(expired), expired[:20])
    return expired
