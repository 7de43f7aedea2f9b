"""The text rules of validate (``tokenskip.validate.text_checks``) on hand-made strings."""

from __future__ import annotations

import pytest

from tokenskip.validate.text_checks import (
    completion_matches,
    digits_in_order,
    forced_tokens_kept,
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


def test_words_glued_by_pruning_are_in_order() -> None:
    """prune joins '1' '.' '2' of 'a 1 b.2' (b dropped) into '1.2', which re-splits as one number."""
    assert words_in_order("a 1 b.2", "1.2") is True
    assert words_in_order("a 1 b.2", "2.1") is False
    assert words_in_order("x 12abc y", "12abc") is True  # adjacent in the CoT
    assert words_in_order("x 12 abc y", "12abc") is False
    assert words_in_order("so \\frac{1}{2} = 0.5", "12 = 0.5") is True  # '}' '{' dropped between
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
