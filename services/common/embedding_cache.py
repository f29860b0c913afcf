"""An EmbeddingProvider that remembers vectors by model and content hash (SQLite)."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from services.common.embeddings import EmbeddingProvider, EmbeddingWrapper

_SCHEMA = "CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, vector BLOB NOT NULL)"
_LOOKUP_BATCH = 500  # SQLite's bound-parameter limit is far above this


class CachedEmbeddings(EmbeddingWrapper):
    """Wraps a provider; a text already embedded by the same model is not embedded again.

    The key is sha256 of the model's identity (`model_id`: a folder's name and file
    digest), its dimension and the exact text, so a model change never serves stale
    vectors. Safe across threads and processes (WAL mode).
    """

    def __init__(self, inner: EmbeddingProvider, path: str | Path) -> None:
        super().__init__(inner)
        self._path = Path(path)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self._path, check_same_thread=False, timeout=30)
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(_SCHEMA)
            self._conn.commit()
        self.misses = 0  # texts the wrapped model had to embed

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        dim = self.dimension
        keys = [self._key(t) for t in texts]
        found = self._lookup(keys)
        missing = [i for i, k in enumerate(keys) if k not in found]
        todo: dict[bytes, int] = {}
        for i in missing:
            todo.setdefault(keys[i], i)  # the same text twice is embedded once
        if todo:
            fresh = self._inner.embed_documents([texts[i] for i in todo.values()])
            new = dict(zip(todo, np.asarray(fresh, dtype=np.float32), strict=True))
            with self._lock:
                self._conn.executemany(
                    "INSERT OR REPLACE INTO vectors (key, vector) VALUES (?, ?)",
                    [(k, v.tobytes()) for k, v in new.items()],
                )
                self._conn.commit()
            found.update(new)
        self.misses += len(missing)
        if not keys:
            return np.zeros((0, dim), dtype=np.float32)
        return np.stack([found[k] for k in keys]).astype(np.float32, copy=False)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _key(self, text: str) -> bytes:
        model = f"{self._inner.model_id}\0{self._inner.dimension}\0"
        return hashlib.sha256(model.encode() + text.encode("utf-8")).digest()

    def _lookup(self, keys: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        unique = list(dict.fromkeys(keys))
        found: dict[bytes, np.ndarray] = {}
        with self._lock:
            for start in range(0, len(unique), _LOOKUP_BATCH):
                part = unique[start:start + _LOOKUP_BATCH]
                marks = ",".join("?" * len(part))
                rows = self._conn.execute(
                    f"SELECT key, vector FROM vectors WHERE key IN ({marks})", part
                ).fetchall()
                for key, blob in rows:
                    found[key] = np.frombuffer(blob, dtype=np.float32)
        return found
