"""replace_document fed slice by slice: one atomic swap per document, on both backends."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from services.common.types import ChunkRecord, DocumentMeta
from services.common.vectorstore.base import Slice, VectorStore
from tests.integration.conftest import SMALL_DIM

DOC = DocumentMeta("D", "Doc", "d.txt", "text/plain")
E0 = np.eye(SMALL_DIM, dtype=np.float32)[0]


def slices(prefix: str, sizes: list[int]) -> Iterator[Slice]:
    ordinal = 0
    for size in sizes:
        chunks = [ChunkRecord(f"D:{prefix}{ordinal + i}", "D", ordinal + i, f"{prefix} text")
                  for i in range(size)]
        ordinal += size
        yield chunks, np.tile(E0, (size, 1))


def chunk_ids(store: VectorStore) -> set[str]:
    return {r.chunk_id for r in store.search(E0, 100, -1.0)}


def test_slices_make_up_the_whole_document(store: VectorStore) -> None:
    store.replace_document(DOC, slices("old", [3, 3]))
    store.replace_document(DOC, slices("new", [2, 3, 1]))
    assert store.count_chunks("D") == 6
    assert chunk_ids(store) == {f"D:new{i}" for i in range(6)}


def test_old_chunks_serve_until_the_last_slice_is_written(store: VectorStore) -> None:
    store.replace_document(DOC, slices("old", [4]))
    seen: list[set[str]] = []

    def watched() -> Iterator[Slice]:
        for part in slices("new", [2, 2, 2]):
            seen.append(chunk_ids(store))  # what a search sees meanwhile
            yield part

    store.replace_document(DOC, watched())
    assert all({f"D:old{i}" for i in range(4)} <= ids for ids in seen)
    assert chunk_ids(store) == {f"D:new{i}" for i in range(6)}


def test_a_stream_that_fails_midway_leaves_the_old_chunks(store: VectorStore) -> None:
    store.replace_document(DOC, slices("old", [3]))

    def failing() -> Iterator[Slice]:
        yield from slices("new", [2, 2])
        raise ConnectionError("embedding died")

    with pytest.raises(ConnectionError):
        store.replace_document(DOC, failing())
    assert chunk_ids(store) == {f"D:old{i}" for i in range(3)}


def test_ids_repeated_across_slices_are_rejected(store: VectorStore) -> None:
    store.replace_document(DOC, slices("old", [3]))
    twice = [*slices("new", [2]), *slices("new", [2])]
    with pytest.raises(ValueError, match="unique"):
        store.replace_document(DOC, iter(twice))
    assert chunk_ids(store) == {f"D:old{i}" for i in range(3)}
