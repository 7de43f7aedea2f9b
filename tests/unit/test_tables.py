"""The one renderer of the results and gate tables (tokenskip.register.tables) and the run summary."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tokenskip.register.summary import headline_metrics, run_summary
from tokenskip.register.tables import (
    GATE_COLUMNS,
    block,
    cell,
    champion_line,
    champion_of,
    gate_rows,
    markdown_table,
    replace_block,
    result_rows,
)

EVALUATE = {
    "n_test": 500,
    "ratios": {
        "0.5": {"accuracy": 0.81, "accuracy_ci": [0.77, 0.845], "mean_cot_tokens": 60.5, "actual_ratio": 0.52,
                "latency_s": 0.1},
        "1.0": {"accuracy": 0.9, "mean_cot_tokens": 116.0, "actual_ratio": 1.0, "latency_s": 0.2},
        "0.7": {"accuracy": 0.88, "mean_cot_tokens": 80.0, "actual_ratio": 0.69, "latency_s": 0.15},
    },
    "baselines": {
        "be_concise": {"accuracy": 0.7, "mean_cot_tokens": 90.0},
        "original": {"accuracy": 0.92, "mean_cot_tokens": 117.0, "actual_ratio": 1.0},
        "truncation_0.5": {"accuracy": 0.05, "mean_cot_tokens": 58.0},
    },
}
REGISTER = {
    "registered_model": "m",
    "versions": [
        {"version": "1", "ratio": 0.5, "verdict": "failed", "reason": "accuracy drop 0.09 > 0.05",
         "accuracy_drop": 0.09, "accuracy_drop_ci": [0.06, 0.12], "reference": "original", "decision": "upper_ci"},
        {"version": "2", "ratio": 0.9, "verdict": "passed", "alias": "challenger"},
        {"version": "3", "ratio": 0.7, "verdict": "passed", "alias": "champion", "mcnemar_p": 0.0169},
    ],
    "champion": {"version": "3", "ratio": 0.7},
}


def test_results_rows_original_then_ratios_down_then_baselines() -> None:
    rows = result_rows(EVALUATE, REGISTER)
    assert [r["setting"] for r in rows] == ["base model (original)", "TokenSkip g=1.0", "TokenSkip g=0.7 (champion)",
                                           "TokenSkip g=0.5", '"Be concise."', "truncation g=0.5"]
    assert rows[3] == {"setting": "TokenSkip g=0.5", "accuracy [95% CI]": "0.810 [0.770, 0.845]",
                       "mean CoT tokens": "60.5", "actual ratio": "0.52", "latency (s, batch 1)": "0.100"}
    chosen = result_rows(EVALUATE, None, baselines=("truncation_0.5", "lc_prompt_0.5"))
    assert [r["setting"] for r in chosen][-1] == "truncation g=0.5" and len(chosen) == 5


def test_gate_rows_take_registers_versions_list_only() -> None:
    rows = gate_rows(REGISTER)
    assert [r["g"] for r in rows] == ["0.9", "0.7", "0.5"]
    assert rows[1]["verdict"] == "passed (champion)" and rows[1]["McNemar p"] == "0.0169"
    assert rows[2]["judged drop [95% CI]"] == "+0.090 [0.060, 0.120]" and rows[2]["reason"].startswith("accuracy")
    with pytest.raises((TypeError, KeyError, AttributeError)):
        gate_rows({"versions": {"0.5": {"version": "1"}}})  # the old mapping shape is gone
    assert markdown_table(rows, GATE_COLUMNS).splitlines()[0] == "| " + " | ".join(GATE_COLUMNS) + " |"


def test_champion_of_registers_report() -> None:
    assert champion_of(REGISTER) == {"registered_model": "m", "version": "3", "ratio": 0.7}
    assert champion_of({"registered_model": "m", "champion": None}) is None and champion_of(None) is None
    assert champion_line(champion_of(REGISTER)) == "Champion: m version 3 (ratio 0.7)"
    assert champion_line(champion_of(REGISTER), show_version=False) == "Champion: m@champion (ratio 0.7)"
    kept = champion_line(champion_of({**REGISTER, "champion": {"version": "5", "ratio": 0.6, "from_this_run": False}}))
    assert kept.startswith("Champion: none from this run") and "earlier run's m version 5 (ratio 0.6)" in kept
    assert champion_line(None) == "Champion: none (no version passed the gate)"


def test_run_summary_results_gate_and_champion() -> None:
    text = run_summary(EVALUATE, REGISTER)
    assert text.startswith("Evaluated on 500 test problems.")
    assert "Promotion gate: reference `original`, decision `upper_ci`" in text
    assert text.endswith("Champion: m version 3 (ratio 0.7)")
    assert run_summary(EVALUATE, {"registered_model": "m", "versions": [], "champion": None}).endswith(
        "Champion: none (no version passed the gate)")


def test_cells_and_blocks() -> None:
    assert [cell(v) for v in (None, True, 0.123456, [0.1, 0.2], {"b": 1}, "a|b\nc")] == [
        "", "true", "0.1235", "[0.1, 0.2]", '{"b": 1}', "a\\|b c"]
    text = "head\n<!-- b -->\nold\n<!-- e -->\ntail"
    assert replace_block(text, "<!-- b -->", "<!-- e -->", "new") == "head\n<!-- b -->\nnew\n<!-- e -->\ntail"
    assert block(text, "<!-- b -->", "<!-- e -->") == "old" and block("x", "<!-- b -->", "<!-- e -->") is None
    with pytest.raises(ValueError, match="no <!-- b -->"):
        replace_block("x", "<!-- b -->", "<!-- e -->", "new")


def _committed(repo: Path, name: str) -> dict:
    shown = subprocess.run(["git", "show", f"HEAD:reports/{name}"], cwd=repo, capture_output=True, text=True,
                           check=False)
    if shown.returncode != 0:
        pytest.skip("no committed reports (not a git checkout)")
    return json.loads(shown.stdout)


def test_headline_metrics_are_the_committed_metrics(repo_root: Path) -> None:
    register, evaluate = _committed(repo_root, "register.json"), _committed(repo_root, "evaluate.json")
    assert headline_metrics(register, evaluate) == _committed(repo_root, "metrics.json")
