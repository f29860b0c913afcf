"""Answer checks on SQuAD 2.0-style data: precision@1, follow-ups, citations, refusal."""
