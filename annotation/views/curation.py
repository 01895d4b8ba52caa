"""Curation pages: the map and clusters, duplicate groups, outliers, and the actions."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from annotation import charts
from annotation.selectors import curation as curation_selectors
from annotation.services import checkpoints as checkpoint_services
from annotation.services import curation as curation_services
from annotation.services import embeddings as embedding_services
from studio import selectors
from studio.converters import parse_id
from studio.errors import ApplicationError, NotFound
from studio.ml.backbones import DEFAULT_BACKBONE, SPECS
from studio.pagination import Total, seek_page
from studio.security import chart_page
from studio.views import member_view

QUALITY_LABELS = {
    "brightness": "Brightness (mean luma)",
    "contrast": "Contrast (luma std)",
    "sharpness": "Sharpness (Laplacian variance)",
    "colourfulness": "Colourfulness",
    "aspect_ratio": "Aspect ratio (w/h)",
    "megapixels": "Megapixels",
    "uniqueness": "Uniqueness (1 − nearest similarity)",
    "outlier_score": "Outlier score",
}


def _version(request, project, dataset_id: int):
    dataset = selectors.dataset_get(user=request.user, project=project, dataset_id=dataset_id)
    versions = list(selectors.version_list(user=request.user, dataset=dataset))
    if not versions:
        return dataset, versions, None
    number = parse_id(request.GET.get("version") or request.POST.get("version"))
    number = number or versions[0].number
    return (
        dataset,
        versions,
        selectors.version_get(user=request.user, dataset=dataset, number=number),
    )


def _colour_values(
    request, project, version, run, image_ids: list[int], colour: str
) -> tuple[dict, str]:
    if colour.startswith("meta:"):
        field = colour[5:]
        if field in project.metadata_fields:
            rows = selectors.image_list(
                user=request.user, project=project, version=version
            ).values_list("pk", "metadata")
            return {pk: meta.get(field) for pk, meta in rows}, field
    if colour.startswith("quality:") and colour[8:] in QUALITY_LABELS:
        metric = colour[8:]
        values = curation_selectors.metric_values(
            user=request.user, version=version, metric=metric, image_ids=image_ids
        )
        return values, QUALITY_LABELS[metric]
    if run is not None:
        names = {c.pk: c.display_name for c in run.clusters.all()}
        rows = curation_selectors.image_clusters(user=request.user, run=run)
        return {image: names[cluster] for image, cluster in rows.items()}, "cluster"
    return {}, "—"


@require_GET
@chart_page
@member_view
def curate(request: HttpRequest, project, dataset_id: int) -> HttpResponse:
    dataset, versions, version = _version(request, project, dataset_id)
    context = {"project": project, "dataset": dataset, "versions": versions, "version": version}
    if version is None:
        return render(request, "annotation/curate.html", context)
    running = curation_selectors.curation_jobs_active(user=request.user, version=version)
    if request.htmx and request.GET.get("fragment") == "running":
        if not running:  # done: reload, so every section shows what the jobs made
            return HttpResponse(headers={"HX-Refresh": "true"})
        context["running"] = running
        return render(request, "annotation/curate.html#running", context)
    context["running"] = running
    context["busy"] = {job.kind for job in running}
    undo = request.GET.get("undo", "")
    context["undo"] = next((v for v in versions if str(v.number) == undo), None)
    run = curation_selectors.cluster_run_latest(user=request.user, version=version)
    emap = curation_selectors.embedding_map(user=request.user, version=version)
    colour = request.GET.get("colour", "cluster")
    figure = None
    if emap is not None:
        ids = [p[0] for p in emap.points]
        values, colour_name = _colour_values(request, project, version, run, ids, colour)
        names = dict(
            selectors.image_list(user=request.user, project=project, version=version).values_list(
                "pk", "original_name"
            )
        )
        thumbs = {i: reverse("studio:image_file", args=[i, "thumb"]) for i in ids}
        figure = charts.map_figure(emap.points, values, colour_name, names, thumbs)
    bins = curation_selectors.quality_histograms(user=request.user, version=version)
    histograms = [
        {"id": f"hist-{metric}", "figure": charts.histogram_figure(bins[metric], label)}
        for metric, label in QUALITY_LABELS.items()
        if metric in bins
    ]
    clusters = []
    if run is not None:
        reps = {i for c in run.clusters.all() for i in c.representatives}
        by_id = selectors.image_list(user=request.user, project=project).in_bulk(list(reps))
        clusters = [
            (c, [by_id[i] for i in c.representatives if i in by_id]) for c in run.clusters.all()
        ]
    context.update(
        {
            "run": run,
            "clusters": clusters,
            "figure": figure,
            "histograms": histograms,
            "colour": colour,
            "colour_options": [("cluster", "Cluster")]
            + [(f"meta:{f}", f"Metadata: {f}") for f in project.metadata_fields]
            + [(f"quality:{m}", f"Quality: {label}") for m, label in QUALITY_LABELS.items()],
            "backbones": [(name, spec.label) for name, spec in SPECS.items()]
            + [
                (f"ckpt:{c.pk}", f"Checkpoint: {c.name} ({c.architecture})")
                for c in curation_selectors.checkpoint_list(user=request.user, project=project)
            ],
            "architectures": [(name, spec.label) for name, spec in SPECS.items()],
            "default_backbone": DEFAULT_BACKBONE,
            "duplicate_count": curation_selectors.duplicate_groups(
                user=request.user, version=version
            ).count(),
            "actions": [
                ("keep_only", "Make a new version with only these"),
                ("exclude", "Make a new version without these"),
                ("set_metadata", "Set a metadata field (tag) on these"),
                ("queue", "Send to an annotation queue"),
            ],
        }
    )
    return render(request, "annotation/curate.html", context)


def _back(project, dataset, version, anchor: str = "") -> HttpResponse:
    url = reverse("annotation:curate", args=[project.slug, dataset.pk])
    return redirect(f"{url}?version={version.number}{anchor}" if version else url)


@require_POST
@member_view
def run_job(request: HttpRequest, project, dataset_id: int, kind: str) -> HttpResponse:
    """Start an embed, analyze or cluster job for the version; go to its progress page."""
    dataset, _, version = _version(request, project, dataset_id)
    post = request.POST
    try:
        if version is None:
            raise ApplicationError("Upload images first: the dataset has no version yet.")
        if kind == "embed":
            choice = post.get("backbone") or DEFAULT_BACKBONE
            checkpoint = None
            if choice.startswith("ckpt:"):
                checkpoint = curation_selectors.checkpoint_get(
                    user=request.user, project=project, checkpoint_id=int(choice[5:])
                )
                choice = checkpoint.architecture
            then = ["analyze", "cluster"] if post.get("then") == "all" else None
            job = embedding_services.embedding_job_start(
                actor=request.user,
                version=version,
                backbone=choice,
                checkpoint=checkpoint,
                then=then,
            )
        elif kind == "analyze":
            job = curation_services.analyze_job_start(
                actor=request.user, version=version, threshold=float(post.get("threshold") or 0.85)
            )
        elif kind == "cluster":
            k = int(post["k"]) if post.get("k") else None
            job = curation_services.cluster_job_start(
                actor=request.user, version=version, method=post.get("method") or "kmeans", k=k,
                min_cluster_size=int(post.get("min_cluster_size") or 5),
            )  # fmt: skip
        else:
            raise ApplicationError("Unknown job.")
    except ValueError:
        messages.error(request, "Numbers only, please: k, minimum cluster size and threshold.")
        return _back(project, dataset, version)
    except NotFound:
        raise
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return _back(project, dataset, version)
    return redirect("studio:job_detail", job_id=job.pk)


@require_POST
@member_view
def apply(request: HttpRequest, project, dataset_id: int) -> HttpResponse:
    """Apply a curation action to the selection (lasso ids or a cluster)."""
    dataset, _, version = _version(request, project, dataset_id)
    post = request.POST
    try:
        ids = [int(i) for i in post.get("image_ids", "").split(",") if i.strip()]
        if any(not 0 < i < 2**63 for i in ids):
            raise ValueError("id out of range")
        if post.get("filter"):
            if version is None:
                raise ApplicationError("Choose a version to filter.")
            ids = curation_services.selection_from_filter(
                user=request.user,
                project=project,
                version=version,
                params=QueryDict(post["filter"]),
            )
        if post.get("cluster"):
            cluster = curation_selectors.cluster_get(
                user=request.user, project=project, cluster_id=int(post["cluster"])
            )
            ids = list(cluster.members.values_list("image_id", flat=True))
        result = curation_services.curation_apply(
            actor=request.user, dataset=dataset, image_ids=ids, action=post.get("action", ""),
            note=post.get("note", ""), field=post.get("field", ""), value=post.get("value", ""),
            queue_name=post.get("queue_name", ""), version=version,
            confirm=post.get("confirm") == "1", expect=post.get("expect", ""),
        )  # fmt: skip
    except ValueError:
        messages.error(request, "The selection could not be read; select images again.")
        return _back(project, dataset, version)
    except NotFound:
        raise
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return _back(project, dataset, version)
    if not result["applied"]:
        return _confirm_version_action(request, project, dataset, version, result)
    if "version" in result:
        if result["created"]:
            text = f"Version {result['version']} made: {result['images_after']} images"
            if result["version_before"]:
                text += f", {result['removed']} fewer than version {result['version_before']}"
                text += f" ({result['images_before']}). Undo restores version {result['version_before']}."
            messages.success(request, text)
        else:
            messages.info(request, result["message"])
        url = reverse("annotation:curate", args=[project.slug, dataset.pk])
        undo = f"&undo={result['version_before']}" if result["created"] else ""
        return redirect(f"{url}?version={result['version']}{undo}")
    if "queue" in result:
        messages.success(request, f"Annotation queue made with {result['images']} images.")
    else:
        replaced = (
            f" ({result['replaced']} had another {result['field']}, now replaced)"
            if result["replaced"]
            else ""
        )
        messages.success(
            request,
            f"Set {result['field']} on {result['images']} images{replaced}; filter on it from "
            "the dataset page.",
        )
    return _back(project, dataset, version)


ACTION_TITLES = {
    "keep_only": "Make a new version with only the selection",
    "exclude": "Make a new version without the selection",
    "drop_duplicates": "Drop the near-duplicate copies",
}
PREVIEW_THUMBS = 48


def _confirm_version_action(request, project, dataset, version, result: dict) -> HttpResponse:
    """Show in numbers what a version action will do; confirming posts it again with confirm=1."""
    post = request.POST
    keep = ("version", "action", "image_ids", "cluster", "filter", "note", "queue_name")
    fields = [(k, post[k]) for k in keep if post.get(k)] + [("expect", result["expect"])]
    details = []
    if result["action"] == "drop_duplicates":
        details.append(
            f"{result['images']} copies are dropped; each near-duplicate group keeps its best "
            "copy (most pixels, then sharpest, then least compressed). Review the groups on "
            "the Duplicates page first."
        )
    else:
        details.append(f"The selection holds {result['images']} images.")
    if result["added"]:
        details.append(
            f"{result['added']} images not in version {result['version_before']} come in."
        )
    shown = result["removed_ids"][:PREVIEW_THUMBS]
    blocked = result["empty"] or result["unchanged"]
    return render(
        request,
        "confirm.html",
        {
            "project": project,
            "title": ACTION_TITLES[result["action"]],
            "message": result["message"],
            "details": details,
            "images": shown,
            "more": result["removed"] - len(shown),
            "action": reverse("annotation:apply", args=[project.slug, dataset.pk]),
            "fields": fields,
            "button": f"Make version {result['version_after']} ({result['images_after']} images)",
            "danger": result["removed"] > 0,
            "blocked": blocked,
            "cancel": f"{reverse('annotation:curate', args=[project.slug, dataset.pk])}"
            + (f"?version={version.number}" if version else ""),
            "undo": None
            if blocked
            else "No image is deleted: every version stays, and "
            f"restoring version {result['version_before']} undoes this.",
        },
    )


@require_POST
@member_view
def cluster_rename(request: HttpRequest, project, dataset_id: int, cluster_id: int) -> HttpResponse:
    dataset, _, version = _version(request, project, dataset_id)
    cluster = curation_selectors.cluster_get(
        user=request.user, project=project, cluster_id=cluster_id
    )
    try:
        curation_services.cluster_rename(
            actor=request.user, cluster=cluster, name=request.POST.get("name", "")
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return _back(project, dataset, version, "#clusters")


GROUPS_PAGE = 20  # near-duplicate groups per page
GROUP_MEMBERS = 12  # copies shown per group on the list; the rest are "+N more"
GROUP_MEMBERS_ALL = 500  # copies shown when one group is opened


@require_GET
@member_view
def duplicates(request: HttpRequest, project, dataset_id: int) -> HttpResponse:
    """A page of near-duplicate groups, a few copies of each, and the exact drop numbers."""
    dataset, versions, version = _version(request, project, dataset_id)
    context = {"project": project, "dataset": dataset, "versions": versions, "version": version}
    if version is None:
        return render(request, "annotation/duplicates.html", {**context, "page": None})
    one = parse_id(request.GET.get("group"))
    groups = curation_selectors.duplicate_groups(
        user=request.user, version=version, members=GROUP_MEMBERS_ALL if one else GROUP_MEMBERS
    )
    # The drop button says exactly what dropping does: every group, every copy not kept.
    total = Total(groups.count())
    if one:
        groups = groups.filter(pk=one)
    page = seek_page(
        groups, size=GROUPS_PAGE, total=total,
        after=parse_id(request.GET.get("after")), before=parse_id(request.GET.get("before")),
    )  # fmt: skip
    for group in page:
        group.more = group.member_count - len(group.shown)
    return render(
        request,
        "annotation/duplicates.html",
        {
            **context,
            "page": page,
            "opened": one,
            "dropping": curation_selectors.duplicate_drop_count(user=request.user, version=version),
        },
    )


@require_POST
@member_view
def duplicate_keep(request: HttpRequest, project, dataset_id: int, member_id: int) -> HttpResponse:
    dataset, _, version = _version(request, project, dataset_id)
    member = curation_selectors.duplicate_member_get(
        user=request.user, project=project, member_id=member_id
    )
    if version is None or member.group.version.dataset_id != dataset.pk:
        raise NotFound("Duplicate not found.")
    try:
        curation_services.duplicate_keep(actor=request.user, member=member)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    url = reverse("annotation:duplicates", args=[project.slug, dataset.pk])
    return redirect(f"{url}?version={version.number}")


@require_GET
@member_view
def outliers(request: HttpRequest, project, dataset_id: int) -> HttpResponse:
    dataset, versions, version = _version(request, project, dataset_id)
    images = (
        curation_selectors.outliers(user=request.user, version=version, limit=96) if version else []
    )
    return render(
        request,
        "annotation/outliers.html",
        {
            "project": project,
            "dataset": dataset,
            "versions": versions,
            "version": version,
            "images": images,
        },
    )


@require_POST
@member_view
def checkpoint_upload(request: HttpRequest, project, dataset_id: int) -> HttpResponse:
    """Upload a backbone checkpoint; it is checked against its architecture before it is kept."""
    dataset, _, version = _version(request, project, dataset_id)
    upload = request.FILES.get("file")
    try:
        if upload is None:
            raise ApplicationError("Choose a checkpoint file.")
        checkpoint = checkpoint_services.checkpoint_upload(
            actor=request.user, project=project, name=request.POST.get("name", ""),
            architecture=request.POST.get("architecture", ""), upload=upload,
        )  # fmt: skip
    except ApplicationError as exc:
        messages.error(request, f"Checkpoint not kept: {exc.message}")
    else:
        messages.success(
            request, f"Checkpoint “{checkpoint.name}” checked and kept; pick it under Embed with."
        )
    return _back(project, dataset, version)


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
