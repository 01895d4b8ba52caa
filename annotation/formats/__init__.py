"""Annotation exchange formats: one module per format, each a streaming writer and a reader.

A writer takes the version's images and classes and an iterator of annotation rows
ordered by image, and writes entries into an open ``zipfile.ZipFile`` as it goes, so
memory does not grow with the number of annotations. What the format cannot hold is
recorded in the ``ExportReport``, never dropped silently.

A reader takes a ``Bundle`` (the uploaded file: a zip or a single file) and yields
``Record`` objects in Studio's canonical client forms (RLE dict, flat vertex list,
``[x, y, w, h]``), ``Problem`` objects naming the record that is wrong (the import
fails), or ``Note`` objects naming what the file holds that Studio does not keep (the
import goes on and reports them: nothing is dropped silently). A file that is
not of the format at all raises ``FormatError``. No Django here: the import service
resolves images and classes and validates geometry (a ``Bundle`` made without limits
reads them from settings).
"""

from __future__ import annotations

import os
import posixpath
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from studio.limits import Limits, Rejected, check_archive


class FormatError(ValueError):
    """The file is not of the format it was given as (wrong schema); the message says why."""


@dataclass(slots=True)
class Record:
    """One annotation read from a file, in Studio's client forms (see geometry.validate)."""

    where: str  # names the record for error messages: "annotations[17] (id 42)"
    image: str  # the image's original_name, as the file refers to it
    label: str  # class name
    kind: str  # mask | polygon | box | tag
    geometry: Any  # RLE dict, flat vertex list, [x, y, w, h], or None for tags
    attributes: dict = field(default_factory=dict)
    ref: str | None = None  # the file's own id, checked for duplicates
    crowd: bool = False  # a crowd region (COCO iscrowd=1)


@dataclass(slots=True)
class Problem:
    where: str
    message: str


@dataclass(slots=True)
class Note:
    """Something the file holds that Studio does not keep (COCO keypoints, say): the import
    goes on, and its report lists it, as an export's report lists what it cannot hold."""

    where: str
    message: str


@dataclass(frozen=True, slots=True)
class ImageInfo:
    id: int
    name: str
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class ClassInfo:
    id: int
    name: str
    kind: str
    attributes: dict


@dataclass(slots=True)
class Row:
    """One stored annotation, as a writer sees it (geometry in its stored form)."""

    id: int
    image_id: int
    label_class_id: int
    kind: str
    geometry: dict
    attributes: dict
    area: float = 0.0
    bbox: list = field(default_factory=list)
    is_crowd: bool = False


@dataclass
class ExportReport:
    written: dict[str, int] = field(default_factory=dict)  # kind -> count
    not_held: list[dict] = field(default_factory=list)  # first examples
    not_held_count: int = 0

    def wrote(self, kind: str) -> None:
        self.written[kind] = self.written.get(kind, 0) + 1

    def crowd_not_held(self, row: Row, fmt: str) -> None:
        """Report a crowd region written as an ordinary object (the format has no crowd flag)."""
        if row.is_crowd:
            self.cannot_hold(
                row, f"{fmt} has no crowd flag; the crowd region was written as one object"
            )

    def cannot_hold(self, row: Row, reason: str) -> None:
        self.not_held_count += 1
        if len(self.not_held) < 200:
            self.not_held.append({"annotation": row.id, "image": row.image_id, "reason": reason})


@dataclass
class ExportContext:
    images: list[ImageInfo]
    classes: list[ClassInfo]
    tags: dict[int, list[Row]] = field(default_factory=dict)  # image id -> its tags
    report: ExportReport = field(default_factory=ExportReport)

    def __post_init__(self) -> None:
        self.image_by_id = {i.id: i for i in self.images}
        self.class_by_id = {c.id: c for c in self.classes}


class Catalog:
    """What a reader may ask about the target version: image sizes by name."""

    def __init__(
        self, sizes: dict[str, tuple[int, int]], kinds: dict[str, str], names: list[str] = ()
    ) -> None:
        self._sizes = sizes
        self.kinds = kinds  # class name -> kind, for formats whose shapes are ambiguous
        self._stems: dict[str, str | None] = {}
        for name in names:  # "a/b.jpg" under "a/b" and "b"; None where ambiguous
            root = posixpath.splitext(name)[0]
            for key in {root, posixpath.basename(root)}:
                self._stems[key] = None if key in self._stems else name

    def size(self, name: str) -> tuple[int, int] | None:
        return self._sizes.get(name) or self._sizes.get(posixpath.basename(name))

    def by_stem(self, stem: str) -> str | None:
        """The image name whose path without extension is ``stem`` (YOLO, VOC file names)."""
        return self._stems.get(stem)


class Bundle:
    """The uploaded file: a zip archive or one plain file, read lazily within the limits.

    An archive is checked as a whole before any entry is read (``studio.limits``): too
    many entries, too many bytes, an entry that expands too far or escapes the archive
    refuses it with a ``FormatError``. Entries are streamed (``open``); only those under
    the per-file limit are read whole (``text``, ``read``).
    """

    def __init__(self, path: str, name: str, limits: Limits | None = None) -> None:
        self.path, self.name = path, name
        self.limits = limits or Limits.from_settings()
        self._zip = None
        if zipfile.is_zipfile(path):
            try:
                entries = check_archive(path, self.limits, self.limits.max_label_bytes)
            except Rejected as exc:
                raise FormatError(f"The archive cannot be imported: {exc}.")
            bad = [e for e in entries if e.problem]
            if bad:
                raise FormatError(
                    "The archive cannot be imported: "
                    + "; ".join(f"{e.name}: {e.problem}" for e in bad[:5])
                    + (f" (and {len(bad) - 5:,} more entries)." if len(bad) > 5 else ".")
                )
            self._zip = zipfile.ZipFile(path)  # noqa: SIM115 - closed by close()

    @property
    def is_zip(self) -> bool:
        return self._zip is not None

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()

    def names(self) -> list[str]:
        if self._zip is None:
            return [self.name]
        return [i.filename for i in self._zip.infolist() if not i.is_dir()]

    def open(self, name: str) -> IO[bytes]:
        if self._zip is None:
            if name != self.name:
                raise KeyError(name)
            return open(self.path, "rb")  # noqa: SIM115 - the caller closes it
        return self._zip.open(name)

    def size(self, name: str) -> int:
        """The bytes the file expands to (declared by the archive, which zipfile enforces)."""
        if self._zip is None:
            if name != self.name:
                raise KeyError(name)
            return os.path.getsize(self.path)
        return self._zip.getinfo(name).file_size

    def read(self, name: str) -> bytes:
        """Read a file whole; refuse one larger than the per-file limit (``FormatError``)."""
        size, limit = self.size(name), self.limits.max_file_bytes
        if size > limit:
            raise FormatError(
                f"{name} is {size:,} bytes; files read whole are limited to {limit:,} bytes."
            )
        with self.open(name) as fh:
            return fh.read(limit + 1)

    def find(self, *suffixes: str) -> list[str]:
        return sorted(n for n in self.names() if n.lower().endswith(suffixes))

    def text(self, name: str) -> str:
        return self.read(name).decode("utf-8-sig")


def unsafe_path(name: str) -> str | None:
    """Say why a file's image reference escapes the dataset, or None when it is safe."""
    if not name:
        return "has no image name"
    if "\x00" in name:
        return f"image path {name!r} holds a NUL byte"
    normal = name.replace("\\", "/")
    if normal.startswith("/") or (len(normal) > 1 and normal[1] == ":"):
        return f"image path {name!r} is absolute; it must be relative to the dataset"
    if ".." in normal.split("/"):
        return f"image path {name!r} escapes the dataset (..)"
    return None


@dataclass(frozen=True)
class Format:
    name: str
    label: str
    write: Callable[[zipfile.ZipFile, ExportContext, Iterator[Row]], None]
    read: Callable[[Bundle, Catalog], Iterator[Record | Problem]]
    holds: str  # one line for the docs and the API


def registry() -> dict[str, Format]:
    import importlib

    modules = [importlib.import_module(f"{__name__}.{m}") for m in MODULES]
    return {m.FORMAT.name: m.FORMAT for m in modules}


MODULES = ["coco", "yolo", "voc", "labelstudio", "cvat"]
