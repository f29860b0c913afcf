"""Token-aware splitting of document text into overlapping chunks for embedding.

Markdown tables are kept whole in one chunk when they fit; a larger one is cut into
row groups that each repeat the header row. Sections (pages, heading paths) are
chunked one by one, so every chunk knows where it came from.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from services.common.embeddings import EmbeddingProvider, TokenCounter, hf_token_counter
from services.common.types import ChunkRecord
from services.ingest.parsers.base import Section

logger = logging.getLogger(__name__)

__all__ = ["TokenChunker", "TokenCounter", "chunk_sections", "hf_token_counter"]

# Characters per token above which text is surely degenerate (base64, hex dumps...).
# Some tokenizers count such text as very few tokens ([UNK]); this caps chunk size anyway.
CHARS_PER_TOKEN_CAP = 10

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+|(?<=[.!?][\"'”’)\]])\s+")
_PARA_SEP = "\n\n"
_TABLE_DELIMITER = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")


@dataclass(frozen=True, slots=True)
class _Unit:
    """A sentence (or a word or word fragment of an over-long one) that fits a chunk."""

    text: str
    tokens: int
    sep: str  # put before this unit when another precedes it in a chunk
    para: int


class TokenChunker:
    """Packs paragraphs, then sentences, into chunks of at most `chunk_tokens` tokens.

    Each chunk after the first starts with up to `overlap_tokens` tokens of the
    previous chunk's trailing sentences. Chunks also stay under about
    chunk_tokens * CHARS_PER_TOKEN_CAP characters. Output is deterministic, never empty.
    """

    def __init__(
        self,
        tokenizer: TokenCounter | Any,
        chunk_tokens: int = 256,
        overlap_tokens: int = 32,
    ) -> None:
        """`tokenizer` is a `str -> int` token counter or a Hugging Face tokenizer."""
        if chunk_tokens <= 0:
            raise ValueError(f"chunk_tokens must be positive, got {chunk_tokens}")
        if not 0 <= overlap_tokens < chunk_tokens:
            raise ValueError(
                f"overlap_tokens must be in [0, chunk_tokens), got {overlap_tokens} "
                f"with chunk_tokens={chunk_tokens}"
            )
        self._count: TokenCounter = (
            hf_token_counter(tokenizer) if hasattr(tokenizer, "encode") else tokenizer
        )
        self.chunk_tokens = chunk_tokens
        self.overlap_tokens = overlap_tokens
        self.max_chars = chunk_tokens * CHARS_PER_TOKEN_CAP

    @classmethod
    def for_embeddings(
        cls, embeddings: EmbeddingProvider, chunk_tokens: int = 256, overlap_tokens: int = 32
    ) -> TokenChunker:
        """A chunker counting tokens with the embedding model's own tokenizer."""
        limit = embeddings.max_input_tokens
        if limit is not None and chunk_tokens > limit:
            logger.warning(
                "chunks of %d tokens exceed the %d-token input of %s; their ends will be "
                "ignored when embedding",
                chunk_tokens,
                limit,
                embeddings.model_name,
            )
        return cls(embeddings.count_tokens, chunk_tokens, overlap_tokens)

    def split(self, text: str) -> list[str]:
        """The chunks of `text`, in order; [] for empty or whitespace-only text."""
        return list(self.iter_split(text))

    def iter_split(self, text: str) -> Iterator[str]:
        """`split`, lazily: holds about one paragraph (at most a chunk) of units at a time."""
        units = self._units(text.replace("\r\n", "\n").replace("\r", "\n"))
        return self._pack(_Window(units))

    # --- turning text into units that each fit a chunk --------------------------

    def _units(self, text: str) -> Iterator[_Unit]:
        word_counts: dict[str, int] = {}  # words repeat a lot; count each once per text
        paras = itertools.count()
        for paragraph in (p for p in _paragraphs(text) if p.strip()):
            lines = [line.strip() for line in paragraph.strip().split("\n")]
            if _is_table(lines):
                yield from self._table_units(lines, paras, word_counts)
            else:
                yield from self._prose_units(paragraph, next(paras), word_counts)

    def _prose_units(self, paragraph: str, para: int, word_counts: dict[str, int]
                     ) -> Iterator[_Unit]:
        sep = _PARA_SEP
        for line in paragraph.split("\n"):
            for sentence in _SENTENCE_BREAK.split(line):
                sentence = sentence.strip()
                if not sentence:
                    continue
                for piece, tokens, piece_sep in self._fit(sentence, word_counts):
                    yield _Unit(piece, tokens, sep or piece_sep, para)
                    sep = ""
                sep = " "
            sep = sep if sep == _PARA_SEP else "\n"

    def _table_units(self, lines: list[str], paras: Iterator[int],
                     word_counts: dict[str, int]) -> Iterator[_Unit]:
        """A table as one unit if it fits, else row groups each led by the header rows."""
        whole = "\n".join(lines)
        if len(whole) <= self.max_chars and self._count(whole) <= self.chunk_tokens:
            yield _Unit(whole, self._count(whole), _PARA_SEP, next(paras))
            return
        header = "\n".join(lines[:2])
        head_tokens = self._count(header)
        if 2 * head_tokens > self.chunk_tokens or 2 * len(header) > self.max_chars:
            # So wide that repeating the header would crowd out the rows: plain lines.
            yield from self._prose_units(whole, next(paras), word_counts)
            return
        group: list[str] = []
        tokens, chars = head_tokens, len(header)
        for row in lines[2:]:
            row_tokens = self._count(row)
            if group and not self._fits(tokens + row_tokens, chars + len(row) + 1):
                yield from self._row_group(header, group, paras, word_counts)
                group, tokens, chars = [], head_tokens, len(header)
            group.append(row)
            tokens, chars = tokens + row_tokens, chars + len(row) + 1
        if group:
            yield from self._row_group(header, group, paras, word_counts)

    def _row_group(self, header: str, rows: list[str], paras: Iterator[int],
                   word_counts: dict[str, int]) -> Iterator[_Unit]:
        """Rows under the header as one unit, re-counted (tokenizers need not be additive)."""
        text = "\n".join([header, *rows])
        tokens = self._count(text)
        if self._fits(tokens, len(text)):
            yield _Unit(text, tokens, _PARA_SEP, next(paras))
        elif len(rows) > 1:
            half = len(rows) // 2
            yield from self._row_group(header, rows[:half], paras, word_counts)
            yield from self._row_group(header, rows[half:], paras, word_counts)
        else:  # one row too big for a chunk even alone: split it like prose
            yield from self._prose_units(text, next(paras), word_counts)

    def _fit(self, sentence: str, word_counts: dict[str, int]) -> Iterator[tuple[str, int, str]]:
        """(text, tokens, separator) pieces of a sentence: whole, else words, else characters."""
        if len(sentence) <= self.max_chars:
            tokens = self._count(sentence)
            if tokens <= self.chunk_tokens:
                yield sentence, tokens, " "
                return
        for word in sentence.split():
            tokens = word_counts.get(word)
            if tokens is None and len(word) <= self.max_chars:
                tokens = word_counts[word] = self._count(word)
            if tokens is not None and tokens <= self.chunk_tokens:
                yield word, tokens, " "
            else:
                yield from self._characters(word)

    def _characters(self, word: str) -> Iterator[tuple[str, int, str]]:
        """Consecutive slices of a word too long for one chunk, each within the limits."""
        pos, sep = 0, " "
        while pos < len(word):
            size = min(self.max_chars, len(word) - pos)
            tokens = self._count(word[pos : pos + size])
            while tokens > self.chunk_tokens and size > 1:
                size = max(1, min(size // 2, size * self.chunk_tokens // tokens))
                tokens = self._count(word[pos : pos + size])
            if tokens <= self.chunk_tokens:
                yield word[pos : pos + size], tokens, sep
                sep = ""
            else:  # one character needing more tokens than a whole chunk may hold
                logger.warning("dropping a character longer than %d tokens", self.chunk_tokens)
            pos += size

    # --- packing units into chunks ----------------------------------------------

    def _pack(self, units: _Window) -> Iterator[str]:
        carry: list[_Unit] = []
        i = 0
        while units.has(i):
            units.drop_before(i)
            current, start = list(carry), i
            tokens = sum(u.tokens for u in current)
            chars = sum(len(u.text) + 1 for u in current)
            while units.has(i):
                end, need, need_chars = i + 1, units[i].tokens, len(units[i].text) + 1
                if units[i].sep == _PARA_SEP:
                    para_end, *whole = units.paragraph(i, self.chunk_tokens, self.max_chars + 1)
                    if self._fits(*whole):
                        end, need, need_chars = para_end, *whole
                if not self._fits(tokens + need, chars + need_chars):
                    if i > start:
                        break  # the chunk has new text: start the next one
                    while current and not self._fits(tokens + need, chars + need_chars):
                        dropped = current.pop(0)  # give up carried context first
                        tokens, chars = tokens - dropped.tokens, chars - len(dropped.text) - 1
                current.extend(units.slice(i, end))
                tokens, chars, i = tokens + need, chars + need_chars, end
            text, i = self._verified(current, start, i)
            yield text
            carry = self._overlap(current) if units.has(i) else []

    def _fits(self, tokens: int, chars: int) -> bool:
        return tokens <= self.chunk_tokens and chars <= self.max_chars + 1

    def _verified(self, current: list[_Unit], start: int, end: int) -> tuple[str, int]:
        """Re-count the joined chunk (tokenizers need not be additive) and shrink it if over.

        Returns the text and the index of the first unit not consumed. Mutates `current`.
        """
        text = _join(current)
        while self._count(text) > self.chunk_tokens and len(current) > 1:
            if end - start > 1:
                current.pop()  # hand the last new unit to the next chunk
                end -= 1
            else:
                current.pop(0)
            text = _join(current)
        return text, end

    def _overlap(self, current: list[_Unit]) -> list[_Unit]:
        """Trailing units of a chunk worth at most overlap_tokens; never the whole chunk."""
        carried: list[_Unit] = []
        budget = self.overlap_tokens
        for unit in reversed(current[1:]):
            if unit.tokens > budget:
                break
            carried.append(unit)
            budget -= unit.tokens
        carried.reverse()
        return carried


def _is_table(lines: list[str]) -> bool:
    """A Markdown table: a header row with pipes, then a delimiter row like | --- |."""
    return (len(lines) >= 2 and "|" in lines[0] and "|" in lines[1]
            and _TABLE_DELIMITER.match(lines[1]) is not None)


def chunk_sections(
    chunker: TokenChunker, document_id: str, sections: Iterable[Section]
) -> Iterator[ChunkRecord]:
    """Chunks of each section in turn, cut lazily, numbered from 0, carrying its page
    and heading."""
    ordinal = 0
    for section in sections:
        for text in chunker.iter_split(section.text):
            yield ChunkRecord(chunk_id=f"{document_id}:{ordinal}", document_id=document_id,
                              ordinal=ordinal, text=text, page=section.page,
                              heading=section.heading)
            ordinal += 1


class _Window:
    """Units of a text read lazily, indexed from the start of the text.

    Keeps units from the last `drop_before` on, plus what lookahead needed.
    """

    def __init__(self, units: Iterator[_Unit]) -> None:
        self._units = units
        self._buf: list[_Unit] = []
        self._base = 0  # index of _buf[0]

    def has(self, i: int) -> bool:
        """Whether the text has a unit `i` (reading up to it)."""
        while i - self._base >= len(self._buf):
            unit = next(self._units, None)
            if unit is None:
                return False
            self._buf.append(unit)
        return True

    def __getitem__(self, i: int) -> _Unit:
        return self._buf[i - self._base]

    def slice(self, start: int, end: int) -> list[_Unit]:
        return self._buf[start - self._base : end - self._base]

    def drop_before(self, i: int) -> None:
        del self._buf[: i - self._base]
        self._base = i

    def paragraph(self, i: int, max_tokens: int, max_chars: int) -> tuple[int, int, int]:
        """(end, tokens, chars) of the paragraph from unit i on; reading stops early
        once either total is over its maximum (then the paragraph cannot fit anyway)."""
        para, end, tokens, chars = self[i].para, i, 0, 0
        while tokens <= max_tokens and chars <= max_chars and self.has(end):
            if self[end].para != para:
                break
            tokens, chars, end = tokens + self[end].tokens, chars + len(self[end].text) + 1, end + 1
        return end, tokens, chars


def _paragraphs(text: str) -> Iterator[str]:
    """`_PARAGRAPH_BREAK.split(text)`, lazily."""
    pos = 0
    for match in _PARAGRAPH_BREAK.finditer(text):
        yield text[pos : match.start()]
        pos = match.end()
    yield text[pos:]


def _join(units: list[_Unit]) -> str:
    return units[0].text + "".join(u.sep + u.text for u in units[1:])
