"""validate suites: a clean fixture passes; each injected defect fails exactly its expectation(s)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.data.validate_fixture import (
    EOS,
    FORCE_TOKENS,
    RATIOS,
    is_forced,
    make_records,
    plant_changed_number,
    resync_completions,
    write_records,
)
from tokenskip.core.prompts import format_completion, ratio_tag
from tokenskip.validate import Thresholds, build_frames, format_failure, load_inputs, validate_frames

Records = dict[str, list[dict[str, Any]]]
THRESHOLDS = Thresholds(max_cot_tokens=250, ratios=RATIOS, force_digits=True,
                        ratio_tolerance=0.05, ratio_mix_tolerance=0.05, force_tokens=FORCE_TOKENS)


def run(tmp_path: Path, records: Records, tokenizer: Any, thresholds: Thresholds = THRESHOLDS,
        docs: bool = False) -> dict[str, Any]:
    cot_path, pruned_dir = write_records(tmp_path / "artifacts", records)
    frames = build_frames(load_inputs(cot_path, pruned_dir), thresholds.ratios, tokenizer, thresholds.force_tokens)
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


# Row i is question q-00i; its sample has g = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)[i % 6]. Pruned texts
# of q-i (a = i + 2, b = i + 5): g=0.5 "Tom a b = a+b", 0.6 "Tom has a b = a+b", 0.7 "Tom has a
# apples b = a+b", ... Defects on pruned rows pick a ratio other than their sample's, so that the
# sample's completion still matches.


def _replace(name: str, index: int, old: str, new: str, tokens: int = 0) -> Callable[[Records], None]:
    """Replace ``old`` by ``new`` in a compressed CoT; ``tokens`` corrects its recorded count."""
    def apply(records: Records) -> None:
        row = records[name][index]
        assert old in row["compressed_cot"], row["compressed_cot"]
        row["compressed_cot"] = row["compressed_cot"].replace(old, new, 1)
        row["compressed_tokens"] += tokens
    return apply


_drop_digit = _replace("pruned_0.5", 3, " 8 ", " ", -1)  # q-003: "Tom 5 8 = 13"; the count still matches
_drop_operator = _replace("pruned_0.6", 8, " = ", " ", -1)  # q-008: "Tom has 10 13 = 23"
_foreign_word = _replace("pruned_0.5", 5, "Tom", "Tim")  # q-005: "Tom 7 10 = 17"
_reorder = _replace("pruned_0.7", 7, "has 9 apples", "apples 9 has")  # q-007: "Tom has 9 apples 12 = 21"
_repeat_word = _replace("pruned_0.9", 11, "Tom", "Tom Tom", 1)  # q-011 at 0.9: nine of ten words


def _other_cot(records: Records) -> None:
    """q-010's pruned record at 0.8 holds another CoT: 'more' (a word pruned away) is 'fewer'."""
    row = records["pruned_0.8"][10]
    row["cot"] = row["cot"].replace("more", "fewer")


def _two_tags(records: Records) -> None:
    row = records["samples"][12]  # g = 0.5
    tag = ratio_tag(EOS, 0.5)
    row["prompt"] = row["prompt"].replace(tag, tag + tag)


def _arbitrary_completion(records: Records) -> None:
    row = records["samples"][1]  # q-001, g = 0.6: still ends with the final-answer line
    row["completion"] = format_completion("Whatever it takes, Tom counts them all.", "9")


def _completion_of_other_ratio(records: Records) -> None:
    row = records["samples"][7]  # q-007, g = 0.6, trained on the CoT pruned to 0.5
    row["completion"] = format_completion(records["pruned_0.5"][7]["compressed_cot"], "21")


def _completion_other_answer(records: Records) -> None:
    row = records["samples"][5]  # q-005, g = 1.0, gold 17
    row["completion"] = format_completion(records["cot"][5]["cot"], "18")


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
    records["pruned_0.5"][2]["ratio"], records["pruned_0.6"][2]["ratio"] = 0.6, 0.5  # q-002: g = 0.7


def _extra_ratio_file(records: Records) -> None:
    records["pruned_0.4"] = [  # the forced words only (three numbers, one operator): 4 of 10 tokens
        dict(r, ratio=0.4, compressed_cot=" ".join(w for w in r["cot"].split() if is_forced(w)),
             compressed_tokens=4)
        for r in records["pruned_0.5"]
    ]


def _lengthen_compressed(records: Records) -> None:
    """q-009 at 0.5 holds its 0.7 text (seven words); the recorded count is left at five."""
    records["pruned_0.5"][9]["compressed_cot"] = records["pruned_0.7"][9]["compressed_cot"]


def _off_target(records: Records) -> None:
    """g=0.5 holds the texts (and counts) of g=0.6; the samples were built from them."""
    for row, other in zip(records["pruned_0.5"], records["pruned_0.6"], strict=True):
        row.update(compressed_cot=other["compressed_cot"], compressed_tokens=other["compressed_tokens"])
    resync_completions(records)


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


P, S = "pruned_cots", "training_samples"
COMPLETION = f"{S}.completion_is_pruned_cot_and_answer"
TAG = f"{S}.prompt_tag_is_ratio"
NUMBERS = f"{P}.numbers_kept_intact"

# (test id, defect, {failed expectation: (unexpected count, first example id)}), in suite order.
DEFECTS: list[tuple[str, Callable[[Records], None], dict[str, tuple[int, str]]]] = [
    ("dropped digit", _drop_digit, {f"{P}.digits_kept_in_order": (1, "q-003@g=0.5"),
                                    NUMBERS: (1, "q-003@g=0.5")}),
    ("number changed: .5 to 5", plant_changed_number, {f"{P}.compressed_is_subsequence": (1, "q-013@g=0.5"),
                                        NUMBERS: (1, "q-013@g=0.5")}),
    ("dropped operator", _drop_operator, {f"{P}.force_tokens_kept_in_order": (1, "q-008@g=0.6")}),
    ("word not in the CoT", _foreign_word, {f"{P}.compressed_is_subsequence": (1, "q-005@g=0.5")}),
    ("words reordered", _reorder, {f"{P}.compressed_is_subsequence": (1, "q-007@g=0.7")}),
    ("word repeated", _repeat_word, {f"{P}.compressed_is_subsequence": (1, "q-011@g=0.9")}),
    ("pruned CoT not the generated one", _other_cot, {f"{P}.cot_matches_generated": (1, "q-010@g=0.8")}),
    ("missing ratio", lambda r: r.pop("pruned_0.7"),
     {"pruned_ratios.every_ratio_present": (1, "g=0.7"), COMPLETION: (4, "q-002@g=0.7")}),
    ("empty compressed CoT", _empty_compressed,
     {f"{P}.compressed_cot_not_empty": (1, "q-004@g=0.6"), f"{P}.digits_kept_in_order": (1, "q-004@g=0.6"),
      f"{P}.force_tokens_kept_in_order": (1, "q-004@g=0.6"), NUMBERS: (1, "q-004@g=0.6")}),
    ("duplicated cot id", _duplicate("cot"), {"generated_cots.id_unique": (2, "q-000")}),
    ("duplicated pruned (id, g)", _duplicate("pruned_0.8"), {f"{P}.id_ratio_unique": (2, "q-000@g=0.8")}),
    ("duplicated sample (id, g)", _duplicate("samples"), {f"{S}.id_ratio_unique": (2, "q-000@g=0.5")}),
    ("prompt tagged with another ratio", _wrong_tag, {TAG: (1, "q-000@g=0.5")}),
    ("tag around another token", _set("samples", 6, prompt="x</s>0.5</s>"), {TAG: (1, "q-006@g=0.5")}),
    ("tag at g=1", _set("samples", 5, prompt="x<|endoftext|>1<|endoftext|>"), {TAG: (1, "q-005@g=1")}),
    ("two tags", _two_tags, {TAG: (1, "q-012@g=0.5")}),
    ("no tag at g<1", _set("samples", 1, prompt="no tag here"), {TAG: (1, "q-001@g=0.6")}),
    ("completion replaced by arbitrary text", _arbitrary_completion, {COMPLETION: (1, "q-001@g=0.6")}),
    ("completion of another ratio", _completion_of_other_ratio, {COMPLETION: (1, "q-007@g=0.6")}),
    ("completion with another answer", _completion_other_answer, {COMPLETION: (1, "q-005@g=1")}),
    ("incorrect answer kept", _set("cot", 7, correct=False), {"generated_cots.all_correct": (1, "q-007")}),
    ("over-long CoT", _set("cot", 2, cot_tokens=251), {"generated_cots.cot_tokens_in_range": (1, "q-002")}),
    ("missing gold", _del_field("cot", "gold"),
     {"generated_cots.gold_present": (1, "q-001"), COMPLETION: (1, "q-001@g=0.6")}),
    ("missing output", _del_field("cot", "output"), {"generated_cots.output_present": (1, "q-001")}),
    ("null prediction", _set("cot", 3, prediction=None),
     {"generated_cots.prediction_present": (1, "q-003"), "generated_cots.prediction_is_number": (1, "q-003")}),
    ("non-numeric prediction", _set("cot", 3, prediction="eleven"),
     {"generated_cots.prediction_is_number": (1, "q-003")}),
    ("unknown pruned id", _set("pruned_0.9", 6, id="ghost"),
     {f"{P}.id_in_generated": (1, "ghost@g=0.9"), f"{P}.cot_matches_generated": (1, "ghost@g=0.9")}),
    ("ratio not its file's", _swap_ratio_files, {f"{P}.ratio_matches_file": (2, "q-002@g=0.6")}),
    ("unconfigured ratio", _extra_ratio_file, {f"{P}.ratio_configured": (24, "q-000@g=0.4")}),
    ("compressed longer", _compressed_longer,
     {f"{P}.compressed_not_longer": (1, "q-009@g=0.5"), f"{P}.compressed_is_subsequence": (1, "q-009@g=0.5")}),
    ("compressed text longer than its count", _lengthen_compressed,
     {f"{P}.compressed_tokens_match_text": (1, "q-009@g=0.5")}),
    ("CoT text longer than its count", _lengthen("pruned_0.7", 2, "cot"),
     {f"{P}.cot_matches_generated": (1, "q-002@g=0.7"), f"{P}.cot_tokens_match_text": (1, "q-002@g=0.7")}),
    ("numeric prompt", _set("samples", 3, prompt=42), {TAG: (1, "q-003@g=0.8")}),
    ("null prompt", _set("samples", 3, prompt=None), {f"{S}.prompt_present": (1, "q-003@g=0.8"),
                                                       TAG: (1, "q-003@g=0.8")}),
    ("mean ratio off target", _off_target, {"pruned_ratios.mean_actual_ratio_on_target": (1, "g=0.5")}),
    ("ratio mix skewed", _drop_ratio_samples, {"training_ratio_mix.uniform": (1, "g=0.9")}),
    ("no final-answer line", _no_final_answer,
     {f"{S}.completion_ends_with_final_answer": (1, "q-002@g=0.7"), COMPLETION: (1, "q-002@g=0.7")}),
]


@pytest.mark.parametrize(("inject", "expected"), [d[1:] for d in DEFECTS], ids=[d[0] for d in DEFECTS])
def test_defect_fails_exactly_its_expectation(
    tmp_path: Path, word_tokenizer: Any, inject: Callable[[Records], None], expected: dict[str, tuple[int, str]]
) -> None:
    records = make_records()
    inject(records)
    report = run(tmp_path, records, word_tokenizer)
    assert report["success"] is False
    assert list(failed(report)) == list(expected)
    for name, (count, example) in expected.items():
        failure = failed(report)[name]
        assert (failure["unexpected_count"], failure["example_ids"][0]) == (count, example), name
    for suite, stats in report["suites"].items():
        assert stats["unsuccessful_expectations"] == sum(n.startswith(f"{suite}.") for n in expected), suite


def test_actual_ratio_is_recounted_from_the_text(tmp_path: Path, word_tokenizer: Any) -> None:
    """g=0.5 holds the texts of g=0.7 but still records 0.5's counts: the recount finds both."""
    records = make_records()
    for row, other in zip(records["pruned_0.5"], records["pruned_0.7"], strict=True):
        row["compressed_cot"] = other["compressed_cot"]
    resync_completions(records)
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
    failure = failed(report)[TAG]
    assert failure["unexpected_count"] == 1 and failure["example_ids"] == ["q-000@g=0.5"]


def test_digit_rule_follows_force_digits(tmp_path: Path, word_tokenizer: Any) -> None:
    records = make_records()
    _drop_digit(records)
    relaxed = Thresholds(**{**THRESHOLDS.__dict__, "force_digits": False})
    assert run(tmp_path, records, word_tokenizer, relaxed)["success"] is True


def test_operator_rule_follows_force_tokens(tmp_path: Path, word_tokenizer: Any) -> None:
    records = make_records()
    _drop_operator(records)
    relaxed = Thresholds(**{**THRESHOLDS.__dict__, "force_tokens": ()})
    assert run(tmp_path, records, word_tokenizer, relaxed)["success"] is True


def test_operator_rule_does_not_depend_on_force_digits(tmp_path: Path, word_tokenizer: Any) -> None:
    """prune forces prune.force_tokens whether or not it forces digits."""
    records = make_records()
    _drop_operator(records)
    no_digits = Thresholds(**{**THRESHOLDS.__dict__, "force_digits": False})
    assert list(failed(run(tmp_path, records, word_tokenizer, no_digits))) == [
        "pruned_cots.force_tokens_kept_in_order"]


def test_wrong_type_fails_its_expectation_with_the_error(tmp_path: Path, word_tokenizer: Any) -> None:
    records = make_records()
    records["cot"][0]["cot_tokens"] = "many"
    failures = failed(run(tmp_path, records, word_tokenizer))
    assert list(failures) == ["generated_cots.cot_tokens_in_range"]
    assert "same type" in failures["generated_cots.cot_tokens_in_range"]["exception"]


def test_changed_number_is_named_with_its_file_and_record(tmp_path: Path, word_tokenizer: Any) -> None:
    """A pruned record whose '.5' reads '5' fails numbers_kept_intact; the failure names the file,
    the record id and the number."""
    records = make_records()
    plant_changed_number(records)
    failure = failed(run(tmp_path, records, word_tokenizer))[NUMBERS]
    assert failure["column"] == "numbers_all_kept"
    path = tmp_path / "artifacts" / "prune" / "pruned_0.5.jsonl"
    assert failure["details"] == [
        f"{path}: record 'q-013': number '.5' (2 of 3 in the CoT) is '5' in the compressed CoT"]
    assert failure["details"][0] in format_failure(failure)


def test_number_rule_without_force_digits_allows_dropped_numbers_only(tmp_path: Path, word_tokenizer: Any) -> None:
    relaxed = Thresholds(**{**THRESHOLDS.__dict__, "force_digits": False})
    dropped = make_records()
    _drop_digit(dropped)
    assert run(tmp_path / "dropped", dropped, word_tokenizer, relaxed)["success"] is True
    changed = make_records()
    plant_changed_number(changed)
    failure = failed(run(tmp_path / "changed", changed, word_tokenizer, relaxed))[NUMBERS]
    assert failure["column"] == "numbers_unchanged" and failure["unexpected_count"] == 1
    assert failure["details"] == [f"{tmp_path / 'changed' / 'artifacts' / 'prune' / 'pruned_0.5.jsonl'}: record "
                                  "'q-013': number '5' of the compressed CoT is not a number of the CoT "
                                  "(unchanged, in order)"]
