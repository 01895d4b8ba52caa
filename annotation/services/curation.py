"""Curation jobs and actions: clusters, quality, duplicates, outliers, the map, selections.

Jobs read a version's vectors from its newest embedding space; results are replaced as a
whole by each run (so a retried job leaves one result, not two). Actions on a selection
(a list of image ids, a cluster, or a filter resolved by the caller) make new dataset
versions, set metadata or fill an annotation queue.
"""

from __future__ import annotations

import numpy as np
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Count
from PIL import Image as PILImage

from annotation.models import (
    AnnotationQueue,
    Cluster,
    ClusterMember,
    ClusterRun,
    DuplicateGroup,
    DuplicateMember,
    EmbeddingMap,
    EmbeddingSpace,
    ImageEmbedding,
    ImageQuality,
    QueueItem,
    VersionImageScore,
)
from annotation.services.quality_histograms import quality_histograms_compute
from annotation.services.vectors import vectors_for
from studio.errors import ApplicationError
from studio.limits import open_stored
from studio.ml import clustering
from studio.ml.quality import image_quality, project_2d
from studio.models import Dataset, DatasetImage, DatasetVersion, Image, Job
from studio.permissions import Capability, require
from studio.services.datasets import (
    dataset_working_set_replace,
    valid_metadata_key,
    working_set_change,
)
from studio.services.jobs import JobContext, job_create, job_enqueue, register

QUALITY_BATCH = 64


def version_space(
    version: DatasetVersion, backbone: str | None = None, space_id: int | None = None
) -> EmbeddingSpace:
    """Return the embedding space to use for a version.

    ``space_id`` names it (the follow-ups of an embed job use the space just filled);
    otherwise the space covering most of the version's images wins, the newest on a tie.
    """
    image_ids = version.items.values("image_id")
    spaces = EmbeddingSpace.objects.filter(project_id=version.dataset.project_id)
    if space_id is not None:
        spaces = spaces.filter(pk=space_id)
    if backbone:
        spaces = spaces.filter(backbone=backbone)
    space = (
        spaces.filter(vectors__image_id__in=image_ids)
        .annotate(covered=Count("vectors"))
        .order_by("-covered", "-created_at", "-pk")
        .first()
    )
    if space is None:
        raise ApplicationError(
            f"Version {version.number} has no embeddings yet: embed it first, then cluster."
        )
    return space


def _version_vectors(
    version: DatasetVersion, space: EmbeddingSpace
) -> tuple[np.ndarray, np.ndarray]:
    return vectors_for(space, list(version.items.values_list("image_id", flat=True)))


def cluster_job_start(
    *,
    actor,
    version: DatasetVersion,
    method: str = "kmeans",
    k: int | None = None,
    min_cluster_size: int = 5,
    space_id: int | None = None,
) -> Job:
    """Queue a clustering of the version; impossible requests are refused at once."""
    project = version.dataset.project
    require(actor, project, Capability.CONTRIBUTE)
    if method not in ClusterRun.Method.values:
        raise ApplicationError(f"Unknown clustering method {method!r}; use kmeans or hdbscan.")
    if min_cluster_size < 2:
        raise ApplicationError("The minimum cluster size is at least 2.")
    space = version_space(version, space_id=space_id)
    embedded = ImageEmbedding.objects.filter(
        space=space, image_id__in=version.items.values("image_id")
    ).count()
    if method == "kmeans" and k is not None:
        if k < 2:
            raise ApplicationError("Ask for at least 2 clusters.")
        if k > embedded:
            raise ApplicationError(
                f"Cannot make {k} clusters from {embedded} embedded images; ask for at most {embedded}."
            )
    if method == "hdbscan" and embedded < max(2, min_cluster_size):
        raise ApplicationError(
            f"HDBSCAN needs at least {max(2, min_cluster_size)} embedded images."
        )
    with transaction.atomic():
        job = job_create(
            project=project,
            kind=Job.Kind.CLUSTER,
            params={
                "version": version.pk,
                "space": space.pk,
                "method": method,
                "k": k,
                "min_cluster_size": min_cluster_size,
            },
            created_by=actor,
        )
        job_enqueue(job)
    return job


@register(Job.Kind.CLUSTER)
def cluster_run(job: Job, ctx: JobContext) -> dict:
    """Cluster the version's vectors and store clusters with representatives and members."""
    params = job.params
    version = DatasetVersion.objects.get(pk=params["version"])
    space = EmbeddingSpace.objects.get(pk=params["space"])
    ids, vectors = _version_vectors(version, space)
    ctx.progress(10, 100, f"Clustering {len(ids)} images", force=True)
    try:
        if params["method"] == "kmeans":
            k = params.get("k") or clustering.suggest_k(vectors)
            result = clustering.kmeans(vectors, k)
            labels, centroids = result.labels, result.centroids
        else:
            k = None
            labels = clustering.hdbscan(
                vectors, min_cluster_size=params.get("min_cluster_size") or 5
            )
            centroids = None
    except clustering.ClusteringError as exc:
        raise ApplicationError(str(exc))
    reps = clustering.representatives(vectors, labels, centroids)
    with transaction.atomic():
        ClusterRun.objects.filter(job=job).delete()  # a retried job replaces its own result
        run = ClusterRun.objects.create(
            version=version, space=space, method=params["method"], k=k, job=job,
            params={"min_cluster_size": params.get("min_cluster_size")},
        )  # fmt: skip
        for label in np.unique(labels):
            rows = np.nonzero(labels == label)[0]
            cluster = Cluster.objects.create(
                run=run,
                label=int(label),
                size=len(rows),
                representatives=[int(ids[r]) for r in reps.get(int(label), rows[:6].tolist())],
            )
            ClusterMember.objects.bulk_create(
                [ClusterMember(cluster=cluster, image_id=int(ids[r])) for r in rows],
                batch_size=2000,
            )
    return {
        "run": run.pk,
        "clusters": int((np.unique(labels) >= 0).sum()),
        "k": k,
        "images": len(ids),
    }


def analyze_job_start(
    *, actor, version: DatasetVersion, threshold: float = 0.85, space_id: int | None = None
) -> Job:
    """Queue quality metrics for every image, plus duplicates, outliers and the map when embedded."""
    project = version.dataset.project
    require(actor, project, Capability.CONTRIBUTE)
    if not 0.5 <= threshold <= 1.0:
        raise ApplicationError(
            "The near-duplicate threshold is a cosine similarity between 0.5 and 1."
        )
    with transaction.atomic():
        job = job_create(
            project=project,
            kind=Job.Kind.ANALYZE,
            params={"version": version.pk, "threshold": threshold, "space": space_id},
            created_by=actor,
        )
        job_enqueue(job)
    return job


def _load(image: Image) -> PILImage.Image:
    with default_storage.open(image.file.name, "rb") as fh:
        img = open_stored(image, fh.read())
        img.draft("RGB", (1024, 1024))
        img.load()
    return img


def _best_copy_order(image_ids: np.ndarray) -> np.ndarray:
    """Order rows best copy first (``clustering.best_copy_order``); ties go to the earlier upload.

    Pixels and bytes come from the image row, sharpness from its quality row (measured
    just before); an image without one ranks below the measured ones on sharpness.
    """
    rows = {
        pk: (w * h, b, s)
        for pk, w, h, b, s in Image.objects.filter(pk__in=image_ids.tolist()).values_list(
            "pk", "width", "height", "byte_size", "quality__sharpness"
        )
    }
    by_upload = np.argsort(image_ids, kind="stable")  # ids grow with upload order
    ids = image_ids[by_upload]
    pixels = np.array([rows[int(i)][0] for i in ids], np.float64)
    bpp = np.array([rows[int(i)][1] for i in ids], np.float64) / np.maximum(pixels, 1)
    sharp = np.array(
        [np.nan if rows[int(i)][2] is None else rows[int(i)][2] for i in ids], np.float64
    )
    return by_upload[clustering.best_copy_order(pixels, sharp, bpp)]


@register(Job.Kind.ANALYZE)
def analyze_run(job: Job, ctx: JobContext) -> dict:
    """Compute missing quality rows (resumable by construction), then embedding-based results."""
    version = DatasetVersion.objects.get(pk=job.params["version"])
    ids = list(version.items.values_list("image_id", flat=True))
    todo = list(Image.objects.filter(pk__in=ids, quality__isnull=True).order_by("pk"))
    failed = []
    done = len(ids) - len(todo)
    for start in range(0, len(todo), QUALITY_BATCH):
        batch = todo[start : start + QUALITY_BATCH]
        ctx.progress(done, len(ids), f"Measuring image quality {done + 1} of {len(ids)}")
        rows = []
        for image in batch:
            try:
                rows.append(ImageQuality(image=image, **image_quality(_load(image))))
            except Exception as exc:  # noqa: BLE001 - one unreadable file is reported, not fatal
                failed.append(
                    {"image": image.pk, "name": image.original_name, "reason": str(exc)[:200]}
                )
        ImageQuality.objects.bulk_create(rows, ignore_conflicts=True)
        done += len(batch)
    result = {"measured": len(todo) - len(failed), "failed": failed, "duplicate_groups": None}
    try:
        space = version_space(version, space_id=job.params.get("space"))
    except ApplicationError:
        result["note"] = "Embed this version to find near-duplicates, outliers and the map."
        quality_histograms_compute(version=version)
        return result
    emb_ids, vectors = _version_vectors(version, space)
    ctx.progress(60, 100, f"Finding neighbours of {len(emb_ids)} images", force=True)
    # One neighbour search serves outlier scores and uniqueness.
    neighbours = clustering.knn(vectors, k=min(11, len(emb_ids)), exact=len(emb_ids) < 50_000)
    threshold = job.params["threshold"]
    # A copy a person chose to keep stays a kept copy: it goes first, then the best copies.
    chosen = set(
        DuplicateMember.objects.filter(group__version=version, chosen=True).values_list(
            "image_id", flat=True
        )
    )
    order = _best_copy_order(emb_ids)
    order = order[np.argsort([int(emb_ids[r]) not in chosen for r in order], kind="stable")]
    groups = clustering.near_duplicate_groups(
        vectors, threshold=threshold, order=order, exact=len(emb_ids) < 50_000
    )
    scores = clustering.outlier_scores(vectors, neighbours=neighbours)
    uniqueness = clustering.uniqueness(neighbours, len(emb_ids))
    ctx.progress(80, 100, "Drawing the map", force=True)
    coords = project_2d(vectors)
    with transaction.atomic():
        # Groups and scores describe this version as analysed now, whatever space made them.
        DuplicateGroup.objects.filter(version=version).delete()
        for rows in groups:
            group = DuplicateGroup.objects.create(version=version, space=space, threshold=threshold)
            keep = rows[0]
            DuplicateMember.objects.bulk_create(
                [
                    DuplicateMember(
                        group=group, image_id=int(emb_ids[r]), keep=(r == keep),
                        similarity=float(vectors[r] @ vectors[keep]),
                        chosen=(r == keep and int(emb_ids[r]) in chosen),
                    )
                    for r in rows
                ]
            )  # fmt: skip
        VersionImageScore.objects.filter(version=version).delete()
        VersionImageScore.objects.bulk_create(
            [
                VersionImageScore(
                    version=version, image_id=int(i), space=space,
                    uniqueness=float(uniqueness[r]), outlier_score=float(scores[r]),
                )
                for r, i in enumerate(emb_ids.tolist())
            ],
            batch_size=2000,
        )  # fmt: skip
        EmbeddingMap.objects.filter(version=version).exclude(space=space).delete()
        EmbeddingMap.objects.update_or_create(
            version=version,
            space=space,
            defaults={
                "points": [
                    [int(i), round(float(x), 3), round(float(y), 3)]
                    for i, (x, y) in zip(emb_ids, coords, strict=True)
                ]
            },
        )
    quality_histograms_compute(version=version)
    result["duplicate_groups"] = len(groups)
    return result


@transaction.atomic
def cluster_rename(*, actor, cluster: Cluster, name: str) -> Cluster:
    require(actor, cluster.run.version.dataset.project, Capability.CONTRIBUTE)
    cluster.name = name.strip()[:100]
    cluster.save(update_fields=["name"])
    return cluster


@transaction.atomic
def duplicate_keep(*, actor, member: DuplicateMember) -> DuplicateMember:
    """Make this copy the one that stays in its group; analysing again keeps the choice."""
    require(actor, member.group.version.dataset.project, Capability.CONTRIBUTE)
    DuplicateMember.objects.filter(group=member.group).update(keep=False, chosen=False)
    DuplicateMember.objects.filter(pk=member.pk).update(keep=True, chosen=True)
    member.keep = member.chosen = True
    return member


def _selection(dataset: Dataset, image_ids: list[int]) -> list[int]:
    """Keep only ids of images in the dataset's project; refuse an empty selection."""
    ids = list(
        Image.objects.filter(pk__in=image_ids, project_id=dataset.project_id).values_list(
            "pk", flat=True
        )
    )
    if not ids:
        raise ApplicationError("The selection is empty: select some images first.")
    return ids


CURATION_ACTIONS = ("keep_only", "exclude", "drop_duplicates", "set_metadata", "queue")
# Actions that make a new version and may leave images out of it: they are previewed first.
VERSION_ACTIONS = ("keep_only", "exclude", "drop_duplicates")
PREVIEW_IDS = 500  # at most this many removed image ids are listed in a preview


def _version_target(
    dataset: Dataset, image_ids: list[int], action: str, version: DatasetVersion | None
) -> tuple[list[int], set[int], str]:
    """Return (the selection, the working set the action would leave, a default note)."""
    if action == "drop_duplicates":
        if version is None:
            raise ApplicationError("Choose the version whose duplicates to drop.")
        image_ids = list(
            DuplicateMember.objects.filter(group__version=version, keep=False).values_list(
                "image_id", flat=True
            )
        )
        if not image_ids:
            raise ApplicationError("There are no duplicates to drop in this version.")
    ids = _selection(dataset, image_ids)
    current = set(DatasetImage.objects.filter(dataset=dataset).values_list("image_id", flat=True))
    if action == "keep_only":
        return ids, set(ids), f"Kept {len(ids)} selected images"
    if action == "drop_duplicates":
        note = f"Dropped {len(ids)} near-duplicate copies found in version {version.number}"
        return ids, current - set(ids), note
    return ids, current - set(ids), f"Excluded {len(ids)} selected images"


@transaction.atomic
def curation_apply(
    *,
    actor,
    dataset: Dataset,
    image_ids: list[int],
    action: str,
    note: str = "",
    field: str = "",
    value: str = "",
    queue_name: str = "",
    version: DatasetVersion | None = None,
    confirm: bool = False,
    expect: str = "",
) -> dict:
    """Apply a curation action to a selection of images; return what changed.

    keep_only / exclude: a new version holding only / everything but the selection;
    drop_duplicates: a new version without the non-kept copies of the version's groups;
    set_metadata: set ``field`` = ``value`` on the selection (a tag is a field too);
    queue: an annotation queue with the selection, in order.

    The three version actions change nothing unless ``confirm`` is true: without it the
    answer is a preview (``applied`` false) saying in numbers what the next version
    would hold and which images it would lose. Pass the preview's ``expect`` back with
    ``confirm`` so the action done is the one previewed. Undo with
    ``dataset_version_restore`` on the version before.
    """
    require(actor, dataset.project, Capability.CONTRIBUTE)
    if action not in CURATION_ACTIONS:
        raise ApplicationError(
            f"Unknown action {action!r}; use one of {', '.join(CURATION_ACTIONS)}."
        )
    if action in VERSION_ACTIONS:
        ids, target, default_note = _version_target(dataset, image_ids, action, version)
        change = working_set_change(dataset=dataset, image_ids=target)
        answer = {"action": action, "images": len(ids), **change}
        if not confirm:
            latest = DatasetVersion.objects.filter(dataset=dataset).order_by("-number").first()
            before = latest.items.values_list("image_id", flat=True) if latest else []
            removed = sorted(set(before) - target)
            return {**answer, "applied": False, "removed_ids": removed[:PREVIEW_IDS]}
        new, created = dataset_working_set_replace(
            actor=actor, dataset=dataset, image_ids=target, note=note or default_note,
            expect=expect,
        )  # fmt: skip
        return {**answer, "applied": True, "version": new.number, "created": created}
    ids = _selection(dataset, image_ids)
    if action == "set_metadata":
        field = field.strip()
        if not valid_metadata_key(field):
            raise ApplicationError(
                "The field name must start with a letter and hold letters, digits and single underscores."
            )
        images = list(Image.objects.filter(pk__in=ids))
        # Say how many earlier values the new one replaces: they are not kept anywhere.
        replaced = sum(1 for i in images if field in i.metadata and i.metadata[field] != value)
        for image in images:
            image.metadata = {**image.metadata, field: value}
        Image.objects.bulk_update(images, ["metadata"], batch_size=500)
        project = dataset.project
        if field not in project.metadata_fields:
            project.metadata_fields = sorted([*project.metadata_fields, field])
            project.save(update_fields=["metadata_fields"])
        return {
            "action": action,
            "images": len(ids),
            "field": field,
            "replaced": replaced,
            "applied": True,
        }
    queue = AnnotationQueue.objects.create(
        project=dataset.project, name=(queue_name or f"{dataset.name}: {len(ids)} images")[:200],
        version=version, created_by=actor,
    )  # fmt: skip
    QueueItem.objects.bulk_create(
        [QueueItem(queue=queue, image_id=i, position=n) for n, i in enumerate(ids)]
    )
    return {"action": action, "images": len(ids), "queue": queue.pk, "applied": True}


def selection_from_filter(*, user, project, version: DatasetVersion, params) -> list[int]:
    """Resolve a filter (``meta.<field>``, ``quality.<metric>_min|_max``, ``split``, ``cluster``)
    on a version into image ids, through the same selectors the pages and the API use."""
    from studio import selectors

    unknown = [
        k for k in params
        if not (k.startswith(("meta.", "quality.")) or k in ("split", "cluster", "version", "page"))
    ]  # fmt: skip
    if unknown:
        raise ApplicationError(
            f"Unknown filter {unknown[0]!r}: use meta.<field>, quality.<metric>_min/_max, split or cluster."
        )
    cluster = params.get("cluster")
    try:
        cluster_id = int(cluster) if cluster not in (None, "") else None
    except (TypeError, ValueError):
        raise ApplicationError("cluster must be an integer.")
    split = params.get("split") or None
    if split not in (None, "train", "val", "test"):
        raise ApplicationError("split must be train, val or test.")
    images = selectors.image_list(
        user=user,
        project=project,
        version=version,
        split=split,
        metadata=selectors.metadata_filters_from_params(project=project, params=params),
        quality=selectors.quality_filters_from_params(params),
        cluster_id=cluster_id,
    )
    return list(images.values_list("pk", flat=True))
