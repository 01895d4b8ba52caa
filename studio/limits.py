"""The limits on what Studio reads from users' files, in one place.

Every archive Studio opens (image uploads, annotation imports) is checked here, entry by
entry, before a byte is extracted: how many entries, how many bytes they expand to in
all and each, how far each is compressed, and whether its path escapes (``..``, an
absolute path) or is a link. Every image Studio decodes (uploads, mask PNGs inside an
import, stored originals) is opened here, and its pixel count checked from the header,
before its pixels are decoded. The limits come from ``settings.STUDIO`` (see
docs/operations.md); the checks themselves need no Django.

Pillow's own decompression-bomb guard (``Image.MAX_IMAGE_PIXELS``) stays as Pillow sets
it, for any code that opens an image some other way; ``open_image`` applies Studio's
limit instead of Pillow's, and only to the image it opens.
"""

from __future__ import annotations

import io
import stat
import struct
import zipfile
from dataclasses import dataclass
from typing import IO

from PIL import Image as PILImage
from PIL import UnidentifiedImageError

# An entry smaller than this costs nothing to expand, however well it compressed (a label
# file of identical lines compresses a thousandfold).
RATIO_FLOOR = 1 << 20
SUPPORTED_COMPRESSION = {
    zipfile.ZIP_STORED,
    zipfile.ZIP_DEFLATED,
    zipfile.ZIP_BZIP2,
    zipfile.ZIP_LZMA,
}


class Rejected(Exception):
    """A file that cannot be read within the limits; the message is the reason shown."""


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int  # an image, or any file read whole into memory
    max_pixels: int
    max_entries: int
    max_archive_bytes: int  # an upload, and what one archive expands to in all
    max_ratio: int
    thumbnail_size: int
    max_label_bytes: int = 1 << 30  # one annotation file inside an import (streamed)

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
            max_label_bytes=cfg["MAX_LABEL_FILE_BYTES"],
        )


# --- archives ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ArchiveEntry:
    name: str
    info: zipfile.ZipInfo | None
    problem: str | None  # set when the entry is rejected without being read


def entry_problem(
    info: zipfile.ZipInfo, limits: Limits, max_bytes: int | None = None
) -> str | None:
    """Say why one archive entry must not be read (or None), from its header alone.

    ``max_bytes`` is the most one entry may expand to: ``limits.max_file_bytes`` unless
    the caller streams the entry rather than reading it whole. zipfile never returns more
    bytes than the header declares, so the check holds even when the header lies.
    """
    name = info.filename
    max_bytes = limits.max_file_bytes if max_bytes is None else max_bytes
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
    if info.file_size > max_bytes:
        return f"file is {info.file_size:,} bytes; the limit is {max_bytes:,}"
    if info.file_size > RATIO_FLOOR and info.file_size > limits.max_ratio * max(
        info.compress_size, 1
    ):
        ratio = info.file_size / max(info.compress_size, 1)
        return f"compression ratio {ratio:.0f}:1 exceeds {limits.max_ratio}:1"
    return None


def check_archive(fileobj, limits: Limits, max_bytes: int | None = None) -> list[ArchiveEntry]:
    """Return the archive's file entries in order, or raise ``Rejected`` for the whole archive.

    Whole-archive problems (not a zip, too many entries, too many bytes in total) reject
    it at once; per-entry problems (see ``entry_problem``) are returned for the caller to
    report per file or to refuse the archive with.
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
    return [
        ArchiveEntry(name=i.filename, info=i, problem=entry_problem(i, limits, max_bytes))
        for i in files
    ]


def read_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limits: Limits) -> bytes:
    """Read one archive member, never more than the per-file limit whatever its header says."""
    with zf.open(info) as member:
        data = member.read(limits.max_file_bytes + 1)
    if len(data) > limits.max_file_bytes:
        raise Rejected(f"file is larger than the limit of {limits.max_file_bytes:,} bytes")
    return data


# --- images -----------------------------------------------------------------------------


def check_pixels(width: int, height: int, max_pixels: int, what: str = "image") -> None:
    """Refuse an image whose declared size exceeds the pixel limit (before decoding it)."""
    if width < 1 or height < 1:
        raise Rejected(f"{what} has no pixels")
    if width * height > max_pixels:
        raise Rejected(
            f"{what} is {width}x{height} = {width * height:,} pixels; the limit is {max_pixels:,}"
        )


def open_image(
    source: bytes | IO[bytes], *, max_pixels: int, formats: tuple[str, ...] | None = None
) -> PILImage.Image:
    """Open an image lazily and check its pixel count from the header; raise ``Rejected``.

    Pillow's ``Image.open`` applies Pillow's process-wide limit as it opens; this opens
    through the same format plugins (``Image.OPEN``) and applies Studio's limit instead,
    so neither limit has to be switched off for the other. Nothing is decoded here.
    """
    fp = io.BytesIO(source) if isinstance(source, bytes | bytearray) else source
    PILImage.init()
    prefix = fp.read(16)
    for fmt in formats or tuple(PILImage.ID):
        if fmt not in PILImage.OPEN:
            continue
        factory, accept = PILImage.OPEN[fmt]
        result = not accept or accept(prefix)
        if isinstance(result, str) or not result:  # a str is Pillow's "maybe" warning
            continue
        fp.seek(0)
        try:
            img = factory(fp, "")
        except (SyntaxError, IndexError, TypeError, struct.error):
            continue  # not this format after all (what Image.open does)
        except Exception as exc:  # noqa: BLE001 - a header the plugin cannot read
            raise Rejected(f"unreadable image: {exc}")
        check_pixels(*img.size, max_pixels)
        return img
    allowed = ", ".join(formats) if formats else "an image format Pillow reads"
    raise Rejected(f"not a supported image (allowed by content: {allowed})") from (
        UnidentifiedImageError()
    )


def open_stored(image, data: bytes) -> PILImage.Image:
    """Open a stored original (an ``Image`` row's file) for decoding.

    Its pixels were checked against the limit when it was uploaded; the file must still
    hold exactly the pixels its row records, whatever the limit is today, so a raised or
    lowered limit neither breaks nor widens what is already stored.
    """
    return open_image(data, max_pixels=max(1, image.width * image.height))
