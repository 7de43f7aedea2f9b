"""Edges of the pure core that mutation testing found unchecked: exact gate and budget bounds,
the prune record and report figures, token weights, JSON I/O and answer parsing corners."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from tokenskip.core.answers import _timeout, answers_match, extract_prediction, last_boxed, normalize_number
from tokenskip.core.errors import TokenSkipError
from tokenskip.core.io import (
    file_sha256,
    folder_digests,
    read_json,
    read_jsonl,
    replace_dir,
    write_json,
    write_jsonl,
)
from tokenskip.core.prompts import ratio_key, ratio_tag
from tokenskip.prune.pruning import (
    prune_record,
    prune_to_ratio,
    select_words,
    split_words,
    token_word_map,
    word_token_weights,
)
from tokenskip.prune.samples import build_samples, ratio_summary
from tokenskip.register.gate import Paired, RatioResult, Thresholds, judge

# --- gate: a figure exactly at its bound passes -----------------------------------------------

POINT = Thresholds(max_accuracy_drop=0.25, min_token_reduction=0.5, decision="point")


def _verdict(drop: float, reduction: float, champion: RatioResult | None = None, accuracy: float = 0.5):
    paired = Paired(drop, (drop, drop), reduction, (reduction, reduction), 0.5)
    return judge(RatioResult(0.5, accuracy, 100.0, 0.5), paired, "g1", POINT, champion)


def test_gate_bounds_are_inclusive() -> None:
    assert _verdict(0.25, 0.5).passed
    assert not _verdict(0.25 + 1e-6, 0.5).passed and "accuracy drop vs g1" in _verdict(0.2500001, 0.5).reason
    assert not _verdict(0.25, 0.5 - 1e-6).passed and "token reduction vs g1" in _verdict(0.25, 0.4999).reason
    verdict = _verdict(0.0, 0.6)
    assert (verdict.reference, verdict.decision, verdict.reason) == ("g1", "point", "passed")
    with pytest.raises(ValueError, match=r"^gates.decision must be one of \('point', 'upper_ci'\) \(got 'mean'\)$"):
        judge(RatioResult(0.5, 0.5, 1.0, 0.5), verdict.paired, "g1", Thresholds(0.1, 0.1, "mean"))


def test_a_champion_at_equal_tokens_dominates_only_beyond_the_drop() -> None:
    champion = RatioResult(0.7, 0.75, 100.0, 0.7)  # same tokens as the candidate
    assert _verdict(0.0, 0.6, champion, accuracy=0.5).passed  # behind by exactly 0.25
    failed = _verdict(0.0, 0.6, champion, accuracy=0.4999)
    assert not failed.passed and "champion (g=0.7)" in failed.reason


# --- pruning budgets and records --------------------------------------------------------------


def test_budget_rounds_half_up_and_forced_words_at_the_bound_fit() -> None:
    kept, over = select_words([4.0, 3.0, 2.0, 1.0], 0.375)  # 1.5 words -> 2
    assert kept == [True, True, False, False] and not over
    kept, over = select_words([4.0, 3.0, 2.0, 1.0], 0.375, [False, False, True, True])
    assert kept == [False, False, True, True] and not over  # 2 forced words = 1.5 + 0.5
    assert select_words([1.0, 2.0], 1.0, [True, True]) == ([True, True], False)
    assert select_words([4.0, 3.0, 2.0, 1.0], 0.25, [True, True, False, False]) == ([True, True, False, False], True)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="ratio must be in"):
        select_words([1.0], 1.5)
    with pytest.raises(ValueError, match="^scores, forced and weights must have the same length$"):
        select_words([1.0, 2.0], 0.5, [True])
    with pytest.raises(ValueError, match="^scores, forced and weights must have the same length$"):
        select_words([1.0, 2.0], 0.5, None, [1.0])


def test_split_words_records_spacing_and_spans() -> None:
    words = split_words("  Hi, 3.5 x")
    assert [(w.text, w.space, w.start, w.end) for w in words] == [
        ("Hi", "  ", 2, 4), (",", "", 4, 5), ("3.5", " ", 6, 9), ("x", " ", 10, 11)]


def test_prune_to_ratio_budgets_by_weights() -> None:
    words = split_words("alpha beta gamma delta")
    result = prune_to_ratio(words, [4.0, 3.0, 2.0, 1.0], 0.5, None, [3.0, 1.0, 1.0, 1.0])
    assert result.text == "alpha" and result.kept == [True, False, False, False]


def test_token_word_map_edges() -> None:
    words = split_words("ab cd ef")
    assert token_word_map([(1, 1), (0, 8)], words) == [[1], [1], [1]]  # zero-width span ignored
    assert token_word_map([(0, 2), (9, 10)], words) == [[0], [], []]  # a token after the last word


class OffsetTokenizer:
    """Tokens of two characters each, with their offsets (a fast tokenizer's offset_mapping)."""

    def __call__(self, text: str, add_special_tokens: bool = True, return_offsets_mapping: bool = False):
        assert add_special_tokens is False and return_offsets_mapping is True
        spans = [(i, min(i + 2, len(text))) for i in range(0, len(text), 2)]
        return {"input_ids": list(range(len(spans))), "offset_mapping": spans}


def test_word_token_weights_share_straddling_tokens() -> None:
    text = "abc d"
    weights = word_token_weights(OffsetTokenizer(), text, split_words(text))
    assert weights == [2.0, 1.0]  # "ab", "c " -> abc; "d" alone
    text = "a bcd"
    assert word_token_weights(OffsetTokenizer(), text, split_words(text)) == [1.0, 2.0]
    assert word_token_weights(OffsetTokenizer(), "a,b", split_words("a,b")) == [0.5, 0.5, 1.0]  # "a," shared


def test_prune_record_fields_and_calibration_keep_forced_words_and_weights() -> None:
    cot = "We need 12 apples and 3 pears so 15 fruits in total here today"
    words = split_words(cot)
    forced = [any(ch.isdigit() for ch in w.text) for w in words]
    weights = [1.0] * len(words)
    weights[1] = 3.0  # "need" costs three tokens
    scores = [float(len(words) - i) for i in range(len(words))]  # earlier words score higher

    def count(text: str) -> int:
        return sum(3 if w == "need" else 1 for w in text.split())

    record = prune_record({"id": "q1", "cot": cot}, scores, 0.5, forced, weights, count)
    assert record == {
        "id": "q1", "ratio": 0.5, "cot": cot, "compressed_cot": "We need 12 apples 3 15",
        "cot_tokens": 16, "compressed_tokens": 8, "forced_words": 3, "over_budget": False,
        "digits_total": 3, "digits_kept": 3,
    }


def test_calibration_keeps_forced_words_and_weights_while_it_lowers_the_budget() -> None:
    cot = "\n".join(f"Line {i} adds 2 more careful small steps to reach the total" for i in range(8))
    words = split_words(cot)
    forced = [w.text == "2" for w in words]
    weights = [5.0 if w.text == "careful" else 1.0 for w in words]
    scores = [1.0 if w.text == "careful" else float(-i) for i, w in enumerate(words)]

    def count(text: str) -> int:  # line breaks and "careful" cost extra tokens
        return sum(5 if w == "careful" else 1 for w in text.split()) + text.count("\n")

    record = prune_record({"id": "c", "cot": cot}, scores, 0.4, forced, weights, count)
    assert record["compressed_cot"].split().count("2") == sum(forced) == 9  # forced words all kept
    assert (record["compressed_tokens"], record["cot_tokens"]) == (54, 135)  # 0.4 of the tokens
    assert record["compressed_cot"] == "Line 0 adds 2 careful\n" + "2 careful\n2 2 careful\n" + "2 careful\n" * 4 + "2"


# --- training samples and the prune report ----------------------------------------------------


def test_build_samples_refuses_a_draw_of_another_length() -> None:
    records = [{"id": "a", "question": "q", "gold": 1, "cot": "c"}]
    with pytest.raises(ValueError):
        build_samples(records, {}, [[1.0], [1.0]], lambda q, g: q)
    assert build_samples(records, {}, [[1.0]], lambda q, g: q)[0]["id"] == "a"


def test_ratio_summary_figures() -> None:
    rows = [
        {"cot_tokens": 6, "compressed_tokens": 2, "forced_words": 2, "over_budget": False,
         "digits_total": 4, "digits_kept": 4},
        {"cot_tokens": 7, "compressed_tokens": 5, "forced_words": 5, "over_budget": True,
         "digits_total": 2, "digits_kept": 1},
        {"cot_tokens": 0, "compressed_tokens": 0, "forced_words": 0, "over_budget": False,
         "digits_total": 0, "digits_kept": 0},
    ]
    assert ratio_summary(rows) == {
        "n": 3, "actual_ratio_mean": 0.5238, "actual_ratio_std": 0.1905, "actual_ratio_min": 0.3333,
        "actual_ratio_max": 0.7143, "mean_cot_tokens": 4.33, "mean_compressed_tokens": 2.33,
        "forced_words_mean": 2.33, "over_budget_share": 0.3333, "digits_kept_share": 0.8333,
    }
    empty = ratio_summary(rows[2:])
    assert empty["actual_ratio_mean"] is None and empty["actual_ratio_std"] is None
    assert empty["actual_ratio_min"] is None and empty["actual_ratio_max"] is None
    assert empty["digits_kept_share"] is None


# --- prompts ----------------------------------------------------------------------------------


def test_ratio_key_and_tag() -> None:
    assert [ratio_key(g) for g in (1, 1.0, 0.5, 0.55, 0.125)] == ["1.0", "1.0", "0.5", "0.55", "0.125"]
    assert ratio_tag("<e>", 1.0) == "" and ratio_tag("<e>", None) == "" and ratio_tag("<e>", 0.55) == "<e>0.55<e>"


# --- JSON I/O ---------------------------------------------------------------------------------


def test_json_writers_keep_unicode_count_records_and_sort_keys(tmp_path: Path) -> None:
    assert write_jsonl(tmp_path / "a.jsonl", [{"q": "café"}, {"q": "π"}, {"q": "x"}]) == 3
    assert (tmp_path / "a.jsonl").read_text(encoding="utf-8") == '{"q": "café"}\n{"q": "π"}\n{"q": "x"}\n'
    write_json(tmp_path / "b.json", {"z": 1, "a": "é"})
    assert (tmp_path / "b.json").read_text(encoding="utf-8") == '{\n  "a": "é",\n  "z": 1\n}\n'
    assert read_json(tmp_path / "b.json") == {"z": 1, "a": "é"}


def test_digests_follow_content_and_skip_hidden_files(tmp_path: Path) -> None:
    (tmp_path / "m" / "sub").mkdir(parents=True)
    (tmp_path / "m" / "w.bin").write_bytes(b"weights")
    (tmp_path / "m" / "sub" / "c.json").write_bytes(b"{}")
    (tmp_path / "m" / ".cache").mkdir()
    (tmp_path / "m" / ".cache" / "x").write_bytes(b"junk")
    assert file_sha256(tmp_path / "m" / "w.bin") == hashlib.sha256(b"weights").hexdigest()
    assert folder_digests(tmp_path / "m") == {
        "sub/c.json": hashlib.sha256(b"{}").hexdigest(), "w.bin": hashlib.sha256(b"weights").hexdigest()}


@pytest.mark.parametrize(
    ("content", "required", "message"),
    [
        (None, (), "x.jsonl: file not found"),
        ("\n\n", (), "x.jsonl: empty file (no records)"),
        ('{"a": 1}\n\n{"a": 2\n', (), "x.jsonl:3: not valid JSON (Expecting ',' delimiter)"),
        ('{"a": 1}\n[1]\n', (), "x.jsonl:2: record is not a JSON object"),
        ('{"a": 1}\n{"a": null}\n', ("a",), "x.jsonl:2: missing field 'a'"),
        ('{"a": 1}\n{"b": 2}\n', ("a",), "x.jsonl:2: missing field 'a'"),
    ],
)
def test_read_jsonl_names_file_line_and_field(tmp_path: Path, content, required, message: str) -> None:
    if content is not None:
        (tmp_path / "x.jsonl").write_text(content, encoding="utf-8")
    with pytest.raises(TokenSkipError) as info:
        read_jsonl(tmp_path / "x.jsonl", required)
    assert str(info.value).endswith(message)


def test_read_jsonl_reads_utf8_and_read_json_names_its_defects(tmp_path: Path) -> None:
    (tmp_path / "u.jsonl").write_bytes('{"q": "café"}\n'.encode())
    assert read_jsonl(tmp_path / "u.jsonl", ["q"]) == [{"q": "café"}]
    (tmp_path / "u.json").write_bytes('{"q": "π"}'.encode())
    assert read_json(tmp_path / "u.json") == {"q": "π"}
    with pytest.raises(TokenSkipError, match=r"no\.json: file not found$"):
        read_json(tmp_path / "no.json")
    (tmp_path / "bad.json").write_text('{"a":\n}', encoding="utf-8")
    with pytest.raises(TokenSkipError, match=r"bad\.json: not valid JSON \(Expecting value, line 2\)$"):
        read_json(tmp_path / "bad.json")
    for content, where in [(b'{"a": 1}\r\n\xff\n', "2: not valid UTF-8 (byte 1"), (b'{"a": 1}\r\xff', "2: not valid UTF-8 (byte 1"),
                           (b'{"a": 1}\r{"b": 2}\r  \xff', "3: not valid UTF-8 (byte 3")]:
        (tmp_path / "cr.jsonl").write_bytes(content)  # old-Mac line breaks count as lines too
        with pytest.raises(TokenSkipError) as info:
            read_jsonl(tmp_path / "cr.jsonl")
        assert str(info.value).endswith(f"cr.jsonl:{where} of the line is 0xff)")


def test_replace_dir_survives_a_stale_aside_folder(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "f").write_text("old")
    stale = tmp_path / f".out.old-{os.getpid()}"
    stale.mkdir()
    (stale / "leftover").write_text("x")
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "f").write_text("new")
    replace_dir(tmp_path / "new", tmp_path / "out")
    assert (tmp_path / "out" / "f").read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# --- answers ----------------------------------------------------------------------------------


def test_answer_extraction_corners() -> None:
    assert last_boxed("\\boxed{1} then \\boxed{2}") == "2"
    assert last_boxed("\\boxed{\\frac{1}{2}} end") == "\\frac{1}{2}"
    assert extract_prediction("answer is $\\frac{1}{2}$ or answer is $\\pi$") == "\\pi"
    assert extract_prediction("first answer is $x$, then answer is $y$, finally answer is $z$") == "z"
    assert [normalize_number(t) for t in ("5.", "50%", "50\\%", "1\\!000", ".5")] == [5.0, 50.0, 50.0, 1000.0, 0.5]
    assert normalize_number("5.x") is None and normalize_number("5X") is None


def test_numeric_tolerance_is_one_millionth_relative() -> None:
    assert answers_match("1000000.5", "1000000") and not answers_match("1000002", "1000000")
    assert answers_match("0.0000005", "0") and not answers_match("0.0000015", "0")
    assert answers_match("0.5", "0.5000005") and not answers_match("0.5", "0.500002")
    assert not answers_match("abc", "1,3") and not answers_match("\\frac{1}{2}", "zzz")


def test_a_math_verify_crash_is_a_wrong_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    import math_verify

    def crash(*args, **kwargs):
        raise RuntimeError("sympy blew up")

    monkeypatch.setattr(math_verify, "verify", crash)
    assert answers_match("\\frac{1}{2}", "\\frac{2}{4}") is False


def test_math_verify_timeouts_only_in_the_main_thread() -> None:
    assert _timeout() == 5
    seen = []
    worker = threading.Thread(target=lambda: seen.append(_timeout()))
    worker.start()
    worker.join()
    assert seen == [None]
