"""`tokenskip validate`: exit code, failure message, report (deterministic), timing and data docs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.data.validate_fixture import (
    FORCE_TOKENS,
    RATIOS,
    make_records,
    plant_changed_number,
    resync_completions,
    write_records,
)
from tokenskip.cli import app


def _args(tmp_path: Path, records: dict, base: Path) -> list[str]:
    """CLI arguments; report and docs relative to ``tmp_path`` (the tests run there); ``base`` holds
    the tokenizer that recounts the tokens."""
    cot_path, pruned_dir = write_records(tmp_path / "artifacts", records)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({
        "generate": {"max_cot_tokens": 250},
        "prune": {"ratios": RATIOS, "force_digits": True, "force_tokens": list(FORCE_TOKENS)},
        "validate": {"ratio_tolerance": 0.05, "ratio_mix_tolerance": 0.05},
    }), encoding="utf-8")
    return ["validate", "--cot", str(cot_path), "--pruned", str(pruned_dir), "--base", str(base),
            "--params", str(params),
            "--report", "reports/validate.json", "--docs", "reports/validation"]


def test_clean_data_exits_zero_with_report_and_docs(tmp_path: Path, monkeypatch, word_tokenizer_dir: Path) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, _args(tmp_path, make_records(), word_tokenizer_dir))
    assert result.exit_code == 0, result.output
    assert "all" in result.output and "expectations passed" in result.output
    report = json.loads((tmp_path / "reports" / "validate.json").read_text())
    assert report["success"] is True and report["failures"] == []
    assert report["suites"]["training_samples"]["rows"] == 24
    assert "seconds" not in report
    timing = json.loads((tmp_path / "reports" / "validate-timing.json").read_text())
    assert set(timing) == {"seconds"} and timing["seconds"] > 0
    assert (tmp_path / "reports" / "validation" / "index.html").is_file()


def test_defects_exit_three_naming_expectation_count_and_ids(tmp_path: Path, monkeypatch,
                                                           word_tokenizer_dir: Path) -> None:
    monkeypatch.chdir(tmp_path)
    records = make_records()
    for row, other in zip(records["pruned_0.5"][:7], records["pruned_0.6"], strict=False):
        row["compressed_cot"] = other["compressed_cot"]  # seven compressed CoTs one token longer than recorded
    resync_completions(records)  # the samples were built from them
    records["samples"][0]["prompt"] = "no tag"  # g = 0.5 without its tag
    (tmp_path / "reports" / "validation").mkdir(parents=True)
    (tmp_path / "reports" / "validation" / "stale.html").write_text("old")
    result = CliRunner().invoke(app, _args(tmp_path, records, word_tokenizer_dir))
    assert result.exit_code == 3
    lines = result.output.splitlines()
    assert ("FAILED pruned_cots.compressed_tokens_match_text (expect_column_values_to_be_in_set on "
            "compressed_tokens_match_text): 7 unexpected; e.g. q-000@g=0.5, q-001@g=0.5, q-002@g=0.5, "
            "q-003@g=0.5, q-004@g=0.5") in lines
    assert ("FAILED training_samples.prompt_tag_is_ratio (expect_column_values_to_be_in_set on "
            "tag_matches_ratio): 1 unexpected; e.g. q-000@g=0.5") in lines
    assert "2 of" in lines[-1] and "expectations failed" in lines[-1]
    report = json.loads((tmp_path / "reports" / "validate.json").read_text())
    assert report["success"] is False
    assert [f["name"] for f in report["failures"]] == [
        "pruned_cots.compressed_tokens_match_text", "training_samples.prompt_tag_is_ratio"]
    docs = tmp_path / "reports" / "validation"
    assert (docs / "index.html").is_file() and not (docs / "stale.html").exists()


def test_changed_number_exits_three_naming_file_record_and_number(tmp_path: Path, monkeypatch,
                                                                  word_tokenizer_dir: Path) -> None:
    monkeypatch.chdir(tmp_path)
    records = make_records()
    plant_changed_number(records)  # q-013 at g = 0.5: '.5' reads '5'
    result = CliRunner().invoke(app, _args(tmp_path, records, word_tokenizer_dir))
    assert result.exit_code == 3, result.output
    path = tmp_path / "artifacts" / "prune" / "pruned_0.5.jsonl"
    assert ("FAILED pruned_cots.numbers_kept_intact (expect_column_values_to_be_in_set on numbers_all_kept): "
            f"1 unexpected; e.g. q-013@g=0.5; {path}: record 'q-013': number '.5' (2 of 3 in the CoT) is '5' "
            "in the compressed CoT") in result.output.splitlines()


@pytest.mark.parametrize("defect", [False, True], ids=["clean", "defective"])
def test_report_is_identical_for_identical_inputs(tmp_path: Path, monkeypatch, word_tokenizer_dir: Path,
                                                  defect: bool) -> None:
    """Two runs on the same inputs write byte-identical reports/validate.json (finetune depends on
    it in dvc.yaml); the wall-clock time goes to the timing file only."""
    monkeypatch.chdir(tmp_path)
    records = make_records()
    if defect:
        records["samples"][1]["completion"] = "Something else entirely."
        records["pruned_0.8"][3]["compressed_cot"] += " apples"
        plant_changed_number(records)  # the failure lists the record and the number
    args = [*_args(tmp_path, records, word_tokenizer_dir), "--timing", "reports/timing.json"]
    report = tmp_path / "reports" / "validate.json"
    runs = []
    for _ in range(2):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == (3 if defect else 0), result.output
        runs.append(report.read_bytes())
    assert runs[0] == runs[1]
    assert json.loads(runs[0])["success"] is not defect
    assert "seconds" in json.loads((tmp_path / "reports" / "timing.json").read_text())
    assert not (tmp_path / "reports" / "validate-timing.json").exists()


def test_missing_input_is_one_error_line(tmp_path: Path, word_tokenizer_dir: Path) -> None:
    records = make_records()
    args = _args(tmp_path, records, word_tokenizer_dir)
    (tmp_path / "artifacts" / "prune" / "samples.jsonl").unlink()
    run = subprocess.run([sys.executable, "-m", "tokenskip", *args], capture_output=True, text=True,
                         cwd=tmp_path)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'artifacts' / 'prune' / 'samples.jsonl'}: file not found"]
    report = json.loads((tmp_path / "reports" / "validate.json").read_text())
    assert report["success"] is False and "samples.jsonl: file not found" in report["error"]


def test_base_without_a_tokenizer_is_one_error_line(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(app, _args(tmp_path, make_records(), tmp_path / "empty"))
    assert result.exit_code == 1
    report = json.loads((tmp_path / "reports" / "validate.json").read_text())
    assert report["success"] is False and "no model" in report["error"]
