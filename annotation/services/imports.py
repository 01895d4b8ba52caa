"""Import of annotations as a job, in the formats of ``annotation/formats``.

Import reads the uploaded file as a stream of records, resolves each record's image (by
``original_name`` within the version) and class, validates geometry and attributes in
batches, and inserts the annotations batch by batch (``import_writer.py``), all inside
one transaction. What the version already holds is skipped, replaced or kept beside the
file's shapes as the import's mode says (``reimport.py``); what the file holds that
Studio does not keep is listed in the report (``not_kept``). It writes no revision per
annotation: the job records who imported which file when, each row its author, time and
job (``source_detail``), and an imported annotation's create revision is written when it
first changes (``labels.record_revision``). If any record is wrong the transaction is
rolled back, so a failed import changes nothing; the job fails with the per-record
report in its result. The job is idempotent: an import that dies mid-way left nothing
behind and starts over, and a finished one keeps its result in the checkpoint. Export is
in ``export.py``.
"""

from __future__ import annotations

import gc
import logging
import os
import posixpath
import shutil
import tempfile
import uuid
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import islice

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from annotation import geometry as geo
from annotation.formats import (
    Bundle,
    Catalog,
    FormatError,
    Note,
    Problem,
    Record,
    unsafe_path,
)
from annotation.formats.validation import validate_many
from annotation.models import Annotation, LabelClass
from annotation.services.exchange import BATCH, exchange_format, job_version
from annotation.services.import_writer import ImportWriter
from annotation.services.labels import require_annotator
from annotation.services.reimport import MODES, Existing
from studio.errors import ApplicationError
from studio.models import DatasetVersion, Job
from studio.permissions import Capability, require
from studio.services.jobs import JobContext, job_create, job_enqueue, register
from studio.storage import storage_delete_tree

log = logging.getLogger(__name__)

MAX_PROBLEMS = 1000  # kept in the report; all are counted
IMPORT_STATUSES = (Annotation.Status.DRAFT, Annotation.Status.SUBMITTED)


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
    exchange_format(fmt)
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
    version = job_version(job)
    fmt = exchange_format(job.params["format"])
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
        self.writer = ImportWriter(job, self.status, f"{fmt} import, job {job.pk}")
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


# One statement per batch: the rows arrive as one JSON array, which SQLite reads with
# json_each in C; the GIL stays released while it inserts them all.
