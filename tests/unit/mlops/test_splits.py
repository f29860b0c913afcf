"""The fit/dev split: deterministic, disjoint, 80/20, and stable when queries are added."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mlops.splits import fit_dev_split, load_split

FIXTURE = Path(__file__).parents[2] / "fixtures/beir-mini"


def test_split_is_deterministic_disjoint_and_sized() -> None:
    ids = [f"q{n}" for n in range(1000)]
    fit, dev = fit_dev_split(ids)
    assert (fit, dev) == fit_dev_split(reversed(ids))
    assert len(dev) == 200 and len(fit) == 800
    assert set(fit) | set(dev) == set(ids) and not set(fit) & set(dev)
    assert fit_dev_split(ids, seed=14)[1] != dev


def test_adding_queries_never_moves_an_existing_query_into_fit_from_dev_or_back() -> None:
    ids = [f"q{n}" for n in range(1000)]
    fit, dev = fit_dev_split(ids)
    fit2, dev2 = fit_dev_split(ids + [f"new{n}" for n in range(10)])
    moved = (set(fit) & set(dev2)) | (set(dev) & set(fit2))
    assert len(moved) <= 2  # only at the cut point, which shifts by the newcomers' share


def test_bad_fraction_is_refused() -> None:
    with pytest.raises(ValueError, match="dev_fraction"):
        fit_dev_split(["a"], dev_fraction=1.0)


def test_load_split_divides_the_train_judgements(tmp_path: Path) -> None:
    data = tmp_path / "ds"
    shutil.copytree(FIXTURE, data)
    shutil.copy(data / "qrels/test.tsv", data / "qrels/train.tsv")
    fit, dev = load_split(data, "fit"), load_split(data, "dev")
    train = load_split(data, "train")
    assert set(fit.queries) | set(dev.queries) == set(train.queries)
    assert not set(fit.queries) & set(dev.queries) and dev.queries
    assert fit.corpus == train.corpus
    assert set(dev.qrels) == set(dev.queries)
