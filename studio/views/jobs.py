"""Job pages: the list of jobs the user may see, one job's progress and files, cancel
and retry."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from studio import job_display, selectors
from studio.errors import ApplicationError, Forbidden, NotFound
from studio.models import Job
from studio.permissions import Capability, can
from studio.services import jobs as job_services

FILES_PAGE = 100


@require_GET
@login_required
def job_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(selectors.job_list(user=request.user), 50).get_page(request.GET.get("page"))
    return render(request, "studio/job_list.html", {"page": page})


@require_GET
@login_required
def job_detail(request: HttpRequest, job_id: int) -> HttpResponse:
    try:
        job = selectors.job_get(user=request.user, job_id=job_id)
    except NotFound:
        raise Http404("Job not found")
    except Forbidden as exc:
        raise PermissionDenied(exc.message)
    outcome = request.GET.get("outcome") or None
    files = selectors.ingest_file_list(user=request.user, job=job, outcome=outcome)
    page = Paginator(files, FILES_PAGE).get_page(request.GET.get("page"))
    summary = selectors.ingest_summary(job=job)
    steps = job_display.chain(
        job,
        selectors.job_list_by_ids(user=request.user, ids=job_display.follow_up_ids(job)),
    )
    status_line = job_display.outcome(job, summary if job.kind == Job.Kind.INGEST else None)
    context = {
        "job": job,
        "project": job.project,
        "summary": summary,
        "status_line": status_line,
        "steps": steps,
        "polling": job_display.chain_active(job, steps),
        "chain_done": not job_display.chain_active(job, steps),
        "page": page,
        "outcome": outcome,
        "can_cancel": job.is_active and can(request.user, job.project, Capability.CONTRIBUTE),
        "can_retry": job.status in (Job.Status.FAILED, Job.Status.CANCELLED)
        and can(request.user, job.project, Capability.CONTRIBUTE),
        "dataset_id": job.params.get("dataset"),
        "is_ingest": job.kind == Job.Kind.INGEST,
        "version": selectors.version_of_job(user=request.user, job=job),
        "result_rows": job_display.result_rows(job),
        "failed_files": (job.result or {}).get("failed") or [],
        "export_keep_days": settings.STUDIO["EXPORT_KEEP_DAYS"],
    }
    template = "studio/job_detail.html"
    if request.htmx and request.GET.get("fragment") == "status":
        template += "#status"
    return render(request, template, context)


@require_POST
@login_required
def job_action(request: HttpRequest, job_id: int, action: str) -> HttpResponse:
    try:
        job = selectors.job_get(user=request.user, job_id=job_id)
        if action == "cancel":
            job_services.job_cancel(actor=request.user, job=job)
            messages.info(request, "Cancellation requested.")
        elif action == "retry":
            job_services.job_retry(actor=request.user, job=job)
            messages.info(request, "Job queued again; it resumes where it stopped.")
        else:
            raise Http404()
    except NotFound:
        raise Http404("Job not found")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect(reverse("studio:job_detail", args=[job_id]))
