"""The CLIP embedding service against open_clip's own reference pipeline, with a tiny model
(random weights, fixed seed) saved to a real checkpoint file and loaded the product's way."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from PIL import Image

from catalog.clip import ClipUnavailable, get_encoder, resolve_weights
from catalog.embedding_service import start_embedding_job
from catalog.models import DataRow, Dataset, Embedding, EmbeddingJob, EmbeddingSpace
from catalog.vector_search import search_text, text_query_vector

TINY = "curio-test-tiny-clip"
TINY_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny-clip")
    (folder / f"{TINY}.json").write_text(json.dumps(TINY_CONFIG))
    open_clip.add_model_config(folder / f"{TINY}.json")
    torch.manual_seed(1234)
    model = open_clip.create_model(TINY)
    path = folder / "tiny-clip.pt"
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture
def tiny_clip(settings, tiny_checkpoint: Path) -> Path:
    settings.CURIO_CLIP_MODEL = TINY
    settings.CURIO_CLIP_PRETRAINED = str(tiny_checkpoint)
    return tiny_checkpoint


@pytest.fixture
def photo_rows(db, photos_dir: Path) -> list[DataRow]:
    """Data rows whose files are the real photos, stored where the product reads them."""
    dataset = Dataset.objects.create(name="photos")
    rows = []
    for i, path in enumerate(sorted(photos_dir.rglob("*.*"))):
        name = f"originals/{path.name}"
        target = Path(django_settings.MEDIA_ROOT) / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        with Image.open(path) as img:
            width, height, fmt = img.width, img.height, img.format or ""
        rows.append(
            DataRow.objects.create(
                dataset=dataset,
                global_key=f"{path.parent.name}/{path.name}",
                file=name,
                thumbnail=name,
                width=width,
                height=height,
                format=fmt,
                byte_size=path.stat().st_size,
                content_hash=f"{i:064x}",
                metadata={"folder": path.parent.name},
            )
        )
    return rows


def reference(checkpoint: Path, images: list[Path], texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """open_clip's documented pipeline: create_model_and_transforms + encode_*, normalized."""
    model, _, preprocess = open_clip.create_model_and_transforms(TINY, pretrained=str(checkpoint))
    model.eval()
    tokenizer = open_clip.get_tokenizer(TINY)
    with torch.no_grad():
        image = model.encode_image(torch.stack([preprocess(Image.open(p)) for p in images]))
        text = model.encode_text(tokenizer(texts))
    image = image / image.norm(dim=-1, keepdim=True)
    text = text / text.norm(dim=-1, keepdim=True)
    return image.numpy(), text.numpy()


def stored_vectors(rows: list[DataRow]) -> np.ndarray:
    by_row = dict(Embedding.objects.values_list("data_row_id", "vector"))
    return np.stack([np.frombuffer(bytes(by_row[r.pk]), dtype=np.float32) for r in rows])


def test_embed_command_vectors_equal_open_clip_reference_on_real_photos(tiny_clip, photo_rows, settings):
    settings.CURIO_CLIP_DRAFT_DECODE = False  # full decode: bit-for-bit the reference's pixels
    settings.CURIO_EMBED_BATCH_SIZE = 3  # several batches, decoded ahead of inference
    call_command("embed", verbosity=0)
    paths = [Path(settings.MEDIA_ROOT) / r.file.name for r in photo_rows]
    texts = ["a photo of a cat", "an astronaut", "coins on a table"]
    ref_images, ref_texts = reference(tiny_clip, paths, texts)
    np.testing.assert_allclose(stored_vectors(photo_rows), ref_images, atol=1e-5)
    encoder = get_encoder()
    np.testing.assert_allclose(encoder.encode_text(texts), ref_texts, atol=1e-5)
    space = EmbeddingSpace.objects.get()
    assert space.key == encoder.space_key and space.key.startswith(f"clip:{TINY}:tiny-clip.pt@")
    assert space.dim == 32 and Embedding.objects.count() == len(photo_rows)
    np.testing.assert_allclose(text_query_vector(space, texts[0]), ref_texts[0], atol=1e-5)


def test_draft_decoding_only_changes_large_jpegs(tiny_clip, photo_rows, settings):
    call_command("embed", verbosity=0)
    encoder = get_encoder()
    vectors = stored_vectors(photo_rows)
    for row, vector in zip(photo_rows, vectors, strict=True):
        path = Path(settings.MEDIA_ROOT) / row.file.name
        exact = encoder.encode_images([Image.open(path)])[0]
        if row.format == "JPEG" and min(row.width, row.height) >= 2 * encoder.image_size:
            assert not np.allclose(vector, exact, atol=1e-5), row.global_key
            assert float(vector @ exact) > 0.9, row.global_key  # a slightly different decode, same picture
        else:
            np.testing.assert_allclose(vector, exact, atol=1e-5, err_msg=row.global_key)


def test_embedding_resumes_and_reembeds_on_request(tiny_clip, photo_rows, make_rows, capsys):
    Embedding.objects.all().delete()
    call_command("embed", "--dataset", "photos", verbosity=0)
    first = dict(Embedding.objects.values_list("data_row_id", "id"))
    assert len(first) == len(photo_rows)
    call_command("embed", verbosity=0)
    assert dict(Embedding.objects.values_list("data_row_id", "id")) == first  # nothing redone
    assert "Embedded 0 rows" in capsys.readouterr().out
    call_command("embed", "--reembed", verbosity=0)
    assert set(Embedding.objects.values_list("data_row_id", flat=True)) == set(first)
    assert not set(Embedding.objects.values_list("id", flat=True)) & set(first.values())


def test_unreadable_image_is_reported_and_the_rest_embedded(tiny_clip, photo_rows, settings):
    broken = photo_rows[0]
    (Path(settings.MEDIA_ROOT) / broken.file.name).write_bytes(b"not an image at all")
    call_command("embed", verbosity=0)
    job = EmbeddingJob.objects.get()
    assert job.status == EmbeddingJob.Status.DONE
    assert job.failed == 1 and job.done == len(photo_rows) - 1
    assert broken.global_key in job.errors[0]
    assert not Embedding.objects.filter(data_row=broken).exists()


def test_background_job_after_import_embeds_new_rows(tiny_clip, photo_rows, curator, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job = start_embedding_job(curator, dataset=photo_rows[0].dataset)
    job.refresh_from_db()
    assert job.status == EmbeddingJob.Status.DONE and job.percent == 100
    assert job.done == len(photo_rows) == Embedding.objects.count()
    space = EmbeddingSpace.objects.get()
    result = search_text(space, "a cat", k=3)
    assert len(result) == 3 and result.scores == sorted(result.scores, reverse=True)


# --- weights absent ------------------------------------------------------------------------------
def test_missing_pretrained_weights_explain_what_to_set(settings, db):
    settings.CURIO_CLIP_MODEL = "ViT-B-32"
    settings.CURIO_CLIP_PRETRAINED = "laion2b_s34b_b79k"
    with pytest.raises(CommandError) as raised:
        call_command("embed", verbosity=0)
    message = str(raised.value)
    assert "ViT-B-32" in message and "laion2b_s34b_b79k" in message
    assert "not in the local cache" in message
    assert "CURIO_CLIP_PRETRAINED" in message and "open_clip.create_model" in message
    assert EmbeddingJob.objects.count() == 0


def test_missing_checkpoint_file_is_named(settings, db, tmp_path):
    settings.CURIO_CLIP_PRETRAINED = str(tmp_path / "nowhere.pt")
    with pytest.raises(ClipUnavailable, match=r"nowhere\.pt' does not exist"):
        resolve_weights()
    with pytest.raises(ClipUnavailable, match="CURIO_CLIP_PRETRAINED"):
        start_embedding_job(None)
    assert EmbeddingJob.objects.count() == 0


def test_unknown_model_name_is_named(settings):
    settings.CURIO_CLIP_MODEL = "ViT-Nope"
    with pytest.raises(ClipUnavailable, match="open_clip has no model named 'ViT-Nope'"):
        resolve_weights()
