"""Validation of uploaded images, independent of the database.

Images are recognised by content, never by name; limits on bytes and pixels are checked
from the header before anything is decoded (``studio.limits``, which also checks zip
archives entry by entry for escaping paths, links and compression bombs before a byte
is extracted).
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from PIL import Image as PILImage

from studio.limits import (  # noqa: F401 - re-exported: uploads' callers import them from here
    SUPPORTED_COMPRESSION,
    ArchiveEntry,
    Limits,
    Rejected,
    check_archive,
    open_image,
    read_entry,
)

ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF", "BMP")
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "TIFF": "tif", "BMP": "bmp"}
CONTENT_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "TIFF": "image/tiff",
    "BMP": "image/bmp",
}


@dataclass(frozen=True)
class ProcessedImage:
    sha256: str
    format: str
    width: int
    height: int
    byte_size: int
    captured_at: datetime | None
    thumbnail: bytes

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.format]


def _exif_timestamp(img: PILImage.Image) -> datetime | None:
    try:
        exif = img.getexif()
    except Exception:  # noqa: BLE001 - broken EXIF must not reject a good image
        return None
    raw = exif.get_ifd(0x8769).get(36867) or exif.get(306)  # DateTimeOriginal, DateTime
    if not isinstance(raw, str):
        return None
    try:
        return datetime.strptime(raw.strip("\x00 ").strip(), "%Y:%m:%d %H:%M:%S").replace(
            tzinfo=UTC
        )
    except ValueError:
        return None


def process_image(data: bytes, limits: Limits) -> ProcessedImage:
    """Validate image bytes and make the thumbnail; raise ``Rejected`` with the reason.

    The pixel limit is checked from the header, before decoding, so a decompression bomb
    costs nothing. The image is then decoded in full (at reduced scale where the codec
    allows) so truncated and corrupt files are caught here, not later.
    """
    if len(data) == 0:
        raise Rejected("empty file")
    if len(data) > limits.max_file_bytes:
        raise Rejected(f"file is {len(data):,} bytes; the limit is {limits.max_file_bytes:,}")
    img = open_image(data, max_pixels=limits.max_pixels, formats=ALLOWED_FORMATS)
    width, height = img.size
    # Multi-picture JPEGs (MPO, from many phones and cameras) are JPEGs with extra frames.
    fmt = "JPEG" if img.format == "MPO" else img.format
    if fmt == "PNG":
        # Pillow checks PNG chunk CRCs only in verify(); a damaged IDAT can decode silently.
        try:
            open_image(data, max_pixels=limits.max_pixels, formats=("PNG",)).verify()
        except Exception as exc:  # noqa: BLE001 - any verification failure is a rejection
            raise Rejected(f"corrupt image data: {exc}")
    captured_at = _exif_timestamp(img)
    size = limits.thumbnail_size
    try:
        img.draft("RGB", (size, size))
        img.load()
        if getattr(img, "n_frames", 1) > 1:
            img.seek(0)
        thumb = img.convert("RGB") if img.mode not in ("RGB", "L") else img
        thumb.thumbnail((size, size))
        out = io.BytesIO()
        thumb.save(out, "JPEG", quality=85)
    except Exception as exc:  # noqa: BLE001 - truncated or corrupt pixel data
        raise Rejected(f"corrupt or truncated image data: {exc}")
    return ProcessedImage(
        sha256=hashlib.sha256(data).hexdigest(),
        format=fmt,
        width=width,
        height=height,
        byte_size=len(data),
        captured_at=captured_at,
        thumbnail=out.getvalue(),
    )


def is_zip(fileobj) -> bool:
    """Return whether the upload is a zip archive: local-header magic first, then a readable directory.

    ``zipfile.is_zipfile`` alone looks for an end-of-archive record anywhere near the end,
    which a valid JPEG can carry in trailing bytes.
    """
    pos = fileobj.tell()
    try:
        fileobj.seek(0)
        if fileobj.read(4) != b"PK\x03\x04":
            return False
        fileobj.seek(0)
        return zipfile.is_zipfile(fileobj)
    finally:
        fileobj.seek(pos)


def iter_chunks(fileobj, size: int = 1 << 20) -> Iterator[bytes]:
    while chunk := fileobj.read(size):
        yield chunk
