"""Importing images into a dataset: the one service behind `manage.py import_images` and the
browser upload page, so both validate the same way and report the same reasons.

An import takes (file, relative path) pairs. Each file is checked, stored and recorded on its
own: a bad file is reported with its path and reason and skipped, the rest goes on. A file
becomes a data row only after its original and thumbnail are written, inside one transaction;
if the row cannot be written, the files this import created are removed again, so nothing
half-written stays behind. Re-running an import finds each global key already present and
adds nothing twice.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import os
import re
import unicodedata
import warnings
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

import numpy as np
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import DatabaseError, IntegrityError, transaction
from PIL import Image, UnidentifiedImageError

from .filters import FilterError, normalize_datetime
from .models import DataRow, Dataset, MetadataField

Kind = MetadataField.Kind

# Manifest columns that identify a file rather than describe it.
PATH_COLUMN = "path"
KEY_COLUMN = "global_key"
# `folder` is filled from the file's immediate folder; the catalog filter knows it as built-in.
RESERVED_FIELDS = {PATH_COLUMN, KEY_COLUMN, "folder"}
MAX_DATASET_NAME = 200  # Dataset.name's max_length
MAX_GLOBAL_KEY = 1024  # DataRow.global_key's max_length (PostgreSQL enforces it; SQLite would not)
FIELD_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Stored file names use the canonical extension of the decoded format, not whatever the
# uploaded name claimed, so the media server sends the right content type.
FORMAT_EXTENSIONS = {
    "JPEG": ".jpg",
    "MPO": ".jpg",
    "AVIF": ".avif",
    "PNG": ".png",
    "GIF": ".gif",
    "TIFF": ".tif",
    "WEBP": ".webp",
    "BMP": ".bmp",
}

# EXIF orientation → the transpose that shows the image upright (as PIL.ImageOps.exif_transpose).
ORIENTATION_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
EXIF_ORIENTATION_TAG = 0x0112

# Formats Pillow identifies but can only decode by running another program (Ghostscript for
# EPS) or a platform handler: never on a file someone uploaded.
NEEDS_OUTSIDE_PROGRAM = {
    "EPS": "EPS/PostScript is not supported (it would need Ghostscript); export it as PNG first.",
    "WMF": "Windows metafiles are not supported; export it as PNG first.",
}

# Brands of ISO base media files that are HEIF/HEIC images (Pillow cannot read them without a
# plug-in); AVIF is listed too for Pillow builds without AVIF support.
HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}
AVIF_BRANDS = {b"avif", b"avis"}
# Signatures of formats Pillow reads: a file that starts like one but does not open is corrupt,
# not "not an image".
IMAGE_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"II*\x00", b"MM\x00*", b"BM", b"RIFF")


class Reason:
    """Failure reason codes: the summary groups failures by these."""

    EMPTY = "empty file"
    NOT_IMAGE = "not an image"
    UNSUPPORTED = "unsupported format"
    TRUNCATED = "truncated image"
    CORRUPT = "corrupt image"
    TOO_LARGE = "too many pixels"
    KEY_CONFLICT = "global key conflict"
    BAD_KEY = "bad global key"
    METADATA = "bad manifest value"
    UNREADABLE = "unreadable file"
    STORAGE = "could not store"


class ImportFailure(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ImportRefused(ValueError):
    """The import cannot start at all (no dataset name); nothing is imported."""


class ManifestError(ValueError):
    """The manifest as a whole cannot be used (bad format, bad header); nothing is imported."""


@dataclass
class FileResult:
    path: str
    global_key: str
    status: str  # "imported" | "present" | "failed"
    reason_code: str = ""
    reason: str = ""
    row_id: int | None = None


@dataclass
class ImportReport:
    dataset: str
    imported: list[FileResult] = field(default_factory=list)
    present: list[FileResult] = field(default_factory=list)
    failed: list[FileResult] = field(default_factory=list)
    # Problems that did not stop any file, e.g. manifest entries that match no file.
    warnings: list[str] = field(default_factory=list)

    def add(self, result: FileResult) -> None:
        {"imported": self.imported, "present": self.present, "failed": self.failed}[result.status].append(result)

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def total(self) -> int:
        return len(self.imported) + len(self.present) + len(self.failed)

    def failures_by_reason(self) -> dict[str, list[FileResult]]:
        groups: dict[str, list[FileResult]] = defaultdict(list)
        for result in self.failed:
            groups[result.reason_code].append(result)
        return dict(sorted(groups.items()))

    def summary(self) -> str:
        lines = [
            f"Dataset {printable(self.dataset)}: {len(self.imported)} imported, "
            f"{len(self.present)} already present, {len(self.failed)} failed."
        ]
        for code, results in self.failures_by_reason().items():
            lines.append(f"Failed — {code} ({len(results)}):")
            lines.extend(f"  {printable(r.path)}: {printable(r.reason)}" for r in results)
        lines.extend(f"Warning: {printable(w)}" for w in self.warnings)
        return "\n".join(lines)

    __str__ = summary

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for the session, between a browser upload and its report page)."""
        return {
            "dataset": self.dataset,
            "imported": [r.__dict__ for r in self.imported],
            "present": [r.__dict__ for r in self.present],
            "failed": [r.__dict__ for r in self.failed],
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImportReport:
        return cls(
            dataset=data["dataset"],
            imported=[FileResult(**r) for r in data["imported"]],
            present=[FileResult(**r) for r in data["present"]],
            failed=[FileResult(**r) for r in data["failed"]],
            warnings=list(data["warnings"]),
        )


def printable(text: str) -> str:
    """Text safe to print on a terminal: control characters (a file name may hold an escape
    sequence or a newline) are shown as escapes; letters of any script stay as they are."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in text)


class Progress(Protocol):
    def start(self, total: int) -> None: ...
    def advance(self, result: FileResult) -> None: ...


# --- Manifest ---------------------------------------------------------------------------------


@dataclass
class Manifest:
    """Typed metadata per file, keyed by file path (relative to the imported folder) or by
    global key. An entry may also give the file's global key."""

    name: str
    kinds: dict[str, str]
    entries: list[dict[str, str]]
    by_path: dict[str, int] = field(default_factory=dict)
    by_key: dict[str, int] = field(default_factory=dict)

    def entry_for(self, path: str) -> tuple[int, dict[str, str]] | None:
        """The entry for a file: by its path, else by a global key equal to its path (the
        default key), so a manifest keyed by global key works for a plain folder import."""
        index = self.by_path.get(path)
        if index is None:
            index = self.by_key.get(path)
        return (index, self.entries[index]) if index is not None else None


def _normalise_path(path: str) -> str:
    path = path.strip().replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    return unicodedata.normalize("NFC", path)


def _parse_header(column: str, manifest: str) -> tuple[str, str | None]:
    """`weight:number` → ("weight", "number"); `note` → ("note", None: inferred)."""
    name, _, kind = column.strip().partition(":")
    name = name.strip()
    kind = kind.strip().lower()
    if name in (PATH_COLUMN, KEY_COLUMN) and not kind:
        return name, None
    if not FIELD_NAME_RE.match(name) or "__" in name:
        raise ManifestError(
            f"Manifest {manifest}: field name '{name}' is not allowed: use letters, digits and single underscores "
            "(not starting with a digit)."
        )
    if name in RESERVED_FIELDS:
        raise ManifestError(f"Manifest {manifest}: '{name}' cannot be a metadata field (it is set by the importer).")
    if kind and kind not in Kind.values:
        raise ManifestError(
            f"Manifest {manifest}: column '{column}' has unknown type '{kind}' (use one of {', '.join(Kind.values)})."
        )
    return name, kind or None


def _looks_like_number(value: str) -> bool:
    try:
        return math.isfinite(float(value))
    except ValueError:
        return False


def _looks_like_datetime(value: str) -> bool:
    # Only ISO dates ("2024-05-01", "2024-05-01T10:00") count, so that numbers are never dates.
    if not re.match(r"^\d{4}-\d{2}-\d{2}", value):
        return False
    try:
        normalize_datetime(value)
    except FilterError:
        return False
    return True


def _infer_kind(values: list[str]) -> str:
    values = [v for v in values if v != ""]
    if values and all(_looks_like_number(v) for v in values):
        return Kind.NUMBER
    if values and all(_looks_like_datetime(v) for v in values):
        return Kind.DATETIME
    return Kind.STRING


def _scalar_text(value: Any, *, line: int, column: str, manifest: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    raise ManifestError(f"Manifest {manifest}, line {line}: '{column}' must be a single value, not {type(value).__name__}.")


def load_manifest(source: str | Path | IO[bytes], *, name: str | None = None) -> Manifest:
    """Read a CSV (header row) or JSONL (one object per line) manifest.

    1. Read the rows as text; the format follows the file name (`.jsonl`/`.ndjson`, else CSV).
    2. Parse the column names: `name:type` declares a type, a bare name has its type inferred
       from all its values (number, else ISO datetime, else string; enums are declared).
    3. Index entries by `path` and by `global_key`; a duplicate is an error.
    Values are typed later, per file, so one bad value fails only its own file.
    """
    if isinstance(source, str | Path):
        label = name or str(source)
        with open(source, "rb") as fh:
            raw = fh.read()
    else:
        label = name or str(getattr(source, "name", None) or "manifest")
        raw = source.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"Manifest {label} is not UTF-8 text ({exc.reason} at byte {exc.start}).") from exc

    rows: list[dict[str, str]] = []
    lines: list[int] = []
    if label.lower().endswith((".jsonl", ".ndjson")):
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ManifestError(f"Manifest {label}, line {number}: not valid JSON ({exc.msg}).") from exc
            if not isinstance(obj, dict):
                raise ManifestError(f"Manifest {label}, line {number}: expected a JSON object.")
            rows.append({str(k): _scalar_text(v, line=number, column=str(k), manifest=label) for k, v in obj.items()})
            lines.append(number)
    else:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        if not reader.fieldnames:
            raise ManifestError(f"Manifest {label} is empty: expected a header row.")
        for row in reader:
            if None in row:
                raise ManifestError(f"Manifest {label}, line {reader.line_num}: more values than columns.")
            rows.append({k: (v or "").strip() for k, v in row.items()})
            lines.append(reader.line_num)

    columns: dict[str, tuple[str, str | None]] = {}
    for row in rows:
        for column in row:
            if column not in columns:
                columns[column] = _parse_header(column, label)
    names = [n for n, _ in columns.values()]
    if len(names) != len(set(names)):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise ManifestError(f"Manifest {label}: field {', '.join(dupes)} is given twice.")
    if rows and PATH_COLUMN not in names and KEY_COLUMN not in names:
        raise ManifestError(f"Manifest {label}: needs a '{PATH_COLUMN}' or '{KEY_COLUMN}' column to match files.")

    kinds: dict[str, str] = {}
    entries: list[dict[str, str]] = []
    for row in rows:
        entries.append({columns[c][0]: v for c, v in row.items()})
    for field_name, kind in columns.values():
        if field_name in (PATH_COLUMN, KEY_COLUMN):
            continue
        kinds[field_name] = kind or _infer_kind([e.get(field_name, "") for e in entries])

    manifest = Manifest(name=label, kinds=kinds, entries=entries)
    for index, (entry, line_no) in enumerate(zip(entries, lines, strict=True)):
        for column, table in ((PATH_COLUMN, manifest.by_path), (KEY_COLUMN, manifest.by_key)):
            value = _normalise_path(entry.get(column, "")) if column == PATH_COLUMN else entry.get(column, "")
            if not value:
                continue
            if value in table:
                raise ManifestError(f"Manifest {label}, line {line_no}: {column} '{value}' appears twice.")
            table[value] = index
        if not entry.get(PATH_COLUMN) and not entry.get(KEY_COLUMN):
            raise ManifestError(f"Manifest {label}, line {line_no}: no {PATH_COLUMN} or {KEY_COLUMN} given.")
    return manifest


def typed_value(value: str, kind: str, field_name: str) -> Any:
    """A manifest value in the form the catalog filter compares against."""
    if "\x00" in value:
        # PostgreSQL's JSON cannot hold it; refused everywhere so both databases agree.
        raise ImportFailure(Reason.METADATA, f"field '{field_name}' contains a NUL character.")
    if kind == Kind.NUMBER:
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise ImportFailure(Reason.METADATA, f"field '{field_name}' is a number; '{value}' is not.")
        # Whole numbers stay integers so they read naturally in the row page and JSON exports.
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    if kind == Kind.DATETIME:
        try:
            return normalize_datetime(value, field_name)
        except FilterError as exc:
            raise ImportFailure(Reason.METADATA, str(exc)) from exc
    return value


# --- Images -----------------------------------------------------------------------------------


@dataclass
class Decoded:
    format: str
    width: int
    height: int
    thumbnail: bytes


def _classify_unidentified(data: bytes) -> ImportFailure:
    head = data[:4096]
    lowered = head.lower()
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in HEIF_BRANDS:
            return ImportFailure(
                Reason.UNSUPPORTED,
                "HEIC/HEIF images are not supported; convert it to JPEG first (e.g. `heif-convert photo.heic photo.jpg`).",
            )
        if brand in AVIF_BRANDS:
            return ImportFailure(Reason.UNSUPPORTED, "AVIF images are not supported here; convert it to PNG or JPEG first.")
    if b"<svg" in lowered:
        return ImportFailure(
            Reason.UNSUPPORTED,
            "SVG is a vector format and is not supported; render it to PNG first "
            "(e.g. `rsvg-convert -o drawing.png drawing.svg`).",
        )
    if head.startswith(b"%PDF"):
        return ImportFailure(Reason.UNSUPPORTED, "PDF documents are not supported; export the pages as PNG or JPEG first.")
    if head.startswith(IMAGE_SIGNATURES):
        return ImportFailure(Reason.CORRUPT, "the file starts like an image but its header is damaged.")
    if b"\x00" not in head:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:
            # A multi-byte character cut at the 4 KiB boundary is still text.
            if exc.start < len(head) - 4:
                return ImportFailure(Reason.NOT_IMAGE, "the file format is not recognised as an image.")
        return ImportFailure(Reason.NOT_IMAGE, "the file is text, not an image.")
    return ImportFailure(Reason.NOT_IMAGE, "the file format is not recognised as an image.")


def _to_displayable(im: Image.Image) -> Image.Image:
    """Any Pillow mode → RGB, RGBA, L or LA, ready to be resized."""
    if im.mode in ("RGB", "RGBA", "L", "LA"):
        return im
    if im.mode.startswith("I;16") or im.mode in ("I", "F"):
        # Scale the full range down to 8 bits: Pillow's own convert("L") clips at 255, which
        # turns a 16-bit photo white.
        array = np.asarray(im)
        if im.mode.startswith("I;16") or (im.mode == "I" and array.min() >= 0 and array.max() <= 65535 and array.max() > 255):
            scaled = array.astype(np.float32) / 257.0
        elif im.mode == "I" and array.min() >= 0 and array.max() <= 255:
            scaled = array.astype(np.float32)
        else:
            low, high = float(np.nanmin(array)), float(np.nanmax(array))
            scaled = (array.astype(np.float32) - low) * (255.0 / max(high - low, 1e-9))
        return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8))
    if im.mode == "P" and "transparency" in im.info:
        return im.convert("RGBA")
    if im.mode in ("PA", "RGBa", "La"):
        return im.convert("RGBA")
    if im.mode == "1":
        return im.convert("L")
    return im.convert("RGB")


def _verify_png(data: bytes) -> None:
    """Check every chunk's CRC. Decoding alone does not: zlib happily inflates damaged pixel
    data into a plausible-looking picture, which would import as garbage."""
    try:
        with Image.open(io.BytesIO(data)) as check:
            check.verify()
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        message = str(exc)
        if isinstance(exc, EOFError) or "truncated" in message:
            raise ImportFailure(Reason.TRUNCATED, f"the file ends before the image data does ({message or 'EOF'}).") from exc
        raise ImportFailure(Reason.CORRUPT, f"the image data is damaged ({message}).") from exc


def decode_image(data: bytes) -> Decoded:
    """Check one file's bytes and make its thumbnail.

    1. Identify the format (Pillow reads only the header here).
    2. Refuse more pixels than CURIO_MAX_IMAGE_PIXELS before anything is decoded.
    3. Decode the first frame (JPEG in draft mode: the decoder scales by 1/2…1/8 for free).
    4. Convert to 8-bit, shrink to CURIO_THUMBNAIL_SIZE, turn upright by the EXIF orientation,
       flatten transparency onto white, and encode a JPEG.
    """
    if not data:
        raise ImportFailure(Reason.EMPTY, "the file is empty (0 bytes).")
    limit = settings.CURIO_MAX_IMAGE_PIXELS
    size = settings.CURIO_THUMBNAIL_SIZE
    try:
        with warnings.catch_warnings():
            # Our own limit below replaces Pillow's warning; Pillow still raises for twice its limit.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise ImportFailure(Reason.TOO_LARGE, f"{exc} Refused as a possible decompression bomb.") from exc
    except UnidentifiedImageError as exc:
        raise _classify_unidentified(data) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImportFailure(Reason.CORRUPT, f"the image header cannot be read ({exc}).") from exc

    with im:
        fmt = im.format or "unknown"
        if fmt in NEEDS_OUTSIDE_PROGRAM:
            raise ImportFailure(Reason.UNSUPPORTED, NEEDS_OUTSIDE_PROGRAM[fmt])
        width, height = im.size
        if width * height > limit:
            raise ImportFailure(
                Reason.TOO_LARGE,
                f"{width}×{height} = {width * height:,} pixels is over the limit of {limit:,} "
                "(CURIO_MAX_IMAGE_PIXELS); refused as a possible decompression bomb.",
            )
        if fmt == "PNG":
            _verify_png(data)
        try:
            orientation = int(im.getexif().get(EXIF_ORIENTATION_TAG, 1) or 1)
        except (OSError, SyntaxError, ValueError, TypeError):
            orientation = 1  # unreadable EXIF: show the pixels as stored
        if orientation in (5, 6, 7, 8):
            width, height = height, width
        try:
            if fmt in ("JPEG", "MPO"):
                # Ask for the thumbnail's own shape, not a square: libjpeg then picks the
                # largest 1/2…1/8 scale even for long thin pictures.
                longest = max(im.size)
                target = (max(1, math.ceil(im.size[0] * size / longest)), max(1, math.ceil(im.size[1] * size / longest)))
                im.draft("RGB" if im.mode in ("RGB", "YCbCr") else None, target)
            im.seek(0)  # first frame of an animated GIF / multi-page TIFF
            im.load()
            thumb = _to_displayable(im)
            thumb.thumbnail((size, size), Image.Resampling.LANCZOS, reducing_gap=2.0)
            if orientation in ORIENTATION_TRANSPOSE:
                thumb = thumb.transpose(ORIENTATION_TRANSPOSE[orientation])
            if thumb.mode in ("RGBA", "LA"):
                rgba = thumb.convert("RGBA")
                flat = Image.new("RGB", rgba.size, (255, 255, 255))
                flat.paste(rgba, mask=rgba.getchannel("A"))
                thumb = flat
            elif thumb.mode != "RGB":
                thumb = thumb.convert("RGB")
            out = io.BytesIO()
            thumb.save(out, "JPEG", quality=85)
        except (EOFError, OSError) as exc:
            message = str(exc)
            if isinstance(exc, EOFError) or "truncated" in message:
                raise ImportFailure(Reason.TRUNCATED, f"the file ends before the image data does ({message or 'EOF'}).") from exc
            raise ImportFailure(Reason.CORRUPT, f"the image data cannot be decoded ({message}).") from exc
        except (SyntaxError, ValueError, MemoryError) as exc:
            raise ImportFailure(Reason.CORRUPT, f"the image data cannot be decoded ({exc}).") from exc
    return Decoded(format=fmt, width=width, height=height, thumbnail=out.getvalue())


# --- Storage ----------------------------------------------------------------------------------


def _store(name: str, data: bytes, created: list[str]) -> str:
    """Write content-addressed `data` under `name` unless an intact copy is there already.

    Identical files share one stored copy. A copy of the wrong size is a leftover of a write
    that was cut short (a crash mid-copy), so it is replaced rather than trusted.
    """
    if default_storage.exists(name):
        if default_storage.size(name) == len(data):
            return name
        default_storage.delete(name)
    stored = default_storage.save(name, ContentFile(data))
    created.append(stored)
    return stored


def _remove(names: list[str]) -> None:
    for name in names:
        # Best effort: the row was not written, so an orphan file would harm nothing.
        with contextlib.suppress(OSError):
            default_storage.delete(name)


# --- Import -----------------------------------------------------------------------------------


def _read(source: Path | UploadedFile) -> bytes:
    if isinstance(source, Path):
        return source.read_bytes()
    source.seek(0)
    return b"".join(source.chunks())


def _folder_of(source: Path | UploadedFile, rel_path: str) -> str:
    parts = rel_path.split("/")
    if len(parts) > 1:
        return parts[-2]
    # A file at the top of an imported folder sits in that folder (`…/png/animals/cat.png`
    # imported from `animals/` is in "animals"); a browser upload has no folder.
    return source.absolute().parent.name if isinstance(source, Path) else ""


class _FieldBook:
    """The dataset's metadata fields during one import: creates missing ones, checks the
    manifest's types against existing ones, and keeps enum choices up to date."""

    def __init__(self, dataset: Dataset, manifest: Manifest | None) -> None:
        self.kinds: dict[str, str] = {}
        self.choices: dict[str, set[str]] = {}
        if manifest is None:
            return
        existing = {f.name: f for f in MetadataField.objects.filter(dataset=dataset, name__in=list(manifest.kinds))}
        for name, kind in manifest.kinds.items():
            current = existing.get(name)
            if current is None:
                current, _ = MetadataField.objects.get_or_create(dataset=dataset, name=name, defaults={"kind": kind})
            if current.kind != kind:
                raise ManifestError(
                    f"Manifest {manifest.name}: field '{name}' is {kind} here but {current.kind} in dataset "
                    f"'{dataset.name}'; declare it as '{name}:{current.kind}'."
                )
            self.kinds[name] = current.kind
            if current.kind == Kind.ENUM:
                self.choices[name] = set(current.choices)
        self.dataset = dataset

    def record_choices(self, metadata: dict[str, Any]) -> None:
        """Add new enum values to their field (inside the row's transaction)."""
        for name, known in self.choices.items():
            value = metadata.get(name)
            if value is None or value in known:
                continue
            fld = MetadataField.objects.select_for_update().get(dataset=self.dataset, name=name)
            fld.choices = sorted({*fld.choices, value})
            fld.save(update_fields=["choices"])
            known.update(fld.choices)


def _metadata_for(source: Path | UploadedFile, rel_path: str, entry: dict[str, str] | None, fields: _FieldBook) -> dict[str, Any]:
    metadata: dict[str, Any] = {"folder": _folder_of(source, rel_path)}
    for name, value in (entry or {}).items():
        if name in (PATH_COLUMN, KEY_COLUMN) or value == "":
            continue
        metadata[name] = typed_value(value, fields.kinds[name], name)
    return metadata


def _import_one(
    source: Path | UploadedFile,
    rel_path: str,
    global_key: str,
    *,
    dataset: Dataset,
    entry: dict[str, str] | None,
    fields: _FieldBook,
) -> FileResult:
    """1. read and hash; 2. an existing key is "already present" (same dataset, same content)
    or a conflict; 3. decode and make the thumbnail; 4. store both files; 5. write the row in a
    transaction, removing the files this call wrote if it fails."""
    try:
        data = _read(source)
    except OSError as exc:
        raise ImportFailure(Reason.UNREADABLE, f"the file cannot be read ({exc.strerror or exc}).") from exc
    digest = hashlib.sha256(data).hexdigest()

    # Lean on purpose: this runs once per file, also on every re-run (the dataset's name is
    # only loaded for the rare conflict message).
    existing = DataRow.objects.filter(global_key=global_key).only("id", "dataset_id", "content_hash").first()
    if existing is not None:
        if existing.dataset_id != dataset.pk:
            raise ImportFailure(
                Reason.KEY_CONFLICT, f"global key '{global_key}' already belongs to dataset '{existing.dataset.name}'."
            )
        if existing.content_hash != digest:
            raise ImportFailure(
                Reason.KEY_CONFLICT,
                f"global key '{global_key}' already exists in this dataset with different content; "
                "give the new file another key (rename it or set global_key in a manifest).",
            )
        return FileResult(rel_path, global_key, "present", row_id=existing.pk)

    metadata = _metadata_for(source, rel_path, entry, fields)
    decoded = decode_image(data)
    extension = FORMAT_EXTENSIONS.get(decoded.format, "." + re.sub(r"[^a-z0-9]", "", decoded.format.lower()))
    created: list[str] = []
    try:
        try:
            original_name = _store(f"originals/{digest[:2]}/{digest}{extension}", data, created)
            thumbnail_name = _store(f"thumbnails/{digest[:2]}/{digest}.jpg", decoded.thumbnail, created)
        except OSError as exc:
            raise ImportFailure(Reason.STORAGE, f"writing to media storage failed ({exc.strerror or exc}).") from exc
        try:
            with transaction.atomic():
                row = DataRow.objects.create(
                    dataset=dataset,
                    global_key=global_key,
                    file=original_name,
                    thumbnail=thumbnail_name,
                    width=decoded.width,
                    height=decoded.height,
                    format=decoded.format,
                    byte_size=len(data),
                    content_hash=digest,
                    metadata=metadata,
                )
                fields.record_choices(metadata)
        except IntegrityError as exc:
            # Another import wrote the same key between our check and our insert.
            raise ImportFailure(
                Reason.KEY_CONFLICT, f"global key '{global_key}' was imported at the same time by another import."
            ) from exc
        except DatabaseError as exc:
            # The row's savepoint is rolled back, so the connection (and the rest of the
            # import) carries on; the files written for it are removed below.
            raise ImportFailure(Reason.STORAGE, f"the database refused the row ({exc}).") from exc
    except BaseException:
        _remove(created)
        raise
    return FileResult(rel_path, global_key, "imported", row_id=row.pk)


def import_paths(
    files: Iterable[tuple[Path | UploadedFile, str]],
    *,
    dataset: Dataset,
    manifest: Manifest | None = None,
    user: AbstractBaseUser | AnonymousUser | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import (file, relative path) pairs into `dataset`; the relative path is the default
    global key, the manifest's lookup key and the source of the `folder` field.

    Raises ManifestError (before importing anything) when the manifest's field types clash
    with the dataset's; every per-file problem is reported in the result instead.
    """
    pairs = [(source, _normalise_path(rel)) for source, rel in files]
    report = ImportReport(dataset=dataset.name)
    fields = _FieldBook(dataset, manifest)
    used_entries: set[int] = set()
    keys_in_this_import: dict[str, str] = {}
    if progress is not None:
        progress.start(len(pairs))
    for source, rel_path in pairs:
        found = manifest.entry_for(rel_path) if manifest else None
        entry = found[1] if found else None
        if found:
            used_entries.add(found[0])
        global_key = (entry or {}).get(KEY_COLUMN) or rel_path
        try:
            if len(global_key) > MAX_GLOBAL_KEY:
                raise ImportFailure(
                    Reason.BAD_KEY, f"the global key is {len(global_key)} characters long; at most {MAX_GLOBAL_KEY} fit."
                )
            first = keys_in_this_import.get(global_key)
            if first is not None:
                raise ImportFailure(Reason.KEY_CONFLICT, f"global key '{global_key}' is also given to '{first}' in this import.")
            keys_in_this_import[global_key] = rel_path
            result = _import_one(source, rel_path, global_key, dataset=dataset, entry=entry, fields=fields)
        except ImportFailure as failure:
            result = FileResult(rel_path, global_key, "failed", failure.code, failure.message)
        report.add(result)
        if progress is not None:
            progress.advance(result)
    if manifest is not None:
        unused = [i for i in range(len(manifest.entries)) if i not in used_entries]
        for index in unused[:20]:
            entry = manifest.entries[index]
            report.warnings.append(
                f"manifest entry '{entry.get(PATH_COLUMN) or entry.get(KEY_COLUMN)}' matches no imported file."
            )
        if len(unused) > 20:
            report.warnings.append(f"… and {len(unused) - 20} more manifest entries match no imported file.")
    return report


def collect_files(root: Path, *, skip: Iterable[Path] = ()) -> list[tuple[Path, str]]:
    """Every file under `root` (recursively, sorted) with its path relative to `root`.

    Hidden files and folders (`.DS_Store`, `.git/`) are left out: they are never catalog
    images, and reporting each as a failure would bury the real ones.
    """
    root = Path(root)
    skipped = {p.resolve() for p in skip}
    if root.is_file():
        return [(root, root.name)]
    found: list[tuple[Path, str]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for filename in sorted(filenames):
            if filename.startswith("."):
                continue
            path = Path(dirpath) / filename
            if path.resolve() in skipped:
                continue
            found.append((path, path.relative_to(root).as_posix()))
    return found


def upload_name(name: str) -> str:
    """The HTML standard has browsers send a double quote in a multipart file name as %22
    (a file named 'say "hi".png' arrives as 'say %22hi%22.png'): undo that. (They escape
    line breaks too; those stay escaped: no global key should hold a line break.)"""
    return name.replace("%22", '"')


def iter_uploads(uploads: Iterable[UploadedFile]) -> Iterator[tuple[UploadedFile, str]]:
    """Browser uploads: the browser sends only file names, which become the global keys."""
    for upload in uploads:
        yield upload, upload_name(upload.name or "unnamed")


def import_folder(
    path: str | Path,
    *,
    dataset_name: str,
    manifest_path: str | Path | None = None,
    user: AbstractBaseUser | AnonymousUser | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import every file under `path` into the dataset named `dataset_name` (created if new)."""
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"'{root}' does not exist.")
    manifest = load_manifest(manifest_path) if manifest_path else None
    dataset = _prepare_dataset(dataset_name, manifest=manifest, user=user)
    files = collect_files(root, skip=[Path(manifest_path)] if manifest_path else [])
    return import_paths(files, dataset=dataset, manifest=manifest, user=user, progress=progress)


def import_uploads(
    uploads: Iterable[UploadedFile],
    *,
    dataset_name: str,
    manifest_file: UploadedFile | None = None,
    user: AbstractBaseUser | AnonymousUser | None = None,
) -> ImportReport:
    """The browser's import: uploaded files (keyed by their file names) into the dataset named
    `dataset_name` (created if new), with an optional uploaded manifest."""
    manifest = load_manifest(manifest_file, name=manifest_file.name) if manifest_file is not None else None
    dataset = _prepare_dataset(dataset_name, manifest=manifest, user=user)
    return import_paths(iter_uploads(uploads), dataset=dataset, manifest=manifest, user=user)


def _prepare_dataset(name: str, *, manifest: Manifest | None, user: AbstractBaseUser | AnonymousUser | None) -> Dataset:
    """Get or create the dataset and check the manifest's fields against it, in one
    transaction: a manifest that clashes leaves no new, empty dataset behind."""
    name = name.strip()
    if not name:
        raise ImportRefused("Give the dataset a name.")
    if len(name) > MAX_DATASET_NAME:
        raise ImportRefused(f"The dataset name is {len(name)} characters long; at most {MAX_DATASET_NAME} are allowed.")
    created_by_id = user.pk if user is not None and user.is_authenticated else None
    with transaction.atomic():
        dataset, _ = Dataset.objects.get_or_create(name=name, defaults={"created_by_id": created_by_id})
        _FieldBook(dataset, manifest)
    return dataset
