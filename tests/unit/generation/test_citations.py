"""Citations ordered by support, with adversarial model outputs."""

from __future__ import annotations

import re

import pytest

from services.common.types import Answer, ScoredChunk
from services.generation.answering import Answerer
from services.generation.citations import renumber, support
from tests.unit.generation.test_answering import CHUNKS, ScriptedProvider, chunk

NORMANDY = chunk(1, "The Normans gave their name to Normandy, a region in France.")
ROLLO = chunk(2, "Rollo, a Viking leader, agreed to a treaty with King Charles III in 911.")
HASTINGS = chunk(3, "In 1066 William, Duke of Normandy, won the Battle of Hastings.")
CONTEXT = [NORMANDY, ROLLO, HASTINGS]


def ask(reply: str, question: str = "Who won at Hastings?",
        chunks: list[ScoredChunk] = CONTEXT, **kwargs: object) -> Answer:
    return Answerer(ScriptedProvider(reply), **kwargs).answer(  # type: ignore[arg-type]
        question, chunks, [], 64)


def test_the_passage_holding_the_answer_comes_first_whatever_the_model_cites() -> None:
    # The small model copies the example and cites [1]; the answer is in passage 3.
    result = ask("William, Duke of Normandy [1].")
    assert result.citations[0] == HASTINGS
    assert result.text == "William, Duke of Normandy [2]."  # passage 1 is now second
    assert result.citations[1] == NORMANDY


def test_markers_always_point_at_the_passage_the_model_named() -> None:
    result = ask("Rollo [2] signed in 911 [2, 3] near Normandy [1] [9].",
                 question="Who agreed to a treaty in 911?")
    marked = [int(n) for group in re.findall(r"\[([\d, ]+)\]", result.text)
              for n in group.split(",")]
    named = [2, 2, 3, 1]  # [9] pointed nowhere and is gone
    assert [result.citations[m - 1] for m in marked] == [CONTEXT[n - 1] for n in named]
    assert result.text == "Rollo [1] signed in 911 [1, 3] near Normandy [2]."  # [9] is gone
    assert result.citations[0] == ROLLO  # "Rollo" is only in passage 2, next to the treaty


def test_retrieval_rank_breaks_ties() -> None:
    twins = [chunk(1, "Paris is big."), chunk(2, "Paris is big."), chunk(3, "Rome is old.")]
    result = ask("Paris.", question="Which city?", chunks=twins)
    assert result.citations == (twins[0], twins[1], twins[2])


def test_a_marker_in_a_bracketed_year_or_negative_is_not_a_source() -> None:
    result = ask("In [0] 1066 [-1] [1066] William [3].")
    assert result.citations[0] == HASTINGS
    assert "[1]" in result.text and "[0]" not in result.text and "[1066]" not in result.text


def test_only_context_passages_are_ever_cited() -> None:
    result = ask("William [4][5][6], see [12].", chunks=[NORMANDY, HASTINGS])
    assert set(result.citations) == {NORMANDY, HASTINGS}
    assert result.text == "William, see."


def test_an_answer_no_passage_supports_is_refused_with_min_support() -> None:
    assert not ask("Napoleon Bonaparte [1].").refused
    refused = ask("Napoleon Bonaparte [1].", min_support=0.5)
    assert refused.refused and refused.citations == ()
    kept = ask("William [3].", min_support=0.5)
    assert not kept.refused and kept.citations[0] == HASTINGS


def test_stream_and_final_answer_agree_on_numbers() -> None:
    reply = "William [1] won in 1066 [3]; see [7]."
    answerer = Answerer(ScriptedProvider(reply))
    items = list(answerer.stream("Who won at Hastings?", CONTEXT, [], 64))
    streamed = "".join(str(i) for i in items[:-1])
    final = items[-1]
    assert isinstance(final, Answer)
    # The client applies `renumbered` to what it rendered and gets the final text.
    assert renumber(streamed, final.renumbered) == final.text
    assert final.citations[0] == HASTINGS
    for n, m in final.renumbered.items():
        assert final.citations[m - 1] == CONTEXT[n - 1]


def test_support_prefers_the_exact_span_over_scattered_terms() -> None:
    span = support("10th and 11th centuries", "When?", "in the 10th and 11th centuries")
    scattered = support("10th and 11th centuries", "When?", "11th of the 10th centuries")
    assert span.span and not scattered.span
    assert support("10", "When?", "in 1066").coverage == 0.0


@pytest.mark.parametrize("reply", ["[1][2][3]", "The answer is: [2]"])
def test_marker_only_outputs_keep_every_passage(reply: str) -> None:
    result = ask(reply, chunks=CHUNKS)
    assert set(result.citations) == set(CHUNKS) and not result.refused


def test_the_answer_next_to_the_question_beats_the_answer_in_passing() -> None:
    # Passage 1 ranks first and names William, but in a sentence about something else.
    passing = chunk(1, "William of Jumieges wrote a chronicle. Hastings lies on the coast.")
    battle = chunk(2, "In 1066 William won the Battle of Hastings against Harold.")
    result = ask("William.", question="Who won the Battle of Hastings?",
                 chunks=[passing, battle])
    assert result.citations == (battle, passing)


def test_a_wrong_answer_found_in_an_unrelated_sentence_keeps_retrieval_order() -> None:
    gold = chunk(1, "The Normans took Dyrrachium in 1082 after a long siege.")
    other = chunk(2, "A fire broke out in the city in 1185. The harbour burned.")
    result = ask("1185 [2].", question="When did the Normans take Dyrrachium?",
                 chunks=[gold, other])
    assert result.citations[0] == gold
    assert result.text == "1185 [2]."  # the marker still names the passage the model chose


def test_a_question_without_key_terms_lets_the_answer_phrase_decide() -> None:
    result = ask("William, Duke of Normandy.", question="Who was he?")
    assert result.citations[0] == HASTINGS
