"""The Celery app: JSON only, late acks, two queues (``default`` and ``gpu``).

Routes, time limits and the periodic tasks (the stale-job sweeper, export expiry) live here, in one place. With no
``CELERY_BROKER_URL`` the broker is kombu's filesystem transport under ``VAR_DIR``, so
one command runs the whole stack on a laptop without a server.
"""

from __future__ import annotations

import os
from pathlib import Path

from celery import Celery
from celery.signals import celeryd_init
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")

app = Celery("studio")
app.config_from_object("django.conf:settings", namespace="CELERY")

# Per-queue limits in seconds: the soft limit raises inside the task, the hard one kills it.
QUEUE_LIMITS = {
    "default": (60 * 60, 60 * 60 + 120),
    "gpu": (12 * 60 * 60, 12 * 60 * 60 + 300),
}

app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    task_default_queue="default",
    task_queues=[Queue("default"), Queue("gpu")],
    task_routes={"studio.tasks.run_gpu_job": {"queue": "gpu"}},
    task_annotations={
        "studio.tasks.run_job": {
            "soft_time_limit": QUEUE_LIMITS["default"][0],
            "time_limit": QUEUE_LIMITS["default"][1],
        },
        "studio.tasks.run_gpu_job": {
            "soft_time_limit": QUEUE_LIMITS["gpu"][0],
            "time_limit": QUEUE_LIMITS["gpu"][1],
        },
    },
    timezone="UTC",
)


@app.on_after_finalize.connect
def _schedule_sweeper(sender, **kwargs) -> None:
    from django.conf import settings

    sender.conf.beat_schedule = {
        "sweep-stale-jobs": {
            "task": "studio.tasks.sweep_jobs",
            "schedule": float(settings.STUDIO["JOB_SWEEP_INTERVAL_S"]),
        },
        "expire-exports": {
            "task": "annotation.tasks.expire_exports",
            "schedule": float(settings.STUDIO["EXPORT_SWEEP_INTERVAL_S"]),
        },
    }


def ensure_broker_folder() -> None:
    """Create the filesystem broker's folders; a no-op for a server broker."""
    options = app.conf.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        if key in options:
            Path(options[key]).mkdir(parents=True, exist_ok=True)


@celeryd_init.connect
def _make_broker_folder(**kwargs) -> None:
    ensure_broker_folder()


app.autodiscover_tasks()
