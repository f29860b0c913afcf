"""The packaged embedding model: shape, normalisation, meaning, telemetry."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.common import embeddings as embeddings_module
from services.common.embeddings import (
    EmbeddingProvider,
    SentenceTransformerEmbeddings,
    build_embeddings,
)


@pytest.fixture(scope="module")
def model() -> EmbeddingProvider:
    return build_embeddings()


def test_packaged_model_identity_and_dimension(model: EmbeddingProvider) -> None:
    assert isinstance(model, SentenceTransformerEmbeddings)
    assert model.model_name == "sentence-transformers/all-MiniLM-L6-v2"
    assert model.dimension == 384
    assert model.max_input_tokens == 254  # 256 positions less [CLS] and [SEP]


def test_documents_are_float32_unit_vectors(model: EmbeddingProvider) -> None:
    vectors = model.embed_documents(["first text", "second, longer text " * 50, "x"])
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_empty_input_gives_an_empty_matrix(model: EmbeddingProvider) -> None:
    vectors = model.embed_documents([])
    assert vectors.shape == (0, 384)
    assert vectors.dtype == np.float32


def test_query_vector_matches_the_document_vector(model: EmbeddingProvider) -> None:
    query = model.embed_query("How do I reset my password?")
    assert query.shape == (384,)
    assert query.dtype == np.float32
    document = model.embed_documents(["How do I reset my password?"])[0]
    np.testing.assert_allclose(query, document, atol=1e-5)


def test_a_paraphrase_is_closer_than_an_unrelated_sentence(model: EmbeddingProvider) -> None:
    query = model.embed_query("How can I change the password of my account?")
    paraphrase, unrelated = model.embed_documents(
        ["Steps to reset your account password.", "The recipe needs two cups of flour."]
    )
    assert float(query @ paraphrase) > float(query @ unrelated) + 0.3


def test_token_counts_are_not_truncated_by_earlier_embedding(model: EmbeddingProvider) -> None:
    long_text = "word " * 1000
    model.embed_documents([long_text])  # truncates to 256 tokens inside the model
    assert model.count_tokens(long_text) == 1000
    assert model.count_tokens("hello world") == 2


def test_concurrent_calls_give_the_same_vectors(model: EmbeddingProvider) -> None:
    texts = [f"document number {i} about topic {i % 3}" for i in range(24)]
    expected = model.embed_documents(texts)
    with ThreadPoolExecutor(max_workers=6) as pool:
        rows = list(pool.map(lambda t: model.embed_documents([t])[0], texts))
        counts = list(pool.map(model.count_tokens, texts))
    np.testing.assert_allclose(np.stack(rows), expected, atol=1e-4)
    assert counts == [model.count_tokens(t) for t in texts]


def test_embed_calls_emit_a_genai_span(
    model: EmbeddingProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(embeddings_module, "_tracer", provider.get_tracer("test"))
    model.embed_documents(["a", "b", "c"])
    (span,) = exporter.get_finished_spans()
    assert span.name == "embeddings sentence-transformers/all-MiniLM-L6-v2"
    assert span.attributes["gen_ai.operation.name"] == "embeddings"
    assert span.attributes["gen_ai.request.model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert span.attributes["ragchat.embedding.batch_size"] == 3


def test_model_name_of_a_custom_path_is_its_directory_name() -> None:
    assert SentenceTransformerEmbeddings("/models/my-encoder/").model_name == "my-encoder"


def test_a_missing_model_directory_fails_clearly(tmp_path) -> None:
    provider = SentenceTransformerEmbeddings(str(tmp_path / "absent"))
    with pytest.raises(ValueError, match="does not exist"):
        _ = provider.dimension


def test_unknown_provider_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown embedding provider 'openai'"):
        build_embeddings("openai")


def test_bf16_vectors_agree_with_fp32_and_stay_unit_length(model: EmbeddingProvider) -> None:
    texts = ["Vitamin D deficiency raises the risk of fractures.",
             "The Normans conquered England in 1066.", "x" * 40]
    fast = build_embeddings(precision="bf16")
    vectors = fast.embed_documents(texts)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosines = (vectors * model.embed_documents(texts)).sum(axis=1)
    assert cosines.min() > 0.999


def test_precision_auto_follows_the_hardware() -> None:
    import torch

    amx = torch.cpu.get_capabilities().get("amx_bf16", False)
    assert embeddings_module.resolve_precision("auto", "cpu") == ("bf16" if amx else "fp32")
    assert embeddings_module.resolve_precision("auto", "cuda:0") == "fp32"
    assert embeddings_module.resolve_precision("fp32", "cpu") == "fp32"
    with pytest.raises(ValueError, match="precision must be one of"):
        build_embeddings(precision="fp8")


def test_embedding_threads_setting_sets_torchs_intra_op_threads(monkeypatch) -> None:
    import torch

    from services.common.components import embeddings_from
    from services.retrieval.config import RetrievalSettings

    before = torch.get_num_threads()
    monkeypatch.setenv("RAGCHAT_EMBEDDING_THREADS", "1")
    try:
        embeddings_from(RetrievalSettings())
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert RetrievalSettings.model_fields["embedding_threads"].default == 1
