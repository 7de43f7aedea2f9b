"""Word splitting, joining and prune_to_ratio: the pure core of the prune stage."""

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
