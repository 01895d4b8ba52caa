"""Export and import of annotations as jobs, in the formats of ``annotation/formats``.

Export streams a version's annotations (ordered by image, read in chunks) through a
format's writer into a zip on local disk, then stores it as ``exports/<job>/<name>.zip``.
What the format cannot hold is listed in the result, never dropped silently.

Import reads the uploaded file as a stream of records, resolves each record's image (by
``original_name`` within the version) and class, validates geometry and attributes in
batches, and inserts the annotations batch by batch, all inside one transaction. What
the version already holds is skipped, replaced or kept beside the file's shapes as the
import's mode says (``reimport.py``); what the file holds that Studio does not keep is
listed in the report (``not_kept``). It writes no revision per annotation: the job
records who imported which file when, each row its author, time and job
(``source_detail``), and an imported annotation's create revision is written when it
first changes (``labels.record_revision``). If any record
is wrong the transaction is rolled back, so a failed import changes nothing; the job
fails with the per-record report in its result. Either job is idempotent: an import that
dies mid-way left nothing behind and starts over, and a finished one keeps its result in
the checkpoint.
"""

from __future__ import annotations

import gc
import logging
import os
import posixpath
import queue
import shutil
import tempfile
import threading
import uuid
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import timedelta
from itertools import islice

import msgspec
from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.utils import timezone
from django.utils.text import slugify

from annotation import geometry as geo
from annotation.formats import (
    Bundle,
    Catalog,
    ClassInfo,
    ExportContext,
    FormatError,
    ImageInfo,
    Note,
    Problem,
    Record,
    Row,
    registry,
    unsafe_path,
)
from annotation.formats.validation import validate_many
from annotation.models import Annotation, LabelClass
from annotation.services.labels import require_annotator
from annotation.services.reimport import MODES, Existing
from studio.errors import ApplicationError, Forbidden, Gone, NotFound
from studio.models import DatasetVersion, Job
from studio.permissions import Capability, can, require
from studio.services.jobs import JobContext, job_create, job_enqueue, register
from studio.storage import storage_delete_tree

log = logging.getLogger(__name__)

BATCH = 2000
MAX_PROBLEMS = 1000  # kept in the report; all are counted
IMPORT_STATUSES = (Annotation.Status.DRAFT, Annotation.Status.SUBMITTED)
# Validated geometry holds finite numbers only; msgspec writes the JSON in C.
_json = msgspec.json.Encoder().encode


def _format(name: str):
    formats = registry()
    if name not in formats:
        raise ApplicationError(f"Unknown format {name!r}; use one of {', '.join(formats)}.")
    return formats[name]


# --- export -----------------------------------------------------------------------------


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
    _format(fmt)
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


def _version(job: Job) -> DatasetVersion:
    version = (
        DatasetVersion.objects.filter(pk=job.params["version"], dataset__project=job.project)
        .select_related("dataset")
        .first()
    )
    if version is None:
        raise ApplicationError("The dataset version was deleted.")
    return version


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
    version = _version(job)
    fmt = _format(job.params["format"])
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


# --- import -----------------------------------------------------------------------------


def import_start(*, actor, version: DatasetVersion, fmt: str, upload, status: str = "submitted",
                 create_classes: bool = False, dry_run: bool = False,
                 mode: str = "skip") -> Job:  # fmt: skip
    """Stage an uploaded annotation file and queue the job that imports it into the version.

    Annotators, reviewers and leads may import; viewers may not. ``create_classes`` adds
    classes the file names that the schema lacks (leads only). ``dry_run`` checks every
    record and reports, writing nothing. ``mode`` says what happens to what the version
    already holds (``annotation/services/reimport.py``): ``skip`` shapes already there
    (the default), ``replace`` the annotations of the images the file labels (leads
    only), or ``append``.
    """
    project = version.dataset.project
    require_annotator(actor, project)
    if mode not in MODES:
        raise ApplicationError(f"Unknown import mode {mode!r}; use {', '.join(MODES)}.")
    if create_classes or mode == "replace":
        require(actor, project, Capability.MANAGE)
    _format(fmt)
    if status not in IMPORT_STATUSES:
        raise ApplicationError("Imported annotations are draft or submitted.")
    size = getattr(upload, "size", None) or 0
    if size > settings.STUDIO["MAX_ARCHIVE_BYTES"]:
        raise ApplicationError(
            f"The file is {size:,} bytes; the limit is {settings.STUDIO['MAX_ARCHIVE_BYTES']:,}."
        )
    name = os.path.basename((upload.name or "annotations").replace("\\", "/"))[:200] or "upload"
    folder = f"projects/{project.pk}/imports/{uuid.uuid4().hex}"
    upload.seek(0)
    path = default_storage.save(f"{folder}/{name}", upload)
    try:
        with transaction.atomic():
            job = job_create(project=project, kind=Job.Kind.IMPORT, created_by=actor,
                             params={"version": version.pk, "format": fmt, "path": path, "name": name,
                                     "folder": folder, "status": status,
                                     "create_classes": bool(create_classes),
                                     "dry_run": bool(dry_run), "mode": mode})  # fmt: skip
            job_enqueue(job)
    except BaseException:
        default_storage.delete(path)
        raise
    return job


def import_cleanup(job: Job) -> None:
    """Delete the staged upload once the import has reached a final state."""
    if job.params.get("folder"):
        storage_delete_tree(job.params["folder"])


@contextmanager
def _local(path: str):
    try:
        local = default_storage.path(path)
    except NotImplementedError:  # remote storage: copy it down first
        local = None
    if local is not None:
        yield local
        return
    with tempfile.NamedTemporaryFile(suffix=posixpath.basename(path)) as tmp:
        with default_storage.open(path, "rb") as src:
            shutil.copyfileobj(src, tmp)
        tmp.flush()
        yield tmp.name


@contextmanager
def _no_cycle_collection():
    """Pause the cyclic garbage collector while records stream through.

    An import allocates millions of short-lived containers; each allocation burst would
    trigger a full collection that walks every live object of the process, which costs
    more than the import's own work. Reference counting still frees every record; the
    collector runs once at the end.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Failed(Exception):
    def __init__(self, report: dict) -> None:
        self.report = report


@register(Job.Kind.IMPORT, cleanup=import_cleanup)
def import_run(job: Job, ctx: JobContext) -> dict:
    """Import every record of the staged file, or nothing (see the module docstring)."""
    if "result" in job.checkpoint:  # committed before the worker stopped
        return job.checkpoint["result"]
    version = _version(job)
    fmt = _format(job.params["format"])
    if not default_storage.exists(job.params["path"]):
        raise ApplicationError(
            "The uploaded file was discarded when this job ended; upload it again."
        )
    importer = _Importer(job, ctx, version, fmt.name)
    try:
        with _local(job.params["path"]) as local, _no_cycle_collection(), transaction.atomic():
            bundle = Bundle(local, job.params["name"])
            try:
                Job.objects.filter(pk=job.pk).update(
                    heartbeat_at=timezone.now()
                )  # take the write lock
                result = importer.run(_read_guarded(fmt.read(bundle, importer.catalog())))
                if importer.dry_run:  # classes it created go too
                    transaction.set_rollback(True)
                else:
                    ctx.save_checkpoint({"result": result}, done=1, total=1, message="Imported.")
            finally:
                bundle.close()
    except _Failed as failed:
        Job.objects.filter(pk=job.pk).update(result=failed.report)
        first = "; ".join(f"{p['where']}: {p['message']}" for p in failed.report["problems"][:5])
        count = failed.report["problem_count"]
        raise ApplicationError(
            f"Nothing was imported: {count:,} record{'s' if count != 1 else ''} "
            f"{'are' if count != 1 else 'is'} wrong. {first}" + (" …" if count > 5 else "")
        )
    except (FormatError, zipfile.BadZipFile, zlib.error, EOFError, UnicodeDecodeError) as exc:
        if not isinstance(exc, FormatError):  # a damaged archive or text that is not UTF-8
            exc = FormatError(f"The file cannot be read: {exc}")
        report = {"format": fmt.name, "problem_count": 1, "imported": 0,
                  "problems": [{"where": job.params["name"], "message": str(exc)}]}  # fmt: skip
        Job.objects.filter(pk=job.pk).update(result=report)
        raise ApplicationError(f"Nothing was imported: {job.params['name']}: {exc}")
    return result


# What a reader raises when a file holds values of a shape it did not foresee: bad data,
# never a reason to retry the job.
_DATA_ERRORS = (ArithmeticError, LookupError, TypeError, ValueError, AttributeError, RecursionError)


def _read_guarded(records: Iterator[Record | Problem]) -> Iterator[Record | Problem]:
    """Yield the reader's records; turn a data error it did not catch into a FormatError.

    Readers report each bad record as a ``Problem``; one they missed would otherwise
    fail the job as an internal error and retry it on the same file, to the same end.
    It is logged with its traceback, so the reader can learn to report it.
    """
    seen = 0
    while True:
        try:
            record = next(records)
        except StopIteration:
            return
        except (FormatError, UnicodeDecodeError):
            raise  # import_run reports these as they are
        except _DATA_ERRORS as exc:
            log.exception("import reader failed after %d records", seen)
            raise FormatError(
                f"The file cannot be read after record {seen:,}: {type(exc).__name__}: {exc}"
            ) from exc
        seen += 1
        yield record


class _Importer:
    """Resolve, validate and write the records of one import (inside its transaction)."""

    def __init__(self, job: Job, ctx: JobContext, version: DatasetVersion, fmt: str) -> None:
        self.job, self.ctx, self.version, self.fmt = job, ctx, version, fmt
        self.status = job.params.get("status", Annotation.Status.SUBMITTED)
        self.create_classes = job.params.get("create_classes", False)
        self.created: set[int] = set()  # classes this import made
        self.dry_run = job.params.get("dry_run", False)
        self.problems: list[dict] = []
        self.problem_count = 0
        self.not_kept: list[dict] = []
        self.not_kept_count = 0
        self.refs: set[str] = set()
        self.resolved: dict[str, tuple[int, int, int] | str] = {}
        self.counts: dict[str, int] = {}
        self.images: dict[str, tuple[int, int, int]] = {}
        self.ambiguous: set[str] = set()
        by_base: dict[str, list[tuple[int, int, int]]] = {}
        for image_id, name, w, h in version.items.values_list(
            "image_id", "image__original_name", "image__width", "image__height"
        ):
            if name in self.images:
                self.ambiguous.add(name)
            self.images[name] = (image_id, w, h)
            by_base.setdefault(posixpath.basename(name), []).append((image_id, w, h))
        self.by_base = {base: found[0] for base, found in by_base.items() if len(found) == 1}
        self.ambiguous_base = {base for base, found in by_base.items() if len(found) > 1}
        self.classes: dict[str, LabelClass] = {}
        for cls in LabelClass.objects.filter(project=job.project):
            for old in cls.previous_names:
                self.classes.setdefault(old, cls)
        for cls in LabelClass.objects.filter(project=job.project):
            self.classes[cls.name] = cls
        self.writer = _Writer(job, self.status, f"{fmt} import, job {job.pk}")
        self.existing = Existing(mode=job.params.get("mode", "skip"),
                                 actor_id=job.created_by_id, dry_run=self.dry_run)  # fmt: skip

    def catalog(self) -> Catalog:
        sizes = {base: (w, h) for base, (_, w, h) in self.by_base.items()}
        sizes.update({name: (w, h) for name, (_, w, h) in self.images.items()})
        kinds = {name: cls.kind for name, cls in self.classes.items()}
        return Catalog(sizes, kinds, list(self.images))

    def problem(self, where: str, message: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append({"where": where, "message": message})

    def run(self, records: Iterator[Record | Problem]) -> dict:
        try:
            seen = self._stream(records)
            if self.problem_count:
                self.writer.abandon()  # it all rolls back: don't wait for the writes
            self.writer.close()
        except BaseException:
            self.writer.abandon()
            raise
        report = {"format": self.fmt, "version": self.version.number, "records": seen,
                  "imported": 0 if self.problem_count or self.dry_run else sum(self.counts.values()),
                  "dry_run": self.dry_run,
                  "by_kind": self.counts, "status": self.status, **self.existing.report(),
                  "not_kept_count": self.not_kept_count, "not_kept": self.not_kept,
                  "problem_count": self.problem_count, "problems": self.problems}  # fmt: skip
        if self.problem_count:
            raise _Failed(report)
        return report

    def _stream(self, records: Iterator[Record | Problem]) -> int:
        seen = 0
        while batch := list(islice(records, BATCH)):  # Problems are rare: flush skips them
            seen += self.flush(batch)
            self.ctx.progress(seen, 0, f"Read {seen:,} records")
        return seen

    def image(self, record: Record) -> tuple[int, int, int] | None:
        # Records of one image come together: resolve each name once.
        found = self.resolved.get(record.image)
        if found is None:
            found = self.resolved[record.image] = self._resolve(record.image)
        if isinstance(found, str):
            self.problem(record.where, found)
            return None
        return found

    def _resolve(self, image: str) -> tuple[int, int, int] | str:
        unsafe = unsafe_path(image)
        if unsafe:
            return unsafe
        name = image.replace("\\", "/")
        base = posixpath.basename(name)
        if name in self.ambiguous or (name not in self.images and base in self.ambiguous_base):
            return f"image {image!r} is ambiguous: several images of the version have that name"
        found = self.images.get(name) or self.by_base.get(base)
        if found is None:
            return f"image {image!r} is not in version {self.version.number} of the dataset"
        return found

    def label_class(self, record: Record) -> LabelClass | None:
        cls = self.classes.get(record.label)
        if cls is None and self.create_classes and record.label.strip():
            cls = LabelClass.objects.create(
                project=self.job.project, name=record.label.strip()[:100], kind=record.kind
            )
            self.classes[cls.name] = cls
            self.created.add(cls.pk)
        if cls is None:
            self.problem(record.where, f"unknown class {record.label!r}; the project's classes are "
                         f"{', '.join(sorted(self.classes)[:20]) or 'none'}")  # fmt: skip
        return cls

    def attributes(self, record: Record, cls: LabelClass) -> bool:
        if not isinstance(record.attributes, dict):
            self.problem(record.where, "attributes must be name: value pairs")
            return False
        if any(type(v) is bool for v in record.attributes.values()):
            flags = self.flags(record, cls)
            if flags is None:
                return False
            record.attributes = flags
            if not flags:
                return True
        if cls.pk in self.created:  # a class this import made learns the file's attributes
            learned = False
            for name, value in record.attributes.items():
                if isinstance(value, str) and value and value not in cls.attributes.get(name, []):
                    cls.attributes = {
                        **cls.attributes,
                        name: [*cls.attributes.get(name, []), value],
                    }
                    learned = True
            if learned:
                LabelClass.objects.filter(pk=cls.pk).update(attributes=cls.attributes)
        for name, value in record.attributes.items():
            allowed = cls.attributes.get(name)
            if allowed is None:
                self.problem(record.where, f"class {cls.name!r} has no attribute {name!r}")
                return False
            if value not in allowed:
                self.problem(
                    record.where,
                    f"attribute {name!r} must be one of {', '.join(allowed)}; got {value!r}",
                )
                return False
        return True

    def flags(self, record: Record, cls: LabelClass) -> dict | None:
        """Map a format's on/off flags (VOC's ``difficult``, say) to the class's values.

        Off is every VOC object's default and says nothing: it is left out, as an unset
        attribute. On must find the class's attribute of that name and a yes-like value
        (yes, true, 1), or the record is a problem; a class this import made learns "yes".
        """
        out = {}
        for name, value in record.attributes.items():
            if type(value) is not bool:
                out[name] = value
            elif value:
                allowed = cls.attributes.get(name)
                if allowed is None and cls.pk in self.created:
                    out[name] = "yes"
                    continue
                match = next((v for v in allowed or [] if str(v).lower() in _YES), None)
                if match is None:
                    self.problem(record.where, f"the file marks it {name}, but class {cls.name!r} "
                                 f"has no attribute {name!r} with a yes value to keep it")  # fmt: skip
                    return None
                out[name] = match
        return out

    def geometry_for(self, record: Record, cls: LabelClass, w: int, h: int):
        """Return (kind, client geometry) for the class, or a message when it cannot hold it."""
        kind, payload = record.kind, record.geometry
        if cls.kind == kind:  # a polygon of one part or several (geometry keeps every part)
            return kind, payload
        if cls.kind == "mask" and kind == "polygon":
            try:
                shape = geo.polygon(payload, w, h)
            except geo.GeometryError as exc:
                return None, str(exc)
            from pycocotools import mask as coco

            # Rounded as stored polygons are, so a polygon and its rasterised mask agree.
            rle = coco.merge(coco.frPyObjects(geo.stored_parts(shape.data), h, w))
            return "mask", {"size": [h, w], "counts": rle["counts"].decode("ascii")}
        return None, f"a {kind} cannot be stored in {cls.kind} class {cls.name!r}"

    def flush(self, batch: list[Record | Problem]) -> int:
        """Check a batch and queue its rows for writing; return how many records it held."""
        pending: list[tuple[Record, LabelClass, int]] = []
        items = []
        refs, classes, resolved = self.refs, self.classes, self.resolved
        records = len(batch)
        for record in batch:
            if type(record) is Problem:
                self.problem(record.where, record.message)
                records -= 1
                continue
            if type(record) is Note:
                self.not_kept_count += 1
                if len(self.not_kept) < MAX_PROBLEMS:
                    self.not_kept.append({"where": record.where, "message": record.message})
                records -= 1
                continue
            ref = record.ref
            if ref is not None:
                if ref in refs:
                    self.problem(record.where, f"duplicate id {ref}")
                    continue
                refs.add(ref)
            found = resolved.get(record.image)
            if found is None or isinstance(found, str):
                found = self.image(record)
            cls = classes.get(record.label) or self.label_class(record)
            if (
                found is None
                or cls is None
                or (record.attributes and not self.attributes(record, cls))
            ):
                continue
            if type(record.attributes) is not dict:
                self.problem(record.where, "attributes must be name: value pairs")
                continue
            image_id, w, h = found
            kind = record.kind
            if cls.kind == kind and kind in ("box", "mask"):  # the common case, nothing to convert
                payload = record.geometry
            elif cls.kind == "tag" or kind == "tag":
                if cls.kind != kind:
                    self.problem(
                        record.where, f"a {kind} cannot be stored in {cls.kind} class {cls.name!r}"
                    )
                    continue
                payload = None
            else:
                kind, payload = self.geometry_for(record, cls, w, h)
                if kind is None:
                    self.problem(record.where, payload)
                    continue
            pending.append((record, cls, image_id))
            items.append((kind, payload, w, h))
        shapes = validate_many(items)
        existing = self.existing
        existing.load({image_id for (_, _, image_id), shape in zip(pending, shapes, strict=True)
                       if type(shape) is not str})  # fmt: skip
        rows = []
        kinds = []
        for (record, cls, image_id), shape in zip(pending, shapes, strict=True):
            if type(shape) is str:
                self.problem(record.where, _lower(shape))
                continue
            if record.crowd and shape.kind == "tag":
                self.problem(record.where, "a tag cannot be a crowd region")
                continue
            if not existing.keep(image_id, cls.id, shape):
                continue
            rows.append((image_id, cls.id, shape, record.attributes, record.crowd))
            kinds.append(shape.kind)
        for kind, count in Counter(kinds).items():
            self.counts[kind] = self.counts.get(kind, 0) + count
        if rows and not self.problem_count and not self.dry_run:  # a failure commits nothing
            self.writer.insert(rows)
        return records


_YES = ("yes", "true", "1", "y", "on")


def _lower(message: str) -> str:
    return message[:1].lower() + message[1:]


ANN_COLUMNS = (
    "image_id, label_class_id, kind, geometry, area, bbox, attributes, is_crowd, source, "
    "source_detail, confidence, status, author_id, version, deleted, created_at, updated_at"
)
# One statement per batch: the rows arrive as one JSON array, which SQLite reads with
# json_each in C; the GIL stays released while it inserts them all.
SQLITE_ANN_INSERT = (  # names are constants; values go as parameters
    "INSERT INTO {table} (id, " + ANN_COLUMNS + ") SELECT ? + key, "  # noqa: S608
    "json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2][0]'), "
    "json_extract(value, '$[2][1]'), json_extract(value, '$[2][2]'), "
    "json_extract(value, '$[2][3]'), json_extract(value, '$[3]'), json_extract(value, '$[4]'), "
    "'import', ?, NULL, ?, ?, 1, 0, "
    "?, ? FROM json_each(?)"
)
PG_ANN_COPY = "COPY {table} (" + ANN_COLUMNS + ") FROM STDIN"


def _sql(template: str, model) -> str:
    """Fill in the table name (never user input); values always go as parameters."""
    return template.replace("{table}", connection.ops.quote_name(model._meta.db_table))


def _copy_text(value: str) -> str:
    """Escape JSON text for COPY's text format (JSON holds no raw tab or newline)."""
    return value.replace("\\", "\\\\") if "\\" in value else value


def _foreign_keys_immediate(cur):
    """Check the annotation table's deferred foreign keys as each row arrives; return the
    statement that defers them again.

    Django declares foreign keys ``DEFERRABLE INITIALLY DEFERRED``: checked at commit,
    one lookup per row and key, after the last batch, while nothing else runs. Checked
    immediately, the same lookups happen inside each ``COPY``, in the database's own
    process, while the importer's thread reads the next batch. Same checks, same
    transaction: a broken reference still fails the import and nothing is written.
    """
    from psycopg import sql

    cur.execute(
        "SELECT conname FROM pg_constraint WHERE contype = 'f' AND condeferred "
        "AND conrelid = %s::regclass ORDER BY conname",
        [Annotation._meta.db_table],
    )
    found = [sql.Identifier(name) for (name,) in cur.fetchall()]
    if not found:
        return ""
    names = sql.SQL(", ").join(found)
    cur.execute(sql.SQL("SET CONSTRAINTS {} IMMEDIATE").format(names))
    return sql.SQL("SET CONSTRAINTS {} DEFERRED").format(names)


class _Writer:
    """Write the annotations on a second thread, batch by batch.

    The importer's thread goes on reading and validating the next batch while this one's
    rows are written: PostgreSQL receives them with ``COPY`` and does the inserting in its
    own process; SQLite's module releases the GIL while SQLite inserts. Both threads use
    the one connection, inside the import's one transaction (psycopg serialises its use
    with a lock; SQLite's library with its own mutex). Each batch is serialised by msgspec,
    in C: one JSON array for SQLite, ``COPY`` text lines for PostgreSQL.

    Precondition: inside the import's ``transaction.atomic()`` block; ``close()`` must be
    called before that block ends, whatever happened, so that no write outlives it.
    """

    QUEUED = 2  # batches waiting: bounds memory while the database catches up

    def __init__(self, job: Job, status: str, detail: str) -> None:
        self.status, self.detail = status, detail[:200]
        self.actor_id = job.created_by_id
        now = timezone.now()
        self.postgres = connection.vendor == "postgresql"
        self.error: BaseException | None = None
        self.queue: queue.Queue = queue.Queue(self.QUEUED)
        self.thread: threading.Thread | None = None
        if self.postgres:
            actor = "\\N" if self.actor_id is None else str(self.actor_id)
            stamp = now.isoformat()
            self.tail = f"\timport\t{_copy_text(self.detail)}\t\\N\t{status}\t{actor}\t1\tf\t{stamp}\t{stamp}\n"
        else:
            self.now = connection.ops.adapt_datetimefield_value(now)
            self.next_id: int | None = None

    def insert(self, rows: list[tuple[int, int, geo.Geometry, dict, bool]]) -> None:
        """Queue a batch of validated rows (image id, class id, geometry, attributes, crowd)."""
        self._check()
        if self.thread is None:
            connection.ensure_connection()
            self.thread = threading.Thread(
                target=self._work, args=(connection.connection,), name="import-writer", daemon=True
            )
            self.thread.start()
        batch = self._copy_batch(rows) if self.postgres else self._sqlite_batch(rows)
        while True:  # never block for good on a writer that has died
            try:
                self.queue.put(batch, timeout=0.5)
                break
            except queue.Full:
                self._check()

    def close(self) -> None:
        """Wait until every queued batch is written; raise the writer's error, if any."""
        if self.thread is not None:
            self.queue.put(None)
            self.thread.join()
            self.thread = None
        self._check()

    def abandon(self) -> None:
        """Stop without writing what is still queued (the transaction is rolled back)."""
        if self.thread is not None:
            self.error = self.error or _Abandoned()
            while True:
                try:
                    self.queue.get_nowait()
                except queue.Empty:
                    break
            self.queue.put(None)
            self.thread.join()
            self.thread = None

    def _check(self) -> None:
        if self.error is not None and not isinstance(self.error, _Abandoned):
            raise self.error

    def _work(self, raw) -> None:
        try:
            with closing(raw.cursor()) as cur:
                deferred = _foreign_keys_immediate(cur) if self.postgres else None
                done = False
                while not done:
                    batches = [self.queue.get()]
                    while batches[-1] is not None and not self.queue.empty():
                        batches.append(self.queue.get())  # the database fell behind: merge
                    if batches[-1] is None:
                        done = True
                        batches.pop()
                    if batches and self.error is None:
                        if self.postgres:
                            self._copy(cur, "".join(batches))
                        else:
                            self._insert_json(cur, batches)
                if deferred:
                    cur.execute(deferred)
        except BaseException as exc:  # noqa: BLE001 - raised again in the importer's thread
            self.error = exc
            while self.queue.get() is not None:  # let the importer's puts through
                pass

    # PostgreSQL: one COPY per batch; the ids come from the table's sequence.

    def _copy_batch(self, rows) -> str:
        tail, dumps = self.tail, _json
        lines = []
        for image_id, class_id, shape, attributes, crowd in rows:
            geometry = _copy_text(dumps(shape.data).decode())
            attrs = _copy_text(dumps(attributes).decode()) if attributes else "{}"
            lines.append(f"{image_id}\t{class_id}\t{shape.kind}\t{geometry}\t{shape.area!r}\t"
                         f"{dumps(shape.bbox).decode()}\t{attrs}\t{'t' if crowd else 'f'}{tail}")  # fmt: skip
        return "".join(lines)

    def _copy(self, cur, text: str) -> None:
        with cur.copy(_sql(PG_ANN_COPY, Annotation)) as copy:
            copy.write(text)

    # SQLite: ids follow the table's maximum (the transaction holds the only write lock).

    def _sqlite_batch(self, rows) -> tuple[int, int, str]:
        if self.next_id is None:
            with connection.cursor() as cur:
                table = Annotation._meta.db_table
                cur.execute(_sql("SELECT COALESCE(MAX(id), 0) FROM {table}", Annotation))
                top = cur.fetchone()[0]
                cur.execute(
                    "SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence WHERE name = %s", [table]
                )
                self.next_id = max(top, cur.fetchone()[0]) + 1
        first = self.next_id
        self.next_id += len(rows)
        # Each row as [image id, class id, [kind, data, area, bbox], attributes, crowd]: the rows
        # and their Geometry named tuples as they are, serialised in one call.
        return first, len(rows), _json(rows).decode()[1:-1]

    def _insert_json(self, cur, batches: list[tuple[int, int, str]]) -> None:
        first = batches[0][0]  # ids are contiguous across batches
        text = "[" + ", ".join(body for _, _, body in batches) + "]"
        cur.execute(_sql(SQLITE_ANN_INSERT, Annotation),
                    (first, self.detail, self.status, self.actor_id, self.now, self.now, text))  # fmt: skip


class _Abandoned(Exception):
    """The import stopped (it failed or was cancelled): nothing more is written."""
