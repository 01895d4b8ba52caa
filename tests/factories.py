"""Builders for test data: users with roles, projects, real image bytes and zip archives."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import numpy as np
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image as PILImage

from studio.models import Image, Membership, Project
from studio.services.datasets import dataset_add_images, dataset_create, dataset_version_create
from studio.services.projects import project_create

PASSWORD = "correct-horse-battery"


def make_user(username: str, **extra):
    return get_user_model().objects.create_user(username=username, password=PASSWORD, **extra)


def make_project(owner, name: str = "Project", **members_by_role) -> Project:
    """Create a project led by ``owner``; ``members_by_role`` maps role -> user."""
    project = project_create(owner=owner, name=name)
    for role, user in members_by_role.items():
        Membership.objects.create(project=project, user=user, role=role)
    return project


def make_dataset(project, actor, name: str = "Dataset"):
    return dataset_create(actor=actor, project=project, name=name)


def add_images(project, dataset, user, n: int, start: int = 0) -> list[int]:
    """Add n image rows (no files: these pages never open one) and snapshot a version."""
    images = Image.objects.bulk_create(
        Image(
            project=project, sha256=f"{project.pk:08x}{start + i:056x}", file=f"t/{i}.jpg",
            thumbnail=f"t/{i}-t.jpg", original_name=f"img{start + i:05d}.jpg", format="JPEG",
            width=64, height=48, byte_size=1000, uploaded_by=user,
            metadata={"camera": "cam1" if i % 2 else "cam2", "n": i % 3, "night": i % 2 == 0},
        )
        for i in range(n)
    )  # fmt: skip
    ids = [image.pk for image in images]
    dataset_add_images(dataset=dataset, image_ids=ids)
    dataset_version_create(dataset=dataset, actor=user)
    return ids


def image_bytes(
    seed: int = 0, size: tuple[int, int] = (64, 48), fmt: str = "JPEG", **save
) -> bytes:
    """Encode a random-but-deterministic RGB image; different seeds give different bytes."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 255, size=(size[1], size[0], 3), dtype=np.uint8)
    out = io.BytesIO()
    PILImage.fromarray(arr).save(out, fmt, **save)
    return out.getvalue()


def upload(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data)


def zip_bytes(entries: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def zip_with_symlink(link_name: str, target: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo(link_name)
        info.external_attr = 0o120777 << 16  # S_IFLNK
        zf.writestr(info, target)
    return buf.getvalue()


def png_bomb(width: int = 60_000, height: int = 60_000) -> bytes:
    """A tiny PNG whose header claims an enormous image (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return (
            struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def jpeg_with_exif(seed: int, when: str = "2024:05:06 07:08:09") -> bytes:
    img = PILImage.open(io.BytesIO(image_bytes(seed)))
    exif = PILImage.Exif()
    exif.get_ifd(0x8769)[36867] = when
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()
