"""A model folder's identity (which keys the embedding cache and the evaluation index)."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.embeddings import PACKAGED_MODEL_NAME, SentenceTransformerEmbeddings


def _folder(root: Path, name: str, weights: bytes) -> str:
    path = root / name
    (path / "1_Pooling").mkdir(parents=True)
    (path / "config.json").write_text('{"hidden_size": 32}')
    (path / "1_Pooling" / "config.json").write_text('{"pooling_mode_mean_tokens": true}')
    (path / "model.safetensors").write_bytes(weights)
    return str(path)


def test_folders_are_told_apart_by_their_files_not_their_names(tmp_path: Path) -> None:
    one = SentenceTransformerEmbeddings(_folder(tmp_path / "a", "model", b"weights-1"))
    retrained = SentenceTransformerEmbeddings(_folder(tmp_path / "b", "model", b"weights-2"))
    copy = SentenceTransformerEmbeddings(_folder(tmp_path / "c", "model", b"weights-1"))
    assert one.model_id != retrained.model_id  # same folder name, new weights
    assert one.model_id == copy.model_id  # a byte-identical copy elsewhere
    assert one.model_id.startswith("model@") and one.model_name == "model"
    assert SentenceTransformerEmbeddings().model_id == PACKAGED_MODEL_NAME  # caches stay valid


def test_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        _ = SentenceTransformerEmbeddings(str(tmp_path / "nope")).model_id
