"""Running jobs: claim, progress, checkpoints, retries, cancellation and the stale-job sweeper.

A job's service must be idempotent: it reads ``job.checkpoint`` to resume and writes it
(in the same transaction as its results) as it goes, so a worker killed at any point
loses nothing and repeats nothing when the task is redelivered or re-queued.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from studio.errors import ApplicationError
from studio.models import Job, Project
from studio.permissions import Capability, require

log = logging.getLogger(__name__)

HANDLERS: dict[str, Callable[[Job, JobContext], dict]] = {}
CLEANUPS: dict[str, Callable[[Job], None]] = {}
# The Celery tasks that take a job id to a worker ("cpu", "gpu"), wired by
# StudioConfig.ready(): the tasks call this module, so this module never imports them.
WORKER_TASKS: dict[str, object] = {}


class JobCancelled(Exception):
    """Raised inside a job's service when a user asked to cancel it."""


def register_worker_tasks(*, cpu, gpu) -> None:
    """Set the Celery tasks that run a job on a CPU worker and on a CUDA worker.

    Each is called as ``task.delay(job_id)`` and must call ``job_run(job_id=...)``.
    """
    WORKER_TASKS.update(cpu=cpu, gpu=gpu)


def register(kind: str, cleanup: Callable[[Job], None] | None = None):
    """Register the service that runs jobs of this kind: ``fn(job, ctx) -> result dict``.

    ``cleanup(job)``, if given, runs once the job is final (succeeded, failed for good or
    cancelled): it removes what the job kept only for resuming, such as staged uploads.
    """

    def wrap(fn):
        HANDLERS[kind] = fn
        if cleanup is not None:
            CLEANUPS[kind] = cleanup
        return fn

    return wrap


class JobContext:
    """What a running job's service uses to report progress and notice cancellation."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self._last_beat = 0.0
        self._interval = settings.STUDIO["JOB_HEARTBEAT_S"]

    def progress(self, done: int, total: int, message: str = "", *, force: bool = False) -> None:
        """Record progress at most once per heartbeat interval; raise JobCancelled if asked."""
        now = time.monotonic()
        if not force and now - self._last_beat < self._interval:
            return
        self._last_beat = now
        pct = min(100, int(100 * done / total)) if total else 0
        Job.objects.filter(pk=self.job.pk).update(
            progress=pct, message=message[:300], heartbeat_at=timezone.now()
        )
        self.job.progress, self.job.message = pct, message
        if Job.objects.filter(pk=self.job.pk, cancel_requested=True).exists():
            raise JobCancelled()

    def save_checkpoint(
        self, checkpoint: dict, *, done: int, total: int, message: str = ""
    ) -> None:
        """Persist the checkpoint; call inside the transaction that wrote the results it covers."""
        pct = min(100, int(100 * done / total)) if total else 0
        self.job.checkpoint = checkpoint
        Job.objects.filter(pk=self.job.pk).update(
            checkpoint=checkpoint, progress=pct, message=message[:300], heartbeat_at=timezone.now()
        )


def job_create(*, project: Project, kind: str, params: dict, created_by) -> Job:
    """Create a queued job; call ``job_enqueue`` (on commit) to hand it to a worker."""
    if kind not in Job.Kind.values:
        raise ApplicationError(f"Unknown job kind {kind!r}.")
    return Job.objects.create(
        project=project,
        kind=kind,
        params=params,
        created_by=created_by,
        max_attempts=settings.STUDIO["JOB_MAX_ATTEMPTS"],
        heartbeat_at=timezone.now(),
    )


# Kinds whose work belongs on a CUDA worker; a job with params["gpu"] (SAM pre-annotation) too.
GPU_KINDS: frozenset[str] = frozenset({Job.Kind.EMBED})


def _send(job_id: int, kind: str, gpu: bool = False) -> None:
    from studio.celery import ensure_broker_folder

    task = WORKER_TASKS["gpu" if gpu or kind in GPU_KINDS else "cpu"]
    try:
        ensure_broker_folder()
        task.delay(job_id)
    except Exception:
        # The row stays queued: the sweeper sends it again once the broker is back.
        log.exception("could not send job %s to the broker", job_id)
        Job.objects.filter(pk=job_id).update(message="Waiting for the job broker to accept it.")


def job_enqueue(job: Job) -> None:
    """Send the job to its queue once the surrounding transaction commits."""
    transaction.on_commit(lambda: _send(job.pk, job.kind, bool(job.params.get("gpu"))))


def _cleanup(job: Job) -> None:
    fn = CLEANUPS.get(job.kind)
    if fn is None:
        return
    try:
        fn(job)
    except Exception:  # noqa: BLE001 - leftovers are logged, the job's outcome stands
        log.exception("cleanup of job %s failed", job.pk)


def _finish(job: Job, status: str, **fields) -> bool:
    """Record a final state if this runner still owns the job; clean up; return whether it did.

    The update is conditional on the status and attempt this runner claimed, so a stale
    runner (one whose job was swept and re-claimed) cannot overwrite a newer outcome.
    """
    owned = Job.objects.filter(pk=job.pk, status=job.status, attempts=job.attempts)
    if not owned.update(status=status, finished_at=timezone.now(), **fields):
        return False
    _cleanup(job)
    return True


def job_claim(job_id: int) -> Job | None:
    """Mark the job running for this worker, or return None when it must not run now.

    ``job_run`` claims before it runs; tests claim directly to stand for a worker that took
    a job and then died.
    """
    stale = timedelta(seconds=settings.STUDIO["JOB_STALE_AFTER_S"])
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status in Job.FINISHED:
            return None
        if job.cancel_requested:
            _finish(job, Job.Status.CANCELLED, message="Cancelled before it started.")
            return None
        now = timezone.now()
        if job.status == Job.Status.RUNNING and job.heartbeat_at and now - job.heartbeat_at < stale:
            return None  # a live worker holds it; this is a duplicate delivery
        if job.attempts >= job.max_attempts:
            _finish(
                job,
                Job.Status.FAILED,
                error=job.error or f"Gave up after {job.attempts} attempts.",
            )
            return None
        job.attempts += 1
        job.status = Job.Status.RUNNING
        job.started_at = job.started_at or now
        job.heartbeat_at = now
        job.message = "Resuming from checkpoint." if job.checkpoint else "Starting."
        job.save(update_fields=["attempts", "status", "started_at", "heartbeat_at", "message"])
        return job


def job_run(*, job_id: int) -> None:
    """Run a job by id: claim it, call its service, record the outcome. Safe to call twice."""
    job = job_claim(job_id)
    if job is None:
        return
    handler = HANDLERS[job.kind]
    try:
        result = handler(job, JobContext(job))
    except JobCancelled:
        _finish(job, Job.Status.CANCELLED, message="Cancelled by a user.")
    except ApplicationError as exc:
        _finish(job, Job.Status.FAILED, error=exc.message, message="Failed.")
    except SoftTimeLimitExceeded:
        _finish(job, Job.Status.FAILED, error="The job ran past its time limit.", message="Failed.")
    except Exception as exc:
        log.exception("job %s failed on attempt %s", job.pk, job.attempts)
        error = f"Internal error on attempt {job.attempts}: {type(exc).__name__}: {exc}"
        if job.attempts < job.max_attempts:
            owned = Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING, attempts=job.attempts)
            if owned.update(
                status=Job.Status.QUEUED, error=error, message="Retrying after an error."
            ):
                job_enqueue(job)
        else:
            _finish(job, Job.Status.FAILED, error=error, message="Failed.")
    else:
        _finish(
            job, Job.Status.SUCCEEDED, progress=100, result=result or {}, message="Done.", error=""
        )


def job_cancel(*, actor, job: Job) -> Job:
    """Cancel a job on a project member's request (see ``job_request_cancel``)."""
    require(actor, job.project, Capability.CONTRIBUTE)
    return job_request_cancel(job=job)


def job_request_cancel(*, job: Job) -> Job:
    """Cancel a queued job at once, or ask a running one to stop at its next progress report.

    Precondition: the caller is allowed to (a project member's check, or the admin's).
    """
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.status in Job.FINISHED:
            raise ApplicationError(f"The job has already {job.status}.")
        cancelled_now = job.status == Job.Status.QUEUED
        if cancelled_now:
            job.status = Job.Status.CANCELLED
            job.finished_at = timezone.now()
            job.message = "Cancelled before it started."
        job.cancel_requested = True
        job.save()
    if cancelled_now:
        _cleanup(job)
    return job


def job_retry(*, actor, job: Job) -> Job:
    """Retry a job on a project member's request (see ``job_requeue``)."""
    require(actor, job.project, Capability.CONTRIBUTE)
    return job_requeue(job=job)


def job_requeue(*, job: Job) -> Job:
    """Queue a failed or cancelled job again from its checkpoint, with fresh attempts.

    Precondition: the caller is allowed to (a project member's check, or the admin's).
    """
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.status not in (Job.Status.FAILED, Job.Status.CANCELLED):
            raise ApplicationError("Only failed or cancelled jobs can be retried.")
        job.status = Job.Status.QUEUED
        job.attempts = 0
        job.cancel_requested = False
        job.error = ""
        job.finished_at = None
        job.heartbeat_at = timezone.now()
        job.message = "Queued again."
        job.save()
        job_enqueue(job)
    return job


def jobs_sweep() -> list[int]:
    """Re-queue jobs whose worker went silent and jobs that waited too long in the queue.

    A running job whose heartbeat is older than ``JOB_STALE_AFTER_S`` lost its worker; a
    queued job that old lost its message. Either is sent again; the claim in ``job_run``
    drops any duplicate delivery, and the job resumes from its checkpoint.
    """
    cutoff = timezone.now() - timedelta(seconds=settings.STUDIO["JOB_STALE_AFTER_S"])
    requeued = []
    with transaction.atomic():
        stale = Job.objects.select_for_update(skip_locked=True).filter(
            status__in=Job.ACTIVE, heartbeat_at__lt=cutoff
        )
        for job in stale:
            job.status = Job.Status.QUEUED
            job.heartbeat_at = timezone.now()
            job.message = "Worker lost; resuming from checkpoint."
            job.save(update_fields=["status", "heartbeat_at", "message"])
            job_enqueue(job)
            requeued.append(job.pk)
    if requeued:
        log.warning("re-queued stale jobs: %s", requeued)
    return requeued
