"""The demo project: real offline photos plus generated scenes, ingested through the real job."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from datetime import date, timedelta

import numpy as np
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from PIL import Image as PILImage

from studio.models import Job, Project
from studio.services import datasets as dataset_services
from studio.services import ingest as ingest_services
from studio.services import jobs as job_services
from studio.services import projects as project_services

DEMO_SLUG = "demo"
# What the stage apps add to the demo once its scenes are a version (``seed(user=, project=,
# version=)``), registered from their AppConfig.ready(): the core never imports them.
DEMO_SEEDERS: list[Callable[..., None]] = []


def register_demo_seeder(seed: Callable[..., None]) -> None:
    """Have ``seed_demo`` call ``seed(user=, project=, version=)`` after the core's steps."""
    if seed not in DEMO_SEEDERS:
        DEMO_SEEDERS.append(seed)


# skimage.data photos that ship inside the package (no download needed).
SKIMAGE_PHOTOS = (
    "astronaut", "brick", "camera", "cat", "cell", "chelsea", "clock", "coffee", "coins",
    "colorwheel", "grass", "gravel", "hubble_deep_field", "immunohistochemistry", "logo",
    "moon", "page", "retina", "rocket", "text",
)  # fmt: skip


def photo_arrays() -> list[tuple[str, np.ndarray]]:
    """Return (file name, RGB array) for the offline photos of scikit-image and scikit-learn."""
    import skimage.data
    from sklearn.datasets import load_sample_images

    photos = []
    for name in SKIMAGE_PHOTOS:
        arr = getattr(skimage.data, name)()
        if arr.ndim == 2:
            arr = np.stack([arr] * 3, axis=-1)
        photos.append((f"{name}.jpg", arr[..., :3]))
    sample = load_sample_images()
    for fname, arr in zip(sample.filenames, sample.images, strict=True):
        photos.append((fname.rsplit("/", 1)[-1], arr))
    return photos


def encode(arr: np.ndarray, fmt: str = "JPEG") -> bytes:
    out = io.BytesIO()
    PILImage.fromarray(arr).save(out, fmt, quality=92) if fmt == "JPEG" else PILImage.fromarray(
        arr
    ).save(out, fmt)
    return out.getvalue()


def scenes_zip(count: int, start: int = 0) -> tuple[bytes, list[dict]]:
    """Return a zip of generated scene PNGs and their metadata rows (file_name + fields)."""
    from studio.ml.scenes import render_scene

    buf, rows = io.BytesIO(), []
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for seed in range(start, start + count):
            scene = render_scene(seed)
            name = f"scene_{seed:05d}.png"
            zf.writestr(f"scenes/{name}", encode(scene.image, "PNG"))
            rows.append({"file_name": name, **scene.metadata})
    return buf.getvalue(), rows


def _ingest_now(*, user, project: Project, dataset, files: list) -> Job:
    """Ingest synchronously through the real job service (the demo is ready before start-up)."""
    with transaction.atomic():
        job = ingest_services.upload_create(
            actor=user, project=project, dataset=dataset, files=files
        )
    job_services.job_run(job_id=job.pk)
    job.refresh_from_db()
    return job


def seed_demo(
    *,
    username: str = "demo",
    password: str = "demo-studio",  # noqa: S107 - the documented demo credentials
    scenes: int = 90,
) -> tuple[Project, bool]:
    """Create the demo user and project once; return (project, created)."""
    import json

    User = get_user_model()
    user, _ = User.objects.get_or_create(
        username=username, defaults={"is_staff": True, "is_superuser": True}
    )
    user.set_password(password)
    user.save()
    existing = Project.objects.filter(slug=DEMO_SLUG).first()
    if existing is not None:
        return existing, False
    project = project_services.project_create(
        owner=user,
        slug=DEMO_SLUG,
        name="Shapes & photos demo",
        business_problem=(
            "Inspectors spend too long outlining objects by hand, and the current model misses "
            "objects in poor light. Cut annotation time and make segmentation reliable in every "
            "lighting condition before the spring release."
        ),
    )
    today = date.today()
    project_services.objective_create(
        actor=user,
        project=project,
        title="Halve manual annotation time",
        kpi="Annotation minutes per image",
        target_value=1.0,
        unit="min",
        direction="lower",
        deadline=today + timedelta(days=60),
        owner=user,
    )
    project_services.objective_create(
        actor=user,
        project=project,
        title="Segment objects reliably in low light",
        kpi="Mask mIoU on dark images",
        target_value=0.8,
        unit="",
        direction="higher",
        deadline=today + timedelta(days=90),
        owner=user,
        status="at_risk",
    )
    project_services.problem_statement_set(
        actor=user,
        project=project,
        task_type="instance_segmentation",
        description="Segment each circle, square and triangle; masks feed the inspection report.",
        serving_mode="realtime",
        latency_budget_ms=200,
        model_size_budget_mb=50,
        approaches=[
            {
                "name": "SAM pre-annotation + human review",
                "notes": "Cut annotation cost",
                "priority": 1,
                "status": "chosen",
            },
            {
                "name": "Fine-tuned Mask R-CNN",
                "notes": "Serving model",
                "priority": 2,
                "status": "proposed",
            },
        ],
        criteria=[
            {"metric": "mIoU", "threshold": 0.75, "comparison": "gte", "slice": ""},
            {"metric": "mIoU", "threshold": 0.7, "comparison": "gte", "slice": "lighting=dark"},
            {"metric": "AP50", "threshold": 0.8, "comparison": "gte", "slice": ""},
        ],
    )
    photos = dataset_services.dataset_create(
        actor=user,
        project=project,
        name="Sample photos",
        description="scikit-image and scikit-learn sample photos (shipped with the packages).",
    )
    files = [SimpleUploadedFile(name, encode(arr)) for name, arr in photo_arrays()]
    _ingest_now(user=user, project=project, dataset=photos, files=files)

    scenes_ds = dataset_services.dataset_create(
        actor=user,
        project=project,
        name="Generated scenes",
        description="Synthetic scenes with exact object masks; metadata: lighting, blur, object size.",
    )
    archive, rows = scenes_zip(scenes)
    _ingest_now(
        user=user,
        project=project,
        dataset=scenes_ds,
        files=[SimpleUploadedFile("scenes.zip", archive)],
    )
    metadata = {
        row["file_name"]: {k: v for k, v in row.items() if k != "file_name"} for row in rows
    }
    dataset_services.image_metadata_bulk_set(
        actor=user,
        project=project,
        dataset=scenes_ds,
        content=json.dumps(metadata).encode(),
        filename="scenes.json",
    )
    version, _ = dataset_services.dataset_version_snapshot(
        actor=user, dataset=scenes_ds, note="With scene metadata"
    )
    for seed in DEMO_SEEDERS:
        seed(user=user, project=project, version=version)
    return project, True
