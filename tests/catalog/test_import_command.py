"""`manage.py import_images`: awkward real files import with correct thumbnails, bad files are
reported with their reason, re-runs add nothing, manifests give typed metadata."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import CommandError
from django.http import QueryDict
from PIL import Image

from catalog.filters import CatalogFilter
from catalog.models import DataRow, Dataset, MetadataField

from .awkward import BAD, GOOD, PIXEL_LIMIT_FOR_TESTS, build_awkward, build_good


@pytest.fixture(scope="module")
def awkward_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_awkward(tmp_path_factory.mktemp("awkward"))


@pytest.fixture(scope="module")
def good_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("good")
    build_good(root)
    return root


@pytest.fixture(autouse=True)
def low_pixel_limit(settings: Any) -> None:
    settings.CURIO_MAX_IMAGE_PIXELS = PIXEL_LIMIT_FOR_TESTS


def run_import(path: Path, dataset: str = "awkward", *extra: str) -> tuple[str, CommandError | None]:
    out = io.StringIO()
    try:
        call_command("import_images", str(path), "--dataset", dataset, *extra, "--no-progress", stdout=out)
    except CommandError as exc:
        return out.getvalue(), exc
    return out.getvalue(), None


def thumbnail_of(key: str) -> Image.Image:
    row = DataRow.objects.get(global_key=key)
    with default_storage.open(row.thumbnail.name) as fh:
        im = Image.open(io.BytesIO(fh.read()))
        im.load()
    return im


def stored_names(folder: str) -> set[str]:
    if not default_storage.exists(folder):
        return set()
    names = set()
    for sub in default_storage.listdir(folder)[0]:
        names.update(f"{folder}/{sub}/{name}" for name in default_storage.listdir(f"{folder}/{sub}")[1])
    return names


def test_awkward_folder_imports_every_good_file_with_a_thumbnail(db, awkward_dir):
    out, _ = run_import(awkward_dir)

    assert set(DataRow.objects.values_list("global_key", flat=True)) == set(GOOD)
    for key, (width, height) in GOOD.items():
        row = DataRow.objects.get(global_key=key)
        data = (awkward_dir / key).read_bytes()
        assert (row.width, row.height) == (width, height), key
        assert row.byte_size == len(data)
        assert row.content_hash == hashlib.sha256(data).hexdigest()
        with default_storage.open(row.file.name) as fh:
            assert fh.read() == data, f"original of {key} is not a byte-for-byte copy"
        thumb = thumbnail_of(key)
        assert thumb.format == "JPEG" and thumb.mode == "RGB", key
        assert max(thumb.size) == min(256, max(width, height)), (key, thumb.size)
        assert min(thumb.size) >= 1
    assert thumbnail_of("tiny/long.png").size == (256, 1)
    assert thumbnail_of("tiny/one.png").size == (1, 1)
    assert DataRow.objects.get(global_key="colour/cmyk.jpg").format == "JPEG"
    assert DataRow.objects.get(global_key="frames/pages.tif").format == "TIFF"
    assert f"{len(GOOD)} imported, 0 already present, {len(BAD)} failed." in out


def test_folder_metadata_is_the_immediate_folder_name(db, awkward_dir):
    run_import(awkward_dir)
    folders = dict(DataRow.objects.values_list("global_key", "metadata__folder"))
    assert folders["nested/a/b/c/deep.jpg"] == "c"
    assert folders["colour/cmyk.jpg"] == "colour"
    # A file at the top sits in the imported folder itself.
    assert folders["top.png"] == awkward_dir.name


def test_thumbnail_follows_exif_orientation(db, awkward_dir):
    run_import(awkward_dir)
    thumb = thumbnail_of("orientation/rotated.jpg")
    width, height = thumb.size
    assert height > width  # stored landscape, shown portrait
    top, bottom = thumb.getpixel((width // 2, 5)), thumb.getpixel((width // 2, height - 5))
    assert top[0] > 150 and top[2] < 100, f"top should be red, is {top}"
    assert bottom[2] > 150 and bottom[0] < 100, f"bottom should be blue, is {bottom}"


def test_thumbnail_colours_survive_every_mode(db, awkward_dir):
    run_import(awkward_dir)
    alpha = thumbnail_of("colour/alpha.png")
    assert alpha.getpixel((10, 50))[0] > 150 and alpha.getpixel((10, 50))[1] < 80  # opaque red half stays red
    assert min(alpha.getpixel((90, 50))) > 240  # transparent half is composited on white, not black
    deep = thumbnail_of("colour/deep16.png")
    left, right = deep.getpixel((2, 100))[0], deep.getpixel((deep.width - 3, 100))[0]
    assert 60 < left < 100, f"16-bit 20000 should scale to about 78, got {left} (clipping gives 255)"
    assert right > 240
    assert thumbnail_of("colour/palette.png").getpixel((5, 5))[1] > 120  # palette green
    assert thumbnail_of("frames/animated.gif").getpixel((5, 5))[0] > 200  # first frame: red
    pages = thumbnail_of("frames/pages.tif")
    assert pages.size == (50, 40) and pages.getpixel((5, 5))[2] > 200  # first page: blue, 50×40
    cmyk = thumbnail_of("colour/cmyk.jpg")
    assert cmyk.getpixel((5, 50)) != cmyk.getpixel((250, 50))  # the gradient survives the CMYK → RGB


def test_bad_files_are_reported_with_path_and_reason_and_the_exit_status_is_non_zero(db, awkward_dir):
    out, error = run_import(awkward_dir)

    assert error is not None and error.returncode == 1
    assert f"{len(BAD)} file(s) failed" in str(error)
    for path, reason in BAD.items():
        assert not DataRow.objects.filter(global_key=path).exists()
        line = next((ln for ln in out.splitlines() if ln.strip().startswith(f"{path}:")), None)
        assert line is not None, f"{path} missing from the summary"
        group = out[: out.index(line)].rsplit("Failed — ", 1)[1]
        assert group.startswith(reason), f"{path} reported under {group.splitlines()[0]!r}, expected {reason!r}"
    assert "text, not an image" in out
    assert "SVG is a vector format" in out and "rsvg-convert" in out
    assert "HEIC/HEIF images are not supported" in out
    assert "CURIO_MAX_IMAGE_PIXELS" in out
    assert "the file is empty (0 bytes)" in out
    assert "truncated.jpg: the file ends before the image data does" in out


def test_nothing_half_written_stays_in_media_storage(db, awkward_dir):
    run_import(awkward_dir)
    hashes = set(DataRow.objects.values_list("content_hash", flat=True))
    originals = stored_names("originals")
    thumbnails = stored_names("thumbnails")
    # Only files of imported rows are stored (earlier tests may have stored the same content).
    bad_hashes = {hashlib.sha256((awkward_dir / p).read_bytes()).hexdigest() for p in BAD}
    assert not {n for n in originals | thumbnails if n.rsplit("/", 1)[1].split(".")[0] in bad_hashes}
    for digest in hashes:
        assert any(digest in n for n in originals) and any(digest in n for n in thumbnails)


def test_second_run_imports_nothing_new(db, awkward_dir):
    run_import(awkward_dir)
    rows_before = DataRow.objects.count()
    out, _ = run_import(awkward_dir)
    assert DataRow.objects.count() == rows_before == len(GOOD)
    assert f"0 imported, {len(GOOD)} already present, {len(BAD)} failed." in out


def test_clean_folder_exits_zero(db, good_dir):
    out, error = run_import(good_dir, "good")
    assert error is None
    assert f"{len(GOOD)} imported" in out


def test_missing_folder_is_a_clear_error(db, tmp_path):
    _, error = run_import(tmp_path / "nope")
    assert error is not None and "does not exist" in str(error)
    assert not Dataset.objects.exists()


def test_global_key_of_another_dataset_is_a_failure_with_reason(db, good_dir):
    run_import(good_dir, "first")
    out, error = run_import(good_dir, "second")
    assert error is not None
    assert "global key conflict" in out
    assert "already belongs to dataset 'first'" in out
    assert not DataRow.objects.filter(dataset__name="second").exists()


def test_csv_manifest_gives_typed_fields_usable_by_the_filter(db, good_dir, tmp_path):
    manifest = tmp_path / "meta.csv"
    manifest.write_text(
        "path,weight:number,species:enum,taken:datetime,note\n"
        "colour/cmyk.jpg,2.5,zebra,2024-05-01T10:00:00+02:00,first\n"
        "colour/palette.png,10,ant,2024-06-01,second\n"
        "tiny/one.png,7,zebra,,\n"
        "not/there.png,1,x,,\n"
    )
    out, error = run_import(good_dir, "typed", "--manifest", str(manifest))
    assert error is None, out

    kinds = dict(MetadataField.objects.filter(dataset__name="typed").values_list("name", "kind"))
    assert kinds == {"weight": "number", "species": "enum", "taken": "datetime", "note": "string"}
    assert MetadataField.objects.get(name="species").choices == ["ant", "zebra"]
    cmyk = DataRow.objects.get(global_key="colour/cmyk.jpg").metadata
    assert cmyk == {"folder": "colour", "weight": 2.5, "species": "zebra", "taken": "2024-05-01T08:00:00Z", "note": "first"}
    assert DataRow.objects.get(global_key="colour/palette.png").metadata["weight"] == 10
    assert "manifest entry 'not/there.png' matches no imported file" in out

    heavy = CatalogFilter.from_querydict(QueryDict("f=weight&op=range&v=5&v2=100"))
    assert set(heavy.queryset().values_list("global_key", flat=True)) == {"colour/palette.png", "tiny/one.png"}
    may = CatalogFilter.from_querydict(QueryDict("f=taken&op=range&v=2024-05-01&v2=2024-05-15"))
    assert list(may.queryset().values_list("global_key", flat=True)) == ["colour/cmyk.jpg"]


def test_jsonl_manifest_keyed_by_global_key_and_renaming_a_file(db, good_dir, tmp_path):
    manifest = tmp_path / "meta.jsonl"
    lines = [
        {"global_key": "top.png", "score": 0.5, "shot": "2023-01-02"},
        {"path": "tiny/one.png", "global_key": "pixel-0001", "score": 3},
    ]
    manifest.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    _, error = run_import(good_dir, "jsonl", "--manifest", str(manifest))
    assert error is None
    assert DataRow.objects.get(global_key="top.png").metadata["shot"] == "2023-01-02T00:00:00Z"
    renamed = DataRow.objects.get(global_key="pixel-0001")
    assert renamed.metadata["score"] == 3 and renamed.metadata["folder"] == "tiny"
    assert not DataRow.objects.filter(global_key="tiny/one.png").exists()
    kinds = dict(MetadataField.objects.values_list("name", "kind"))
    assert kinds == {"score": "number", "shot": "datetime"}


def test_bad_manifest_value_fails_only_its_file(db, good_dir, tmp_path):
    manifest = tmp_path / "meta.csv"
    manifest.write_text("path,weight:number,taken:datetime\ncolour/cmyk.jpg,heavy,\ntop.png,,yesterday\ntiny/one.png,3,\n")
    out, error = run_import(good_dir, "badvalues", "--manifest", str(manifest))
    assert error is not None
    assert "bad manifest value" in out
    assert "colour/cmyk.jpg: field 'weight' is a number; 'heavy' is not." in out
    assert "top.png: Field 'taken' is a date/time; 'yesterday' is not" in out
    assert not DataRow.objects.filter(global_key__in=["colour/cmyk.jpg", "top.png"]).exists()
    assert DataRow.objects.get(global_key="tiny/one.png").metadata["weight"] == 3
    assert DataRow.objects.count() == len(GOOD) - 2


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("path,bad__name\n", "field name 'bad__name' is not allowed"),
        ("path,drop table\n", "field name 'drop table' is not allowed"),
        ("path,size:colour\n", "unknown type 'colour'"),
        ("path,folder\n", "'folder' cannot be a metadata field"),
        ("name,weight\n", "needs a 'path' or 'global_key' column"),
    ],
)
def test_unusable_manifest_stops_the_import_before_anything_is_written(db, good_dir, tmp_path, header, message):
    manifest = tmp_path / "meta.csv"
    manifest.write_text(header + "top.png,1\n")
    _, error = run_import(good_dir, "refused", "--manifest", str(manifest))
    assert error is not None and message in str(error)
    assert not DataRow.objects.exists() and not Dataset.objects.exists()


def test_manifest_type_clashing_with_the_dataset_is_refused(db, good_dir, tmp_path):
    first = tmp_path / "first.csv"
    first.write_text("path,weight:number\ntop.png,1\n")
    run_import(good_dir, "clash", "--manifest", str(first))
    second = tmp_path / "second.csv"
    second.write_text("path,weight:string\ntiny/one.png,light\n")
    _, error = run_import(good_dir, "clash", "--manifest", str(second))
    assert error is not None and "field 'weight' is string here but number in dataset 'clash'" in str(error)


def test_nul_character_in_a_manifest_value_fails_only_its_file_on_every_database(db, good_dir, tmp_path):
    manifest = tmp_path / "meta.jsonl"
    manifest.write_text(
        json.dumps({"path": "top.png", "note": "a\u0000b"}) + "\n" + json.dumps({"path": "tiny/one.png", "note": "ok"}) + "\n"
    )
    out, error = run_import(good_dir, "nul", "--manifest", str(manifest))
    assert error is not None
    assert "top.png: field 'note' contains a NUL character." in out
    assert DataRow.objects.get(global_key="tiny/one.png").metadata["note"] == "ok"
    assert DataRow.objects.count() == len(GOOD) - 1
