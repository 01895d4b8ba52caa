"""Shared builders for the export/import tests: a labelled version and a fresh twin of it."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import skimage.data
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from annotation import geometry as geo
from annotation.models import Annotation, LabelClass
from annotation.services.export import export_start
from annotation.services.imports import import_start
from annotation.services.labels import annotation_create, label_class_create
from studio.models import DatasetVersion, Image, Job
from studio.services.ingest import upload_create
from studio.services.jobs import job_run
from tests.annotation.conftest import PHOTOS, jpeg
from tests.factories import make_dataset, make_project, upload

SCHEMA = [
    ("cell", "mask", {"occluded": ["yes", "no"]}),
    ("road", "polygon", {}),
    ("car", "box", {"colour": ["red", "blue"]}),
    ("daytime", "tag", {}),
]


def schema(actor, project) -> dict[str, LabelClass]:
    return {
        name: label_class_create(
            actor=actor, project=project, name=name, kind=kind, attributes=attrs
        )
        for name, kind, attrs in SCHEMA
    }


def blob(w: int, h: int, seed: int, hole: bool = True) -> np.ndarray:
    """An ellipse (with a hole and a stray pixel: no polygon holds it exactly)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    cx, cy = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h
    r = min(w, h) * rng.uniform(0.1, 0.25)
    m = ((xx - cx) ** 2 + (yy - cy) ** 2 * 1.4) < r * r
    if hole:
        m &= ((xx - cx) ** 2 + (yy - cy) ** 2) > (r / 3) ** 2
        m[int(h * 0.05), int(w * 0.05)] = True
    return m


def square_mask(w: int, h: int) -> np.ndarray:
    """An axis-aligned rectangle of pixels: a polygon holds it exactly."""
    m = np.zeros((h, w), bool)
    m[h // 4 : h // 2, w // 4 : w // 2] = True
    return m


def label(actor, version: DatasetVersion, classes: dict, *, status="submitted") -> list[Annotation]:
    """Put masks, polygons, boxes and tags on every image of the version."""
    made = []
    images = Image.objects.filter(pk__in=version.items.values("image_id")).order_by("pk")
    for n, image in enumerate(images):
        w, h = image.width, image.height
        made.append(annotation_create(actor=actor, image=image, label_class=classes["cell"],
                    geometry=geo.mask_from_array(blob(w, h, n)), attributes={"occluded": "yes"},
                    status=status))  # fmt: skip
        if n % 2 == 0:
            made.append(annotation_create(actor=actor, image=image, label_class=classes["cell"],
                        geometry=geo.mask_from_array(square_mask(w, h)), status=status))  # fmt: skip
        made.append(annotation_create(actor=actor, image=image, label_class=classes["road"],
                    geometry=[w * 0.1, h * 0.1, w * 0.6, h * 0.15, w * 0.5, h * 0.7, 3.125, h - 1.0],
                    status=status))  # fmt: skip
        made.append(annotation_create(actor=actor, image=image, label_class=classes["car"],
                    geometry=[5.5, 7.25, w / 3, h / 5], attributes={"colour": "red"}, status=status))  # fmt: skip
        if n % 3 == 0:
            made.append(annotation_create(actor=actor, image=image, label_class=classes["daytime"],
                        geometry=None, status=status))  # fmt: skip
    return made


def twin(owner, name="Twin") -> DatasetVersion:
    """A fresh project and dataset holding the same photos under the same names."""
    project = make_project(owner, name)
    dataset = make_dataset(project, owner)
    files = [upload(f"{n}.jpg", jpeg(getattr(skimage.data, n)())) for n in PHOTOS]
    files.append(upload("chelsea-small.jpg", jpeg(skimage.data.chelsea(), (225, 150))))
    job_run(job_id=upload_create(actor=owner, project=project, dataset=dataset, files=files).pk)
    return DatasetVersion.objects.get(dataset=dataset)


def export(actor, version, fmt: str, statuses=None) -> Job:
    job = export_start(actor=actor, version=version, fmt=fmt, statuses=statuses)
    job_run(job_id=job.pk)
    job.refresh_from_db()
    return job


def archive(job: Job) -> zipfile.ZipFile:
    assert job.status == "succeeded", job.error
    with default_storage.open(job.result["path"], "rb") as fh:
        return zipfile.ZipFile(io.BytesIO(fh.read()))


def archive_bytes(job: Job) -> bytes:
    with default_storage.open(job.result["path"], "rb") as fh:
        return fh.read()


def run_import(actor, version, fmt: str, data: bytes, name: str, **options) -> Job:
    job = import_start(actor=actor, version=version, fmt=fmt,
                       upload=SimpleUploadedFile(name, data), **options)  # fmt: skip
    job_run(job_id=job.pk)
    job.refresh_from_db()
    return job


def contents(version: DatasetVersion, kinds=("mask", "polygon", "box", "tag")) -> dict:
    """(image name, class name, kind) -> sorted stored geometries, for comparing versions."""
    out: dict = {}
    for a in Annotation.objects.filter(
        image__in=version.items.values("image_id"), deleted=False, kind__in=kinds
    ).select_related("image", "label_class"):
        key = (a.image.original_name, a.label_class.name, a.kind)
        out.setdefault(key, []).append(
            (repr(a.geometry) if a.kind != "mask" else a.geometry["counts"], repr(a.attributes))
        )
    return {k: sorted(v) for k, v in out.items()}


def decoded(version: DatasetVersion) -> dict:
    """(image name, class name) -> list of decoded masks, for pixel comparisons."""
    out: dict = {}
    for a in Annotation.objects.filter(
        image__in=version.items.values("image_id"), deleted=False, kind="mask"
    ).select_related("image", "label_class"):
        m = geo.to_mask(a.geometry, "mask", a.image.width, a.image.height)
        out.setdefault((a.image.original_name, a.label_class.name), []).append(m)
    return out


def shapes(version, skip=(), *, attributes=True) -> dict:
    """(image, class, kind) -> sorted comparable geometries; masks as their pixels."""
    out: dict = {}
    rows = Annotation.objects.filter(image__in=version.items.values("image_id"), deleted=False)
    for a in rows.exclude(pk__in=skip).select_related("image", "label_class"):
        if a.kind == "mask":
            value = geo.to_mask(a.geometry, "mask", a.image.width, a.image.height).tobytes()
        elif a.kind == "box":
            value = tuple(round(v, 6) for v in a.geometry["box"])
        elif a.kind == "polygon":
            value = tuple(a.geometry["points"])
        else:
            value = ()
        attrs = tuple(sorted(a.attributes.items())) if attributes else ()
        out.setdefault((a.image.original_name, a.label_class.name, a.kind), []).append(
            (value, attrs)
        )
    return {k: sorted(v) for k, v in out.items()}
