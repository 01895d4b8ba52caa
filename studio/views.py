"""Browser pages (templates + htmx). Each view calls selectors to read and services to write."""

from __future__ import annotations

from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotation import selectors as curation
from annotation.services import embeddings as embedding_services
from studio import job_display, selectors
from studio.converters import parse_id
from studio.errors import ApplicationError, Forbidden, NotFound
from studio.forms import (
    ApproachFormSet,
    CriterionFormSet,
    DatasetForm,
    MemberForm,
    MetadataForm,
    ObjectiveForm,
    ProblemForm,
    ProjectForm,
    RoleForm,
    SnapshotForm,
    UploadForm,
)
from studio.ml.backbones import DEFAULT_BACKBONE, SPECS
from studio.models import Job
from studio.pagination import seek_page
from studio.permissions import Capability, can
from studio.services import datasets as dataset_services
from studio.services import ingest as ingest_services
from studio.services import jobs as job_services
from studio.services import projects as project_services

GRID_PAGE = 48
FILES_PAGE = 100


def member_view(fn):
    """Resolve ``slug`` to a project the user belongs to (404 otherwise) and pass it on."""

    @login_required
    @wraps(fn)
    def wrapper(request, slug, *args, **kwargs):
        try:
            project = selectors.project_get(user=request.user, slug=slug)
        except NotFound:
            raise Http404("Project not found")
        request.can_manage = can(request.user, project, Capability.MANAGE)
        request.can_contribute = can(request.user, project, Capability.CONTRIBUTE)
        try:
            return fn(request, project, *args, **kwargs)
        except NotFound as exc:
            raise Http404(exc.message)
        except Forbidden as exc:  # a role refused by a service the view did not catch
            raise PermissionDenied(exc.message)

    return wrapper


def require_allowed(allowed: bool, who: str) -> None:
    """Refuse a form page to a role that could not submit it (a 403 page, not a dead form)."""
    if not allowed:
        raise PermissionDenied(f"Only {who} can do this.")


def form_error(form, exc: ApplicationError | DjangoValidationError) -> None:
    """Show a service's refusal on the form; a refused role is a 403 page, not a form error."""
    if isinstance(exc, Forbidden):
        raise PermissionDenied(exc.message)
    if isinstance(exc, DjangoValidationError):
        for message in exc.messages:
            form.add_error(None, message)
    else:
        form.add_error(None, exc.message)


@require_GET
@login_required
def project_list(request: HttpRequest) -> HttpResponse:
    projects = selectors.project_list(user=request.user)
    return render(request, "studio/project_list.html", {"projects": projects})


@require_http_methods(["GET", "POST"])
@login_required
def project_create(request: HttpRequest) -> HttpResponse:
    form = ProjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            project = project_services.project_create(owner=request.user, **form.cleaned_data)
        except ApplicationError as exc:
            form_error(form, exc)
        else:
            messages.success(request, f"Project “{project.name}” created. Add its objectives next.")
            return redirect("studio:project_detail", slug=project.slug)
    return render(request, "studio/project_form.html", {"form": form})


@require_GET
@member_view
def project_detail(request: HttpRequest, project) -> HttpResponse:
    user = request.user
    jobs = list(selectors.job_list(user=user, project=project)[:8])
    context = {
        "project": project,
        "jobs": jobs,
        "jobs_active": any(j.is_active for j in jobs),
        "objectives": selectors.objective_list(user=user, project=project),
        "problem": selectors.problem_statement_get(user=user, project=project),
        "datasets": selectors.dataset_list(user=user, project=project),
        "members": selectors.member_list(user=user, project=project),
    }
    template = "studio/project_detail.html"
    if request.htmx and request.GET.get("fragment") == "jobs":
        template += "#jobs"
    return render(request, template, context)


@require_http_methods(["GET", "POST"])
@member_view
def project_edit(request: HttpRequest, project) -> HttpResponse:
    require_allowed(request.can_manage, "the project's leads")
    form = ProjectForm(
        request.POST or None,
        initial={"name": project.name, "business_problem": project.business_problem},
    )
    if request.method == "POST" and form.is_valid():
        try:
            project_services.project_update(
                actor=request.user, project=project, **form.cleaned_data
            )
        except ApplicationError as exc:
            form_error(form, exc)
        else:
            return redirect("studio:project_detail", slug=project.slug)
    return render(request, "studio/project_form.html", {"form": form, "project": project})


@require_http_methods(["GET", "POST"])
@member_view
def objective_edit(request: HttpRequest, project, objective_id: int | None = None) -> HttpResponse:
    require_allowed(request.can_manage, "the project's leads")
    objective = (
        selectors.objective_get(user=request.user, project=project, objective_id=objective_id)
        if objective_id
        else None
    )
    members = project.members.all()
    form = ObjectiveForm(request.POST or None, instance=objective, members=members)
    if request.method == "POST" and form.is_valid():
        data = {f: form.cleaned_data[f] for f in form.Meta.fields}
        try:
            if objective:
                project_services.objective_update(actor=request.user, objective=objective, **data)
            else:
                project_services.objective_create(actor=request.user, project=project, **data)
        except (ApplicationError, DjangoValidationError) as exc:
            form_error(form, exc)
        else:
            messages.success(request, "Objective saved.")
            return redirect("studio:project_detail", slug=project.slug)
    return render(
        request,
        "studio/objective_form.html",
        {"form": form, "project": project, "objective": objective},
    )


@require_http_methods(["GET", "POST"])
@member_view
def problem_edit(request: HttpRequest, project) -> HttpResponse:
    require_allowed(request.can_manage, "the project's leads")
    problem = selectors.problem_statement_get(user=request.user, project=project)
    initial = {}
    approaches_initial, criteria_initial = [], []
    if problem:
        initial = {
            f: getattr(problem, f)
            for f in (
                "task_type",
                "description",
                "serving_mode",
                "latency_budget_ms",
                "model_size_budget_mb",
            )
        }
        approaches_initial = [
            {"name": a.name, "notes": a.notes, "priority": a.priority, "status": a.status}
            for a in problem.approaches.all()
        ]
        criteria_initial = [
            {
                "metric": c.metric,
                "comparison": c.comparison,
                "threshold": c.threshold,
                "slice": c.slice,
            }
            for c in problem.criteria.all()
        ]
    data = request.POST or None
    form = ProblemForm(data, initial=initial)
    approaches = ApproachFormSet(data, initial=approaches_initial, prefix="approaches")
    criteria = CriterionFormSet(data, initial=criteria_initial, prefix="criteria")
    if (
        request.method == "POST"
        and form.is_valid()
        and approaches.is_valid()
        and criteria.is_valid()
    ):

        def rows(formset):
            # Every filled row is kept, edited or not; blank extra rows and deleted ones are not.
            return [
                {k: v for k, v in f.cleaned_data.items() if k != "DELETE"}
                for f in formset.forms
                if f.cleaned_data and not f.cleaned_data.get("DELETE")
            ]

        try:
            project_services.problem_statement_set(
                actor=request.user,
                project=project,
                approaches=rows(approaches),
                criteria=rows(criteria),
                **form.cleaned_data,
            )
        except (ApplicationError, DjangoValidationError) as exc:
            form_error(form, exc)
        else:
            messages.success(request, "Problem statement saved.")
            return redirect("studio:project_detail", slug=project.slug)
    return render(
        request,
        "studio/problem_form.html",
        {"form": form, "approaches": approaches, "criteria": criteria, "project": project},
    )


@require_http_methods(["GET", "POST"])
@member_view
def members(request: HttpRequest, project) -> HttpResponse:
    form = MemberForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            project_services.member_add(actor=request.user, project=project, **form.cleaned_data)
        except ApplicationError as exc:
            form_error(form, exc)
        else:
            messages.success(request, f"{form.cleaned_data['username']} added.")
            return redirect("studio:members", slug=project.slug)
    return render(
        request,
        "studio/members.html",
        {
            "project": project,
            "form": form,
            "role_form": RoleForm(),
            "members": selectors.member_list(user=request.user, project=project),
        },
    )


@require_POST
@member_view
def member_change(request: HttpRequest, project, membership_id: int) -> HttpResponse:
    require_allowed(request.can_manage, "the project's leads")
    membership = selectors.member_get(
        user=request.user, project=project, membership_id=membership_id
    )
    try:
        if request.POST.get("action") == "remove":
            if request.POST.get("confirm") != "1":
                from studio.views_confirm import confirm_member_remove

                return confirm_member_remove(request, project, membership)
            project_services.member_remove(actor=request.user, membership=membership)
            messages.success(request, f"{membership.user.username} removed.")
        else:
            form = RoleForm(request.POST)
            if not form.is_valid():
                raise ApplicationError("Choose a valid role.")
            project_services.member_update_role(
                actor=request.user, membership=membership, **form.cleaned_data
            )
            messages.success(request, f"{membership.user.username} is now {membership.role}.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("studio:members", slug=project.slug)


@require_http_methods(["GET", "POST"])
@member_view
def dataset_create(request: HttpRequest, project) -> HttpResponse:
    require_allowed(request.can_contribute, "the project's leads and reviewers")
    form = DatasetForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            dataset = dataset_services.dataset_create(
                actor=request.user, project=project, **form.cleaned_data
            )
        except ApplicationError as exc:
            form_error(form, exc)
        else:
            return redirect("studio:upload", slug=project.slug, dataset_id=dataset.pk)
    return render(request, "studio/dataset_form.html", {"form": form, "project": project})


def _int_or_none(value) -> int | None:
    return parse_id(value)


@require_GET
@member_view
def dataset_detail(request: HttpRequest, project, dataset_id: int) -> HttpResponse:
    user = request.user
    dataset = selectors.dataset_get(user=user, project=project, dataset_id=dataset_id)
    versions = list(selectors.version_list(user=user, dataset=dataset))
    number = _int_or_none(request.GET.get("version"))
    version = selectors.version_get(user=user, dataset=dataset, number=number) if number else None
    split = (
        request.GET.get("split") if request.GET.get("split") in ("train", "val", "test") else None
    )
    error = None
    try:
        meta = selectors.metadata_filters_from_params(project=project, params=request.GET)
    except ApplicationError as exc:
        meta, error = {}, exc.message
    cluster_id = _int_or_none(request.GET.get("cluster"))
    images = selectors.image_list(
        user=user, project=project, dataset=dataset, version=version, split=split, metadata=meta,
        cluster_id=cluster_id,
    )  # fmt: skip
    page = seek_page(
        images,
        size=GRID_PAGE,
        after=parse_id(request.GET.get("after")),
        before=parse_id(request.GET.get("before")),
        total=selectors.image_total(
            dataset=dataset, version=version, filtered=bool(split or meta or cluster_id)
        ),
    )
    query = request.GET.copy()
    for key in ("page", "after", "before"):
        query.pop(key, None)
    context = {
        "project": project,
        "dataset": dataset,
        "versions": versions,
        "version": version,
        "split": split,
        "meta_fields": [(f, meta.get(f, "")) for f in project.metadata_fields],
        "filter_error": error,
        "page": page,
        "query": query.urlencode(),
        "filter_active": any(
            k.startswith(("meta.", "quality.")) or k in ("split", "cluster")
            for k, v in query.items()
            if v
        ),
        "backbones": [(name, spec.label) for name, spec in SPECS.items()],
        "metadata_form": MetadataForm(),
        "snapshot_form": SnapshotForm(),
    }
    template = "studio/dataset_detail.html#grid" if request.htmx else "studio/dataset_detail.html"
    return render(request, template, context)


@require_POST
@member_view
def dataset_snapshot(request: HttpRequest, project, dataset_id: int) -> HttpResponse:
    dataset = selectors.dataset_get(user=request.user, project=project, dataset_id=dataset_id)
    form = SnapshotForm(request.POST)
    note = form.cleaned_data["note"] if form.is_valid() else ""
    try:
        version, created = dataset_services.dataset_version_snapshot(
            actor=request.user, dataset=dataset, note=note
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        if created:
            messages.success(
                request, f"Version {version.number} created ({version.image_count} images)."
            )
        else:
            messages.info(request, f"Nothing changed since version {version.number}.")
    return redirect("studio:dataset_detail", slug=project.slug, dataset_id=dataset.pk)


@require_POST
@member_view
def dataset_metadata(request: HttpRequest, project, dataset_id: int) -> HttpResponse:
    dataset = selectors.dataset_get(user=request.user, project=project, dataset_id=dataset_id)
    form = MetadataForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, "Choose a CSV or JSON file.")
    else:
        upload = form.cleaned_data["file"]
        try:
            report = dataset_services.image_metadata_bulk_set(
                actor=request.user,
                project=project,
                dataset=dataset,
                content=upload.read(dataset_services.MAX_METADATA_BYTES + 1),
                filename=upload.name,
            )
        except ApplicationError as exc:
            messages.error(request, f"Metadata not applied: {exc.message}")
        else:
            text = f"Metadata set on {report['updated']} images."
            if report["unmatched"]:
                names = ", ".join(report["unmatched"][:5])
                more = "…" if len(report["unmatched"]) > 5 else ""
                text += f" {len(report['unmatched'])} names matched no image: {names}{more}"
            messages.success(request, text)
    return redirect("studio:dataset_detail", slug=project.slug, dataset_id=dataset.pk)


@require_GET
@member_view
def image_detail(request: HttpRequest, project, image_id: int) -> HttpResponse:
    image = selectors.image_get(user=request.user, project=project, image_id=image_id)
    similar, similar_note, space = [], "", None
    try:
        space = curation.embedding_space_get(user=request.user, project=project)
        found = embedding_services.similar_images(space=space, image=image, k=12)
        by_id = selectors.image_list(user=request.user, project=project).in_bulk(
            [i for i, _ in found]
        )
        similar = [(by_id[i], score) for i, score in found if i in by_id]
    except ApplicationError as exc:
        similar_note = exc.message
    annotations = list(curation.annotation_list(user=request.user, project=project, image=image))
    return render(
        request,
        "studio/image_detail.html",
        {
            "project": project,
            "image": image,
            "datasets": image.datasets.all(),
            "similar": similar,
            "similar_note": similar_note,
            "space": space,
            "annotations": annotations,
            "overlay": [_overlay_shape(a) for a in annotations],
        },
    )


def _overlay_shape(annotation) -> dict:
    """SVG drawing data for an annotation: polygon points, or a rectangle (boxes, and mask extents)."""
    shape = {
        "colour": annotation.label_class.colour,
        "name": annotation.label_class.name,
        "kind": annotation.kind,
    }
    if annotation.kind == "polygon":  # every part (a multi-part polygon has several)
        parts = annotation.geometry.get("parts") or [annotation.geometry["points"]]
        shape["parts"] = [
            " ".join(f"{pts[i]},{pts[i + 1]}" for i in range(0, len(pts), 2)) for pts in parts
        ]
    elif annotation.kind in ("box", "mask"):
        x, y, w, h = annotation.bbox
        shape.update(x=x, y=y, w=w, h=h, dashed=annotation.kind == "mask")
    return shape


@require_POST
@member_view
def version_embed(request: HttpRequest, project, dataset_id: int, number: int) -> HttpResponse:
    dataset = selectors.dataset_get(user=request.user, project=project, dataset_id=dataset_id)
    version = selectors.version_get(user=request.user, dataset=dataset, number=number)
    try:
        job = embedding_services.embedding_job_start(
            actor=request.user,
            version=version,
            backbone=request.POST.get("backbone") or DEFAULT_BACKBONE,
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect(
            f"{reverse('studio:dataset_detail', args=[project.slug, dataset.pk])}?version={number}"
        )
    return redirect("studio:job_detail", job_id=job.pk)


@require_http_methods(["GET", "POST"])
@member_view
def upload(request: HttpRequest, project, dataset_id: int) -> HttpResponse:
    require_allowed(request.can_contribute, "the project's leads and reviewers")
    dataset = selectors.dataset_get(user=request.user, project=project, dataset_id=dataset_id)
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            job = ingest_services.upload_create(
                actor=request.user,
                project=project,
                dataset=dataset,
                files=form.cleaned_data["files"],
            )
        except ApplicationError as exc:
            form_error(form, exc)
        else:
            return redirect("studio:job_detail", job_id=job.pk)
    return render(
        request, "studio/upload.html", {"form": form, "project": project, "dataset": dataset}
    )


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
