"""The embed job, vector storage in shards, and nearest-neighbour search.

Vectors are written as float32 ``.npy`` shards on the storage backend, one per batch,
and indexed by ``ImageEmbedding`` rows (image → shard, row). A shard and its rows commit
together, so a killed job resumes by skipping the images that already have a vector;
re-embedding an image with the same backbone and weights is skipped the same way.
"""

from __future__ import annotations

import io
import logging
import uuid

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from PIL import Image as PILImage

from annotation.models import EmbeddingShard, EmbeddingSpace, ImageEmbedding
from annotation.services.curation import analyze_job_start, cluster_job_start
from studio.errors import ApplicationError
from studio.limits import open_stored
from studio.ml import backbones
from studio.models import DatasetVersion, Image, Job
from studio.permissions import Capability, require
from studio.services.jobs import JobContext, job_create, job_enqueue, register

log = logging.getLogger(__name__)

BATCH = 128


def weights_id(name: str) -> str:
    """Return the SHA-256 of the official weights a backbone would load; raise if unusable."""
    try:
        path = backbones.resolve_weights(
            name, settings.STUDIO["WEIGHTS_DIR"], settings.STUDIO.get("WEIGHTS_SHA256")
        )
    except backbones.WeightsError as exc:
        raise ApplicationError(str(exc))
    return backbones.file_sha256(path)


def embedding_job_start(
    *, actor, version: DatasetVersion, backbone: str, checkpoint=None, then: list[str] | None = None
) -> Job:
    """Queue a job that embeds every image of a dataset version with a backbone.

    ``checkpoint`` (a BackboneCheckpoint of the project) replaces the official weights.
    ``then`` lists jobs to queue once the embeddings exist ("analyze", "cluster"): the
    one-click curation. Fails at once, with the file and folder to fix, when official
    weights are missing.
    """
    if any(kind not in ("analyze", "cluster") for kind in then or []):
        raise ApplicationError("Only analyze and cluster can follow an embedding job.")
    project = version.dataset.project
    require(actor, project, Capability.CONTRIBUTE)
    if checkpoint is not None:
        if checkpoint.project_id != project.pk:
            raise ApplicationError("That checkpoint belongs to another project.")
        backbone, weights = checkpoint.architecture, checkpoint.sha256
    elif backbone not in backbones.SPECS:
        raise ApplicationError(
            f"Unknown backbone {backbone!r}; choose one of {', '.join(backbones.SPECS)}."
        )
    else:
        weights = weights_id(backbone)
    with transaction.atomic():
        job = job_create(
            project=project,
            kind=Job.Kind.EMBED,
            params={
                "version": version.pk,
                "backbone": backbone,
                "weights": weights,
                "checkpoint": checkpoint.pk if checkpoint is not None else None,
                "then": list(then or []),
            },
            created_by=actor,
        )
        job_enqueue(job)
    return job


def _load_model(job: Job):
    """Load the job's backbone: a project checkpoint, or the official weights (re-checked)."""
    name, weights = job.params["backbone"], job.params["weights"]
    device = backbones.best_device()
    if job.params.get("checkpoint"):
        from annotation.models import BackboneCheckpoint
        from annotation.services.checkpoints import local_copy

        checkpoint = BackboneCheckpoint.objects.filter(
            pk=job.params["checkpoint"], project=job.project
        ).first()
        if checkpoint is None:
            raise ApplicationError("The checkpoint was deleted since the job was queued.")
        with local_copy(checkpoint.file.name) as path:
            try:
                return backbones.load_backbone(name, checkpoint=path, device=device)
            except backbones.WeightsError as exc:
                raise ApplicationError(str(exc))
    if weights_id(name) != weights:
        raise ApplicationError(
            f"The {name} weights file changed since the job was queued; start it again."
        )
    return backbones.load_backbone(
        name,
        weights_dir=settings.STUDIO["WEIGHTS_DIR"],
        pinned=settings.STUDIO.get("WEIGHTS_SHA256"),
        device=device,
    )


def _loader(image: Image):
    def load() -> PILImage.Image:
        with default_storage.open(image.file.name, "rb") as fh:
            data = fh.read()
        img = open_stored(image, data)
        img.load()
        return img

    return load


@register(Job.Kind.EMBED)
def embed_run(job: Job, ctx: JobContext) -> dict:
    """Embed the version's images that have no vector in this space yet."""
    version = DatasetVersion.objects.filter(
        pk=job.params["version"], dataset__project=job.project
    ).first()
    if version is None:
        raise ApplicationError("The dataset version was deleted.")
    name, weights = job.params["backbone"], job.params["weights"]
    spec = backbones.spec_for(name)
    space, _ = EmbeddingSpace.objects.get_or_create(
        project=job.project, backbone=name, weights=weights, defaults={"dim": spec.dim}
    )
    version_ids = list(version.items.values_list("image_id", flat=True))
    have = set(
        ImageEmbedding.objects.filter(space=space, image_id__in=version_ids).values_list(
            "image_id", flat=True
        )
    )
    failed: list[dict] = list(job.checkpoint.get("failed", []))
    tried = {f["image"] for f in failed}  # unreadable in an earlier attempt of this job
    todo = list(Image.objects.filter(pk__in=set(version_ids) - have - tried).order_by("pk"))
    total = len(version_ids)
    # Images embedded before this job began; kept in the checkpoint so a resume counts right.
    skipped = int(job.checkpoint.get("skipped", len(have)))
    if todo:
        model = _load_model(job)
        done = total - len(todo)
        for start in range(0, len(todo), BATCH):
            batch = todo[start : start + BATCH]
            ctx.progress(done, total, f"Embedding image {done + 1} of {total} with {spec.label}")
            failures: list[tuple[int, str]] = []
            positions, chunks = [], []
            for pos, vectors in model.iter_embed(
                [_loader(i) for i in batch], batch_size=32, failures=failures
            ):
                positions += pos
                chunks.append(vectors)
            failed += [
                {"image": batch[p].pk, "name": batch[p].original_name, "reason": r[:200]}
                for p, r in failures
            ]
            done += len(batch)
            _write_shard(
                job, ctx, space, [batch[p] for p in positions], chunks, failed, skipped, done, total
            )
    embedded = ImageEmbedding.objects.filter(space=space, image_id__in=version_ids).count()
    follow_ups, notes = _start_follow_ups(job, ctx, space, skipped, failed)
    result = {
        "space": space.pk,
        "backbone": name,
        "embedded": embedded - skipped,
        "skipped": skipped,
        "failed": failed[:100],
        "follow_ups": follow_ups,
    }
    if notes:
        result["note"] = " ".join(notes)
    return result


def _start_follow_ups(
    job: Job, ctx: JobContext, space: EmbeddingSpace, skipped: int, failed: list
) -> tuple[list[int], list[str]]:
    """Queue the jobs a one-click curation asked for, once: their ids go into the checkpoint.

    A follow-up that cannot start (say, every image failed to decode) is a note on this
    job's result, not a failure of the embedding that did succeed.
    """
    if "follow_ups" in job.checkpoint:  # a redelivered job already queued them
        return list(job.checkpoint["follow_ups"]), []
    started, notes = [], []
    version = DatasetVersion.objects.get(pk=job.params["version"])
    # The follow-ups and the checkpoint naming them commit together; messages go on commit.
    with transaction.atomic():
        for kind in job.params.get("then", []):
            try:
                with transaction.atomic():
                    start = analyze_job_start if kind == "analyze" else cluster_job_start
                    started.append(
                        start(actor=job.created_by, version=version, space_id=space.pk).pk
                    )
            except ApplicationError as exc:
                notes.append(f"{kind.capitalize()} was not started: {exc.message}")
        checkpoint = {**job.checkpoint, "skipped": skipped, "failed": failed, "follow_ups": started}
        ctx.save_checkpoint(checkpoint, done=1, total=1, message="Embedded; follow-up jobs queued.")
    return started, notes


def _write_shard(job, ctx, space, images, chunks, failed, skipped, done, total) -> None:
    """Store one shard file, then its rows and the checkpoint in one transaction."""
    if images:
        matrix = np.concatenate(chunks).astype(np.float32, copy=False)
        buf = io.BytesIO()
        np.save(buf, matrix, allow_pickle=False)
        path = default_storage.save(
            f"projects/{space.project_id}/embeddings/{space.pk}/{uuid.uuid4().hex}.npy",
            ContentFile(buf.getvalue()),
        )
    with transaction.atomic():
        if images:
            shard = EmbeddingShard.objects.create(space=space, file=path, count=len(images))
            ImageEmbedding.objects.bulk_create(
                [
                    ImageEmbedding(space=space, image=img, shard=shard, row=r)
                    for r, img in enumerate(images)
                ],
                ignore_conflicts=True,
            )
        ctx.save_checkpoint(
            {**job.checkpoint, "failed": failed, "skipped": skipped},
            done=done,
            total=total,
            message=f"Embedded {done} of {total}",
        )
