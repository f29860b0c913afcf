"""Citations that are right: markers checked against the context, passages ordered by
how well they support the answer, and the text renumbered to match.

Numbers in the model's text are prompt numbers ([n] = the n-th context passage).
After generation every context passage is scored for support of the answer; the
citations are the passages best supported first, and the text's markers are
renumbered so that [k] is citations[k-1]. Markers naming no passage are removed.

A passage supports the answer when a phrase of the answer occurs in one of its
sentences that also holds a good share of the question's key terms: the sentence a
reader would point at. A phrase found only in an unrelated sentence, or the model's
own marker, is weaker evidence than retrieval rank (see README, "Answers you can
check"), so those only feed refusal and the renumbering.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from services.common.sentences import FUNCTION_WORDS, WORD, TermWeights, split_sentences

MARKER = re.compile(r"\s*\[(\d+(?:\s*,\s*\d+)*)\]")
_PARTS = re.compile(r"\[[\d,\s]*\]|[,.;:!?()\"]+(?:\s|$)")


# The share (IDF-weighted) of the question's key terms a sentence must hold for an
# answer phrase in it to count as support; picked on half the Normans questions.
QUESTION_SHARE = 0.25


@dataclass(frozen=True)
class Support:
    """How well one passage supports an answer; compares best-first with `key`."""

    span: bool  # the answer, or one of its phrases (cut at markers, punctuation), occurs
    coverage: float  # share of the answer's own key terms (not in the question) found
    overlap: float  # share of question + answer key terms found
    marked: bool  # the model cited it
    grounded: bool = False  # a phrase of the answer occurs in a sentence on the question

    def key(self, rank: int) -> tuple[float, ...]:
        """Sort key, best first: an answer phrase in a sentence on the question, then
        retrieval rank. On the Normans set a phrase anywhere in the passage, the model's
        marker, and partial term coverage each put the gold passage first less often
        than retrieval order does (see README), so they only feed refusal."""
        return (-float(self.grounded), float(rank))


def terms(text: str) -> list[str]:
    """Lower-cased key terms: words and numbers without stopwords."""
    return [w for w in WORD.findall(text.lower()) if w not in FUNCTION_WORDS]


def support(
    answer: str, question: str, passage: str, marked: bool = False,
    weights: TermWeights | None = None,
) -> Support:
    """The support `passage` gives `answer` (markers allowed: they cut phrases) to
    `question`; `weights` are the question's term weights over all the passages (by
    default over this one alone)."""
    words = set(WORD.findall(passage.lower()))
    answer_terms = terms(strip_markers(answer))
    phrases = [f" {_normal(part)} " for part in _PARTS.split(answer) if terms(part)]
    span = any(p in f" {_normal(passage)} " for p in phrases)
    own = [t for t in dict.fromkeys(answer_terms) if t not in set(terms(question))]
    own = own or list(dict.fromkeys(answer_terms))
    coverage = sum(t in words for t in own) / len(own) if own else 0.0
    both = list(dict.fromkeys(terms(question) + answer_terms))
    overlap = sum(t in words for t in both) / len(both) if both else 0.0
    weights = weights or TermWeights(question, [passage])
    return Support(span, coverage, overlap, marked,
                   span and _grounded(phrases, passage, weights))


def _grounded(phrases: Sequence[str], passage: str, weights: TermWeights) -> bool:
    """Whether one sentence holds a phrase and, when the question has key terms, at
    least QUESTION_SHARE of their weight."""
    for sentence in split_sentences(passage):
        text = f" {_normal(sentence)} "
        if any(p in text for p in phrases) and (
            not weights.has_terms or weights.overlap(sentence) >= QUESTION_SHARE
        ):
            return True
    return False


def cited_numbers(text: str, sources: int) -> list[int]:
    """The prompt numbers 1..sources that the text's markers name, ascending."""
    numbers = {int(n) for group in MARKER.findall(text) for n in group.split(",")}
    return sorted(n for n in numbers if 0 < n <= sources)


def order_by_support(
    answer: str, question: str, passages: Sequence[str], cited: Sequence[int]
) -> tuple[list[int], list[Support]]:
    """Passage indices (0-based) best supported first, and each passage's Support."""
    marked = set(cited)
    weights = TermWeights(question, passages)
    scores = [support(answer, question, text, i + 1 in marked, weights)
              for i, text in enumerate(passages)]
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
    return " ".join(WORD.findall(text.lower()))
