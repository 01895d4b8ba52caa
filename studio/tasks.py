"""Celery tasks: thin wrappers that load a job by id and run its service."""

from __future__ import annotations

from celery import shared_task

from studio.services.jobs import job_run, jobs_sweep


@shared_task(bind=True, acks_late=True, ignore_result=True)
def run_job(self, job_id: int) -> None:
    job_run(job_id=job_id)


@shared_task(bind=True, acks_late=True, ignore_result=True)
def run_gpu_job(self, job_id: int) -> None:
    job_run(job_id=job_id)


@shared_task(ignore_result=True)
def sweep_jobs() -> list[int]:
    return jobs_sweep()
