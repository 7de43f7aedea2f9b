"""The synthetic set: seeded, byte-identical, GSM8K-format, verbose multi-step CoTs."""

import re
from pathlib import Path

import pytest

from tokenskip.core.params import load_params
from tokenskip.core.problems import load_problems
from tokenskip.data.synthetic import write_synthetic


def test_same_seed_same_bytes_and_disjoint_splits(tmp_path: Path) -> None:
    write_synthetic(tmp_path / "a", seed=7, n_train=300, n_test=50)
    write_synthetic(tmp_path / "b", seed=7, n_train=300, n_test=50)
    write_synthetic(tmp_path / "c", seed=8, n_train=300, n_test=50)
    for split in ("train", "test"):
        a = (tmp_path / "a" / f"{split}.jsonl").read_bytes()
        assert a == (tmp_path / "b" / f"{split}.jsonl").read_bytes()
        assert a != (tmp_path / "c" / f"{split}.jsonl").read_bytes()
    train = {p.question for p in load_problems(tmp_path / "a" / "train.jsonl")}
    test = {p.question for p in load_problems(tmp_path / "a" / "test.jsonl")}
    assert len(train) == 300 and len(test) == 50 and not train & test


def test_solutions_are_correct_multi_step_arithmetic(tmp_path: Path) -> None:
    write_synthetic(tmp_path, seed=3, n_train=200, n_test=10)
    for problem in load_problems(tmp_path / "train.jsonl"):
        steps = re.findall(r"(\d+) ([+*-]) (\d+) = (\d+)", problem.solution)
        assert 2 <= len(steps) <= 4
        for left, op, right, result in steps:
            value = {"+": int(left) + int(right), "-": int(left) - int(right),
                     "*": int(left) * int(right)}[op]
            assert value == int(result) >= 0
        assert steps[-1][3] == problem.gold
        assert len(problem.solution.split()) > 30  # verbose: words for pruning to remove


def test_tracked_data_matches_the_generator(repo_root: Path, tmp_path: Path) -> None:
    tracked = repo_root / "data" / "synthetic"
    if not tracked.exists():
        pytest.skip("data/ not restored (run `make data`)")
    data = load_params(repo_root / "params.yaml").data
    write_synthetic(tmp_path, data.seed, data.synthetic_train, data.synthetic_test)
    for split in ("train", "test"):
        assert (tmp_path / f"{split}.jsonl").read_bytes() == (tracked / f"{split}.jsonl").read_bytes()
