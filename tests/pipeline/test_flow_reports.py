"""What the flow publishes and prints, built from the stages' reports."""

from __future__ import annotations

from pathlib import Path

import pytest

from tokenskip.core.errors import TokenSkipError
from tokenskip_flows.reports import evaluation_rows, final_tables, read_report, validation_markdown

EVALUATE = {
    "n_test": 2,
    "ratios": {"1.0": {"accuracy": 1.0, "mean_cot_tokens": 10.0}, "0.5": {"accuracy": 0.5, "mean_cot_tokens": 5.0}},
    "baselines": {"truncation_0.5": {"accuracy": 0.0}},
}
REGISTER = {"registered_model": "toy", "versions": [{"version": "1", "ratio": 0.5, "verdict": "passed",
                                                     "alias": "champion"}],
            "champion": {"version": "1", "ratio": 0.5}}


def test_the_flow_shows_the_librarys_tables() -> None:
    assert [row["setting"] for row in evaluation_rows(EVALUATE)] == [
        "TokenSkip g=1.0", "TokenSkip g=0.5", "truncation g=0.5"]
    text = final_tables(EVALUATE, REGISTER)
    assert "| TokenSkip g=0.5 (champion) | 0.500 | 5.0 |  |  |" in text
    assert "| 0.5 |  |  |  |  |  | passed (champion) |" in text
    assert text.endswith("Champion: toy version 1 (ratio 0.5)")
    assert final_tables(None, None) == "(no reports/evaluate.json)\n\nChampion: (no reports/register.json)"


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
