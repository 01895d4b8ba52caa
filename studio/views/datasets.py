"""Dataset pages: creating a dataset, its image grid with filters, snapshots and metadata,
and uploads. An image's own page is annotation/views/images.py."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from studio import selectors
from studio.converters import parse_id
from studio.errors import ApplicationError
from studio.forms import (
    DatasetForm,
    MetadataForm,
    SnapshotForm,
    UploadForm,
)
from studio.ml.backbones import SPECS
from studio.pagination import seek_page
from studio.services import datasets as dataset_services
from studio.services import ingest as ingest_services
from studio.views.base import form_error, member_view, require_allowed

GRID_PAGE = 48


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
