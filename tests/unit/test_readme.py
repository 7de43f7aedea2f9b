"""The README's results block is the reports' figures, regenerated; its check ignores only timings.

A fresh clone's `make run` rewrites reports/ with the same figures and its own seconds: the check
must pass there (timings are taken from the committed reports), and fail when a figure differs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tokenskip.register.readme_blocks import BEGIN, END, check, expected_blocks, results_block
from tokenskip.register.tables import block, champion_line, champion_of

GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"]


def test_readme_results_block_matches_the_reports(repo_root: Path) -> None:
    assert check(repo_root, repo_root / "README.md") is None


@pytest.fixture
def clone(repo_root: Path, tmp_path: Path) -> Path:
    """A git repository holding the README and the committed evaluate and register reports."""
    (tmp_path / "reports").mkdir()
    for name in ("evaluate.json", "register.json"):
        shown = subprocess.run(["git", "show", f"HEAD:reports/{name}"], cwd=repo_root, capture_output=True,
                               text=True, check=True)
        (tmp_path / "reports" / name).write_text(shown.stdout, encoding="utf-8")
    readme = (repo_root / "README.md").read_text(encoding="utf-8")
    body = results_block(*(json.loads((tmp_path / "reports" / n).read_text()) for n in
                           ("evaluate.json", "register.json")))
    (tmp_path / "README.md").write_text(readme.split(BEGIN)[0] + f"{BEGIN}\n{body}\n{END}\n", encoding="utf-8")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*GIT, "add", "."], cwd=tmp_path, check=True)
    subprocess.run([*GIT, "commit", "-q", "-m", "reports"], cwd=tmp_path, check=True)
    return tmp_path


def _edit_evaluate(repo: Path, field: str, value: float) -> None:
    path = repo / "reports" / "evaluate.json"
    report = json.loads(path.read_text(encoding="utf-8"))
    for figures in [*report["ratios"].values(), *report["baselines"].values()]:
        if field in figures:
            figures[field] = value
    path.write_text(json.dumps(report), encoding="utf-8")


def test_new_timings_pass_and_a_new_figure_fails(clone: Path) -> None:
    assert check(clone, clone / "README.md") is None
    _edit_evaluate(clone, "latency_s", 9.999)  # another box's seconds: the README still holds
    _edit_evaluate(clone, "throughput_tok_s", 1.0)
    register = json.loads((clone / "reports" / "register.json").read_text(encoding="utf-8"))
    register["versions"] = [{**v, "version": str(i), "run_id": f"run{i}"} for i, v in enumerate(register["versions"])]
    register["champion"] = {**register["champion"], "version": "1"}  # a fresh registry numbers its own
    (clone / "reports" / "register.json").write_text(json.dumps(register), encoding="utf-8")
    assert check(clone, clone / "README.md") is None
    _edit_evaluate(clone, "mean_cot_tokens", 42.0)  # a figure the pipeline reproduces: it must match
    problem = check(clone, clone / "README.md")
    assert problem and "results block differs" in problem and "tokenskip.register.readme_blocks" in problem


def test_the_generator_rewrites_the_block_then_the_check_passes(clone: Path) -> None:
    _edit_evaluate(clone, "accuracy", 0.5)
    command = [sys.executable, "-m", "tokenskip.register.readme_blocks", "--repo", str(clone)]
    checked = subprocess.run([*command, "--check"], capture_output=True, text=True, check=False)
    assert checked.returncode == 1 and "results block differs" in checked.stderr
    subprocess.run(command, check=True)
    assert check(clone, clone / "README.md") is None
    text = (clone / "README.md").read_text(encoding="utf-8")
    assert block(text, BEGIN, END) == expected_blocks(clone)[0]["results"] and "| TokenSkip g=0.6 (champion) | 0.500" in text


def test_readme_champion_line_never_passes_off_an_earlier_runs_alias(clone: Path) -> None:
    register = json.loads((clone / "reports" / "register.json").read_text(encoding="utf-8"))
    evaluate = json.loads((clone / "reports" / "evaluate.json").read_text(encoding="utf-8"))
    model = register["registered_model"]

    def last_line(champion: dict) -> str:
        return results_block(evaluate, {**register, "champion": champion}).splitlines()[-1]

    assert last_line({"version": "7", "ratio": 0.6}) == f"Champion: {model}@champion (ratio 0.6)"
    kept = last_line({"version": "7", "ratio": 0.6, "from_this_run": False})
    assert kept.startswith("Champion: none from this run") and f"{model}@champion (ratio 0.6)" in kept
    assert kept == champion_line(champion_of({**register, "champion": {"version": 7, "ratio": 0.6,
                                                                        "from_this_run": False}}), False)


def test_the_headline_follows_the_champion(clone: Path) -> None:
    from tokenskip.register.readme_blocks import headline

    register = json.loads((clone / "reports" / "register.json").read_text(encoding="utf-8"))
    evaluate = json.loads((clone / "reports" / "evaluate.json").read_text(encoding="utf-8"))
    ratio = register["champion"]["ratio"]
    assert f"the gate promotes g = {ratio:g}, " in headline(evaluate, register)
    nobody = {**register, "versions": [{**v, "alias": None} for v in register["versions"]], "champion": None}
    assert headline(evaluate, nobody).endswith("the gate promotes no version.**")
    better = {**register, "versions": [{**v, "accuracy_drop": -0.004} for v in register["versions"]]}
    assert "fewer CoT tokens and 0.4 points more accuracy**" in headline(evaluate, better)
