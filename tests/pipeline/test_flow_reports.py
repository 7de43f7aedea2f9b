"""What the flow publishes and prints, built from the stages' reports."""

from __future__ import annotations

from pathlib import Path

import pytest

from tokenskip.core.errors import TokenSkipError
from tokenskip_flows.reports import (
    champion_line,
    champion_of,
    evaluation_markdown,
    evaluation_rows,
    gate_markdown,
    gate_rows,
    read_report,
    validation_markdown,
)

EVALUATE = {
    "n_test": 500,
    "ratios": {
        "0.5": {"accuracy": 0.81, "mean_cot_tokens": 60.5, "actual_ratio": 0.52, "latency_s": 0.1},
        "1.0": {"accuracy": 0.9, "mean_cot_tokens": 116.0, "actual_ratio": 1.0, "latency_s": 0.2},
        "0.7": {"accuracy": 0.88, "mean_cot_tokens": 80.0, "actual_ratio": 0.69, "latency_s": 0.15},
    },
    "baselines": {
        "be_concise": {"accuracy": 0.7, "mean_cot_tokens": 90.0},
        "truncation_0.5": {"accuracy": 0.05, "mean_cot_tokens": 58.0},
    },
}


def test_evaluation_rows_one_per_ratio_then_baselines() -> None:
    rows = evaluation_rows(EVALUATE)
    assert [r["setting"] for r in rows] == ["g=1.0", "g=0.7", "g=0.5", "be_concise", "truncation_0.5"]
    assert rows[2]["accuracy"] == 0.81 and rows[3]["model"] == "baseline"


def test_evaluation_markdown_is_a_table_with_the_known_metrics() -> None:
    text = evaluation_markdown(EVALUATE)
    lines = text.splitlines()
    assert lines[0] == "### Evaluation (500 test problems)"
    assert lines[2] == "| model | setting | accuracy | mean_cot_tokens | actual_ratio | latency_s |"
    assert "| tokenskip | g=0.5 | 0.81 | 60.5 | 0.52 | 0.1 |" in lines
    assert "| baseline | be_concise | 0.7 | 90 |  |  |" in lines


def test_champion_decision_from_register_report_shapes() -> None:
    nested = {"registered_model": "m", "champion": {"version": 3, "ratio": 0.6}}
    flat = {"registered_model": "m", "champion_version": "3", "champion_ratio": 0.6}
    expected = {"registered_model": "m", "version": "3", "ratio": 0.6}
    assert champion_of(nested) == expected and champion_of(flat) == expected
    assert champion_of({"registered_model": "m", "champion": None}) is None
    assert champion_of(None) is None
    assert champion_line(expected) == "Champion: m version 3 (ratio 0.6)"
    assert "none" in champion_line(None)


def test_champion_line_does_not_claim_an_earlier_runs_alias_as_this_runs_verdict() -> None:
    report = {"registered_model": "m", "champion": {"version": "5", "ratio": 0.6, "from_this_run": False}}
    line = champion_line(champion_of(report))
    assert line.startswith("Champion: none from this run") and "earlier run's m version 5 (ratio 0.6)" in line


def test_gate_table_rows_by_ratio_with_reasons() -> None:
    report = {
        "registered_model": "m",
        "versions": [
            {"version": "1", "ratio": 0.5, "verdict": "failed", "reason": "accuracy drop 0.09 > 0.05"},
            {"version": "2", "ratio": 0.9, "verdict": "passed", "alias": "challenger"},
            {"version": "3", "ratio": 0.7, "verdict": "passed", "alias": "champion"},
        ],
        "champion": {"version": "3", "ratio": 0.7},
    }
    assert [r["ratio"] for r in gate_rows(report)] == [0.9, 0.7, 0.5]
    text = gate_markdown(report)
    assert "| version | ratio | verdict | alias | reason |" in text
    assert "| 1 | 0.5 | failed |  | accuracy drop 0.09 > 0.05 |" in text
    assert text.endswith("Champion: m version 3 (ratio 0.7)")


def test_validation_summary_links_the_data_docs(tmp_path: Path) -> None:
    docs = tmp_path / "validation"
    (docs / "local_site").mkdir(parents=True)
    (docs / "local_site" / "index.html").write_text("<html/>")
    report = {
        "success": False,
        "suites": {"cot": {"evaluated": 5, "unsuccessful": 0}, "pruned": {"evaluated": 4, "unsuccessful": 1}},
        "failures": [
            {"suite": "pruned", "name": "ratio_mean", "expectation": "expect_column_mean_to_be_between",
             "column": "actual_ratio", "unexpected_count": 1, "example_ids": ["q1", "q2"]}
        ],
    }
    text = validation_markdown(report, docs)
    assert text.startswith("### Data validation: FAILED")
    assert "| pruned | 4 | 1 |" in text
    assert "- pruned: ratio_mean; column actual_ratio; 1 unexpected; e.g. q1, q2" in text
    assert (docs / "local_site" / "index.html").resolve().as_uri() in text


def test_read_report_missing_is_none_and_bad_json_is_one_clear_error(tmp_path: Path) -> None:
    assert read_report(tmp_path / "absent.json") is None
    bad = tmp_path / "evaluate.json"
    bad.write_text("{not json")
    with pytest.raises(TokenSkipError, match=r"evaluate.json: not valid JSON"):
        read_report(bad)
