"""Users' backbone checkpoints: checked by loading them into their architecture before storing."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction

from annotation.models import BackboneCheckpoint
from studio.errors import ApplicationError, Conflict
from studio.limits import Limits, Rejected, check_archive
from studio.ml import backbones
from studio.models import Project
from studio.permissions import Capability, require


def _check_archive(path: str, limit: int) -> None:
    """torch.save writes a zip: check it like any archive before torch expands a record."""
    if not zipfile.is_zipfile(path):
        return  # a bare pickle: read_state_dict decides
    try:
        entries = check_archive(path, Limits.from_settings(), max_bytes=limit)
    except Rejected as exc:
        raise ApplicationError(f"The checkpoint cannot be read: {exc}.")
    bad = next((e for e in entries if e.problem), None)
    if bad is not None:
        raise ApplicationError(f"The checkpoint cannot be read: {bad.name}: {bad.problem}.")


@contextmanager
def local_copy(name: str) -> Iterator[Path]:
    """Yield a local path to a stored file (the file itself on local disk, a temp copy otherwise)."""
    try:
        yield Path(default_storage.path(name))
        return
    except NotImplementedError:
        pass
    with tempfile.NamedTemporaryFile(suffix=Path(name).suffix) as tmp:
        with default_storage.open(name, "rb") as src:
            shutil.copyfileobj(src, tmp)
        tmp.flush()
        yield Path(tmp.name)


def checkpoint_upload(
    *, actor, project: Project, name: str, architecture: str, upload
) -> BackboneCheckpoint:
    """Check an uploaded checkpoint against its architecture, then store it; nothing is kept if it fails.

    Refused with a clear message: an unknown architecture, a file over the size limit, a
    file that is not a torch weights file, one that carries pickled objects other than
    tensors, and one whose tensors do not fit the architecture (missing, extra or
    wrong-shaped weights; the classifier head may differ).
    """
    require(actor, project, Capability.CONTRIBUTE)
    name = (name or "").strip()[:100]
    if not name:
        raise ApplicationError("Give the checkpoint a name.")
    if architecture not in backbones.SPECS:
        raise ApplicationError(
            f"Unknown architecture {architecture!r}; choose one of {', '.join(backbones.SPECS)}."
        )
    limit = settings.STUDIO["MAX_CHECKPOINT_BYTES"]
    size = getattr(upload, "size", 0) or 0
    if size > limit:
        raise ApplicationError(f"The checkpoint is {size:,} bytes; the limit is {limit:,}.")
    digest = hashlib.sha256()
    with tempfile.NamedTemporaryFile(suffix=".pt") as tmp:
        for chunk in upload.chunks():
            digest.update(chunk)
            tmp.write(chunk)
        tmp.flush()
        _check_archive(tmp.name, limit)
        try:
            state = backbones.read_state_dict(Path(tmp.name))
            backbones.load_weights(
                architecture, backbones.build_model(architecture), state, allow_other_head=True
            )
        except backbones.WeightsError as exc:
            raise ApplicationError(str(exc).replace(Path(tmp.name).name, upload.name or "The file"))
        sha = digest.hexdigest()
        if BackboneCheckpoint.objects.filter(project=project, sha256=sha).exists():
            raise Conflict("This checkpoint is already uploaded to the project.")
        tmp.seek(0)
        path = default_storage.save(f"projects/{project.pk}/checkpoints/{sha}.pt", File(tmp))
    try:
        with transaction.atomic():
            return BackboneCheckpoint.objects.create(
                project=project, name=name, architecture=architecture, file=path, sha256=sha,
                byte_size=size or default_storage.size(path), uploaded_by=actor,
            )  # fmt: skip
    except IntegrityError:
        default_storage.delete(path)
        raise Conflict(f"A checkpoint named {name!r} already exists in this project.")
