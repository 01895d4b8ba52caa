"""Helpers over Django's storage API, so they work on local disk and object storage alike."""

from __future__ import annotations

from django.core.files.storage import default_storage


def storage_delete_tree(folder: str) -> int:
    """Delete every file under ``folder`` (recursively); return how many were deleted."""
    try:
        dirs, files = default_storage.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return 0
    deleted = 0
    for name in files:
        default_storage.delete(f"{folder}/{name}")
        deleted += 1
    for sub in dirs:
        deleted += storage_delete_tree(f"{folder}/{sub}")
    return deleted
