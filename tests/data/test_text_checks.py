"""The text rules of validate (``tokenskip.validate.text_checks``) on hand-made strings."""

from __future__ import annotations

import pytest

from tokenskip.validate.text_checks import (
    completion_matches,
    digits_in_order,
    forced_tokens_kept,
    number_problem,
    numbers,
    split_words,
    tag_matches_ratio,
    words_in_order,
)

FORCE = ("+", "-", "*", "/", "=", "$")
COT = "Tom has 12 apples. He buys 3 more, so 12 + 3 = 15 apples cost $4.50 (don't ask)."


def test_split_words_as_prune() -> None:
    assert split_words("costs $4.50, so 1,200 + 3 don't") == [
        "costs", "$", "4.50", ",", "so", "1,200", "+", "3", "don't"]


@pytest.mark.parametrize(("compressed", "ok"), [
    (COT, True),
    ("Tom 12 apples. 3, 12 + 3 = 15 $4.50.", True),
    ("12 + 3 = 15", True),
    ("  12\n+ 3 =15  ", True),  # whitespace (or none) between words
    ("", True),  # no word added or moved (the not-blank rule catches this)
    ("Tom has 12 pears.", False),  # a word not in the CoT
    ("has Tom 12", False),  # reordered
    ("12 12 12", False),  # repeated more often than in the CoT
    ("Tom has 1 2 apples", False),  # a number split in two
    ("Tomhas 12", False),  # no such word
    ("15 = 3 + 12", False),
    ("(don't ask) Tom", False),
])
def test_words_in_order(compressed: str, ok: bool) -> None:
    assert words_in_order(COT, compressed) is ok


def test_words_glued_in_order_pass_the_word_rule() -> None:
    """Glued words are matched character by character: '1' '.' '2' of 'a 1 b.2' written '1.2'
    passes the word rule (the number rule fails it: '1.2' is no number of the CoT)."""
    assert words_in_order("a 1 b.2", "1.2") is True
    assert number_problem("a 1 b.2", "1.2", True) == "number '1' (1 of 2 in the CoT) is '1.2' in the compressed CoT"
    assert words_in_order("a 1 b.2", "2.1") is False
    assert words_in_order("x 12abc y", "12abc") is True  # adjacent in the CoT
    assert words_in_order("x 12 abc y", "12abc") is False
    assert words_in_order("so \\frac{1}{2} = 0.5", "\\frac{1}{2} = 0.5") is True
    assert words_in_order("so \\frac{1}{2} = 0.5", "12 = 0.5") is False  # a LaTeX group is one word
    assert words_in_order("so \\frac{1}{2} = 0.5", "\\frac{1} = 0.5") is False
    assert words_in_order("so 1 {2}", "12") is False


def test_words_in_order_needs_strings() -> None:
    assert words_in_order(None, "x") is None
    assert words_in_order("x", 3) is None


@pytest.mark.parametrize(("compressed", "ok"), [
    ("12 + 3 = 15 $4.50", True),
    ("12 + 3 15 $4.50", False),  # '=' dropped
    ("12 + 3 = 15 4.50", False),  # '$' dropped
    ("12 = 3 + 15 $4.50", False),  # order
])
def test_forced_tokens_kept(compressed: str, ok: bool) -> None:
    assert forced_tokens_kept(COT, compressed, FORCE) is ok


def test_forced_tokens_kept_edge_cases() -> None:
    assert forced_tokens_kept(COT, "", ()) is True
    assert forced_tokens_kept("a - b", "a b", ["-"]) is False
    assert forced_tokens_kept(None, "a", FORCE) is None


def test_completion_matches() -> None:
    completion = "Tom 12 3 = 15\nThe final answer is: \\boxed{15}"
    assert completion_matches(completion, "Tom 12 3 = 15", "15") is True
    assert completion_matches(completion, " Tom 12 3 = 15\n", 15) is True  # as format_completion
    assert completion_matches(completion, "Tom 12 3 = 15", "16") is False
    assert completion_matches(completion, "Tom 12 = 15", "15") is False
    assert completion_matches("anything", "Tom", "15") is False
    assert completion_matches(None, "Tom", "15") is False
    assert completion_matches(completion, None, "15") is None
    assert completion_matches(completion, "Tom 12 3 = 15", None) is None


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


@pytest.mark.parametrize(("prompt", "ratio", "ok"), [
    ("q</s>0.5</s>", 0.5, True),
    ("q</s>0.50</s>", 0.5, False),  # not ratio_tag's spelling
    ("q<|eot_id|>0.5<|eot_id|>", 0.5, False),  # not the target tokenizer's EOS
    ("q</s>0.6</s>", 0.5, False),
    ("q</s>0.5</s></s>0.5</s>", 0.5, False),
    ("q</s>1</s>", 1.0, False),
    ("q<|eot_id|>0.9<|eot_id|>", 1.0, True),  # no tag around this EOS
])
def test_ratio_tag_around_the_eos_token(prompt: str, ratio: float, ok: bool) -> None:
    assert tag_matches_ratio(prompt, ratio, "</s>") is ok


def test_numbers_are_words_holding_a_digit() -> None:
    assert numbers("A -.25 drop, .5 of 1,234.5 at 1.5e-3 or 50% (−7), 2-.5 and \\frac{1}{2} x2 3rd") == [
        "-.25", ".5", "1,234.5", "1.5e-3", "50%", "−7", "2", ".5", "\\frac{1}{2}", "x2", "3"]


@pytest.mark.parametrize(("original", "compressed", "problem"), [
    ("so 30*.5=15 cups", "30*5=15", "number '.5' (2 of 3 in the CoT) is '5' in the compressed CoT"),
    ("2-.5=1.5 liters", "2-5=1.5", "number '.5' (2 of 3 in the CoT) is '5' in the compressed CoT"),
    ("a 150% rise", "150 rise", "number '150%' (1 of 1 in the CoT) is '150' in the compressed CoT"),
    ("-.25 each", "-25 each", "number '-.25' (1 of 1 in the CoT) is '-25' in the compressed CoT"),
    ("1.5e-3 s", "1.5-3 s", "number '1.5e-3' (1 of 1 in the CoT) is '1.5' in the compressed CoT"),
    ("it is −7 now", "it is 7", "number '−7' (1 of 1 in the CoT) is '7' in the compressed CoT"),
    ("half \\frac{1}{2}", "half \\frac 1{2}", "number '\\\\frac{1}{2}' (1 of 1 in the CoT) is '1' in the "
     "compressed CoT"),
    ("3 5 8", "3 8", "number '5' (2 of 3 in the CoT) is missing from the compressed CoT"),
    ("3 5 8", "3 5", "number '8' (3 of 3 in the CoT) is missing from the compressed CoT"),
    ("3 5", "3 5 5", "number '5' of the compressed CoT is not a number of the CoT"),
    ("3 5 8 = 1,234", "3 5 8 = 1,234", None),
])
def test_number_problem_with_force_digits(original: str, compressed: str, problem: str | None) -> None:
    assert number_problem(original, compressed, True) == problem


@pytest.mark.parametrize(("original", "compressed", "ok"), [
    ("3 5 8", "3 8", True),  # a dropped number is allowed
    ("3 5 8", "", True),
    ("30*.5=15", "30*5=15", False),  # a changed one never
    ("3 .5 8", "3 5", False),
    ("3 5 8", "8 3", False),  # nor a moved one
])
def test_number_problem_without_force_digits(original: str, compressed: str, ok: bool) -> None:
    problem = number_problem(original, compressed, False)
    assert (problem is None) is ok
    if not ok:
        assert problem.startswith("number '") and "is not a number of the CoT" in problem
