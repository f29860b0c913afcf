"""Citations that are right: markers checked against the context, passages ordered by
how well they support the answer, and the text renumbered to match.

Numbers in the model's text are prompt numbers ([n] = the n-th context passage).
After generation every context passage is scored for support of the answer; the
citations are the passages best supported first, and the text's markers are
renumbered so that [k] is citations[k-1]. Markers naming no passage are removed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

MARKER = re.compile(r"\s*\[(\d+(?:\s*,\s*\d+)*)\]")
_WORD = re.compile(r"[a-z0-9]+")
_PARTS = re.compile(r"\[[\d,\s]*\]|[,.;:!?()\"]+(?:\s|$)")
_STOPWORDS = frozenset(
    "a an and are as at be been by did do does for from had has have he her his how i in "
    "is it its of on or she that the their them they this to was were what when where "
    "which who whom whose why will with".split()
)


@dataclass(frozen=True)
class Support:
    """How well one passage supports an answer; compares best-first with `key`."""

    span: bool  # the answer, or one of its phrases (cut at markers, punctuation), occurs
    coverage: float  # share of the answer's own key terms (not in the question) found
    overlap: float  # share of question + answer key terms found
    marked: bool  # the model cited it

    def key(self, rank: int) -> tuple[float, ...]:
        """Sort key, best first: the answer's span, then the model's own marker, then
        retrieval rank. Partial term coverage and question overlap are not in the key:
        on the Normans set they put the gold passage first less often than retrieval
        order does (0.78 against 0.875, see README), so they only feed refusal."""
        return (-float(self.span), -float(self.marked), float(rank))


def terms(text: str) -> list[str]:
    """Lower-cased key terms: words and numbers without stopwords."""
    return [w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS]


def support(answer: str, question: str, passage: str, marked: bool = False) -> Support:
    """The support `passage` gives `answer` (markers allowed: they cut phrases) to
    `question`."""
    words = set(_WORD.findall(passage.lower()))
    answer_terms = terms(strip_markers(answer))
    text = f" {_normal(passage)} "
    span = any(f" {_normal(part)} " in text for part in _PARTS.split(answer) if terms(part))
    own = [t for t in dict.fromkeys(answer_terms) if t not in set(terms(question))]
    own = own or list(dict.fromkeys(answer_terms))
    coverage = sum(t in words for t in own) / len(own) if own else 0.0
    both = list(dict.fromkeys(terms(question) + answer_terms))
    overlap = sum(t in words for t in both) / len(both) if both else 0.0
    return Support(span, coverage, overlap, marked)


def cited_numbers(text: str, sources: int) -> list[int]:
    """The prompt numbers 1..sources that the text's markers name, ascending."""
    numbers = {int(n) for group in MARKER.findall(text) for n in group.split(",")}
    return sorted(n for n in numbers if 0 < n <= sources)


def order_by_support(
    answer: str, question: str, passages: Sequence[str], cited: Sequence[int]
) -> tuple[list[int], list[Support]]:
    """Passage indices (0-based) best supported first, and each passage's Support."""
    marked = set(cited)
    scores = [support(answer, question, text, i + 1 in marked) for i, text in enumerate(passages)]
    order = sorted(range(len(passages)), key=lambda i: scores[i].key(i))
    return order, scores


def renumber(text: str, mapping: Mapping[int, int]) -> str:
    """The text with each marker number n replaced by mapping[n]; numbers missing from
    the mapping are dropped, and so is a marker left with none. Apply it to streamed
    text with FinalAnswer.renumbered to get the final numbering."""

    def replace(match: re.Match[str]) -> str:
        numbers = [int(n) for n in match.group(1).split(",")]
        kept = list(dict.fromkeys(str(mapping[n]) for n in numbers if n in mapping))
        if not kept:
            return ""
        return f"{match.group(0)[: match.start(1) - match.start(0) - 1]}[{', '.join(kept)}]"

    return MARKER.sub(replace, text).strip()


def strip_markers(text: str) -> str:
    """The text without its [n] / [n, m] citation markers."""
    return MARKER.sub("", text).strip()


def _normal(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))
