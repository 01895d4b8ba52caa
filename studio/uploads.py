"""Validation of uploaded files and archives, independent of the database.

Images are recognised by content, never by name; limits on bytes and pixels are checked
from the header before anything is decoded; zip archives are checked entry by entry for
escaping paths, links and compression bombs before a byte is extracted.
"""

from __future__ import annotations

import hashlib
import io
import stat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from PIL import Image as PILImage
from PIL import UnidentifiedImageError

ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF", "BMP")
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "TIFF": "tif", "BMP": "bmp"}
CONTENT_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "TIFF": "image/tiff",
    "BMP": "image/bmp",
}
# Pillow's own bomb check is a warning below 2x its limit; ours is explicit, so silence it.
PILImage.MAX_IMAGE_PIXELS = None


class Rejected(Exception):
    """A file that cannot be ingested; the message is the reason shown to the user."""


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int
    max_pixels: int
    max_entries: int
    max_archive_bytes: int
    max_ratio: int
    thumbnail_size: int

    @classmethod
    def from_settings(cls) -> Limits:
        from django.conf import settings

        cfg = settings.STUDIO
        return cls(
            max_file_bytes=cfg["MAX_FILE_BYTES"],
            max_pixels=cfg["MAX_IMAGE_PIXELS"],
            max_entries=cfg["MAX_ARCHIVE_ENTRIES"],
            max_archive_bytes=cfg["MAX_ARCHIVE_BYTES"],
            max_ratio=cfg["MAX_COMPRESSION_RATIO"],
            thumbnail_size=cfg["THUMBNAIL_SIZE"],
        )


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
    try:
        img = PILImage.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except UnidentifiedImageError:
        raise Rejected(
            "not a supported image (allowed by content: " + ", ".join(ALLOWED_FORMATS) + ")"
        )
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a rejection
        raise Rejected(f"unreadable image: {exc}")
    width, height = img.size
    if width < 1 or height < 1:
        raise Rejected("image has no pixels")
    if width * height > limits.max_pixels:
        raise Rejected(
            f"image is {width}x{height} = {width * height:,} pixels; the limit is {limits.max_pixels:,}"
        )
    # Multi-picture JPEGs (MPO, from many phones and cameras) are JPEGs with extra frames.
    fmt = "JPEG" if img.format == "MPO" else img.format
    if fmt == "PNG":
        # Pillow checks PNG chunk CRCs only in verify(); a damaged IDAT can decode silently.
        try:
            PILImage.open(io.BytesIO(data), formats=("PNG",)).verify()
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


@dataclass(frozen=True)
class ArchiveEntry:
    name: str
    info: zipfile.ZipInfo | None
    problem: str | None  # set when the entry is rejected without being read


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


SUPPORTED_COMPRESSION = {
    zipfile.ZIP_STORED,
    zipfile.ZIP_DEFLATED,
    zipfile.ZIP_BZIP2,
    zipfile.ZIP_LZMA,
}


def _entry_problem(info: zipfile.ZipInfo, limits: Limits) -> str | None:
    name = info.filename
    if not name.strip("/"):
        return "entry has an empty name"
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "absolute path in archive"
    if ".." in parts:
        return "path escapes the archive ('..')"
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return "links are not allowed in archives"
    if info.flag_bits & 0x1:
        return "encrypted entries are not supported"
    if info.compress_type not in SUPPORTED_COMPRESSION:
        return f"compression method {info.compress_type} is not supported"
    if info.file_size > limits.max_file_bytes:
        return f"file is {info.file_size:,} bytes; the limit is {limits.max_file_bytes:,}"
    if info.compress_size and info.file_size / info.compress_size > limits.max_ratio:
        return f"compression ratio {info.file_size / info.compress_size:.0f}:1 exceeds {limits.max_ratio}:1"
    return None


def check_archive(fileobj, limits: Limits) -> list[ArchiveEntry]:
    """Return the archive's file entries in order, or raise ``Rejected`` for the whole archive.

    Whole-archive problems (not a zip, too many entries, too many bytes in total) reject
    the upload at once; per-entry problems are returned and reported per file.
    """
    try:
        with zipfile.ZipFile(fileobj) as zf:
            infos = zf.infolist()
    except Exception as exc:  # noqa: BLE001 - any structural failure means an unreadable archive
        raise Rejected(f"not a readable zip archive: {exc}")
    files = [i for i in infos if not i.filename.endswith("/")]
    if len(files) > limits.max_entries:
        raise Rejected(f"archive has {len(files):,} files; the limit is {limits.max_entries:,}")
    total = sum(i.file_size for i in files)
    if total > limits.max_archive_bytes:
        raise Rejected(
            f"archive expands to {total:,} bytes; the limit is {limits.max_archive_bytes:,}"
        )
    return [ArchiveEntry(name=i.filename, info=i, problem=_entry_problem(i, limits)) for i in files]


def read_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limits: Limits) -> bytes:
    """Read one archive member, never more than the per-file limit whatever its header says."""
    with zf.open(info) as member:
        data = member.read(limits.max_file_bytes + 1)
    if len(data) > limits.max_file_bytes:
        raise Rejected(f"file is larger than the limit of {limits.max_file_bytes:,} bytes")
    return data


def iter_chunks(fileobj, size: int = 1 << 20) -> Iterator[bytes]:
    while chunk := fileobj.read(size):
        yield chunk
