"""Plain-text signals shared by reranking and citation ordering: sentences, key terms,
and the IDF-weighted share of a query's key terms that a text contains."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

WORD = re.compile(r"[a-z0-9]+")
# A sentence ends at . ! or ? (closing quotes or brackets may follow) before a capital,
# digit or opening quote; a blank line (a heading, a list) also ends one.
_BOUNDARY = re.compile(
    r"(?:(?<=[.!?])|(?<=[.!?][\"')\]]))\s+(?=[\"'(\[]?[A-Z0-9])|\n\s*\n"
)
_SUFFIXES = ("ings", "ing", "edly", "ed", "ies", "es", "s", "ly")
# Function words: no key term. Citation support and follow-up rewriting drop these;
# the key stems of reranking and the citation gate also drop the persons a question
# talks to or about (him, me, we, you).
FUNCTION_WORDS = frozenset(
    "a an and are as at be been by did do does for from had has have he her his how i in "
    "is it its of on or she that the their them they this to was were what when where "
    "which who whom whose why will with".split()
)
STOPWORDS = FUNCTION_WORDS | {"him", "me", "we", "you"}


def split_sentences(text: str) -> list[str]:
    """The text's sentences, stripped, in order; [] for blank text."""
    return [s for s in (part.strip() for part in _BOUNDARY.split(text)) if s]


def stem(word: str) -> str:
    """A light English stem: "exports", "exporting" and "exported" all give "export".
    Only agreement matters (both sides are stemmed alike), not a dictionary form."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix == "s" and word.endswith("ss"):
                break
            word = word[: -len(suffix)] + ("y" if suffix == "ies" else "")
            break
    return word[:-1] if len(word) > 4 and word.endswith("e") else word


def word_stems(text: str) -> set[str]:
    """Every word of the text, stemmed (stopwords included)."""
    return {stem(w) for w in WORD.findall(text.lower())}


def key_stems(text: str) -> set[str]:
    """The text's key terms: stemmed words and numbers, without stopwords."""
    return {stem(w) for w in WORD.findall(text.lower()) if w not in STOPWORDS}


class TermWeights:
    """IDF weights of a query's key terms over a set of texts (the candidates): a term
    few of them contain counts most."""

    def __init__(self, query: str, texts: Sequence[str]) -> None:
        docs = [word_stems(t) for t in texts]
        self._idf = {t: math.log(1 + len(docs) / (1 + sum(t in d for d in docs)))
                     for t in key_stems(query)}
        self._total = sum(self._idf.values())

    @property
    def has_terms(self) -> bool:
        """Whether the query has any key term to look for."""
        return bool(self._idf)

    def overlap(self, text: str) -> float:
        """IDF-weighted share (0..1) of the query's key terms that `text` contains."""
        if not self._total:
            return 0.0
        words = word_stems(text)
        return sum(w for t, w in self._idf.items() if t in words) / self._total
