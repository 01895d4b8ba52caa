"""Datasets, immutable versions, and bulk image metadata."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Max

from studio.errors import ApplicationError, Conflict
from studio.models import (
    Dataset,
    DatasetImage,
    DatasetVersion,
    DatasetVersionItem,
    Image,
    Job,
    Project,
)
from studio.permissions import Capability, require

METADATA_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
MAX_METADATA_BYTES = 20 * 1024 * 1024
# Split ratios in percent; the remainder is the test split.
TRAIN_PCT, VAL_PCT = 80, 10


def split_for(sha256: str) -> str:
    """Assign a split from the content hash alone, so it never changes between versions."""
    bucket = int(sha256[:8], 16) % 100
    if bucket < TRAIN_PCT:
        return "train"
    if bucket < TRAIN_PCT + VAL_PCT:
        return "val"
    return "test"


def manifest_hash(entries: list[tuple[str, str]]) -> str:
    """Hash a manifest of (sha256, split) pairs in canonical (sorted) order."""
    digest = hashlib.sha256()
    for sha, split in sorted(entries):
        digest.update(f"{sha} {split}\n".encode())
    return digest.hexdigest()


@transaction.atomic
def dataset_create(*, actor, project: Project, name: str, description: str = "") -> Dataset:
    require(actor, project, Capability.CONTRIBUTE)
    name = (name or "").strip()
    if not name:
        raise ApplicationError("A dataset needs a name.")
    try:
        with transaction.atomic():
            return Dataset.objects.create(
                project=project, name=name, description=description, created_by=actor
            )
    except IntegrityError:
        raise Conflict(f"This project already has a dataset named {name!r}.")


@transaction.atomic
def dataset_add_images(*, dataset: Dataset, image_ids: list[int]) -> int:
    """Add images to the dataset's working set; return how many were new to it.

    The dataset row is locked while its members are read and added, so the stored
    ``image_count`` moves by exactly the rows added, whatever runs beside it.
    """
    Dataset.objects.select_for_update().filter(pk=dataset.pk).first()
    existing = set(
        DatasetImage.objects.filter(dataset=dataset, image_id__in=image_ids).values_list(
            "image_id", flat=True
        )
    )
    new = [
        DatasetImage(dataset=dataset, image_id=i)
        for i in dict.fromkeys(image_ids)
        if i not in existing
    ]
    DatasetImage.objects.bulk_create(new, ignore_conflicts=True)
    if new:
        Dataset.objects.filter(pk=dataset.pk).update(image_count=F("image_count") + len(new))
    return len(new)


@transaction.atomic
def dataset_version_create(
    *, dataset: Dataset, actor, note: str = "", source_job: Job | None = None
) -> tuple[DatasetVersion, bool]:
    """Snapshot the working set as a new version; return (version, created).

    Returns the latest version unchanged when the working set matches it, and the
    version a job already made when called again for the same job (retries are safe).
    The dataset row is locked so concurrent snapshots get consecutive numbers.
    """
    Dataset.objects.select_for_update().filter(pk=dataset.pk).first()
    if source_job is not None:
        made = DatasetVersion.objects.filter(source_job=source_job).first()
        if made is not None:
            return made, False
    rows = list(dataset.members.values_list("image_id", "image__sha256"))
    if not rows:
        raise ApplicationError("The dataset has no images to snapshot.")
    entries = [(image_id, sha, split_for(sha)) for image_id, sha in rows]
    digest = manifest_hash([(sha, split) for _, sha, split in entries])
    latest = DatasetVersion.objects.filter(dataset=dataset).order_by("-number").first()
    if latest is not None and latest.manifest_hash == digest:
        return latest, False
    number = (
        DatasetVersion.objects.filter(dataset=dataset).aggregate(m=Max("number"))["m"] or 0
    ) + 1
    version = DatasetVersion.objects.create(
        dataset=dataset,
        number=number,
        manifest_hash=digest,
        image_count=len(entries),
        note=note[:300],
        source_job=source_job,
        created_by=actor,
    )
    DatasetVersionItem.objects.bulk_create(
        [DatasetVersionItem(version=version, image_id=i, split=s) for i, _, s in entries],
        batch_size=2000,
    )
    return version, True


def working_set_change(*, dataset: Dataset, image_ids: list[int] | set[int]) -> dict[str, Any]:
    """Say in numbers what making ``image_ids`` the dataset's next version would do.

    Compare with the latest version (what the dataset's pages show): how many images the
    next version would hold, how many fewer and how many more. ``expect`` is the manifest
    hash the new version would have; passing it back on confirmation makes sure the
    action done is the one previewed (nothing else changed the dataset in between).
    """
    after = set(image_ids)
    latest = DatasetVersion.objects.filter(dataset=dataset).order_by("-number").first()
    before = set(latest.items.values_list("image_id", flat=True)) if latest else set()
    shas = Image.objects.filter(pk__in=after).values_list("sha256", flat=True)
    expect = manifest_hash([(sha, split_for(sha)) for sha in shas])
    unchanged = latest is not None and latest.manifest_hash == expect
    removed, added = len(before - after), len(after - before)
    number = latest.number if unchanged else (latest.number + 1 if latest else 1)
    if not after:
        message = "That would leave the dataset empty; nothing will be changed."
    elif unchanged:
        message = f"No change: the images are those of version {latest.number} ({len(before)})."
    else:
        parts = []
        if removed:
            parts.append(f"{removed} fewer")
        if added:
            parts.append(f"{added} more")
        than = f" than version {latest.number} ({len(before)})" if latest else ""
        message = f"Version {number} will have {len(after)} images" + (
            f": {' and '.join(parts)}{than}." if parts else "."
        )
    return {
        "version_before": latest.number if latest else None,
        "images_before": len(before),
        "version_after": number,
        "images_after": len(after),
        "removed": removed,
        "added": added,
        "unchanged": unchanged,
        "empty": not after,
        "expect": expect,
        "message": message,
    }


@transaction.atomic
def dataset_working_set_replace(
    *, actor, dataset: Dataset, image_ids: list[int] | set[int], note: str, expect: str = ""
) -> tuple[DatasetVersion, bool]:
    """Make ``image_ids`` the working set and snapshot it; refuse an empty set.

    Callers ask first (``working_set_change``) and pass the previewed ``expect``: when the
    result would differ from the preview, nothing changes and the caller looks again.
    """
    Dataset.objects.select_for_update().filter(pk=dataset.pk).first()
    change = working_set_change(dataset=dataset, image_ids=image_ids)
    if change["empty"]:
        raise ApplicationError("That would leave the dataset empty; nothing was changed.")
    if expect and expect != change["expect"]:
        raise Conflict(
            "The dataset changed since this was previewed; nothing was changed. Look again."
        )
    ids = set(image_ids)
    DatasetImage.objects.filter(dataset=dataset).exclude(image_id__in=ids).delete()
    DatasetImage.objects.bulk_create(
        [DatasetImage(dataset=dataset, image_id=i) for i in ids], ignore_conflicts=True
    )
    Dataset.objects.filter(pk=dataset.pk).update(
        image_count=DatasetImage.objects.filter(dataset=dataset).count()
    )
    return dataset_version_create(dataset=dataset, actor=actor, note=note)


def dataset_version_restore(
    *, actor, version: DatasetVersion, confirm: bool = False, expect: str = ""
) -> dict[str, Any]:
    """Undo later changes: make a new version holding exactly ``version``'s images.

    Versions are immutable, so a restore adds one (with the restored version's manifest
    hash) rather than deleting any. Without ``confirm`` nothing changes and the answer
    says what would (``applied`` false).
    """
    dataset = version.dataset
    require(actor, dataset.project, Capability.CONTRIBUTE)
    ids = list(version.items.values_list("image_id", flat=True))
    change = working_set_change(dataset=dataset, image_ids=ids)
    if not confirm:
        return {"applied": False, "restores": version.number, **change}
    new, created = dataset_working_set_replace(
        actor=actor, dataset=dataset, image_ids=ids, expect=expect,
        note=f"Restored the images of version {version.number}",
    )  # fmt: skip
    return {
        "applied": True,
        "restores": version.number,
        "version": new.number,
        "created": created,
        **change,
    }


def dataset_version_snapshot(
    *, actor, dataset: Dataset, note: str = ""
) -> tuple[DatasetVersion, bool]:
    """Snapshot on a user's request (permission-checked wrapper of ``dataset_version_create``)."""
    require(actor, dataset.project, Capability.CONTRIBUTE)
    return dataset_version_create(dataset=dataset, actor=actor, note=note)


def version_manifest(version: DatasetVersion) -> dict[str, Any]:
    """Return the version's manifest: image ids, content hashes and splits, plus its hash."""
    items = version.items.select_related("image").order_by("image__sha256")
    return {
        "dataset": version.dataset_id,
        "version": version.number,
        "manifest_hash": version.manifest_hash,
        "images": [
            {"image": it.image_id, "sha256": it.image.sha256, "split": it.split} for it in items
        ],
    }


def _coerce(value: str) -> Any:
    """Turn CSV text into a number where it reads as a finite one, so slices can be binned."""
    text = value.strip()
    for cast in (int, float):
        try:
            number = cast(text)
        except ValueError:
            continue
        return number if math.isfinite(number) else text
    return text


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number Studio can store")


def valid_metadata_key(key: str) -> bool:
    """Letters, digits and single underscores: ``__`` would read as a query lookup."""
    return bool(METADATA_KEY.fullmatch(key)) and "__" not in key


def parse_metadata_file(*, content: bytes, filename: str) -> dict[str, dict[str, Any]]:
    """Parse a CSV (column ``file_name``) or JSON (object keyed by file name) metadata file."""
    if len(content) > MAX_METADATA_BYTES:
        raise ApplicationError("The metadata file is larger than 20 MB.")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ApplicationError("The metadata file must be UTF-8 text (CSV or JSON).")
    stripped = text.lstrip()
    rows: dict[str, dict[str, Any]] = {}
    if filename.lower().endswith(".json") or stripped.startswith(("{", "[")):
        try:
            data = json.loads(text, parse_constant=_reject_constant)
        except (json.JSONDecodeError, ValueError) as exc:
            raise ApplicationError(f"The JSON is not valid: {exc}.")
        except RecursionError:
            raise ApplicationError("The JSON is nested too deeply.")
        if isinstance(data, list):
            data = {
                str(row.get("file_name", "")): {k: v for k, v in row.items() if k != "file_name"}
                for row in data
                if isinstance(row, dict)
            }
        if not isinstance(data, dict):
            raise ApplicationError("JSON metadata must be an object keyed by file name.")
        for name, values in data.items():
            if not isinstance(values, dict):
                raise ApplicationError(f"Metadata for {name!r} must be an object of field: value.")
            rows[str(name)] = values
    else:
        try:
            reader = csv.DictReader(io.StringIO(text))
            if not reader.fieldnames or "file_name" not in reader.fieldnames:
                raise ApplicationError("The CSV needs a header row with a 'file_name' column.")
            for line, row in enumerate(reader, start=2):
                name = (row.pop("file_name") or "").strip()
                if not name:
                    raise ApplicationError(f"Line {line}: empty file_name.")
                if None in row:
                    raise ApplicationError(f"Line {line}: more values than header columns.")
                rows[name] = {k: _coerce(v) for k, v in row.items() if v not in (None, "")}
        except csv.Error as exc:
            raise ApplicationError(f"The CSV is not valid: {exc}.")
    for name, values in rows.items():
        for key, value in values.items():
            if not valid_metadata_key(str(key)):
                raise ApplicationError(
                    f"{name}: field name {key!r} must start with a letter and hold letters, "
                    "digits and single underscores."
                )
            if isinstance(value, float) and not math.isfinite(value):
                raise ApplicationError(f"{name}: field {key!r} is not a finite number.")
            if isinstance(value, dict | list):
                raise ApplicationError(
                    f"{name}: field {key!r} must be a single value, not {type(value).__name__}."
                )
    return rows


@transaction.atomic
def image_metadata_bulk_set(
    *, actor, project: Project, content: bytes, filename: str, dataset: Dataset | None = None
) -> dict[str, Any]:
    """Merge metadata into images matched by their uploaded file name; all or nothing.

    Return a report: how many images were updated, the file names that matched no
    image, and the fields now available as filters.
    """
    require(actor, project, Capability.CONTRIBUTE)
    rows = parse_metadata_file(content=content, filename=filename)
    if not rows:
        raise ApplicationError("The metadata file has no rows.")
    images = Image.objects.filter(project=project, original_name__in=list(rows))
    if dataset is not None:
        images = images.filter(pk__in=dataset.members.values("image_id"))
    updated, matched = [], set()
    for image in images:
        image.metadata = {**image.metadata, **rows[image.original_name]}
        matched.add(image.original_name)
        updated.append(image)
    Image.objects.bulk_update(updated, ["metadata"], batch_size=500)
    fields = sorted({k for name in matched for k in rows[name]} | set(project.metadata_fields))
    if fields != sorted(project.metadata_fields):
        project.metadata_fields = fields
        project.save(update_fields=["metadata_fields"])
    return {
        "updated": len(updated),
        "unmatched": sorted(set(rows) - matched),
        "fields": fields,
    }
