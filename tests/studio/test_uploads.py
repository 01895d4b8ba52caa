"""Validation of image bytes and zip archives (studio/uploads.py)."""

from __future__ import annotations

import io
import struct
import zipfile
from datetime import UTC, datetime

import pytest
from PIL import Image

from studio.uploads import Limits, Rejected, check_archive, is_zip, process_image
from tests.factories import image_bytes, jpeg_with_exif, png_bomb, zip_bytes, zip_with_symlink

LIMITS = Limits(
    max_file_bytes=2_000_000,
    max_pixels=10_000_000,
    max_entries=50,
    max_archive_bytes=20_000_000,
    max_ratio=100,
    thumbnail_size=32,
)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF", "BMP"])
def test_accepts_each_allowed_format_and_thumbnails_it(fmt):
    processed = process_image(image_bytes(1, (80, 40), fmt), LIMITS)
    assert processed.format == fmt
    assert (processed.width, processed.height) == (80, 40)
    thumb = process_image(processed.thumbnail, LIMITS)
    assert thumb.format == "JPEG" and max(thumb.width, thumb.height) == 32


def test_recognises_images_by_content_not_name():
    with pytest.raises(Rejected, match="not a supported image"):
        process_image(b"<html><script>alert(1)</script></html>", LIMITS)
    gif = io.BytesIO()
    Image.new("RGB", (10, 10)).save(gif, "GIF")
    with pytest.raises(Rejected, match="not a supported image"):
        process_image(gif.getvalue(), LIMITS)


def test_rejects_files_over_the_byte_limit():
    small = Limits(**{**LIMITS.__dict__, "max_file_bytes": 100})
    with pytest.raises(Rejected, match="the limit is 100"):
        process_image(image_bytes(2, (64, 64), "PNG"), small)


def test_rejects_decompression_bomb_from_header_without_decoding():
    bomb = png_bomb()
    assert len(bomb) < 2000
    with pytest.raises(Rejected, match="3,600,000,000 pixels"):
        process_image(bomb, LIMITS)


def test_rejects_truncated_and_corrupt_images():
    data = image_bytes(3, (200, 200), "JPEG")
    with pytest.raises(Rejected, match="truncated"):
        process_image(data[: len(data) // 2], LIMITS)
    png = image_bytes(3, (50, 50), "PNG")
    broken = png[:60] + bytes(b ^ 0xFF for b in png[60:200]) + png[200:]
    with pytest.raises(Rejected):
        process_image(broken, LIMITS)
    with pytest.raises(Rejected, match="empty"):
        process_image(b"", LIMITS)


def test_reads_exif_capture_time():
    processed = process_image(jpeg_with_exif(4), LIMITS)
    assert processed.captured_at == datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    assert process_image(image_bytes(4), LIMITS).captured_at is None


def _problems(data: bytes, limits=LIMITS) -> dict[str, str | None]:
    return {e.name: e.problem for e in check_archive(io.BytesIO(data), limits)}


def test_archive_entries_that_escape_or_link_are_rejected():
    data = zip_bytes(
        {"ok/a.jpg": image_bytes(1), "../evil.jpg": image_bytes(2), "/etc/passwd": b"x"}
    )
    problems = _problems(data)
    assert problems["ok/a.jpg"] is None
    assert "escapes" in problems["../evil.jpg"]
    assert "absolute" in problems["/etc/passwd"]
    assert "links" in _problems(zip_with_symlink("link.jpg", "/etc/passwd"))["link.jpg"]


def test_archive_compression_bomb_entry_is_rejected():
    data = zip_bytes({"zeros.bmp": b"\0" * 1_500_000})
    assert "compression ratio" in _problems(data)["zeros.bmp"]


def test_whole_archive_limits_reject_the_upload():
    many = zip_bytes({f"{i}.jpg": b"x" for i in range(51)})
    with pytest.raises(Rejected, match="51 files; the limit is 50"):
        check_archive(io.BytesIO(many), LIMITS)
    big = zip_bytes({f"{i}.bin": bytes(1_000_000) for i in range(3)}, zipfile.ZIP_STORED)
    tight = Limits(**{**LIMITS.__dict__, "max_archive_bytes": 2_500_000})
    with pytest.raises(Rejected, match="expands to 3,000,000 bytes"):
        check_archive(io.BytesIO(big), tight)
    with pytest.raises(Rejected, match="not a readable zip"):
        check_archive(io.BytesIO(b"PK\x03\x04garbage"), LIMITS)


def test_multi_picture_jpeg_is_a_jpeg():
    a, b = Image.new("RGB", (32, 32), "red"), Image.new("RGB", (32, 32), "blue")
    out = io.BytesIO()
    a.save(out, "MPO", save_all=True, append_images=[b])
    processed = process_image(out.getvalue(), LIMITS)
    assert processed.format == "JPEG" and processed.extension == "jpg"


def test_a_jpeg_with_zip_like_trailing_bytes_is_not_an_archive():
    tricky = image_bytes(5) + zip_bytes({"x.txt": b"hi"})
    assert not is_zip(io.BytesIO(tricky))
    assert is_zip(io.BytesIO(zip_bytes({"x.jpg": image_bytes(1)})))
    assert process_image(tricky, LIMITS).format == "JPEG"


def _nameless_entry_zip() -> bytes:
    """A zip whose only entry has an empty name (Python's zipfile cannot write one)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("x", b"abc")
    d = bytearray(buf.getvalue())
    cd = d.find(b"PK\x01\x02")
    struct.pack_into("<H", d, cd + 28, 0)  # central directory: name length 0
    del d[cd + 46 : cd + 47]  # and drop the one-byte name
    eocd = d.find(b"PK\x05\x06")
    struct.pack_into("<I", d, eocd + 12, struct.unpack_from("<I", d, eocd + 12)[0] - 1)
    return bytes(d)


def test_odd_archive_entries_are_rejected_per_entry():
    assert _problems(_nameless_entry_zip()) == {"": "entry has an empty name"}
    data = bytearray(zip_bytes({"odd.jpg": image_bytes(2)}, zipfile.ZIP_STORED))
    struct.pack_into("<H", data, 8, 99)  # local header: compression method 99 (AES)
    struct.pack_into("<H", data, data.rfind(b"PK\x01\x02") + 10, 99)
    assert "compression method 99" in _problems(bytes(data))["odd.jpg"]
