"""Celery tasks of the annotation app (jobs themselves run through studio.tasks)."""

from __future__ import annotations

from celery import shared_task

from annotation.services.export import exports_expire


@shared_task(ignore_result=True)
def expire_exports() -> list[int]:
    """Celery beat runs this every ``STUDIO_EXPORT_SWEEP_INTERVAL_S`` seconds."""
    return exports_expire()
