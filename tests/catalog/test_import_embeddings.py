"""import_embeddings: vectors from any network, keyed by global key; bad rows reported, the rest imported."""

from __future__ import annotations

import json

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from catalog.models import DataRow, Embedding, EmbeddingSpace
from catalog.vector_search import search_similar

KEYS = ["a/1", "a/2", "b/1"]


@pytest.fixture
def rows(make_rows):
    return make_rows("ds", KEYS)


def vectors_by_key(name: str) -> dict[str, np.ndarray]:
    space = EmbeddingSpace.objects.get(key=f"custom:{name}")
    keys = dict(DataRow.objects.values_list("id", "global_key"))
    return {
        keys[rid]: np.frombuffer(bytes(v), dtype=np.float32)
        for rid, v in Embedding.objects.filter(space=space).values_list("data_row_id", "vector")
    }


def test_npy_with_sibling_ids_file(rows, tmp_path, capsys):
    matrix = np.arange(9, dtype=np.float32).reshape(3, 3) + 1
    np.save(tmp_path / "vecs.npy", matrix)
    (tmp_path / "vecs.ids.txt").write_text("\n".join(KEYS) + "\n")
    call_command("import_embeddings", str(tmp_path / "vecs.npy"), "--name", "resnet")
    assert "Imported 3 vectors into custom:resnet; 0 rows skipped." in capsys.readouterr().out
    got = vectors_by_key("resnet")
    for i, key in enumerate(KEYS):
        np.testing.assert_array_equal(got[key], matrix[i])
    space = EmbeddingSpace.objects.get(key="custom:resnet")
    assert (space.kind, space.dim) == (EmbeddingSpace.Kind.CUSTOM, 3)


def test_csv_bad_rows_are_reported_and_the_rest_imported(rows, tmp_path, capsys):
    path = tmp_path / "vecs.csv"
    path.write_text(
        "global_key,d0,d1,d2\n"
        "a/1,1,0,0\n"
        "a/2,1,nan,0\n"  # NaN
        "b/1,1,2\n"  # wrong dimensions
        "zzz/9,0,1,0\n"  # unknown key
        "a/2,0,1,x\n"  # not a number
        "a/2,0,1,0\n"
    )
    call_command("import_embeddings", str(path), "--name", "emb")
    out, err = capsys.readouterr()
    assert "Imported 2 vectors into custom:emb; 4 rows skipped." in out
    assert "line 3: the vector contains NaN or infinity" in err
    assert "line 4: 2 dimensions; this space has 3" in err
    assert "line 5: unknown global key 'zzz/9'" in err
    assert "line 6: the vector holds a value that is not a number" in err
    assert sorted(vectors_by_key("emb")) == ["a/1", "a/2"]


def test_jsonl_too_many_dimensions_and_zero_vectors_are_refused(rows, tmp_path, capsys):
    path = tmp_path / "vecs.jsonl"
    lines = [
        {"global_key": "a/1", "vector": [0.5, 0.5]},
        {"global_key": "a/2", "vector": [0, 0]},
        {"global_key": "b/1", "vector": [1.0] * 2049},
        "not json",
    ]
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    call_command("import_embeddings", str(path), "--name", "j")
    out, err = capsys.readouterr()
    assert "Imported 1 vectors" in out
    assert "line 2: the vector is all zeros" in err
    assert "line 3: 2049 dimensions; at most 2048 are supported" in err
    assert "line 4: not valid JSON" in err


def test_reimport_replaces_vectors_and_similarity_search_uses_them(rows, tmp_path):
    path = tmp_path / "v.jsonl"
    path.write_text(
        "\n".join(json.dumps({"global_key": k, "vector": v}) for k, v in zip(KEYS, [[1, 0], [0.9, 0.1], [0, 1]], strict=True))
    )
    call_command("import_embeddings", str(path), "--name", "toy", verbosity=0)
    space = EmbeddingSpace.objects.get(key="custom:toy")
    by_key = dict(DataRow.objects.values_list("global_key", "id"))
    assert search_similar(space, anchor_ids=[by_key["b/1"]], k=2).row_ids == [by_key["b/1"], by_key["a/2"]]
    path.write_text(json.dumps({"global_key": "a/1", "vector": [0, 1]}))
    call_command("import_embeddings", str(path), "--name", "toy", verbosity=0)
    assert Embedding.objects.filter(space=space).count() == 3
    assert search_similar(space, anchor_ids=[by_key["b/1"]], k=2).row_ids == [by_key["a/1"], by_key["b/1"]]


def test_whole_file_problems_stop_with_a_clear_error(rows, tmp_path):
    np.save(tmp_path / "lonely.npy", np.ones((2, 3), dtype=np.float32))
    with pytest.raises(CommandError, match=r"an NPY file needs its global keys beside it"):
        call_command("import_embeddings", str(tmp_path / "lonely.npy"), "--name", "x")
    (tmp_path / "lonely.ids.txt").write_text("a/1\n")
    with pytest.raises(CommandError, match=r"lonely\.npy has 2 vectors but lonely\.ids\.txt has 1 keys"):
        call_command("import_embeddings", str(tmp_path / "lonely.npy"), "--name", "x")
    (tmp_path / "v.parquet").write_text("")
    with pytest.raises(CommandError, match=r"unsupported format"):
        call_command("import_embeddings", str(tmp_path / "v.parquet"), "--name", "x")
    with pytest.raises(CommandError, match=r"no such file"):
        call_command("import_embeddings", str(tmp_path / "missing.csv"), "--name", "x")
    assert not EmbeddingSpace.objects.exists()
