"""Job claiming, retries, cancellation and the sweeper (studio/services/jobs.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from studio.errors import ApplicationError, Forbidden
from studio.models import Job
from studio.services import jobs as job_services
from studio.services.ingest import upload_create
from tests.factories import image_bytes, upload


@pytest.fixture
def job(team, dataset):
    return upload_create(
        actor=team["lead"],
        project=team["project"],
        dataset=dataset,
        files=[upload("a.jpg", image_bytes(1))],
    )


@pytest.fixture
def flaky(monkeypatch):
    """Register a job handler that fails a given number of times, then succeeds."""
    state = {"fail": 0, "calls": 0}

    def handler(job, ctx):
        state["calls"] += 1
        if state["calls"] <= state["fail"]:
            raise RuntimeError("disk full")
        return {"ok": True}

    monkeypatch.setitem(job_services.HANDLERS, Job.Kind.INGEST, handler)
    return state


def test_duplicate_delivery_while_a_worker_holds_the_job_is_dropped(job, flaky):
    Job.objects.filter(pk=job.pk).update(status="running", heartbeat_at=timezone.now(), attempts=1)
    job_services.job_run(job_id=job.pk)
    assert flaky["calls"] == 0
    job.refresh_from_db()
    assert job.status == "running" and job.attempts == 1


def test_finished_job_is_never_run_again(job, flaky):
    job_services.job_run(job_id=job.pk)
    job_services.job_run(job_id=job.pk)
    assert flaky["calls"] == 1
    job.refresh_from_db()
    assert job.status == "succeeded" and job.result == {"ok": True}


def test_internal_error_retries_then_gives_up_with_a_readable_error(
    job, flaky, django_capture_on_commit_callbacks
):
    flaky["fail"] = 99
    for _ in range(3):
        job_services.job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "failed" and job.attempts == 3
    assert "RuntimeError: disk full" in job.error


def test_transient_error_recovers_on_the_next_attempt(job, flaky):
    flaky["fail"] = 1
    job_services.job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "queued" and "disk full" in job.error
    job_services.job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "succeeded" and job.error == "" and job.attempts == 2


def test_sweeper_requeues_silent_jobs_and_gives_up_after_max_attempts(job, flaky, settings):
    settings.STUDIO = {**settings.STUDIO, "JOB_STALE_AFTER_S": 60}
    old = timezone.now() - timedelta(minutes=5)
    Job.objects.filter(pk=job.pk).update(status="running", heartbeat_at=old, attempts=3)
    assert job_services.jobs_sweep() == [job.pk]
    job.refresh_from_db()
    assert job.status == "queued" and "Worker lost" in job.message
    assert job_services.jobs_sweep() == []  # fresh again: not swept twice
    job_services.job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "failed" and "Gave up after 3 attempts" in job.error
    assert flaky["calls"] == 0


def test_cancel_queued_job_at_once(team, job, flaky):
    job_services.job_cancel(actor=team["reviewer"], job=job)
    job.refresh_from_db()
    assert job.status == "cancelled"
    job_services.job_run(job_id=job.pk)
    assert flaky["calls"] == 0
    with pytest.raises(ApplicationError, match="already cancelled"):
        job_services.job_cancel(actor=team["lead"], job=job)


def test_cancel_running_job_stops_at_next_progress_report(team, job, monkeypatch, settings):
    settings.STUDIO = {**settings.STUDIO, "JOB_HEARTBEAT_S": 0}

    def handler(job, ctx):
        for i in range(10):
            if i == 3:
                job_services.job_cancel(actor=team["lead"], job=job)
            ctx.progress(i, 10, "working")
        return {}

    monkeypatch.setitem(job_services.HANDLERS, Job.Kind.INGEST, handler)
    job_services.job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "cancelled" and job.progress == 30


def test_retry_resumes_a_failed_job(team, job, flaky):
    flaky["fail"] = 3
    for _ in range(3):
        job_services.job_run(job_id=job.pk)
    with pytest.raises(Forbidden):
        job_services.job_retry(actor=team["viewer"], job=job)
    job_services.job_retry(actor=team["lead"], job=job)
    job.refresh_from_db()
    assert job.status == "queued" and job.attempts == 0
    job_services.job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "succeeded"
