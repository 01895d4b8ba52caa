"""Set up and audit the annotator-loop benchmark's database, in a process of its own.

``python -m tests.benchmarks.loop_seed seed --images 2000 --annotators 50`` migrates the
database named by ``DATABASE_URL`` (a fresh one the benchmark made), ingests generated
images through the real upload job, and makes a lead, a box class, a queue of every image
and one user with an API token per annotator; it prints them as JSON. ``... audit``
prints what the database holds after the run: submissions per task, annotations per image.
The benchmark runs these with the server's environment, so both see the same database.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import zipfile

import django


def _images_zip(count: int) -> bytes:
    """``count`` distinct 160x120 JPEGs: a gradient and a rectangle that differ per image."""
    import numpy as np
    from PIL import Image as PILImage

    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 255, 160, dtype=np.float32)[None, :, None]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for i in range(count):
            colour = rng.integers(0, 255, 3).astype(np.float32)
            arr = np.broadcast_to(ramp * 0.5 + colour * 0.5, (120, 160, 3)).copy()
            x, y = int(rng.integers(0, 120)), int(rng.integers(0, 80))
            arr[y : y + 40, x : x + 40] = 255 - colour
            arr[0, 0] = [i % 256, (i // 256) % 256, 7]  # distinct bytes, so no duplicates
            out = io.BytesIO()
            PILImage.fromarray(arr.astype(np.uint8)).save(out, "JPEG", quality=90)
            zf.writestr(f"loop/{i:05d}.jpg", out.getvalue())
    return buf.getvalue()


def seed(images: int, annotators: int) -> dict:
    from django.contrib.auth import get_user_model
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    from annotation.services.labels import label_class_create
    from annotation.services.queues import queue_create
    from studio.models import DatasetVersion, Membership
    from studio.services.datasets import dataset_create
    from studio.services.ingest import upload_create
    from studio.services.jobs import job_run
    from studio.services.projects import project_create

    call_command("migrate", verbosity=0)
    users = get_user_model().objects
    lead = users.create_user("loop-lead", password=None)
    project = project_create(owner=lead, name="Annotator loop")
    dataset = dataset_create(actor=lead, project=project, name="Loop images")
    upload = SimpleUploadedFile("loop.zip", _images_zip(images))
    job = upload_create(actor=lead, project=project, dataset=dataset, files=[upload])
    job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "succeeded" and job.result["accepted"] == images, job.result
    version = DatasetVersion.objects.get(dataset=dataset)
    people = users.bulk_create(
        get_user_model()(username=f"annotator-{n:03d}", password="!") for n in range(annotators)
    )
    Membership.objects.bulk_create(
        Membership(project=project, user=u, role="annotator") for u in people
    )
    tokens = Token.objects.bulk_create(Token(user=u, key=Token.generate_key()) for u in people)
    box = label_class_create(actor=lead, project=project, name="object", kind="box")
    queue = queue_create(actor=lead, project=project, name="Loop", version=version)
    return {
        "slug": project.slug,
        "queue": queue.pk,
        "label_class": box.pk,
        "tokens": [t.key for t in tokens],
        "images": images,
    }


def audit() -> dict:
    """What the run left: tasks submitted more than once, images with more than one
    annotation or annotator, items still leased."""
    from django.db.models import Count

    from annotation.models import Annotation, QueueItem, TaskSubmission

    per_item = TaskSubmission.objects.values("item_id").annotate(n=Count("id"))
    per_image = (
        Annotation.objects.filter(deleted=False)
        .values("image_id")
        .annotate(n=Count("id"), authors=Count("author_id", distinct=True))
    )
    return {
        "submissions": TaskSubmission.objects.count(),
        "tasks_submitted_twice": per_item.filter(n__gt=1).count(),
        "submitted_items": QueueItem.objects.filter(status="submitted").count(),
        "annotations": Annotation.objects.filter(deleted=False).count(),
        "images_with_two_annotators": per_image.filter(authors__gt=1).count(),
        "images_with_two_annotations": per_image.filter(n__gt=1).count(),
        "still_leased": QueueItem.objects.filter(status="in_progress").count(),
    }


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("action", choices=["seed", "audit"])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--annotators", type=int, default=50)
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")
    django.setup()
    result = seed(args.images, args.annotators) if args.action == "seed" else audit()
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
