"""Dataset pages: creating a dataset, its image grid with filters, snapshots and metadata,
one image with its annotations, embedding a version, and uploads."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotation.selectors import curation as curation_selectors
from annotation.selectors import labels as label_selectors
from annotation.services import embeddings as embedding_services
from annotation.services import vectors as vector_services
from studio import selectors
from studio.converters import parse_id
from studio.errors import ApplicationError
from studio.forms import (
    DatasetForm,
    MetadataForm,
    SnapshotForm,
    UploadForm,
)
from studio.ml.backbones import DEFAULT_BACKBONE, SPECS
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
    page = Paginator(images, GRID_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
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
        space = curation_selectors.embedding_space_get(user=request.user, project=project)
        found = vector_services.similar_images(space=space, image=image, k=12)
        by_id = selectors.image_list(user=request.user, project=project).in_bulk(
            [i for i, _ in found]
        )
        similar = [(by_id[i], score) for i, score in found if i in by_id]
    except ApplicationError as exc:
        similar_note = exc.message
    annotations = list(
        label_selectors.annotation_list(user=request.user, project=project, image=image)
    )
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
