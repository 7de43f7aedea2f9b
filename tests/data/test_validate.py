"""validate suites: a clean fixture passes; each injected defect fails exactly its expectation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.data.validate_fixture import RATIOS, make_records, write_records
from tokenskip.validate import Thresholds, build_frames, load_inputs, validate_frames
from tokenskip.validate.frames import digits_in_order, tag_matches_ratio

Records = dict[str, list[dict[str, Any]]]
THRESHOLDS = Thresholds(max_cot_tokens=250, ratios=RATIOS, force_digits=True,
                        ratio_tolerance=0.05, ratio_mix_tolerance=0.05)


def run(tmp_path: Path, records: Records, thresholds: Thresholds = THRESHOLDS,
        docs: bool = False) -> dict[str, Any]:
    cot_path, pruned_dir = write_records(tmp_path / "artifacts", records)
    frames = build_frames(load_inputs(cot_path, pruned_dir), thresholds.ratios)
    return validate_frames(frames, thresholds, tmp_path / "docs" if docs else None)


def failed(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in report["failures"]}


def test_clean_fixture_passes_and_writes_docs(tmp_path: Path) -> None:
    report = run(tmp_path, make_records(), docs=True)
    assert report["failures"] == []
    assert report["success"] is True
    assert set(report["suites"]) == {"generated_cots", "pruned_cots", "pruned_ratios",
                                     "training_samples", "training_ratio_mix"}
    assert report["suites"]["pruned_cots"]["rows"] == 24 * len(RATIOS)
    assert report["figures"]["pruned"]["0.5"] == {"records": 24, "mean_actual_ratio": 0.5}
    index = tmp_path / "docs" / "index.html"
    assert index.is_file() and "pruned_cots" in index.read_text(encoding="utf-8")
    assert list((tmp_path / "docs" / "validations").rglob("*.html"))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".docs")]


def _set(name: str, index: int, **fields: Any) -> Callable[[Records], None]:
    def apply(records: Records) -> None:
        records[name][index].update(fields)
    return apply


def _drop_digit(records: Records) -> None:
    row = records["pruned_0.5"][3]
    row["compressed_cot"] = row["compressed_cot"].replace(" 8 ", " ")  # q-003: "... 5 ... 8 ... 13"


def _duplicate(name: str) -> Callable[[Records], None]:
    return lambda records: records[name].append(dict(records[name][0]))


def _del_field(name: str, field: str) -> Callable[[Records], None]:
    return lambda records: records[name][1].pop(field)


def _swap_ratio_files(records: Records) -> None:
    records["pruned_0.5"][0]["ratio"], records["pruned_0.6"][0]["ratio"] = 0.6, 0.5


def _extra_ratio_file(records: Records) -> None:
    records["pruned_0.3"] = [dict(r, ratio=0.3, compressed_tokens=3) for r in records["pruned_0.5"]]


def _off_target(records: Records) -> None:
    for row in records["pruned_0.5"]:
        row["compressed_tokens"] = 6


def _drop_ratio_samples(records: Records) -> None:
    records["samples"] = [s for s in records["samples"] if s["ratio"] != 0.9]


def _no_final_answer(records: Records) -> None:
    row = records["samples"][2]
    row["completion"] = row["completion"].rsplit("\n", 1)[0]


def _wrong_tag(records: Records) -> None:
    row = records["samples"][0]  # g = 0.5
    row["prompt"] = row["prompt"].replace(">0.5<", ">0.6<")


DEFECTS: list[tuple[str, Callable[[Records], None], str, int, str]] = [
    ("dropped digit", _drop_digit, "pruned_cots.digits_kept_in_order", 1, "q-003@g=0.5"),
    ("missing ratio", lambda r: r.pop("pruned_0.7"), "pruned_ratios.every_ratio_present", 1, "g=0.7"),
    ("empty compressed CoT", _set("pruned_0.6", 4, compressed_cot="  "),
     "pruned_cots.compressed_cot_not_empty", 1, "q-004@g=0.6"),
    ("duplicated cot id", _duplicate("cot"), "generated_cots.id_unique", 2, "q-000"),
    ("duplicated pruned (id, g)", _duplicate("pruned_0.8"), "pruned_cots.id_ratio_unique", 2, "q-000@g=0.8"),
    ("duplicated sample (id, g)", _duplicate("samples"), "training_samples.id_ratio_unique", 2, "q-000@g=0.5"),
    ("wrong tag", _wrong_tag, "training_samples.tag_iff_compressed", 1, "q-000@g=0.5"),
    ("tag at g=1", _set("samples", 5, prompt="x<|endoftext|>1<|endoftext|>"),
     "training_samples.tag_iff_compressed", 1, "q-005@g=1"),
    ("no tag at g<1", _set("samples", 1, prompt="no tag here"),
     "training_samples.tag_iff_compressed", 1, "q-001@g=0.6"),
    ("incorrect answer kept", _set("cot", 7, correct=False), "generated_cots.all_correct", 1, "q-007"),
    ("over-long CoT", _set("cot", 2, cot_tokens=251), "generated_cots.cot_tokens_in_range", 1, "q-002"),
    ("missing field", _del_field("cot", "gold"), "generated_cots.gold_present", 1, "q-001"),
    ("null prediction", _set("cot", 3, prediction=None), "generated_cots.prediction_present", 1, "q-003"),
    ("non-numeric prediction", _set("cot", 3, prediction="eleven"),
     "generated_cots.prediction_is_number", 1, "q-003"),
    ("unknown pruned id", _set("pruned_0.9", 6, id="ghost"), "pruned_cots.id_in_generated", 1, "ghost@g=0.9"),
    ("ratio not its file's", _swap_ratio_files, "pruned_cots.ratio_matches_file", 2, "q-000@g=0.6"),
    ("unconfigured ratio", _extra_ratio_file, "pruned_cots.ratio_configured", 24, "q-000@g=0.3"),
    ("compressed longer", _set("pruned_0.5", 9, compressed_tokens=11),
     "pruned_cots.compressed_not_longer", 1, "q-009@g=0.5"),
    ("mean ratio off target", _off_target, "pruned_ratios.mean_actual_ratio_on_target", 1, "g=0.5"),
    ("ratio mix skewed", _drop_ratio_samples, "training_ratio_mix.uniform", 1, "g=0.9"),
    ("no final-answer line", _no_final_answer, "training_samples.completion_ends_with_final_answer",
     1, "q-002@g=0.7"),
]


@pytest.mark.parametrize(("inject", "expected", "count", "example"),
                         [d[1:] for d in DEFECTS], ids=[d[0] for d in DEFECTS])
def test_defect_fails_exactly_its_expectation(
    tmp_path: Path, inject: Callable[[Records], None], expected: str, count: int, example: str
) -> None:
    records = make_records()
    inject(records)
    report = run(tmp_path, records)
    assert report["success"] is False
    assert list(failed(report)) == [expected]
    failure = failed(report)[expected]
    assert failure["unexpected_count"] == count
    assert failure["example_ids"][0] == example
    suite = expected.split(".")[0]
    assert report["suites"][suite]["unsuccessful_expectations"] == 1


def test_digit_rule_follows_force_digits(tmp_path: Path) -> None:
    records = make_records()
    _drop_digit(records)
    relaxed = Thresholds(**{**THRESHOLDS.__dict__, "force_digits": False})
    assert run(tmp_path, records, relaxed)["success"] is True


def test_digits_in_order() -> None:
    assert digits_in_order("add 12 and 30 to get 42", "12 30 42") is True
    assert digits_in_order("add 12 and 30 to get 42", "12 42") is False
    assert digits_in_order("add 12 and 30", "30 12") is False
    assert digits_in_order("no numbers", "numbers") is True
    assert digits_in_order("7 apples", "") is None


@pytest.mark.parametrize(("prompt", "ratio", "ok"), [
    ("q<|eot_id|>0.5<|eot_id|>", 0.5, True),
    ("q</s>0.7</s>", 0.7, True),
    ("q<|eot_id|>0.5<|eot_id|>", 0.6, False),
    ("q<|eot_id|>0.5<|eot_id|> and <|eot_id|>0.5<|eot_id|>", 0.5, False),
    ("q **2** apples", 1.0, True),
    ("q", 0.5, False),
    ("q<|eot_id|>0.9<|eot_id|>", 1.0, False),
])
def test_ratio_tag_detection(prompt: str, ratio: float, ok: bool) -> None:
    assert tag_matches_ratio(prompt, ratio) is ok


def test_wrong_type_fails_its_expectation_with_the_error(tmp_path: Path) -> None:
    records = make_records()
    records["cot"][0]["cot_tokens"] = "many"
    failures = failed(run(tmp_path, records))
    assert list(failures) == ["generated_cots.cot_tokens_in_range"]
    assert "same type" in failures["generated_cots.cot_tokens_in_range"]["exception"]
