"""A fixed, seeded split of a dataset's train queries into *fit* and *dev*.

Each query id is ordered by sha256(f"{seed}:{qid}"); the lowest `dev_fraction` share is
*dev*, the rest *fit*. The order of one id never depends on the others, so adding
queries never moves an existing query from one side to the other (only the cut point
shifts, by at most the new queries' share). Tuning and fine-tuning fit on *fit* and
select on *dev*; the test split stays held out.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from mlops.evaluate_rag.beir import BeirDataset, load_beir

DEFAULT_SEED = 13
DEFAULT_DEV_FRACTION = 0.2
SPLITS = ("fit", "dev", "train", "test")


def _key(seed: int, qid: str) -> str:
    return hashlib.sha256(f"{seed}:{qid}".encode()).hexdigest()


def fit_dev_split(
    query_ids: Iterable[str], dev_fraction: float = DEFAULT_DEV_FRACTION, seed: int = DEFAULT_SEED
) -> tuple[list[str], list[str]]:
    """(fit ids, dev ids), each sorted by id; dev holds round(n * dev_fraction) ids."""
    if not 0.0 < dev_fraction < 1.0:
        raise ValueError(f"dev_fraction must be between 0 and 1, got {dev_fraction}")
    ids = sorted(set(query_ids))
    ordered = sorted(ids, key=lambda qid: _key(seed, qid))
    n_dev = min(len(ids), math.floor(len(ids) * dev_fraction + 0.5))
    dev = set(ordered[:n_dev])
    return [q for q in ids if q not in dev], [q for q in ids if q in dev]


def restrict(dataset: BeirDataset, query_ids: Iterable[str]) -> BeirDataset:
    """The dataset with only `query_ids`' queries and judgements (the corpus whole)."""
    keep = set(query_ids)
    return replace(dataset,
                   queries={q: t for q, t in dataset.queries.items() if q in keep},
                   qrels={q: j for q, j in dataset.qrels.items() if q in keep})


def load_split(
    dataset_dir: str | Path, split: str, dev_fraction: float = DEFAULT_DEV_FRACTION,
    seed: int = DEFAULT_SEED,
) -> BeirDataset:
    """The dataset with the judgements of `split`: "fit" and "dev" are the two sides
    of qrels/train.tsv; any other name is read from qrels/<split>.tsv as is."""
    if split not in ("fit", "dev"):
        return load_beir(dataset_dir, split)
    train = load_beir(dataset_dir, "train")
    fit, dev = fit_dev_split(train.queries, dev_fraction, seed)
    return restrict(train, fit if split == "fit" else dev)
