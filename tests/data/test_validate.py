"""validate suites: a clean fixture passes; each injected defect fails exactly its expectation(s)."""

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


def run(tmp_path: Path, records: Records, tokenizer: Any, thresholds: Thresholds = THRESHOLDS,
        docs: bool = False) -> dict[str, Any]:
    cot_path, pruned_dir = write_records(tmp_path / "artifacts", records)
    frames = build_frames(load_inputs(cot_path, pruned_dir), thresholds.ratios, tokenizer)
    return validate_frames(frames, thresholds, tmp_path / "docs" if docs else None)


def failed(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in report["failures"]}


def test_clean_fixture_passes_and_writes_docs(tmp_path: Path, word_tokenizer: Any) -> None:
    report = run(tmp_path, make_records(), word_tokenizer, docs=True)
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
    row["compressed_tokens"] -= 1  # the count still matches the text


def _empty_compressed(records: Records) -> None:
    records["pruned_0.6"][4].update(compressed_cot="  ", compressed_tokens=0)


def _lengthen(name: str, index: int, field: str) -> Callable[[Records], None]:
    """Three words more in the text of ``field``; the recorded counts are left as they were."""
    def apply(records: Records) -> None:
        records[name][index][field] += " and then some"
    return apply


def _duplicate(name: str) -> Callable[[Records], None]:
    return lambda records: records[name].append(dict(records[name][0]))


def _del_field(name: str, field: str) -> Callable[[Records], None]:
    return lambda records: records[name][1].pop(field)


def _swap_ratio_files(records: Records) -> None:
    records["pruned_0.5"][0]["ratio"], records["pruned_0.6"][0]["ratio"] = 0.6, 0.5


def _extra_ratio_file(records: Records) -> None:
    records["pruned_0.3"] = [  # the three numbers only: 3 of 10 tokens
        dict(r, ratio=0.3, compressed_cot=" ".join(w for w in r["cot"].split() if w.isdigit()),
             compressed_tokens=3)
        for r in records["pruned_0.5"]
    ]


def _off_target(records: Records) -> None:
    """g=0.5 holds the texts (and counts) of g=0.6."""
    for row, other in zip(records["pruned_0.5"], records["pruned_0.6"], strict=True):
        row.update(compressed_cot=other["compressed_cot"], compressed_tokens=other["compressed_tokens"])


def _compressed_longer(records: Records) -> None:
    row = records["pruned_0.5"][9]
    row.update(compressed_cot=row["cot"] + " more", compressed_tokens=11)


def _drop_ratio_samples(records: Records) -> None:
    records["samples"] = [s for s in records["samples"] if s["ratio"] != 0.9]


def _no_final_answer(records: Records) -> None:
    row = records["samples"][2]
    row["completion"] = row["completion"].rsplit("\n", 1)[0]


def _wrong_tag(records: Records) -> None:
    row = records["samples"][0]  # g = 0.5
    row["prompt"] = row["prompt"].replace(">0.5<", ">0.6<")


# (test id, defect, failed expectation(s) -- the first with the count and first example, ...)
DEFECTS: list[tuple[str, Callable[[Records], None], str | tuple[str, ...], int, str]] = [
    ("dropped digit", _drop_digit, "pruned_cots.digits_kept_in_order", 1, "q-003@g=0.5"),
    ("missing ratio", lambda r: r.pop("pruned_0.7"), "pruned_ratios.every_ratio_present", 1, "g=0.7"),
    ("empty compressed CoT", _empty_compressed,
     ("pruned_cots.compressed_cot_not_empty", "pruned_cots.digits_kept_in_order"), 1, "q-004@g=0.6"),
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
    ("null prediction", _set("cot", 3, prediction=None),
     ("generated_cots.prediction_present", "generated_cots.prediction_is_number"), 1, "q-003"),
    ("non-numeric prediction", _set("cot", 3, prediction="eleven"),
     "generated_cots.prediction_is_number", 1, "q-003"),
    ("unknown pruned id", _set("pruned_0.9", 6, id="ghost"), "pruned_cots.id_in_generated", 1, "ghost@g=0.9"),
    ("ratio not its file's", _swap_ratio_files, "pruned_cots.ratio_matches_file", 2, "q-000@g=0.6"),
    ("unconfigured ratio", _extra_ratio_file, "pruned_cots.ratio_configured", 24, "q-000@g=0.3"),
    ("compressed longer", _compressed_longer, "pruned_cots.compressed_not_longer", 1, "q-009@g=0.5"),
    ("compressed text longer than its count", _lengthen("pruned_0.5", 9, "compressed_cot"),
     "pruned_cots.compressed_tokens_match_text", 1, "q-009@g=0.5"),
    ("CoT text longer than its count", _lengthen("pruned_0.7", 2, "cot"),
     "pruned_cots.cot_tokens_match_text", 1, "q-002@g=0.7"),
    ("numeric prompt", _set("samples", 3, prompt=42), "training_samples.tag_iff_compressed", 1, "q-003@g=0.8"),
    ("null prompt", _set("samples", 3, prompt=None),
     ("training_samples.prompt_present", "training_samples.tag_iff_compressed"), 1, "q-003@g=0.8"),
    ("mean ratio off target", _off_target, "pruned_ratios.mean_actual_ratio_on_target", 1, "g=0.5"),
    ("ratio mix skewed", _drop_ratio_samples, "training_ratio_mix.uniform", 1, "g=0.9"),
    ("no final-answer line", _no_final_answer, "training_samples.completion_ends_with_final_answer",
     1, "q-002@g=0.7"),
]


@pytest.mark.parametrize(("inject", "expected", "count", "example"),
                         [d[1:] for d in DEFECTS], ids=[d[0] for d in DEFECTS])
def test_defect_fails_exactly_its_expectation(
    tmp_path: Path, word_tokenizer: Any, inject: Callable[[Records], None], expected: str | tuple[str, ...],
    count: int, example: str
) -> None:
    names = [expected] if isinstance(expected, str) else list(expected)
    records = make_records()
    inject(records)
    report = run(tmp_path, records, word_tokenizer)
    assert report["success"] is False
    assert list(failed(report)) == names
    for name in names:
        failure = failed(report)[name]
        assert failure["unexpected_count"] == count
        assert failure["example_ids"][0] == example
    suite = names[0].split(".")[0]
    assert report["suites"][suite]["unsuccessful_expectations"] == len(names)


def test_actual_ratio_is_recounted_from_the_text(tmp_path: Path, word_tokenizer: Any) -> None:
    """g=0.5 holds the texts of g=0.7 but still records 0.5's counts: the recount finds both."""
    records = make_records()
    for row, other in zip(records["pruned_0.5"], records["pruned_0.7"], strict=True):
        row["compressed_cot"] = other["compressed_cot"]
    report = run(tmp_path, records, word_tokenizer)
    failures = failed(report)
    assert list(failures) == ["pruned_cots.compressed_tokens_match_text",
                              "pruned_ratios.mean_actual_ratio_on_target"]
    assert failures["pruned_cots.compressed_tokens_match_text"]["unexpected_count"] == 24
    assert failures["pruned_ratios.mean_actual_ratio_on_target"]["example_ids"] == ["g=0.5"]
    assert report["figures"]["pruned"]["0.5"]["mean_actual_ratio"] == pytest.approx(0.7)


@pytest.mark.parametrize("prompt", [None, 42, 0.5, ["a list"]], ids=["null", "int", "float", "list"])
def test_prompt_not_a_string_fails_the_tag_check(tmp_path: Path, word_tokenizer: Any, prompt: Any) -> None:
    """The tag check cannot be computed on such a prompt: that fails it, it is not skipped."""
    records = make_records()
    records["samples"][0]["prompt"] = prompt
    report = run(tmp_path, records, word_tokenizer)
    assert report["success"] is False
    failure = failed(report)["training_samples.tag_iff_compressed"]
    assert failure["unexpected_count"] == 1 and failure["example_ids"] == ["q-000@g=0.5"]


def test_digit_rule_follows_force_digits(tmp_path: Path, word_tokenizer: Any) -> None:
    records = make_records()
    _drop_digit(records)
    relaxed = Thresholds(**{**THRESHOLDS.__dict__, "force_digits": False})
    assert run(tmp_path, records, word_tokenizer, relaxed)["success"] is True


def test_digits_in_order() -> None:
    assert digits_in_order("add 12 and 30 to get 42", "12 30 42") is True
    assert digits_in_order("add 12 and 30 to get 42", "12 42") is False
    assert digits_in_order("add 12 and 30", "30 12") is False
    assert digits_in_order("no numbers", "numbers") is True
    assert digits_in_order("7 apples", "") is False
    assert digits_in_order("no numbers", " ") is True
    assert digits_in_order(None, "7") is None


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


def test_wrong_type_fails_its_expectation_with_the_error(tmp_path: Path, word_tokenizer: Any) -> None:
    records = make_records()
    records["cot"][0]["cot_tokens"] = "many"
    failures = failed(run(tmp_path, records, word_tokenizer))
    assert list(failures) == ["generated_cots.cot_tokens_in_range"]
    assert "same type" in failures["generated_cots.cot_tokens_in_range"]["exception"]
