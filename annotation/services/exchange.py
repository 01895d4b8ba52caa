"""What export (``export.py``) and import (``imports.py``) share: the format by name,
the dataset version a job works on, and the batch size both stream in."""

from __future__ import annotations

from annotation.formats import registry
from studio.errors import ApplicationError
from studio.models import DatasetVersion, Job

BATCH = 2000  # rows read, validated or written at a time


def exchange_format(name: str):
    """Return the registered format called ``name``, or raise ApplicationError."""
    formats = registry()
    if name not in formats:
        raise ApplicationError(f"Unknown format {name!r}; use one of {', '.join(formats)}.")
    return formats[name]


def job_version(job: Job) -> DatasetVersion:
    """Return the dataset version an export or import job works on, with its dataset."""
    version = (
        DatasetVersion.objects.filter(pk=job.params["version"], dataset__project=job.project)
        .select_related("dataset")
        .first()
    )
    if version is None:
        raise ApplicationError("The dataset version was deleted.")
    return version
