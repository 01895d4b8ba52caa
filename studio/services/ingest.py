"""The ingest job: validate, de-duplicate, store, thumbnail and record each uploaded file.

``upload_create`` runs in the web request: it checks whole-archive limits, stages the
raw files on the storage backend and queues a job. ``ingest_run`` runs on a worker: it
walks the staged items in a fixed order, in chunks; each chunk's files are written
first (under content-addressed names, so a rewrite is a no-op), then its rows and the
checkpoint commit in one transaction. A worker killed anywhere resumes at the first
uncommitted chunk, and every image ends up stored exactly once.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction

from studio.errors import UploadRejected
from studio.models import Dataset, Image, IngestFile, Job, Project
from studio.permissions import Capability, require
from studio.storage import storage_delete_tree
from studio.uploads import (
    Limits,
    ProcessedImage,
    Rejected,
    check_archive,
    is_zip,
    process_image,
    read_entry,
)

from .datasets import dataset_add_images, dataset_version_create
from .jobs import JobContext, job_create, job_enqueue, register

log = logging.getLogger(__name__)

CHUNK = 32
MAX_NAME = 500


def _storage_names(project_id: int, sha: str, ext: str) -> tuple[str, str]:
    return (
        f"projects/{project_id}/images/{sha[:2]}/{sha}.{ext}",
        f"projects/{project_id}/thumbs/{sha[:2]}/{sha}.jpg",
    )


# One check-and-write at a time in this process: an upload holding the same image twice
# is decoded on two threads, and the second thread used to read the first one's file
# half-written, take it for a killed worker's leftover and delete it under the writer
# (FileNotFoundError, a retried job). Decoding stays parallel; only the write is serial.
_SAVE_LOCK = threading.Lock()


def _save_once(name: str, data: bytes) -> None:
    """Write content-addressed bytes unless the same bytes are already there.

    A file left half-written by a killed worker has the right name but other bytes: it
    is replaced, so no row ever points at a truncated file.
    """
    with _SAVE_LOCK:
        if default_storage.exists(name):
            with default_storage.open(name, "rb") as fh:
                if fh.read() == data:
                    return
            default_storage.delete(name)
        saved = default_storage.save(name, ContentFile(data))
        if saved != name:  # another process won the race; keep theirs, drop our copy
            default_storage.delete(saved)


def staging_folder(project_id: int, batch: str) -> str:
    return f"projects/{project_id}/staging/{batch}"


def upload_create(*, actor, project: Project, dataset: Dataset, files: list) -> Job:
    """Stage uploaded files (images or zip archives) and queue an ingest job for them.

    Raises ``UploadRejected`` without leaving anything behind when a file is an archive
    that breaks a whole-archive limit (entries, total bytes) or when no file was sent.
    """
    require(actor, project, Capability.CONTRIBUTE)
    if dataset.project_id != project.pk:
        raise UploadRejected("The dataset is not part of this project.")
    if not files:
        raise UploadRejected("No files were uploaded.")
    limits = Limits.from_settings()
    batch = uuid.uuid4().hex
    staged: list[dict] = []
    try:
        for index, upload in enumerate(files):
            name = os.path.basename(upload.name or f"file-{index}")[:MAX_NAME]
            upload.seek(0)
            archive = is_zip(upload)
            size = getattr(upload, "size", None) or 0
            if not archive and size > limits.max_file_bytes:
                # Not stored at all; the job reports it as rejected with the others.
                reason = f"file is {size:,} bytes; the limit is {limits.max_file_bytes:,}"
                staged.append({"name": name, "path": None, "archive": False, "problem": reason})
                continue
            if archive and size > limits.max_archive_bytes:
                raise UploadRejected(
                    f"{name}: archive is {size:,} bytes; the limit is {limits.max_archive_bytes:,}"
                )
            if archive:
                try:
                    entries = check_archive(upload, limits)
                except Rejected as exc:
                    raise UploadRejected(f"{name}: {exc}")
                upload.seek(0)
                if not entries:
                    raise UploadRejected(f"{name}: the archive holds no files.")
            path = default_storage.save(f"{staging_folder(project.pk, batch)}/{index:05d}", upload)
            staged.append({"name": name, "path": path, "archive": archive})
        with transaction.atomic():
            job = job_create(
                project=project,
                kind=Job.Kind.INGEST,
                params={
                    "dataset": dataset.pk,
                    "staged": staged,
                    "staging": staging_folder(project.pk, batch),
                },
                created_by=actor,
            )
            job_enqueue(job)
        return job
    except BaseException:
        # Includes a file whose bytes stopped arriving half-way through its save.
        storage_delete_tree(staging_folder(project.pk, batch))
        raise


@dataclass
class _Item:
    position: int
    name: str
    staged: int
    info: zipfile.ZipInfo | None
    problem: str | None


def _items(staged: list[dict], limits: Limits, stack: ExitStack) -> tuple[list[_Item], dict]:
    """List every file of the upload in a fixed order; open archives are kept in ``stack``."""
    items: list[_Item] = []
    archives: dict[int, zipfile.ZipFile] = {}
    for s_index, entry in enumerate(staged):
        if entry["archive"]:
            fh = stack.enter_context(default_storage.open(entry["path"], "rb"))
            for member in check_archive(fh, limits):
                items.append(
                    _Item(
                        len(items),
                        f"{entry['name']}/{member.name}"[:MAX_NAME],
                        s_index,
                        member.info,
                        member.problem,
                    )
                )
            fh.seek(0)
            archives[s_index] = stack.enter_context(zipfile.ZipFile(fh))
        else:
            items.append(_Item(len(items), entry["name"], s_index, None, entry.get("problem")))
    return items, archives


def _read(item: _Item, staged: list[dict], archives: dict, limits: Limits) -> bytes:
    if item.info is None:
        with default_storage.open(staged[item.staged]["path"], "rb") as fh:
            data = fh.read(limits.max_file_bytes + 1)
        if len(data) > limits.max_file_bytes:
            raise Rejected(f"file is larger than the limit of {limits.max_file_bytes:,} bytes")
        return data
    try:
        return read_entry(archives[item.staged], item.info, limits)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise Rejected(f"damaged archive entry: {exc}")


def _process(item: _Item, project_id: int, staged, archives, limits) -> ProcessedImage | str:
    """Validate one file and write its original and thumbnail; return it, or why it was rejected."""
    if item.problem:
        return item.problem
    try:
        data = _read(item, staged, archives, limits)
        processed = process_image(data, limits)
    except Rejected as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - one odd file must not fail the whole upload
        log.warning("ingest: %s could not be processed", item.name, exc_info=True)
        return f"could not be processed: {type(exc).__name__}: {exc}"[:300]
    original, thumb = _storage_names(project_id, processed.sha256, processed.extension)
    _save_once(original, data)
    _save_once(thumb, processed.thumbnail)
    return processed


def _chunks(items: list[_Item], start: int) -> Iterator[list[_Item]]:
    for i in range(start, len(items), CHUNK):
        yield items[i : i + CHUNK]


def ingest_cleanup(job: Job) -> None:
    """Delete the upload's staged files once the job has reached a final state."""
    folder = job.params.get("staging")
    if folder:
        storage_delete_tree(folder)
    else:
        for entry in job.params.get("staged", []):
            if entry["path"]:
                default_storage.delete(entry["path"])


@register(Job.Kind.INGEST, cleanup=ingest_cleanup)
def ingest_run(job: Job, ctx: JobContext) -> dict:
    """Ingest the job's staged files, resuming after the last committed chunk."""
    dataset = Dataset.objects.filter(pk=job.params["dataset"], project=job.project).first()
    if dataset is None:
        raise UploadRejected("The target dataset was deleted.")
    staged = job.params["staged"]
    limits = Limits.from_settings()
    start = int(job.checkpoint.get("next", 0))
    if "total" in job.checkpoint and start >= job.checkpoint["total"]:
        return _finish_ingest(job, dataset)  # every chunk committed before the worker stopped
    if not all(default_storage.exists(e["path"]) for e in staged if e["path"] is not None):
        raise UploadRejected(
            "The uploaded files were discarded when this job ended; upload them again."
        )
    workers = max(1, settings.STUDIO["INGEST_THREADS"])
    with ExitStack() as stack:
        items, archives = _items(staged, limits, stack)
        total = len(items)
        # Decoding releases the GIL; zip members are read through zipfile's locked shared
        # handle. The next chunk decodes while this one's rows are written (a pipeline).
        pool = stack.enter_context(ThreadPoolExecutor(workers))

        def submit(chunk: list[_Item] | None):
            if chunk is None:
                return None
            fn = lambda it: _process(it, job.project_id, staged, archives, limits)  # noqa: E731
            return chunk, [pool.submit(fn, it) for it in chunk]

        chunks = _chunks(items, start)
        current = submit(next(chunks, None))
        while current is not None:
            chunk, futures = current
            ctx.progress(
                chunk[0].position, total, f"Processing file {chunk[0].position + 1} of {total}"
            )
            outcomes = [f.result() for f in futures]
            current = submit(next(chunks, None))
            _commit_chunk(job, ctx, dataset, chunk, outcomes, total)
    return _finish_ingest(job, dataset)


def _commit_chunk(
    job: Job, ctx: JobContext, dataset: Dataset, chunk: list[_Item], outcomes: list, total: int
) -> None:
    """Record a chunk's images, per-file outcomes and the checkpoint in one transaction."""
    project_id = job.project_id
    good = [o for o in outcomes if isinstance(o, ProcessedImage)]
    with transaction.atomic():
        existing = {
            img.sha256: img
            for img in Image.objects.filter(
                project_id=project_id, sha256__in=[o.sha256 for o in good]
            )
        }
        new_images: dict[str, Image] = {}
        for item, outcome in zip(chunk, outcomes, strict=True):
            if (
                isinstance(outcome, ProcessedImage)
                and outcome.sha256 not in existing
                and outcome.sha256 not in new_images
            ):
                original, thumb = _storage_names(project_id, outcome.sha256, outcome.extension)
                new_images[outcome.sha256] = Image(
                    project_id=project_id,
                    sha256=outcome.sha256,
                    file=original,
                    thumbnail=thumb,
                    original_name=os.path.basename(item.name)[:255],
                    format=outcome.format,
                    width=outcome.width,
                    height=outcome.height,
                    byte_size=outcome.byte_size,
                    captured_at=outcome.captured_at,
                    uploaded_by_id=job.created_by_id,
                )
        _insert_images(project_id, new_images)
        records, image_ids = [], []
        for item, outcome in zip(chunk, outcomes, strict=True):
            if not isinstance(outcome, ProcessedImage):
                records.append(
                    IngestFile(
                        job=job,
                        position=item.position,
                        name=item.name,
                        outcome=IngestFile.Outcome.REJECTED,
                        reason=outcome[:300],
                    )
                )
                continue
            image = existing.get(outcome.sha256)
            if image is None:
                image = new_images[outcome.sha256]
                existing[outcome.sha256] = image
                records.append(
                    IngestFile(
                        job=job,
                        position=item.position,
                        name=item.name,
                        outcome=IngestFile.Outcome.ACCEPTED,
                        image=image,
                    )
                )
            else:
                records.append(
                    IngestFile(
                        job=job,
                        position=item.position,
                        name=item.name,
                        outcome=IngestFile.Outcome.DUPLICATE,
                        image=image,
                        reason=f"same content as {image.original_name} (image {image.pk})"[:300],
                    )
                )
            image_ids.append(image.pk)
        IngestFile.objects.bulk_create(records, ignore_conflicts=True)
        dataset_add_images(dataset=dataset, image_ids=image_ids)
        done = chunk[-1].position + 1
        ctx.save_checkpoint(
            {"next": done, "total": total},
            done=done,
            total=total,
            message=f"Processed {done} of {total} files",
        )


def _insert_images(project_id: int, new_images: dict[str, Image]) -> None:
    """Insert new image rows in one statement; fall back row by row if another job raced us."""
    if not new_images:
        return
    try:
        with transaction.atomic():
            Image.objects.bulk_create(list(new_images.values()))
    except IntegrityError:
        for sha, image in list(new_images.items()):
            new_images[sha], _ = Image.objects.get_or_create(
                project_id=project_id,
                sha256=sha,
                defaults={
                    f.attname: getattr(image, f.attname)
                    for f in Image._meta.concrete_fields
                    if f.attname not in ("id", "project_id", "sha256")
                },
            )


def _finish_ingest(job: Job, dataset: Dataset) -> dict:
    from studio.selectors import ingest_summary

    summary = ingest_summary(job=job)
    version = None
    if summary["accepted"] or summary["duplicate"]:
        version, created = dataset_version_create(
            dataset=dataset, actor=job.created_by, note=f"Ingest job {job.pk}", source_job=job
        )
    return {
        **summary,
        "dataset": dataset.pk,
        "version": version.number if version else None,
    }
