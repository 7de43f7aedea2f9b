"""Bring your own dataset: the MATH-format fixture, any JSON Lines file through a field mapping,
files from params, one clear error per bad record, and the validate suites on LaTeX answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.data.validate_fixture import make_records, resync_completions, write_records
from tokenskip.core.answers import answers_match
from tokenskip.core.errors import TokenSkipError
from tokenskip.core.params import parse_params
from tokenskip.core.problems import MATH_FIELDS, gold_from_solution, load_dataset, load_mapped
from tokenskip.validate import Thresholds, build_frames, load_inputs, validate_frames

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "math_fixture.jsonl"
SUBJECTS = {"Prealgebra", "Algebra", "Number Theory", "Geometry", "Counting & Probability",
            "Intermediate Algebra", "Precalculus"}


def fixture_rows() -> list[dict[str, Any]]:
    return [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines()]


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def math_params(**data: Any) -> Any:
    return parse_params({"data": {"dataset": "math", **data}}).data


def test_math_fixture_loads_with_levels_subjects_and_gold(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # data.test_path is a file under data/, from the repository root
    write(tmp_path / "data" / "math500" / "test.jsonl", fixture_rows())
    problems = load_dataset(math_params(test_path="data/math500/test.jsonl"), tmp_path, "test")
    rows = fixture_rows()
    assert len(problems) == len(rows) >= 30
    assert problems[0].id == "math-test-00000"
    assert {p.level for p in problems} == {"1", "2", "3", "4", "5"}
    assert {p.subject for p in problems} == SUBJECTS
    assert [p.gold for p in problems] == [r["answer"] for r in rows]
    assert problems[0].to_record() == {"id": "math-test-00000", "question": rows[0]["problem"],
                                       "gold": "18", "level": "1", "subject": "Prealgebra"}


def test_every_fixture_solution_boxes_an_answer_equal_to_its_gold() -> None:
    """The solution's \\boxed{} is written differently from the answer field in places
    (``60\\text{ miles}`` vs 60, ``(-2, 6)`` vs ``(-2,6)``): math-verify must still agree."""
    for row in fixture_rows():
        boxed = gold_from_solution(row["solution"])
        assert boxed is not None and answers_match(boxed, row["answer"]), row["unique_id"]


def test_original_math_format_through_a_field_mapping(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """MATH as first released: no answer field, ``type`` for the subject, levels "Level N"."""
    rows = [{"problem": r["problem"], "solution": r["solution"], "type": r["subject"],
             "level": f"Level {r['level']}"} for r in fixture_rows()]
    write(tmp_path / "data" / "mine" / "test.jsonl", rows)
    monkeypatch.chdir(tmp_path)
    params = parse_params({"data": {"dataset": "jsonl", "test_path": "data/mine/test.jsonl", "fields": {
        "question": "problem", "solution": "solution", "answer": None, "level": "level", "subject": "type"}}})
    problems = load_dataset(params.data, tmp_path / "data", "test")
    assert [p.id for p in problems][:2] == ["jsonl-test-00000", "jsonl-test-00001"]
    assert {p.level for p in problems} == {"1", "2", "3", "4", "5"}
    for problem, row in zip(problems, fixture_rows(), strict=True):
        assert answers_match(problem.gold, row["answer"]), row["unique_id"]
        assert problem.subject == row["subject"]


def test_gsm8k_style_jsonl_takes_gold_after_the_marker(tmp_path: Path) -> None:
    path = write(tmp_path / "t.jsonl", [
        {"prompt": "Two plus <<2>> two?", "worked": "2 + 2 = <<2+2=4>>4\n#### 4", "n": 1}])
    problems = load_mapped(path, {"question": "prompt", "solution": "worked", "answer": None})
    assert (problems[0].gold, problems[0].solution, problems[0].level) == ("4", "2 + 2 = 4", "")
    assert problems[0].to_record() == {"id": "t-00000", "question": "Two plus <<2>> two?", "gold": "4"}


def test_default_paths_and_n_test(tmp_path: Path) -> None:
    write(tmp_path / "math" / "train.jsonl", fixture_rows())
    params = math_params(n_train=5)
    assert len(load_dataset(params, tmp_path, "train")) == 5
    with pytest.raises(TokenSkipError, match=r"math/test.jsonl: file not found"):
        load_dataset(params, tmp_path, "test")


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"problem": "What is 1+1?", "solution": "It is 2."},
         "record 2: field 'solution': no gold answer"),
        ({"problem": "What is 1+1?", "solution": "It is \\boxed{2}.", "answer": ["2"]},
         "record 2: field 'answer' is not text (got list)"),
        ({"problem": "   ", "solution": "\\boxed{2}"}, "record 2: field 'problem' is empty"),
        ({"question": "What is 1+1?", "solution": "\\boxed{2}"}, ":2: missing field 'problem'"),
    ],
)
def test_a_bad_record_is_named(tmp_path: Path, row: dict[str, Any], expected: str) -> None:
    path = write(tmp_path / "bad.jsonl", [fixture_rows()[0], row])
    with pytest.raises(TokenSkipError) as info:
        load_mapped(path, MATH_FIELDS)
    assert str(path) in str(info.value) and expected in str(info.value)


def _latex_records() -> dict[str, list[dict[str, Any]]]:
    """The clean validate fixture with MATH-style gold answers and predictions."""
    records = make_records()
    for index, cot in enumerate(records["cot"]):
        cot["gold"] = cot["prediction"] = f"\\frac{{{index + 1}}}{{{index + 2}}}"
    resync_completions(records)
    return records


def _validate(tmp_path: Path, records: dict, tokenizer: Any, answers: str) -> dict[str, Any]:
    thresholds = Thresholds(max_cot_tokens=250, ratios=[0.5, 0.6, 0.7, 0.8, 0.9], force_digits=False,
                            ratio_tolerance=0.05, ratio_mix_tolerance=0.05, answers=answers)
    cot_path, pruned_dir = write_records(tmp_path / "artifacts", records)
    frames = build_frames(load_inputs(cot_path, pruned_dir), thresholds.ratios, tokenizer,
                          answers=thresholds.answers)
    return validate_frames(frames, thresholds, None)


def test_latex_answers_pass_the_suites_only_as_latex(tmp_path: Path, word_tokenizer: Any) -> None:
    records = _latex_records()
    assert _validate(tmp_path / "a", records, word_tokenizer, "latex")["failures"] == []
    numeric = _validate(tmp_path / "b", records, word_tokenizer, "number")
    assert [f["name"] for f in numeric["failures"]] == ["generated_cots.prediction_is_number"]


def test_a_record_without_an_extractable_gold_fails_naming_it(tmp_path: Path, word_tokenizer: Any) -> None:
    records = _latex_records()
    records["cot"][3]["gold"] = "\\frac{"
    resync_completions(records)
    report = _validate(tmp_path, records, word_tokenizer, "latex")
    failures = {f["name"]: f for f in report["failures"]}
    assert list(failures) == ["generated_cots.gold_is_answer"]
    assert failures["generated_cots.gold_is_answer"]["example_ids"] == ["q-003"]
