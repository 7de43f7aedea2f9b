"""tokenskip prune end to end on the tiny model: per-ratio files, samples, report; bad input."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.fixtures.tiny_models import build_tiny_token_classifier
from tokenskip.cli import app
from tokenskip.core.errors import TokenSkipError
from tokenskip.core.io import read_json, read_jsonl
from tokenskip.core.params import load_params
from tokenskip.core.problems import split_gold
from tokenskip.data.synthetic import generate_problems


def _cots(path: Path, n: int = 12, empty_at: int | None = None) -> Path:
    rows = []
    for i, r in enumerate(generate_problems(5, n)):
        cot, gold = split_gold(r["answer"])
        rows.append({"id": f"s-{i}", "question": r["question"], "gold": gold, "output": cot, "cot": cot,
                     "prediction": gold, "correct": True, "cot_tokens": 1})
    if empty_at is not None:
        rows[empty_at]["cot"] = "  "
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _run(tmp_path: Path, base: Path, cot: Path, params: str = ""):
    (tmp_path / "p.yaml").write_text(params)
    out, report = tmp_path / "prune", tmp_path / "prune.json"
    result = CliRunner().invoke(app, ["prune", "--base", str(base), "--cot", str(cot), "--out", str(out),
                                      "--report", str(report), "--params", str(tmp_path / "p.yaml")])
    return result, out, report


def test_prune_writes_ratio_files_samples_and_report(tiny_model_dir: Path, tmp_path: Path, repo_root: Path) -> None:
    tolerance = load_params(repo_root / "params.yaml").validate_.ratio_tolerance  # what validate enforces
    one = "prune: {samples_per_question: one}\n"  # one seeded draw of g per question
    result, out, report = _run(tmp_path, tiny_model_dir, _cots(tmp_path / "cot.jsonl"), one)
    assert result.exit_code == 0, result.output
    summary = read_json(report)
    for g in (0.5, 0.6, 0.7, 0.8, 0.9):
        rows = read_jsonl(out / f"pruned_{g}.jsonl")
        assert len(rows) == 12 and all(r["ratio"] == g for r in rows)
        stats = summary["ratios"][str(g)]
        assert abs(stats["actual_ratio_mean"] - g) <= tolerance  # budgets are in target tokens
        assert stats["over_budget_share"] == 0.0
        assert stats["digits_kept_share"] == 1.0  # force_digits
    samples = read_jsonl(out / "samples.jsonl")
    assert [s["id"] for s in samples] == [f"s-{i}" for i in range(12)]
    for sample in samples:
        tagged = f"<|im_end|>{sample['ratio']:g}<|im_end|>" in sample["prompt"]
        assert tagged == (sample["ratio"] < 1.0)
        assert sample["completion"].endswith("}") and "The final answer is: \\boxed{" in sample["completion"]
    (tmp_path / "again").mkdir()
    _, out2, _ = _run(tmp_path / "again", tiny_model_dir, _cots(tmp_path / "cot.jsonl"), one)
    assert (out2 / "samples.jsonl").read_bytes() == (out / "samples.jsonl").read_bytes()  # seeded


def test_prune_with_llmlingua2_classifier(tiny_model_dir: Path, tmp_path: Path) -> None:
    cot = _cots(tmp_path / "cot.jsonl", n=6)
    texts = [json.loads(line)["cot"] for line in cot.read_text().splitlines()]
    clf = build_tiny_token_classifier(tmp_path / "clf", texts * 5)
    result, out, report = _run(tmp_path, tiny_model_dir, cot,
                               f"prune: {{scorer: llmlingua2, scorer_model: '{clf}', ratios: [0.5]}}\n")
    assert result.exit_code == 0, result.output
    assert read_json(report)["scorer"] == "llmlingua2"
    assert len(read_jsonl(out / "pruned_0.5.jsonl")) == 6


def test_prune_with_random_scorer_meets_the_ratios_and_keeps_forced_words(
    tiny_model_dir: Path, tmp_path: Path, repo_root: Path
) -> None:
    """The importance-free control: same budget, calibration and forced words; seeded by prune.seed."""
    tolerance = load_params(repo_root / "params.yaml").validate_.ratio_tolerance
    cot = _cots(tmp_path / "cot.jsonl")
    runs = {}
    for seed in (0, 0, 1):
        folder = tmp_path / f"run-{len(runs)}"
        folder.mkdir()
        result, out, report = _run(folder, tiny_model_dir, cot, f"prune: {{scorer: random, seed: {seed}}}\n")
        assert result.exit_code == 0, result.output
        summary = read_json(report)
        assert summary["scorer"] == "random"
        for g in (0.5, 0.6, 0.7, 0.8, 0.9):
            stats = summary["ratios"][str(g)]
            assert abs(stats["actual_ratio_mean"] - g) <= tolerance
            assert stats["over_budget_share"] == 0.0 and stats["digits_kept_share"] == 1.0
        runs[len(runs)] = (out / "pruned_0.5.jsonl").read_bytes()
    assert runs[0] == runs[1] and runs[0] != runs[2]  # deterministic per seed, different across seeds


@pytest.mark.parametrize(
    ("params", "empty_at", "message"),
    [
        ("", 3, "cot.jsonl:4: field 'cot' is empty"),
        ("prune: {ratios: []}\n", None, "prune.ratios: Value error, must list at least one ratio"),
        ("prune: {ratios: [0.5, 1.2]}\n", None, "prune.ratios.1"),
        ("prune: {scorer: tfidf}\n", None, "prune.scorer"),
        ("prune: {scorer: llmlingua2, scorer_model: ./no/such/folder}\n", None, "scorer model folder not found"),
    ],
)
def test_bad_input_stops_without_output(tiny_model_dir: Path, tmp_path: Path, params: str, empty_at, message) -> None:
    result, out, report = _run(tmp_path, tiny_model_dir, _cots(tmp_path / "cot.jsonl", 4, empty_at), params)
    assert isinstance(result.exception, TokenSkipError)
    assert message in str(result.exception)
    assert not out.exists() and not report.exists()
