"""Word splitting, joining and prune_to_ratio: the pure core of the prune stage."""

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from tokenskip.prune.pruning import (
    forced_mask,
    join_words,
    prune_to_ratio,
    select_words,
    split_words,
    token_word_map,
)

COT = (
    "Let's think about this step by step.\nWe know that Noah starts with 5 eggs.\n"
    "Having 4 times as many means 5 * 4 = 20 eggs now, so he has $1,234.50 (in total)."
)


def test_split_keeps_numbers_whole_and_punctuation_apart() -> None:
    texts = [w.text for w in split_words("He has $1,234.50, i.e. 3.5 + 2 = 5.5 apples.")]
    assert texts == ["He", "has", "$", "1,234.50", ",", "i", ".", "e", ".", "3.5", "+", "2", "=",
                     "5.5", "apples", "."]
    assert [w.text for w in split_words("Let's go")] == ["Let's", "go"]


@pytest.mark.parametrize("text", [COT, "a  b\n\nc", "x.", "(", "Tom's 3rd apple: 4/5!"])
def test_join_of_split_is_identity(text: str) -> None:
    assert join_words(split_words(text)) == text.strip()


def test_ratio_one_is_identity_whatever_the_scores() -> None:
    words = split_words(COT)
    result = prune_to_ratio(words, [float(-i) for i in range(len(words))], 1.0)
    assert result.text == COT
    assert all(result.kept)


def test_keeps_top_share_in_original_order() -> None:
    words = split_words("a b c d e f g h i j")
    scores = [0, 9, 1, 8, 2, 7, 3, 6, 4, 5]
    result = prune_to_ratio(words, scores, 0.5)
    assert result.text == "b d f h j"
    assert sum(result.kept) == 5


def test_ties_broken_by_position() -> None:
    words = split_words("a b c d")
    assert prune_to_ratio(words, [1, 1, 1, 1], 0.5).text == "a b"


def test_no_space_before_punctuation_after_dropped_word() -> None:
    words = split_words("so he has 8 apples.")
    scores = [5, 5, 5, 5, 0, 5]
    assert prune_to_ratio(words, scores, 5 / 6).text == "so he has 8."


def test_dropped_line_keeps_line_break() -> None:
    words = split_words("First line.\nSecond line here.")
    scores = [9, 9, 9, 0, 9, 9, 9]
    assert prune_to_ratio(words, scores, 6 / 7).text == "First line.\nline here."


def test_opening_bracket_after_dropped_word_keeps_space() -> None:
    words = split_words("has 5 (in total)")
    assert prune_to_ratio(words, [9, 9, 9, 0, 9, 9], 5 / 6).text == "has 5 (total)"


def test_forced_words_always_kept() -> None:
    words = split_words("he has 3 + 5 = 8 apples now")
    forced = forced_mask(words, True, ["+", "="])
    assert [w.text for w, f in zip(words, forced, strict=True) if f] == ["3", "+", "5", "=", "8"]
    scores = [9, 9, 0, 0, 0, 0, 0, 1, 2]
    result = prune_to_ratio(words, scores, 0.7, forced=forced)
    assert result.text == "he 3 + 5 = 8"
    assert result.forced_words == 5 and not result.over_budget


def test_forced_words_over_budget_are_reported_and_kept() -> None:
    words = split_words("3 + 5 = 8 apples")
    forced = forced_mask(words, True, ["+", "="])
    result = prune_to_ratio(words, [0, 0, 0, 0, 0, 9], 0.5, forced=forced)
    assert result.text == "3 + 5 = 8"
    assert result.over_budget
    assert result.forced_words == 5


def test_force_digits_off_leaves_numbers_to_the_scores() -> None:
    words = split_words("it is 12 now")
    assert forced_mask(words, False, []) == [False] * 4


def test_token_weights_set_the_budget() -> None:
    # the long first word weighs 6 of 10 tokens: at g = 0.5 it cannot fit, the rest do.
    kept, over = select_words([9, 1, 1, 1, 1], 0.5, weights=[6, 1, 1, 1, 1])
    assert kept == [False, True, True, True, True]
    assert not over


def test_bad_ratio_rejected() -> None:
    with pytest.raises(ValueError, match="ratio"):
        select_words([1.0], 0.0)
    with pytest.raises(ValueError, match="words but"):
        prune_to_ratio(split_words("a b"), [1.0], 0.5)


def test_token_word_map_assigns_overlapping_tokens() -> None:
    text = "ab cd."
    words = split_words(text)  # ab, cd, .
    offsets = [(0, 0), (0, 1), (1, 2), (2, 5), (5, 6), (0, 0)]  # specials, a, b, " cd", "."
    assert token_word_map(offsets, words) == [[1, 2], [3], [4]]


def test_record_ratio_is_measured_on_the_retokenized_text() -> None:
    """Line breaks kept in dropped stretches cost tokens the word budget does not see;
    the calibrated budget still lands the re-tokenized share at (or just under) g."""
    from tokenskip.prune.pruning import prune_record

    cot = "\n".join(f"Step {i}: we carefully add the two small values here and note it." for i in range(12))
    words = split_words(cot)

    def count(text: str) -> int:  # a tokenizer where every line break is a token of its own
        return len(text.split()) + text.count("\n")

    scores = [float((i * 7) % 11) for i in range(len(words))]
    weights = [1.0] * len(words)
    forced = [False] * len(words)
    record = prune_record({"id": "q", "cot": cot}, scores, 0.5, forced, weights, count)
    actual = record["compressed_tokens"] / record["cot_tokens"]
    assert 0.44 <= actual <= 0.505


@pytest.mark.parametrize(("text", "joined"), [("3*x", "3x"), ("5+$", "5$"), ("a-(b", "a(b"), ("2^3", "2 3")])
def test_dropping_a_glued_mark_glues_its_neighbours_unless_they_would_merge(text: str, joined: str) -> None:
    words = split_words(text)
    assert join_words(words, [i != 1 for i in range(len(words))]) == joined


# --- numbers and LaTeX groups are units: kept or dropped whole, never changed -----------------

FORCE_TOKENS = ["+", "-", "*", "/", "=", "$"]  # prune.force_tokens' default
NUMBER_CASES = [  # (CoT, its numbers as prune splits them)
    ("The price falls by -.25 each day, so after two days it is .5 lower.", ["-.25", ".5"]),
    ("A rate of 1.5e-3 per second over 2E+5 seconds gives 300 units.", ["1.5e-3", "2E+5", "300"]),
    ("At night it is −7 degrees, and 5 − 3 = 2 degrees warmer at noon.", ["−7", "5", "3", "2"]),
    ("She saves 50% of 1,234,567 dollars, so 617,283.5 dollars.", ["50%", "1,234,567", "617,283.5"]),
    ("Half is \\frac{1}{2}, so x^{2} + a_{n} is \\sqrt{16} and \\boxed{42} is the answer.",
     ["\\frac{1}{2}", "^{2}", "\\sqrt{16}", "\\boxed{42}"]),
    ("He sells 30 cups at half price: 30*.5=15 dollars.", ["30", "30", ".5", "15"]),
    ("She drinks 2-.5=1.5 liters of the 2 liters.", ["2", ".5", "1.5", "2"]),
    ("Prices rose by 150% over the year, from 10 to 25.", ["150%", "10", "25"]),
    ("Tom gives away -5 apples (i.e. x=-5), then 3-2=1 and (−3) more.", ["-5", "-5", "3", "2", "1", "−3"]),
]


def _numbers(text: str) -> list[str]:
    return [w.text for w in split_words(text) if any(ch.isdigit() for ch in w.text)]


@pytest.mark.parametrize(("text", "numbers"), NUMBER_CASES)
def test_numbers_and_latex_groups_are_one_word(text: str, numbers: list[str]) -> None:
    assert _numbers(text) == numbers
    assert join_words(split_words(text)) == text


@pytest.mark.parametrize("ratio", [0.5, 0.3])
@pytest.mark.parametrize("force_tokens", [FORCE_TOKENS, []], ids=["operators forced", "nothing else forced"])
@pytest.mark.parametrize(("text", "numbers"), NUMBER_CASES)
def test_pruning_keeps_every_number_whole(text: str, numbers: list[str], ratio: float, force_tokens) -> None:
    """force_digits: every number is kept, unchanged and in order, whatever the scores."""
    words = split_words(text)
    forced = forced_mask(words, True, force_tokens)
    for seed in range(20):
        rng = random.Random(seed)
        result = prune_to_ratio(words, [rng.random() for _ in words], ratio, forced)
        assert _numbers(result.text) == numbers, result.text
        assert [w.text for w in split_words(result.text)] == [w.text for w, k in zip(words, result.kept, strict=True) if k]


@pytest.mark.parametrize("ratio", [0.5, 0.3])
@pytest.mark.parametrize(("text", "numbers"), NUMBER_CASES)
def test_pruning_without_force_digits_drops_numbers_whole(text: str, numbers: list[str], ratio: float) -> None:
    """force_digits off: a number may be dropped, never changed (the kept ones are the CoT's)."""
    words = split_words(text)
    for seed in range(20):
        rng = random.Random(seed)
        result = prune_to_ratio(words, [rng.random() for _ in words], ratio, forced_mask(words, False, []))
        kept = _numbers(result.text)
        remaining = iter(numbers)
        assert all(number in remaining for number in kept), (result.text, kept)


@pytest.mark.parametrize(("text", "dropped", "joined"), [
    ("30*.5=15", "*", "30 .5=15"),  # not 30.5=15
    ("2-.5=1.5", "-", "2 .5=1.5"),  # not 2.5=1.5
    ("2-.5=1.5", "2", "- .5=1.5"),  # not -.5=1.5
    ("x a-5 y", "a", "x-5 y"),  # '-' stays an operator: 5, not -5
    ("y, a-5", "a", "y,- 5"),  # glued to "," the "-" would be a sign: 5, not -5
    ("a 1 b.2 c", "b", "a 1. 2 c"),  # not 1.2
    ("so 3 .5", "so", "3 .5"),
])
def test_join_never_merges_kept_words_into_another_number(text: str, dropped: str, joined: str) -> None:
    words = split_words(text)
    result = join_words(words, [w.text != dropped for w in words])
    assert result == joined
    assert [w.text for w in split_words(result)] == [w.text for w in words if w.text != dropped]


def test_prune_refuses_duplicate_ids_in_one_line_exit_2(tmp_path: Path) -> None:
    """Two cot records with one id would pair a question with another's pruned CoT: prune stops
    before loading any model, with one line naming the file, the line and the id, exit 2."""
    rows = [{"id": f"q-{i}", "question": "How many?", "gold": "3", "cot": f"Tom has {i} apples.", "cot_tokens": 4}
            for i in range(3)]
    rows.append(dict(rows[1], cot="Tom has 9 apples."))
    cot = tmp_path / "cot.jsonl"
    cot.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    (tmp_path / "params.yaml").write_text("{}\n", encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "tokenskip", "prune", "--base", "no-model", "--cot", "cot.jsonl",
                          "--out", "prune", "--report", "prune.json"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip().splitlines() == [
        "error: cot.jsonl:4: field 'id': duplicate id 'q-1' (first at line 2)"]
    assert not (tmp_path / "prune").exists() and not (tmp_path / "prune.json").exists()
